//! The legacy GPTScript credential store, read and moved into `credentials` the way Obot does.
//!
//! Before obot-platform/obot 0c644c068 tool credentials lived in `gptscript_credentials`
//! (obot-platform/tools `credential-stores/pkg/common`): `server_url` = `<name>///<context>`,
//! `secret` = the credential helper's JSON (`{"env": {...}, ...}`), or, when the store had a key
//! for the resource `credentials`, `{"e": "<base64 of the transformer output>"}` with AAD =
//! `server_url` (`encryption.go` `encryptCred`; no `encrypted` flag: a secret is encrypted
//! exactly when it is a JSON object whose only key is `e`). Obot moves the rows once
//! (`pkg/gateway/client/credential_migration.go` `MigrateGPTScriptCredentials`, source database
//! chosen by `pkg/services/config.go` `migrateGPTScriptCredentials`):
//!
//! - the source is Obot's own database on PostgreSQL, and `<db>-credentials.db` beside the main
//!   file on SQLite (the main file must end in `.db`); a missing file or table is nothing to do;
//! - rows whose `server_url` has an empty name or context (or no `///`) are skipped;
//! - an `{"e": ...}` secret is decrypted with the keys of `credentials.obot.obot.ai` and AAD
//!   `<name>///<context>` (the same string as the old `server_url`); this crate also tries the
//!   old store's resource `credentials` when that fails, so a configuration that kept the two
//!   apart still migrates;
//! - only the secret's `env` map is kept (`{}` when absent), upserted into `credentials` on
//!   `(context, name)` and encrypted as Obot's `UpsertCredential` does (`{"_obot_encrypted_env":
//!   ...}`, `encrypted = true`; in plaintext with `encrypted = false` when the configuration has
//!   no entry for `credentials.obot.obot.ai`);
//! - then the old table is dropped. Any failure stops the migration with nothing written.
//!
//! Obot also records the migration in its `migrations` table; this crate does not (that table is
//! Obot's), and a second run finds no legacy table, as Obot's would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use diesel::prelude::*;
use diesel::upsert::excluded;
use encrypted_core::Keyring;

use crate::db::{Db, DbError};
use crate::schema::credentials;
use crate::schema::legacy::gptscript_credentials;
use crate::schema::types::GoTime;

/// Obot's resource for `credentials`.
pub const RESOURCE: &str = "credentials.obot.obot.ai";
/// The old store's resource.
pub const LEGACY_RESOURCE: &str = "credentials";
/// The key of Obot's wrapper object in `credentials.secrets`.
pub const WRAP_KEY: &str = "_obot_encrypted_env";

/// A row of the old store.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = gptscript_credentials)]
pub struct LegacyCredential {
    /// Primary key.
    pub id: i64,
    /// `<name>///<context>`.
    pub server_url: Option<String>,
    /// The stored secret (JSON, or `{"e": "<base64>"}`).
    pub secret: Option<String>,
}

impl std::fmt::Debug for LegacyCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyCredential")
            .field("id", &self.id)
            .field("server_url", &self.server_url)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// Why a legacy credential cannot be migrated. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// The secret is not the JSON Obot expects.
    #[error("gptscript_credentials row {id}: {what}")]
    Malformed {
        /// The row.
        id: i64,
        /// What is wrong (no content).
        what: &'static str,
    },
    /// No configured key decrypts an encrypted secret.
    #[error("gptscript_credentials row {id}: cannot decrypt the secret: {source}")]
    Decrypt {
        /// The row.
        id: i64,
        /// Why (from the keyring; no plaintext).
        source: Box<encrypted_core::Error>,
    },
    /// The secret is encrypted and the configuration has no key for credentials.
    #[error(
        "gptscript_credentials row {id}: the secret is encrypted but the configuration lists neither {RESOURCE} nor {LEGACY_RESOURCE}"
    )]
    NotConfigured {
        /// The row.
        id: i64,
    },
}

/// `<name>///<context>` split as Obot does (`strings.Cut`); `None` when Obot skips the row.
#[must_use]
pub fn name_and_context(server_url: &str) -> Option<(&str, &str)> {
    let (name, context) = server_url.split_once("///")?;
    (!name.is_empty() && !context.is_empty()).then_some((name, context))
}

