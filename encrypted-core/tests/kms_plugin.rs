//! The KMS v2 plugin protocol for real: [`PluginClient`] ↔ [`PluginServer`] over Unix sockets
//! (a socket file in a temporary directory, and a Linux abstract socket), the whole envelope
//! through a keyring configured with a `unix://` endpoint, timeouts, typed errors, key-service
//! call counts seen by the server, and faults under a concurrent read/write load (plugin killed,
//! hanging past the timeout, returning errors, rotating its key id).
#![cfg(feature = "kms-plugin")]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use encrypted_core::kms::plugin::{PluginClient, PluginServer, ServeOptions};
use encrypted_core::kms::{
    DecryptRequest, EncryptResponse, KeyService, KeyServiceRegistry, KmsError, KmsMetrics,
    KmsOperation, KmsOptions, LocalKeyService, Status, Zeroizing,
};
use encrypted_core::{EncryptionConfiguration, Error, Keyring};

// ---------------------------------------------------------------------------------------------
// A key service with injectable faults, served in-process
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Every call blocks until the mode changes (or 30 s pass).
    Hang,
    /// Every call fails.
    Fail,
}

/// Local AES keys by key id (old ones kept for decrypt), a fault switch and call counters: what
/// the server side sees.
#[derive(Debug)]
struct FaultyService {
    keys: Mutex<HashMap<String, LocalKeyService>>,
    current: Mutex<String>,
    mode: Mutex<Mode>,
    changed: Condvar,
    status_calls: AtomicU64,
    encrypt_calls: AtomicU64,
    decrypt_calls: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
#[error("injected fault")]
struct Injected;

impl FaultyService {
    fn new(seed: u8) -> Arc<Self> {
        let service = Arc::new(Self {
            keys: Mutex::default(),
            current: Mutex::default(),
            mode: Mutex::new(Mode::Normal),
            changed: Condvar::new(),
            status_calls: AtomicU64::new(0),
            encrypt_calls: AtomicU64::new(0),
            decrypt_calls: AtomicU64::new(0),
        });
        service.rotate(seed);
        service
    }

    /// Makes `[seed; 32]` the current key; returns its id.
    fn rotate(&self, seed: u8) -> String {
        let key = LocalKeyService::from_key(&[seed; 32], format!("test key {seed}")).expect("key");
        let id = key.key_id().to_owned();
        self.keys.lock().expect("keys").insert(id.clone(), key);
        *self.current.lock().expect("current") = id.clone();
        id
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
        self.changed.notify_all();
    }

    /// Applies the fault mode to one call.
    fn gate(&self) -> Result<(), Error> {
        let mut mode = self.mode.lock().expect("mode");
        let until = Instant::now() + Duration::from_secs(30);
        while *mode == Mode::Hang && Instant::now() < until {
            mode = self
                .changed
                .wait_timeout(mode, Duration::from_millis(100))
                .expect("mode")
                .0;
        }
        if *mode == Mode::Fail {
            return Err(Error::Other {
                context: "test key service".to_owned(),
                source: Arc::new(Injected),
            });
        }
        Ok(())
    }

    fn current_key_id(&self) -> String {
        self.current.lock().expect("current").clone()
    }

    fn encrypts(&self) -> u64 {
        self.encrypt_calls.load(Ordering::SeqCst)
    }

    fn decrypts(&self) -> u64 {
        self.decrypt_calls.load(Ordering::SeqCst)
    }
}

impl KeyService for FaultyService {
    fn status(&self) -> Result<Status, Error> {
        self.status_calls.fetch_add(1, Ordering::SeqCst);
        self.gate()?;
        Ok(Status::new("v2", "ok", self.current_key_id()))
    }

    fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        self.encrypt_calls.fetch_add(1, Ordering::SeqCst);
        self.gate()?;
        let id = self.current_key_id();
        let keys = self.keys.lock().expect("keys");
        let mut response = keys
            .get(&id)
            .expect("current key")
            .encrypt(uid, plaintext)?;
        response.annotations =
            BTreeMap::from([("version.kms.example.com".to_owned(), b"1".to_vec())]);
        Ok(response)
    }

    fn decrypt(&self, uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.decrypt_calls.fetch_add(1, Ordering::SeqCst);
        self.gate()?;
        assert_eq!(
            request.annotations.get("version.kms.example.com"),
            Some(&b"1".to_vec()),
            "annotations must travel through the plugin"
        );
        let keys = self.keys.lock().expect("keys");
        let Some(key) = keys.get(&request.key_id) else {
            return Err(KmsError::UnwrapRefused {
                reason: format!("unknown key id {:?}", request.key_id),
            }
            .into());
        };
        let plain = DecryptRequest::new(
            request.ciphertext.clone(),
            request.key_id.clone(),
            BTreeMap::new(),
        );
        key.decrypt(uid, &plain)
    }
}

/// A plugin server on a runtime of its own.
struct Served {
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<Result<(), Error>>>,
}

impl Served {
    fn start(endpoint: &str, service: Arc<dyn KeyService>) -> Self {
        Self::start_with(
            endpoint,
            service,
            ServeOptions::default().grace(Duration::from_millis(500)),
        )
    }

