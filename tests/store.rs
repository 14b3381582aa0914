//! The Obot store on real databases: every model round-trips on SQLite and PostgreSQL, `status`
//! counts a known mix exactly, and `rewrap` of 100 000 rows survives being killed while the
//! application keeps writing.
//!
//! PostgreSQL: `POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/encrypted_test`); each
//! test creates its own database next to it and drops it. Tests fail if the server is unreachable.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::PgDb;
use diesel::prelude::*;
use encrypted_core::{EncryptionConfiguration, Keyring};
use encrypted_diesel::rotate::Options;
use encrypted_diesel::{Keys, with_keyring};
use obot_store::db::Db;
use obot_store::models::{
    Credential, Identity, LlmAuditLog, LocalAgentAuditLog, LocalAuthUser, McpAuditLog,
    McpOAuthPendingState, McpOAuthToken, MessagePolicyViolation, Property, RunState, SessionCookie,
    User,
};
use obot_store::on_db;
use obot_store::rotation;
use obot_store::sample::{Records, populate, records};
use obot_store::schema::{
    credentials, identities, llm_audit_logs, local_auth_users, mcp_audit_logs,
    mcpo_auth_pending_states, mcpo_auth_tokens, message_policy_violations, properties, run_states,
    session_cookies, users,
};

const BIN: &str = env!("CARGO_BIN_EXE_obot-store");
const K1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";
const K2: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";

