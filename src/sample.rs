//! Realistic records for every Obot table: what `obot-store demo` writes, and test data.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, Timelike as _};
use diesel::prelude::*;
use serde_json::json;

use crate::db::{Db, DbError};
use crate::models::{
    Credential, Identity, McpAuditLog, McpOAuthToken, RunState, SessionCookie, User,
};
use crate::schema::{
    credentials, identities, mcp_audit_logs, mcp_oauth_tokens, run_states, session_cookies, users,
};

fn now() -> NaiveDateTime {
    let t = chrono::Utc::now().naive_utc();
    t.with_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}

/// The demo's records, one set per table.
#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    /// Users.
    pub users: Vec<User>,
    /// Identities.
    pub identities: Vec<Identity>,
    /// MCP OAuth tokens.
    pub tokens: Vec<McpOAuthToken>,
    /// Session cookies.
    pub cookies: Vec<SessionCookie>,
    /// MCP audit logs.
    pub logs: Vec<McpAuditLog>,
    /// Run states.
    pub runs: Vec<RunState>,
    /// Credentials.
    pub credentials: Vec<Credential>,
}

/// The demo's records (timestamps: now, to the microsecond).
#[must_use]
pub fn records() -> Records {
    let t = now();
    let user = |id: i64, name: &str, display: &str| User {
        id,
        created_at: t,
        display_name: display.to_owned(),
        username: name.to_owned(),
        email: format!("{name}@example.com"),
        verified_email: Some(true),
        role: if id == 1 { 8 } else { 2 },
        icon_url: format!("https://avatars.githubusercontent.com/u/{}", 1_048_570 + id),
        timezone: "Europe/Paris".to_owned(),
        internal: false,
        deleted_at: None,
        original_email: String::new(),
        original_username: String::new(),
    };
    Records {
        users: vec![
            user(1, "alice", "Alice Martin"),
            user(2, "bob", "Bob Nakamura"),
        ],
        identities: vec![Identity {
            auth_provider_name: "github-auth-provider".to_owned(),
            auth_provider_namespace: "default".to_owned(),
            provider_username: "alice-gh".to_owned(),
            provider_user_id: "1048571".to_owned(),
            provider_group_lookup_id: "MDQ6VXNlcjEwNDg1NzE=".to_owned(),
            email: "alice@example.com".to_owned(),
            user_id: 1,
            icon_url: "https://avatars.githubusercontent.com/u/1048571".to_owned(),
            icon_last_checked: Some(t),
        }],
        tokens: vec![McpOAuthToken {
            mcp_id: "ms1github".to_owned(),
            user_id: "1".to_owned(),
            url: "https://api.githubcopilot.com/mcp/".to_owned(),
            auth_url: "https://github.com/login/oauth/authorize".to_owned(),
            token_url: "https://github.com/login/oauth/access_token".to_owned(),
            auth_style: 1,
            redirect_url: "https://obot.example.com/oauth/mcp/callback".to_owned(),
            scopes: "repo read:org".to_owned(),
            client_id: "Iv23liAbCdEf012345".to_owned(),
            client_secret: "3f1e2d4c5b6a79880f1e2d4c5b6a79880f1e2d4c".to_owned(),
            access_token: "gho_16C7e42F292c6912E7710c838347Ae178B4a".to_owned(),
            token_type: "Bearer".to_owned(),
            refresh_token: "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246".to_owned(),
            expiry: Some(t + chrono::Duration::hours(8)),
            state: Some("st_9c8b7a6f5e4d3c2b1a".to_owned()),
            verifier: Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned()),
        }],
        cookies: vec![SessionCookie {
            hashed_session_id: SessionCookie::hash_session_id("sess-5f2b9c"),
            auth_provider_namespace: "default".to_owned(),
            auth_provider_name: "github-auth-provider".to_owned(),
            user_id: 1,
            cookie: "_oauth2_proxy=MTcwMDAwMDAwMHxEdi1CQkFFQ180SUFBUkFCRUFBQV9".to_owned(),
        }],
        logs: vec![McpAuditLog {
            id: 1,
            created_at: t,
            source_type: "mcp".to_owned(),
            user_id: "1".to_owned(),
            mcp_id: "ms1github".to_owned(),
            mcp_server_display_name: "GitHub".to_owned(),
            client_name: "Claude Desktop".to_owned(),
            client_ip: "203.0.113.7".to_owned(),
            call_type: "tools/call".to_owned(),
            call_identifier: "search_repositories".to_owned(),
            request_body: Some(
                json!({"method": "tools/call", "params": {"name": "search_repositories", "arguments": {"query": "diesel encryption"}}}),
            ),
            response_body: Some(
                json!({"result": {"content": [{"type": "text", "text": "3 repositories"}]}}),
            ),
            request_headers: Some(json!({"Authorization": "Bearer gho_16C7e42F292c6912E7710c"})),
            response_headers: Some(json!({"Content-Type": "application/json"})),
            response_status: 200,
            processing_time_ms: 184,
        }],
        runs: vec![RunState {
            name: "r1abc".to_owned(),
            namespace: "default".to_owned(),
            created_at: t,
            updated_at: t,
            thread_name: "t1weather".to_owned(),
            program: Some(b"{\"entryToolId\":\"weather\"}".to_vec()),
            chat_state: Some(
                b"{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]}".to_vec(),
            ),
            call_frame: Some(b"{\"id\":\"call_1\",\"tool\":\"weather\"}".to_vec()),
            output: Some("The weather in Paris is 18°C.".as_bytes().to_vec()),
            done: true,
            error: String::new(),
        }],
        credentials: vec![Credential {
            id: 1,
            created_at: t,
            context: "default".to_owned(),
            name: "github-token".to_owned(),
            secrets: BTreeMap::from([(
                "GITHUB_TOKEN".to_owned(),
                "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_owned(),
            )]),
        }],
    }
}