    fn start_with(endpoint: &str, service: Arc<dyn KeyService>, options: ServeOptions) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = PluginServer::bind(endpoint, service, options).expect("bind");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = runtime.spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Self {
            runtime: Some(runtime),
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Graceful shutdown; returns what `serve` returned.
    fn stop(mut self) -> Result<(), Error> {
        drop(self.stop.take());
        let runtime = self.runtime.take().expect("runtime");
        let done = self.done.take().expect("task");
        let result = runtime.block_on(done).expect("serve task");
        runtime.shutdown_timeout(Duration::from_millis(100));
        result
    }

    /// Abrupt: every task (listener, connections, calls) is dropped where it stands.
    fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

fn socket_endpoint(dir: &Path) -> String {
    format!("unix://{}", dir.join("kms.sock").display())
}

fn abstract_endpoint(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "unix:///@encrypted-core-test-{}-{tag}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

const RESOURCE: &str = "users.obot.obot.ai";

fn config(endpoint: &str, timeout: &str) -> EncryptionConfiguration {
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1\n\
         kind: EncryptionConfiguration\n\
         resources:\n  \
           - resources: [{RESOURCE}]\n    \
             providers:\n      \
               - kms:\n          \
                   apiVersion: v2\n          \
                   name: plugin\n          \
                   endpoint: {endpoint}\n          \
                   timeout: {timeout}\n"
    );
    EncryptionConfiguration::from_yaml(&yaml).expect("valid configuration")
}

/// A keyring on the default registry (so `unix://` is the real plugin client).
fn keyring(config: &EncryptionConfiguration, options: KmsOptions) -> (Keyring, KeyServiceRegistry) {
    let registry = KeyServiceRegistry::default().options(options);
    let keyring = Keyring::builder()
        .kms(registry.factory())
        .build(config)
        .expect("keyring");
    (keyring, registry)
}

fn quiet() -> KmsOptions {
    KmsOptions::default().background_polling(false)
}

/// The plugin-level error under a key-service call error.
fn plugin_error(e: &Error) -> &KmsError {
    match e {
        Error::Kms(KmsError::Call { source, .. }) => match &**source {
            Error::Kms(inner) => inner,
            other => panic!("expected a typed plugin error, got {other}"),
        },
        Error::Kms(inner) => inner,
        other => panic!("expected a KMS error, got {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Client ↔ server
// ---------------------------------------------------------------------------------------------

fn exercise_client(endpoint: &str) {
    let service = FaultyService::new(1);
    let server = Served::start(endpoint, Arc::clone(&service) as Arc<dyn KeyService>);
    let client = PluginClient::new(endpoint, Duration::from_secs(3)).expect("client");
    let status = client.status().expect("status");
    assert_eq!(status.version, "v2");
    assert_eq!(status.healthz, "ok");
    assert_eq!(status.key_id, service.current_key_id());

    let seed = [0xa5u8; 32];
    let wrapped = client.encrypt("uid-1", &seed).expect("encrypt");
    assert_eq!(wrapped.key_id, status.key_id);
    assert_eq!(
        wrapped.annotations.get("version.kms.example.com"),
        Some(&b"1".to_vec())
    );
    assert_ne!(&wrapped.ciphertext[..], &seed[..]);
    let request = DecryptRequest::new(
        wrapped.ciphertext.clone(),
        wrapped.key_id.clone(),
        wrapped.annotations.clone(),
    );
    assert_eq!(&*client.decrypt("uid-2", &request).expect("decrypt"), &seed);

    // An unknown key id: the plugin's refusal arrives as INVALID_ARGUMENT.
    let unknown = DecryptRequest::new(wrapped.ciphertext, "no-such-key", wrapped.annotations);
    let err = client
        .decrypt("uid-3", &unknown)
        .expect_err("unknown key id");
    match plugin_error(&err) {
        KmsError::PluginStatus { code, message, .. } => {
            assert_eq!(*code, 3, "{err}");
            assert!(message.contains("unknown key id"), "{message}");
        }
        other => panic!("expected a plugin status, got {other:?}"),
    }
    assert_eq!(service.encrypts(), 1);
    assert_eq!(service.decrypts(), 2);
    server.stop().expect("graceful stop");
}

#[test]
fn client_and_server_over_a_socket_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    exercise_client(&endpoint);
    assert!(
        !dir.path().join("kms.sock").exists(),
        "graceful shutdown removes the socket file"
    );
}

#[test]
fn client_and_server_over_an_abstract_socket() {
    exercise_client(&abstract_endpoint("abstract"));
}

#[test]
fn socket_file_is_private_and_stale_files_are_replaced() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kms.sock");
    let endpoint = socket_endpoint(dir.path());
    let service: Arc<dyn KeyService> = FaultyService::new(1);

    // A stale socket (its listener is gone) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    assert!(path.exists());
    let server = Served::start(&endpoint, Arc::clone(&service));
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // A live one is not.
    let err = PluginServer::bind(&endpoint, Arc::clone(&service), ServeOptions::default())
        .expect_err("in use");
    assert!(
        matches!(&err, Error::Kms(KmsError::PluginServer { reason, .. }) if reason.contains("another process")),
        "{err}"
    );
    server.kill();

    // Nor is a regular file.
    std::fs::write(&path, b"not a socket").expect("file");
    let err = PluginServer::bind(&endpoint, Arc::clone(&service), ServeOptions::default())
        .expect_err("regular file");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).expect("untouched"), b"not a socket");

    for bad in ["unix://relative", "unix:///@", "tcp://127.0.0.1:1"] {
        let err =
            PluginServer::bind(bad, Arc::clone(&service), ServeOptions::default()).expect_err(bad);
        assert!(
            matches!(err, Error::Kms(KmsError::InvalidPluginEndpoint { .. })),
            "{bad}: {err}"
        );
    }
}

#[test]
fn unreachable_plugin_is_a_typed_error_and_is_picked_up_when_it_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let client = PluginClient::new(&endpoint, Duration::from_secs(2)).expect("client");
    let started = Instant::now();
    let err = client.status().expect_err("no plugin yet");
    assert!(started.elapsed() < Duration::from_secs(1), "fails fast");
    assert!(
        matches!(&err, Error::Kms(KmsError::PluginUnavailable { .. })),
        "{err:?}"
    );
    let service: Arc<dyn KeyService> = FaultyService::new(1);
    let server = Served::start(&endpoint, Arc::clone(&service));
    client.status().expect("picked up once it listens");
    server.kill();
    let err = client.status().expect_err("killed");
    assert!(
        matches!(&err, Error::Kms(KmsError::PluginUnavailable { .. })),
        "{err:?}"
    );
    let server = Served::start(&endpoint, service);
    // The first call after a restart may still see the old connection fail; the next one works.
    let deadline = Instant::now() + Duration::from_secs(3);
    while client.status().is_err() {
        assert!(Instant::now() < deadline, "client did not reconnect");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop().expect("stop");
}

#[test]
fn timeout_is_honoured_for_every_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let service = FaultyService::new(1);
    let server = Served::start(&endpoint, Arc::clone(&service) as Arc<dyn KeyService>);
    let timeout = Duration::from_millis(300);
    let client = PluginClient::new(&endpoint, timeout).expect("client");
    let wrapped = client.encrypt("uid", &[1u8; 32]).expect("encrypt");
    service.set_mode(Mode::Hang);
    let request = DecryptRequest::new(wrapped.ciphertext, wrapped.key_id, wrapped.annotations);
    type Call<'a> = Box<dyn Fn() -> Result<(), Error> + 'a>;
    let calls: [(&str, Call<'_>); 3] = [
        ("status", Box::new(|| client.status().map(drop))),
        (
            "encrypt",
            Box::new(|| client.encrypt("uid", &[2u8; 32]).map(drop)),
        ),
        (
            "decrypt",
            Box::new(|| client.decrypt("uid", &request).map(drop)),
        ),
    ];
    for (name, call) in calls {
        let started = Instant::now();
        let err = call().expect_err(name);
        let took = started.elapsed();
        assert!(
            matches!(&err, Error::Kms(KmsError::PluginTimeout { timeout: t, .. }) if *t == timeout),
            "{name}: {err:?}"
        );
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(700),
            "{name} took {took:?}"
        );
        assert!(err.to_string().contains("300ms"), "{err}");
    }
    service.set_mode(Mode::Normal);
    client.status().expect("answers again");
    server.stop().expect("stop");
}

