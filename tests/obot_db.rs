//! A real Obot database, filled the way Obot fills it by an independent writer
//! (`tests/obot_writer.py`: Python `cryptography`, following Obot's Go client code), on SQLite
//! and PostgreSQL: `status` reads every row with the right counts, every model loads every row
//! with the values Obot wrote, `rewrap` moves every value to a new key (encrypting the rows of a
//! resource the first configuration did not list, and the legacy flag-false rows), the
//! independent reader then decrypts every value under the new key with every other column
//! unchanged, and `migrate-credentials` moves the legacy GPTScript store as Obot does. Obot's
//! three shipped KMS configurations load and work through `unix://` plugins (the project's
//! `obot-store kms-plugin` standing in for the cloud plugin).
//!
//! Needs python3 with encrypted-core/tests/fixtures/requirements.txt, and PostgreSQL
//! (`POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/encrypted_test`; each test
//! creates its own `obot_fidelity_*` database next to it and drops it). Fails if either is
//! missing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::PgDb;
use diesel::prelude::*;
use encrypted_core::Keyring;
use encrypted_core::kms::KeyService as _;
use encrypted_diesel::{Keys, with_keyring};
use obot_store::db::Db;
use obot_store::models::{
    Credential, Identity, LlmAuditLog, LocalAgentAuditLog, LocalAuthUser, McpAuditLog,
    McpOAuthPendingState, McpOAuthToken, MessagePolicyViolation, Property, RunState, SessionCookie,
    User,
};
use obot_store::on_db;
use obot_store::schema::{
    credentials, identities, llm_audit_logs, local_auth_users, mcp_audit_logs,
    mcpo_auth_pending_states, mcpo_auth_tokens, message_policy_violations, properties, run_states,
    session_cookies, users,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_obot-store");
const WRITER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/obot_writer.py");
const KEY0: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";
const KEY1: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";

/// The resources the first configuration lists: Obot's chart list without
/// `mcpoauthpendingstates` (its rows then use the tokens' keys, Obot's fallback) and without
/// `policyviolations` (its rows are then written in plaintext with the flag false), plus the
/// historic resources.
fn phase1_resources() -> Vec<&'static str> {
    obot_store::resources::ALL
        .iter()
        .copied()
        .filter(|r| {
            *r != "mcpoauthpendingstates.obot.obot.ai" && *r != "policyviolations.obot.obot.ai"
        })
        .collect()
}

