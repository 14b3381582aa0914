//! Helpers shared by the cloud key-service tests (`kms_aws`, `kms_azure`, `kms_gcp`): the
//! configuration of one `kms` provider, keyrings that count the calls reaching the key service,
//! and assertions on typed errors.
#![allow(dead_code, reason = "each test crate uses only some of the helpers")]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use encrypted_core::config::KmsConfig;
use encrypted_core::kms::{
    DecryptRequest, EncryptResponse, KeyService, KeyServiceRegistry, KmsError, KmsOptions, Status,
    Zeroizing,
};
use encrypted_core::{EncryptionConfiguration, Error, Keyring};

/// The resource every configuration of these tests encrypts.
pub(crate) const RESOURCE: &str = "users.obot.obot.ai";

/// An `EncryptionConfiguration` (YAML) with one KMS v2 provider `name` for [`RESOURCE`].
pub(crate) fn config_yaml(name: &str, endpoint: &str, timeout: &str) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\n\
         kind: EncryptionConfiguration\n\
         resources:\n  \
           - resources: [{RESOURCE}]\n    \
             providers:\n      \
               - kms:\n          \
                   apiVersion: v2\n          \
                   name: {name}\n          \
                   endpoint: {endpoint}\n          \
                   timeout: {timeout}\n"
    )
}

/// [`config_yaml`], parsed.
pub(crate) fn config(name: &str, endpoint: &str, timeout: &str) -> EncryptionConfiguration {
    EncryptionConfiguration::from_yaml(&config_yaml(name, endpoint, timeout))
        .expect("valid configuration")
}

/// Options without background polling: the tests poll when they want to.
pub(crate) fn quiet() -> KmsOptions {
    KmsOptions::default().background_polling(false)
}

/// The key-service-level error under an envelope error.
pub(crate) fn service_error(e: &Error) -> &KmsError {
    match e {
        Error::Kms(KmsError::Call { source, .. }) => match &**source {
            Error::Kms(inner) => inner,
            other => panic!("expected a typed key-service error, got {other}"),
        },
        Error::Kms(inner) => inner,
        other => panic!("expected a KMS error, got {other}"),
    }
}

/// A loopback address with nothing listening.
pub(crate) fn closed_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// Calls that reached the key service, counted around the real client.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub(crate) status: AtomicU64,
    pub(crate) encrypt: AtomicU64,
    pub(crate) decrypt: AtomicU64,
}

impl Calls {
    pub(crate) fn encrypts(&self) -> u64 {
        self.encrypt.load(Ordering::SeqCst)
    }
    pub(crate) fn decrypts(&self) -> u64 {
        self.decrypt.load(Ordering::SeqCst)
    }
}

/// A key service that counts the calls it passes on to `inner`.
#[derive(Debug)]
struct Counted<S> {
    inner: S,
    calls: Arc<Calls>,
}

impl<S: KeyService> KeyService for Counted<S> {
    fn status(&self) -> Result<Status, Error> {
        self.calls.status.fetch_add(1, Ordering::SeqCst);
        self.inner.status()
    }
    fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        self.calls.encrypt.fetch_add(1, Ordering::SeqCst);
        self.inner.encrypt(uid, plaintext)
    }
    fn decrypt(&self, uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.calls.decrypt.fetch_add(1, Ordering::SeqCst);
        self.inner.decrypt(uid, request)
    }
}

/// A keyring whose `scheme` provider is the client `make` builds, counted.
pub(crate) fn counted_keyring<S, F>(
    config: &EncryptionConfiguration,
    options: KmsOptions,
    scheme: &str,
    make: F,
) -> (Keyring, KeyServiceRegistry, Arc<Calls>)
where
    S: KeyService + 'static,
    F: Fn(&KmsConfig) -> Result<S, Error> + Send + Sync + 'static,
{
    let calls = Arc::new(Calls::default());
    let counter = Arc::clone(&calls);
    let registry = KeyServiceRegistry::default().options(options).register(
        scheme,
        Arc::new(move |config| {
            Ok(Arc::new(Counted {
                inner: make(config)?,
                calls: Arc::clone(&counter),
            }) as Arc<dyn KeyService>)
        }),
    );
    let keyring = Keyring::builder()
        .kms(registry.factory())
        .build(config)
        .expect("keyring");
    (keyring, registry, calls)
}