#[test]
fn graceful_shutdown_waits_for_calls_in_flight_at_most_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let service = FaultyService::new(1);
    let grace = Duration::from_millis(300);
    let server = Served::start_with(
        &endpoint,
        Arc::clone(&service) as Arc<dyn KeyService>,
        ServeOptions::default().grace(grace),
    );
    let client = PluginClient::new(&endpoint, Duration::from_secs(5)).expect("client");
    client.status().expect("status");
    service.set_mode(Mode::Hang);
    let caller = std::thread::spawn(move || client.status());
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    server.stop().expect("stop");
    let took = started.elapsed();
    assert!(took < grace + Duration::from_millis(500), "took {took:?}");
    assert!(!dir.path().join("kms.sock").exists());
    let err = caller
        .join()
        .expect("caller")
        .expect_err("the hung call fails");
    assert!(
        matches!(
            &err,
            Error::Kms(KmsError::PluginUnavailable { .. } | KmsError::PluginTimeout { .. })
        ),
        "{err:?}"
    );
    service.set_mode(Mode::Normal);
}

#[test]
fn plugin_errors_arrive_as_typed_statuses_without_secrets() {
    let endpoint = abstract_endpoint("errors");
    let service = FaultyService::new(1);
    let server = Served::start(&endpoint, Arc::clone(&service) as Arc<dyn KeyService>);
    let client = PluginClient::new(&endpoint, Duration::from_secs(3)).expect("client");
    service.set_mode(Mode::Fail);
    let secret = [0x42u8; 32];
    let err = client.encrypt("uid", &secret).expect_err("injected");
    match &err {
        Error::Kms(KmsError::PluginStatus { code, message, .. }) => {
            assert_eq!(*code, 13);
            assert!(message.contains("injected fault"), "{message}");
        }
        other => panic!("expected a plugin status, got {other:?}"),
    }
    let text = format!("{err} {err:?}");
    assert!(text.contains("INTERNAL"), "{text}");
    assert!(!text.contains("4242424242"), "{text}");
    service.set_mode(Mode::Normal);
    server.stop().expect("stop");
}

#[tokio::test(flavor = "current_thread")]
async fn client_is_callable_from_inside_a_tokio_runtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let service: Arc<dyn KeyService> = FaultyService::new(1);
    // The server runs on this very runtime; the synchronous client runs on its own.
    let server = PluginServer::bind(&endpoint, service, ServeOptions::default()).expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let client = Arc::new(PluginClient::new(&endpoint, Duration::from_secs(3)).expect("client"));
    // From a blocking-pool thread of this runtime, as async code should call it ...
    let c = Arc::clone(&client);
    let status = tokio::task::spawn_blocking(move || c.status())
        .await
        .expect("join")
        .expect("status");
    assert_eq!(status.healthz, "ok");
    // ... and from a thread that is inside another runtime (no nested block_on panic).
    let c = Arc::clone(&client);
    let other = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move { c.status() })
    });
    // Keep this runtime free to serve while the other thread waits.
    let status = tokio::task::spawn_blocking(move || other.join().expect("thread"))
        .await
        .expect("join")
        .expect("status from inside another runtime");
    assert_eq!(status.healthz, "ok");
    drop(client); // dropping it inside a runtime is fine too
    drop(stop);
    served.await.expect("join").expect("serve");
}

// ---------------------------------------------------------------------------------------------
// The envelope through the plugin
// ---------------------------------------------------------------------------------------------

