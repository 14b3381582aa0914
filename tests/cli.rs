//! The `obot-store` binary: keygen, encrypt and decrypt, run as a user would.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_obot-store");
const CANARY: &str = "canary-plaintext-7f3a9c";

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("OBOT_SERVER_ENCRYPTION_CONFIG_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn obot-store");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(pipe);
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "expected success, got {:?}: {}",
        o.status,
        stderr(o)
    );
    stdout(o)
}

fn fails(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected exit 1: stdout={} stderr={}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains(CANARY) && !stdout(o).contains(CANARY),
        "plaintext leaked: {err}"
    );
    err
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn keygen(&self, name: &str) -> String {
        let path = self.path(name);
        ok(&run(&["keygen", "-o", s(&path)], None));
        path.to_str().expect("utf-8 path").to_owned()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn keygen_prints_a_valid_obot_configuration() {
    let text = ok(&run(&["keygen", "--key-name", "k1"], None));
    let config = encrypted_core::EncryptionConfiguration::from_yaml(&text).expect("valid config");
    let entry = &config.resources[0];
    let names: Vec<&str> = entry.resources.iter().map(|r| r.as_str()).collect();
    assert_eq!(names, encrypted_core::config::OBOT_RESOURCES);
    assert_eq!(
        entry.providers[0].kind(),
        encrypted_core::ProviderKind::AesGcm
    );
    assert_eq!(
        entry.providers[1].kind(),
        encrypted_core::ProviderKind::Identity
    );
    assert!(text.contains("name: k1"));
    let other = ok(&run(&["keygen", "--key-name", "k1"], None));
    assert_ne!(text, other, "every keygen makes a fresh key");
}

#[test]
fn keygen_writes_owner_only_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = Dir::new();
    let path = dir.keygen("enc.yaml");
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let before = std::fs::read_to_string(&path).expect("read");
    let err = fails(&run(&["keygen", "-o", &path], None));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        before,
        std::fs::read_to_string(&path).expect("read"),
        "file must be untouched"
    );
    ok(&run(&["keygen", "-o", &path, "--force"], None));
    assert_ne!(before, std::fs::read_to_string(&path).expect("read"));
}

#[test]
fn keygen_with_custom_resources() {
    let text = ok(&run(&["keygen", "-r", "secrets", "-r", "*.apps"], None));
    let config = encrypted_core::EncryptionConfiguration::from_yaml(&text).expect("valid");
    assert!(config.entry_for("deployments.apps").is_some());
    assert!(config.entry_for("users.obot.obot.ai").is_none());
    let err = fails(&run(&["keygen", "-r", "Bad Name"], None));
    assert!(err.contains("invalid resource name"), "{err}");
}

#[test]
fn encrypt_then_decrypt_round_trips_from_arguments_and_stdin() {
    let dir = Dir::new();
    let config = dir.keygen("enc.yaml");
    let aad = "users.obot.obot.ai/5c1d";
    let text = ok(&run(
        &[
            "encrypt",
            "-c",
            &config,
            "-r",
            "users.obot.obot.ai",
            "--aad",
            aad,
            CANARY,
        ],
        None,
    ));
    let text = text.trim_end();
    let stored = encrypted_core::decode_base64(text).expect("standard base64");
    assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:key-"), "prefix");
    assert!(!text.contains(CANARY));
    let plain = ok(&run(
        &[
            "decrypt",
            "-c",
            &config,
            "-r",
            "users.obot.obot.ai",
            "--aad",
            aad,
            text,
        ],
        None,
    ));
    assert_eq!(plain, format!("{CANARY}\n"));
    // From stdin, with the newline `echo` adds.
    let piped = format!("{text}\n");
    let plain = ok(&run(
        &[
            "decrypt",
            "-c",
            &config,
            "-r",
            "users.obot.obot.ai",
            "--aad",
            aad,
        ],
        Some(piped.as_bytes()),
    ));
    assert_eq!(plain, format!("{CANARY}\n"));
}

