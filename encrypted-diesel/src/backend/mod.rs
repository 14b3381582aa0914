//! How each backend hands a text value to [`Encrypted`](crate::__private::Encrypted) without
//! copying it first: the base64 is decoded straight from the database's buffer, so a value read
//! from a text column costs one allocation (the decoded bytes, which are then decrypted in
//! place) instead of three (a `String`, the decoded bytes, the plaintext).
//!
//! One file per backend; the `FromSql` impls in `value.rs` are generic over this trait.

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

use diesel::backend::Backend;

/// A backend whose text values can be read as borrowed bytes.
///
/// Implemented for diesel's SQLite, PostgreSQL and MySQL backends (with the crate features of
/// the same names); the async connections of diesel-async use the same backends.
pub trait ReadText: Backend {
    /// Calls `read` with the bytes of a text value, as the database holds them.
    fn with_text<R>(value: Self::RawValue<'_>, read: impl FnOnce(&[u8]) -> R) -> R;
}
