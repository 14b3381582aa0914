//! The `obot-store` binary: keygen, encrypt and decrypt, run as a user would.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::PgDb;

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

/// Like [`fails`] for commands that may print notes before the error (`init`): the error is
/// the last thing printed.
fn fails_after_notes(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "expected exit 1: {}", stderr(o));
    let err = stderr(o);
    let at = err
        .rfind("error: ")
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(at == 0 || err[..at].ends_with('\n'), "{err}");
    err[at..].to_owned()
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
    // Obot's chart's nine resources in its order, then the historic ones.
    assert_eq!(names, obot_store::resources::ALL);
    assert_eq!(names[..9], *obot_store::resources::OBOT_CHART);
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
    assert!(
        stored.starts_with(b"k8s:enc:aesgcm:v1:key0:"),
        "prefix: Obot's key name"
    );
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
    assert!(first.contains("k8s:enc:aesgcm:v1:key0:"));
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

// ---------------------------------------------------------------------------------------------
// Hostile or mistaken input never leaks, never creates, always explains
// ---------------------------------------------------------------------------------------------

/// Runs the binary in `cwd` (so that anything it would create in the working directory shows).
fn run_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("OBOT_SERVER_ENCRYPTION_CONFIG_FILE")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run obot-store")
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            out.push(
                path.strip_prefix(base)
                    .expect("under base")
                    .display()
                    .to_string(),
            );
            if path.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A `kms` configuration with a local key (`local://` key file) for the Obot resources.
fn local_kms_config(dir: &Dir) -> String {
    let kek = dir.path("kek");
    std::fs::write(&kek, encrypted_core::encode_base64(&[0x24; 32])).expect("kek");
    let path = dir.path("kms.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [credentials, users.obot.obot.ai]\n    providers:\n      - kms:\n          apiVersion: v2\n          name: local-kms\n          endpoint: local://{}\n",
            kek.display()
        ),
    )
    .expect("write");
    path.to_str().expect("utf-8").to_owned()
}

#[test]
fn encrypt_through_kms_refuses_an_empty_context() {
    let dir = Dir::new();
    let config = local_kms_config(&dir);
    let err = fails(&run(
        &["encrypt", "-c", &config, "-r", "credentials", CANARY],
        None,
    ));
    assert!(
        err.contains("kms key \"local-kms\" refuses to encrypt with an empty context (AAD)"),
        "{err}"
    );
    let err = fails(&run(
        &[
            "encrypt",
            "-c",
            &config,
            "-r",
            "credentials",
            "--aad",
            "",
            CANARY,
        ],
        None,
    ));
    assert!(err.contains("empty context"), "{err}");
    // With a context it works, and reads back.
    let text = ok(&run(
        &[
            "encrypt",
            "-c",
            &config,
            "-r",
            "credentials",
            "--aad",
            "c///x",
            CANARY,
        ],
        None,
    ));
    let plain = ok(&run(
        &[
            "decrypt",
            "-c",
            &config,
            "-r",
            "credentials",
            "--aad",
            "c///x",
            text.trim(),
        ],
        None,
    ));
    assert_eq!(plain, format!("{CANARY}\n"));
}

/// A key (base64 of 32 bytes) and a password standing where they must never be echoed.
const CANARY_KEY: &str = "Q0FOQVJZLWtleS1ieXRlcy1tdXN0LW5ldmVyLXNob3c=";
const CANARY_PASSWORD: &str = "canary-db-password-5e1f";

#[track_caller]
fn assert_never_printed(o: &Output, secrets: &[&str]) {
    let shown = format!("{}{}", stdout(o), stderr(o));
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} printed: {shown}");
    }
}