/// Runs `$body` with `$c` bound to the connection, whichever the backend.
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($c) => $body,
            $crate::db::Db::Pg($c) => $body,
        }
    };
}

/// Replaces the records' rows (delete by key, insert through the models), in one transaction.
///
/// # Errors
/// Database and encryption errors.
pub fn populate(db: &mut Db, r: &Records) -> Result<(), DbError> {
    on_db!(db, |c| c.transaction::<_, diesel::result::Error, _>(|c| {
        for u in &r.users {
            diesel::delete(users::table.find(u.id)).execute(c)?;
        }
        diesel::insert_into(users::table)
            .values(&r.users)
            .execute(c)?;
        for i in &r.identities {
            diesel::delete(
                identities::table
                    .filter(identities::auth_provider_name.eq(&i.auth_provider_name))
                    .filter(identities::auth_provider_namespace.eq(&i.auth_provider_namespace))
                    .filter(Identity::provider_user_id_eq(&i.provider_user_id)),
            )
            .execute(c)?;
        }
        diesel::insert_into(identities::table)
            .values(&r.identities)
            .execute(c)?;
        for t in &r.tokens {
            diesel::delete(mcp_oauth_tokens::table.find((&t.mcp_id, &t.user_id))).execute(c)?;
        }
        diesel::insert_into(mcp_oauth_tokens::table)
            .values(&r.tokens)
            .execute(c)?;
        for s in &r.cookies {
            diesel::delete(session_cookies::table.find((
                &s.hashed_session_id,
                &s.auth_provider_namespace,
                &s.auth_provider_name,
            )))
            .execute(c)?;
        }
        diesel::insert_into(session_cookies::table)
            .values(&r.cookies)
            .execute(c)?;
        for l in &r.logs {
            diesel::delete(mcp_audit_logs::table.find(l.id)).execute(c)?;
        }
        diesel::insert_into(mcp_audit_logs::table)
            .values(&r.logs)
            .execute(c)?;
        for s in &r.runs {
            diesel::delete(run_states::table.find((&s.name, &s.namespace))).execute(c)?;
        }
        diesel::insert_into(run_states::table)
            .values(&r.runs)
            .execute(c)?;
        for s in &r.credentials {
            diesel::delete(credentials::table.find(s.id)).execute(c)?;
        }
        diesel::insert_into(credentials::table)
            .values(&r.credentials)
            .execute(c)?;
        Ok(())
    }))?;
    Ok(())
}
