//! The stored form of an encrypted field and its `ToSql`/`FromSql` implementations.
//!
//! One wrapper serves every backend and both column kinds: the column's SQL type chooses the
//! encoding, as the design asks. Bound to a `Text` column it is standard padded base64 of the
//! transformer output (what Obot writes); bound to a `Binary` (`Bytea`, `Blob`) column it is the
//! raw bytes, unless the field says `#[encrypt(base64)]`. The impls are generic over the backend:
//! writing delegates to diesel's own `str`/`[u8]` impls, and reading text goes through
//! [`ReadText`], so PostgreSQL, SQLite and MySQL (sync or through diesel-async) share one
//! implementation. Text is base64-decoded as it is read, straight from the database's buffer.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Binary, Text};

use crate::Error;
use crate::backend::ReadText;

/// An encrypted column value as stored: ciphertext, or the error that prevented encrypting it
/// (reported by `ToSql`, so nothing is ever written in its place).
///
/// Models never expose it; it appears in the hidden record type `#[derive(Encrypted)]`
/// generates. Its `Debug` shows the length only.
#[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
#[diesel(sql_type = Text)]
#[diesel(sql_type = Binary)]
pub struct Encrypted {
    repr: Repr,
    base64: bool,
}

enum Repr {
    /// Written by this process: the transformer output, and its base64 once needed.
    Sealed {
        bytes: Vec<u8>,
        text: OnceLock<Box<str>>,
    },
    /// Read from a `Text` column and base64-decoded there; the text again once needed (to
    /// write the value back or to read a legacy plaintext row).
    Decoded {
        bytes: Vec<u8>,
        text: OnceLock<Box<str>>,
    },
    /// Read from a `Text` column that does not hold base64: the text as read, and why (boxed,
    /// as the failure is: a loaded record moves its values several times, so they stay small).
    Undecodable(Box<(Vec<u8>, encrypted_core::Error)>),
    /// Read from a `Binary` column.
    Binary(Vec<u8>),
    /// Written by this process: the column's exact content (a plaintext stored as it is, or a
    /// wrapper object), not transformer output.
    Verbatim(Vec<u8>),
    /// Encryption failed; binding the value reports this.
    Failed(Box<Error>),
}

impl fmt::Debug for Encrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Sealed { bytes, .. }
            | Repr::Binary(bytes)
            | Repr::Decoded { bytes, .. }
            | Repr::Verbatim(bytes) => write!(f, "Encrypted({} bytes)", bytes.len()),
            Repr::Undecodable(undecodable) => {
                write!(f, "Encrypted({} chars, not base64)", undecodable.0.len())
            }
            Repr::Failed(e) => write!(f, "Encrypted(failed: {e})"),
        }
    }
}

impl Encrypted {
    /// A value written by the keyring: `stored` is the transformer output (prefix and payload).
    /// With `base64`, a binary column receives its base64 text rather than the raw bytes.
    #[must_use]
    pub fn sealed(stored: Vec<u8>, base64: bool) -> Self {
        Self {
            repr: Repr::Sealed {
                bytes: stored,
                text: OnceLock::new(),
            },
            base64,
        }
    }

    /// Computes the base64 text of a sealed value now rather than when it is bound.
    #[must_use]
    pub fn with_text(self) -> Self {
        if let Repr::Sealed { bytes, text } = &self.repr {
            cached_base64(bytes, text);
        }
        self
    }

    /// The column's exact content, written as it is (a plaintext, or a wrapper object).
    #[must_use]
    pub fn verbatim(bytes: Vec<u8>) -> Self {
        Self {
            repr: Repr::Verbatim(bytes),
            base64: false,
        }
    }

    /// True when the column holds nothing (the empty string or no bytes).
    #[must_use]
    pub fn is_empty_raw(&self) -> bool {
        match &self.repr {
            Repr::Sealed { bytes, .. }
            | Repr::Decoded { bytes, .. }
            | Repr::Binary(bytes)
            | Repr::Verbatim(bytes) => bytes.is_empty(),
            Repr::Undecodable(undecodable) => undecodable.0.is_empty(),
            Repr::Failed(_) => false,
        }
    }

