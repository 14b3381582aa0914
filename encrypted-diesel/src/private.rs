//! Support for the code `#[derive(Encrypted)]` generates. Not a public API.
//!
//! The generated code describes each encrypted field with a [`Spec`] (and each hash column with
//! a [`HashSpec`]) and calls the functions here to seal, open and hash values, so the rules —
//! empty values, legacy plaintext, wrappers, lists, resources that are not configured — live in
//! one place and are tested once.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

pub use diesel;
#[cfg(feature = "async")]
pub use diesel_async;
pub use encrypted_core::ResourceKeyring;

pub use crate::Error;
pub use crate::hash::Normalize;
pub use crate::keys::{Keys, current};
pub use crate::load::Model;
pub use crate::value::{Encrypted, EncryptedList, Refused};

/// The stored form of every encrypted value starts with this (before base64).
pub(crate) const ENC_PREFIX: &[u8] = b"k8s:enc:";

/// A field type `#[encrypt]` can store without `json`.
#[diagnostic::on_unimplemented(
    message = "`#[encrypt]` cannot store a `{Self}` field",
    label = "expected `String`, `Vec<u8>` or an `Option` of them",
    note = "for a serde type, write `#[encrypt(json)]`"
)]
pub trait Plain: Sized {
    /// True for text (normalisation applies to its hash).
    const TEXT: bool;
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
    fn hash_input(&self, normalize: Normalize) -> Cow<'_, [u8]> {
        Self::hash_borrowed(self.borrowed(), normalize)
    }
    /// The value as a query helper takes it.
    fn borrowed(&self) -> &Self::Borrowed;
}

impl Plain for String {
    const TEXT: bool = true;
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
    fn borrowed(&self) -> &str {
        self
    }
}

impl Plain for Vec<u8> {
    const TEXT: bool = false;
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
    fn borrowed(&self) -> &[u8] {
        self
    }
}

/// A value that can appear in an AAD template.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used in an aad template",
    label = "expected a string, an integer, a bool or an `Option` of them"
)]
pub trait AadPart {
    /// Appends the value's text (`None` appends nothing, as Go reads a NULL string as "").
    fn push_to(&self, aad: &mut String);
    /// False for a key that has not been assigned yet: an integer 0 or `None` (a key the
    /// database generates on insert is not known when the values are sealed).
    fn assigned(&self) -> bool {
        true
    }
}

macro_rules! aad_display {
    ($($t:ty),*) => {$(
        impl AadPart for $t {
            fn push_to(&self, aad: &mut String) {
                let _ = write!(aad, "{self}");
            }
            #[allow(clippy::default_numeric_fallback, reason = "generated for every integer type")]
            fn assigned(&self) -> bool {
                *self != 0
            }
        }
    )*};
}
aad_display!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128);

impl AadPart for bool {
    fn push_to(&self, aad: &mut String) {
        let _ = write!(aad, "{self}");
    }
}
impl AadPart for char {
    fn push_to(&self, aad: &mut String) {
        aad.push(*self);
    }
}
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
    fn assigned(&self) -> bool {
        (**self).assigned()
    }
}
impl<T: AadPart> AadPart for Option<T> {
    fn push_to(&self, aad: &mut String) {
        if let Some(v) = self {
            v.push_to(aad);
        }
    }
    fn assigned(&self) -> bool {
        self.as_ref().is_some_and(AadPart::assigned)
    }
}

/// Appends a template value.
pub fn push_aad<T: AadPart + ?Sized>(aad: &mut String, value: &T) {
    value.push_to(aad);
}

/// Appends a key field's value when sealing: a key that is not assigned yet (0 or `None`) is
/// [`Error::UnassignedKey`], never a context that later reads cannot rebuild.
///
/// # Errors
/// [`Error::UnassignedKey`].
pub fn push_aad_key<T: AadPart + ?Sized>(
    aad: &mut String,
    value: &T,
    model: &'static str,
    field: &'static str,
) -> Result<(), Error> {
    if !value.assigned() {
        return Err(Error::UnassignedKey { model, field });
    }
    value.push_to(aad);
    Ok(())
}

/// The keys in effect for one row: the keys and the resource's chain, or `None` when the
/// resource is not configured and the model keeps legacy rows by its `encrypted` flag (values
/// are then written in plaintext with the flag false, as Obot does).
#[derive(Debug, Clone)]
pub struct RowKeys {
    /// The keys in effect.
    pub keys: Arc<Keys>,
    /// The resource's chain, when the configuration lists the resource (or its fallback).
    pub ring: Option<Arc<ResourceKeyring>>,
}

/// What sealing and opening a row needs, or why it cannot be had.
pub type Row = RowKeys;

/// Looks up the keys in effect and the model's resource (else its fallback resource). A model
/// with a flag column whose resources are both unlisted gets `ring: None`.
///
/// # Errors
/// [`Error::NoKeyring`], [`Error::Resource`].
pub fn row_keys(
    model: &'static str,
    resource: &str,
    fallback: Option<&str>,
    flagged: bool,
) -> Result<RowKeys, Error> {
    let keys = current()?;
    let ring = resource_ring(&keys, model, resource, fallback, flagged)?;
    Ok(RowKeys { keys, ring })
}

