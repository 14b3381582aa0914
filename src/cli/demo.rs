//! `obot-store demo`: the main job, on an embedded default.
//!
//! Uses (or creates, with a fresh key) `<data-dir>/encryption.yaml` and the SQLite database
//! `<data-dir>/obot.db` (or `--database-url`), migrates it, writes realistic records into every
//! Obot table through the models, then shows what is stored (prefix, key, ciphertext) beside what
//! the application reads, a lookup by hash column, and that a value moved to another row is
//! refused.

use std::io::Write as _;
use std::path::PathBuf;

use diesel::prelude::*;

use super::CliError;
use super::store::{ensure_config, install_keys, open_existing};
use crate::db::Db;
use crate::models::{
    Credential, Identity, McpAuditLog, McpOAuthPendingState, McpOAuthToken, RunState,
    SessionCookie, User,
};
use crate::on_db;
use crate::sample::{populate, records};
use crate::schema::{
    credentials, identities, mcp_audit_logs, mcpo_auth_pending_states, mcpo_auth_tokens,
    run_states, session_cookies, users,
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory for the generated configuration and the SQLite database (created if missing).
    #[arg(long, default_value = "obot-data", value_name = "DIR")]
    data_dir: PathBuf,
    /// The database instead of `<data-dir>/obot.db`: a SQLite file or a `postgres://` URL. It
    /// must exist and be migrated (`obot-store init` or `migrate`); only the default one is
    /// created.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The configuration instead of `<data-dir>/encryption.yaml`.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

/// `(table, resource, column, stored, application reads)` lines for the report.
type Line = (&'static str, &'static str, &'static str, Vec<u8>, String);

fn lines(db: &mut Db) -> Result<Vec<Line>, CliError> {
    let mut out: Vec<Line> = Vec::new();
    on_db!(db, |c| {
        let u: User = users::table
            .filter(User::username_eq("alice"))
            .select(User::as_select())
            .first(c)?;
        let stored: Option<String> = users::table.find(u.id).select(users::email).first(c)?;
        out.push((
            "users",
            "users.obot.obot.ai",
            "email",
            stored.unwrap_or_default().into_bytes(),
            u.email.clone().unwrap_or_default(),
        ));
        let stored: Option<String> = users::table
            .find(u.id)
            .select(users::display_name)
            .first(c)?;
        out.push((
            "users",
            "users.obot.obot.ai",
            "display_name",
            stored.unwrap_or_default().into_bytes(),
            u.display_name.unwrap_or_default(),
        ));
        let i: Identity = identities::table
            .filter(Identity::provider_user_id_eq("1048571"))
            .select(Identity::as_select())
            .first(c)?;
        let stored: Option<String> = identities::table
            .filter(Identity::provider_user_id_eq("1048571"))
            .select(identities::provider_username)
            .first(c)?;
        out.push((
            "identities",
            "identities.obot.obot.ai",
            "provider_username",
            stored.unwrap_or_default().into_bytes(),
            i.provider_username.unwrap_or_default(),
        ));
        let t: McpOAuthToken = mcpo_auth_tokens::table
            .find(("ms1github", "1"))
            .select(McpOAuthToken::as_select())
            .first(c)?;
        let stored: Option<String> = mcpo_auth_tokens::table
            .find(("ms1github", "1"))
            .select(mcpo_auth_tokens::access_token)
            .first(c)?;
        out.push((
            "mcpo_auth_tokens",
            "mcpoauthtokens.obot.obot.ai",
            "access_token",
            stored.unwrap_or_default().into_bytes(),
            t.access_token.unwrap_or_default(),
        ));
        let p: McpOAuthPendingState = mcpo_auth_pending_states::table
            .filter(McpOAuthPendingState::state_eq("st_9c8b7a6f5e4d3c2b1a"))
            .select(McpOAuthPendingState::as_select())
            .first(c)?;
        let stored: Option<String> = mcpo_auth_pending_states::table
            .filter(McpOAuthPendingState::state_eq("st_9c8b7a6f5e4d3c2b1a"))
            .select(mcpo_auth_pending_states::verifier)
            .first(c)?;
        out.push((
            "mcpo_auth_pending_states",
            "mcpoauthpendingstates.obot.obot.ai",
            "verifier",
            stored.unwrap_or_default().into_bytes(),
            p.verifier.unwrap_or_default(),
        ));
        let s: SessionCookie = session_cookies::table
            .filter(
                session_cookies::hashed_session_id
                    .eq(SessionCookie::hash_session_id("sess-5f2b9c")),
            )
            .select(SessionCookie::as_select())
            .first(c)?;
        let stored: Option<String> = session_cookies::table
            .filter(session_cookies::hashed_session_id.eq(&s.hashed_session_id))
            .select(session_cookies::cookie)
            .first(c)?;
        out.push((
            "session_cookies",
            "sessioncookies.obot.obot.ai",
            "cookie",
            stored.unwrap_or_default().into_bytes(),
            s.cookie.unwrap_or_default(),
        ));
        let l: McpAuditLog = mcp_audit_logs::table
            .find(1i64)
            .select(McpAuditLog::as_select())
            .first(c)?;
        let stored: Option<Vec<u8>> = mcp_audit_logs::table
            .find(1i64)
            .select(mcp_audit_logs::request_body)
            .first(c)?;
        out.push((
            "mcp_audit_logs",
            "mcpauditlogs.obot.obot.ai",
            "request_body",
            stored.unwrap_or_default(),
            String::from_utf8_lossy(&l.request_body.unwrap_or_default()).into_owned(),
        ));
        let r: RunState = run_states::table
            .find(("r1abc", "default"))
            .select(RunState::as_select())
            .first(c)?;
        let stored: Option<Vec<u8>> = run_states::table
            .find(("r1abc", "default"))
            .select(run_states::output)
            .first(c)?;
        out.push((
            "run_states",
            "runstates.obot.obot.ai",
            "output",
            stored.unwrap_or_default(),
            String::from_utf8_lossy(&r.output.unwrap_or_default()).into_owned(),
        ));
        let k: Credential = credentials::table
            .filter(credentials::name.eq("github-token"))
            .select(Credential::as_select())
            .first(c)?;
        let stored: Option<String> = credentials::table
            .find(k.id)
            .select(credentials::secrets)
            .first(c)?;
        out.push((
            "credentials",
            "credentials.obot.obot.ai",
            "secrets",
            stored.unwrap_or_default().into_bytes(),
            serde_json::to_string(&k.secrets)?,
        ));
        Ok::<_, CliError>(())
    })?;
    Ok(out)
}

/// Splits a stored value into its Kubernetes prefix (up to the fifth `:`) and the rest; text
/// columns hold base64, which is decoded first.
fn describe(stored: &[u8]) -> (String, String, usize) {
    let raw = std::str::from_utf8(stored)
        .ok()
        .and_then(|t| encrypted_core::decode_base64(t).ok())
        .filter(|r| r.starts_with(b"k8s:enc:"))
        .unwrap_or_else(|| stored.to_vec());
    let base64_form = raw != stored;
    if !raw.starts_with(b"k8s:enc:") {
        return (
            "(none: plaintext)".to_owned(),
            truncate(&String::from_utf8_lossy(stored), 26),
            stored.len(),
        );
    }
    let end = raw
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b':')
        .nth(4)
        .map_or(0, |(i, _)| i + 1);
    let prefix = String::from_utf8_lossy(&raw[..end]).into_owned();
    let shown = if base64_form {
        // Skip the base64 of the prefix (the same for every value) to show the payload.
        let text = String::from_utf8_lossy(stored);
        let skip = (end / 3) * 4;
        format!("b64 …{}", truncate(text.get(skip..).unwrap_or(&text), 21))
    } else {
        let hex: String = raw[end..]
            .iter()
            .take(10)
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("hex {hex}…")
    };
    (prefix, shown, stored.len())
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    // A database given explicitly must already be there: refuse it before creating anything.
    let existing = match &args.database_url {
        Some(url) => Some((open_existing(url)?, url.clone())),
        None => None,
    };
    if existing.is_none() || args.config.is_none() {
        std::fs::create_dir_all(&args.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    }
    let config = args
        .config
        .clone()
        .unwrap_or_else(|| args.data_dir.join("encryption.yaml"));
    if ensure_config(&config, "key0")? {
        writeln!(
            out,
            "Generated {} with a fresh AES-256-GCM key \"key0\" (then identity)",
            config.display()
        )?;
    } else {
        writeln!(
            out,
            "Using the EncryptionConfiguration in {}",
            config.display()
        )?;
    }
    install_keys(&config)?;
    let (mut db, url, applied) = match existing {
        Some((db, url)) => (db, url, Vec::new()),
        None => {
            let url = args.data_dir.join("obot.db").display().to_string();
            let mut db =
                Db::connect(&url).map_err(|e| format!("cannot open the database {url}: {e}"))?;
            let applied = db.migrate()?;
            (db, url, applied)
        }
    };
    writeln!(
        out,
        "Database {} ({}): {}",
        crate::db::redact_url(&url),
        db.backend(),
        if applied.is_empty() {
            "schema up to date".to_owned()
        } else {
            format!("applied {}", applied.join(", "))
        }
    )?;
    let records = records();
    populate(&mut db, &records)?;
    writeln!(
        out,
        "Wrote a record into every Obot table through the models (users, identities, local auth \
         users, MCP OAuth tokens and pending states, MCP, local-agent and LLM audit logs, policy \
         violations, properties, credentials, session cookies, run states).\n"
    )?;
    writeln!(
        out,
        "{:<17} {:<28} {:<18} {:<30} {:<33} {:<30}",
        "table",
        "resource",
        "column",
        "stored prefix (key)",
        "stored (truncated)",
        "application reads"
    )?;
    for (table, resource, column, stored, read) in lines(&mut db)? {
        let (prefix, shown, len) = describe(&stored);
        writeln!(
            out,
            "{table:<17} {resource:<28} {column:<18} {prefix:<30} {:<33} {}",
            format!("{shown} ({len} B)"),
            truncate(&read, 40)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Lookups use hash columns: users.hashed_username = sha256(\"alice\") = {}",
        User::username_hash("alice")
    )?;
    // A value copied into another row: the AAD binds it to alice's row.
    on_db!(&mut db, |c| {
        c.transaction::<_, CliError, _>(|c| {
            let alice: Option<String> = users::table.find(1i64).select(users::email).first(c)?;
            diesel::update(users::table.find(2i64))
                .set(users::email.eq(alice))
                .execute(c)?;
            match users::table.find(2i64).select(User::as_select()).first(c) {
                Err(e) => writeln!(
                    out,
                    "Alice's email copied into Bob's row: the value is refused ({e})"
                )?,
                Ok(_) => return Err("a value moved to another row decrypted".into()),
            }
            Err("rollback".into())
        })
        .or_else(|e| {
            if e.to_string() == "rollback" {
                Ok(())
            } else {
                Err(e)
            }
        })
    })?;
    writeln!(
        out,
        "\nNext: `obot-store status` shows every table by key; after adding a new key first in {}, \
         `obot-store rewrap` re-encrypts.",
        config.display()
    )?;
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}
