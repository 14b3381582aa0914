//! Lookup hashes: the columns that make equality queries on encrypted fields possible.
//!
//! - SHA-256 (`#[encrypt(hash = column)]`): lowercase hex SHA-256 of the normalised plaintext,
//!   byte-compatible with Obot's `hashed_*` columns. Anyone with the database can test guesses.
//! - HMAC-SHA256 (`#[encrypt(hash = column, hmac)]`): lowercase hex
//!   `HMAC-SHA256(lookup_key, resource ‖ 0x00 ‖ column ‖ 0x00 ‖ normalised plaintext)`; the
//!   resource and column separate the domains, so equal values in two tables do not share a
//!   hash. Needs the lookup key ([`Keys::with_lookup_key`](crate::Keys::with_lookup_key)); the
//!   better default for new tables.

use aws_lc_rs::{digest, hmac};

/// How a value is normalised before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Normalize {
    /// As is.
    None,
    /// Unicode lowercase.
    Lowercase,
    /// Leading and trailing whitespace removed.
    Trim,
    /// Trimmed, then lowercased (e-mail addresses).
    LowercaseTrim,
}

impl Normalize {
    /// Applies the normalisation.
    ///
    /// ```
    /// use encrypted_diesel::hash::Normalize;
    /// assert_eq!(Normalize::LowercaseTrim.apply(" Alice@Example.COM "), "alice@example.com");
    /// ```
    #[must_use]
    pub fn apply(self, value: &str) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Normalize::None => Cow::Borrowed(value),
            Normalize::Trim => Cow::Borrowed(value.trim()),
            Normalize::Lowercase => Cow::Owned(value.to_lowercase()),
            Normalize::LowercaseTrim => Cow::Owned(value.trim().to_lowercase()),
        }
    }
}

/// Lowercase hex SHA-256, as Obot stores `hashed_*` columns.
///
/// ```
/// assert_eq!(
///     encrypted_diesel::hash::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
#[must_use]
pub fn sha256_hex(value: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, value).as_ref())
}

/// Lowercase hex HMAC-SHA256 of `resource ‖ 0 ‖ column ‖ 0 ‖ value`.
#[must_use]
pub fn hmac_hex(key: &hmac::Key, resource: &str, column: &str, value: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(resource.as_bytes());
    ctx.update(&[0]);
    ctx.update(column.as_bytes());
    ctx.update(&[0]);
    ctx.update(value);
    hex(ctx.sign().as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}