#[test]
fn envelope_round_trip_through_a_keyring_with_a_unix_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let service = FaultyService::new(1);
    let server = Served::start(&endpoint, Arc::clone(&service) as Arc<dyn KeyService>);
    let config = config(&endpoint, "2s");
    let (keyring, registry) = keyring(&config, quiet());
    let stored = keyring
        .encrypt(RESOURCE, b"alice@example.com", b"users/alice")
        .expect("encrypt");
    assert!(stored.starts_with(b"k8s:enc:kms:v2:plugin:"));
    let read = keyring
        .decrypt(RESOURCE, &stored, b"users/alice")
        .expect("decrypt");
    assert_eq!(read.plaintext, b"alice@example.com");
    assert!(!read.stale);
    assert!(
        keyring.decrypt(RESOURCE, &stored, b"users/bob").is_err(),
        "context is bound"
    );

    // A fresh keyring (another process) reads it through one Decrypt.
    let (fresh, _) = keyring_fresh(&config);
    assert_eq!(
        fresh
            .decrypt(RESOURCE, &stored, b"users/alice")
            .expect("fresh read")
            .plaintext,
        b"alice@example.com"
    );
    assert_eq!(service.decrypts(), 1);

    // The plugin rotates: after a poll, new writes use the new key id and old values are stale.
    let old_key = service.current_key_id();
    let new_key = service.rotate(2);
    let transformer = registry.providers().get("plugin").expect("provider");
    transformer.poll_now().expect("poll");
    assert_eq!(transformer.health().write_key_id, Some(new_key.clone()));
    let read = keyring
        .decrypt(RESOURCE, &stored, b"users/alice")
        .expect("old value");
    assert!(read.stale, "written under {old_key}, current {new_key}");
    let again = keyring
        .encrypt(RESOURCE, b"alice@example.com", b"users/alice")
        .expect("encrypt");
    assert!(
        !keyring
            .decrypt(RESOURCE, &again, b"users/alice")
            .expect("new")
            .stale
    );
    assert_eq!(
        transformer.metrics().encrypt_calls,
        2,
        "one wrap per key id in this keyring"
    );
    server.stop().expect("stop");
}

fn keyring_fresh(config: &EncryptionConfiguration) -> (Keyring, KeyServiceRegistry) {
    keyring(config, quiet())
}