/// An EncryptionConfiguration for every Obot resource: aesgcm keys in order, then identity.
fn config_yaml(keys: &[(&str, &str)]) -> String {
    let mut y = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n",
    );
    for r in obot_store::resources::ALL {
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

fn sqlite_db(dir: &tempfile::TempDir) -> (Db, String) {
    let url = dir.path().join("obot.db").display().to_string();
    let mut db = Db::connect(&url).expect("connect");
    db.migrate().expect("migrate");
    (db, url)
}

fn load_all(db: &mut Db) -> Records {
    on_db!(db, |c| Records {
        users: users::table
            .order(users::id)
            .select(User::as_select())
            .load(c)
            .expect("users"),
        identities: identities::table
            .select(Identity::as_select())
            .load(c)
            .expect("identities"),
        local_users: local_auth_users::table
            .select(LocalAuthUser::as_select())
            .load(c)
            .expect("local users"),
        tokens: mcpo_auth_tokens::table
            .select(McpOAuthToken::as_select())
            .load(c)
            .expect("tokens"),
        pending: mcpo_auth_pending_states::table
            .select(McpOAuthPendingState::as_select())
            .load(c)
            .expect("pending states"),
        logs: mcp_audit_logs::table
            .filter(mcp_audit_logs::source_type.eq("mcp"))
            .select(McpAuditLog::as_select())
            .load(c)
            .expect("logs"),
        local_logs: mcp_audit_logs::table
            .filter(mcp_audit_logs::source_type.eq("local_agent_tool_call"))
            .select(LocalAgentAuditLog::as_select())
            .load(c)
            .expect("local logs"),
        llm_logs: llm_audit_logs::table
            .select(LlmAuditLog::as_select())
            .load(c)
            .expect("llm logs"),
        violations: message_policy_violations::table
            .select(MessagePolicyViolation::as_select())
            .load(c)
            .expect("violations"),
        properties: properties::table
            .select(Property::as_select())
            .load(c)
            .expect("properties"),
        credentials: credentials::table
            .select(Credential::as_select())
            .load(c)
            .expect("credentials"),
        cookies: session_cookies::table
            .select(SessionCookie::as_select())
            .load(c)
            .expect("cookies"),
        runs: run_states::table
            .select(RunState::as_select())
            .load(c)
            .expect("runs"),
    })
}

fn round_trip(db: &mut Db) {
    with_keyring(keys(&[("k1", K1)]), || {
        let r = records();
        populate(db, &r).expect("populate");
        assert_eq!(load_all(db), r);
        // Lookups by hash column, and the stored form is not the plaintext.
        on_db!(db, |c| {
            let alice: User = users::table
                .filter(User::username_eq("alice"))
                .select(User::as_select())
                .first(c)
                .expect("by username");
            assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
            let stored: String = users::table
                .find(1i64)
                .select(users::email)
                .first::<Option<String>>(c)
                .expect("raw")
                .expect("an e-mail");
            assert!(!stored.contains("alice"));
            let raw = encrypted_core::decode_base64(&stored).expect("base64");
            assert!(raw.starts_with(b"k8s:enc:aesgcm:v1:k1:"));
            let hashed: Option<String> = users::table
                .find(1i64)
                .select(users::hashed_username)
                .first(c)
                .expect("hash");
            assert_eq!(hashed, Some(encrypted_diesel::hash::sha256_hex(b"alice")));
            let p: McpOAuthPendingState = mcpo_auth_pending_states::table
                .filter(McpOAuthPendingState::state_eq("st_9c8b7a6f5e4d3c2b1a"))
                .select(McpOAuthPendingState::as_select())
                .first(c)
                .expect("by state");
            assert_eq!(p.mcp_id.as_deref(), Some("ms1github"));
            let i: Identity = identities::table
                .filter(Identity::provider_user_id_eq("1048571"))
                .select(Identity::as_select())
                .first(c)
                .expect("by provider user id");
            assert_eq!(i.user_id, Some(1));
            // Audit log bodies: ASCII base64 in the binary column, as Obot writes them.
            let body: Option<Vec<u8>> = mcp_audit_logs::table
                .find(1i64)
                .select(mcp_audit_logs::request_body)
                .first(c)
                .expect("raw body");
            let body = String::from_utf8(body.expect("body")).expect("ascii");
            assert!(
                encrypted_core::decode_base64(&body)
                    .expect("b64")
                    .starts_with(b"k8s:enc:aesgcm:v1:k1:")
            );
            // Run state output: raw transformer output.
            let out: Option<Vec<u8>> = run_states::table
                .select(run_states::output)
                .first(c)
                .expect("raw output");
            assert!(out.expect("output").starts_with(b"k8s:enc:aesgcm:v1:k1:"));
        });
        // Credentials' AAD is `<name>///<context>` with no resource prefix, and the column holds
        // Obot's wrapper object.
        let ring = encrypted_diesel::current()
            .expect("keys")
            .keyring()
            .resource("credentials.obot.obot.ai")
            .expect("credentials");
        let stored: Option<String> = on_db!(db, |c| credentials::table
            .select(credentials::secrets)
            .first(c)
            .expect("raw"));
        let wrapper: BTreeMap<String, String> =
            serde_json::from_str(&stored.expect("secrets")).expect("wrapper");
        assert_eq!(wrapper.keys().collect::<Vec<_>>(), ["_obot_encrypted_env"]);
        let d = ring
            .decrypt_base64(&wrapper["_obot_encrypted_env"], b"github-token///default")
            .expect("Obot AAD");
        let map: BTreeMap<String, String> = serde_json::from_slice(&d.plaintext).expect("json");
        assert!(map.contains_key("GITHUB_TOKEN"));
    });
}

#[test]
fn every_model_round_trips_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut db, _) = sqlite_db(&dir);
    round_trip(&mut db);
}

#[test]
fn every_model_round_trips_on_postgres() {
    let pg = PgDb::new("rt");
    round_trip(&mut pg.db());
}

fn user(id: i64) -> User {
    let mut u = records().users[0].clone();
    u.id = id;
    u.username = Some(format!("user{id}"));
    u.email = Some(format!("user{id}@example.com"));
    u.display_name = Some(format!("User {id}"));
    u
}

/// 3 rows under k2 (current), 2 under k1 (old), 2 plaintext (flag false), 1 with a corrupted
/// value (its other values under k2).
fn seed_mix(db: &mut Db) {
    let new = keys(&[("k2", K2), ("k1", K1)]);
    let old = keys(&[("k1", K1)]);
    on_db!(db, |c| {
        with_keyring(new.clone(), || {
            let rows: Vec<User> = [1, 2, 3, 8].into_iter().map(user).collect();
            diesel::insert_into(users::table)
                .values(&rows)
                .execute(c)
                .expect("current");
        });
        with_keyring(old, || {
            let rows: Vec<User> = [4, 5].into_iter().map(user).collect();
            diesel::insert_into(users::table)
                .values(&rows)
                .execute(c)
                .expect("old");
        });
        for id in [6, 7] {
            diesel::sql_query(format!(
                "INSERT INTO users (id, display_name, username, hashed_username, email, hashed_email, encrypted) \
                 VALUES ({id}, 'Plain {id}', 'user{id}', '{}', 'user{id}@example.com', '{}', FALSE)",
                encrypted_diesel::hash::sha256_hex(format!("user{id}").as_bytes()),
                encrypted_diesel::hash::sha256_hex(format!("user{id}@example.com").as_bytes()),
            ))
            .execute(c)
            .expect("plaintext");
        }
        let stored: Option<String> = users::table
            .find(8i64)
            .select(users::email)
            .first(c)
            .expect("raw");
        let mut bytes = stored.expect("an e-mail").into_bytes();
        bytes[60] = if bytes[60] == b'A' { b'B' } else { b'A' };
        diesel::update(users::table.find(8i64))
            .set(users::email.eq(String::from_utf8(bytes).expect("ascii")))
            .execute(c)
            .expect("corrupt");
    });
}