/// The chain of `resource` (else `fallback`); `None` for a flagged model whose resources are
/// not configured.
///
/// # Errors
/// [`Error::Resource`].
pub fn resource_ring(
    keys: &Keys,
    model: &'static str,
    resource: &str,
    fallback: Option<&str>,
    flagged: bool,
) -> Result<Option<Arc<ResourceKeyring>>, Error> {
    let not_configured = |e: &encrypted_core::Error| {
        matches!(e, encrypted_core::Error::ResourceNotConfigured { .. })
    };
    match keys.keyring().resource(resource) {
        Ok(ring) => return Ok(Some(ring)),
        Err(e) if !not_configured(&e) || fallback.is_none() && !flagged => {
            return Err(Error::Resource {
                model,
                source: Box::new(e),
            });
        }
        Err(_) => {}
    }
    if let Some(fallback) = fallback {
        match keys.keyring().resource(fallback) {
            Ok(ring) => return Ok(Some(ring)),
            Err(e) if !not_configured(&e) || !flagged => {
                return Err(Error::Resource {
                    model,
                    source: Box::new(e),
                });
            }
            Err(_) => {}
        }
    }
    Ok(None)
}

/// How one encrypted field is stored.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The model type.
    pub model: &'static str,
    /// The field.
    pub field: &'static str,
    /// The column.
    pub column: &'static str,
    /// The column is `Binary` (raw bytes, unless `base64`).
    pub binary_column: bool,
    /// `#[encrypt(base64)]`: a binary column holds ASCII base64.
    pub base64: bool,
    /// `#[encrypt(wrap = "key")]`: a text column holds `{"key":"<base64>"}`.
    pub wrap: Option<&'static str>,
    /// `#[encrypt(skip_empty)]`: an empty value is stored as it is.
    pub skip_empty: bool,
    /// The model has an `encrypted` flag column: rows with the flag false hold plaintext, and
    /// rows with it true hold base64 of the transformer output (also `identity`'s, as Obot
    /// writes). Without a flag a text value that is not encrypted is legacy raw text.
    pub flagged: bool,
}

impl Spec {
    /// Whether the column holds text (base64, a wrapper, or legacy raw text) rather than raw
    /// transformer output.
    #[must_use]
    pub const fn text(&self) -> bool {
        !self.binary_column || self.base64
    }

    pub(crate) fn crypto(&self, source: encrypted_core::Error) -> Error {
        Error::Crypto {
            model: self.model,
            field: self.field,
            source: Box::new(source),
        }
    }

    fn not_configured(&self, resource: &str) -> Error {
        self.crypto(encrypted_core::Error::ResourceNotConfigured {
            resource: resource.to_owned(),
        })
    }
}

/// Whether the chain reads plaintext (has an `identity` provider).
pub(crate) fn reads_plaintext(ring: &ResourceKeyring) -> bool {
    ring.keys()
        .any(|k| k.provider == encrypted_core::ProviderKind::Identity)
}

/// What sealing produced for the flag column: false when the resource is not configured and
/// the values were written in plaintext.
#[must_use]
pub fn sealed_flag(row: &Result<Row, Error>) -> bool {
    !matches!(row, Ok(RowKeys { ring: None, .. }))
}

/// Encrypts plaintext; failures are carried by the returned value and reported when it is
/// bound. The base64 of a value bound for text is computed here, on the thread that encrypts
/// (see `encrypt_chunks`), rather than when the value is bound.
#[must_use]
pub fn seal<P: AsRef<[u8]>>(
    spec: &Spec,
    row: &Result<Row, Error>,
    plain: Result<P, Error>,
    aad: &Result<Cow<'_, str>, Error>,
) -> Encrypted {
    match seal_bytes(spec, row, plain.as_ref().map(AsRef::as_ref), aad) {
        Ok(Sealed::Stored(stored)) if spec.text() => Encrypted::sealed(stored, true).with_text(),
        Ok(Sealed::Stored(stored)) => Encrypted::sealed(stored, false),
        Ok(Sealed::Verbatim(bytes)) => Encrypted::verbatim(bytes),
        Err(e) => Encrypted::failed(e),
    }
}

/// A sealed value: transformer output, or the column's exact content.
enum Sealed {
    Stored(Vec<u8>),
    Verbatim(Vec<u8>),
}

fn seal_bytes(
    spec: &Spec,
    row: &Result<Row, Error>,
    plain: Result<&[u8], &Error>,
    aad: &Result<Cow<'_, str>, Error>,
) -> Result<Sealed, Error> {
    let row = row.as_ref().map_err(Clone::clone)?;
    let plain = plain.map_err(Clone::clone)?;
    let aad = aad.as_ref().map_err(Clone::clone)?;
    if spec.skip_empty && plain.is_empty() {
        return Ok(Sealed::Verbatim(Vec::new()));
    }
    let Some(ring) = &row.ring else {
        // Not configured (flagged models only): plaintext, with the flag false.
        return verbatim(spec, plain.to_vec());
    };
    let stored = ring
        .encrypt(plain, aad.as_bytes())
        .map_err(|e| spec.crypto(e))?;
    if !stored.starts_with(ENC_PREFIX) && !spec.flagged && spec.text() {
        // `identity` writes: without a flag, legacy text is raw text, so the plaintext is
        // stored as it is (base64 of it would read back as other text).
        return verbatim(spec, stored);
    }
    if let Some(key) = spec.wrap {
        let mut object = serde_json::Map::new();
        object.insert(
            key.to_owned(),
            serde_json::Value::String(encrypted_core::encode_base64(&stored)),
        );
        let text = serde_json::Value::Object(object).to_string();
        return Ok(Sealed::Verbatim(text.into_bytes()));
    }
    Ok(Sealed::Stored(stored))
}