/// One gRPC health `Check` of `name` on the plugin socket at `path`, with tonic-health's client.
async fn health_check(
    path: &Path,
    name: &str,
) -> Result<tonic_health::pb::HealthCheckResponse, tonic::Status> {
    let path = path.to_owned();
    let channel = tonic::transport::Endpoint::from_static("http://kms.sock")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .expect("connect to the plugin socket");
    let request = tonic_health::pb::HealthCheckRequest {
        service: name.to_owned(),
    };
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The standard gRPC health service of the plugin server, as a Kubernetes probe or
/// `grpc_health_probe` sees it: a tonic-health client over the Unix socket, for the whole server
/// (`""`) and for `v2.KeyManagementService`, following the key service's `status`.
#[test]
fn grpc_health_service_follows_the_key_service() {
    use tonic_health::pb::health_check_response::ServingStatus;

    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let path = dir.path().join("kms.sock");
    let service = FaultyService::new(9);
    let server = Served::start_with(
        &endpoint,
        Arc::clone(&service) as Arc<dyn KeyService>,
        ServeOptions::default().health_interval(Duration::from_millis(50)),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let check = |name: &str| -> ServingStatus {
        let response = runtime
            .block_on(health_check(&path, name))
            .expect("health check answered");
        ServingStatus::try_from(response.status).expect("known status")
    };
    let wait_for = |want: ServingStatus| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (whole, kms) = (check(""), check("v2.KeyManagementService"));
            if whole == want && kms == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "health stayed {whole:?}/{kms:?}, expected {want:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(ServingStatus::Serving);
    service.set_mode(Mode::Fail);
    wait_for(ServingStatus::NotServing);
    service.set_mode(Mode::Normal);
    wait_for(ServingStatus::Serving);
    // An unknown service name is NOT_FOUND, as the gRPC health protocol says.
    let unknown = runtime
        .block_on(health_check(&path, "no.such.Service"))
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    server.stop().expect("stop");
}

#[test]
fn call_counts_through_the_plugin_100k_writes_one_encrypt_one_decrypt() {
    const N: usize = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let service = FaultyService::new(3);
    let server = Served::start_with(
        &endpoint,
        Arc::clone(&service) as Arc<dyn KeyService>,
        ServeOptions::default().health_interval(Duration::from_secs(3600)),
    );
    let config = config(&endpoint, "3s");
    let stored: Vec<Vec<u8>> = {
        let (writer, _) = keyring(&config, quiet());
        (0..N)
            .map(|i| {
                writer
                    .encrypt(RESOURCE, format!("value {i}").as_bytes(), b"ctx")
                    .expect("encrypt")
            })
            .collect()
    };
    assert_eq!(service.encrypts(), 1, "{N} writes, one Encrypt RPC");
    assert_eq!(service.decrypts(), 0);

    let wraps_before_reading = service.encrypts();
    let (reader, registry) = keyring(&config, quiet());
    // Starting up wraps the reader's own write seed (as a Kubernetes API server does): one more
    // Encrypt, which is not a read.
    assert_eq!(service.encrypts(), wraps_before_reading + 1);
    for (i, value) in stored.iter().enumerate() {
        let read = reader.decrypt(RESOURCE, value, b"ctx").expect("decrypt");
        assert_eq!(read.plaintext, format!("value {i}").as_bytes());
    }
    assert_eq!(
        service.decrypts(),
        1,
        "{N} reads in a fresh keyring, one Decrypt RPC"
    );
    let metrics = registry
        .providers()
        .get("plugin")
        .expect("provider")
        .metrics();
    assert_eq!(metrics.decrypt_calls, 1);
    eprintln!(
        "call counts through the plugin (server side): {N} writes -> {wraps_before_reading} \
         Encrypt; a fresh keyring reading the {N} values -> {} Decrypt (and 1 Encrypt for its own \
         start-up seed); {} Status in all",
        service.decrypts(),
        service.status_calls.load(Ordering::SeqCst)
    );
    server.stop().expect("stop");
}

// ---------------------------------------------------------------------------------------------
// Faults under load
// ---------------------------------------------------------------------------------------------

/// What a load run saw.
#[derive(Debug, Default)]
struct Tally {
    writes_ok: AtomicU64,
    writes_failed: AtomicU64,
    reads_ok: AtomicU64,
    reads_failed: AtomicU64,
    /// Failures by typed kind.
    kinds: Mutex<BTreeMap<&'static str, u64>>,
    /// When the last failure happened.
    last_failure: Mutex<Option<Instant>>,
}

impl Tally {
    fn failed(&self, e: &Error) {
        let kind = classify(e);
        *self.kinds.lock().expect("kinds").entry(kind).or_default() += 1;
        *self.last_failure.lock().expect("last failure") = Some(Instant::now());
    }

    fn report(&self, scenario: &str, restored: Option<Instant>) -> String {
        let last = *self.last_failure.lock().expect("last failure");
        let resumed = match (restored, last) {
            (Some(back), Some(last)) if last > back => {
                format!("last failure {:?} after the plugin returned", last - back)
            }
            (Some(_), _) => "no failure after the plugin returned".to_owned(),
            (None, _) => "no outage".to_owned(),
        };
        format!(
            "{scenario}: writes ok {} failed {}, reads ok {} failed {}, failures {:?}, {resumed}",
            self.writes_ok.load(Ordering::SeqCst),
            self.writes_failed.load(Ordering::SeqCst),
            self.reads_ok.load(Ordering::SeqCst),
            self.reads_failed.load(Ordering::SeqCst),
            self.kinds.lock().expect("kinds"),
        )
    }
}

/// The typed kind of a failure under faults; anything else fails the test.
fn classify(e: &Error) -> &'static str {
    match e {
        Error::Kms(KmsError::WriteWindowExpired { .. }) => "write window expired",
        Error::Kms(KmsError::NoWriteSeed { .. }) => "no write seed",
        Error::Kms(KmsError::KeyIdMismatch { .. }) => "key id mismatch",
        Error::Kms(KmsError::Call {
            operation, source, ..
        }) => match (&**source, operation) {
            (Error::Kms(KmsError::PluginUnavailable { .. }), _) => "unavailable",
            (Error::Kms(KmsError::PluginTimeout { .. }), _) => "timeout",
            (Error::Kms(KmsError::PluginStatus { .. }), KmsOperation::Decrypt) => {
                "plugin error (decrypt)"
            }
            (Error::Kms(KmsError::PluginStatus { .. }), _) => "plugin error",
            (other, _) => panic!("untyped key-service failure: {other:?}"),
        },
        other => panic!("unexpected failure under faults: {other:?}"),
    }
}

/// An acknowledged write: plaintext, context, stored bytes.
type Written = (String, String, Vec<u8>);

const WRITERS: usize = 3;
const READERS: usize = 2;

/// Runs writers and readers against the plugin at `endpoint` for `duration` while `fault` runs
/// (it gets the elapsed-time origin); then checks that service resumes by itself and that every
/// write that returned `Ok` reads back exactly through a fresh keyring.
fn load_under_fault(
    scenario: &str,
    endpoint: &str,
    duration: Duration,
    fault: impl FnOnce(Instant) -> Option<Instant> + Send,
) -> (Arc<Tally>, KmsMetrics) {
    let config = config(endpoint, "250ms");
    // Writes go on for a short window after the last good status, then fail typed; the poller
    // retries quickly.
    let options = KmsOptions::default()
        .healthy_interval(Duration::from_millis(100))
        .unhealthy_interval(Duration::from_millis(50))
        .write_window(Duration::from_millis(300));
    let (writer, registry) = keyring(&config, options);
    let writer = Arc::new(writer);
    let written: Arc<RwLock<Vec<Written>>> = Arc::default();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut restored = None;

    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (writer, written, tally, stop) = (&writer, &written, &tally, &stop);
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let plaintext =
                        format!("writer {w} value {i} {}", "x".repeat((i % 50) as usize));
                    let aad = format!("{RESOURCE}/{w}/{i}");
                    match writer.encrypt(RESOURCE, plaintext.as_bytes(), aad.as_bytes()) {
                        Ok(stored) => {
                            tally.writes_ok.fetch_add(1, Ordering::SeqCst);
                            written
                                .write()
                                .expect("written")
                                .push((plaintext, aad, stored));
                        }
                        Err(e) => {
                            tally.writes_failed.fetch_add(1, Ordering::SeqCst);
                            tally.failed(&e);
                        }
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_micros(300));
                }
            });
        }
        for r in 0..READERS {
            let (config, written, tally, stop) = (&config, &written, &tally, &stop);
            s.spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ (r as u64 + 1);
                // A cold keyring every 100 ms: its reads need Decrypt RPCs.
                let mut reader: Option<(Keyring, Instant)> = None;
                while !stop.load(Ordering::SeqCst) {
                    if reader
                        .as_ref()
                        .is_none_or(|(_, born)| born.elapsed() > Duration::from_millis(100))
                    {
                        reader = Some((keyring(config, quiet()).0, Instant::now()));
                    }
                    let Some((keys, _)) = &reader else { continue };
                    let pick = {
                        let written = written.read().expect("written");
                        if written.is_empty() {
                            None
                        } else {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            Some(written[(rng % written.len() as u64) as usize].clone())
                        }
                    };
                    let Some((plaintext, aad, stored)) = pick else {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    match keys.decrypt(RESOURCE, &stored, aad.as_bytes()) {
                        Ok(read) => {
                            assert_eq!(read.plaintext, plaintext.as_bytes(), "wrong value read");
                            tally.reads_ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            tally.reads_failed.fetch_add(1, Ordering::SeqCst);
                            tally.failed(&e);
                        }
                    }
                    std::thread::sleep(Duration::from_micros(300));
                }
            });
        }
        restored = fault(start);
        let rest = duration.saturating_sub(start.elapsed());
        std::thread::sleep(rest);
        stop.store(true, Ordering::SeqCst);
    });

    // Service resumes by itself: the background poller finds the plugin again and writes work.
    let back = Instant::now();
    let transformer = registry.providers().get("plugin").expect("provider");
    loop {
        if writer.encrypt(RESOURCE, b"probe", b"probe").is_ok() && transformer.health().healthy {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "{scenario}: service did not resume: {:?}",
            transformer.health()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // No write is lost: every acknowledged write reads back exactly, in a fresh keyring (so
    // through Decrypt RPCs) and in the writer's.
    let (fresh, _) = keyring(&config, quiet());
    let written = written.read().expect("written");
    for (plaintext, aad, stored) in written.iter() {
        for keys in [&fresh, &*writer] {
            let read = keys
                .decrypt(RESOURCE, stored, aad.as_bytes())
                .unwrap_or_else(|e| panic!("{scenario}: acknowledged write lost: {e}"));
            assert_eq!(read.plaintext, plaintext.as_bytes());
        }
    }
    assert_eq!(written.len() as u64, tally.writes_ok.load(Ordering::SeqCst));
    assert!(
        tally.writes_ok.load(Ordering::SeqCst) > 100,
        "{scenario}: load ran"
    );
    assert!(
        tally.reads_ok.load(Ordering::SeqCst) > 100,
        "{scenario}: load ran"
    );
    if let (Some(back), Some(last)) = (restored, *tally.last_failure.lock().expect("last")) {
        assert!(
            last < back + Duration::from_secs(1),
            "{scenario}: failures went on {:?} after the plugin returned",
            last - back
        );
    }
    eprintln!("{}", tally.report(scenario, restored));
    (tally, transformer.metrics())
}

/// Waits until `elapsed` since `start`.
fn at(start: Instant, elapsed: Duration) {
    std::thread::sleep(elapsed.saturating_sub(start.elapsed()));
}

#[test]
fn fault_plugin_killed_and_restarted_under_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let service = FaultyService::new(1);
    let server = Mutex::new(Some(Served::start(
        &endpoint,
        Arc::clone(&service) as Arc<dyn KeyService>,
    )));
    let (tally, _) = load_under_fault("killed", &endpoint, Duration::from_millis(2500), |start| {
        at(start, Duration::from_millis(500));
        server
            .lock()
            .expect("server")
            .take()
            .expect("running")
            .kill();
        at(start, Duration::from_millis(1500));
        *server.lock().expect("server") = Some(Served::start(
            &endpoint,
            Arc::clone(&service) as Arc<dyn KeyService>,
        ));
        Some(Instant::now())
    });
    let kinds = tally.kinds.lock().expect("kinds");
    assert!(
        kinds.get("unavailable").copied().unwrap_or(0) > 0,
        "the outage was seen: {kinds:?}"
    );
    assert!(
        kinds.get("write window expired").copied().unwrap_or(0) > 0,
        "writes stop after the window: {kinds:?}"
    );
}

