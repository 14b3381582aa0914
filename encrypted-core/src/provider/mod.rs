//! Providers: what one configured key does to the bytes after its prefix.
//!
//! Each key of each provider becomes one [`Transformer`] behind one prefix, exactly as
//! `k8s.io/apiserver` flattens an `EncryptionConfiguration`: `aesgcm` with keys `a` and `b`
//! becomes two entries, `k8s:enc:aesgcm:v1:a:` and `k8s:enc:aesgcm:v1:b:`.

use std::fmt;

use crate::Error;

mod aescbc;
mod aesgcm;
mod identity;
mod secretbox;

pub use aescbc::AesCbc;
pub use aesgcm::AesGcm;
pub(crate) use identity::ENCRYPTED_PREFIX;
pub use identity::Identity;
pub use secretbox::Secretbox;

/// The provider types of an `EncryptionConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProviderKind {
    /// No encryption; no prefix.
    Identity,
    /// AES-GCM with a random 96-bit nonce.
    AesGcm,
    /// AES-CBC with PKCS#7 padding (unauthenticated; legacy).
    AesCbc,
    /// XSalsa20-Poly1305.
    Secretbox,
    /// Envelope encryption through a key service (KMS v2).
    Kms,
}

impl ProviderKind {
    /// The name used in configuration files and stored prefixes.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Identity => "identity",
            ProviderKind::AesGcm => "aesgcm",
            ProviderKind::AesCbc => "aescbc",
            ProviderKind::Secretbox => "secretbox",
            ProviderKind::Kms => "kms",
        }
    }

    /// The stored prefix for a key of this provider: `k8s:enc:aesgcm:v1:<name>:`,
    /// `k8s:enc:kms:v2:<name>:`, and nothing for `identity`.
    #[must_use]
    pub fn prefix(self, name: &str) -> String {
        match self {
            ProviderKind::Identity => String::new(),
            ProviderKind::Kms => format!("k8s:enc:kms:v2:{name}:"),
            other => format!("k8s:enc:{}:v1:{name}:", other.as_str()),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of [`Transformer::open`]. Its `Debug` shows the plaintext's length, not its bytes.
#[non_exhaustive]
pub struct Opened {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// True when the transformer itself knows the value should be re-encrypted (a KMS value
    /// under a key id that is no longer current). Position in the chain is added by the keyring.
    pub stale: bool,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("plaintext", &crate::keyring::Redacted(self.plaintext.len()))
            .field("stale", &self.stale)
            .finish()
    }
}

impl Opened {
    /// Plaintext that is not stale by itself.
    #[must_use]
    pub fn fresh(plaintext: Vec<u8>) -> Self {
        Self {
            plaintext,
            stale: false,
        }
    }
}

/// What one key does to the bytes after its prefix.
///
/// Implement it to plug in a provider of your own (and register it with
/// [`crate::KeyringBuilder`]); the keyring handles prefixes, ordering and staleness.
///
/// ```
/// use encrypted_core::{Error, Opened, Transformer};
///
/// /// Stores bytes reversed: an example, not a cipher.
/// #[derive(Debug)]
/// struct Reverse;
///
/// impl Transformer for Reverse {
///     fn overhead(&self) -> usize { 0 }
///     fn seal(&self, plaintext: &[u8], _aad: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
///         out.extend(plaintext.iter().rev());
///         Ok(())
///     }
///     fn open(&self, payload: &[u8], _aad: &[u8]) -> Result<Opened, Error> {
///         Ok(Opened::fresh(payload.iter().rev().copied().collect()))
///     }
/// }
/// let mut out = Vec::new();
/// Reverse.seal(b"abc", b"", &mut out)?;
/// assert_eq!(Reverse.open(&out, b"")?.plaintext, b"abc");
/// # Ok::<(), Error>(())
/// ```
pub trait Transformer: Send + Sync + fmt::Debug {
    /// Upper bound of the bytes [`seal`](Self::seal) adds to a plaintext (nonce, tag, padding),
    /// used to size buffers.
    fn overhead(&self) -> usize;

    /// Encrypts `plaintext` bound to `aad` and appends the payload (without prefix) to `out`.
    ///
    /// # Errors
    /// [`Error::Encrypt`] when the cipher or the random number generator fails.
    fn seal(&self, plaintext: &[u8], aad: &[u8], out: &mut Vec<u8>) -> Result<(), Error>;

    /// Decrypts a payload (the stored bytes after the prefix) bound to `aad`.
    ///
    /// # Errors
    /// [`Error::Decrypt`] when the payload is truncated, tampered with, bound to another `aad`,
    /// or was written with another key.
    fn open(&self, payload: &[u8], aad: &[u8]) -> Result<Opened, Error>;

    /// Like [`open`](Self::open), reusing the buffer that holds the value: the payload is
    /// `buf[start..]`; on success `buf` holds exactly the plaintext and the result says whether
    /// the value is stale (as [`Opened::stale`]). On failure the bytes of `buf` before `start`
    /// are kept and those from `start` on are unspecified.
    ///
    /// The default opens into a new buffer with [`open`](Self::open); AES-GCM decrypts in
    /// place, which saves an allocation and a copy per value read.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    fn open_in_place(&self, buf: &mut Vec<u8>, start: usize, aad: &[u8]) -> Result<bool, Error> {
        let payload = buf.get(start..).unwrap_or_default();
        let opened = self.open(payload, aad)?;
        *buf = opened.plaintext;
        Ok(opened.stale)
    }

    /// Checks what a round trip through this key alone may not show, for
    /// [`Keyring::check`](crate::Keyring::check). The default does nothing: a static key is fully
    /// tested by encrypting and decrypting. A KMS transformer asks its key service for `status`
    /// and to unwrap its current seed, bypassing its caches
    /// ([`KmsTransformer::check_key_service`](crate::kms::KmsTransformer::check_key_service)).
    ///
    /// # Errors
    /// What the check found broken.
    fn self_test(&self) -> Result<(), Error> {
        Ok(())
    }
}
