use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};

use crate::{DecryptError, Error, KeyLabel, Opened, SecretKey, Transformer};

const BLOCK: usize = 16;

/// AES-CBC with PKCS#7 padding, as `k8s.io/apiserver` stores it: `iv(16) ‖ ciphertext`.
///
/// Not authenticated: the context is not bound and tampering is detected only when it breaks the
/// padding. Kept to read data written by older configurations; write with `aesgcm`, `secretbox`
/// or `kms` instead (the keyring warns when `aescbc` is a write provider).
pub struct AesCbc {
    key: CbcKey,
    label: KeyLabel,
}

#[derive(zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
enum CbcKey {
    K128([u8; 16]),
    K192([u8; 24]),
    K256([u8; 32]),
}

impl std::fmt::Debug for AesCbc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AesCbc")
            .field("label", &self.label)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl AesCbc {
    /// A transformer for a 16, 24 or 32-byte key.
    ///
    /// # Errors
    /// [`Error::Config`] for any other key length.
    pub fn new(label: KeyLabel, key: &SecretKey) -> Result<Self, Error> {
        let bytes = key.expose();
        let key = match bytes.len() {
            16 => bytes.try_into().ok().map(CbcKey::K128),
            24 => bytes.try_into().ok().map(CbcKey::K192),
            32 => bytes.try_into().ok().map(CbcKey::K256),
            _ => None,
        }
        .ok_or_else(|| {
            crate::ConfigError::new(
                label.to_string(),
                crate::ConfigErrorKind::InvalidKeyLength {
                    expected: "16, 24 or 32",
                    found: bytes.len(),
                },
            )
        })?;
        Ok(Self { key, label })
    }

    fn invalid(&self, reason: &'static str) -> Error {
        DecryptError::InvalidCbc {
            key: self.label.clone(),
            reason,
        }
        .into()
    }
}

impl Transformer for AesCbc {
    fn overhead(&self) -> usize {
        2 * BLOCK
    }

    fn seal(&self, plaintext: &[u8], _aad: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let mut iv = [0u8; BLOCK];
        crate::rng::fill_public(&mut iv)?;
        out.extend_from_slice(&iv);
        let iv = (&iv).into();
        let ciphertext = match &self.key {
            CbcKey::K128(k) => cbc::Encryptor::<aes::Aes128>::new(k.into(), iv)
                .encrypt_padded_vec::<Pkcs7>(plaintext),
            CbcKey::K192(k) => cbc::Encryptor::<aes::Aes192>::new(k.into(), iv)
                .encrypt_padded_vec::<Pkcs7>(plaintext),
            CbcKey::K256(k) => cbc::Encryptor::<aes::Aes256>::new(k.into(), iv)
                .encrypt_padded_vec::<Pkcs7>(plaintext),
        };
        out.extend_from_slice(&ciphertext);
        Ok(())
    }

    fn open(&self, payload: &[u8], _aad: &[u8]) -> Result<Opened, Error> {
        let Some((iv, ciphertext)) = payload.split_first_chunk::<BLOCK>() else {
            return Err(DecryptError::Truncated {
                key: self.label.clone(),
                expected: 2 * BLOCK,
                found: payload.len(),
            }
            .into());
        };
        if ciphertext.is_empty() {
            return Err(DecryptError::Truncated {
                key: self.label.clone(),
                expected: 2 * BLOCK,
                found: payload.len(),
            }
            .into());
        }
        if ciphertext.len() % BLOCK != 0 {
            return Err(self.invalid("ciphertext is not a whole number of 16-byte blocks"));
        }
        let iv = iv.into();
        let plaintext = match &self.key {
            CbcKey::K128(k) => cbc::Decryptor::<aes::Aes128>::new(k.into(), iv)
                .decrypt_padded_vec::<Pkcs7>(ciphertext),
            CbcKey::K192(k) => cbc::Decryptor::<aes::Aes192>::new(k.into(), iv)
                .decrypt_padded_vec::<Pkcs7>(ciphertext),
            CbcKey::K256(k) => cbc::Decryptor::<aes::Aes256>::new(k.into(), iv)
                .decrypt_padded_vec::<Pkcs7>(ciphertext),
        }
        .map_err(|_| self.invalid("invalid PKCS#7 padding"))?;
        Ok(Opened::fresh(plaintext))
    }
}
