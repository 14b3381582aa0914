//! Support for the code `#[derive(Encrypted)]` generates. Not a public API.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

pub use diesel;
pub use encrypted_core::ResourceKeyring;

pub use crate::Error;
pub use crate::hash::Normalize;
pub use crate::keys::{Keys, current};
pub use crate::load::Model;
pub use crate::value::Encrypted;

/// A field type `#[encrypt]` can store without `json`.
#[diagnostic::on_unimplemented(
    message = "`#[encrypt]` cannot store a `{Self}` field",
    label = "expected `String`, `Vec<u8>` or an `Option` of them",
    note = "for a serde type, write `#[encrypt(json)]`"
)]
pub trait Plain: Sized {
    /// What a query helper takes (`str` for `String`).
    type Borrowed: ?Sized;
    /// The text a hash column is computed from.
    fn hash_borrowed(value: &Self::Borrowed, normalize: Normalize) -> Cow<'_, [u8]>;
    /// The plaintext bytes.
    fn plain(&self) -> &[u8];
    /// Back from decrypted bytes.
    ///
    /// # Errors
    /// [`Error::InvalidUtf8`] for a `String` that is not UTF-8.
    fn from_plain(bytes: Vec<u8>, model: &'static str, field: &'static str) -> Result<Self, Error>;
    /// The text a hash column is computed from.
    fn hash_input(&self, normalize: Normalize) -> Cow<'_, [u8]>;
}

impl Plain for String {
    type Borrowed = str;
    fn hash_borrowed(value: &str, normalize: Normalize) -> Cow<'_, [u8]> {
        match normalize.apply(value) {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        }
    }
    fn plain(&self) -> &[u8] {
        self.as_bytes()
    }
    fn from_plain(bytes: Vec<u8>, model: &'static str, field: &'static str) -> Result<Self, Error> {
        String::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 { model, field })
    }
    fn hash_input(&self, normalize: Normalize) -> Cow<'_, [u8]> {
        Self::hash_borrowed(self, normalize)
    }
}

impl Plain for Vec<u8> {
    type Borrowed = [u8];
    fn hash_borrowed(value: &[u8], _: Normalize) -> Cow<'_, [u8]> {
        Cow::Borrowed(value)
    }
    fn plain(&self) -> &[u8] {
        self
    }
    fn from_plain(bytes: Vec<u8>, _: &'static str, _: &'static str) -> Result<Self, Error> {
        Ok(bytes)
    }
    fn hash_input(&self, _: Normalize) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

/// A value that can appear in an AAD template.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used in an aad template",
    label = "expected a string, an integer, a bool or an `Option` of them"
)]
pub trait AadPart {
    /// Appends the value's text.
    fn push_to(&self, aad: &mut String);
}

macro_rules! aad_display {
    ($($t:ty),*) => {$(
        impl AadPart for $t {
            fn push_to(&self, aad: &mut String) {
                let _ = write!(aad, "{self}");
            }
        }
    )*};
}
aad_display!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128, bool, char);

impl AadPart for str {
    fn push_to(&self, aad: &mut String) {
        aad.push_str(self);
    }
}
impl AadPart for String {
    fn push_to(&self, aad: &mut String) {
        aad.push_str(self);
    }
}
impl<T: AadPart + ?Sized> AadPart for &T {
    fn push_to(&self, aad: &mut String) {
        (**self).push_to(aad);
    }
}
impl<T: AadPart> AadPart for Option<T> {
    fn push_to(&self, aad: &mut String) {
        if let Some(v) = self {
            v.push_to(aad);
        }
    }
}

/// Appends a template value.
pub fn push_aad<T: AadPart + ?Sized>(aad: &mut String, value: &T) {
    value.push_to(aad);
}

/// The keys and the resource's chain for one row.
pub type Row = (Arc<Keys>, Arc<ResourceKeyring>);

/// Looks up the keys in effect and the model's resource.
///
/// # Errors
/// [`Error::NoKeyring`], [`Error::Resource`].
pub fn row(model: &'static str, resource: &str) -> Result<Row, Error> {
    let keys = current()?;
    let ring = keys.resource(model, resource)?;
    Ok((keys, ring))
}

