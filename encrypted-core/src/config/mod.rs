//! The Kubernetes `EncryptionConfiguration` (`apiserver.config.k8s.io/v1`), parsed and validated.
//!
//! ```
//! use encrypted_core::config::{EncryptionConfiguration, ProviderConfig};
//!
//! let yaml = r#"
//! apiVersion: apiserver.config.k8s.io/v1
//! kind: EncryptionConfiguration
//! resources:
//!   - resources: [users.obot.obot.ai, credentials]
//!     providers:
//!       - aesgcm:
//!           keys:
//!             - name: key1
//!               secret: c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=
//!       - identity: {}
//! "#;
//! let config = EncryptionConfiguration::from_yaml(yaml)?;
//! let entry = config.entry_for("users.obot.obot.ai").expect("listed");
//! assert!(matches!(entry.providers[0], ProviderConfig::AesGcm(_)));
//! assert!(config.entry_for("secrets").is_none());
//! # Ok::<(), encrypted_core::Error>(())
//! ```

mod depth;
mod duration;
mod raw;
mod resource;
mod scrub;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;

pub use duration::parse_duration;
pub use resource::ResourcePattern;

use crate::error::{ConfigError, ConfigErrorKind as Kind};
use crate::{Error, ProviderKind, SecretKey};

/// The only accepted `apiVersion`.
pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";
/// The only accepted `kind`.
pub const KIND: &str = "EncryptionConfiguration";
/// The KMS call timeout when the file gives none (Kubernetes' default).
pub const DEFAULT_KMS_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest configuration accepted, in bytes (1 MiB; a real one is a few KiB). A file is read
/// no further than this.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// The deepest nesting accepted (flow collections and block levels open at once; a real
/// configuration nests about 8 deep). Checked on the text, before the parser runs.
pub const MAX_DEPTH: usize = 64;

/// A validated `EncryptionConfiguration`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EncryptionConfiguration {
    /// The `resources` entries, in file order (the first entry that matches a resource wins).
    pub resources: Vec<ResourceEntry>,
}

/// One element of `resources`: which resources, and their ordered providers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResourceEntry {
    /// The resource patterns, as written (`users.obot.obot.ai`, `*.obot.obot.ai`, `*.*`).
    pub resources: Vec<ResourcePattern>,
    /// The providers: the first writes, all read.
    pub providers: Vec<ProviderConfig>,
}

/// One provider of a resource entry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProviderConfig {
    /// `aesgcm` with its keys, the first of which writes.
    AesGcm(Vec<KeyConfig>),
    /// `aescbc` with its keys.
    AesCbc(Vec<KeyConfig>),
    /// `secretbox` with its keys.
    Secretbox(Vec<KeyConfig>),
    /// `identity: {}`.
    Identity,
    /// `kms` (API version 2).
    Kms(KmsConfig),
}

impl ProviderConfig {
    /// The provider's type.
    #[must_use]
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderConfig::AesGcm(_) => ProviderKind::AesGcm,
            ProviderConfig::AesCbc(_) => ProviderKind::AesCbc,
            ProviderConfig::Secretbox(_) => ProviderKind::Secretbox,
            ProviderConfig::Identity => ProviderKind::Identity,
            ProviderConfig::Kms(_) => ProviderKind::Kms,
        }
    }
}

/// A named static key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyConfig {
    /// The key's name, part of every stored prefix.
    pub name: String,
    /// The key bytes (decoded from base64).
    pub secret: SecretKey,
}

/// A `kms` provider entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KmsConfig {
    /// Unique name, part of every stored prefix (`k8s:enc:kms:v2:<name>:`).
    pub name: String,
    /// Where the key service is: `unix:///path`, `unix:///@abstract`, `aws-kms://arn:...`,
    /// `gcp-kms://projects/...`, `azure-keyvault://<vault>/keys/<name>[/<version>]`, `local://...`.
    pub endpoint: String,
    /// Timeout of each key-service call.
    pub timeout: Duration,
}