fn verbatim(spec: &Spec, bytes: Vec<u8>) -> Result<Sealed, Error> {
    if !spec.binary_column && std::str::from_utf8(&bytes).is_err() {
        return Err(Error::Storage(
            format!(
                "{}.{}: a plaintext value for a text column must be UTF-8",
                spec.model, spec.field
            )
            .into(),
        ));
    }
    Ok(Sealed::Verbatim(bytes))
}

/// Where a stored value's plaintext comes from.
pub(crate) enum Route<'v> {
    /// The column's content is the plaintext (flag false, an empty skipped value, or legacy raw
    /// text read through `identity`).
    Plain(Cow<'v, [u8]>),
    /// Transformer output to decrypt.
    Decrypt(Cow<'v, [u8]>),
}

/// Decides how a stored value is read: the one place the legacy rules live.
///
/// - flag false: the column holds the plaintext as it is;
/// - `skip_empty` and an empty column: the empty plaintext;
/// - binary column: the raw transformer output (`identity` returns unprefixed bytes as they are);
/// - text (or `base64`) with a flag: base64 of the transformer output, always;
/// - text without a flag: base64 that decodes to `k8s:enc:`-prefixed bytes is decrypted; any
///   text that itself starts with `k8s:enc:` (unencoded transformer output) goes to the keyring
///   too; any other text is legacy raw text, which only an `identity` provider reads, as the
///   text itself. No configuration can turn such text into other text.
pub(crate) fn route<'v>(
    spec: &Spec,
    value: &'v Encrypted,
    ring: Option<&ResourceKeyring>,
    resource: &str,
    legacy: bool,
) -> Result<Route<'v>, Error> {
    if legacy {
        return Ok(Route::Plain(value.raw()));
    }
    if spec.skip_empty && value.is_empty_raw() {
        return Ok(Route::Plain(Cow::Borrowed(&[])));
    }
    let ring = ring.ok_or_else(|| spec.not_configured(resource))?;
    if !spec.text() {
        return Ok(Route::Decrypt(value.raw()));
    }
    let stored = match spec.wrap {
        Some(key) => unwrap_json(spec, &value.raw(), key).map(Cow::Owned),
        None => value.stored(true),
    };
    if spec.flagged {
        return stored.map(Route::Decrypt).map_err(|e| spec.crypto(e));
    }
    match stored {
        Ok(bytes) if bytes.starts_with(ENC_PREFIX) => Ok(Route::Decrypt(bytes)),
        // Transformer output stored without its base64 is never legacy text: the keyring
        // decides (an authentic value opens, anything else is an error, `identity` refuses it).
        _ if value.raw().starts_with(ENC_PREFIX) => Ok(Route::Decrypt(value.raw())),
        Ok(_) | Err(_) if reads_plaintext(ring) => Ok(Route::Plain(value.raw())),
        Ok(bytes) => Ok(Route::Decrypt(bytes)),
        Err(e) => Err(spec.crypto(e)),
    }
}

/// The base64 inside `{"key":"<base64>"}`, decoded.
fn unwrap_json(spec: &Spec, text: &[u8], key: &str) -> Result<Vec<u8>, encrypted_core::Error> {
    let not_wrapped = || encrypted_core::Error::Other {
        context: format!(
            "{}.{}: expected a JSON object with the single key {key:?} holding base64",
            spec.model, spec.field
        ),
        source: Arc::new(Error::Storage("not a wrapped value".into())),
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(text).map_err(|_| not_wrapped())?;
    match (object.len(), object.get(key)) {
        (1, Some(serde_json::Value::String(b64))) => encrypted_core::decode_base64(b64),
        _ => Err(not_wrapped()),
    }
}

/// Decrypts a stored value (or takes it as it is, as `route` decides).
///
/// # Errors
/// [`Error::Crypto`] when the keyring cannot read it.
pub fn open(
    spec: &Spec,
    row: &Row,
    resource: &str,
    value: Encrypted,
    aad: &str,
    legacy: bool,
) -> Result<Vec<u8>, Error> {
    let ring = row.ring.as_deref();
    let owned_route = match route(spec, &value, ring, resource, legacy)? {
        Route::Plain(p) => return Ok(p.into_owned()),
        Route::Decrypt(Cow::Owned(stored)) => Some(stored),
        Route::Decrypt(Cow::Borrowed(_)) => None,
    };
    let Some(ring) = ring else {
        return Err(spec.not_configured(resource));
    };
    // The value itself holds the stored bytes: decrypt them in place.
    let stored = match owned_route {
        Some(stored) => stored,
        None => value.into_stored(spec.text()).map_err(|e| spec.crypto(e))?,
    };
    ring.decrypt_owned(stored, aad.as_bytes())
        .map_err(|e| spec.crypto(e))
}

/// Seals each element of a list (`#[encrypt(each)]`): a JSON array of base64 strings, empty
/// elements kept as they are with `skip_empty`; plaintext strings when the resource is not
/// configured.
#[must_use]
pub fn seal_each<T: AsRef<str>>(
    spec: &Spec,
    row: &Result<Row, Error>,
    items: &[T],
    aad: &Result<Cow<'_, str>, Error>,
) -> EncryptedList {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match seal_bytes(spec, row, Ok(item.as_ref().as_bytes()), aad) {
            Ok(Sealed::Stored(stored)) => out.push(serde_json::Value::String(
                encrypted_core::encode_base64(&stored),
            )),
            Ok(Sealed::Verbatim(bytes)) => match String::from_utf8(bytes) {
                Ok(s) => out.push(serde_json::Value::String(s)),
                Err(_) => {
                    return EncryptedList::failed(Error::InvalidUtf8 {
                        model: spec.model,
                        field: spec.field,
                    });
                }
            },
            Err(e) => return EncryptedList::failed(e),
        }
    }
    EncryptedList::new(serde_json::Value::Array(out))
}

