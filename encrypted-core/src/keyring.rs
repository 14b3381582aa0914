//! The keyring: for each resource, the ordered chain of prefixed transformers.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use crate::config::{EncryptionConfiguration, KmsConfig, ProviderConfig, ResourcePattern};
use crate::error::{ConfigError, ConfigErrorKind, DecryptError, EncodingError};
use crate::gcm::Engine;
use crate::provider::{AesCbc, AesGcm, Identity, Secretbox};
use crate::{
    CheckOutcome, CheckReport, Error, KeyCheck, KeyLabel, Opened, ProviderKind, Transformer,
};

/// One key of the chain: its stored prefix, its label and what it does.
#[derive(Debug, Clone)]
struct Entry {
    prefix: Box<[u8]>,
    label: KeyLabel,
    transformer: Arc<dyn Transformer>,
}

/// Stored bytes handed to [`ResourceKeyring::decrypt_stored`].
enum Stored<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Stored<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Stored::Borrowed(bytes) => bytes,
            Stored::Owned(bytes) => bytes,
        }
    }
}

/// A value read back through a [`ResourceKeyring`].
///
/// Its `Debug` shows the plaintext's length, not its bytes.
#[non_exhaustive]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// True when the value was not written by the current write key (an older key, another
    /// provider, or plaintext read through `identity`): re-encrypt it to rotate.
    pub stale: bool,
    /// The key that read it.
    pub key: KeyLabel,
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext", &Redacted(self.plaintext.len()))
            .field("stale", &self.stale)
            .field("key", &self.key)
            .finish()
    }
}

/// Shows `[REDACTED; n bytes]` in place of a plaintext.
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[REDACTED; {} bytes]", self.0)
    }
}

/// The ordered providers of one resource: the first key of the first provider writes; every key
/// whose prefix matches is tried on read, in order.
///
/// ```
/// use encrypted_core::{Keyring, config::{generate_aesgcm, EncryptionConfiguration}};
/// let config = EncryptionConfiguration::from_yaml(&generate_aesgcm(&["users.obot.obot.ai"], "k1")?)?;
/// let keyring = Keyring::from_config(&config)?;
/// let users = keyring.resource("users.obot.obot.ai")?;
/// let stored = users.encrypt(b"alice@example.com", b"users.obot.obot.ai/alice")?;
/// assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:k1:"));
/// let read = users.decrypt(&stored, b"users.obot.obot.ai/alice")?;
/// assert_eq!(read.plaintext, b"alice@example.com");
/// assert!(!read.stale);
/// // The same bytes under another context fail: a value cannot move to another row.
/// assert!(users.decrypt(&stored, b"users.obot.obot.ai/mallory").is_err());
/// # Ok::<(), encrypted_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResourceKeyring {
    chain: Vec<Entry>,
    max_overhead: usize,
}

impl ResourceKeyring {
    fn new(chain: Vec<Entry>) -> Self {
        let max_overhead = chain
            .first()
            .map_or(0, |e| e.prefix.len() + e.transformer.overhead());
        Self {
            chain,
            max_overhead,
        }
    }

    /// The key that writes.
    #[must_use]
    pub fn write_key(&self) -> &KeyLabel {
        &self.chain[0].label
    }

    /// Every key, in the order they are tried.
    pub fn keys(&self) -> impl Iterator<Item = &KeyLabel> {
        self.chain.iter().map(|e| &e.label)
    }