impl KmsConfig {
    /// A `kms` provider entry built in code (for a key service used outside a configuration
    /// file, such as the one a plugin server serves). Not validated: the key service checks the
    /// endpoint it is given.
    pub fn new(name: impl Into<String>, endpoint: impl Into<String>, timeout: Duration) -> Self {
        Self {
            name: name.into(),
            endpoint: endpoint.into(),
            timeout,
        }
    }
}

const AES_SIZES: &[usize] = &[16, 24, 32];
const KMS_SCHEMES: &[&str] = &[
    "unix://",
    "aws-kms://",
    "gcp-kms://",
    "azure-keyvault://",
    "local://",
];

impl EncryptionConfiguration {
    /// Reads and validates a YAML or JSON file.
    ///
    /// At most [`MAX_CONFIG_BYTES`] + 1 bytes are read (so `/dev/zero` or a huge file is refused
    /// at once); the text read is wiped from memory afterwards.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, the entry, the provider and the field at fault;
    /// [`ConfigErrorKind::TooLarge`](crate::ConfigErrorKind::TooLarge) for a file over [`MAX_CONFIG_BYTES`]. As for
    /// [`from_yaml`](Self::from_yaml), no message quotes the file's content.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        use std::io::Read as _;
        let path = path.as_ref();
        let shown = path.display().to_string();
        let io =
            |e: std::io::Error| ConfigError::new("", Kind::Io(e.to_string())).with_file(&shown);
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        file.take(MAX_CONFIG_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::new(
                "",
                Kind::TooLarge {
                    limit: MAX_CONFIG_BYTES,
                },
            )
            .with_file(shown)
            .into());
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            ConfigError::new(
                "",
                Kind::Io(format!(
                    "the file is not UTF-8 text (invalid byte at offset {})",
                    e.valid_up_to()
                )),
            )
            .with_file(&shown)
        })?;
        Self::from_yaml(text).map_err(|e| match e {
            Error::Config(c) => Error::Config(c.with_file(shown)),
            other => other,
        })
    }

    /// Parses and validates a document in YAML or JSON (JSON is read by the same parser, as
    /// Kubernetes does).
    ///
    /// # Errors
    /// [`Error::Config`] naming the entry, the provider and the field at fault;
    /// [`ConfigErrorKind::TooLarge`](crate::ConfigErrorKind::TooLarge) over [`MAX_CONFIG_BYTES`], [`ConfigErrorKind::TooDeep`](crate::ConfigErrorKind::TooDeep)
    /// when nested deeper than [`MAX_DEPTH`]. A message never quotes a value of the document
    /// (what stands where something else was expected is described by its type and length).
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        parse(text, MAX_CONFIG_BYTES, |t| {
            serde_norway::from_str(t).map_err(|e| e.to_string())
        })
    }

    /// Parses and validates a JSON document with a JSON parser (for errors in JSON terms).
    ///
    /// # Errors
    /// As [`from_yaml`](Self::from_yaml).
    pub fn from_json(text: &str) -> Result<Self, Error> {
        parse(text, MAX_CONFIG_BYTES, |t| {
            serde_json::from_str(t).map_err(|e| e.to_string())
        })
    }

    /// The entry that applies to a group-resource (`users.obot.obot.ai`, `credentials`): the
    /// first whose patterns match it exactly or by wildcard.
    #[must_use]
    pub fn entry_for(&self, resource: &str) -> Option<&ResourceEntry> {
        self.resources
            .iter()
            .find(|e| e.resources.iter().any(|p| p.matches(resource)))
    }
}