/// The stored elements of a list column as text values, or why the column is not a JSON array
/// of strings.
pub(crate) fn list_items(spec: &Spec, list: &EncryptedList) -> Result<Vec<Encrypted>, Error> {
    let not_list = || {
        Error::Storage(
            format!(
                "{}.{}: expected a JSON array of strings",
                spec.model, spec.field
            )
            .into(),
        )
    };
    match list.value()? {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                serde_json::Value::String(s) => Ok(Encrypted::from_text(s.as_bytes())),
                _ => Err(not_list()),
            })
            .collect(),
        serde_json::Value::Null => Ok(Vec::new()),
        _ => Err(not_list()),
    }
}

/// Opens each element of a list column.
///
/// # Errors
/// [`Error::Crypto`] for an element the keyring cannot read; [`Error::Storage`] for a column
/// that is not a JSON array of strings; [`Error::InvalidUtf8`].
pub fn open_each(
    spec: &Spec,
    row: &Row,
    resource: &str,
    list: EncryptedList,
    aad: &str,
    legacy: bool,
) -> Result<Vec<String>, Error> {
    list_items(spec, &list)?
        .into_iter()
        .map(|item| {
            let bytes = open(spec, row, resource, item, aad, legacy)?;
            String::from_plain(bytes, spec.model, spec.field)
        })
        .collect()
}

/// Plaintext of a `String`/`Vec<u8>` field.
///
/// # Errors
/// Never; the signature matches [`json_plain`].
pub fn plain<T: Plain>(value: &T) -> Result<&[u8], Error> {
    Ok(value.plain())
}

/// A field type `#[encrypt(json)]` can store: any serde type.
///
/// One named bound, so that a type which is not serde gets one message at the field (with
/// `do_not_recommend`, rustc reports this trait rather than the serde trait behind it, and does
/// not list serde's implementors, which vary with the crates in the build).
#[diagnostic::on_unimplemented(
    message = "`#[encrypt(json)]` needs `{Self}` to implement `serde::Serialize` and `serde::Deserialize`",
    label = "not a serde type",
    note = "derive them on `{Self}` (`#[derive(serde::Serialize, serde::Deserialize)]`), or store a `String`/`Vec<u8>` without `json`"
)]
pub trait JsonField: serde::Serialize + serde::de::DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned> JsonField for T {}

/// JSON plaintext of a `#[encrypt(json)]` field.
///
/// # Errors
/// [`Error::Json`] when serialization fails.
pub fn json_plain<T: JsonField>(
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
pub fn from_json<T: JsonField>(
    bytes: &[u8],
    model: &'static str,
    field: &'static str,
) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::json(model, field, &e))
}

/// How one hash column is computed.
#[derive(Debug, Clone, Copy)]
pub struct HashSpec {
    /// The model type.
    pub model: &'static str,
    /// The field it hashes.
    pub field: &'static str,
    /// The hash column.
    pub column: &'static str,
    /// The model's resource (part of an HMAC's input).
    pub resource: &'static str,
    /// HMAC with the lookup keys rather than plain SHA-256.
    pub hmac: bool,
    /// The normalisation applied first.
    pub normalize: Normalize,
    /// An empty value leaves the column `''`.
    pub blank_if_empty: bool,
}

impl HashSpec {
    /// The hash of `value` with the current lookup key (plain SHA-256 without `hmac`); `''` for
    /// an empty value with `hash_empty = blank`.
    ///
    /// # Errors
    /// [`Error::NoLookupKey`] for an HMAC column without lookup keys.
    pub fn compute(&self, keys: Option<&Keys>, value: &[u8]) -> Result<String, Error> {
        if self.blank_if_empty && value.is_empty() {
            return Ok(String::new());
        }
        if !self.hmac {
            return Ok(crate::hash::sha256_hex(value));
        }
        let lookup = self.lookup(keys)?;
        Ok(lookup.current().hash(self.resource, self.column, value))
    }