    /// Encrypts with the write key; the result is what is stored (prefix and payload).
    ///
    /// # Errors
    /// [`Error::Encrypt`] if the cipher or the random number generator fails.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(self.max_overhead + plaintext.len());
        self.encrypt_into(plaintext, aad, &mut out)?;
        Ok(out)
    }

    /// Like [`encrypt`](Self::encrypt), appending to `out`.
    ///
    /// # Errors
    /// [`Error::Encrypt`] if the cipher or the random number generator fails.
    pub fn encrypt_into(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let writer = &self.chain[0];
        out.reserve(self.max_overhead + plaintext.len());
        out.extend_from_slice(&writer.prefix);
        writer.transformer.seal(plaintext, aad, out)
    }

    /// Encrypts and returns standard padded base64 of the stored bytes, as Obot writes text
    /// columns.
    ///
    /// # Errors
    /// [`Error::Encrypt`] if the cipher or the random number generator fails.
    pub fn encrypt_base64(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, Error> {
        let stored = self.encrypt(plaintext, aad)?;
        Ok(encode_base64(&stored))
    }

    /// Decrypts stored bytes.
    ///
    /// Every key whose prefix matches is tried in order (`identity` matches everything that does
    /// not start with `k8s:enc:`). When none succeeds, the error of the first prefixed key that
    /// matched is returned, so a tampered value reports an authentication failure, not
    /// identity's refusal.
    ///
    /// # Errors
    /// [`Error::Decrypt`]: no provider claims the value, an unknown key, truncation, failed
    /// authentication (tampering, another row's value, wrong key) or bad AES-CBC data.
    pub fn decrypt(&self, stored: &[u8], aad: &[u8]) -> Result<Decrypted, Error> {
        let (opened, index) = self.decrypt_stored(Stored::Borrowed(stored), aad)?;
        Ok(Decrypted {
            plaintext: opened.plaintext,
            stale: opened.stale || index != 0,
            key: self.chain[index].label.clone(),
        })
    }

    /// The plaintext of stored bytes taken by value: where the cipher allows it (AES-GCM) it
    /// is decrypted into the same buffer, which saves an allocation and a copy per value. For
    /// bytes not needed afterwards, such as a value just read from a database. Unlike
    /// [`decrypt`](Self::decrypt) it does not say which key read the value (that would cost a
    /// shared reference count per value, which threads decrypting together contend on).
    ///
    /// # Errors
    /// As [`decrypt`](Self::decrypt).
    pub fn decrypt_owned(&self, stored: Vec<u8>, aad: &[u8]) -> Result<Vec<u8>, Error> {
        self.decrypt_stored(Stored::Owned(stored), aad)
            .map(|(opened, _)| opened.plaintext)
    }

    /// Finds the key that reads `stored`: the opened value and that key's index in the chain.
    fn decrypt_stored(&self, mut stored: Stored<'_>, aad: &[u8]) -> Result<(Opened, usize), Error> {
        // An owned value may be decrypted in place by the last key that claims it by a prefix:
        // no later key needs its payload intact. Keys after it can only be `identity` (empty
        // prefix), which refuses anything starting with `k8s:enc:`, so that attempt ends the
        // search either way.
        let in_place = match &stored {
            Stored::Owned(bytes) => self
                .chain
                .iter()
                .rposition(|e| !e.prefix.is_empty() && bytes.starts_with(&e.prefix))
                .filter(|&i| {
                    self.chain[i]
                        .prefix
                        .starts_with(crate::provider::ENCRYPTED_PREFIX)
                }),
            Stored::Borrowed(_) => None,
        };
        let mut first_error: Option<Error> = None;
        let mut identity_error: Option<Error> = None;
        for (index, entry) in self.chain.iter().enumerate() {
            if !stored.bytes().starts_with(&entry.prefix) {
                continue;
            }
            let opened = match &mut stored {
                Stored::Owned(bytes) if in_place == Some(index) => {
                    match entry
                        .transformer
                        .open_in_place(bytes, entry.prefix.len(), aad)
                    {
                        Ok(stale) => Ok(Opened {
                            plaintext: std::mem::take(bytes),
                            stale,
                        }),
                        Err(e) => return Err(first_error.unwrap_or(e)),
                    }
                }
                _ => entry
                    .transformer
                    .open(&stored.bytes()[entry.prefix.len()..], aad),
            };
            match opened {
                Ok(opened) => return Ok((opened, index)),
                Err(e) if entry.prefix.is_empty() => identity_error = Some(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Err(self.unclaimed(stored.bytes(), identity_error))
    }

    /// The error for a value no key could even try.
    fn unclaimed(&self, stored: &[u8], identity_error: Option<Error>) -> Error {
        let prefix = encrypted_prefix(stored);
        if let Some((provider, key)) = prefix.as_deref().and_then(parse_prefix) {
            return DecryptError::UnknownKey {
                provider: provider.to_owned(),
                key: key.to_owned(),
            }
            .into();
        }
        if prefix.is_none()
            && let Some(e) = identity_error
        {
            return e;
        }
        DecryptError::NoMatchingProvider {
            prefix: prefix.as_deref().map(shown_prefix),
            len: stored.len(),
        }
        .into()
    }

    /// Checks the key at `index` of the chain: its transformer's
    /// [`self_test`](Transformer::self_test), then a random value sealed with it must read back
    /// through the whole chain, by this key, unchanged.
    fn check_key(&self, index: usize) -> CheckOutcome {
        let entry = &self.chain[index];
        if entry.label.provider == ProviderKind::Identity {
            return CheckOutcome::NotTestable {
                reason: "identity stores plaintext",
            };
        }
        let attempt = || -> Result<([u8; 32], Decrypted), Error> {
            entry.transformer.self_test()?;
            let mut canary = [0u8; 32];
            crate::rng::fill_public(&mut canary)?;
            let mut stored = entry.prefix.to_vec();
            entry
                .transformer
                .seal(&canary, CHECK_CONTEXT, &mut stored)?;
            Ok((canary, self.decrypt(&stored, CHECK_CONTEXT)?))
        };
        match attempt() {
            Ok((canary, read)) if read.plaintext == canary && read.key == entry.label => {
                CheckOutcome::Ok
            }
            Ok((_, read)) => CheckOutcome::Mismatch { read_by: read.key },
            Err(error) => CheckOutcome::Failed { error },
        }
    }

    /// Decodes standard padded base64, then decrypts.
    ///
    /// # Errors
    /// [`Error::Encoding`] for text that is not standard base64 (the bad symbol is not shown),
    /// otherwise as [`decrypt`](Self::decrypt).
    pub fn decrypt_base64(&self, text: &str, aad: &[u8]) -> Result<Decrypted, Error> {
        let stored = decode_base64(text)?;
        self.decrypt(&stored, aad)
    }

    /// Which configured key a stored value claims to be written with, judged by its prefix
    /// alone (nothing is decrypted): for `status` reports. `None` when no key claims it.
    #[must_use]
    pub fn identify(&self, stored: &[u8]) -> Option<&KeyLabel> {
        let looks_encrypted = stored.starts_with(crate::provider::ENCRYPTED_PREFIX);
        self.chain
            .iter()
            .find(|e| {
                if e.prefix.is_empty() {
                    !looks_encrypted
                } else {
                    stored.starts_with(&e.prefix)
                }
            })
            .map(|e| &e.label)
    }
}

/// The context of the values [`Keyring::check`] writes (KMS v2 needs a non-empty one).
const CHECK_CONTEXT: &[u8] = b"encrypted-core/health-check";

/// Decodes standard padded base64 without quoting bad input in the error.
///
/// # Errors
/// [`Error::Encoding`] naming the offset of the first problem.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, Error> {
    decode_base64_bytes(text.as_bytes())
}

/// Like [`decode_base64`] for bytes that should hold base64 text (a column read as bytes).
///
/// SIMD-accelerated (`base64-simd`, which picks AVX2/SSE4.1/NEON at run time); a refused input
/// is decoded again with the `base64` crate only to name the problem and its offset.
///
/// # Errors
/// [`Error::Encoding`] naming the offset of the first problem.
pub fn decode_base64_bytes(text: &[u8]) -> Result<Vec<u8>, Error> {
    base64_simd::STANDARD
        .decode_to_vec(text)
        .map_err(|_| base64_error(text))
}

/// Why `text` is not standard padded base64, without quoting it.
fn base64_error(text: &[u8]) -> Error {
    let (reason, offset) = match base64::engine::general_purpose::STANDARD.decode(text) {
        Err(e) => {
            let offset = match e {
                base64::DecodeError::InvalidByte(o, _)
                | base64::DecodeError::InvalidLastSymbol(o, _) => o,
                base64::DecodeError::InvalidLength(l) => l,
                base64::DecodeError::InvalidPadding => text.len(),
            };
            (crate::config::base64_reason(&e), offset)
        }
        // Both decoders implement RFC 4648 strictly; should they ever disagree, the value is
        // still refused (fail closed).
        Ok(_) => ("not canonical base64", 0),
    };
    EncodingError::InvalidBase64 { reason, offset }.into()
}

/// Standard padded base64, as Obot stores text columns.
#[must_use]
pub fn encode_base64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// The `k8s:enc:...:` prefix of a value, if it has one, up to and including the colon after
/// the key name; printable ASCII only, so it can be shown in an error without leaking data.
fn encrypted_prefix(stored: &[u8]) -> Option<String> {
    if !stored.starts_with(crate::provider::ENCRYPTED_PREFIX) {
        return None;
    }
    let mut colons = 0;
    let mut end = None;
    for (i, b) in stored.iter().enumerate().take(96) {
        if !b.is_ascii_graphic() {
            break;
        }
        if *b == b':' {
            colons += 1;
            if colons == 5 {
                end = Some(i + 1);
                break;
            }
        }
    }
    let end = end.unwrap_or_else(|| "k8s:enc:".len());
    Some(String::from_utf8_lossy(&stored[..end]).into_owned())
}

/// The part of an unclaimed value's prefix an error may show: `k8s:enc:` and, when they are a
/// known provider and version, those two (`k8s:enc:aesgcm:v1:`). Anything else in the prefix
/// is stored data that no provider claims, which may be anything (plaintext stored by
/// mistake), so it is never shown.
fn shown_prefix(prefix: &str) -> String {
    let rest = prefix.strip_prefix("k8s:enc:").unwrap_or("");
    let mut parts = rest.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(provider @ ("aesgcm" | "aescbc" | "secretbox")), Some("v1"), Some(_))
        | (Some(provider @ "kms"), Some("v2"), Some(_)) => {
            let version = if provider == "kms" { "v2" } else { "v1" };
            format!("k8s:enc:{provider}:{version}:")
        }
        _ => "k8s:enc:".to_owned(),
    }
}