/// Checks the size and nesting of `text`, parses it with `parser` (whose message is scrubbed of
/// any quoted value) and validates it.
fn parse(
    text: &str,
    max_bytes: usize,
    parser: impl FnOnce(&str) -> Result<raw::RawConfig, String>,
) -> Result<EncryptionConfiguration, Error> {
    if text.len() > max_bytes {
        return Err(ConfigError::new("", Kind::TooLarge { limit: max_bytes }).into());
    }
    if let Some(line) = depth::exceeds(text, MAX_DEPTH) {
        return Err(ConfigError::new(
            "",
            Kind::TooDeep {
                limit: MAX_DEPTH,
                line,
            },
        )
        .into());
    }
    let raw = parser(text).map_err(|m| ConfigError::new("", Kind::Syntax(scrub::scrub(&m))))?;
    Ok(validate(raw)?)
}

/// `value` when `safe` says it can be shown, else a description of it: a wrong `apiVersion` or
/// `kind` is worth showing (`v1`, `Config`), a key pasted there is not.
fn shown_if(value: &str, safe: impl Fn(&str) -> bool) -> String {
    if value.is_empty() || safe(value) {
        value.to_owned()
    } else {
        format!("<{} characters, not shown>", value.chars().count())
    }
}

/// `v1`, `v2beta1`, `group.example.com/v1alpha2`: a Kubernetes apiVersion.
fn looks_like_api_version(text: &str) -> bool {
    let (group, version) = text.rsplit_once('/').unwrap_or(("", text));
    let group_ok = group.is_empty()
        || (group.len() <= 63
            && group
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c)));
    let version_ok = version.strip_prefix('v').is_some_and(|rest| {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let tail = &rest[digits..];
        digits > 0
            && (tail.is_empty()
                || ["alpha", "beta"].iter().any(|stage| {
                    tail.strip_prefix(stage)
                        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                }))
    });
    group_ok && version_ok
}

/// Where an entry is, for messages: `resources[0] (credentials, users.obot.obot.ai, +5 more)`.
pub(crate) fn entry_location(index: usize, names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(2).map(String::as_str).collect();
    let more = names.len().saturating_sub(2);
    if shown.is_empty() {
        format!("resources[{index}]")
    } else if more > 0 {
        format!("resources[{index}] ({}, +{more} more)", shown.join(", "))
    } else {
        format!("resources[{index}] ({})", shown.join(", "))
    }
}

fn validate(raw: raw::RawConfig) -> Result<EncryptionConfiguration, ConfigError> {
    match raw.api_version.as_deref() {
        Some(API_VERSION) => {}
        other => {
            return Err(ConfigError::new(
                "apiVersion",
                Kind::UnknownApiVersion {
                    found: shown_if(other.unwrap_or_default(), looks_like_api_version),
                },
            ));
        }
    }
    match raw.kind.as_deref() {
        Some(KIND) => {}
        other => {
            return Err(ConfigError::new(
                "kind",
                Kind::UnknownKind {
                    found: shown_if(other.unwrap_or_default(), |k| {
                        k.len() <= 30 && k.chars().all(|c| c.is_ascii_alphabetic())
                    }),
                },
            ));
        }
    }
    let raw_entries = raw.resources.unwrap_or_default();
    if raw_entries.is_empty() {
        return Err(ConfigError::new(
            "resources",
            Kind::Empty {
                what: "resources entry",
            },
        ));
    }
    let mut entries = Vec::with_capacity(raw_entries.len());
    let mut seen = SeenResources::default();
    let mut kms_names = HashSet::new();
    for (index, raw_entry) in raw_entries.into_iter().enumerate() {
        let names = raw_entry.resources.unwrap_or_default();
        let here = entry_location(index, &names);
        if names.is_empty() {
            return Err(ConfigError::new(
                format!("{here}.resources"),
                Kind::Empty { what: "resource" },
            ));
        }
        let mut patterns = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let at = format!("{here}.resources[{i}]");
            let pattern = ResourcePattern::parse(name).map_err(|reason| {
                ConfigError::new(
                    &at,
                    Kind::InvalidResource {
                        name: name.clone(),
                        reason,
                    },
                )
            })?;
            seen.check(&pattern, &at)?;
            patterns.push(pattern);
        }
        let raw_providers = raw_entry.providers.unwrap_or_default();
        if raw_providers.is_empty() {
            return Err(ConfigError::new(
                format!("{here}.providers"),
                Kind::Empty { what: "provider" },
            ));
        }
        let mut providers = Vec::with_capacity(raw_providers.len());
        for (p, raw_provider) in raw_providers.into_iter().enumerate() {
            let at = format!("{here}.providers[{p}]");
            providers.push(validate_provider(&at, raw_provider, &mut kms_names)?);
        }
        entries.push(ResourceEntry {
            resources: patterns,
            providers,
        });
    }
    Ok(EncryptionConfiguration { resources: entries })
}

