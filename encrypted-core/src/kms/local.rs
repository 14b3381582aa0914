//! A key service that keeps its key-encryption key in this process: for development and tests.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

use super::crypto::{hex, sha256};
use super::{DecryptRequest, EncryptResponse, KeyService, KmsError, Status};
use crate::gcm::{Engine, GcmKey, NONCE_LEN, TAG_LEN};
use crate::{EncryptError, Error};

/// A key service whose 32-byte key-encryption key comes from a file or an environment variable,
/// wrapping with AES-256-GCM. For development and tests: the key is as safe as the file or the
/// environment it lives in, which is what a real KMS exists to avoid.
///
/// Endpoints (the `endpoint` of a `kms` provider):
///
/// | endpoint | key |
/// |---|---|
/// | `local:///absolute/path/to/keyfile` | the file holds standard base64 of 32 bytes (surrounding whitespace ignored) |
/// | `local://env/VAR_NAME` | the environment variable `VAR_NAME` holds standard base64 of 32 bytes |
///
/// Make a key with `head -c 32 /dev/urandom | base64 > keyfile`.
///
/// The key id is `local-` followed by 16 bytes of a domain-separated SHA-256 of the key, in hex:
/// a fingerprint that changes when the key changes (which makes the envelope layer wrap a new
/// seed) and reveals nothing usable about it. Wrapped seeds are
/// `nonce(12) ‖ AES-256-GCM(seed) ‖ tag(16)` with the key id as additional data; they carry no
/// annotations.
///
/// ```
/// use encrypted_core::kms::{KeyService, LocalKeyService};
/// let dir = tempfile::tempdir()?;
/// let keyfile = dir.path().join("kek");
/// std::fs::write(&keyfile, encrypted_core::encode_base64(&[7u8; 32]))?;
/// let service = LocalKeyService::from_endpoint(&format!("local://{}", keyfile.display()))?;
/// let status = service.status()?;
/// assert_eq!(status.healthz, "ok");
/// assert!(status.key_id.starts_with("local-"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LocalKeyService {
    key: GcmKey,
    key_id: String,
    source: String,
}

impl fmt::Debug for LocalKeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyService")
            .field("source", &self.source)
            .field("key_id", &self.key_id)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl LocalKeyService {
    /// The scheme of its endpoints.
    pub const SCHEME: &'static str = "local://";

    /// Loads the key named by a `local://` endpoint.
    ///
    /// # Errors
    /// [`Error::Kms`] ([`KmsError::LocalKey`]) when the endpoint has another form, the file or
    /// variable is missing or unreadable, or it does not hold base64 of exactly 32 bytes. The
    /// message names the path or variable, never the key.
    pub fn from_endpoint(endpoint: &str) -> Result<Self, Error> {
        let Some(rest) = endpoint.strip_prefix(Self::SCHEME) else {
            return Err(bad_form(endpoint));
        };
        if let Some(var) = rest.strip_prefix("env/") {
            let valid_name =
                !var.is_empty() && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                return Err(bad_form(endpoint));
            }
            let source = format!("env:{var}");
            let text = match std::env::var(var) {
                Ok(text) => Zeroizing::new(text),
                Err(std::env::VarError::NotPresent) => {
                    return Err(local_error(&source, "the environment variable is not set"));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(local_error(
                        &source,
                        "the environment variable is not valid UTF-8",
                    ));
                }
            };
            Self::from_base64(&text, source)
        } else if rest.starts_with('/') && rest.len() > 1 {
            let source = rest.to_owned();
            let bytes = std::fs::read(rest)
                .map(Zeroizing::new)
                .map_err(|e| local_error(&source, &format!("cannot read the key file: {e}")))?;
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                local_error(
                    &source,
                    "the key file is not text: expected standard base64 of 32 bytes",
                )
            })?;
            Self::from_base64(text, source)
        } else {
            Err(bad_form(endpoint))
        }
    }

    fn from_base64(text: &str, source: String) -> Result<Self, Error> {
        let key = crate::decode_base64(text.trim())
            .map(Zeroizing::new)
            .map_err(|_| {
                local_error(
                    &source,
                    "expected standard base64 of a 32-byte key (the content is not base64)",
                )
            })?;
        Self::from_key(&key, source)
    }

    /// A service with the given 32-byte key; `source` describes where it came from (shown in
    /// errors and `Debug`, so never the key itself).
    ///
    /// # Errors
    /// [`Error::Kms`] ([`KmsError::LocalKey`]) for a key that is not 32 bytes long.
    pub fn from_key(key: &[u8], source: impl Into<String>) -> Result<Self, Error> {
        let source = source.into();
        if key.len() != 32 {
            return Err(local_error(
                &source,
                &format!("expected a 32-byte key, found {} bytes", key.len()),
            ));
        }
        let fingerprint = sha256(&[b"encrypted-core local KMS key id\0", key]);
        let key_id = format!("local-{}", hex(&fingerprint[..16]));
        let key = GcmKey::new(Engine::default(), key)
            .ok_or_else(|| local_error(&source, "AES-256-GCM refused the key"))?;
        Ok(Self {
            key,
            key_id,
            source,
        })
    }

    /// The key id it reports.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

fn bad_form(endpoint: &str) -> Error {
    KmsError::LocalKey {
        source_name: endpoint.to_owned(),
        reason: "expected local:///absolute/path/to/keyfile or local://env/VAR_NAME (letters, \
                 digits and '_')"
            .to_owned(),
    }
    .into()
}

fn local_error(source: &str, reason: &str) -> Error {
    KmsError::LocalKey {
        source_name: source.to_owned(),
        reason: reason.to_owned(),
    }
    .into()
}