#[test]
fn a_key_or_password_file_given_as_the_configuration_is_never_printed() {
    let dir = Dir::new();
    let files = [
        ("key.b64", format!("{CANARY_KEY}\n")),
        ("password.txt", format!("{CANARY_PASSWORD}\n")),
        ("keys.yaml", format!("keys:\n  - {CANARY_KEY}\n")),
        (
            "wrong.yaml",
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [credentials]\n    providers:\n      - aesgcm: {CANARY_KEY}\n"
            ),
        ),
    ];
    for (name, content) in files {
        let path = dir.path(name);
        std::fs::write(&path, content).expect("write");
        for args in [
            vec!["encrypt", "-c", s(&path), "-r", "credentials", "x"],
            vec!["check", "-c", s(&path)],
            vec!["status", "-c", s(&path), "--database-url", "missing.db"],
        ] {
            let o = run(&args, None);
            let err = fails(&o);
            assert_never_printed(&o, &[CANARY_KEY, &CANARY_KEY[..16], CANARY_PASSWORD]);
            if args[0] != "status" {
                assert!(err.contains(name) && err.contains("expected"), "{err}");
            }
        }
    }
}

#[test]
fn database_passwords_are_never_printed_in_errors() {
    let dir = Dir::new();
    let config = dir.keygen("enc.yaml");
    // Port 1 on loopback refuses connections: a real server that is not there.
    for (url, shown) in [
        (
            format!("postgres://obot:{CANARY_PASSWORD}@127.0.0.1:1/obot"),
            "postgres://obot:***@127.0.0.1:1/obot",
        ),
        (
            format!(
                "postgresql://obot@127.0.0.1:1/obot?sslmode=disable&password={CANARY_PASSWORD}"
            ),
            "postgresql://obot@127.0.0.1:1/obot?sslmode=disable&password=***",
        ),
        (
            format!("mysql://root:{CANARY_PASSWORD}@127.0.0.1:3306/obot"),
            "mysql://root:***@127.0.0.1:3306/obot",
        ),
    ] {
        for command in ["status", "rewrap", "init", "migrate", "demo"] {
            let mut args = vec![command, "--database-url", &url];
            if command != "migrate" {
                args.extend(["-c", &config]);
            }
            let data = dir.path("data");
            if command == "demo" {
                args.extend(["--data-dir", s(&data)]);
            }
            let o = run(&args, None);
            let err = fails_after_notes(&o);
            assert_never_printed(&o, &[CANARY_PASSWORD]);
            assert!(err.contains(shown), "{command} {url}: {err}");
        }
    }
}

#[test]
fn database_passwords_are_never_printed_by_init_migrate_demo_and_status() {
    let dir = Dir::new();
    let config = dir.keygen("enc.yaml");
    let db = PgDb::new("cli");
    let url = db.url_with_password(CANARY_PASSWORD);
    let shown = url.replace(CANARY_PASSWORD, "***");
    let o = run(&["init", "--database-url", &url, "-c", &config], None);
    ok(&o);
    assert_never_printed(&o, &[CANARY_PASSWORD]);
    assert!(
        stderr(&o).contains(&format!("{shown}: applied migration")),
        "{}",
        stderr(&o)
    );
    let o = run(&["migrate", "--database-url", &url], None);
    ok(&o);
    assert_never_printed(&o, &[CANARY_PASSWORD]);
    assert!(
        stderr(&o).contains(&format!("{shown}: schema up to date")),
        "{}",
        stderr(&o)
    );
    let data = dir.path("data");
    let o = run(
        &[
            "demo",
            "--database-url",
            &url,
            "-c",
            &config,
            "--data-dir",
            s(&data),
        ],
        None,
    );
    let out = ok(&o);
    assert_never_printed(&o, &[CANARY_PASSWORD]);
    assert!(
        out.contains(&format!("Database {shown} (postgres)")),
        "{out}"
    );
    let o = run(&["status", "--database-url", &url, "-c", &config], None);
    ok(&o);
    assert_never_printed(&o, &[CANARY_PASSWORD]);
}