#[test]
fn binary_values_round_trip_with_raw() {
    let dir = Dir::new();
    let config = dir.keygen("enc.yaml");
    let bytes: Vec<u8> = (0..=255u8).rev().collect();
    let text = ok(&run(
        &["encrypt", "-c", &config, "-r", "runstates.obot.obot.ai"],
        Some(&bytes),
    ));
    let out = run(
        &[
            "decrypt",
            "-c",
            &config,
            "-r",
            "runstates.obot.obot.ai",
            "--raw",
            text.trim(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, bytes);
    let err = fails(&run(
        &[
            "decrypt",
            "-c",
            &config,
            "-r",
            "runstates.obot.obot.ai",
            text.trim(),
        ],
        None,
    ));
    assert!(err.contains("--raw"), "{err}");
}

#[test]
fn the_config_comes_from_the_obot_environment_variable() {
    let dir = Dir::new();
    let config = dir.keygen("enc.yaml");
    let out = Command::new(BIN)
        .args(["encrypt", "-r", "credentials", "x"])
        .env("OBOT_SERVER_ENCRYPTION_CONFIG_FILE", &config)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let missing = run(&["encrypt", "-r", "credentials", "x"], None);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "usage error without --config"
    );
    assert!(stderr(&missing).contains("--config"));
}

#[test]
fn every_failure_is_a_clear_message_and_exit_1() {
    let dir = Dir::new();
    let config = dir.keygen("enc.yaml");
    let r = "users.obot.obot.ai";
    let text = ok(&run(
        &["encrypt", "-c", &config, "-r", r, "--aad", "a", CANARY],
        None,
    ));
    let text = text.trim();

    let err = fails(&run(
        &["decrypt", "-c", &config, "-r", r, "--aad", "b", text],
        None,
    ));
    assert!(err.contains("failed authentication"), "wrong aad: {err}");

    let mut stored = encrypted_core::decode_base64(text).expect("b64");
    let last = stored.len() - 1;
    stored[last] ^= 1;
    let tampered = encrypted_core::encode_base64(&stored);
    let err = fails(&run(
        &["decrypt", "-c", &config, "-r", r, "--aad", "a", &tampered],
        None,
    ));
    assert!(err.contains("failed authentication"), "tampered: {err}");

    let err = fails(&run(
        &["decrypt", "-c", &config, "-r", r, "not*base64"],
        None,
    ));
    assert!(err.contains("not valid standard base64"), "{err}");

    let err = fails(&run(
        &["decrypt", "-c", &config, "-r", "secrets", text],
        None,
    ));
    assert!(err.contains("\"secrets\" is not listed"), "{err}");

    let other = dir.keygen("other.yaml");
    let err = fails(&run(
        &["decrypt", "-c", &other, "-r", r, "--aad", "a", text],
        None,
    ));
    assert!(
        err.contains("not configured for this resource") || err.contains("failed authentication"),
        "{err}"
    );

    let missing = dir.path("missing.yaml");
    let err = fails(&run(&["decrypt", "-c", s(&missing), "-r", r, text], None));
    assert!(
        err.contains("missing.yaml") && err.contains("No such file"),
        "{err}"
    );

    let broken = dir.path("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [users.obot.obot.ai]\n    providers:\n      - aesgcm:\n          keys:\n            - name: k\n              secret: c2hvcnQ=\n",
    )
    .expect("write");
    let err = fails(&run(&["encrypt", "-c", s(&broken), "-r", r, "x"], None));
    assert!(err.contains("broken.yaml"), "{err}");
    assert!(err.contains("providers[0].aesgcm.keys[0]"), "{err}");
    assert!(
        err.contains("expected a key of 16, 24 or 32 bytes") && err.contains("found 5 bytes"),
        "{err}"
    );
}

#[test]
fn a_value_under_an_older_key_reads_with_a_stale_note() {
    let dir = Dir::new();
    let old = dir.keygen("old.yaml");
    let text = ok(&run(
        &["encrypt", "-c", &old, "-r", "credentials", "v"],
        None,
    ));
    // Rotate: a new key first, the old one kept for reading.
    let new_key = encrypted_core::SecretKey::generate(32).expect("rng");
    let old_text = std::fs::read_to_string(&old).expect("read");
    let rotated = old_text.replace(
        "          keys:\n",
        &format!(
            "          keys:\n            - name: new\n              secret: {}\n",
            encrypted_core::encode_base64(new_key.expose())
        ),
    );
    let path = dir.path("rotated.yaml");
    std::fs::write(&path, rotated).expect("write");
    let out = run(
        &["decrypt", "-c", s(&path), "-r", "credentials", text.trim()],
        None,
    );
    assert_eq!(ok(&out), "v\n");
    let note = stderr(&out);
    assert!(
        note.contains("stale") || note.contains("not the current write key"),
        "{note}"
    );
    assert!(note.contains("\"new\""), "{note}");
}

#[test]
fn values_written_by_python_cryptography_decrypt() {
    // Interop: the known-answer fixtures were produced outside Rust.
    let kat: serde_json::Value =
        serde_json::from_str(include_str!("../encrypted-core/tests/fixtures/kat.json"))
            .expect("kat.json");
    let case = kat["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| {
            c["provider"] == "aesgcm"
                && c["key_b64"].as_str().is_some_and(|k| k.len() == 44)
                && c["aad_b64"] != ""
        })
        .expect("an aesgcm-256 case with aad");
    let aad = String::from_utf8(
        encrypted_core::decode_base64(case["aad_b64"].as_str().expect("aad")).expect("b64"),
    )
    .expect("utf-8 aad");
    let plaintext =
        encrypted_core::decode_base64(case["plaintext_b64"].as_str().expect("pt")).expect("b64");
    let dir = Dir::new();
    let path = dir.path("kat.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [users.obot.obot.ai]\n    providers:\n      - aesgcm:\n          keys:\n            - name: {}\n              secret: {}\n",
            case["key_name"].as_str().expect("name"),
            case["key_b64"].as_str().expect("key")
        ),
    )
    .expect("write");
    let out = run(
        &[
            "decrypt",
            "-c",
            s(&path),
            "-r",
            "users.obot.obot.ai",
            "--aad",
            &aad,
            "--raw",
            case["stored_b64"].as_str().expect("stored"),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, plaintext);
}

#[test]
fn demo_generates_a_key_then_reuses_it() {
    let dir = Dir::new();
    let data = dir.path("data");
    let first = ok(&run(&["demo", "--data-dir", s(&data)], None));
    assert!(first.contains("Generated"), "{first}");
    for resource in encrypted_core::config::OBOT_RESOURCES {
        assert!(
            first.contains(resource),
            "{resource} missing from demo output"
        );
    }
    assert!(first.contains("k8s:enc:aesgcm:v1:demo-key:"));
    assert!(first.contains("the value is refused"));
    let config = std::fs::read_to_string(data.join("encryption.yaml")).expect("config written");
    let second = ok(&run(&["demo", "--data-dir", s(&data)], None));
    assert!(
        second.contains("Using the EncryptionConfiguration"),
        "{second}"
    );
    assert_eq!(
        config,
        std::fs::read_to_string(data.join("encryption.yaml")).expect("read"),
        "key kept"
    );
}