impl KeyService for LocalKeyService {
    fn status(&self) -> Result<Status, Error> {
        Ok(Status::new("v2", "ok", self.key_id.clone()))
    }

    fn encrypt(&self, _uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        let mut out = vec![0u8; NONCE_LEN + plaintext.len() + TAG_LEN];
        let (nonce, body) = out.split_at_mut(NONCE_LEN);
        crate::rng::fill_public(nonce)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| EncryptError::Random)?;
        self.key
            .seal_to(&nonce, self.key_id.as_bytes(), plaintext, body)
            .map_err(|_| KmsError::LocalKey {
                source_name: self.source.clone(),
                reason: format!("could not wrap a {}-byte secret", plaintext.len()),
            })?;
        Ok(EncryptResponse::new(
            out,
            self.key_id.clone(),
            BTreeMap::new(),
        ))
    }

    fn decrypt(&self, _uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        if request.key_id != self.key_id {
            return Err(KmsError::UnwrapRefused {
                reason: format!(
                    "the secret was wrapped under key id {:?}, this local key is {:?}",
                    request.key_id, self.key_id
                ),
            }
            .into());
        }
        let refused = || -> Error {
            KmsError::UnwrapRefused {
                reason: format!(
                    "the {}-byte wrapped secret is truncated or fails authentication under \
                     local key {:?}",
                    request.ciphertext.len(),
                    self.key_id
                ),
            }
            .into()
        };
        let Some((nonce, rest)) = request.ciphertext.split_first_chunk::<NONCE_LEN>() else {
            return Err(refused());
        };
        let Some((ciphertext, tag)) = rest.split_last_chunk::<TAG_LEN>() else {
            return Err(refused());
        };
        let mut plaintext = Zeroizing::new(vec![0u8; ciphertext.len()]);
        self.key
            .open(
                nonce,
                self.key_id.as_bytes(),
                ciphertext,
                tag,
                &mut plaintext,
            )
            .map_err(|_| refused())?;
        Ok(plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kms(e: Error) -> KmsError {
        match e {
            Error::Kms(k) => k,
            other => panic!("expected a KMS error, got {other}"),
        }
    }

    #[test]
    fn wraps_and_unwraps() -> Result<(), Error> {
        let service = LocalKeyService::from_key(&[3; 32], "test")?;
        let wrapped = service.encrypt("uid", &[9; 32])?;
        assert_eq!(wrapped.key_id, service.key_id());
        assert_eq!(wrapped.ciphertext.len(), 12 + 32 + 16);
        let request = DecryptRequest::new(
            wrapped.ciphertext.clone(),
            wrapped.key_id.clone(),
            BTreeMap::new(),
        );
        assert_eq!(&*service.decrypt("uid", &request)?, &[9; 32]);
        let mut tampered = request.clone();
        tampered.ciphertext[20] ^= 1;
        assert!(matches!(
            service.decrypt("uid", &tampered).map_err(kms),
            Err(KmsError::UnwrapRefused { .. })
        ));
        let mut other_id = request;
        other_id.key_id = "local-other".to_owned();
        assert!(matches!(
            service.decrypt("uid", &other_id).map_err(kms),
            Err(KmsError::UnwrapRefused { .. })
        ));
        Ok(())
    }

    #[test]
    fn key_id_is_a_fingerprint() -> Result<(), Error> {
        let a = LocalKeyService::from_key(&[1; 32], "a")?;
        let b = LocalKeyService::from_key(&[2; 32], "b")?;
        let a2 = LocalKeyService::from_key(&[1; 32], "a2")?;
        assert_ne!(a.key_id(), b.key_id());
        assert_eq!(a.key_id(), a2.key_id());
        assert_eq!(a.key_id().len(), "local-".len() + 32);
        let debug = format!("{a:?}");
        assert!(
            debug.contains("REDACTED") && !debug.contains("[1, 1"),
            "{debug}"
        );
        Ok(())
    }

    #[test]
    fn loads_files_and_refuses_bad_endpoints() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| local_error("tempdir", &e.to_string()))?;
        let path = dir.path().join("kek");
        std::fs::write(&path, format!("{}\n", crate::encode_base64(&[5; 32])))
            .map_err(|e| local_error("write", &e.to_string()))?;
        let endpoint = format!("local://{}", path.display());
        let service = LocalKeyService::from_endpoint(&endpoint)?;
        assert_eq!(
            service.key_id(),
            LocalKeyService::from_key(&[5; 32], "x")?.key_id()
        );

        std::fs::write(&path, crate::encode_base64(&[5; 16]))
            .map_err(|e| local_error("write", &e.to_string()))?;
        let e = LocalKeyService::from_endpoint(&endpoint).map_err(kms);
        assert!(
            matches!(&e, Err(KmsError::LocalKey { reason, .. }) if reason.contains("16 bytes")),
            "{e:?}"
        );
        for bad in [
            "local://",
            "local://relative/path",
            "local://env/",
            "local://env/BAD-NAME",
            "unix:///x",
            "local:///",
        ] {
            assert!(
                matches!(
                    LocalKeyService::from_endpoint(bad).map_err(kms),
                    Err(KmsError::LocalKey { .. })
                ),
                "{bad}"
            );
        }
        let missing = LocalKeyService::from_endpoint("local://env/ENCRYPTED_CORE_SURELY_UNSET_42")
            .map_err(kms);
        assert!(
            matches!(&missing, Err(KmsError::LocalKey { reason, .. }) if reason.contains("not set")),
            "{missing:?}"
        );
        Ok(())
    }
}
