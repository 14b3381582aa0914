use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::{Nonce, Tag, XSalsa20Poly1305};

use crate::{DecryptError, EncryptError, Error, KeyLabel, Opened, SecretKey, Transformer};

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// XSalsa20-Poly1305 (NaCl `secretbox`), as `k8s.io/apiserver` stores it:
/// `nonce(24) ‖ tag(16) ‖ ciphertext`. The context is not bound (Kubernetes passes none).
pub struct Secretbox {
    cipher: XSalsa20Poly1305,
    label: KeyLabel,
}

impl std::fmt::Debug for Secretbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secretbox")
            .field("label", &self.label)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl Secretbox {
    /// A transformer for a 32-byte key.
    ///
    /// # Errors
    /// [`Error::Config`] for any other key length.
    pub fn new(label: KeyLabel, key: &SecretKey) -> Result<Self, Error> {
        let cipher = XSalsa20Poly1305::new_from_slice(key.expose()).map_err(|_| {
            crate::ConfigError::new(
                label.to_string(),
                crate::ConfigErrorKind::InvalidKeyLength {
                    expected: "32",
                    found: key.len(),
                },
            )
        })?;
        Ok(Self { cipher, label })
    }
}

impl Transformer for Secretbox {
    fn overhead(&self) -> usize {
        NONCE_LEN + TAG_LEN
    }

    fn seal(&self, plaintext: &[u8], _aad: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::rng::fill_public(&mut nonce)?;
        out.reserve(NONCE_LEN + TAG_LEN + plaintext.len());
        out.extend_from_slice(&nonce);
        let tag_at = out.len();
        out.extend_from_slice(&[0u8; TAG_LEN]);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut out[start..])
            .map_err(|_| EncryptError::Cipher {
                key: self.label.clone(),
                len: plaintext.len(),
            })?;
        out[tag_at..start].copy_from_slice(&tag);
        Ok(())
    }

    fn open(&self, payload: &[u8], _aad: &[u8]) -> Result<Opened, Error> {
        let Some((nonce, rest)) = payload.split_first_chunk::<NONCE_LEN>() else {
            return Err(self.truncated(payload.len()));
        };
        let Some((tag, ciphertext)) = rest.split_first_chunk::<TAG_LEN>() else {
            return Err(self.truncated(payload.len()));
        };
        let mut plaintext = ciphertext.to_vec();
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                b"",
                &mut plaintext,
                Tag::from_slice(tag),
            )
            .map_err(|_| DecryptError::Authentication {
                key: self.label.clone(),
            })?;
        Ok(Opened::fresh(plaintext))
    }
}

impl Secretbox {
    fn truncated(&self, found: usize) -> Error {
        DecryptError::Truncated {
            key: self.label.clone(),
            expected: NONCE_LEN + TAG_LEN,
            found,
        }
        .into()
    }
}