/// Encrypts plaintext; failures are carried by the returned value. A value bound for a text
/// column (or forced to base64) is base64-encoded here too, so that work happens on the thread
/// that encrypts (see `encrypt_chunks`) rather than when the value is bound.
#[must_use]
pub fn seal<P: AsRef<[u8]>>(
    row: &Result<Row, Error>,
    plain: Result<P, Error>,
    aad: &str,
    base64: bool,
    binary_column: bool,
    model: &'static str,
    field: &'static str,
) -> Encrypted {
    let result = row.as_ref().map_err(Clone::clone).and_then(|(_, ring)| {
        ring.encrypt(plain?.as_ref(), aad.as_bytes())
            .map_err(|source| Error::Crypto {
                model,
                field,
                source: Box::new(source),
            })
    });
    match result {
        Ok(stored) if base64 || !binary_column => Encrypted::sealed(stored, base64).with_text(),
        Ok(stored) => Encrypted::sealed(stored, base64),
        Err(e) => Encrypted::failed(e),
    }
}

/// Decrypts a stored value (or takes it as is for a legacy row whose flag is false).
///
/// # Errors
/// [`Error::Crypto`] when the keyring cannot read it.
pub fn open(
    ring: &ResourceKeyring,
    value: Encrypted,
    aad: &str,
    base64: bool,
    legacy: bool,
    model: &'static str,
    field: &'static str,
) -> Result<Vec<u8>, Error> {
    if legacy {
        return Ok(value.into_raw());
    }
    let crypto = |source| Error::Crypto {
        model,
        field,
        source: Box::new(source),
    };
    let stored = value.into_stored(base64).map_err(crypto)?;
    ring.decrypt_owned(stored, aad.as_bytes()).map_err(crypto)
}

/// Plaintext of a `String`/`Vec<u8>` field.
pub fn plain<T: Plain>(value: &T) -> Result<&[u8], Error> {
    Ok(value.plain())
}

/// JSON plaintext of a `#[encrypt(json)]` field.
///
/// # Errors
/// [`Error::Json`] when serialization fails.
pub fn json_plain<T: serde::Serialize + ?Sized>(
    value: &T,
    model: &'static str,
    field: &'static str,
) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::json(model, field, &e))
}

/// Back from decrypted bytes.
///
/// # Errors
/// As [`Plain::from_plain`].
pub fn from_plain<T: Plain>(
    bytes: Vec<u8>,
    model: &'static str,
    field: &'static str,
) -> Result<T, Error> {
    T::from_plain(bytes, model, field)
}

/// A `#[encrypt(json)]` field back from decrypted JSON.
///
/// # Errors
/// [`Error::Json`].
pub fn from_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    model: &'static str,
    field: &'static str,
) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::json(model, field, &e))
}

/// A SHA-256 lookup hash.
#[must_use]
pub fn hash_sha256<T: Plain>(value: &T, normalize: Normalize) -> String {
    crate::hash::sha256_hex(&value.hash_input(normalize))
}

/// An HMAC lookup hash.
///
/// # Errors
/// [`Error::NoLookupKey`] when the keys have none; [`Error::NoKeyring`].
pub fn hash_hmac<T: Plain>(
    keys: Option<&Keys>,
    value: &T,
    normalize: Normalize,
    resource: &str,
    column: &str,
    model: &'static str,
    field: &'static str,
) -> Result<String, Error> {
    let owned;
    let keys = match keys {
        Some(k) => k,
        None => {
            owned = current()?;
            &owned
        }
    };
    let key = keys.hmac_key().ok_or(Error::NoLookupKey { model, field })?;
    Ok(crate::hash::hmac_hex(
        key,
        resource,
        column,
        &value.hash_input(normalize),
    ))
}

/// Converts an error for `Queryable::build`.
#[must_use]
pub fn deserialize_error(e: Error) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

/// A SHA-256 lookup hash for a query helper.
#[must_use]
pub fn hash_sha256_borrowed<T: Plain>(value: &T::Borrowed, normalize: Normalize) -> String {
    crate::hash::sha256_hex(&T::hash_borrowed(value, normalize))
}

/// An HMAC lookup hash for a query helper, with the keys in effect.
///
/// # Errors
/// [`Error::NoKeyring`], [`Error::NoLookupKey`].
pub fn hash_hmac_borrowed<T: Plain>(
    value: &T::Borrowed,
    normalize: Normalize,
    resource: &str,
    column: &str,
    model: &'static str,
    field: &'static str,
) -> Result<String, Error> {
    let keys = current()?;
    let key = keys.hmac_key().ok_or(Error::NoLookupKey { model, field })?;
    Ok(crate::hash::hmac_hex(
        key,
        resource,
        column,
        &T::hash_borrowed(value, normalize),
    ))
}