/// The `env` map of a stored legacy secret, decrypted if it is `{"e": ...}` (Obot's
/// `gptscriptCredentialEnv`).
///
/// # Errors
/// [`LegacyError`] for JSON that is not an object, an `e` that is not base64 text, a value no
/// key decrypts, or a plaintext without a string map under `env`.
pub fn env_of(
    keyring: &Keyring,
    id: i64,
    name: &str,
    context: &str,
    secret: &str,
) -> Result<BTreeMap<String, String>, LegacyError> {
    let malformed = |what| LegacyError::Malformed { id, what };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(secret).map_err(|_| malformed("the secret is not a JSON object"))?;
    let plaintext = match (object.len(), object.get("e")) {
        (1, Some(e)) => {
            let text = e
                .as_str()
                .ok_or_else(|| malformed("the encrypted secret is not a string"))?;
            let stored = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| malformed("the encrypted secret is not base64"))?;
            decrypt(
                keyring,
                id,
                &stored,
                format!("{name}///{context}").as_bytes(),
            )?
        }
        _ => secret.as_bytes().to_vec(),
    };
    #[derive(serde::Deserialize)]
    struct Secret {
        env: Option<BTreeMap<String, String>>,
    }
    let parsed: Secret = serde_json::from_slice(&plaintext)
        .map_err(|_| malformed("the secret is not a JSON object with a string map `env`"))?;
    Ok(parsed.env.unwrap_or_default())
}

fn decrypt(keyring: &Keyring, id: i64, stored: &[u8], aad: &[u8]) -> Result<Vec<u8>, LegacyError> {
    let mut first = None;
    for resource in [RESOURCE, LEGACY_RESOURCE] {
        match keyring.decrypt(resource, stored, aad) {
            Ok(read) => return Ok(read.plaintext),
            Err(encrypted_core::Error::ResourceNotConfigured { .. }) => {}
            Err(source) => {
                first.get_or_insert(LegacyError::Decrypt {
                    id,
                    source: Box::new(source),
                });
            }
        }
    }
    Err(first.unwrap_or(LegacyError::NotConfigured { id }))
}

