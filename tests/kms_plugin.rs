//! `obot-store kms-plugin` as an operator runs it: a real process serving a local key as a
//! Kubernetes KMS v2 plugin, used through a keyring with a `unix://` endpoint; killed with
//! SIGKILL under a concurrent read/write load and restarted; stopped gracefully with SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use encrypted_core::kms::plugin::PluginClient;
use encrypted_core::kms::{KeyService, KeyServiceRegistry, KmsError, KmsOptions};
use encrypted_core::{EncryptionConfiguration, Error, Keyring};

const BIN: &str = env!("CARGO_BIN_EXE_obot-store");
const RESOURCE: &str = "users.obot.obot.ai";

struct Plugin {
    child: Child,
}

impl Plugin {
    /// Starts `obot-store kms-plugin` and waits until it answers `Status`.
    fn start(endpoint: &str, keyfile: &Path) -> Self {
        let child = Command::new(BIN)
            .args([
                "kms-plugin",
                "--listen",
                endpoint,
                "--key-service",
                &format!("local://{}", keyfile.display()),
                "--grace",
                "1s",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn obot-store kms-plugin");
        let plugin = Self { child };
        let client = PluginClient::new(endpoint, Duration::from_secs(1)).expect("client");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match client.status() {
                Ok(status) if status.healthz == "ok" => break,
                other => assert!(
                    Instant::now() < deadline,
                    "plugin at {endpoint} did not come up: {other:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        plugin
    }

    /// SIGKILL: no cleanup at all (the socket file stays behind).
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then the exit status and what it printed.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        // The shell's builtin `kill` (no `unsafe` here, and no procps needed).
        let status = Command::new("sh")
            .args([
                "-c",
                "kill -TERM \"$1\"",
                "sh",
                &self.child.id().to_string(),
            ])
            .status()
            .expect("run sh -c kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("try_wait") {
                break exit;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            use std::io::Read as _;
            pipe.read_to_string(&mut stderr).expect("stderr");
        }
        (exit, stderr)
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keyfile(dir: &Path) -> PathBuf {
    let path = dir.join("kek");
    std::fs::write(&path, encrypted_core::encode_base64(&[0x17; 32])).expect("key file");
    path
}

fn config(endpoint: &str) -> EncryptionConfiguration {
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
                   timeout: 500ms\n"
    );
    EncryptionConfiguration::from_yaml(&yaml).expect("valid configuration")
}

fn keyring(config: &EncryptionConfiguration, options: KmsOptions) -> (Keyring, KeyServiceRegistry) {
    let registry = KeyServiceRegistry::default().options(options);
    let keyring = Keyring::builder()
        .kms(registry.factory())
        .build(config)
        .expect("keyring");
    (keyring, registry)
}

/// The typed kind of a failure while the plugin is down; anything else fails the test.
fn classify(e: &Error) -> &'static str {
    match e {
        Error::Kms(KmsError::WriteWindowExpired { .. }) => "write window expired",
        Error::Kms(KmsError::NoWriteSeed { .. }) => "no write seed",
        Error::Kms(KmsError::Call { source, .. }) => match &**source {
            Error::Kms(KmsError::PluginUnavailable { .. }) => "unavailable",
            Error::Kms(KmsError::PluginTimeout { .. }) => "timeout",
            Error::Kms(KmsError::PluginStatus { .. }) => "plugin error",
            other => panic!("untyped key-service failure: {other:?}"),
        },
        other => panic!("unexpected failure: {other:?}"),
    }
}

#[test]
fn plugin_process_killed_under_load_loses_nothing_and_service_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keyfile = keyfile(dir.path());
    let socket = dir.path().join("kms.sock");
    let endpoint = format!("unix://{}", socket.display());
    let plugin = Plugin::start(&endpoint, &keyfile);
    let config = config(&endpoint);
    let options = KmsOptions::default()
        .healthy_interval(Duration::from_millis(100))
        .unhealthy_interval(Duration::from_millis(50))
        .write_window(Duration::from_millis(300));
    let (writer, registry) = keyring(&config, options);
    let transformer = registry.providers().get("plugin").expect("provider");

    let written: RwLock<Vec<(String, String, Vec<u8>)>> = RwLock::default();
    let kinds: Mutex<BTreeMap<&'static str, u64>> = Mutex::default();
    let last_failure: Mutex<Option<Instant>> = Mutex::default();
    let counts = [(); 4].map(|()| AtomicU64::new(0)); // writes ok, failed, reads ok, failed
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut restarted: Option<(Plugin, Instant)> = None;
    std::thread::scope(|s| {
        for w in 0..3 {
            let (writer, written, kinds, counts, stop, last_failure) =
                (&writer, &written, &kinds, &counts, &stop, &last_failure);
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let plaintext = format!("writer {w} value {i}");
                    let aad = format!("{RESOURCE}/{w}/{i}");
                    match writer.encrypt(RESOURCE, plaintext.as_bytes(), aad.as_bytes()) {
                        Ok(stored) => {
                            counts[0].fetch_add(1, Ordering::SeqCst);
                            written
                                .write()
                                .expect("written")
                                .push((plaintext, aad, stored));
                        }
                        Err(e) => {
                            counts[1].fetch_add(1, Ordering::SeqCst);
                            *last_failure.lock().expect("last") = Some(Instant::now());
                            *kinds
                                .lock()
                                .expect("kinds")
                                .entry(classify(&e))
                                .or_default() += 1;
                        }
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_micros(300));
                }
            });
        }
        for r in 0..2u64 {
            let (config, written, kinds, counts, stop, last_failure) =
                (&config, &written, &kinds, &counts, &stop, &last_failure);
            s.spawn(move || {
                let mut rng = 0x2545_f491_4f6c_dd1d_u64 ^ (r + 1);
                let mut reader: Option<(Keyring, Instant)> = None;
                while !stop.load(Ordering::SeqCst) {
                    // A cold keyring every 100 ms, so reads need Decrypt calls.
                    if reader
                        .as_ref()
                        .is_none_or(|(_, born)| born.elapsed() > Duration::from_millis(100))
                    {
                        let quiet = KmsOptions::default().background_polling(false);
                        reader = Some((keyring(config, quiet).0, Instant::now()));
                    }
                    let Some((keys, _)) = &reader else { continue };
                    let pick = {
                        let written = written.read().expect("written");
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        (!written.is_empty())
                            .then(|| written[(rng % written.len() as u64) as usize].clone())
                    };
                    let Some((plaintext, aad, stored)) = pick else {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    match keys.decrypt(RESOURCE, &stored, aad.as_bytes()) {
                        Ok(read) => {
                            assert_eq!(read.plaintext, plaintext.as_bytes(), "wrong value read");
                            counts[2].fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            counts[3].fetch_add(1, Ordering::SeqCst);
                            *last_failure.lock().expect("last") = Some(Instant::now());
                            *kinds
                                .lock()
                                .expect("kinds")
                                .entry(classify(&e))
                                .or_default() += 1;
                        }
                    }
                    std::thread::sleep(Duration::from_micros(300));
                }
            });
        }
        std::thread::sleep(Duration::from_millis(700));
        plugin.kill();
        assert!(socket.exists(), "SIGKILL leaves the socket file behind");
        std::thread::sleep(Duration::from_millis(1000));
        // The restarted plugin replaces the stale socket file.
        restarted = Some((Plugin::start(&endpoint, &keyfile), Instant::now()));
        std::thread::sleep(Duration::from_millis(3000).saturating_sub(start.elapsed()));
        stop.store(true, Ordering::SeqCst);
    });
    let (plugin, back) = restarted.expect("restarted");