#[test]
fn fault_plugin_hanging_past_the_timeout_under_load() {
    let endpoint = abstract_endpoint("hang");
    let service = FaultyService::new(1);
    let server = Served::start(&endpoint, Arc::clone(&service) as Arc<dyn KeyService>);
    let (tally, _) = load_under_fault("hanging", &endpoint, Duration::from_millis(2500), |start| {
        at(start, Duration::from_millis(500));
        service.set_mode(Mode::Hang);
        at(start, Duration::from_millis(1500));
        service.set_mode(Mode::Normal);
        Some(Instant::now())
    });
    let kinds = tally.kinds.lock().expect("kinds");
    assert!(
        kinds.get("timeout").copied().unwrap_or(0) > 0,
        "the hang was seen as timeouts: {kinds:?}"
    );
    drop(kinds);
    server.stop().expect("stop");
}

#[test]
fn fault_plugin_returning_errors_under_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let service = FaultyService::new(1);
    let server = Served::start(&endpoint, Arc::clone(&service) as Arc<dyn KeyService>);
    let (tally, _) = load_under_fault("errors", &endpoint, Duration::from_millis(2500), |start| {
        at(start, Duration::from_millis(500));
        service.set_mode(Mode::Fail);
        at(start, Duration::from_millis(1500));
        service.set_mode(Mode::Normal);
        Some(Instant::now())
    });
    let kinds = tally.kinds.lock().expect("kinds");
    assert!(
        kinds.keys().any(|k| k.starts_with("plugin error")),
        "the errors were seen: {kinds:?}"
    );
    drop(kinds);
    server.stop().expect("stop");
}

#[test]
fn fault_plugin_rotating_its_key_id_under_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let service = FaultyService::new(1);
    let server = Served::start(&endpoint, Arc::clone(&service) as Arc<dyn KeyService>);
    let (tally, writer) = load_under_fault(
        "rotating",
        &endpoint,
        Duration::from_millis(2500),
        |start| {
            for (i, seed) in (2u8..=6).enumerate() {
                at(start, Duration::from_millis(300 + 400 * i as u64));
                service.rotate(seed);
            }
            None
        },
    );
    // Every rotation reached the writer (a new seed per key id) and nothing failed for it.
    assert_eq!(writer.seeds_generated, 6, "a seed per key id: {writer:?}");
    assert_eq!(
        tally.writes_failed.load(Ordering::SeqCst),
        0,
        "{:?}",
        tally.kinds
    );
    assert_eq!(
        tally.reads_failed.load(Ordering::SeqCst),
        0,
        "{:?}",
        tally.kinds
    );
    server.stop().expect("stop");
}

