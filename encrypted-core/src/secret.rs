//! Key material.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret key bytes: zeroized on drop, printed as `[REDACTED]`, never serialized.
///
/// ```
/// use encrypted_core::SecretKey;
/// let key = SecretKey::from(vec![7u8; 32]);
/// assert_eq!(key.len(), 32);
/// assert_eq!(format!("{key:?}"), "SecretKey([REDACTED]; 32 bytes)");
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Box<[u8]>);

impl SecretKey {
    /// Generates `len` random bytes from the system random number generator.
    ///
    /// # Errors
    /// [`crate::Error::Encrypt`] if the random number generator fails.
    pub fn generate(len: usize) -> Result<Self, crate::Error> {
        let mut bytes = vec![0u8; len].into_boxed_slice();
        crate::rng::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The key bytes. Handle with care: do not log, print or store them unencrypted.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a zero-length key (never valid for a cipher).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretKey {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes.into_boxed_slice())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey([REDACTED]; {} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn zeroizes_and_redacts() {
        assert_zeroize_on_drop::<SecretKey>();
        let mut key = SecretKey::from(vec![0xAB; 16]);
        let debug = format!("{key:?}");
        assert!(
            !debug.contains("171") && !debug.to_lowercase().contains("ab"),
            "{debug}"
        );
        assert!(debug.contains("REDACTED"));
        key.zeroize();
        assert!(
            key.expose().iter().all(|b| *b == 0),
            "zeroize must clear every byte"
        );
    }

    #[test]
    fn generated_keys_differ() -> Result<(), crate::Error> {
        let a = SecretKey::generate(32)?;
        let b = SecretKey::generate(32)?;
        assert_eq!(a.len(), 32);
        assert_ne!(a.expose(), b.expose());
        Ok(())
    }
}