/// `k8s:enc:<provider>:<version>:<key>:` → (provider, key) for the known providers.
fn parse_prefix(prefix: &str) -> Option<(&str, &str)> {
    let rest = prefix.strip_prefix("k8s:enc:")?;
    let mut parts = rest.split(':');
    let provider = parts.next()?;
    let version = parts.next()?;
    let key = parts.next()?;
    let known = matches!(
        (provider, version),
        ("aesgcm" | "aescbc" | "secretbox", "v1") | ("kms", "v2")
    );
    (known && !key.is_empty()).then_some((provider, key))
}

/// Builds transformers for `kms` providers (see `encrypted-core`'s KMS support).
pub type KmsFactory = Arc<dyn Fn(&KmsConfig) -> Result<Arc<dyn Transformer>, Error> + Send + Sync>;

/// Options for building a [`Keyring`].
#[derive(Clone, Default)]
pub struct KeyringBuilder {
    engine: Engine,
    kms: Option<KmsFactory>,
}

impl fmt::Debug for KeyringBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringBuilder")
            .field("engine", &self.engine)
            .field("kms", &self.kms.as_ref().map(|_| "<factory>"))
            .finish()
    }
}

impl KeyringBuilder {
    /// The AES-GCM engine to use (the default is aws-lc when compiled in).
    #[must_use]
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// How to build the transformer of each `kms` provider.
    #[must_use]
    pub fn kms(mut self, factory: KmsFactory) -> Self {
        self.kms = Some(factory);
        self
    }

