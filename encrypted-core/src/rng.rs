//! The random number source for keys, nonces and IVs.

use crate::{EncryptError, Error};

/// Fills `dest` with cryptographically secure random bytes.
#[cfg(feature = "aws-lc")]
pub(crate) fn fill(dest: &mut [u8]) -> Result<(), Error> {
    // aws-lc's per-thread DRBG, seeded from the OS: no system call per nonce.
    aws_lc_rs::rand::fill(dest).map_err(|_| Error::Encrypt(EncryptError::Random))
}

/// Fills `dest` with cryptographically secure random bytes.
#[cfg(not(feature = "aws-lc"))]
pub(crate) fn fill(dest: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(dest).map_err(|_| Error::Encrypt(EncryptError::Random))
}