    /// At least the number of bytes binding the value sends (base64 text counted at its
    /// length), for sizing a statement that writes many values.
    pub(crate) fn bound_len(&self) -> usize {
        match &self.repr {
            Repr::Sealed { bytes, .. } | Repr::Decoded { bytes, .. } => bytes.len().div_ceil(3) * 4,
            Repr::Binary(bytes) | Repr::Verbatim(bytes) => bytes.len(),
            Repr::Undecodable(undecodable) => undecodable.0.len(),
            Repr::Failed(_) => 0,
        }
    }

    /// A value that could not be encrypted; binding it fails with `error`.
    #[must_use]
    pub fn failed(error: Error) -> Self {
        Self {
            repr: Repr::Failed(Box::new(error)),
            base64: false,
        }
    }

    /// The transformer output, decoding base64 where the column holds text (or the field said
    /// `base64`).
    ///
    /// # Errors
    /// [`encrypted_core::Error::Encoding`] for text that is not standard padded base64;
    /// [`encrypted_core::Error::Other`] for a failed value.
    pub fn stored(&self, base64: bool) -> Result<Cow<'_, [u8]>, encrypted_core::Error> {
        match &self.repr {
            Repr::Sealed { bytes, .. } | Repr::Decoded { bytes, .. } => Ok(Cow::Borrowed(bytes)),
            Repr::Binary(bytes) if base64 => {
                encrypted_core::decode_base64_bytes(bytes).map(Cow::Owned)
            }
            Repr::Binary(bytes) => Ok(Cow::Borrowed(bytes)),
            Repr::Verbatim(bytes) if base64 => {
                encrypted_core::decode_base64_bytes(bytes).map(Cow::Owned)
            }
            Repr::Verbatim(bytes) => Ok(Cow::Borrowed(bytes)),
            Repr::Undecodable(undecodable) => Err(undecodable.1.clone()),
            Repr::Failed(e) => Err(Self::not_encrypted(e)),
        }
    }

    /// Like [`stored`](Self::stored), by value: no copy where the value already holds the
    /// stored bytes, which a caller can then decrypt in place.
    ///
    /// # Errors
    /// As [`stored`](Self::stored).
    pub fn into_stored(self, base64: bool) -> Result<Vec<u8>, encrypted_core::Error> {
        match self.repr {
            Repr::Sealed { bytes, .. } | Repr::Decoded { bytes, .. } => Ok(bytes),
            Repr::Binary(bytes) if base64 => encrypted_core::decode_base64_bytes(&bytes),
            Repr::Binary(bytes) => Ok(bytes),
            Repr::Verbatim(bytes) if base64 => encrypted_core::decode_base64_bytes(&bytes),
            Repr::Verbatim(bytes) => Ok(bytes),
            Repr::Undecodable(undecodable) => Err(undecodable.1),
            Repr::Failed(e) => Err(Self::not_encrypted(&e)),
        }
    }

    fn not_encrypted(e: &Error) -> encrypted_core::Error {
        encrypted_core::Error::Other {
            context: "value was not encrypted".to_owned(),
            source: std::sync::Arc::new(e.clone()),
        }
    }

    /// The bytes exactly as read from the column, borrowed.
    #[must_use]
    pub fn raw(&self) -> Cow<'_, [u8]> {
        match &self.repr {
            Repr::Sealed { bytes, .. } | Repr::Binary(bytes) | Repr::Verbatim(bytes) => {
                Cow::Borrowed(bytes)
            }
            Repr::Decoded { bytes, text } => Cow::Borrowed(cached_base64(bytes, text).as_bytes()),
            Repr::Undecodable(undecodable) => Cow::Borrowed(&undecodable.0),
            Repr::Failed(_) => Cow::Borrowed(&[]),
        }
    }

    /// The bytes exactly as read from the column (legacy plaintext rows, `encrypted = false`).
    #[must_use]
    pub fn into_raw(self) -> Vec<u8> {
        match self.repr {
            Repr::Sealed { bytes, .. } | Repr::Binary(bytes) | Repr::Verbatim(bytes) => bytes,
            Repr::Decoded { bytes, text } => text
                .into_inner()
                .map_or_else(|| encrypted_core::encode_base64(&bytes), String::from)
                .into_bytes(),
            Repr::Undecodable(undecodable) => undecodable.0,
            Repr::Failed(_) => Vec::new(),
        }
    }

    /// A value read from a text column: base64-decoded now, from the database's buffer.
    pub(crate) fn from_text(text: &[u8]) -> Self {
        let repr = match encrypted_core::decode_base64_bytes(text) {
            Ok(bytes) => Repr::Decoded {
                bytes,
                text: OnceLock::new(),
            },
            Err(error) => Repr::Undecodable(Box::new((text.to_vec(), error))),
        };
        Self { repr, base64: true }
    }

    fn text(&self) -> Result<&str, Error> {
        match &self.repr {
            Repr::Sealed { bytes, text } | Repr::Decoded { bytes, text } => {
                Ok(cached_base64(bytes, text))
            }
            Repr::Undecodable(undecodable) => std::str::from_utf8(&undecodable.0)
                .map_err(|_| Error::Storage("a value read as text is not UTF-8".into())),
            Repr::Verbatim(bytes) => std::str::from_utf8(bytes)
                .map_err(|_| Error::Storage("a value for a text column is not UTF-8".into())),
            Repr::Binary(_) => Err(Error::Storage(
                "a value read from a binary column cannot be written to a text column".into(),
            )),
            Repr::Failed(e) => Err((**e).clone()),
        }
    }

    fn binary(&self) -> Result<&[u8], Error> {
        match &self.repr {
            Repr::Sealed { bytes, .. } if !self.base64 => Ok(bytes),
            Repr::Binary(bytes) | Repr::Verbatim(bytes) => Ok(bytes),
            _ => self.text().map(str::as_bytes),
        }
    }
}