    /// Builds the keyring.
    ///
    /// # Errors
    /// [`Error::Config`] for a `kms` provider with no factory, or an invalid key.
    pub fn build(&self, config: &EncryptionConfiguration) -> Result<Keyring, Error> {
        let mut rules = Vec::with_capacity(config.resources.len());
        let mut warnings = Vec::new();
        for (index, entry) in config.resources.iter().enumerate() {
            let mut chain = Vec::new();
            for (p, provider) in entry.providers.iter().enumerate() {
                self.add_provider(&mut chain, index, p, provider)?;
            }
            if let Some(ProviderConfig::AesCbc(_)) = entry.providers.first() {
                let names: Vec<&str> = entry
                    .resources
                    .iter()
                    .map(ResourcePattern::as_str)
                    .collect();
                let warning = format!(
                    "resources[{index}] ({}) writes with aescbc, which is not authenticated: \
                     put aesgcm, secretbox or kms first and keep aescbc for reading",
                    names.join(", ")
                );
                tracing::warn!("{warning}");
                warnings.push(warning);
            }
            rules.push((
                entry.resources.clone(),
                Arc::new(ResourceKeyring::new(chain)),
            ));
        }
        Ok(Keyring {
            rules,
            warnings,
            cache: HashMap::new(),
        }
        .with_cache())
    }