/// The resources listed so far, indexed so that each new one is checked in constant time for a
/// duplicate or an earlier wildcard that masks it.
#[derive(Default)]
struct SeenResources {
    /// Every pattern by its text: (order, where).
    all: HashMap<String, (usize, String)>,
    /// `*.<group>` wildcards by group (`""` for `*.`).
    groups: HashMap<String, (usize, String)>,
    /// `*.*`.
    everything: Option<(usize, String)>,
}

impl SeenResources {
    /// Refuses `pattern` (at `at`) when an earlier one is the same or covers it (the earliest in
    /// file order is named), else records it.
    fn check(&mut self, pattern: &ResourcePattern, at: &str) -> Result<(), ConfigError> {
        let text = pattern.as_str();
        let duplicate = self.all.get(text);
        let mask = match pattern.group() {
            resource::Group::All => None,
            resource::Group::Wildcard(_) => self.everything.as_ref(),
            resource::Group::Exact(group) => [self.everything.as_ref(), self.groups.get(group)]
                .into_iter()
                .flatten()
                .min_by_key(|(order, _)| *order),
        };
        match (duplicate, mask) {
            (Some((d, first)), m) if m.is_none_or(|(o, _)| d < o) => {
                return Err(ConfigError::new(
                    at,
                    Kind::DuplicateResource {
                        name: text.to_owned(),
                        first: first.clone(),
                    },
                ));
            }
            (_, Some((order, first))) => {
                let wildcard = if self.everything.as_ref().is_some_and(|(o, _)| o == order) {
                    "*.*".to_owned()
                } else {
                    format!("*.{}", resource::group_of(text))
                };
                return Err(ConfigError::new(
                    at,
                    Kind::MaskedResource {
                        name: text.to_owned(),
                        wildcard,
                        first: first.clone(),
                    },
                ));
            }
            _ => {}
        }
        let order = self.all.len();
        let entry = (order, at.to_owned());
        match pattern.group() {
            resource::Group::All => self.everything = Some(entry.clone()),
            resource::Group::Wildcard(group) => {
                self.groups.insert(group.to_owned(), entry.clone());
            }
            resource::Group::Exact(_) => {}
        }
        self.all.insert(text.to_owned(), entry);
        Ok(())
    }
}

