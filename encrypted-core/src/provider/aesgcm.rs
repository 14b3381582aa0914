use crate::gcm::{Engine, GcmKey, NONCE_LEN, TAG_LEN};
use crate::{DecryptError, EncryptError, Error, KeyLabel, Opened, SecretKey, Transformer};

/// AES-GCM, as `k8s.io/apiserver` stores it: `nonce(12) ‖ ciphertext ‖ tag(16)`, with a random
/// nonce per value and the context as additional authenticated data.
///
/// Random 96-bit nonces bound how much one key may encrypt: rotate well before 2³² writes
/// (Kubernetes' advice), or use the `kms` provider, which derives a fresh key per value.
#[derive(Debug)]
pub struct AesGcm {
    key: GcmKey,
    label: KeyLabel,
}

impl AesGcm {
    /// A transformer for a 16, 24 or 32-byte key using the default [`Engine`].
    ///
    /// # Errors
    /// [`Error::Config`] for any other key length.
    pub fn new(label: KeyLabel, key: &SecretKey) -> Result<Self, Error> {
        Self::with_engine(Engine::default(), label, key)
    }

    /// Like [`AesGcm::new`] with an explicit engine.
    ///
    /// # Errors
    /// [`Error::Config`] for a key that is not 16, 24 or 32 bytes long.
    pub fn with_engine(engine: Engine, label: KeyLabel, key: &SecretKey) -> Result<Self, Error> {
        let key = GcmKey::new(engine, key.expose()).ok_or_else(|| {
            crate::ConfigError::new(
                label.to_string(),
                crate::ConfigErrorKind::InvalidKeyLength {
                    expected: "16, 24 or 32",
                    found: key.len(),
                },
            )
        })?;
        Ok(Self { key, label })
    }
}

impl Transformer for AesGcm {
    fn overhead(&self) -> usize {
        NONCE_LEN + TAG_LEN
    }

    fn seal(&self, plaintext: &[u8], aad: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::rng::fill_public(&mut nonce)?;
        let base = out.len();
        out.reserve(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        let start = out.len();
        // Ciphertext and tag written straight from `plaintext` (out of place): one pass over
        // the output instead of copying the plaintext in and encrypting it in place.
        out.resize(start + plaintext.len() + TAG_LEN, 0);
        let sealed = self
            .key
            .seal_to(&nonce, aad, plaintext, &mut out[start..])
            .is_ok();
        if !sealed {
            // Leave `out` as it was: no plaintext or partial output behind.
            out.truncate(base);
            return Err(EncryptError::Cipher {
                key: self.label.clone(),
                len: plaintext.len(),
            }
            .into());
        }
        Ok(())
    }

    fn open(&self, payload: &[u8], aad: &[u8]) -> Result<Opened, Error> {
        let Some((nonce, rest)) = payload.split_first_chunk::<NONCE_LEN>() else {
            return Err(self.truncated(payload.len()));
        };
        let Some((ciphertext, tag)) = rest.split_last_chunk::<TAG_LEN>() else {
            return Err(self.truncated(payload.len()));
        };
        let mut plaintext = vec![0u8; ciphertext.len()];
        self.key
            .open(nonce, aad, ciphertext, tag, &mut plaintext)
            .map_err(|_| DecryptError::Authentication {
                key: self.label.clone(),
            })?;
        Ok(Opened::fresh(plaintext))
    }

    fn open_in_place(&self, buf: &mut Vec<u8>, start: usize, aad: &[u8]) -> Result<bool, Error> {
        let found = buf.len().saturating_sub(start);
        if found < NONCE_LEN + TAG_LEN {
            return Err(self.truncated(found));
        }
        let Some(nonce) = buf
            .get(start..)
            .and_then(|payload| payload.first_chunk::<NONCE_LEN>())
            .copied()
        else {
            return Err(self.truncated(found));
        };
        let len = self
            .key
            .open_within(&nonce, aad, buf, start + NONCE_LEN)
            .map_err(|_| DecryptError::Authentication {
                key: self.label.clone(),
            })?;
        buf.truncate(len);
        Ok(false)
    }
}

impl AesGcm {
    fn truncated(&self, found: usize) -> Error {
        DecryptError::Truncated {
            key: self.label.clone(),
            expected: NONCE_LEN + TAG_LEN,
            found,
        }
        .into()
    }
}