#[test]
fn status_rewrap_and_demo_create_nothing_for_a_missing_database_or_an_unknown_scheme() {
    let dir = Dir::new();
    let config = dir.keygen("enc.yaml");
    let cwd = dir.path("");
    let absent = dir.path("absent/obot.db");
    let before = tree(&cwd);
    for (url, expected) in [
        (
            "mysql://root@127.0.0.1:3306/obot",
            "unsupported database URL scheme \"mysql://\"",
        ),
        (
            "postgress://postgres@127.0.0.1/obot",
            "unsupported database URL scheme \"postgress://\"",
        ),
        ("missing/dir/obot.db", "no database at missing/dir/obot.db"),
        ("obot.db", "no database at obot.db"),
        (s(&absent), "no database at"),
        ("sqlite://gone/obot.db", "no database at gone/obot.db"),
    ] {
        for command in ["status", "rewrap", "demo"] {
            let mut args = vec![command, "--database-url", url, "-c", &config];
            if command == "demo" {
                args.extend(["--data-dir", "data"]);
            }
            let o = run_in(&cwd, &args);
            let err = fails(&o);
            assert!(err.contains(expected), "{command} {url}: {err}");
            if expected.starts_with("unsupported") {
                assert!(
                    err.contains("postgres://") && err.contains("sqlite://"),
                    "the supported schemes are listed: {err}"
                );
            } else {
                assert!(
                    err.contains("run `obot-store init` or `obot-store migrate` first"),
                    "{err}"
                );
            }
            assert_eq!(tree(&cwd), before, "{command} {url} created something");
        }
    }
    // init and migrate create SQLite files, but not from a URL of another scheme.
    for command in ["init", "migrate"] {
        let mut args = vec![command, "--database-url", "mysql://root@127.0.0.1/obot"];
        if command == "init" {
            args.extend(["-c", &config]);
        }
        let o = run_in(&cwd, &args);
        let err = fails_after_notes(&o);
        assert!(err.contains("unsupported database URL scheme"), "{err}");
        assert_eq!(tree(&cwd), before, "{command} created something");
    }
}

#[test]
fn status_refuses_a_database_that_is_not_migrated_and_leaves_it_alone() {
    let dir = Dir::new();
    let config = dir.keygen("enc.yaml");
    let db = dir.path("empty.db");
    std::fs::write(&db, b"").expect("empty file");
    let before = tree(&dir.path(""));
    for command in ["status", "rewrap"] {
        let err = fails(&run(
            &[command, "--database-url", s(&db), "-c", &config],
            None,
        ));
        assert!(err.contains("is not migrated (0 of "), "{err}");
        assert!(err.contains("run `obot-store migrate` first"), "{err}");
        assert_eq!(std::fs::metadata(&db).expect("still there").len(), 0);
        assert_eq!(tree(&dir.path("")), before);
    }
    // Once migrated, status works.
    ok(&run(&["migrate", "--database-url", s(&db)], None));
    ok(&run(
        &["status", "--database-url", s(&db), "-c", &config],
        None,
    ));
}

/// A database Obot's GORM created has no diesel migrations table: it is accepted when every
/// table of Obot's current schema is there, with or without the historic `session_cookies` and
/// `run_states` (Obot's own migrations dropped them: status, rewrap and verify then skip them),
/// and refused naming the absent current tables otherwise.
#[test]
fn status_accepts_a_database_obot_created_and_names_its_missing_tables() {
    use diesel::{Connection as _, RunQueryDsl as _};
    let dir = Dir::new();
    let config = dir.keygen("enc.yaml");
    let db = dir.path("gorm.db");
    let up = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/sqlite/2026-12-01-000000_obot_gorm_tables/up.sql"
    ))
    .expect("migration");
    let tables = |args: &[&str]| -> Vec<String> {
        let mut argv = args.to_vec();
        argv.extend(["--json", "--database-url", s(&db), "-c", &config]);
        let out = ok(&run(&argv, None));
        // status and verify print one JSON document, rewrap JSON lines ending with its summary.
        let json: serde_json::Value = serde_json::from_str(&out)
            .or_else(|_| serde_json::from_str(out.lines().last().expect("a JSON line")))
            .expect("JSON");
        let list = json.get("summary").unwrap_or(&json);
        list.as_array()
            .expect("a list of tables")
            .iter()
            .map(|t| t["table"].as_str().expect("table").to_owned())
            .collect()
    };
    let mut c = diesel::SqliteConnection::establish(s(&db)).expect("create");
    diesel::connection::SimpleConnection::batch_execute(&mut c, &up).expect("GORM's DDL");
    let historic = ["session_cookies", "run_states"];
    let all = tables(&["status"]);
    for t in historic {
        assert!(all.contains(&t.to_owned()), "{t} not in {all:?}");
    }

    // A current Obot database: the historic tables were dropped by Obot's migrations.
    for t in historic {
        diesel::sql_query(format!("DROP TABLE {t}"))
            .execute(&mut c)
            .expect("drop");
    }
    let current: Vec<String> = all
        .iter()
        .filter(|t| !historic.contains(&t.as_str()))
        .cloned()
        .collect();
    assert_eq!(current.len(), all.len() - historic.len(), "{all:?}");
    for command in [
        &["status"][..],
        &["rewrap"],
        &["rewrap", "--dry-run"],
        &["verify"],
    ] {
        assert_eq!(tables(command), current, "{command:?}");
    }

    // A table of the current schema missing: refused, naming it (and only it).
    diesel::sql_query("DROP TABLE properties")
        .execute(&mut c)
        .expect("drop");
    drop(c);
    let err = fails(&run(
        &["status", "--database-url", s(&db), "-c", &config],
        None,
    ));
    assert!(
        err.contains("has no record of migrations and lacks the tables properties:"),
        "{err}"
    );
}