fn validate_provider(
    at: &str,
    raw: raw::RawProvider,
    kms_names: &mut HashSet<String>,
) -> Result<ProviderConfig, ConfigError> {
    let mut found = Vec::new();
    if raw.aesgcm.is_some() {
        found.push("aesgcm");
    }
    if raw.aescbc.is_some() {
        found.push("aescbc");
    }
    if raw.secretbox.is_some() {
        found.push("secretbox");
    }
    if raw.identity.is_some() {
        found.push("identity");
    }
    if raw.kms.is_some() {
        found.push("kms");
    }
    match found.len() {
        0 => return Err(ConfigError::new(at, Kind::NoProviderType)),
        1 => {}
        _ => {
            return Err(ConfigError::new(
                at,
                Kind::MultipleProviderTypes {
                    found: found.join(", "),
                },
            ));
        }
    }
    if let Some(keys) = raw.aesgcm {
        return Ok(ProviderConfig::AesGcm(validate_keys(
            &format!("{at}.aesgcm"),
            keys,
            AES_SIZES,
            "16, 24 or 32",
        )?));
    }
    if let Some(keys) = raw.aescbc {
        return Ok(ProviderConfig::AesCbc(validate_keys(
            &format!("{at}.aescbc"),
            keys,
            AES_SIZES,
            "16, 24 or 32",
        )?));
    }
    if let Some(keys) = raw.secretbox {
        return Ok(ProviderConfig::Secretbox(validate_keys(
            &format!("{at}.secretbox"),
            keys,
            &[32],
            "32",
        )?));
    }
    if raw.identity.is_some() {
        return Ok(ProviderConfig::Identity);
    }
    let Some(kms) = raw.kms else {
        return Err(ConfigError::new(at, Kind::NoProviderType));
    };
    let at = format!("{at}.kms");
    Ok(ProviderConfig::Kms(validate_kms(&at, kms, kms_names)?))
}

fn validate_keys(
    at: &str,
    raw: raw::RawKeys,
    sizes: &[usize],
    expected: &'static str,
) -> Result<Vec<KeyConfig>, ConfigError> {
    let raw_keys = raw.keys.unwrap_or_default();
    if raw_keys.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.keys"),
            Kind::Empty { what: "key" },
        ));
    }
    let mut names = HashSet::new();
    let mut keys = Vec::with_capacity(raw_keys.len());
    for (k, raw_key) in raw_keys.into_iter().enumerate() {
        let name = raw_key.name.unwrap_or_default();
        let here = if name.is_empty() {
            format!("{at}.keys[{k}]")
        } else {
            format!("{at}.keys[{k}] ({name:?})")
        };
        if name.is_empty() {
            return Err(ConfigError::new(format!("{here}.name"), Kind::EmptyName));
        }
        if !names.insert(name.clone()) {
            return Err(ConfigError::new(
                format!("{here}.name"),
                Kind::DuplicateKeyName { name },
            ));
        }
        let Some(secret) = raw_key.secret else {
            return Err(ConfigError::new(
                format!("{here}.secret"),
                Kind::InvalidKeyLength { expected, found: 0 },
            ));
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret.0.trim().as_bytes())
            .map_err(|e| {
                ConfigError::new(
                    format!("{here}.secret"),
                    Kind::InvalidBase64 {
                        reason: base64_reason(&e),
                    },
                )
            })?;
        let secret = SecretKey::from(bytes);
        if !sizes.contains(&secret.len()) {
            return Err(ConfigError::new(
                format!("{here}.secret"),
                Kind::InvalidKeyLength {
                    expected,
                    found: secret.len(),
                },
            ));
        }
        keys.push(KeyConfig { name, secret });
    }
    Ok(keys)
}

fn validate_kms(
    at: &str,
    raw: raw::RawKms,
    names: &mut HashSet<String>,
) -> Result<KmsConfig, ConfigError> {
    let version = raw.api_version.unwrap_or_default();
    if version != "v2" {
        return Err(ConfigError::new(
            format!("{at}.apiVersion"),
            Kind::UnsupportedKmsApiVersion { found: version },
        ));
    }
    let name = raw.name.unwrap_or_default();
    if name.is_empty() {
        return Err(ConfigError::new(format!("{at}.name"), Kind::EmptyName));
    }
    if name.contains(':') {
        return Err(ConfigError::new(
            format!("{at}.name"),
            Kind::KmsNameContainsColon { name },
        ));
    }
    if !names.insert(name.clone()) {
        return Err(ConfigError::new(
            format!("{at}.name"),
            Kind::DuplicateKmsName { name },
        ));
    }
    if raw.cachesize.is_some() {
        return Err(ConfigError::new(
            format!("{at}.cachesize"),
            Kind::KmsCacheSizeUnsupported,
        ));
    }
    let endpoint = raw.endpoint.unwrap_or_default();
    let valid_endpoint = KMS_SCHEMES.iter().any(|scheme| {
        endpoint
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && rest != "/")
    });
    if !valid_endpoint {
        return Err(ConfigError::new(
            format!("{at}.endpoint"),
            Kind::InvalidKmsEndpoint { found: endpoint },
        ));
    }
    let timeout = match raw.timeout {
        None => DEFAULT_KMS_TIMEOUT,
        Some(text) => match parse_duration(&text) {
            Some(d) if !d.is_zero() => d,
            _ => {
                return Err(ConfigError::new(
                    format!("{at}.timeout"),
                    Kind::InvalidTimeout { found: text },
                ));
            }
        },
    };
    Ok(KmsConfig {
        name,
        endpoint,
        timeout,
    })
}

