//! The crate's error type.
//!
//! One [`Error`] for the whole crate, with a sub-enum per category, in the manner of rustls. Every
//! message says what was expected and what was found, and none contains plaintext or key bytes:
//! stored values are described by their length and (for `k8s:enc:` values) their printable
//! prefix only.

use std::fmt;
use std::sync::Arc;

/// Everything that can go wrong in `encrypted-core`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `EncryptionConfiguration` could not be read, parsed or validated.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A stored value could not be turned back into plaintext.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// A value could not be encrypted.
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
    /// A text value is not valid standard base64.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// The `kms` provider failed: a malformed or invalid stored object, a key-service call, or
    /// no usable seed.
    #[error(transparent)]
    Kms(#[from] crate::kms::KmsError),
    /// The resource has no entry in the configuration.
    #[error(
        "resource {resource:?} is not listed in the EncryptionConfiguration; add it to a \
         `resources` entry (with `identity: {{}}` as its only provider to store it unencrypted)"
    )]
    ResourceNotConfigured {
        /// The group-resource that was looked up, such as `users.obot.obot.ai`.
        resource: String,
    },
    /// A failure from outside this crate (a custom provider, a key service).
    #[error("{context}: {source}")]
    Other {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

/// Why a stored value could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// No configured provider claims the value: it has an unknown `k8s:enc:` prefix, or it has no
    /// prefix and the resource has no `identity` provider to read plaintext with.
    #[error("{}", no_matching_provider(.prefix.as_deref(), *.len))]
    NoMatchingProvider {
        /// The value's `k8s:enc:...:` prefix when it has one (printable ASCII only).
        prefix: Option<String>,
        /// The length of the stored value in bytes.
        len: usize,
    },
    /// The value names a provider and key (`k8s:enc:<provider>:v1:<key>:`) whose key is not in
    /// the configuration for this resource.
    #[error(
        "value was written with {provider} key {key:?}, which is not configured for this \
         resource (was it removed from the EncryptionConfiguration before a rewrap?)"
    )]
    UnknownKey {
        /// The provider named by the prefix.
        provider: String,
        /// The key name from the prefix.
        key: String,
    },
    /// The payload after the prefix is shorter than the cipher's fixed overhead.
    #[error(
        "value for {key} is truncated: expected at least {expected} bytes after the prefix, \
         found {found}"
    )]
    Truncated {
        /// The key whose prefix matched.
        key: KeyLabel,
        /// The minimum payload length.
        expected: usize,
        /// The payload length found.
        found: usize,
    },
    /// Authentication failed: the value was tampered with, moved to another row or column (the
    /// context differs), or encrypted under a different key with the same name.
    #[error(
        "value for {key} failed authentication: it was modified, moved from another row or \
         column (context mismatch), or written with a different key of the same name"
    )]
    Authentication {
        /// The key whose prefix matched.
        key: KeyLabel,
    },
    /// AES-CBC payload is not a whole number of blocks or its padding is invalid. AES-CBC is not
    /// authenticated, so this is also what tampering usually looks like.
    #[error("value for {key} is not valid AES-CBC data ({reason})")]
    InvalidCbc {
        /// The key whose prefix matched.
        key: KeyLabel,
        /// Which check failed.
        reason: &'static str,
    },
    /// The `identity` provider was asked to read a value that starts with `k8s:enc:`.
    #[error(
        "identity provider refuses a value that starts with \"k8s:enc:\": it is encrypted data \
         whose provider is not configured"
    )]
    IdentityRefusedEncrypted,
    /// The decrypted bytes are not what the caller expected (for example not UTF-8).
    #[error("decrypted value is not valid {expected}")]
    InvalidPlaintext {
        /// What the plaintext was expected to be.
        expected: &'static str,
    },
}

fn no_matching_provider(prefix: Option<&str>, len: usize) -> String {
    match prefix {
        Some(p) => {
            format!("no configured provider reads values with prefix {p:?} ({len} bytes stored)")
        }
        None => format!(
            "value has no `k8s:enc:` prefix and the resource has no `identity` provider, so it \
             cannot be read as plaintext ({len} bytes stored)"
        ),
    }
}