/// The base64 text of `bytes`, computed once. For a value read from a text column this is the
/// text as read: standard padded base64 is canonical (the decoder refuses any other spelling),
/// so encoding the bytes again gives it back exactly.
fn cached_base64<'a>(bytes: &[u8], text: &'a OnceLock<Box<str>>) -> &'a str {
    text.get_or_init(|| encrypted_core::encode_base64(bytes).into())
}

impl<DB> ToSql<Text, DB> for Encrypted
where
    DB: Backend,
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        <str as ToSql<Text, DB>>::to_sql(self.text()?, out)
    }
}

impl<DB> ToSql<Binary, DB> for Encrypted
where
    DB: Backend,
    [u8]: ToSql<Binary, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        <[u8] as ToSql<Binary, DB>>::to_sql(self.binary()?, out)
    }
}

impl<DB> FromSql<Text, DB> for Encrypted
where
    DB: ReadText,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(DB::with_text(bytes, Self::from_text))
    }
}

impl<DB> FromSql<Binary, DB> for Encrypted
where
    DB: Backend,
    Vec<u8>: FromSql<Binary, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Self {
            repr: Repr::Binary(<Vec<u8> as FromSql<Binary, DB>>::from_sql(bytes)?),
            base64: false,
        })
    }
}

/// A list column of `#[encrypt(each)]` as stored: a JSON array whose elements are base64 of
/// each element's transformer output, or the error that prevented encrypting it (reported by
/// `ToSql`, so nothing is written in its place). Its `Debug` shows the element count only.
#[derive(diesel::deserialize::FromSqlRow)]
pub struct EncryptedList(Result<serde_json::Value, Box<Error>>);

/// A SQL type an `#[encrypt(each)]` list column may have: Diesel's `Json` and `Jsonb`, and an
/// application's own JSON type made one with [`list_column_type!`](crate::list_column_type).
pub trait ListSqlType:
    diesel::sql_types::SqlType + diesel::expression::TypedExpressionType
{
}

impl ListSqlType for diesel::sql_types::Json {}
impl ListSqlType for diesel::sql_types::Jsonb {}

type BoundList<ST, T> = diesel::internal::derives::as_expression::Bound<ST, T>;

impl<ST: ListSqlType> diesel::expression::AsExpression<ST> for EncryptedList {
    type Expression = BoundList<ST, Self>;
    fn as_expression(self) -> Self::Expression {
        BoundList::new(self)
    }
}