fn check_status_mix(db: &mut Db) {
    let new = keys(&[("k2", K2), ("k1", K1)]);
    with_keyring(new.clone(), || {
        let report = rotation::status(db).expect("status");
        let u = &report[0];
        assert_eq!(u.table, "users");
        assert_eq!(
            (u.rows, u.current, u.stale, u.plaintext, u.undecryptable),
            (8, 3, 2, 2, 1),
            "{u:?}"
        );
        assert_eq!(u.write_key, "aesgcm:k2");
        let by_key: Vec<(&str, u64)> = u.by_key.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(
            by_key,
            vec![
                ("aesgcm:k1", 2),
                ("aesgcm:k2", 4),
                ("plaintext", 2),
                ("undecryptable", 1)
            ]
        );
        assert!(report[1..].iter().all(|t| t.rows == 0));

        let opts = Options::default().batch_size(3).dry_run(true).jobs(1);
        let dry = rotation::rewrap(db, "", &opts).expect("dry run");
        assert_eq!(
            (dry[0].scanned, dry[0].rewrapped, dry[0].undecryptable),
            (8, 4, 1)
        );
        assert_eq!(
            rotation::status(db).expect("status")[0].stale,
            2,
            "dry run changed nothing"
        );

        let opts = Options::default().batch_size(3).dry_run(false).jobs(1);
        let done = rotation::rewrap(db, "", &opts).expect("rewrap");
        assert_eq!(
            (done[0].rewrapped, done[0].conflicts, done[0].undecryptable),
            (4, 0, 1)
        );
        let u = &rotation::status(db).expect("status")[0];
        assert_eq!(
            (u.rows, u.current, u.stale, u.plaintext, u.undecryptable),
            (8, 7, 0, 0, 1)
        );
        // Plaintext rows are now encrypted and read back.
        let six: User = on_db!(db, |c| users::table
            .find(6i64)
            .select(User::as_select())
            .first(c)
            .expect("row 6"));
        assert_eq!(six.display_name.as_deref(), Some("Plain 6"));
    });
}

#[test]
fn status_counts_a_known_mix_on_sqlite_and_rewrap_fixes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut db, url) = sqlite_db(&dir);
    seed_mix(&mut db);
    // The CLI reports the same numbers as JSON.
    let config = dir.path().join("enc.yaml");
    std::fs::write(&config, config_yaml(&[("k2", K2), ("k1", K1)])).expect("config");
    let out = Command::new(BIN)
        .args(["status", "--json", "--database-url", &url, "--config"])
        .arg(&config)
        .output()
        .expect("status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json[0]["table"], "users");
    assert_eq!(json[0]["stale"], 2);
    assert_eq!(json[0]["plaintext"], 2);
    assert_eq!(json[0]["undecryptable"], 1);
    check_status_mix(&mut db);
}

#[test]
fn status_counts_a_known_mix_on_postgres_and_rewrap_fixes_it() {
    let pg = PgDb::new("mix");
    let mut db = pg.db();
    seed_mix(&mut db);
    check_status_mix(&mut db);
}