    // Service resumes by itself (the background poller finds the new process).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(transformer.health().healthy && writer.encrypt(RESOURCE, b"probe", b"p").is_ok()) {
        assert!(
            Instant::now() < deadline,
            "did not resume: {:?}",
            transformer.health()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let last_failure = last_failure
        .into_inner()
        .expect("last")
        .expect("failures were seen");
    let resumed = if last_failure > back {
        format!(
            "last failure {:?} after the new process answered",
            last_failure - back
        )
    } else {
        "no failure after the new process answered".to_owned()
    };
    assert!(last_failure < back + Duration::from_secs(1), "{resumed}");

    // No acknowledged write is lost: all read back exactly through a fresh keyring (a Decrypt
    // per seed from the restarted process) and through the writer's.
    let (fresh, _) = keyring(&config, KmsOptions::default().background_polling(false));
    let written = written.into_inner().expect("written");
    for (plaintext, aad, stored) in &written {
        for keys in [&fresh, &writer] {
            let read = keys
                .decrypt(RESOURCE, stored, aad.as_bytes())
                .unwrap_or_else(|e| panic!("acknowledged write lost: {e}"));
            assert_eq!(read.plaintext, plaintext.as_bytes());
        }
    }
    let [writes_ok, writes_failed, reads_ok, reads_failed] =
        counts.map(|c| c.load(Ordering::SeqCst));
    let kinds = kinds.into_inner().expect("kinds");
    assert_eq!(written.len() as u64, writes_ok);
    assert!(writes_ok > 100 && reads_ok > 100, "the load ran");
    assert!(
        kinds.get("unavailable").copied().unwrap_or(0) > 0,
        "the outage was seen: {kinds:?}"
    );
    eprintln!(
        "plugin process SIGKILLed: writes ok {writes_ok} failed {writes_failed}, reads ok \
         {reads_ok} failed {reads_failed}, failures {kinds:?}; {} values verified after the \
         restart; {resumed}",
        written.len()
    );

    // SIGTERM: a graceful exit that removes the socket file.
    let (exit, stderr) = plugin.terminate();
    assert!(exit.success(), "{exit:?}: {stderr}");
    assert!(stderr.contains("kms-plugin: stopped"), "{stderr}");
    assert!(
        !socket.exists(),
        "the socket file is removed on a graceful exit"
    );
}

#[test]
fn plugin_process_call_counts_and_abstract_socket() {
    const N: usize = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let keyfile = keyfile(dir.path());
    let endpoint = format!("unix:///@obot-store-test-{}", std::process::id());
    let plugin = Plugin::start(&endpoint, &keyfile);
    let config = config(&endpoint);
    let quiet = || KmsOptions::default().background_polling(false);
    let (writer, registry) = keyring(&config, quiet());
    let stored: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            writer
                .encrypt(RESOURCE, format!("v{i}").as_bytes(), b"ctx")
                .expect("encrypt")
        })
        .collect();
    let wrote = registry
        .providers()
        .get("plugin")
        .expect("provider")
        .metrics();
    assert_eq!(wrote.encrypt_calls, 1, "{N} writes, one Encrypt RPC");
    let (reader, registry) = keyring(&config, quiet());
    for (i, value) in stored.iter().enumerate() {
        assert_eq!(
            reader
                .decrypt(RESOURCE, value, b"ctx")
                .expect("decrypt")
                .plaintext,
            format!("v{i}").as_bytes()
        );
    }
    let read = registry
        .providers()
        .get("plugin")
        .expect("provider")
        .metrics();
    assert_eq!(read.decrypt_calls, 1, "{N} fresh reads, one Decrypt RPC");
    let (exit, stderr) = plugin.terminate();
    assert!(exit.success(), "{exit:?}: {stderr}");
}

#[test]
fn plugin_refuses_bad_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keyfile = keyfile(dir.path());
    let key_service = format!("local://{}", keyfile.display());
    for (listen, key_service, expected) in [
        (
            "tcp://127.0.0.1:9",
            key_service.as_str(),
            "KMS plugin endpoint",
        ),
        (
            "unix:///tmp/x.sock",
            "local:///no/such/key",
            "cannot read the key file",
        ),
        ("unix:///tmp/x.sock", "ftp://example", "not supported"),
    ] {
        let output = Command::new(BIN)
            .args([
                "kms-plugin",
                "--listen",
                listen,
                "--key-service",
                key_service,
            ])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{listen} {key_service}: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{listen} {key_service}: {stderr}"
        );
    }
}
