//! Versioned lookup keys for HMAC hash columns (`#[encrypt(hash = column, hmac)]`).
//!
//! A hash column makes equality lookups on an encrypted field possible; with `hmac` its value is
//! `HMAC-SHA256(lookup key, resource ‖ 0 ‖ column ‖ 0 ‖ normalised value)`, so that someone who
//! has the database but not the key cannot test guesses. Lookup keys rotate like encryption
//! keys: [`LookupKeys`] holds several named keys, **the first computes new hashes, and every key
//! is tried by lookups** (the generated `field_eq` matches `column IN (hash under each key)`), so
//! rows hashed under an older key are still found while a rotation runs; `rewrap` then
//! recomputes every hash under the first key (see [`crate::rotate`]).
//!
//! [`LookupKeys::with_legacy_sha256`] adds the unkeyed SHA-256 that `#[encrypt(hash = column)]`
//! columns (and Obot) store, which migrates a table from SHA-256 to HMAC: declare the field
//! `hmac`, accept the legacy hashes while `rewrap` rehashes every row, then drop the legacy
//! entry.
//!
//! # Where the key material lives
//! Not in a second secret store: [`LookupKeys::seal`] wraps each key with the keyring of a
//! resource of your `EncryptionConfiguration` (an `aesgcm` key or a KMS, whichever writes) into
//! a small JSON document you keep beside the configuration or in the database; the document
//! holds no key in the clear. [`LookupKeys::open`] unwraps it at start-up with the same keyring
//! (any key of the chain reads it, so rotating the encryption key does not lose the lookup
//! keys; [`LookupKeys::seal`] again to re-wrap them under the new key).
//!
//! ```
//! use encrypted_core::{EncryptionConfiguration, Keyring, config::generate_aesgcm};
//! use encrypted_diesel::LookupKeys;
//! let config = EncryptionConfiguration::from_yaml(&generate_aesgcm(&["lookupkeys.example.com"], "k1")?)?;
//! let keyring = Keyring::from_config(&config)?;
//! let ring = keyring.resource("lookupkeys.example.com")?;
//!
//! let keys = LookupKeys::generate("l1")?;
//! let document = keys.seal(&ring)?; // store this; it holds no key in the clear
//! let again = LookupKeys::open(&document, &ring)?;
//! assert_eq!(again.current().name(), "l1");
//! assert_eq!(
//!     again.current().hash("users.example.com", "hashed_email", b"alice@example.com"),
//!     keys.current().hash("users.example.com", "hashed_email", b"alice@example.com"),
//! );
//!
//! // Rotation: a new first key; the old one is still tried by lookups until rewrap is done.
//! let rotated = LookupKeys::generate("l2")?.with_older(keys.current().clone());
//! assert_eq!(rotated.iter().map(|k| k.name()).collect::<Vec<_>>(), ["l2", "l1"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use encrypted_core::{ResourceKeyring, SecretKey};
use serde::{Deserialize, Serialize};

use crate::Error;

/// One lookup key: a named HMAC key, or the unkeyed SHA-256 of legacy hash columns.
#[derive(Clone)]
pub struct LookupKey {
    name: Arc<str>,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Hmac {
        key: Arc<hmac::Key>,
        secret: SecretKey,
    },
    Sha256,
}

impl fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Hmac { .. } => "hmac-sha256 [REDACTED]",
            Kind::Sha256 => "sha256 (unkeyed)",
        };
        f.debug_struct("LookupKey")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish()
    }
}

/// The name of the unkeyed SHA-256 entry.
pub const LEGACY_SHA256: &str = "sha256";

impl LookupKey {
    /// A named HMAC-SHA256 key (32 random bytes recommended).
    ///
    /// # Errors
    /// [`Error::Storage`] for an empty name or a key shorter than 16 bytes.
    pub fn hmac(name: &str, secret: SecretKey) -> Result<Self, Error> {
        check_name(name)?;
        if secret.expose().len() < 16 {
            return Err(Error::Storage(
                format!(
                    "lookup key {name:?} has {} bytes; expected at least 16 (32 recommended)",
                    secret.expose().len()
                )
                .into(),
            ));
        }
        let key = Arc::new(hmac::Key::new(hmac::HMAC_SHA256, secret.expose()));
        Ok(Self {
            name: name.into(),
            kind: Kind::Hmac { key, secret },
        })
    }

    /// The unkeyed SHA-256 that plain hash columns (and Obot) store: only for migrating a
    /// column to HMAC.
    #[must_use]
    pub fn legacy_sha256() -> Self {
        Self {
            name: LEGACY_SHA256.into(),
            kind: Kind::Sha256,
        }
    }