/// An EncryptionConfiguration: one entry for `resources`, `aesgcm` keys in order, `identity`.
fn aesgcm_config(resources: &[&str], keys: &[(&str, &str)]) -> String {
    let mut y = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n",
    );
    for r in resources {
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

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs the independent writer/reader; fails the test (with its report) when it fails.
fn python(args: &[&str]) -> String {
    let o = Command::new("python3")
        .arg(WRITER)
        .args(args)
        .output()
        .expect("python3 is required (with encrypted-core/tests/fixtures/requirements.txt)");
    assert!(o.status.success(), "obot_writer.py {args:?}:\n{}", show(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn obot_store(args: &[&str]) -> String {
    let o = Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("OBOT_SERVER_ENCRYPTION_CONFIG_FILE")
        .output()
        .expect("run obot-store");
    assert!(o.status.success(), "obot-store {args:?}:\n{}", show(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `obot-store <cmd> --database-url <url> --config <config> <extra>`, which must succeed.
fn on_db(cmd: &str, url: &str, config: &str, extra: &[&str]) -> String {
    let mut args = vec![cmd, "--database-url", url, "--config", config];
    args.extend_from_slice(extra);
    obot_store(&args)
}

/// The summary of `rewrap --json`: its last JSON line, `{"summary": [...]}` (progress lines
/// come before it).
fn rewrap_summary(out: &str) -> Vec<Value> {
    let last = out.lines().last().expect("rewrap --json printed nothing");
    let line: Value = serde_json::from_str(last).expect("rewrap --json: a JSON line");
    line["summary"]
        .as_array()
        .unwrap_or_else(|| panic!("rewrap --json: no summary in {last}"))
        .clone()
}

// ---------------------------------------------------------------------------------------------
// status

/// One table's counts from `status --json` (entries of models sharing a table are summed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counts {
    rows: u64,
    current: u64,
    stale: u64,
    plaintext: u64,
    not_configured: u64,
    undecryptable: u64,
    by_key: BTreeMap<String, u64>,
}

fn status(url: &str, config: &Path) -> BTreeMap<String, Counts> {
    let text = on_db("status", url, s(config), &["--json"]);
    let report: Vec<Value> = serde_json::from_str(&text).expect("status --json");
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for t in report {
        let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k} in {t}"));
        let c = out
            // Models sharing a table are named `table[column=value]` (their row filter).
            .entry(
                t["table"]
                    .as_str()
                    .expect("table")
                    .split('[')
                    .next()
                    .expect("a table name")
                    .to_owned(),
            )
            .or_default();
        c.rows += n("rows");
        c.current += n("current");
        c.stale += n("stale");
        c.plaintext += n("plaintext");
        c.not_configured += n("not_configured");
        c.undecryptable += n("undecryptable");
        for (k, v) in t["by_key"].as_object().expect("by_key") {
            *c.by_key.entry(k.clone()).or_default() += v.as_u64().expect("count");
        }
    }
    out
}

fn manifest(path: &Path) -> BTreeMap<String, Vec<Value>> {
    serde_json::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("json")
}

/// A row with no non-empty encrypted value (nothing for a key to be counted under).
fn valueless(row: &Value) -> bool {
    row["plain"]
        .as_object()
        .expect("plain")
        .values()
        .all(|v| match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.iter().all(|e| e.as_str() == Some("")),
            Value::Object(o) => o.get("b64").and_then(Value::as_str) == Some(""),
            _ => false,
        })
}

/// Checks `status` against what the writer wrote: every row read, none stale or undecryptable,
/// the rows Obot wrote encrypted counted under `key`, legacy flag-false rows as plaintext,
/// rows of a resource missing from the configuration as not configured.
fn check_status(
    report: &BTreeMap<String, Counts>,
    manifest: &BTreeMap<String, Vec<Value>>,
    key: &str,
    after_rewrap: bool,
) {
    for (table, rows) in manifest {
        if table == "gptscript_credentials" {
            continue;
        }
        let s = report
            .get(table)
            .unwrap_or_else(|| panic!("status has no {table}: {report:?}"));
        let count = |state: &str| rows.iter().filter(|r| r["state"] == state).count() as u64;
        let (current, plaintext, not_configured) = if after_rewrap {
            (rows.len() as u64, 0, 0)
        } else {
            (
                count("current"),
                count("plaintext"),
                count("not_configured"),
            )
        };
        // A row whose every value is empty has nothing under any key: the engine may count it
        // as current or leave it out of `current`; everything else is exact.
        let empty = rows
            .iter()
            .filter(|r| valueless(r) && (after_rewrap || r["state"] == "current"))
            .count() as u64;
        assert_eq!(s.rows, rows.len() as u64, "{table} rows: {s:?}");
        assert!(
            s.current <= current && s.current + empty >= current,
            "{table} current (expected {current}, {empty} without values): {s:?}"
        );
        assert_eq!(
            (s.stale, s.plaintext, s.not_configured, s.undecryptable),
            (0, plaintext, not_configured, 0),
            "{table} stale/plaintext/not_configured/undecryptable: {s:?}"
        );
        let under_key = s.by_key.get(key).copied().unwrap_or(0);
        assert!(
            under_key <= current && under_key + empty >= current,
            "{table}: {under_key} rows under {key}, expected {current}: {s:?}"
        );
        let others: Vec<_> = s
            .by_key
            .iter()
            .filter(|(k, n)| {
                k.as_str() != key
                    && k.as_str() != "plaintext"
                    && k.as_str() != "identity"
                    && !(k.as_str() == "not configured" && **n == not_configured)
                    && **n > 0
            })
            .collect();
        assert!(
            others.is_empty(),
            "{table}: rows under other keys {others:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// models

/// The keys of a configuration file, with every key service (`unix://` plugins), as the CLI
/// builds them.
fn keys(config: &Path) -> Keys {
    let config = encrypted_core::EncryptionConfiguration::from_file(config).expect("config");
    let keyring = Keyring::builder()
        .kms(encrypted_core::kms::factory(
            encrypted_core::kms::KmsOptions::default(),
        ))
        .build(&config)
        .expect("keyring");
    Keys::new(keyring)
}

/// A model field's expected value from the manifest's `plain` entry.
trait FromManifest: Sized {
    fn from_manifest(v: &Value) -> Self;
}

impl FromManifest for Option<String> {
    fn from_manifest(v: &Value) -> Self {
        v.as_str().map(str::to_owned)
    }
}

impl FromManifest for Option<Vec<u8>> {
    fn from_manifest(v: &Value) -> Self {
        v.get("b64").map(|b| {
            encrypted_core::decode_base64(b.as_str().expect("b64")).expect("manifest base64")
        })
    }
}

impl FromManifest for Option<Vec<String>> {
    fn from_manifest(v: &Value) -> Self {
        v.as_array().map(|a| {
            a.iter()
                .map(|e| e.as_str().expect("string").to_owned())
                .collect()
        })
    }
}

impl FromManifest for Option<BTreeMap<String, String>> {
    fn from_manifest(v: &Value) -> Self {
        v.as_object().map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
                .collect()
        })
    }
}

/// Whether a model's field holds what the manifest says Obot wrote.
fn same<T: FromManifest + PartialEq>(have: &T, want: &Value) -> bool {
    *have == T::from_manifest(want)
}

impl FromManifest for Option<obot_store::schema::types::GoJson> {
    fn from_manifest(v: &Value) -> Self {
        (!v.is_null()).then(|| obot_store::schema::types::GoJson(v.clone()))
    }
}

/// The manifest's stored value of a column, as text (to match rows by key).
fn stored_text(row: &Value, column: &str) -> String {
    match &row["stored"][column] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Loads every row of a model and checks it against the manifest's rows of its table (those
/// `keep` selects): same number of rows, and every encrypted field equal to what Obot wrote.
macro_rules! check_model {
    ($c:expr, $manifest:expr, $table:ident, $model:ty, $keep:expr,
     key($($kcol:ident),+), [$($field:ident),+ $(,)?]) => {{
        let expected: Vec<&Value> = $manifest[stringify!($table)]
            .iter()
            .filter(|r| ($keep)(*r))
            .collect();
        let loaded: Vec<$model> = $table::table
            .select(<$model>::as_select())
            .load($c)
            .unwrap_or_else(|e| panic!("{} does not load every row: {e}", stringify!($model)));
        let loaded: Vec<$model> = loaded
            .into_iter()
            .filter(|m| {
                expected.iter().any(|r| {
                    vec![$(stored_text(r, stringify!($kcol))),+]
                        == vec![$(key_text(&m.$kcol)),+]
                })
            })
            .collect();
        assert_eq!(loaded.len(), expected.len(), "{} rows", stringify!($model));
        for m in &loaded {
            let key = vec![$(key_text(&m.$kcol)),+];
            let r = expected
                .iter()
                .find(|r| vec![$(stored_text(r, stringify!($kcol))),+] == key)
                .expect("a manifest row");
            $(
                assert!(
                    same(&m.$field, &r["plain"][stringify!($field)]),
                    "{} {key:?}: {} differs from what Obot wrote",
                    stringify!($model),
                    stringify!($field)
                );
            )+
        }
        loaded.len()
    }};
}

/// A key field as the manifest shows it.
trait KeyText {
    fn key_text(&self) -> String;
}
impl KeyText for String {
    fn key_text(&self) -> String {
        self.clone()
    }
}
impl KeyText for Option<String> {
    fn key_text(&self) -> String {
        self.clone().unwrap_or_default()
    }
}
impl KeyText for i64 {
    fn key_text(&self) -> String {
        self.to_string()
    }
}
impl KeyText for Option<i64> {
    fn key_text(&self) -> String {
        self.map_or_else(|| "null".to_owned(), |v| v.to_string())
    }
}
fn key_text(v: &impl KeyText) -> String {
    v.key_text()
}

fn source(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |r: &Value| r["stored"]["source_type"] == kind
}

fn all(_: &Value) -> bool {
    true
}

/// Every model loads every row of its table with the values Obot wrote.
fn check_models(db: &mut Db, config: &Path, m: &BTreeMap<String, Vec<Value>>) {
    let keys = keys(config);
    with_keyring(keys, || {
        on_db!(db, |c| {
            let mut n = 0;
            n += check_model!(
                c,
                m,
                users,
                User,
                all,
                key(id),
                [
                    display_name,
                    username,
                    email,
                    icon_url,
                    original_email,
                    original_username
                ]
            );
            n += check_model!(
                c,
                m,
                identities,
                Identity,
                all,
                key(auth_provider_name, user_id),
                [
                    provider_username,
                    provider_user_id,
                    provider_group_lookup_id,
                    email,
                    icon_url
                ]
            );
            n += check_model!(c, m, local_auth_users, LocalAuthUser, all, key(id), [email]);
            n += check_model!(
                c,
                m,
                mcpo_auth_tokens,
                McpOAuthToken,
                all,
                key(mcp_id, user_id),
                [client_id, client_secret, access_token, refresh_token]
            );
            n += check_model!(
                c,
                m,
                mcpo_auth_pending_states,
                McpOAuthPendingState,
                all,
                key(o_auth_auth_request_id),
                [state, verifier, client_id, client_secret]
            );
            n += check_model!(
                c,
                m,
                mcp_audit_logs,
                McpAuditLog,
                source("mcp"),
                key(id),
                [
                    request_body,
                    mutated_request_body,
                    response_body,
                    original_response_body,
                    request_headers,
                    response_headers
                ]
            );
            n += check_model!(
                c,
                m,
                mcp_audit_logs,
                LocalAgentAuditLog,
                source("local_agent_tool_call"),
                key(id),
                [
                    local_agent_error,
                    hostname,
                    local_username,
                    reported_user_email,
                    cwd,
                    git_root,
                    git_remotes,
                    git_branch,
                    transcript_path,
                    local_agent_request_body,
                    local_agent_response_body,
                    local_agent_raw_event
                ]
            );
            n += check_model!(
                c,
                m,
                llm_audit_logs,
                LlmAuditLog,
                all,
                key(id),
                [
                    request_headers,
                    request_body,
                    policy_modified_request_body,
                    response_headers,
                    response_body
                ]
            );
            n += check_model!(
                c,
                m,
                message_policy_violations,
                MessagePolicyViolation,
                all,
                key(id),
                [blocked_content]
            );
            n += check_model!(c, m, properties, Property, all, key(key), [value]);
            n += check_model!(c, m, credentials, Credential, all, key(id), [secrets]);
            n += check_model!(
                c,
                m,
                session_cookies,
                SessionCookie,
                all,
                key(hashed_session_id),
                [cookie]
            );
            n += check_model!(
                c,
                m,
                run_states,
                RunState,
                all,
                key(name),
                [chat_state, call_frame, output]
            );
            let written: usize = m
                .iter()
                .filter(|(t, _)| t.as_str() != "gptscript_credentials")
                .map(|(_, rows)| rows.len())
                .sum();
            assert_eq!(n, written, "every row Obot wrote was loaded by a model");
        });
    });
}

// ---------------------------------------------------------------------------------------------
// the whole story

struct Story {
    dir: tempfile::TempDir,
    phase1: PathBuf,
    phase2: PathBuf,
    manifest: PathBuf,
}

fn story() -> Story {
    let dir = tempfile::tempdir().expect("tempdir");
    let phase1 = write(
        dir.path(),
        "phase1.yaml",
        &aesgcm_config(&phase1_resources(), &[("key0", KEY0)]),
    );
    let phase2 = write(
        dir.path(),
        "phase2.yaml",
        &aesgcm_config(
            obot_store::resources::ALL,
            &[("key1", KEY1), ("key0", KEY0)],
        ),
    );
    let manifest = dir.path().join("manifest.json");
    Story {
        dir,
        phase1,
        phase2,
        manifest,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Obot's writes, read by the store, rewrapped by it, read back by Obot's rules.
fn read_rotate_and_read_back(url: &str, legacy: Option<&Path>, st: &Story) {
    let mut args = vec![
        "write",
        "--db",
        url,
        "--config",
        s(&st.phase1),
        "--seed",
        "7",
        "--manifest",
        s(&st.manifest),
    ];
    if let Some(l) = legacy {
        args.extend(["--legacy-db", s(l)]);
    }
    python(&args);
    // The writer reads its own rows back (a check of the writer, independent of the store).
    python(&[
        "check",
        "--db",
        url,
        "--config",
        s(&st.phase1),
        "--manifest",
        s(&st.manifest),
        "--key",
        "aesgcm:key0",
    ]);
    let m = manifest(&st.manifest);

    // status and the models read every row Obot wrote.
    check_status(&status(url, &st.phase1), &m, "aesgcm:key0", false);
    let mut db = Db::connect(url).expect("connect");
    check_models(&mut db, &st.phase1, &m);

    // A table without a flag fails closed when its resource is not configured.
    let without_runstates = write(
        st.dir.path(),
        "no-runstates.yaml",
        &aesgcm_config(
            &phase1_resources()
                .into_iter()
                .filter(|r| *r != "runstates.obot.obot.ai")
                .collect::<Vec<_>>(),
            &[("key0", KEY0)],
        ),
    );
    with_keyring(keys(&without_runstates), || {
        let r = on_db!(&mut db, |c| run_states::table
            .select(RunState::as_select())
            .load(c));
        assert!(
            r.is_err(),
            "run states read without a key for their resource"
        );
    });

    // Rotate: key1 first, key0 kept for reading, every resource listed.
    on_db("rewrap", url, s(&st.phase2), &["--batch-size", "2"]);
    check_status(&status(url, &st.phase2), &m, "aesgcm:key1", true);
    check_models(&mut db, &st.phase2, &m);
    drop(db);
    // Obot's rules read every value back, under key1, with every other column as written.
    let out = python(&[
        "check",
        "--db",
        url,
        "--config",
        s(&st.phase2),
        "--manifest",
        s(&st.manifest),
        "--key",
        "aesgcm:key1",
        "--after-rewrap",
    ]);
    assert!(
        out.contains("encrypted values read as Obot reads them"),
        "{out}"
    );
    // Running it again changes nothing.
    let again = on_db("rewrap", url, s(&st.phase2), &["--json"]);
    let summary = rewrap_summary(&again);
    assert!(
        summary.iter().all(|t| t["rewrapped"] == 0),
        "a second rewrap re-encrypted something: {again}"
    );

    // The legacy GPTScript store, moved as Obot moves it.
    let mut extra = vec!["--json"];
    if let Some(l) = legacy {
        extra.extend(["--legacy-database", s(l)]);
    }
    let out = on_db("migrate-credentials", url, s(&st.phase2), &extra);
    let summary: Value = serde_json::from_str(&out).expect("migrate-credentials --json");
    assert_eq!(
        (
            &summary["read"],
            &summary["migrated"],
            &summary["skipped"],
            &summary["dropped"]
        ),
        (
            &Value::from(4),
            &Value::from(3),
            &Value::from(1),
            &Value::from(true)
        ),
        "{out}"
    );
    python(&[
        "check-credentials",
        "--db",
        url,
        "--config",
        s(&st.phase2),
        "--manifest",
        s(&st.manifest),
    ]);
    let out = on_db("migrate-credentials", url, s(&st.phase2), &["--json"]);
    let again: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        again["source"],
        Value::Null,
        "the legacy table is gone: {out}"
    );
}

#[test]
fn an_obot_sqlite_database_is_read_rotated_and_left_readable_by_obot() {
    let st = story();
    let db = st.dir.path().join("obot.db");
    // Obot keeps the legacy store in <db>-credentials.db beside its SQLite file.
    let legacy = st.dir.path().join("obot-credentials.db");
    read_rotate_and_read_back(s(&db), Some(&legacy), &st);
}

#[test]
fn an_obot_postgres_database_is_read_rotated_and_left_readable_by_obot() {
    let st = story();
    let pg = PgDb::new("fidelity_story");
    read_rotate_and_read_back(&pg.url, None, &st);
}

#[test]
fn migrate_credentials_finds_the_sqlite_legacy_file_beside_the_database() {
    let st = story();
    let db = st.dir.path().join("obot.db");
    let legacy = st.dir.path().join("obot-credentials.db");
    python(&[
        "write",
        "--db",
        s(&db),
        "--legacy-db",
        s(&legacy),
        "--config",
        s(&st.phase1),
        "--manifest",
        s(&st.manifest),
    ]);
    // No --legacy-database: Obot's <db>-credentials.db is found beside obot.db.
    let out = on_db("migrate-credentials", s(&db), s(&st.phase1), &[]);
    assert!(
        out.contains("3 migrated") && out.contains("1 skipped"),
        "{out}"
    );
    python(&[
        "check-credentials",
        "--db",
        s(&db),
        "--config",
        s(&st.phase1),
        "--manifest",
        s(&st.manifest),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Obot's shipped KMS configurations

/// Obot's `aws-encryption.yaml`, `gcp-encryption.yaml` and `azure-encryption.yaml` (repository
/// root at ba10ff724730e58414ff2185626ea3077c698b19): the nine resources, one `kms` v2 provider,
/// then `identity`. `(file, provider name, socket, timeout line)`.
const SHIPPED_KMS: &[(&str, &str, &str, &str)] = &[
    (
        "aws-encryption.yaml",
        "aws-kms",
        "/tmp/aws-cred-socket.sock",
        "          timeout: 3s\n",
    ),
    (
        "gcp-encryption.yaml",
        "google-cloud-kms",
        "/tmp/gcp-cred-socket.sock",
        "",
    ),
    (
        "azure-encryption.yaml",
        "azure-kms",
        "/tmp/azure-cred-socket.sock",
        "",
    ),
];

/// The shipped file's text, with the socket path `socket` (the files name /tmp paths, which a
/// test shares with anything else on the machine; the path is the only change).
fn shipped_kms_config(name: &str, socket: &Path, timeout: &str) -> String {
    let mut y = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n",
    );
    for r in [
        "credentials.obot.obot.ai",
        "users.obot.obot.ai",
        "identities.obot.obot.ai",
        "mcpoauthtokens.obot.obot.ai",
        "mcpoauthpendingstates.obot.obot.ai",
        "mcpauditlogs.obot.obot.ai",
        "llmauditlogs.obot.obot.ai",
        "policyviolations.obot.obot.ai",
        "properties.obot.obot.ai",
    ] {
        y.push_str(&format!("      - {r}\n"));
    }
    y.push_str(&format!(
        "    providers:\n      - kms:\n          apiVersion: v2\n          name: {name}\n          endpoint: unix://{}\n{timeout}      - identity: {{}} # this fallback allows reading unencrypted secrets;\n        # for example, during initial migration\n",
        socket.display()
    ));
    y
}

/// `obot-store kms-plugin` serving a local key, killed on drop.
struct Plugin(Child);

impl Plugin {
    fn start(socket: &Path, keyfile: &Path) -> Self {
        let endpoint = format!("unix://{}", socket.display());
        let child = Command::new(BIN)
            .args(["kms-plugin", "--listen", &endpoint, "--key-service"])
            .arg(format!("local://{}", keyfile.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kms-plugin");
        let plugin = Self(child);
        let client =
            encrypted_core::kms::plugin::PluginClient::new(&endpoint, Duration::from_secs(1))
                .expect("client");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !client.status().is_ok_and(|s| s.healthz == "ok") {
            assert!(
                Instant::now() < deadline,
                "plugin at {endpoint} did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        plugin
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn obots_shipped_kms_configurations_work_through_unix_plugins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keyfile = write(
        dir.path(),
        "kek",
        &encrypted_core::encode_base64(&[0x2a; 32]),
    );
    for (file, name, shipped_socket, timeout) in SHIPPED_KMS {
        let socket = dir
            .path()
            .join(Path::new(shipped_socket).file_name().expect("name"));
        let config = write(
            dir.path(),
            file,
            &shipped_kms_config(name, &socket, timeout),
        );
        let _plugin = Plugin::start(&socket, &keyfile);
        for resource in obot_store::resources::OBOT_CHART {
            let aad = format!("{resource}/ms1github");
            let stored = obot_store(&[
                "encrypt",
                "-c",
                s(&config),
                "-r",
                resource,
                "--aad",
                &aad,
                "gho_secret",
            ]);
            let raw = encrypted_core::decode_base64(stored.trim()).expect("base64");
            assert!(
                raw.starts_with(format!("k8s:enc:kms:v2:{name}:").as_bytes()),
                "{file} {resource}: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(30)])
            );
            let plain = obot_store(&[
                "decrypt",
                "-c",
                s(&config),
                "-r",
                resource,
                "--aad",
                &aad,
                stored.trim(),
            ]);
            assert_eq!(plain.trim_end(), "gho_secret", "{file} {resource}");
        }
    }
}

#[test]
fn an_obot_database_moves_from_the_charts_key_to_a_kms_plugin() {
    let st = story();
    let db = st.dir.path().join("obot.db");
    python(&[
        "write",
        "--db",
        s(&db),
        "--config",
        s(&st.phase1),
        "--manifest",
        s(&st.manifest),
    ]);
    let keyfile = write(
        st.dir.path(),
        "kek",
        &encrypted_core::encode_base64(&[0x2a; 32]),
    );
    let socket = st.dir.path().join("aws-cred-socket.sock");
    let _plugin = Plugin::start(&socket, &keyfile);
    // The AWS file's provider first, the chart's key0 kept for reading, then identity.
    let config = write(
        st.dir.path(),
        "kms.yaml",
        &format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n{}    providers:\n      - kms:\n          apiVersion: v2\n          name: aws-kms\n          endpoint: unix://{}\n          timeout: 3s\n      - aesgcm:\n          keys:\n            - name: key0\n              secret: {KEY0}\n      - identity: {{}}\n",
            obot_store::resources::ALL
                .iter()
                .map(|r| format!("      - {r}\n"))
                .collect::<String>(),
            socket.display()
        ),
    );
    on_db("rewrap", s(&db), s(&config), &[]);
    let m = manifest(&st.manifest);
    let report = status(s(&db), &config);
    for (table, rows) in &m {
        if table == "gptscript_credentials" {
            continue;
        }
        let t = &report[table];
        assert_eq!(
            (
                t.rows,
                t.stale,
                t.plaintext,
                t.not_configured,
                t.undecryptable
            ),
            (rows.len() as u64, 0, 0, 0, 0),
            "{table}: {t:?}"
        );
        assert!(
            t.by_key.keys().all(|k| k.starts_with("kms:")),
            "{table}: {:?}",
            t.by_key
        );
    }
    let mut conn = Db::connect(s(&db)).expect("connect");
    check_models(&mut conn, &config, &m);
}