    /// Every hash `value` may be stored under: one per active lookup key (the current first).
    ///
    /// # Errors
    /// [`Error::NoLookupKey`] for an HMAC column without lookup keys.
    pub fn candidates(&self, keys: Option<&Keys>, value: &[u8]) -> Result<Vec<String>, Error> {
        if self.blank_if_empty && value.is_empty() {
            return Ok(vec![String::new()]);
        }
        if !self.hmac {
            return Ok(vec![crate::hash::sha256_hex(value)]);
        }
        let lookup = self.lookup(keys)?;
        Ok(lookup
            .iter()
            .map(|k| k.hash(self.resource, self.column, value))
            .collect())
    }

    fn lookup<'k>(&self, keys: Option<&'k Keys>) -> Result<&'k crate::LookupKeys, Error> {
        keys.and_then(Keys::lookup_keys).ok_or(Error::NoLookupKey {
            model: self.model,
            field: self.field,
        })
    }
}

/// The hash of a field's value for its hash column (`None` for a NULL value).
///
/// # Errors
/// As [`HashSpec::compute`].
pub fn hash<T: Plain>(
    spec: &HashSpec,
    row: &Result<Row, Error>,
    value: Option<&T>,
) -> Result<Option<String>, Error> {
    let Some(value) = value else {
        return Ok(None);
    };
    let keys = match row {
        Ok(r) => Some(&*r.keys),
        Err(_) if !spec.hmac => None,
        Err(e) => return Err(e.clone()),
    };
    spec.compute(keys, &value.hash_input(spec.normalize))
        .map(Some)
}

/// The hashes a query helper looks for: one per active lookup key.
///
/// # Errors
/// [`Error::NoKeyring`], [`Error::NoLookupKey`].
pub fn lookup_hashes<T: Plain>(spec: &HashSpec, value: &T::Borrowed) -> Result<Vec<String>, Error> {
    let keys = if spec.hmac { Some(current()?) } else { None };
    spec.candidates(keys.as_deref(), &T::hash_borrowed(value, spec.normalize))
}

/// The hash a query helper compares with, under the current lookup key.
///
/// # Errors
/// [`Error::NoKeyring`], [`Error::NoLookupKey`].
pub fn lookup_hash<T: Plain>(spec: &HashSpec, value: &T::Borrowed) -> Result<String, Error> {
    let keys = if spec.hmac { Some(current()?) } else { None };
    spec.compute(keys.as_deref(), &T::hash_borrowed(value, spec.normalize))
}

/// Converts an error for `Queryable::build`.
#[must_use]
pub fn deserialize_error(e: Error) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
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

/// The SQL types an `#[encrypt(each)]` column may have.
#[diagnostic::on_unimplemented(
    message = "`#[encrypt(each)]` needs a JSON column, but this column is `{Self}`",
    label = "the diesel::table! column for this field is `{Self}`",
    note = "declare the column `Json` or `Jsonb` (`Nullable<_>` for an `Option` field)"
)]
pub trait ListColumn {}

impl ListColumn for diesel::sql_types::Json {}
impl ListColumn for diesel::sql_types::Jsonb {}
impl<T: ListColumn + diesel::sql_types::SqlType> ListColumn for diesel::sql_types::Nullable<T> {}

/// Compile-time check that an encrypted field's column is text or binary: the generated code
/// declares a constant of this type for each encrypted column.
#[derive(Debug)]
pub struct CheckColumn<T: EncryptableColumn>(std::marker::PhantomData<T>);

impl<T: EncryptableColumn> CheckColumn<T> {
    /// The only value.
    pub const OK: Self = CheckColumn(std::marker::PhantomData);
}

/// Compile-time check that an `each` field's column is JSON.
#[derive(Debug)]
pub struct CheckListColumn<T: ListColumn>(std::marker::PhantomData<T>);

impl<T: ListColumn> CheckListColumn<T> {
    /// The only value.
    pub const OK: Self = CheckListColumn(std::marker::PhantomData);
}

/// The record field type of an encrypted column, by the column's SQL type: [`Encrypted`] for
/// text and binary, [`EncryptedList`] for JSON, and [`Refused`] for anything else — which
/// compiles, so that a column of the wrong type is reported once, by [`CheckColumn`], rather
/// than by every Diesel trait the record needs.
pub trait StoredAs {
    /// The record field type.
    type Value: Slot;
}

impl StoredAs for diesel::sql_types::Text {
    type Value = Encrypted;
}
impl StoredAs for diesel::sql_types::Binary {
    type Value = Encrypted;
}
impl StoredAs for diesel::sql_types::Json {
    type Value = EncryptedList;
}
impl StoredAs for diesel::sql_types::Jsonb {
    type Value = EncryptedList;
}
impl<T: StoredAs + diesel::sql_types::SqlType> StoredAs for diesel::sql_types::Nullable<T> {
    type Value = T::Value;
}

macro_rules! refused {
    ($($t:ty),* $(,)?) => {$(
        impl StoredAs for $t {
            type Value = Refused<$t>;
        }
        impl ColumnKind for $t {
            const BINARY: bool = false;
            const NULLABLE: bool = false;
        }
    )*};
}
refused!(
    diesel::sql_types::Bool,
    diesel::sql_types::TinyInt,
    diesel::sql_types::SmallInt,
    diesel::sql_types::Integer,
    diesel::sql_types::BigInt,
    diesel::sql_types::Float,
    diesel::sql_types::Double,
    diesel::sql_types::Numeric,
    diesel::sql_types::Date,
    diesel::sql_types::Time,
    diesel::sql_types::Timestamp,
);
#[cfg(feature = "postgres")]
refused!(
    diesel::sql_types::Timestamptz,
    diesel::sql_types::Uuid,
    diesel::sql_types::Interval,
);