/// Go's `json.Marshal` of a `map[string]string`: keys sorted, compact, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped as `\u003c` ... (what Obot encrypts and stores).
#[must_use]
pub fn go_json(map: &BTreeMap<String, String>) -> String {
    let json = serde_json::to_string(map).unwrap_or_else(|_| "{}".to_owned());
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The `secrets` column and `encrypted` flag Obot's `encryptCredential` writes for `env`.
///
/// # Errors
/// Encryption failures (a key service that is down).
pub fn stored_secrets(
    keyring: &Keyring,
    name: &str,
    context: &str,
    env: &BTreeMap<String, String>,
) -> Result<(String, bool), encrypted_core::Error> {
    let json = go_json(env);
    match keyring.resource(RESOURCE) {
        Err(encrypted_core::Error::ResourceNotConfigured { .. }) => Ok((json, false)),
        Err(e) => Err(e),
        Ok(chain) => {
            let sealed =
                chain.encrypt(json.as_bytes(), format!("{name}///{context}").as_bytes())?;
            let mut wrapper = BTreeMap::new();
            wrapper.insert(
                WRAP_KEY.to_owned(),
                base64::engine::general_purpose::STANDARD.encode(sealed),
            );
            Ok((go_json(&wrapper), true))
        }
    }
}

/// Where Obot looks for the legacy store of a SQLite database: `<db>-credentials.db` beside
/// `<db>.db`. `None` when the main file does not end in `.db` (Obot refuses such a DSN).
#[must_use]
pub fn sqlite_legacy_path(main: &Path) -> Option<PathBuf> {
    let name = main.file_name()?.to_str()?;
    let stem = name.strip_suffix(".db")?;
    Some(main.with_file_name(format!("{stem}-credentials.db")))
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MigrateSummary {
    /// Where the legacy rows were read (a file, or `the main database`); `None` when there was
    /// no legacy store.
    pub source: Option<String>,
    /// Rows read.
    pub read: u64,
    /// Rows upserted into `credentials`.
    pub migrated: u64,
    /// Rows Obot skips (no name or context).
    pub skipped: u64,
    /// Whether the legacy table was dropped.
    pub dropped: bool,
}

/// Options of [`migrate`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MigrateOptions {
    /// Change nothing; count what would be migrated.
    pub dry_run: bool,
    /// Leave the legacy table in place after migrating.
    pub keep_legacy: bool,
}

fn has_table(db: &mut Db, table: &str) -> Result<bool, DbError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n = match db {
        Db::Pg(c) => diesel::sql_query("SELECT count(*) AS n FROM pg_tables WHERE tablename = $1")
            .bind::<diesel::sql_types::Text, _>(table)
            .get_result::<Count>(c)?,
        Db::Sqlite(c) => diesel::sql_query(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind::<diesel::sql_types::Text, _>(table)
        .get_result::<Count>(c)?,
    };
    Ok(n.n > 0)
}

fn read_legacy(db: &mut Db) -> Result<Vec<LegacyCredential>, DbError> {
    Ok(crate::on_db!(db, |c| gptscript_credentials::table
        .select(LegacyCredential::as_select())
        .order(gptscript_credentials::id)
        .load(c))?)
}

/// Moves the legacy store's credentials into `credentials` as Obot does (see the module).
/// `legacy` is the legacy store's database when it is not `db` (SQLite), `None` when it is.
///
/// # Errors
/// Database errors, and [`LegacyError`] for a row Obot could not migrate either; nothing is
/// written then.
pub fn migrate(
    db: &mut Db,
    mut legacy: Option<&mut Db>,
    source: &str,
    keyring: &Keyring,
    opts: MigrateOptions,
) -> Result<MigrateSummary, DbError> {
    let mut summary = MigrateSummary::default();
    let rows = {
        let from: &mut Db = match legacy.as_deref_mut() {
            Some(l) => l,
            None => &mut *db,
        };
        if !has_table(from, "gptscript_credentials")? {
            return Ok(summary);
        }
        read_legacy(from)?
    };
    summary.source = Some(source.to_owned());
    summary.read = rows.len() as u64;
    let now = chrono::Utc::now();
    let mut upserts = Vec::new();
    for row in &rows {
        let Some((name, context)) = row.server_url.as_deref().and_then(name_and_context) else {
            summary.skipped += 1;
            continue;
        };
        let env = env_of(
            keyring,
            row.id,
            name,
            context,
            row.secret.as_deref().unwrap_or(""),
        )?;
        let (secrets, encrypted) = stored_secrets(keyring, name, context, &env)?;
        upserts.push((name.to_owned(), context.to_owned(), secrets, encrypted));
    }
    summary.migrated = upserts.len() as u64;
    if opts.dry_run {
        return Ok(summary);
    }
    let drop_here = legacy.is_none() && !opts.keep_legacy;
    crate::on_db!(db, |c| c.transaction::<_, DbError, _>(|c| {
        for (name, context, secrets, encrypted) in &upserts {
            diesel::insert_into(credentials::table)
                .values((
                    credentials::created_at.eq(GoTime(now)),
                    credentials::context.eq(context),
                    credentials::name.eq(name),
                    credentials::secrets.eq(secrets),
                    credentials::encrypted.eq(encrypted),
                ))
                .on_conflict((credentials::context, credentials::name))
                .do_update()
                .set((
                    credentials::secrets.eq(excluded(credentials::secrets)),
                    credentials::encrypted.eq(excluded(credentials::encrypted)),
                ))
                .execute(c)?;
        }
        if drop_here {
            diesel::sql_query("DROP TABLE gptscript_credentials").execute(c)?;
        }
        Ok(())
    }))?;
    if let Some(l) = legacy.filter(|_| !opts.keep_legacy) {
        crate::on_db!(l, |c| diesel::sql_query("DROP TABLE gptscript_credentials")
            .execute(c))?;
        summary.dropped = true;
    }
    summary.dropped |= drop_here;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_split_as_obot_does() {
        assert_eq!(name_and_context("gh///default"), Some(("gh", "default")));
        assert_eq!(name_and_context("a///b///c"), Some(("a", "b///c")));
        assert_eq!(name_and_context("no-context"), None);
        assert_eq!(name_and_context("///ctx"), None);
        assert_eq!(name_and_context("name///"), None);
    }

    #[test]
    fn go_json_sorts_and_escapes_like_encoding_json() {
        let mut m = BTreeMap::new();
        m.insert("b".to_owned(), "<a&b>\u{2028}".to_owned());
        m.insert("a".to_owned(), "é\"".to_owned());
        assert_eq!(
            go_json(&m),
            r#"{"a":"é\"","b":"\u003ca\u0026b\u003e\u2028"}"#
        );
    }

    fn keyring(resources: &str) -> Keyring {
        let yaml = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [{resources}]\n    providers:\n      - aesgcm:\n          keys:\n            - name: key0\n              secret: c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=\n      - identity: {{}}\n"
        );
        let config = encrypted_core::EncryptionConfiguration::from_yaml(&yaml).expect("config");
        Keyring::from_config(&config).expect("keyring")
    }

    /// `{"e": "<base64>"}` as the old store wrote it (Go's `%q` of the base64).
    fn sealed(k: &Keyring, resource: &str, secret: &str, aad: &str) -> String {
        let b = k
            .encrypt(resource, secret.as_bytes(), aad.as_bytes())
            .expect("encrypt");
        format!(
            "{{\"e\": \"{}\"}}",
            base64::engine::general_purpose::STANDARD.encode(b)
        )
    }

    #[test]
    fn env_of_reads_encrypted_and_plain_secrets_as_obot() {
        let k = keyring("credentials.obot.obot.ai, credentials");
        let secret = r#"{"env":{"GH_TOKEN":"ghp_1"},"toolName":"gh","type":"tool"}"#;
        let stored = sealed(&k, "credentials", secret, "gh///default");
        let env = env_of(&k, 1, "gh", "default", &stored).expect("encrypted");
        assert_eq!(
            env,
            BTreeMap::from([("GH_TOKEN".to_owned(), "ghp_1".to_owned())])
        );
        let env = env_of(&k, 2, "gh", "default", secret).expect("plain");
        assert_eq!(env["GH_TOKEN"], "ghp_1");
        // No `env`: an empty map, as Obot.
        assert!(
            env_of(&k, 3, "x", "y", r#"{"toolName":"x"}"#)
                .expect("no env")
                .is_empty()
        );
        // `{"e": ..}` with another key is not the encrypted form: read as the plain secret.
        let two = r#"{"e":"x","env":{"A":"1"}}"#;
        assert_eq!(env_of(&k, 4, "x", "y", two).expect("two keys")["A"], "1");
    }

    #[test]
    fn env_of_fails_typed_without_leaking() {
        let k = keyring("credentials.obot.obot.ai");
        let secret = r#"{"env":{"GH_TOKEN":"ghp_canary"}}"#;
        let stored = sealed(&k, "credentials.obot.obot.ai", secret, "gh///default");
        // The AAD binds the row: another name or context does not decrypt.
        let e = env_of(&k, 7, "gh", "other", &stored).expect_err("wrong context");
        assert!(matches!(e, LegacyError::Decrypt { id: 7, .. }), "{e:?}");
        for bad in [
            "not json",
            r#""a string""#,
            r#"{"e": 5}"#,
            r#"{"e": "%%%"}"#,
            r#"{"env": 1}"#,
        ] {
            let e = env_of(&k, 8, "gh", "default", bad).expect_err(bad);
            assert!(
                matches!(e, LegacyError::Malformed { id: 8, .. }),
                "{bad}: {e:?}"
            );
        }
        let none = keyring("users.obot.obot.ai");
        let e = env_of(&none, 9, "gh", "default", &stored).expect_err("no key");
        assert!(matches!(e, LegacyError::NotConfigured { id: 9 }), "{e:?}");
        for e in [e, env_of(&k, 7, "gh", "other", &stored).expect_err("aad")] {
            assert!(!format!("{e} {e:?}").contains("canary"), "{e}");
        }
    }

    #[test]
    fn stored_secrets_are_obots_wrapper_or_plaintext_when_not_configured() {
        let k = keyring("credentials.obot.obot.ai");
        let env = BTreeMap::from([("A".to_owned(), "<1>".to_owned())]);
        let (text, encrypted) = stored_secrets(&k, "n", "c", &env).expect("encrypt");
        assert!(encrypted);
        let wrapper: BTreeMap<String, String> = serde_json::from_str(&text).expect("json");
        assert_eq!(wrapper.keys().collect::<Vec<_>>(), [WRAP_KEY]);
        let plain = k
            .decrypt(
                RESOURCE,
                &encrypted_core::decode_base64(&wrapper[WRAP_KEY]).expect("b64"),
                b"n///c",
            )
            .expect("Obot's AAD");
        assert_eq!(plain.plaintext, br#"{"A":"\u003c1\u003e"}"#);
        let (text, encrypted) =
            stored_secrets(&keyring("users.obot.obot.ai"), "n", "c", &env).expect("plain");
        assert!(!encrypted);
        assert_eq!(text, r#"{"A":"\u003c1\u003e"}"#);
    }

    #[test]
    fn legacy_file_beside_the_main_one() {
        assert_eq!(
            sqlite_legacy_path(Path::new("/data/obot.db")),
            Some(PathBuf::from("/data/obot-credentials.db"))
        );
        assert_eq!(sqlite_legacy_path(Path::new("obot.sqlite")), None);
    }
}