impl<ST: ListSqlType> diesel::expression::AsExpression<ST> for &EncryptedList {
    type Expression = BoundList<ST, Self>;
    fn as_expression(self) -> Self::Expression {
        BoundList::new(self)
    }
}

impl<ST> diesel::expression::AsExpression<diesel::sql_types::Nullable<ST>> for EncryptedList
where
    ST: ListSqlType
        + diesel::sql_types::SqlType<IsNull = diesel::sql_types::is_nullable::NotNull>
        + diesel::sql_types::SingleValue,
{
    type Expression = BoundList<diesel::sql_types::Nullable<ST>, Self>;
    fn as_expression(self) -> Self::Expression {
        BoundList::new(self)
    }
}

impl<ST> diesel::expression::AsExpression<diesel::sql_types::Nullable<ST>> for &EncryptedList
where
    ST: ListSqlType
        + diesel::sql_types::SqlType<IsNull = diesel::sql_types::is_nullable::NotNull>
        + diesel::sql_types::SingleValue,
{
    type Expression = BoundList<diesel::sql_types::Nullable<ST>, Self>;
    fn as_expression(self) -> Self::Expression {
        BoundList::new(self)
    }
}

impl fmt::Debug for EncryptedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Ok(serde_json::Value::Array(items)) => {
                write!(f, "EncryptedList({} elements)", items.len())
            }
            Ok(_) => f.write_str("EncryptedList(not an array)"),
            Err(e) => write!(f, "EncryptedList(failed: {e})"),
        }
    }
}

impl EncryptedList {
    /// A sealed list.
    #[must_use]
    pub fn new(value: serde_json::Value) -> Self {
        Self(Ok(value))
    }

    /// A list that could not be encrypted; binding it fails with `error`.
    #[must_use]
    pub fn failed(error: Error) -> Self {
        Self(Err(Box::new(error)))
    }

    /// JSON `null` (what a `None` list is stored as).
    #[must_use]
    pub fn null() -> Self {
        Self(Ok(serde_json::Value::Null))
    }

    /// About the number of bytes of the list's JSON text (an upper estimate for lists of
    /// strings), for sizing a statement that writes many values.
    pub(crate) fn bound_len(&self) -> usize {
        fn len(v: &serde_json::Value) -> usize {
            match v {
                serde_json::Value::Null | serde_json::Value::Bool(_) => 5,
                serde_json::Value::Number(_) => 24,
                // Quotes, and escapes at worst six bytes per control character: counted at
                // twice the length, the usual text is well over-estimated.
                serde_json::Value::String(s) => 2 + 2 * s.len(),
                serde_json::Value::Array(items) => {
                    2 + items.iter().map(|i| 1 + len(i)).sum::<usize>()
                }
                serde_json::Value::Object(map) => {
                    2 + map
                        .iter()
                        .map(|(k, v)| 4 + 2 * k.len() + len(v))
                        .sum::<usize>()
                }
            }
        }
        self.0.as_ref().map_or(0, len)
    }

    /// True for JSON `null`.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self.0, Ok(serde_json::Value::Null))
    }

    /// The stored JSON.
    ///
    /// # Errors
    /// The error of a list that could not be encrypted.
    pub fn value(&self) -> Result<&serde_json::Value, Error> {
        self.0.as_ref().map_err(|e| (**e).clone())
    }
}

impl<DB> ToSql<diesel::sql_types::Json, DB> for EncryptedList
where
    DB: Backend,
    serde_json::Value: ToSql<diesel::sql_types::Json, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        match &self.0 {
            Ok(v) => <serde_json::Value as ToSql<diesel::sql_types::Json, DB>>::to_sql(v, out),
            Err(e) => Err(Box::new((**e).clone())),
        }
    }
}

impl<DB> ToSql<diesel::sql_types::Jsonb, DB> for EncryptedList
where
    DB: Backend,
    serde_json::Value: ToSql<diesel::sql_types::Jsonb, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        match &self.0 {
            Ok(v) => <serde_json::Value as ToSql<diesel::sql_types::Jsonb, DB>>::to_sql(v, out),
            Err(e) => Err(Box::new((**e).clone())),
        }
    }
}