/// A record field holding a stored value: converts to and from what the generated code seals
/// and opens.
pub trait Slot: Sized {
    /// From a sealed single value.
    fn from_value(value: Encrypted) -> Self;
    /// From a sealed list.
    fn from_list(list: EncryptedList) -> Self;
    /// The stored single value.
    fn into_value(self) -> Encrypted;
    /// The stored list.
    fn into_list(self) -> EncryptedList;
    /// The stored single value, borrowed (`None` for another kind of column).
    fn as_value(&self) -> Option<&Encrypted>;
    /// The stored list, borrowed (`None` for another kind of column).
    fn as_list(&self) -> Option<&EncryptedList>;
    /// A list column holding JSON `null`.
    fn is_json_null(&self) -> bool {
        self.as_list().is_some_and(EncryptedList::is_null)
    }
    /// The stored value for the rotation engine.
    fn stored(&self) -> Option<crate::rotate::Stored<'_>> {
        match (self.as_value(), self.as_list()) {
            (Some(v), _) => Some(crate::rotate::Stored::Value(v)),
            (None, Some(l)) => Some(crate::rotate::Stored::List(l)),
            (None, None) => None,
        }
    }
}

/// The next re-encrypted value of a rewrite, for a NOT NULL column.
pub fn take_value<T: Slot>(
    values: &mut impl Iterator<Item = Option<crate::rotate::NewValue>>,
) -> T {
    take_optional(values).unwrap_or_else(|| {
        T::from_value(Encrypted::failed(Error::Storage(
            "a rewrite is missing a value".into(),
        )))
    })
}

/// The next re-encrypted value of a rewrite, for a nullable column.
pub fn take_optional<T: Slot>(
    values: &mut impl Iterator<Item = Option<crate::rotate::NewValue>>,
) -> Option<T> {
    match values.next().flatten()? {
        crate::rotate::NewValue::Value(v) => Some(T::from_value(v)),
        crate::rotate::NewValue::List(l) => Some(T::from_list(l)),
    }
}

/// A field type `#[encrypt(each)]` can store: a list of strings.
#[diagnostic::on_unimplemented(
    message = "`#[encrypt(each)]` cannot store a `{Self}` field",
    label = "expected `Vec<String>` or `Option<Vec<String>>`"
)]
pub trait Each: Sized {
    /// The elements.
    fn items(&self) -> &[String];
    /// Back from the elements.
    fn from_items(items: Vec<String>) -> Self;
}

impl Each for Vec<String> {
    fn items(&self) -> &[String] {
        self
    }
    fn from_items(items: Vec<String>) -> Self {
        items
    }
}

fn wrong_kind() -> Error {
    Error::Storage("a stored value of another kind of column".into())
}

impl Slot for Encrypted {
    fn from_value(value: Encrypted) -> Self {
        value
    }
    fn from_list(_: EncryptedList) -> Self {
        Encrypted::failed(wrong_kind())
    }
    fn into_value(self) -> Encrypted {
        self
    }
    fn into_list(self) -> EncryptedList {
        EncryptedList::failed(wrong_kind())
    }
    fn as_value(&self) -> Option<&Encrypted> {
        Some(self)
    }
    fn as_list(&self) -> Option<&EncryptedList> {
        None
    }
}

impl Slot for EncryptedList {
    fn from_value(_: Encrypted) -> Self {
        EncryptedList::failed(wrong_kind())
    }
    fn from_list(list: EncryptedList) -> Self {
        list
    }
    fn into_value(self) -> Encrypted {
        Encrypted::failed(wrong_kind())
    }
    fn into_list(self) -> EncryptedList {
        self
    }
    fn as_value(&self) -> Option<&Encrypted> {
        None
    }
    fn as_list(&self) -> Option<&EncryptedList> {
        Some(self)
    }
}

impl<ST> Slot for Refused<ST> {
    fn from_value(_: Encrypted) -> Self {
        Refused::new()
    }
    fn from_list(_: EncryptedList) -> Self {
        Refused::new()
    }
    fn into_value(self) -> Encrypted {
        Encrypted::failed(wrong_kind())
    }
    fn into_list(self) -> EncryptedList {
        EncryptedList::failed(wrong_kind())
    }
    fn as_value(&self) -> Option<&Encrypted> {
        None
    }
    fn as_list(&self) -> Option<&EncryptedList> {
        None
    }
}

/// The record field type of a hash column, by the column's SQL type (`String`, or
/// `Option<String>` for a nullable column).
pub trait HashSql {
    /// The record field type.
    type Value;
    /// From a computed hash: a NULL value leaves a NOT NULL column `''`.
    fn from_hash(hash: Option<String>) -> Self::Value;
    /// The stored hash (`None` for NULL).
    fn get(value: &Self::Value) -> Option<&str>;
}