    /// The key's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's secret (`None` for the unkeyed SHA-256 entry).
    #[must_use]
    pub fn secret(&self) -> Option<&SecretKey> {
        match &self.kind {
            Kind::Hmac { secret, .. } => Some(secret),
            Kind::Sha256 => None,
        }
    }

    /// The hash of a (normalised) value for `column` of `resource`, as lowercase hex.
    #[must_use]
    pub fn hash(&self, resource: &str, column: &str, value: &[u8]) -> String {
        match &self.kind {
            Kind::Hmac { key, .. } => crate::hash::hmac_hex(key, resource, column, value),
            Kind::Sha256 => crate::hash::sha256_hex(value),
        }
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name == LEGACY_SHA256 || name.chars().any(char::is_control) {
        return Err(Error::Storage(
            format!(
                "invalid lookup key name {name:?}: expected a non-empty name other than \
                 {LEGACY_SHA256:?}, without control characters"
            )
            .into(),
        ));
    }
    Ok(())
}

/// The lookup keys of a process: the first computes new hashes; all are tried by lookups.
#[derive(Debug, Clone)]
pub struct LookupKeys {
    keys: Vec<LookupKey>,
}

impl LookupKeys {
    /// One key, which computes and finds every hash.
    #[must_use]
    pub fn new(current: LookupKey) -> Self {
        Self {
            keys: vec![current],
        }
    }

    /// A fresh 32-byte HMAC key named `name`.
    ///
    /// # Errors
    /// [`Error::Storage`] for a bad name; the random generator's failure.
    pub fn generate(name: &str) -> Result<Self, Error> {
        let secret = SecretKey::generate(32).map_err(|e| Error::Storage(e.to_string().into()))?;
        Ok(Self::new(LookupKey::hmac(name, secret)?))
    }

    /// Adds an older key: lookups still find rows hashed with it, `rewrap` rehashes them.
    #[must_use]
    pub fn with_older(mut self, key: LookupKey) -> Self {
        if !self.keys.iter().any(|k| k.name == key.name) {
            self.keys.push(key);
        }
        self
    }

    /// Adds the unkeyed SHA-256 of plain hash columns as an older key (migrating to HMAC).
    #[must_use]
    pub fn with_legacy_sha256(self) -> Self {
        self.with_older(LookupKey::legacy_sha256())
    }

    /// The key new hashes are computed with.
    #[must_use]
    pub fn current(&self) -> &LookupKey {
        &self.keys[0]
    }

    /// Every key, the current one first.
    pub fn iter(&self) -> impl Iterator<Item = &LookupKey> {
        self.keys.iter()
    }

    /// Wraps every key with `ring`'s write key into a JSON document that holds no key in the
    /// clear (each key's context is `encrypted-diesel/lookup-key/<name>`).
    ///
    /// # Errors
    /// [`Error::Crypto`] when the keyring cannot encrypt.
    pub fn seal(&self, ring: &ResourceKeyring) -> Result<String, Error> {
        let mut entries = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            entries.push(match &key.kind {
                Kind::Hmac { secret, .. } => Entry {
                    name: key.name.to_string(),
                    wrapped: Some(
                        ring.encrypt_base64(secret.expose(), context(&key.name).as_bytes())
                            .map_err(|e| crypto(&key.name, e))?,
                    ),
                    sha256: false,
                },
                Kind::Sha256 => Entry {
                    name: key.name.to_string(),
                    wrapped: None,
                    sha256: true,
                },
            });
        }
        serde_json::to_string_pretty(&Document {
            lookup_keys: entries,
        })
        .map_err(|e| Error::Storage(format!("cannot write the lookup keys: {e}").into()))
    }

    /// Unwraps a document written by [`seal`](Self::seal).
    ///
    /// # Errors
    /// [`Error::Storage`] for a document that is not one (without quoting it), an empty list or
    /// duplicate names; [`Error::Crypto`] for a key the keyring cannot unwrap.
    pub fn open(document: &str, ring: &ResourceKeyring) -> Result<Self, Error> {
        let doc: Document = serde_json::from_str(document).map_err(|e| {
            Error::Storage(
                format!(
                    "not a lookup-key document (line {}, column {})",
                    e.line(),
                    e.column()
                )
                .into(),
            )
        })?;
        let mut keys: Vec<LookupKey> = Vec::with_capacity(doc.lookup_keys.len());
        let mut names: Vec<String> = Vec::with_capacity(doc.lookup_keys.len());
        for entry in doc.lookup_keys {
            if names.contains(&entry.name) {
                return Err(Error::Storage(
                    format!("lookup key {:?} is listed twice", entry.name).into(),
                ));
            }
            let key = match (entry.sha256, entry.wrapped) {
                (true, None) => LookupKey::legacy_sha256(),
                (false, Some(wrapped)) => {
                    let opened = ring
                        .decrypt_base64(&wrapped, context(&entry.name).as_bytes())
                        .map_err(|e| crypto(&entry.name, e))?;
                    LookupKey::hmac(&entry.name, SecretKey::from(opened.plaintext))?
                }
                _ => {
                    return Err(Error::Storage(
                        format!(
                            "lookup key {:?}: expected either `wrapped` or `sha256: true`",
                            entry.name
                        )
                        .into(),
                    ));
                }
            };
            // The legacy SHA-256 key has one name whatever the entry says: listed twice under
            // two names, it would still be the same key twice.
            if keys.iter().any(|k| k.name == key.name) {
                return Err(Error::Storage(
                    format!("lookup key {:?} is listed twice", &*key.name).into(),
                ));
            }
            names.push(entry.name);
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(Error::Storage(
                "the lookup-key document lists no key".into(),
            ));
        }
        Ok(Self { keys })
    }
}