/// Why a value could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The cipher refused the input (for example it is longer than the cipher allows).
    #[error("{key} could not encrypt a {len}-byte value")]
    Cipher {
        /// The write key.
        key: KeyLabel,
        /// Length of the plaintext.
        len: usize,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The `identity` provider was asked to store a value that starts with `k8s:enc:`: it would
    /// read back as encrypted data, so it could never be read.
    #[error(
        "identity provider refuses to store a value that starts with \"k8s:enc:\": it would be \
         read back as encrypted data; write it with an encrypting provider"
    )]
    IdentityRefusedEncryptedPrefix,
    /// A `kms` provider was asked to encrypt with an empty context (AAD). Kubernetes' KMS v2
    /// seed-mode reader cannot open such a value (its per-value key cache is keyed by the
    /// context and refuses an empty one), so the value would be unreadable there.
    #[error(
        "{key} refuses to encrypt with an empty context (AAD): a KMS v2 value must be bound to a \
         non-empty context, such as users.obot.obot.ai/<hashed username> (Kubernetes cannot \
         read it otherwise)"
    )]
    EmptyContext {
        /// The `kms` provider.
        key: KeyLabel,
    },
}

/// Why a text value is not acceptable encoded data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// Not standard, padded base64 (the symbol itself is not shown).
    #[error("stored text is not valid standard base64: {reason} at byte offset {offset}")]
    InvalidBase64 {
        /// What was wrong.
        reason: &'static str,
        /// Offset of the first bad byte.
        offset: usize,
    },
}