impl<DB> FromSql<diesel::sql_types::Json, DB> for EncryptedList
where
    DB: Backend,
    serde_json::Value: FromSql<diesel::sql_types::Json, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<diesel::sql_types::Json, DB>>::from_sql(bytes).map(Self::new)
    }
}

impl<DB> FromSql<diesel::sql_types::Jsonb, DB> for EncryptedList
where
    DB: Backend,
    serde_json::Value: FromSql<diesel::sql_types::Jsonb, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<diesel::sql_types::Jsonb, DB>>::from_sql(bytes).map(Self::new)
    }
}

/// The record field type of an `#[encrypt]` field whose column is neither text, binary nor
/// JSON. It satisfies the Diesel traits the record needs, so that the only error the compiler
/// reports for such a model is the one naming the column's type (`CheckColumn`); it can never
/// be written or read.
pub struct Refused<ST>(std::marker::PhantomData<fn() -> ST>);

impl<ST> fmt::Debug for Refused<ST> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Refused")
    }
}

impl<ST> Refused<ST> {
    pub(crate) fn new() -> Self {
        Self(std::marker::PhantomData)
    }

    fn error() -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(Error::Storage(
            "an #[encrypt] field's column must be text, binary or JSON".into(),
        ))
    }
}

impl<ST> diesel::expression::AsExpression<ST> for Refused<ST>
where
    ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType,
{
    type Expression = diesel::internal::derives::as_expression::Bound<ST, Self>;
    fn as_expression(self) -> Self::Expression {
        diesel::internal::derives::as_expression::Bound::new(self)
    }
}

impl<ST> diesel::expression::AsExpression<ST> for &Refused<ST>
where
    ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType,
{
    type Expression = diesel::internal::derives::as_expression::Bound<ST, Self>;
    fn as_expression(self) -> Self::Expression {
        diesel::internal::derives::as_expression::Bound::new(self)
    }
}

impl<ST> diesel::expression::AsExpression<diesel::sql_types::Nullable<ST>> for Refused<ST>
where
    ST: diesel::sql_types::SqlType<IsNull = diesel::sql_types::is_nullable::NotNull>
        + diesel::sql_types::SingleValue,
{
    type Expression =
        diesel::internal::derives::as_expression::Bound<diesel::sql_types::Nullable<ST>, Self>;
    fn as_expression(self) -> Self::Expression {
        diesel::internal::derives::as_expression::Bound::new(self)
    }
}

impl<ST> diesel::expression::AsExpression<diesel::sql_types::Nullable<ST>> for &Refused<ST>
where
    ST: diesel::sql_types::SqlType<IsNull = diesel::sql_types::is_nullable::NotNull>
        + diesel::sql_types::SingleValue,
{
    type Expression =
        diesel::internal::derives::as_expression::Bound<diesel::sql_types::Nullable<ST>, Self>;
    fn as_expression(self) -> Self::Expression {
        diesel::internal::derives::as_expression::Bound::new(self)
    }
}

impl<ST, DB: Backend> ToSql<ST, DB> for Refused<ST> {
    fn to_sql<'b>(&'b self, _: &mut Output<'b, '_, DB>) -> serialize::Result {
        Err(Self::error())
    }
}

impl<ST, DB: Backend> ToSql<diesel::sql_types::Nullable<ST>, DB> for Refused<ST>
where
    ST: diesel::sql_types::SqlType,
{
    fn to_sql<'b>(&'b self, _: &mut Output<'b, '_, DB>) -> serialize::Result {
        Err(Self::error())
    }
}

impl<ST, DB: Backend> FromSql<ST, DB> for Refused<ST> {
    fn from_sql(_: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Err(Self::error())
    }
}

impl<ST, DB> diesel::deserialize::Queryable<ST, DB> for Refused<ST>
where
    DB: Backend,
    ST: diesel::sql_types::SingleValue,
    Self: FromSql<ST, DB>,
{
    type Row = Self;
    fn build(row: Self) -> deserialize::Result<Self> {
        Ok(row)
    }
}