fn context(name: &str) -> String {
    format!("encrypted-diesel/lookup-key/{name}")
}

fn crypto(name: &str, source: encrypted_core::Error) -> Error {
    Error::Crypto {
        model: "LookupKeys",
        field: if name.is_empty() { "?" } else { "key" },
        source: Box::new(source),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    lookup_keys: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    sha256: bool,
}

#[cfg(test)]
mod tests {
    use encrypted_core::{EncryptionConfiguration, Keyring, config::generate_aesgcm};

    use super::*;

    fn ring(resource: &str, key: &str) -> Arc<ResourceKeyring> {
        let config = EncryptionConfiguration::from_yaml(
            &generate_aesgcm(&[resource], key).expect("generate"),
        )
        .expect("config");
        Keyring::from_config(&config)
            .expect("keyring")
            .resource(resource)
            .expect("resource")
    }

    #[test]
    fn sealed_document_holds_no_key_and_opens_to_the_same_hashes() {
        let ring = ring("lk.example.com", "k1");
        let keys = LookupKeys::generate("l2")
            .expect("generate")
            .with_older(
                LookupKeys::generate("l1")
                    .expect("generate")
                    .current()
                    .clone(),
            )
            .with_legacy_sha256();
        let doc = keys.seal(&ring).expect("seal");
        for key in keys.iter().filter_map(LookupKey::secret) {
            assert!(!doc.contains(&encrypted_core::encode_base64(key.expose())));
        }
        let opened = LookupKeys::open(&doc, &ring).expect("open");
        let names: Vec<&str> = opened.iter().map(LookupKey::name).collect();
        assert_eq!(names, ["l2", "l1", LEGACY_SHA256]);
        for (a, b) in keys.iter().zip(opened.iter()) {
            assert_eq!(a.hash("r", "c", b"v"), b.hash("r", "c", b"v"));
        }
        assert_eq!(
            opened.iter().nth(2).expect("sha").hash("r", "c", b"abc"),
            crate::hash::sha256_hex(b"abc")
        );
        // Another keyring cannot unwrap them.
        let other = super::tests::ring("lk.example.com", "k9");
        assert!(matches!(
            LookupKeys::open(&doc, &other),
            Err(Error::Crypto { .. })
        ));
    }

    #[test]
    fn bad_documents_are_refused_without_echo() {
        let ring = ring("lk.example.com", "k1");
        for doc in [
            "not json c2VjcmV0",
            r#"{"lookupKeys":[]}"#,
            r#"{"lookupKeys":[{"name":"a","sha256":true},{"name":"a","sha256":true}]}"#,
            r#"{"lookupKeys":[{"name":"a"}]}"#,
            r#"{"lookupKeys":[{"name":"a","wrapped":"c2VjcmV0c2VjcmV0","sha256":true}]}"#,
        ] {
            let e = LookupKeys::open(doc, &ring).expect_err(doc);
            assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        }
        assert!(LookupKey::hmac("", SecretKey::generate(32).expect("key")).is_err());
        assert!(LookupKey::hmac("short", SecretKey::generate(8).expect("key")).is_err());
        assert!(LookupKey::hmac(LEGACY_SHA256, SecretKey::generate(32).expect("key")).is_err());
    }

    #[test]
    fn keys_hash_differently_and_debug_redacts() {
        let a = LookupKeys::generate("a").expect("a");
        let b = LookupKeys::generate("b").expect("b");
        assert_ne!(
            a.current().hash("r", "c", b"v"),
            b.current().hash("r", "c", b"v")
        );
        let secret = a.current().secret().expect("hmac").expose().to_vec();
        let debug = format!("{a:?}");
        assert!(debug.contains("REDACTED"));
        assert!(!debug.contains(&encrypted_core::encode_base64(&secret)));
    }
}