impl HashSql for diesel::sql_types::Text {
    type Value = String;
    fn from_hash(hash: Option<String>) -> String {
        hash.unwrap_or_default()
    }
    fn get(value: &String) -> Option<&str> {
        Some(value)
    }
}

impl HashSql for diesel::sql_types::Nullable<diesel::sql_types::Text> {
    type Value = Option<String>;
    fn from_hash(hash: Option<String>) -> Option<String> {
        hash
    }
    fn get(value: &Option<String>) -> Option<&str> {
        value.as_deref()
    }
}

/// The record field type of the `encrypted` flag column, by its SQL type (`bool`, or
/// `Option<bool>` for a nullable column, as GORM creates Obot's): NULL reads as false.
pub trait FlagSql {
    /// The record field type.
    type Value: Clone;
    /// The stored flag (NULL is false).
    fn get(value: &Self::Value) -> bool;
    /// The value to store.
    fn from_bool(flag: bool) -> Self::Value;
}

impl FlagSql for diesel::sql_types::Bool {
    type Value = bool;
    fn get(value: &bool) -> bool {
        *value
    }
    fn from_bool(flag: bool) -> bool {
        flag
    }
}

impl FlagSql for diesel::sql_types::Nullable<diesel::sql_types::Bool> {
    type Value = Option<bool>;
    fn get(value: &Option<bool>) -> bool {
        value.unwrap_or(false)
    }
    fn from_bool(flag: bool) -> Option<bool> {
        Some(flag)
    }
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
impl ColumnKind for diesel::sql_types::Json {
    const BINARY: bool = false;
    const NULLABLE: bool = false;
}
impl ColumnKind for diesel::sql_types::Jsonb {
    const BINARY: bool = false;
    const NULLABLE: bool = false;
}
impl<T: ColumnKind + diesel::sql_types::SqlType> ColumnKind for diesel::sql_types::Nullable<T> {
    const BINARY: bool = T::BINARY;
    const NULLABLE: bool = true;
}

/// The number of bytes a value of a rotation rewrite sends when bound (at least; base64 text at
/// its length), for sizing a MySQL batch statement.
pub trait BoundLen {
    /// The number of bytes.
    fn bound_len(&self) -> usize;
}

impl BoundLen for Encrypted {
    fn bound_len(&self) -> usize {
        Encrypted::bound_len(self)
    }
}

impl BoundLen for EncryptedList {
    fn bound_len(&self) -> usize {
        EncryptedList::bound_len(self)
    }
}

impl<ST> BoundLen for Refused<ST> {
    fn bound_len(&self) -> usize {
        0
    }
}

impl BoundLen for String {
    fn bound_len(&self) -> usize {
        self.len()
    }
}

impl<T: BoundLen> BoundLen for Option<T> {
    fn bound_len(&self) -> usize {
        self.as_ref().map_or(0, BoundLen::bound_len)
    }
}

/// The most placeholders a MySQL prepared statement may have.
const MYSQL_MAX_PLACEHOLDERS: usize = 65_535;

/// The most value bytes one MySQL batch statement carries. A statement and its values travel in
/// one packet, which the server refuses above `max_allowed_packet` (4 MiB on MySQL 5.7, 16 MiB
/// on MariaDB, 64 MiB on MySQL 8 by default); 1 MiB stays well below each, and a batch of large
/// values (audit-log bodies) is split into several statements instead. A single larger row
/// goes alone, as it would in a statement of its own.
pub const MYSQL_BATCH_BYTES: usize = 1 << 20;

/// Each row's fixed cost in a MySQL batch statement besides its values: its placeholders'
/// text and their type and length headers (generously, so that many small rows stay small).
const MYSQL_ROW_OVERHEAD: usize = 64;

/// The statement a MySQL rotation writes a batch with: `UPDATE t AS __t JOIN (SELECT ? AS k_..,
/// ? AS n_.. UNION ALL SELECT ?, ? ..) AS __v ON <key> SET ..`, a derived table of one row per
/// written row, each matched to its row by the primary key (which the server looks up by its
/// index). Binary values are cast to `BINARY`: a driver that sends bytes as a string of the
/// connection's character set (`mysql_async`) would otherwise have them refused as text.
///
/// Not `INSERT .. ON DUPLICATE KEY UPDATE`: in strict mode its insert half fails on a NOT NULL
/// column without a default, which the statement does not set.
#[derive(Debug)]
pub struct MysqlBatch {
    head: String,
    first: String,
    next: String,
    tail: String,
    /// Placeholders per row.
    params: usize,
}

impl MysqlBatch {
    /// The statement of `table`, matching rows by the `keys` columns, setting the `sets`
    /// columns (name, binary) and `flag` to true.
    #[must_use]
    pub fn new(table: &str, keys: &[&str], sets: &[(&str, bool)], flag: Option<&str>) -> Self {
        fn ident(s: &str) -> String {
            format!("`{}`", s.replace('`', "``"))
        }
        let mut names = Vec::new();
        let mut values = Vec::new();
        let mut cond = Vec::new();
        for k in keys {
            let alias = ident(&format!("k_{k}"));
            cond.push(format!("__t.{} = __v.{alias}", ident(k)));
            names.push(alias);
            values.push("?");
        }
        let mut set = Vec::new();
        for (column, binary) in sets {
            let alias = ident(&format!("n_{column}"));
            set.push(format!("__t.{} = __v.{alias}", ident(column)));
            names.push(alias);
            values.push(if *binary { "CAST(? AS BINARY)" } else { "?" });
        }
        if let Some(flag) = flag {
            set.push(format!("__t.{} = TRUE", ident(flag)));
        }
        let first: Vec<String> = values
            .iter()
            .zip(&names)
            .map(|(v, n)| format!("{v} AS {n}"))
            .collect();
        Self {
            head: format!("UPDATE {} AS __t JOIN (", ident(table)),
            first: format!("SELECT {}", first.join(", ")),
            next: format!(" UNION ALL SELECT {}", values.join(", ")),
            tail: format!(") AS __v ON {} SET {}", cond.join(" AND "), set.join(", ")),
            params: names.len(),
        }
    }

