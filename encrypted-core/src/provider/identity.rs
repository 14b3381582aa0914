use crate::{DecryptError, EncryptError, Error, Opened, Transformer};

/// Stores plaintext as is; refuses to read (and so to write) values that start with `k8s:enc:`.
///
/// Listed first, it disables encryption for writes while the other providers still read; listed
/// last, it reads rows written before encryption was enabled.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

/// The prefix every encrypted value starts with.
pub(crate) const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

impl Transformer for Identity {
    fn overhead(&self) -> usize {
        0
    }

    fn seal(&self, plaintext: &[u8], _aad: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        // Such a value would read back as encrypted data of an unknown provider: refuse it now
        // rather than store something that can never be read.
        if plaintext.starts_with(ENCRYPTED_PREFIX) {
            return Err(EncryptError::IdentityRefusedEncryptedPrefix.into());
        }
        out.extend_from_slice(plaintext);
        Ok(())
    }

    fn open(&self, payload: &[u8], _aad: &[u8]) -> Result<Opened, Error> {
        if payload.starts_with(ENCRYPTED_PREFIX) {
            return Err(DecryptError::IdentityRefusedEncrypted.into());
        }
        Ok(Opened::fresh(payload.to_vec()))
    }
}
