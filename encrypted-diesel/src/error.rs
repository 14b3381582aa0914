//! The crate's error type.

use std::sync::Arc;

/// Everything that can go wrong when a model is encrypted or decrypted.
///
/// Loading surfaces it as Diesel's `DeserializationError`, writing as `SerializationError`; in
/// both cases the boxed error downcasts to this type:
///
/// ```
/// # use encrypted_diesel::Error;
/// let diesel_error = diesel::result::Error::DeserializationError(Box::new(Error::NoKeyring));
/// if let diesel::result::Error::DeserializationError(e) = &diesel_error {
///     assert!(matches!(e.downcast_ref::<Error>(), Some(Error::NoKeyring)));
/// }
/// ```
///
/// Messages name the model and the field, never the plaintext.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No keyring is installed for this process and none is in scope.
    #[error(
        "no keyring is installed: call encrypted_diesel::install(keyring) at startup, or run \
         the code inside encrypted_diesel::with_keyring(keyring, || ...)"
    )]
    NoKeyring,
    /// [`install`](crate::install) was called a second time.
    #[error(
        "a keyring is already installed for this process; use encrypted_diesel::with_keyring \
         for a scoped override"
    )]
    AlreadyInstalled,
    /// [`install_checked`](crate::install_checked) found keys that do not work; nothing was
    /// installed.
    #[error("the keyring failed its health check, so it was not installed:\n{report}")]
    KeyCheck {
        /// Every key checked (names and errors only, never key bytes).
        report: Box<encrypted_core::CheckReport>,
    },
    /// An HMAC hash column was written or queried but no lookup key is configured.
    #[error(
        "{model}.{field} keeps an HMAC lookup hash, but no lookup key is installed: use \
         Keys::new(keyring).with_lookup_key(key)"
    )]
    NoLookupKey {
        /// The model type.
        model: &'static str,
        /// The field.
        field: &'static str,
    },
    /// The keyring failed (no entry for the resource, a value that cannot be decrypted, ...).
    #[error("{model}.{field}: {source}")]
    Crypto {
        /// The model type.
        model: &'static str,
        /// The field.
        field: &'static str,
        /// What the keyring reported.
        source: Box<encrypted_core::Error>,
    },
    /// The keyring has no entry for the model's resource.
    #[error("{model}: {source}")]
    Resource {
        /// The model type.
        model: &'static str,
        /// What the keyring reported.
        source: Box<encrypted_core::Error>,
    },
    /// A decrypted `String` field is not UTF-8.
    #[error("{model}.{field}: decrypted value is not valid UTF-8")]
    InvalidUtf8 {
        /// The model type.
        model: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A `#[encrypt(json)]` field could not be serialized or deserialized. Only the category and
    /// the position are kept: serde_json's message may quote the plaintext.
    #[error("{model}.{field}: JSON {category} error at line {line}, column {column}")]
    Json {
        /// The model type.
        model: &'static str,
        /// The field.
        field: &'static str,
        /// `syntax`, `data`, `io` or `eof`.
        category: &'static str,
        /// Line of the problem in the decrypted document.
        line: usize,
        /// Column of the problem.
        column: usize,
    },
    /// A key field named by the AAD template is not assigned yet (0 or `None`) when the model
    /// is sealed: a key the database generates on insert is not known before the insert, so
    /// the context could never be rebuilt by a later read (Obot's bug #2491). Use a key the
    /// application chooses (a natural key, a UUID), or leave it out of the template.
    #[error(
        "{model}.{field} is part of the aad template but is not assigned yet (0 or None): a \
         key the database generates on insert cannot bind the values; choose the key before \
         inserting or leave it out of the aad"
    )]
    UnassignedKey {
        /// The model type.
        model: &'static str,
        /// The key field.
        field: &'static str,
    },
    /// A stored value could not be written to or read from this SQL type.
    #[error("{0}")]
    Storage(Arc<str>),
    /// The database failed (a rotation's query or transaction).
    #[error("database error: {0}")]
    Database(Arc<diesel::result::Error>),
    /// A rotation met a row no configured key reads, with `Unreadable::Stop`: nothing of its
    /// batch was written.
    #[error(
        "{table}: the row with key {key} has a value no configured key reads ({column}): {source}"
    )]
    Unreadable {
        /// The table.
        table: String,
        /// The row's key (key columns are never encrypted).
        key: String,
        /// The column.
        column: &'static str,
        /// Why it cannot be read.
        source: Box<Error>,
    },
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::Database(Arc::new(e))
    }
}

impl Error {
    /// The keyring's error, for [`Error::Crypto`] and [`Error::Resource`].
    #[must_use]
    pub fn core(&self) -> Option<&encrypted_core::Error> {
        match self {
            Error::Crypto { source, .. } | Error::Resource { source, .. } => Some(source),
            _ => None,
        }
    }

    pub(crate) fn json(model: &'static str, field: &'static str, e: &serde_json::Error) -> Self {
        let category = match e.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        };
        Error::Json {
            model,
            field,
            category,
            line: e.line(),
            column: e.column(),
        }
    }
}
