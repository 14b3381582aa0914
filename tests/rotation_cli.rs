//! The operator's rotation commands on a SQLite database: `rewrap --json` reports progress as
//! JSON lines and a summary, `--dry-run` changes nothing, `--stop-on-unreadable` names the row
//! and exits 1, `verify` lists drifted hash columns by key and exits 1, `--repair-hashes` fixes
//! them, and no output contains a plaintext.

use std::path::Path;
use std::process::{Command, Output};

use diesel::prelude::*;
use encrypted_core::{EncryptionConfiguration, Keyring};
use encrypted_diesel::{Keys, with_keyring};
use obot_store::db::Db;
use obot_store::on_db;
use obot_store::sample::records;
use obot_store::schema::users;

const BIN: &str = env!("CARGO_BIN_EXE_obot-store");
const K1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";
const K2: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";

fn config_yaml(keys: &[(&str, &str)]) -> String {
    let mut y = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n",
    );
    for r in encrypted_core::config::OBOT_RESOURCES {
        y.push_str(&format!("      - {r}\n"));
    }
    y.push_str("    providers:\n      - aesgcm:\n          keys:\n");
    for (name, secret) in keys {
        y.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    y.push_str("      - identity: {}\n");
    y
}

fn keys(list: &[(&str, &str)]) -> Keys {
    let config = EncryptionConfiguration::from_yaml(&config_yaml(list)).expect("config");
    Keys::new(Keyring::from_config(&config).expect("keyring"))
}

fn run(args: &[&str], url: &str, config: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--database-url", url, "--config"])
        .arg(config)
        .output()
        .expect("run obot-store")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn rewrap_json_progress_dry_run_stop_verify_and_repair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().join("obot.db").display().to_string();
    let mut db = Db::connect(&url).expect("connect");
    db.migrate().expect("migrate");
    let template = records().users[0].clone();
    let plaintexts: Vec<String> = (1..=9).map(|i| format!("user-{i}@example.com")).collect();
    with_keyring(keys(&[("k1", K1)]), || {
        for (i, email) in plaintexts.iter().enumerate() {
            let mut u = template.clone();
            u.id = i64::try_from(i).expect("small") + 1;
            u.username = Some(format!("user{i}"));
            u.email = Some(email.clone());
            on_db!(&mut db, |c| diesel::insert_into(users::table)
                .values(&u)
                .execute(c)
                .expect("insert"));
        }
    });
    let config = dir.path().join("enc.yaml");
    std::fs::write(&config, config_yaml(&[("k2", K2), ("k1", K1)])).expect("config");

    // Dry run: counts, writes nothing.
    let out = run(&["rewrap", "--dry-run", "--json"], &url, &config);
    assert!(out.status.success(), "{}", text(&out));
    let status = run(&["status", "--json"], &url, &config);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(json[0]["table"], "users");
    assert_eq!(
        (json[0]["stale"].as_u64(), json[0]["drifted"].as_u64()),
        (Some(9), Some(0))
    );
    assert_eq!(json[0]["not_configured"], 0);

    // A tampered row: --stop-on-unreadable names it and exits 1, writing nothing of its batch.
    let stored: Option<String> = on_db!(&mut db, |c| users::table
        .find(5i64)
        .select(users::email)
        .first(c)
        .expect("stored"));
    let mut bytes = stored.expect("an e-mail").into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("ascii");
    on_db!(&mut db, |c| diesel::update(users::table.find(5i64))
        .set(users::email.eq(&tampered))
        .execute(c)
        .expect("tamper"));
    let out = run(
        &["rewrap", "--stop-on-unreadable", "--batch-size", "100"],
        &url,
        &config,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(5,)") && err.contains("email"), "{err}");
    let status = run(&["status", "--json"], &url, &config);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(json[0]["stale"], 8, "nothing was written");

    // The real run, paced, with JSON lines: progress after every batch, then the summary.
    let out = run(
        &["rewrap", "--json", "--batch-size", "2", "--pause-ms", "1"],
        &url,
        &config,
    );
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let users_progress: Vec<u64> = lines
        .iter()
        .filter(|l| l["progress"]["table"] == "users")
        .map(|l| l["progress"]["scanned"].as_u64().expect("scanned"))
        .collect();
    assert_eq!(users_progress, [2, 4, 6, 8, 9], "{lines:?}");
    let summary = &lines.last().expect("summary")["summary"];
    assert_eq!(summary[0]["table"], "users");
    assert_eq!(
        (
            summary[0]["rewrapped"].as_u64(),
            summary[0]["undecryptable"].as_u64()
        ),
        (Some(8), Some(1))
    );

    // Drift: a hash column that no longer matches its value.
    on_db!(&mut db, |c| diesel::update(users::table.find(3i64))
        .set(users::hashed_email.eq(encrypted_diesel::hash::sha256_hex(b"someone@else")))
        .execute(c)
        .expect("drift"));
    let out = run(&["verify"], &url, &config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("drift: users key (3,) in hashed_email"),
        "{report}"
    );
    let out = run(&["rewrap", "--repair-hashes"], &url, &config);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["verify", "--json"], &url, &config);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify json");
    assert_eq!(json[0]["drifted"].as_array().map(Vec::len), Some(0));

    // No command printed a plaintext.
    for args in [
        &["status"][..],
        &["verify"],
        &["rewrap", "--dry-run"],
        &["rewrap", "--json"],
    ] {
        let out = run(args, &url, &config);
        let all = text(&out);
        for p in &plaintexts {
            assert!(!all.contains(p.as_str()), "{args:?} printed a plaintext");
        }
    }
}