    /// How many of `rows` (at least one, when there are any) the next statement writes: as many
    /// as fit under the placeholder limit and under `budget` bytes of values, `len` giving a
    /// row's.
    pub fn chunk<R>(&self, rows: &[R], budget: usize, len: impl Fn(&R) -> usize) -> usize {
        let most = (MYSQL_MAX_PLACEHOLDERS / self.params.max(1)).max(1);
        let mut bytes = 0usize;
        let mut take = 0;
        for row in rows.iter().take(most) {
            bytes = bytes.saturating_add(len(row).saturating_add(MYSQL_ROW_OVERHEAD));
            if take > 0 && bytes > budget {
                break;
            }
            take += 1;
        }
        take
    }

    /// The SQL text of the statement over `rows` rows.
    #[must_use]
    pub fn sql(&self, rows: usize) -> String {
        let mut sql = String::with_capacity(
            self.head.len()
                + self.first.len()
                + self.next.len() * rows.saturating_sub(1)
                + self.tail.len(),
        );
        sql.push_str(&self.head);
        sql.push_str(&self.first);
        for _ in 1..rows {
            sql.push_str(&self.next);
        }
        sql.push_str(&self.tail);
        sql
    }
}

#[cfg(test)]
mod mysql_batch_tests {
    use super::*;

    fn notes() -> MysqlBatch {
        MysqlBatch::new(
            "rot`notes",
            &["tenant", "slug"],
            &[("body", false), ("chart", true)],
            Some("encrypted"),
        )
    }

    #[test]
    fn chunks_respect_the_byte_budget_and_take_at_least_one_row() {
        let b = notes();
        let rows = [10usize, 10, 10, 2_000, 10];
        // 3 rows of 10 + 64 fit in 300 bytes, the 4th does not.
        assert_eq!(b.chunk(&rows, 300, |r| *r), 3);
        // A row above the budget goes alone.
        assert_eq!(b.chunk(&rows[3..], 300, |r| *r), 1);
        assert_eq!(b.chunk(&rows[4..], 300, |r| *r), 1);
        let none: [usize; 0] = [];
        assert_eq!(b.chunk(&none, 300, |r| *r), 0);
    }

    #[test]
    fn chunks_respect_the_placeholder_limit() {
        let rows = vec![0usize; 100_000];
        // 4 placeholders a row.
        assert_eq!(notes().chunk(&rows, usize::MAX, |r| *r), 65_535 / 4);
        let wide: Vec<String> = (0..70_000).map(|i| format!("c{i}")).collect();
        let sets: Vec<(&str, bool)> = wide.iter().map(|c| (c.as_str(), false)).collect();
        let b = MysqlBatch::new("t", &["id"], &sets, None);
        assert_eq!(b.chunk(&rows, usize::MAX, |r| *r), 1);
    }

    #[test]
    fn the_statement_matches_by_key_casts_binary_values_and_quotes_names() {
        let b = notes();
        assert_eq!(
            b.sql(2),
            "UPDATE `rot``notes` AS __t JOIN (SELECT ? AS `k_tenant`, ? AS `k_slug`, ? AS \
             `n_body`, CAST(? AS BINARY) AS `n_chart` UNION ALL SELECT ?, ?, ?, CAST(? AS \
             BINARY)) AS __v ON __t.`tenant` = __v.`k_tenant` AND __t.`slug` = __v.`k_slug` \
             SET __t.`body` = __v.`n_body`, __t.`chart` = __v.`n_chart`, __t.`encrypted` = TRUE"
        );
        assert_eq!(b.sql(1).matches('?').count(), 4);
        assert_eq!(b.sql(500).matches('?').count(), 2_000);
    }

    #[test]
    fn bound_len_is_at_least_the_bound_text() {
        let sealed = Encrypted::sealed(vec![7u8; 100], true);
        assert!(BoundLen::bound_len(&sealed) >= encrypted_core::encode_base64(&[7u8; 100]).len());
        let list = EncryptedList::new(serde_json::json!(["abc", "d\"e"]));
        let text = serde_json::to_string(list.value().expect("a list")).expect("JSON");
        assert!(BoundLen::bound_len(&list) >= text.len());
        assert_eq!(BoundLen::bound_len(&None::<String>), 0);
        assert_eq!(BoundLen::bound_len(&Some("abcd".to_owned())), 4);
    }
}