// ---------------------------------------------------------------------------------------------
// Any :authority: a hand-written HTTP/2 client, as grpc-go 1.33 talks
// ---------------------------------------------------------------------------------------------

/// Just enough HTTP/2 to make gRPC calls by hand over a Unix socket: frames written and read
/// one by one, header blocks written with literal fields chosen by the test, responses decoded
/// with the server-independent HPACK decoder.
mod raw_h2 {
    use std::io::{Read as _, Write as _};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use encrypted_core::kms::plugin::hpack::Decoder;

    pub(crate) const DATA: u8 = 0x0;
    pub(crate) const HEADERS: u8 = 0x1;
    pub(crate) const RST_STREAM: u8 = 0x3;
    pub(crate) const SETTINGS: u8 = 0x4;
    pub(crate) const PING: u8 = 0x6;
    pub(crate) const GOAWAY: u8 = 0x7;
    pub(crate) const END_STREAM: u8 = 0x1;
    pub(crate) const END_HEADERS: u8 = 0x4;
    pub(crate) const ACK: u8 = 0x1;

    pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).expect("short").to_be_bytes();
        let mut out = len[1..].to_vec();
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// An HPACK string literal, not Huffman-coded (the tests keep them under 127 bytes).
    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.push(u8::try_from(s.len()).expect("short string"));
        out.extend_from_slice(s);
    }

    /// Literal without indexing, name from the static table (index < 15).
    pub(crate) fn literal(index: u8, value: &str) -> Vec<u8> {
        let mut out = vec![index];
        string(&mut out, value.as_bytes());
        out
    }

    /// Literal without indexing, new name.
    pub(crate) fn literal_new(name: &str, value: &str) -> Vec<u8> {
        let mut out = vec![0x00];
        string(&mut out, name.as_bytes());
        string(&mut out, value.as_bytes());
        out
    }

    /// Literal with incremental indexing, name from the static table (index < 63): the
    /// client's encoder adds it to the dynamic table.
    pub(crate) fn indexed_literal(index: u8, value: &str) -> Vec<u8> {
        let mut out = vec![0x40 | index];
        string(&mut out, value.as_bytes());
        out
    }

    /// Literal never indexed, name from the static table (index < 15).
    pub(crate) fn never_indexed(index: u8, value: &str) -> Vec<u8> {
        let mut out = vec![0x10 | index];
        string(&mut out, value.as_bytes());
        out
    }

    /// A gRPC call's request headers, with the given `:authority` representation.
    pub(crate) fn request(method: &str, authority: &[u8]) -> Vec<u8> {
        [
            literal(2, "POST"),
            literal(6, "http"),
            literal(4, &format!("/v2.KeyManagementService/{method}")),
            authority.to_vec(),
            literal_new("content-type", "application/grpc"),
            literal_new("te", "trailers"),
        ]
        .concat()
    }

    #[derive(Debug, Default)]
    pub(crate) struct Response {
        pub(crate) headers: Vec<(String, String)>,
        pub(crate) message: Vec<u8>,
        pub(crate) trailers: Vec<(String, String)>,
        /// The RST_STREAM or GOAWAY error code, if the stream was refused.
        pub(crate) reset: Option<u32>,
    }

    impl Response {
        pub(crate) fn trailer(&self, name: &str) -> Option<&str> {
            self.trailers
                .iter()
                .chain(&self.headers)
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    pub(crate) struct Client {
        sock: UnixStream,
        decoder: Decoder,
    }

    impl Client {
        pub(crate) fn connect(path: &std::path::Path) -> Self {
            let mut sock = UnixStream::connect(path).expect("connect");
            // Not a timing assertion: it only keeps a broken server from hanging the test.
            sock.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            sock.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .expect("preface");
            sock.write_all(&frame(SETTINGS, 0, 0, &[]))
                .expect("settings");
            Self {
                sock,
                decoder: Decoder::new(4096),
            }
        }

        fn read_frame(&mut self) -> (u8, u8, u32, Vec<u8>) {
            let mut head = [0u8; 9];
            self.sock.read_exact(&mut head).expect("frame header");
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let stream = u32::from_be_bytes([head[5] & 0x7f, head[6], head[7], head[8]]);
            let mut payload = vec![0u8; len];
            self.sock.read_exact(&mut payload).expect("frame payload");
            (head[3], head[4], stream, payload)
        }

        fn fields(&mut self, block: &[u8]) -> Vec<(String, String)> {
            self.decoder
                .decode(block, 1 << 20)
                .expect("the server's header block decodes")
                .into_iter()
                .map(|f| {
                    (
                        String::from_utf8(f.name).expect("name"),
                        String::from_utf8(f.value).expect("value"),
                    )
                })
                .collect()
        }

        /// One unary gRPC call on `stream` with the header block `headers`.
        pub(crate) fn call(&mut self, stream: u32, headers: &[u8], message: &[u8]) -> Response {
            let mut grpc = vec![0u8];
            grpc.extend_from_slice(&u32::try_from(message.len()).expect("short").to_be_bytes());
            grpc.extend_from_slice(message);
            let mut out = frame(HEADERS, END_HEADERS, stream, headers);
            out.extend(frame(DATA, END_STREAM, stream, &grpc));
            self.sock.write_all(&out).expect("request");
            let mut response = Response::default();
            loop {
                let (kind, flags, on, payload) = self.read_frame();
                match kind {
                    SETTINGS if flags & ACK == 0 => {
                        self.sock
                            .write_all(&frame(SETTINGS, ACK, 0, &[]))
                            .expect("settings ack");
                    }
                    PING if flags & ACK == 0 => {
                        self.sock
                            .write_all(&frame(PING, ACK, 0, &payload))
                            .expect("ping ack");
                    }
                    GOAWAY => {
                        let code = u32::from_be_bytes(payload[4..8].try_into().expect("code"));
                        response.reset = Some(code);
                        return response;
                    }
                    RST_STREAM if on == stream => {
                        let code = u32::from_be_bytes(payload[..4].try_into().expect("code"));
                        response.reset = Some(code);
                        return response;
                    }
                    HEADERS if on == stream => {
                        assert_ne!(flags & END_HEADERS, 0, "the test expects small blocks");
                        let fields = self.fields(&payload);
                        if response.headers.is_empty() {
                            response.headers = fields;
                        } else {
                            response.trailers = fields;
                        }
                        if flags & END_STREAM != 0 {
                            return response;
                        }
                    }
                    DATA if on == stream => {
                        response.message.extend_from_slice(&payload);
                        if flags & END_STREAM != 0 {
                            return response;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The protobuf fields (all length-delimited in these messages) of a gRPC response body.
    pub(crate) fn message_fields(body: &[u8]) -> Vec<(u64, Vec<u8>)> {
        assert!(
            body.len() >= 5 && body[0] == 0,
            "an uncompressed gRPC message"
        );
        let len = u32::from_be_bytes(body[1..5].try_into().expect("length")) as usize;
        let mut rest = &body[5..5 + len];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (tag, after) = varint(rest);
            assert_eq!(tag & 7, 2, "length-delimited field");
            let (len, after) = varint(after);
            let len = usize::try_from(len).expect("length");
            out.push((tag >> 3, after[..len].to_vec()));
            rest = &after[len..];
        }
        out
    }

    fn varint(bytes: &[u8]) -> (u64, &[u8]) {
        let mut value = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return (value, &bytes[i + 1..]);
            }
        }
        panic!("truncated varint");
    }

    /// A length-delimited protobuf field.
    pub(crate) fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![number << 3 | 2];
        let mut len = bytes.len();
        while len >= 0x80 {
            out.push(u8::try_from(len & 0x7f).expect("7 bits") | 0x80);
            len >>= 7;
        }
        out.push(u8::try_from(len).expect("7 bits"));
        out.extend_from_slice(bytes);
        out
    }
}

#[test]
fn a_socket_path_as_authority_is_accepted_as_grpc_go_sends_it() {
    use raw_h2::{Client, field, indexed_literal, message_fields, never_indexed, request};

    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = socket_endpoint(dir.path());
    let path = dir.path().join("kms.sock");
    let socket_path = path.display().to_string();
    let local = Arc::new(LocalKeyService::from_key(&[0x42; 32], "raw-h2").expect("key"));
    let key_id = local.key_id().to_owned();
    let server = Served::start(&endpoint, local);

    let mut client = Client::connect(&path);
    // Status, with the socket path as :authority, indexed into the client's dynamic table.
    let status = client.call(
        1,
        &request("Status", &indexed_literal(1, &socket_path)),
        &[],
    );
    assert_eq!(
        status.reset, None,
        "the server refused the stream (1 = PROTOCOL_ERROR): {status:?}"
    );
    assert_eq!(status.headers[0], (":status".to_owned(), "200".to_owned()));
    assert_eq!(status.trailer("grpc-status"), Some("0"), "{status:?}");
    let fields = message_fields(&status.message);
    assert_eq!(
        fields,
        [
            (1, b"v2".to_vec()),
            (2, b"ok".to_vec()),
            (3, key_id.clone().into_bytes())
        ]
    );

    // Encrypt, with the :authority as a reference to that dynamic entry (index 62).
    let seed = [0x5au8; 32];
    let encrypt = client.call(
        3,
        &request("Encrypt", &[0xbe]),
        &[field(1, &seed), field(2, b"uid-raw-1")].concat(),
    );
    assert_eq!(encrypt.trailer("grpc-status"), Some("0"), "{encrypt:?}");
    let fields = message_fields(&encrypt.message);
    let ciphertext = fields
        .iter()
        .find(|(n, _)| *n == 1)
        .map(|(_, v)| v.clone())
        .expect("ciphertext");
    assert_ne!(ciphertext, seed);
    assert!(
        fields.contains(&(2, key_id.clone().into_bytes())),
        "{fields:?}"
    );

    // Decrypt, with the path again as a never-indexed literal.
    let decrypt = client.call(
        5,
        &request("Decrypt", &never_indexed(1, &socket_path)),
        &[
            field(1, &ciphertext),
            field(2, b"uid-raw-2"),
            field(3, key_id.as_bytes()),
        ]
        .concat(),
    );
    assert_eq!(decrypt.trailer("grpc-status"), Some("0"), "{decrypt:?}");
    assert_eq!(message_fields(&decrypt.message), [(1, seed.to_vec())]);

    // A well-formed authority is passed as it is, and a key-service error is a gRPC status on
    // a healthy connection.
    let refused = client.call(
        7,
        &request("Decrypt", &raw_h2::literal(1, "localhost")),
        &[field(1, b"garbage"), field(3, b"no-such-key")].concat(),
    );
    assert_eq!(refused.trailer("grpc-status"), Some("3"), "{refused:?}");

    // A tonic client on the same server works as before.
    let tonic = PluginClient::new(&endpoint, Duration::from_secs(3)).expect("client");
    assert_eq!(tonic.status().expect("status").key_id, key_id);
    let wrapped = tonic.encrypt("uid-tonic", &seed).expect("encrypt");
    let request = DecryptRequest::new(wrapped.ciphertext, wrapped.key_id, wrapped.annotations);
    assert_eq!(
        &*tonic.decrypt("uid-tonic-2", &request).expect("decrypt"),
        &seed
    );
    server.stop().expect("graceful stop");
}