/// A description of a base64 error that does not quote the offending symbol.
pub(crate) fn base64_reason(e: &base64::DecodeError) -> &'static str {
    match e {
        base64::DecodeError::InvalidByte(..) => "a character outside the standard alphabet",
        base64::DecodeError::InvalidLength(_) => "invalid length",
        base64::DecodeError::InvalidLastSymbol(..) => "invalid last symbol",
        base64::DecodeError::InvalidPadding => "invalid padding",
    }
}

/// The resources Obot encrypts, as its documentation lists them.
pub const OBOT_RESOURCES: &[&str] = &[
    "credentials",
    "users.obot.obot.ai",
    "identities.obot.obot.ai",
    "mcpoauthtokens.obot.obot.ai",
    "mcpauditlogs.obot.obot.ai",
    "sessioncookies.obot.obot.ai",
    "runstates.obot.obot.ai",
];

/// Writes an `EncryptionConfiguration` that encrypts `resources` with a fresh random 256-bit
/// `aesgcm` key named `key_name`, followed by `identity: {}` so rows written before encryption
/// was enabled stay readable.
///
/// The returned text holds the key: it is wiped from memory when dropped.
///
/// ```
/// use encrypted_core::config::{generate_aesgcm, EncryptionConfiguration, OBOT_RESOURCES};
/// let text = generate_aesgcm(OBOT_RESOURCES, "key1")?;
/// let config = EncryptionConfiguration::from_yaml(&text)?;
/// assert_eq!(config.resources[0].providers.len(), 2);
/// # Ok::<(), encrypted_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Encrypt`] if the random number generator fails; [`Error::Config`] for an invalid
/// resource or key name.
pub fn generate_aesgcm(
    resources: &[&str],
    key_name: &str,
) -> Result<zeroize::Zeroizing<String>, Error> {
    use std::fmt::Write as _;
    if key_name.is_empty()
        || !key_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ConfigError::new("keys[0].name", Kind::EmptyName).into());
    }
    let key = SecretKey::generate(32)?;
    let secret =
        zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.expose()));
    let mut out = zeroize::Zeroizing::new(String::with_capacity(512));
    out.push_str("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n");
    for r in resources {
        ResourcePattern::parse(r).map_err(|reason| {
            ConfigError::new(
                "resources",
                Kind::InvalidResource {
                    name: (*r).to_owned(),
                    reason,
                },
            )
        })?;
        // Quote every name (a JSON string is a YAML double-quoted scalar): `*` starts a YAML
        // alias, `#` a comment, and names such as `null` or `1` are not strings when plain.
        let quoted = serde_json::to_string(r).unwrap_or_default();
        let _ = writeln!(out, "      - {quoted}");
    }
    let _ = write!(
        out,
        "    providers:\n      - aesgcm:\n          keys:\n            - name: {key_name}\n              secret: {}\n      - identity: {{}}\n",
        &*secret
    );
    // Never hand out a file the parser would reject (no resources, a duplicate or masked
    // resource, a key name such as `null` that YAML does not read as a string).
    EncryptionConfiguration::from_yaml(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