/// Asserts that `client` reports itself healthy (KMS v2, `ok`) with `key_id`; `what` says what
/// that key id is.
pub(crate) fn assert_healthy(client: &dyn KeyService, key_id: &str, what: &str) {
    let status = client.status().expect("status");
    assert_eq!(
        (status.version.as_str(), status.healthz.as_str()),
        ("v2", "ok")
    );
    assert_eq!(status.key_id, key_id, "{what}");
}

/// Asserts that `status` and `encrypt` of `client`, a client of the key `key` that does not
/// exist, are rejected with `code` and name the key.
pub(crate) fn assert_key_missing(client: &dyn KeyService, code: &str, key: &str) {
    for e in [
        client.status().expect_err("status"),
        client.encrypt("uid", &[1; 32]).expect_err("encrypt"),
    ] {
        assert!(
            matches!(&e, Error::Kms(KmsError::ServiceRejected { code: c, .. }) if c == code),
            "{e:?}"
        );
        assert!(e.to_string().contains(key), "{e}");
    }
}

/// Asserts that `client` unwraps `wrapped` (its ciphertext, key id and annotations) to `seed`.
pub(crate) fn assert_unwraps(client: &dyn KeyService, wrapped: &EncryptResponse, seed: &[u8]) {
    let request = DecryptRequest::new(
        wrapped.ciphertext.clone(),
        wrapped.key_id.clone(),
        wrapped.annotations.clone(),
    );
    assert_eq!(&*client.decrypt("uid-2", &request).expect("decrypt"), seed);
}

/// Writes `value 0` to `value <n - 1>` under the context `users/ctx`; what is stored.
pub(crate) fn write_values(keyring: &Keyring, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            keyring
                .encrypt(RESOURCE, format!("value {i}").as_bytes(), b"users/ctx")
                .expect("encrypt")
        })
        .collect()
}

/// Asserts that `keyring` reads the first of [`write_values`] (`first`) as current under its
/// context, and not under another one.
pub(crate) fn assert_reads_in_context(keyring: &Keyring, first: &[u8]) {
    let read = keyring
        .decrypt(RESOURCE, first, b"users/ctx")
        .expect("decrypt");
    assert_eq!(read.plaintext, b"value 0");
    assert!(!read.stale);
    assert!(keyring.decrypt(RESOURCE, first, b"users/other").is_err());
}

/// Asserts that `keyring` reads back every value [`write_values`] stored, as current.
pub(crate) fn assert_reads_values(keyring: &Keyring, stored: &[Vec<u8>]) {
    for (i, value) in stored.iter().enumerate() {
        let read = keyring
            .decrypt(RESOURCE, value, b"users/ctx")
            .expect("decrypt");
        assert_eq!(read.plaintext, format!("value {i}").as_bytes());
        assert!(!read.stale);
    }
}

/// The error of `client` unwrapping `ciphertext` as wrapped under `key_id` (no annotations);
/// `what` names the case in the panic when it does not fail.
pub(crate) fn decrypt_error(
    client: &dyn KeyService,
    ciphertext: &[u8],
    key_id: impl Into<String>,
    what: &str,
) -> Error {
    client
        .decrypt(
            "uid",
            &DecryptRequest::new(ciphertext.to_vec(), key_id, BTreeMap::new()),
        )
        .expect_err(what)
}

/// Whether `e` says that the key service is unreachable or did not answer in time.
pub(crate) fn is_unavailable(e: &KmsError) -> bool {
    matches!(
        e,
        KmsError::ServiceUnavailable { .. } | KmsError::ServiceTimeout { .. }
    )
}

