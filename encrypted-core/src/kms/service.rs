//! The key-service contract: Kubernetes' KMS v2 `Status`, `Encrypt` and `Decrypt`.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

use crate::Error;
use crate::keyring::Redacted;

/// A key service: something that wraps and unwraps small secrets (seeds) under a key-encryption
/// key it keeps, the Kubernetes KMS v2 contract.
///
/// The envelope layer ([`super::KmsTransformer`]) calls [`status`](Self::status) about once a
/// minute, [`encrypt`](Self::encrypt) once per new seed (at start-up and when the key id changes)
/// and [`decrypt`](Self::decrypt) once per stored seed it has not seen, so implementations may be
/// slow (a network round trip) but must be safe to call from several threads at once.
///
/// The methods are synchronous and may be called from any thread, including a thread that is
/// running an async runtime (a tokio worker inside `spawn_blocking` or not). An implementation
/// that is asynchronous inside must therefore not call `block_on` on the caller's runtime: it runs
/// its own runtime on its own thread(s) and hands requests over (a channel, then a blocking
/// receive), and it enforces its own timeout (the provider's configured `timeout`).
///
/// `uid` identifies one call for correlation in the key service's logs (a random UUID).
///
/// ```
/// use std::collections::BTreeMap;
/// use encrypted_core::Error;
/// use encrypted_core::kms::{DecryptRequest, EncryptResponse, KeyService, Status};
/// use zeroize::Zeroizing;
///
/// /// "Wraps" by XOR with a constant: an example of the contract, not a key service to use.
/// #[derive(Debug)]
/// struct Xor;
///
/// impl KeyService for Xor {
///     fn status(&self) -> Result<Status, Error> {
///         Ok(Status::new("v2", "ok", "xor-1"))
///     }
///     fn encrypt(&self, _uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
///         let ciphertext = plaintext.iter().map(|b| b ^ 0x5a).collect();
///         Ok(EncryptResponse::new(ciphertext, "xor-1", BTreeMap::new()))
///     }
///     fn decrypt(&self, _uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
///         Ok(Zeroizing::new(request.ciphertext.iter().map(|b| b ^ 0x5a).collect()))
///     }
/// }
/// let wrapped = Xor.encrypt("uid", b"seed")?;
/// let request = DecryptRequest::new(wrapped.ciphertext, wrapped.key_id, wrapped.annotations);
/// assert_eq!(&*Xor.decrypt("uid", &request)?, b"seed");
/// # Ok::<(), Error>(())
/// ```
pub trait KeyService: Send + Sync + fmt::Debug {
    /// Health and the current key id. A `healthz` other than `"ok"` means unhealthy; a changed
    /// `key_id` makes the envelope layer wrap a new seed.
    ///
    /// # Errors
    /// Any [`Error`] when the service cannot be reached or answers badly.
    fn status(&self) -> Result<Status, Error>;

    /// Wraps `plaintext` (a 32-byte seed) under the current key.
    ///
    /// # Errors
    /// Any [`Error`] when the service cannot be reached or refuses.
    fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error>;

    /// Unwraps what [`encrypt`](Self::encrypt) returned, with the key id and annotations it
    /// returned alongside.
    ///
    /// # Errors
    /// Any [`Error`] when the service cannot be reached, does not know the key id, or the
    /// ciphertext fails authentication.
    fn decrypt(&self, uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error>;
}

/// The answer to [`KeyService::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The KMS API version the service speaks (`"v2"`).
    pub version: String,
    /// `"ok"` when healthy; anything else is an explanation of why not.
    pub healthz: String,
    /// The id of the key that [`KeyService::encrypt`] uses now (1 to 1024 bytes).
    pub key_id: String,
}

impl Status {
    /// A status.
    pub fn new(
        version: impl Into<String>,
        healthz: impl Into<String>,
        key_id: impl Into<String>,
    ) -> Self {
        Self {
            version: version.into(),
            healthz: healthz.into(),
            key_id: key_id.into(),
        }
    }
}

/// The answer to [`KeyService::encrypt`]. Its `Debug` shows the ciphertext's length only.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptResponse {
    /// The wrapped secret (at most 1024 bytes), stored as `encryptedDEKSource`.
    pub ciphertext: Vec<u8>,
    /// The id of the key that wrapped it; must equal [`Status::key_id`].
    pub key_id: String,
    /// Metadata the service wants back on decrypt; keys are fully qualified domain names, keys
    /// and values together at most 32 KiB.
    pub annotations: BTreeMap<String, Vec<u8>>,
}

impl EncryptResponse {
    /// A response.
    pub fn new(
        ciphertext: Vec<u8>,
        key_id: impl Into<String>,
        annotations: BTreeMap<String, Vec<u8>>,
    ) -> Self {
        Self {
            ciphertext,
            key_id: key_id.into(),
            annotations,
        }
    }
}

impl fmt::Debug for EncryptResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptResponse")
            .field("ciphertext", &Redacted(self.ciphertext.len()))
            .field("key_id", &self.key_id)
            .field("annotations", &self.annotations.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The request of [`KeyService::decrypt`]: what an earlier encrypt returned. Its `Debug` shows
/// the ciphertext's length only.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecryptRequest {
    /// The wrapped secret.
    pub ciphertext: Vec<u8>,
    /// The key id stored with it.
    pub key_id: String,
    /// The annotations stored with it.
    pub annotations: BTreeMap<String, Vec<u8>>,
}

impl DecryptRequest {
    /// A request.
    pub fn new(
        ciphertext: Vec<u8>,
        key_id: impl Into<String>,
        annotations: BTreeMap<String, Vec<u8>>,
    ) -> Self {
        Self {
            ciphertext,
            key_id: key_id.into(),
            annotations,
        }
    }
}

impl fmt::Debug for DecryptRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptRequest")
            .field("ciphertext", &Redacted(self.ciphertext.len()))
            .field("key_id", &self.key_id)
            .field("annotations", &self.annotations.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<T: KeyService + ?Sized> KeyService for std::sync::Arc<T> {
    fn status(&self) -> Result<Status, Error> {
        (**self).status()
    }

    fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        (**self).encrypt(uid, plaintext)
    }

    fn decrypt(&self, uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        (**self).decrypt(uid, request)
    }
}