/// The impls are generic; these run them through SQLite (the server backends run the same impls
/// in `tests/`): good bytes, bad bytes, NULL, and a failed value.
#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use diesel::dsl::sql;
    use diesel::prelude::*;
    use diesel::sql_types::{Binary, Nullable, Text};

    use super::Encrypted;

    const STORED: &[u8] = b"k8s:enc:aesgcm:v1:k1:\x00\x01\xfe";

    fn conn() -> SqliteConnection {
        SqliteConnection::establish(":memory:").expect("SQLite")
    }

    #[test]
    fn text_column_holds_standard_base64() {
        let mut c = conn();
        let value = Encrypted::sealed(STORED.to_vec(), false);
        let text: String = diesel::select(value.into_sql::<Text>())
            .get_result(&mut c)
            .expect("bind");
        assert_eq!(text, encrypted_core::encode_base64(STORED));
        let back: Encrypted = diesel::select(text.into_sql::<Text>())
            .get_result(&mut c)
            .expect("load");
        assert_eq!(back.stored(false).expect("decode").as_ref(), STORED);
    }

    #[test]
    fn binary_column_holds_raw_bytes_or_forced_base64() {
        let mut c = conn();
        let raw: Vec<u8> =
            diesel::select(Encrypted::sealed(STORED.to_vec(), false).into_sql::<Binary>())
                .get_result(&mut c)
                .expect("bind");
        assert_eq!(raw, STORED);
        let forced: Vec<u8> =
            diesel::select(Encrypted::sealed(STORED.to_vec(), true).into_sql::<Binary>())
                .get_result(&mut c)
                .expect("bind");
        assert_eq!(forced, encrypted_core::encode_base64(STORED).into_bytes());
        let back: Encrypted = diesel::select(forced.into_sql::<Binary>())
            .get_result(&mut c)
            .expect("load");
        assert_eq!(back.stored(true).expect("decode").as_ref(), STORED);
    }

    #[test]
    fn bad_base64_is_an_encoding_error_without_the_text() {
        let mut c = conn();
        let back: Encrypted = diesel::select("secret-plaintext!".into_sql::<Text>())
            .get_result(&mut c)
            .expect("load");
        let e = back.stored(false).expect_err("not base64");
        assert!(matches!(e, encrypted_core::Error::Encoding(_)));
        assert!(!format!("{e} {e:?}").contains("secret"));
        let back: Encrypted = diesel::select(vec![0xffu8, 0].into_sql::<Binary>())
            .get_result(&mut c)
            .expect("load");
        assert!(
            back.stored(true).is_err(),
            "forced base64 of non-ASCII bytes"
        );
    }

    /// A loaded record moves its values several times on the way to the model, so they must
    /// stay small: the failure variants are boxed (152 bytes each before, which showed up as
    /// `memmove` in load profiles).
    #[test]
    fn values_stay_small() {
        assert!(
            size_of::<Encrypted>() <= 64,
            "Encrypted grew to {} bytes",
            size_of::<Encrypted>()
        );
    }

    #[test]
    fn null_stays_null() {
        let mut c = conn();
        let none: Option<Encrypted> = diesel::select(sql::<Nullable<Text>>("NULL"))
            .get_result(&mut c)
            .expect("load");
        assert!(none.is_none());
        let none: Option<Encrypted> = diesel::select(sql::<Nullable<Binary>>("NULL"))
            .get_result(&mut c)
            .expect("load");
        assert!(none.is_none());
        let bound: Option<String> = diesel::select(None::<Encrypted>.into_sql::<Nullable<Text>>())
            .get_result(&mut c)
            .expect("bind");
        assert_eq!(bound, None);
    }

    #[test]
    fn a_failed_value_is_a_serialization_error() {
        let mut c = conn();
        let failed = Encrypted::failed(crate::Error::NoKeyring);
        let e = diesel::select(failed.into_sql::<Text>())
            .get_result::<String>(&mut c)
            .expect_err("must not bind");
        match e {
            diesel::result::Error::SerializationError(e) => {
                assert!(matches!(
                    e.downcast_ref::<crate::Error>(),
                    Some(crate::Error::NoKeyring)
                ));
            }
            other => panic!("expected a serialization error, found {other:?}"),
        }
    }
}