    fn add_provider(
        &self,
        chain: &mut Vec<Entry>,
        index: usize,
        p: usize,
        provider: &ProviderConfig,
    ) -> Result<(), Error> {
        let kind = provider.kind();
        let mut push = |name: &str, transformer: Arc<dyn Transformer>| {
            chain.push(Entry {
                prefix: kind.prefix(name).into_bytes().into_boxed_slice(),
                label: KeyLabel {
                    provider: kind,
                    name: Arc::from(name),
                },
                transformer,
            });
        };
        match provider {
            ProviderConfig::Identity => push("", Arc::new(Identity)),
            ProviderConfig::AesGcm(keys) => {
                for k in keys {
                    let label = KeyLabel {
                        provider: kind,
                        name: Arc::from(k.name.as_str()),
                    };
                    push(
                        &k.name,
                        Arc::new(AesGcm::with_engine(self.engine, label, &k.secret)?),
                    );
                }
            }
            ProviderConfig::AesCbc(keys) => {
                for k in keys {
                    let label = KeyLabel {
                        provider: kind,
                        name: Arc::from(k.name.as_str()),
                    };
                    push(&k.name, Arc::new(AesCbc::new(label, &k.secret)?));
                }
            }
            ProviderConfig::Secretbox(keys) => {
                for k in keys {
                    let label = KeyLabel {
                        provider: kind,
                        name: Arc::from(k.name.as_str()),
                    };
                    push(&k.name, Arc::new(Secretbox::new(label, &k.secret)?));
                }
            }
            ProviderConfig::Kms(kms) => {
                let Some(factory) = &self.kms else {
                    return Err(ConfigError::new(
                        format!("resources[{index}].providers[{p}].kms ({:?})", kms.name),
                        ConfigErrorKind::KmsUnavailable {
                            name: kms.name.clone(),
                        },
                    )
                    .into());
                };
                push(&kms.name, factory(kms)?);
            }
        }
        Ok(())
    }
}

/// Every resource's chain, built from an [`EncryptionConfiguration`].
///
/// Build it once at start-up and share it (it is cheap to clone: chains are reference-counted).
/// Unlike the Kubernetes API server, which stores unlisted resources unencrypted, a lookup of a
/// resource the configuration does not list is an error: list it with `identity: {}` to store it
/// unencrypted on purpose.
#[derive(Debug, Clone)]
pub struct Keyring {
    rules: Vec<(Vec<ResourcePattern>, Arc<ResourceKeyring>)>,
    warnings: Vec<String>,
    /// Exact resource names resolved at build time, for a lookup without pattern matching.
    cache: HashMap<String, Arc<ResourceKeyring>>,
}

impl Keyring {
    /// Builds a keyring with the default options (no KMS).
    ///
    /// # Errors
    /// [`Error::Config`] for a `kms` provider (use [`KeyringBuilder::kms`]) or an invalid key.
    pub fn from_config(config: &EncryptionConfiguration) -> Result<Self, Error> {
        KeyringBuilder::default().build(config)
    }