#[test]
fn a_rewrap_blocked_by_another_writer_says_so_and_a_rerun_finishes() {
    use diesel::{Connection as _, RunQueryDsl as _};
    let dir = Dir::new();
    let old = dir.path("old.yaml");
    ok(&run(&["keygen", "--key-name", "old", "-o", s(&old)], None));
    let db = dir.path("obot.db");
    ok(&run(
        &["init", "--database-url", s(&db), "-c", s(&old)],
        None,
    ));
    ok(&run(
        &["demo", "--database-url", s(&db), "-c", s(&old)],
        None,
    ));
    // A new write key first: every row is now stale, so rewrap must write.
    let new_key = encrypted_core::SecretKey::generate(32).expect("rng");
    let rotated = std::fs::read_to_string(&old).expect("read").replace(
        "          keys:\n",
        &format!(
            "          keys:\n            - name: new\n              secret: {}\n",
            encrypted_core::encode_base64(new_key.expose())
        ),
    );
    let new = dir.path("new.yaml");
    std::fs::write(&new, rotated).expect("write");

    // Another process holds SQLite's write lock (as a first rewrap with a huge batch does).
    let mut holder = diesel::SqliteConnection::establish(s(&db)).expect("open");
    diesel::sql_query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .expect("take the write lock");
    let rewrap = [
        "rewrap",
        "--database-url",
        s(&db),
        "-c",
        s(&new),
        "--batch-size",
        "1000000",
    ];
    let o = run(&rewrap, None);
    let err = fails(&o);
    assert!(err.contains("the SQLite database is locked"), "{err}");
    assert!(
        err.contains("another process (another `obot-store rewrap`, a migration or the application) holds its write lock"),
        "{err}"
    );
    assert!(err.contains("nothing was lost"), "{err}");
    assert!(err.contains("rerunning is safe"), "{err}");
    assert!(
        err.contains("caused by: database error: database is locked"),
        "{err}"
    );

    // Once the other writer is done, the same command finishes the job.
    diesel::sql_query("ROLLBACK")
        .execute(&mut holder)
        .expect("release the lock");
    drop(holder);
    ok(&run(&rewrap, None));
    let status = ok(&run(
        &["status", "--json", "--database-url", s(&db), "-c", s(&new)],
        None,
    ));
    let tables: serde_json::Value = serde_json::from_str(&status).expect("json");
    let tables = tables.as_array().expect("tables");
    assert!(tables.iter().any(|t| t["rows"].as_u64() > Some(0)));
    for t in tables {
        assert_eq!(t["stale"], 0, "{t}");
        assert_eq!(t["undecryptable"], 0, "{t}");
    }
}

// ---------------------------------------------------------------------------------------------
// obot-store check
// ---------------------------------------------------------------------------------------------

/// A key service that wraps but can no longer unwrap (a lost `kms:Decrypt` permission).
#[derive(Debug)]
struct DenyDecrypt(encrypted_core::kms::LocalKeyService);