/// The SQL types an `#[encrypt]` column may have.
#[diagnostic::on_unimplemented(
    message = "`#[encrypt]` needs a text or binary column, but this column is `{Self}`",
    label = "the diesel::table! column for this field is `{Self}`",
    note = "declare the column `Text` or `Binary` (`Nullable<_>` for an `Option` field) in \
            diesel::table!, or remove `#[encrypt]`"
)]
pub trait EncryptableColumn {}

impl EncryptableColumn for diesel::sql_types::Text {}
impl EncryptableColumn for diesel::sql_types::Binary {}
impl<T: EncryptableColumn + diesel::sql_types::SqlType> EncryptableColumn
    for diesel::sql_types::Nullable<T>
{
}

/// Compile-time check that an encrypted field's column is text or binary: the generated code
/// declares a constant of this type for each encrypted column.
#[derive(Debug)]
pub struct CheckColumn<T: EncryptableColumn>(std::marker::PhantomData<T>);

impl<T: EncryptableColumn> CheckColumn<T> {
    /// The only value.
    pub const OK: Self = CheckColumn(std::marker::PhantomData);
}

pub use crate::rewrap::{Column, Inspected, Rewrap, StoredValue, ValueState};

/// What inspecting a row found so far.
#[derive(Debug, Default)]
pub struct InspectState {
    /// A value is stale or plaintext.
    pub needs_rewrap: bool,
    /// A value could not be read.
    pub failed: bool,
}

/// Reads one stored value for [`Rewrap::inspect`]: records its state and returns its plaintext
/// (`None` for NULL or an unreadable value).
#[allow(clippy::too_many_arguments, reason = "generated call sites")]
pub fn inspect_value(
    ring: &ResourceKeyring,
    value: Option<&Encrypted>,
    aad: &str,
    base64: bool,
    legacy: bool,
    model: &'static str,
    column: &'static str,
    values: &mut Vec<StoredValue>,
    state: &mut InspectState,
) -> Option<Vec<u8>> {
    let value = value?;
    if legacy {
        state.needs_rewrap = true;
        values.push(StoredValue {
            column,
            state: ValueState::Plaintext,
        });
        return Some(value.raw().into_owned());
    }
    let crypto = |source| Error::Crypto {
        model,
        field: column,
        source: Box::new(source),
    };
    let read = value
        .stored(base64)
        .map_err(crypto)
        .and_then(|stored| ring.decrypt(&stored, aad.as_bytes()).map_err(crypto));
    match read {
        Ok(d) => {
            let s = if d.key.provider == encrypted_core::ProviderKind::Identity {
                ValueState::Plaintext
            } else if d.stale {
                ValueState::Stale(d.key)
            } else {
                ValueState::Current(d.key)
            };
            if !matches!(s, ValueState::Current(_)) {
                state.needs_rewrap = true;
            }
            values.push(StoredValue { column, state: s });
            Some(d.plaintext)
        }
        Err(e) => {
            state.failed = true;
            values.push(StoredValue {
                column,
                state: ValueState::Undecryptable(e),
            });
            None
        }
    }
}

/// Re-encrypts a plaintext read by [`inspect_value`].
///
/// # Errors
/// [`Error::Crypto`].
pub fn reseal(
    ring: &ResourceKeyring,
    plain: &[u8],
    aad: &str,
    base64: bool,
    model: &'static str,
    field: &'static str,
) -> Result<Encrypted, Error> {
    ring.encrypt(plain, aad.as_bytes())
        .map(|stored| Encrypted::sealed(stored, base64))
        .map_err(|source| Error::Crypto {
            model,
            field,
            source: Box::new(source),
        })
}

/// Whether an encrypted column binds as bytes.
pub trait ColumnKind {
    /// True for `Binary`.
    const BINARY: bool;
    /// True for `Nullable<_>`.
    const NULLABLE: bool;
}
impl ColumnKind for diesel::sql_types::Text {
    const BINARY: bool = false;
    const NULLABLE: bool = false;
}
impl ColumnKind for diesel::sql_types::Binary {
    const BINARY: bool = true;
    const NULLABLE: bool = false;
}
impl<T: ColumnKind + diesel::sql_types::SqlType> ColumnKind for diesel::sql_types::Nullable<T> {
    const BINARY: bool = T::BINARY;
    const NULLABLE: bool = true;
}