/// A configuration problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when the configuration came from one.
    pub file: Option<String>,
    /// Where in the document: `resources[0] (users.obot.obot.ai) providers[0].aesgcm.keys[1].secret`.
    pub location: String,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    pub(crate) fn new(location: impl Into<String>, kind: ConfigErrorKind) -> Self {
        Self {
            file: None,
            location: location.into(),
            kind,
        }
    }

    pub(crate) fn with_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid EncryptionConfiguration")?;
        if let Some(file) = &self.file {
            write!(f, " in {file}")?;
        }
        if !self.location.is_empty() {
            write!(f, " at {}", self.location)?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for ConfigError {}

/// The kinds of configuration problems.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(String),
    /// The document is not valid YAML/JSON of the expected shape. The parser's message, with
    /// any value it quoted replaced by its type and length (so never key bytes).
    #[error("{0}")]
    Syntax(String),
    /// The document is larger than the limit (`config::MAX_CONFIG_BYTES`).
    #[error(
        "the configuration is larger than {limit} bytes; an EncryptionConfiguration is a few KiB"
    )]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The document nests deeper than the limit (`config::MAX_DEPTH`).
    #[error(
        "the document nests more than {limit} levels deep (at line {line}); an \
         EncryptionConfiguration nests about 8"
    )]
    TooDeep {
        /// The limit.
        limit: usize,
        /// The 1-based line where it was exceeded.
        line: usize,
    },
    /// `apiVersion` is not `apiserver.config.k8s.io/v1`.
    #[error("expected apiVersion \"apiserver.config.k8s.io/v1\", found {found:?}")]
    UnknownApiVersion {
        /// The value found.
        found: String,
    },
    /// `kind` is not `EncryptionConfiguration`.
    #[error("expected kind \"EncryptionConfiguration\", found {found:?}")]
    UnknownKind {
        /// The value found.
        found: String,
    },
    /// A required list is empty or missing.
    #[error("expected at least one {what}, found none")]
    Empty {
        /// What the list holds ("resource", "provider", "key").
        what: &'static str,
    },
    /// A provider list element names no provider.
    #[error(
        "expected exactly one of aesgcm, aescbc, secretbox, kms or identity in this provider \
         entry, found none"
    )]
    NoProviderType,
    /// A provider list element names several providers.
    #[error(
        "expected exactly one provider per list element, found {found}: split them into \
         separate `- ` entries"
    )]
    MultipleProviderTypes {
        /// The providers found in the element.
        found: String,
    },
    /// A key or KMS name is empty.
    #[error("expected a non-empty name")]
    EmptyName,
    /// Two keys of one provider share a name.
    #[error("duplicate key name {name:?}: key names must be unique within a provider")]
    DuplicateKeyName {
        /// The repeated name.
        name: String,
    },
    /// A secret is not standard base64.
    #[error("secret is not valid standard base64 ({reason})")]
    InvalidBase64 {
        /// What was wrong (no key bytes).
        reason: &'static str,
    },
    /// A secret decodes to the wrong number of bytes.
    #[error("expected a key of {expected} bytes after base64 decoding, found {found} bytes")]
    InvalidKeyLength {
        /// The acceptable sizes, such as "16, 24 or 32".
        expected: &'static str,
        /// The size found.
        found: usize,
    },
    /// A KMS provider name contains `:`.
    #[error("KMS provider name {name:?} must not contain ':' (it is part of the stored prefix)")]
    KmsNameContainsColon {
        /// The name.
        name: String,
    },
    /// Two KMS v2 providers share a name.
    #[error("duplicate KMS provider name {name:?}: KMS v2 names must be unique in the file")]
    DuplicateKmsName {
        /// The repeated name.
        name: String,
    },
    /// The KMS apiVersion is not supported.
    #[error(
        "expected KMS apiVersion \"v2\", found {found:?} (KMS v1 is deprecated and not supported)"
    )]
    UnsupportedKmsApiVersion {
        /// The value found.
        found: String,
    },
    /// `cachesize` was given for KMS v2.
    #[error("cachesize is not supported for KMS v2 (it caches data-encryption keys itself)")]
    KmsCacheSizeUnsupported,
    /// The KMS endpoint is missing or malformed.
    #[error(
        "expected endpoint \"unix:///path/to/socket\" (or unix:///@abstract, aws-kms://arn..., \
         gcp-kms://projects/..., azure-keyvault://vault/keys/name, local://...), found {found:?}"
    )]
    InvalidKmsEndpoint {
        /// The value found.
        found: String,
    },
    /// A `kms` provider is configured but the keyring was built without a key-service factory.
    #[error(
        "kms provider {name:?} needs a key service: build the keyring with a KMS factory \
         (KeyringBuilder::kms)"
    )]
    KmsUnavailable {
        /// The KMS provider name.
        name: String,
    },
    /// The KMS timeout is not a positive duration.
    #[error("expected a positive duration such as \"3s\" or \"500ms\", found {found:?}")]
    InvalidTimeout {
        /// The value found.
        found: String,
    },
    /// A resource name is malformed.
    #[error("invalid resource name {name:?}: {reason}")]
    InvalidResource {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A resource is listed twice.
    #[error("resource {name:?} is listed more than once (also in {first})")]
    DuplicateResource {
        /// The name.
        name: String,
        /// Where it was first listed.
        first: String,
    },
    /// A resource can never match because an earlier wildcard covers it.
    #[error("resource {name:?} is masked by the earlier wildcard {wildcard:?} in {first}")]
    MaskedResource {
        /// The name.
        name: String,
        /// The wildcard.
        wildcard: String,
        /// Where the wildcard is.
        first: String,
    },
}

/// Which key of which provider: `aesgcm key "key1"`, `identity`, `kms "aws"`.
///
/// Shown in errors and in [`crate::Decrypted`]; holds names only, never key bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyLabel {
    /// The provider type.
    pub provider: crate::ProviderKind,
    /// The key's name (the KMS provider name for `kms`), empty for `identity`.
    pub name: Arc<str>,
}

impl fmt::Display for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}", self.provider)
        } else {
            write!(f, "{} key {:?}", self.provider, &*self.name)
        }
    }
}
