//! The installed keyring and its scoped overrides.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use encrypted_core::{Keyring, ResourceKeyring, SecretKey};

use crate::{Error, LookupKeys};

/// What models encrypt with: the keyring and, for HMAC lookup hashes, the lookup keys.
///
/// ```
/// use encrypted_core::{Keyring, SecretKey, EncryptionConfiguration, config::generate_aesgcm};
/// use encrypted_diesel::Keys;
/// let config = EncryptionConfiguration::from_yaml(&generate_aesgcm(&["users.example.com"], "k1")?)?;
/// let keys = Keys::new(Keyring::from_config(&config)?).with_lookup_key(SecretKey::generate(32)?);
/// assert!(keys.lookup_key().is_some());
/// # Ok::<(), encrypted_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Keys {
    keyring: Arc<Keyring>,
    lookup: Option<LookupKeys>,
}

impl Keys {
    /// Keys with no HMAC lookup key (SHA-256 hash columns only).
    #[must_use]
    pub fn new(keyring: Keyring) -> Self {
        Self {
            keyring: Arc::new(keyring),
            lookup: None,
        }
    }

    /// Adds one lookup key (named `default`) for `#[encrypt(hash = column, hmac)]` columns: 32
    /// random bytes recommended. To rotate lookup keys, use
    /// [`with_lookup_keys`](Self::with_lookup_keys).
    ///
    /// # Panics
    /// Never for a key of 16 bytes or more; a shorter key is refused by
    /// [`LookupKey::hmac`](crate::LookupKey::hmac), and this panics then (a programmer error:
    /// generate 32 bytes).
    #[must_use]
    #[expect(
        clippy::expect_used,
        reason = "documented: a key under 16 bytes is a programmer error"
    )]
    pub fn with_lookup_key(self, key: SecretKey) -> Self {
        let key = crate::LookupKey::hmac("default", key).expect("a lookup key of 16 bytes or more");
        self.with_lookup_keys(LookupKeys::new(key))
    }

    /// Sets the lookup keys: the first computes new hashes, every one is tried by lookups.
    #[must_use]
    pub fn with_lookup_keys(mut self, keys: LookupKeys) -> Self {
        self.lookup = Some(keys);
        self
    }

    /// The keyring.
    #[must_use]
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The current HMAC lookup key, if one is configured.
    #[must_use]
    pub fn lookup_key(&self) -> Option<&SecretKey> {
        self.lookup.as_ref().and_then(|k| k.current().secret())
    }

    /// The lookup keys, if any.
    #[must_use]
    pub fn lookup_keys(&self) -> Option<&LookupKeys> {
        self.lookup.as_ref()
    }

    /// The chain of one resource.
    ///
    /// # Errors
    /// [`Error::Resource`] when the configuration does not list it.
    pub fn resource(
        &self,
        model: &'static str,
        resource: &str,
    ) -> Result<Arc<ResourceKeyring>, Error> {
        self.keyring
            .resource(resource)
            .map_err(|source| Error::Resource {
                model,
                source: Box::new(source),
            })
    }
}

impl From<Keyring> for Keys {
    fn from(keyring: Keyring) -> Self {
        Keys::new(keyring)
    }
}

static INSTALLED: OnceLock<Arc<Keys>> = OnceLock::new();

thread_local! {
    static SCOPED: RefCell<Option<Arc<Keys>>> = const { RefCell::new(None) };
}

/// Installs the keys every model of this process uses (call once at startup).
///
/// ```
/// # use encrypted_core::{Keyring, EncryptionConfiguration, config::generate_aesgcm};
/// # let config = EncryptionConfiguration::from_yaml(&generate_aesgcm(&["users.example.com"], "k1")?)?;
/// let keyring = Keyring::from_config(&config)?;
/// encrypted_diesel::install(keyring.clone()).expect("first install");
/// assert!(matches!(encrypted_diesel::install(keyring), Err(encrypted_diesel::Error::AlreadyInstalled)));
/// # Ok::<(), encrypted_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::AlreadyInstalled`] when keys were installed before.
pub fn install(keys: impl Into<Keys>) -> Result<(), Error> {
    INSTALLED
        .set(Arc::new(keys.into()))
        .map_err(|_| Error::AlreadyInstalled)
}