impl encrypted_core::kms::KeyService for DenyDecrypt {
    fn status(&self) -> Result<encrypted_core::kms::Status, encrypted_core::Error> {
        self.0.status()
    }
    fn encrypt(
        &self,
        uid: &str,
        plaintext: &[u8],
    ) -> Result<encrypted_core::kms::EncryptResponse, encrypted_core::Error> {
        self.0.encrypt(uid, plaintext)
    }
    fn decrypt(
        &self,
        _uid: &str,
        _request: &encrypted_core::kms::DecryptRequest,
    ) -> Result<encrypted_core::kms::Zeroizing<Vec<u8>>, encrypted_core::Error> {
        Err(encrypted_core::kms::KmsError::UnwrapRefused {
            reason: "AccessDeniedException: not authorized to perform kms:Decrypt".to_owned(),
        }
        .into())
    }
}

/// The project's own KMS plugin server, in this process, on a runtime of its own.
struct InProcessPlugin {
    runtime: Option<tokio::runtime::Runtime>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl InProcessPlugin {
    fn start(endpoint: &str, service: std::sync::Arc<dyn encrypted_core::kms::KeyService>) -> Self {
        use encrypted_core::kms::plugin::{PluginServer, ServeOptions};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = PluginServer::bind(endpoint, service, ServeOptions::default()).expect("bind");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Self {
            runtime: Some(runtime),
            _stop: stop,
        }
    }
}

impl Drop for InProcessPlugin {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
        }
    }
}

#[test]
fn check_reports_every_key_and_fails_naming_a_broken_key_service() {
    let dir = Dir::new();
    // A healthy configuration: the generated key, then identity.
    let healthy = dir.keygen("enc.yaml");
    let o = run(&["check", "-c", &healthy], None);
    let out = ok(&o);
    let entry = "resources[0] (credentials.obot.obot.ai, users.obot.obot.ai, +10 more)";
    assert!(
        out.contains(&format!("{entry}: aesgcm key \"key0\" (writes): ok\n")),
        "{out}"
    );
    assert!(out.contains("(writes): ok\n"), "{out}");
    assert!(
        out.contains(&format!(
            "{entry}: identity (reads): not testable (identity stores plaintext)"
        )),
        "{out}"
    );
    assert!(out.ends_with("every key works\n"), "{out}");
    // The configuration from Obot's variable.
    let o = Command::new(BIN)
        .arg("check")
        .env("OBOT_SERVER_ENCRYPTION_CONFIG_FILE", &healthy)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));

    // A plugin whose key service lost decrypt, and a plugin socket nobody serves.
    let kek = [0x31u8; 32];
    let service = encrypted_core::kms::LocalKeyService::from_key(&kek, "plugin kek").expect("kek");
    let socket = dir.path("kms.sock");
    let endpoint = format!("unix://{}", socket.display());
    let _plugin = InProcessPlugin::start(&endpoint, std::sync::Arc::new(DenyDecrypt(service)));
    let aes = encrypted_core::encode_base64(&[0x5c; 32]);
    let config = dir.path("kms.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [credentials]\n    providers:\n      - aesgcm:\n          keys:\n            - name: k1\n              secret: {aes}\n      - kms:\n          apiVersion: v2\n          name: no-decrypt\n          endpoint: {endpoint}\n          timeout: 2s\n      - kms:\n          apiVersion: v2\n          name: dead\n          endpoint: unix://{}\n          timeout: 2s\n      - identity: {{}}\n",
            dir.path("nobody.sock").display()
        ),
    )
    .expect("write");
    let o = run(&["check", "-c", s(&config)], None);
    let err = fails(&o);
    let out = stdout(&o);
    let entry = "resources[0] (credentials)";
    assert!(
        out.contains(&format!("{entry}: aesgcm key \"k1\" (writes): ok\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{entry}: kms key \"no-decrypt\" (reads): FAILED: kms provider \"no-decrypt\": key service decrypt call failed"
        )),
        "{out}"
    );
    assert!(
        out.contains("not authorized to perform kms:Decrypt"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{entry}: kms key \"dead\" (reads): FAILED: ")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{entry}: identity (reads): not testable")),
        "{out}"
    );
    assert!(
        err.contains("health check failed for kms key \"no-decrypt\", kms key \"dead\""),
        "{err}"
    );
    let kek_b64 = encrypted_core::encode_base64(&kek);
    assert_never_printed(&o, &[&aes, &kek_b64, &String::from_utf8_lossy(&[0x5c; 32])]);
}