    /// Reads, validates and builds from a file.
    ///
    /// # Errors
    /// As [`EncryptionConfiguration::from_file`] and [`Keyring::from_config`].
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        Self::from_config(&EncryptionConfiguration::from_file(path)?)
    }

    /// Options: the AES-GCM engine, a KMS factory.
    #[must_use]
    pub fn builder() -> KeyringBuilder {
        KeyringBuilder::default()
    }

    fn with_cache(mut self) -> Self {
        for (patterns, chain) in &self.rules {
            for p in patterns.iter().filter(|p| !p.is_wildcard()) {
                self.cache
                    .entry(p.as_str().to_owned())
                    .or_insert_with(|| Arc::clone(chain));
            }
        }
        self
    }

    /// Warnings found while building (for example `aescbc` as a write provider).
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The chain for a group-resource such as `users.obot.obot.ai` or `credentials`.
    ///
    /// # Errors
    /// [`Error::ResourceNotConfigured`] when no entry lists it.
    pub fn resource(&self, resource: &str) -> Result<Arc<ResourceKeyring>, Error> {
        if let Some(chain) = self.cache.get(resource) {
            return Ok(Arc::clone(chain));
        }
        self.rules
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| p.matches(resource)))
            .map(|(_, chain)| Arc::clone(chain))
            .ok_or_else(|| Error::ResourceNotConfigured {
                resource: resource.to_owned(),
            })
    }

    /// A health check of every key of every resource entry, in configuration order: for each,
    /// a random value is encrypted with that key (the write key and every read key alike) and
    /// must be read back through the entry's chain, by that key, unchanged. For a `kms`
    /// provider the key service must also answer `status` and unwrap the current seed with
    /// `decrypt`, bypassing every cache, so a key service that still wraps but no longer
    /// unwraps (a lost `kms:Decrypt` permission) is caught. `identity` is reported as not
    /// testable. Nothing is stored; the report holds names and errors, never key bytes.
    ///
    /// Each `kms` provider costs one `status` and one `decrypt` call (and an `encrypt` if its key
    /// rotated), within its configured timeout.
    ///
    /// ```
    /// use encrypted_core::{Keyring, CheckOutcome, config::{generate_aesgcm, EncryptionConfiguration}};
    /// let config = EncryptionConfiguration::from_yaml(&generate_aesgcm(&["users.obot.obot.ai"], "k1")?)?;
    /// let report = Keyring::from_config(&config)?.check();
    /// assert!(report.is_healthy());
    /// assert!(matches!(report.keys[0].outcome, CheckOutcome::Ok));
    /// assert!(matches!(report.keys[1].outcome, CheckOutcome::NotTestable { .. })); // identity
    /// assert_eq!(
    ///     report.keys[0].to_string(),
    ///     "resources[0] (users.obot.obot.ai): aesgcm key \"k1\" (writes): ok"
    /// );
    /// # Ok::<(), encrypted_core::Error>(())
    /// ```
    #[must_use]
    pub fn check(&self) -> CheckReport {
        let mut keys = Vec::new();
        for (index, (patterns, chain)) in self.rules.iter().enumerate() {
            let names: Vec<String> = patterns.iter().map(|p| p.as_str().to_owned()).collect();
            let entry = crate::config::entry_location(index, &names);
            for (i, e) in chain.chain.iter().enumerate() {
                keys.push(KeyCheck {
                    entry: entry.clone(),
                    key: e.label.clone(),
                    writes: i == 0,
                    outcome: chain.check_key(i),
                });
            }
        }
        CheckReport { keys }
    }

    /// Encrypts for a resource; see [`ResourceKeyring::encrypt`].
    ///
    /// # Errors
    /// [`Error::ResourceNotConfigured`], or as [`ResourceKeyring::encrypt`].
    pub fn encrypt(&self, resource: &str, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        self.resource(resource)?.encrypt(plaintext, aad)
    }

    /// Decrypts for a resource; see [`ResourceKeyring::decrypt`].
    ///
    /// # Errors
    /// [`Error::ResourceNotConfigured`], or as [`ResourceKeyring::decrypt`].
    pub fn decrypt(&self, resource: &str, stored: &[u8], aad: &[u8]) -> Result<Decrypted, Error> {
        self.resource(resource)?.decrypt(stored, aad)
    }
}

impl ProviderKind {
    /// True for providers that detect tampering (all but `identity` and `aescbc`).
    #[must_use]
    pub fn is_authenticated(self) -> bool {
        !matches!(self, ProviderKind::Identity | ProviderKind::AesCbc)
    }
}