/// Asserts that `e` is a keyring without a write seed whose last error mentions `reason` (any
/// last error, with an empty `reason`).
pub(crate) fn assert_no_write_seed(e: &Error, reason: &str) {
    match service_error(e) {
        KmsError::NoWriteSeed { last_error, .. } => assert!(
            last_error.as_deref().is_some_and(|m| m.contains(reason)),
            "{last_error:?}"
        ),
        other => panic!("expected NoWriteSeed, got {other:?}"),
    }
}

/// Asserts that the seed `[0x5a; 32]` shows in `message` neither in hex nor in base64.
pub(crate) fn assert_no_secret(message: &str) {
    assert!(
        !message.contains("5a5a5a") && !message.contains("WlpaWlpa"),
        "no secret in {message}"
    );
}

/// After the key became unusable at `disabled_at`: writes go on with the current seed within
/// `window` (no key service call), then fail with [`KmsError::WriteWindowExpired`]. The value
/// written within the window.
pub(crate) fn assert_writes_stop_after_the_window(
    keyring: &Keyring,
    disabled_at: Instant,
    window: Duration,
) -> Vec<u8> {
    let during = keyring
        .encrypt(RESOURCE, b"written during", b"ctx")
        .expect("write within the window");
    assert!(
        disabled_at.elapsed() < window,
        "the window passed too early"
    );
    std::thread::sleep(window.saturating_sub(disabled_at.elapsed()) + Duration::from_millis(200));
    let e = keyring
        .encrypt(RESOURCE, b"written after", b"ctx")
        .expect_err("write after the window");
    assert!(
        matches!(service_error(&e), KmsError::WriteWindowExpired { .. }),
        "{e:?}"
    );
    during
}

/// Asserts that two `status` calls of a client of an unreachable service fail with an error
/// `expected` accepts, each within `timeout + slack`; `what` names the service in the log.
pub(crate) fn assert_unreachable(
    client: &dyn KeyService,
    timeout: Duration,
    slack: Duration,
    what: &str,
    expected: impl Fn(&Error) -> bool,
) {
    for call in 0..2 {
        let started = Instant::now();
        let e = client.status().expect_err("unreachable");
        let elapsed = started.elapsed();
        assert!(expected(&e), "call {call}: {e:?}");
        assert!(elapsed < timeout + slack, "call {call} took {elapsed:?}");
        eprintln!("{what}: {e} (after {elapsed:?})");
    }
}

/// Asserts that `encrypt` on a client of a server that never answers fails with
/// [`KmsError::ServiceTimeout`] after `timeout` (and before `timeout + slack`).
pub(crate) fn assert_times_out(client: &dyn KeyService, timeout: Duration, slack: Duration) {
    let started = Instant::now();
    let e = client.encrypt("uid", &[1; 32]).expect_err("hanging");
    let elapsed = started.elapsed();
    assert!(
        matches!(&e, Error::Kms(KmsError::ServiceTimeout { timeout: t, .. }) if *t == timeout),
        "{e:?}"
    );
    assert!(
        elapsed >= timeout.saturating_sub(Duration::from_millis(50)) && elapsed < timeout + slack,
        "took {elapsed:?}"
    );
}

/// Calls `client` on a multi-threaded tokio runtime, directly on a worker thread (no
/// `spawn_blocking`) and from a spawned task; both answer with `key_id`.
pub(crate) fn assert_callable_from_a_runtime<S: KeyService + 'static>(
    client: &Arc<S>,
    key_id: &str,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let status = client.status().expect("status on a runtime thread");
        assert_eq!(status.key_id, key_id);
        let c = Arc::clone(client);
        let wrapped = tokio::spawn(async move { c.encrypt("uid", &[3; 32]) })
            .await
            .expect("task")
            .expect("encrypt");
        assert_eq!(wrapped.key_id, key_id);
    });
}