/// Checks every key ([`Keyring::check`]: each key encrypts and reads back a random value, and
/// each `kms` provider's key service answers `status` and unwraps its current seed), then
/// installs the keys as [`install`] does. Call it at startup to stop at once on a key that
/// cannot decrypt rather than on the first row that needs it. Returns the report (for logs).
///
/// ```
/// # use encrypted_core::{Keyring, EncryptionConfiguration, config::generate_aesgcm};
/// # let config = EncryptionConfiguration::from_yaml(&generate_aesgcm(&["users.example.com"], "k1")?)?;
/// let report = encrypted_diesel::install_checked(Keyring::from_config(&config)?).expect("healthy");
/// assert!(report.is_healthy());
/// # Ok::<(), encrypted_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::KeyCheck`] with the report when a key failed (nothing is installed);
/// [`Error::AlreadyInstalled`] when keys were installed before.
pub fn install_checked(keys: impl Into<Keys>) -> Result<encrypted_core::CheckReport, Error> {
    let keys = keys.into();
    let report = keys.keyring().check();
    if !report.is_healthy() {
        return Err(Error::KeyCheck {
            report: Box::new(report),
        });
    }
    install(keys)?;
    Ok(report)
}

/// Runs `f` with `keys` in place of the installed ones on this thread (tests, tenants).
/// Scopes nest; the previous keys come back when `f` returns or panics.
///
/// ```
/// # use encrypted_core::{Keyring, EncryptionConfiguration, config::generate_aesgcm};
/// # let config = EncryptionConfiguration::from_yaml(&generate_aesgcm(&["users.example.com"], "k1")?)?;
/// let keyring = Keyring::from_config(&config)?;
/// let found = encrypted_diesel::with_keyring(keyring, || encrypted_diesel::current().is_ok());
/// assert!(found);
/// # Ok::<(), encrypted_core::Error>(())
/// ```
pub fn with_keyring<R>(keys: impl Into<Keys>, f: impl FnOnce() -> R) -> R {
    let _guard = ScopeGuard::enter(Arc::new(keys.into()));
    f()
}

/// Like [`with_keyring`] for a future (diesel-async): the keys are in scope during every poll
/// of `future`, on whichever thread polls it.
pub fn scope<F: Future>(keys: impl Into<Keys>, future: F) -> Scoped<F> {
    Scoped {
        keys: Arc::new(keys.into()),
        future: Box::pin(future),
    }
}

/// The future returned by [`scope`].
#[must_use = "futures do nothing unless polled"]
pub struct Scoped<F> {
    keys: Arc<Keys>,
    future: Pin<Box<F>>,
}

impl<F> fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped").finish_non_exhaustive()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let _guard = ScopeGuard::enter(Arc::clone(&this.keys));
        this.future.as_mut().poll(cx)
    }
}

struct ScopeGuard(Option<Arc<Keys>>);

impl ScopeGuard {
    fn enter(keys: Arc<Keys>) -> Self {
        Self(SCOPED.with(|s| s.replace(Some(keys))))
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        SCOPED.with(|s| *s.borrow_mut() = previous);
    }
}

/// The keys in effect here: the innermost scope, else the installed ones.
///
/// # Errors
/// [`Error::NoKeyring`] when neither exists.
pub fn current() -> Result<Arc<Keys>, Error> {
    if let Some(keys) = SCOPED.with(|s| s.borrow().clone()) {
        return Ok(keys);
    }
    INSTALLED.get().cloned().ok_or(Error::NoKeyring)
}