/// 100 000 users under k1; k2 is added first; `rewrap` is killed part-way and run again while
/// the application keeps updating rows with k2.
#[test]
fn rewrap_100k_rows_killed_and_resumed_under_concurrent_updates_on_postgres() {
    const N: i64 = 100_000;
    let pg = PgDb::new("rewrap");
    let mut db = pg.db();
    let old = keys(&[("k1", K1)]);
    let new = keys(&[("k2", K2), ("k1", K1)]);
    let seeded = Instant::now();
    with_keyring(old, || {
        let Db::Pg(c) = &mut db else { unreachable!() };
        for chunk in (1..=N).collect::<Vec<_>>().chunks(2000) {
            let rows: Vec<User> = chunk.iter().copied().map(user).collect();
            diesel::insert_into(users::table)
                .values(&rows)
                .execute(c)
                .expect("seed");
        }
    });
    eprintln!("seeded {N} rows in {:.1?}", seeded.elapsed());
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("enc.yaml");
    std::fs::write(&config, config_yaml(&[("k2", K2), ("k1", K1)])).expect("config");

    // The application: updates random rows with the new configuration until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let updater = {
        let stop = Arc::clone(&stop);
        let url = pg.url.clone();
        let new = new.clone();
        std::thread::spawn(move || {
            let mut c = PgConnection::establish(&url).expect("updater connection");
            let mut updated: BTreeMap<i64, String> = BTreeMap::new();
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut n = 0u64;
            with_keyring(new, || {
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let id = i64::try_from(x % N as u64).expect("small") + 1;
                    n += 1;
                    let value = format!("updated {n}");
                    c.transaction::<_, diesel::result::Error, _>(|c| {
                        let mut u: User = users::table
                            .find(id)
                            .select(User::as_select())
                            .for_update()
                            .first(c)?;
                        u.display_name = Some(value.clone());
                        diesel::update(users::table.find(id)).set(&u).execute(c)?;
                        Ok(())
                    })
                    .expect("application update");
                    updated.insert(id, value);
                }
            });
            updated
        })
    };

    let rewrap = |kill_after: Option<i64>| {
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .args([
                "rewrap",
                "--batch-size",
                "1000",
                "--database-url",
                &pg.url,
                "--config",
            ])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rewrap");
        if let Some(rows) = kill_after {
            // Kill once at least `rows` rows are under k2 (counted by their stored prefix, the
            // base64 of "k8s:enc:aesgcm:v1:k2:", 21 bytes = 28 characters exactly), so the kill
            // lands part-way whatever the machine's speed.
            let prefix = base64::engine::general_purpose::STANDARD.encode("k8s:enc:aesgcm:v1:k2:");
            let mut c = PgConnection::establish(&pg.url).expect("watcher connection");
            loop {
                assert!(
                    child.try_wait().expect("wait").is_none(),
                    "rewrap finished before it could be killed part-way"
                );
                let done: i64 = users::table
                    .filter(users::display_name.like(format!("{prefix}%")))
                    .count()
                    .get_result(&mut c)
                    .expect("count");
                if done >= rows {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().expect("kill");
            let _ = child.wait();
            return (started.elapsed(), String::new());
        }
        let out = child.wait_with_output().expect("rewrap");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            started.elapsed(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    rewrap(Some(N / 5));
    let partial = with_keyring(new.clone(), || {
        let Db::Pg(c) = &mut db else { unreachable!() };
        encrypted_diesel::rotate::status::<User, _>(c).expect("status")
    });
    eprintln!("after the kill: {partial:?}");
    assert!(
        partial.current > 0 && partial.stale > 0,
        "killed part-way: {partial:?}"
    );
    let (elapsed, summary) = rewrap(None);
    eprintln!("resumed run ({elapsed:.1?}):\n{summary}");
    stop.store(true, Ordering::Relaxed);
    let updated = updater.join().expect("updater");
    eprintln!("{} rows updated concurrently", updated.len());
    assert!(!updated.is_empty());

    with_keyring(new, || {
        let Db::Pg(c) = &mut db else { unreachable!() };
        let s = encrypted_diesel::rotate::status::<User, _>(c).expect("status");
        assert_eq!(
            (s.rows, s.current, s.stale, s.plaintext, s.undecryptable),
            (N as u64, N as u64, 0, 0, 0),
            "{s:?}"
        );
        let Db::Pg(c) = &mut db else { unreachable!() };
        for (id, value) in &updated {
            let u: User = users::table
                .find(*id)
                .select(User::as_select())
                .first(c)
                .expect("row");
            assert_eq!(
                u.display_name.as_ref(),
                Some(value),
                "update of row {id} preserved"
            );
        }
    });
}
