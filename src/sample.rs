//! Realistic records for every Obot table: what `obot-store demo` writes, and test data.

use std::collections::BTreeMap;

use chrono::{Timelike as _, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::db::{Db, DbError};
use crate::models::{
    Credential, Identity, LlmAuditLog, LocalAgentAuditLog, LocalAuthUser, McpAuditLog,
    McpOAuthPendingState, McpOAuthToken, MessagePolicyViolation, Property, RunState, SessionCookie,
    User,
};
use crate::schema::types::{GoJson, GoTime};
use crate::schema::{
    credentials, identities, llm_audit_logs, local_auth_users, mcp_audit_logs,
    mcpo_auth_pending_states, mcpo_auth_tokens, message_policy_violations, properties, run_states,
    session_cookies, users,
};

fn now() -> GoTime {
    let t = Utc::now();
    GoTime(t.with_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t))
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn body(v: &serde_json::Value) -> Option<Vec<u8>> {
    Some(v.to_string().into_bytes())
}

/// The demo's records, one set per table.
#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    /// Users.
    pub users: Vec<User>,
    /// Identities.
    pub identities: Vec<Identity>,
    /// Local (password) logins.
    pub local_users: Vec<LocalAuthUser>,
    /// MCP OAuth tokens.
    pub tokens: Vec<McpOAuthToken>,
    /// OAuth authorizations in progress.
    pub pending: Vec<McpOAuthPendingState>,
    /// MCP audit logs (source `mcp`).
    pub logs: Vec<McpAuditLog>,
    /// Local-agent audit logs (source `local_agent_tool_call`).
    pub local_logs: Vec<LocalAgentAuditLog>,
    /// LLM audit logs.
    pub llm_logs: Vec<LlmAuditLog>,
    /// Message policy violations.
    pub violations: Vec<MessagePolicyViolation>,
    /// Properties.
    pub properties: Vec<Property>,
    /// Credentials.
    pub credentials: Vec<Credential>,
    /// Session cookies (historic).
    pub cookies: Vec<SessionCookie>,
    /// Run states (historic).
    pub runs: Vec<RunState>,
}

/// The demo's records (timestamps: now, to the microsecond).
#[must_use]
#[expect(clippy::too_many_lines, reason = "one literal per table")]
pub fn records() -> Records {
    let t = now();
    let user = |id: i64, name: &str, display: &str| User {
        id,
        created_at: Some(t),
        display_name: s(display),
        username: s(name),
        email: Some(format!("{name}@example.com")),
        verified_email: Some(true),
        role: Some(if id == 1 { 8 } else { 2 }),
        icon_url: Some(format!(
            "https://avatars.githubusercontent.com/u/{}",
            1_048_570 + id
        )),
        timezone: s("Europe/Paris"),
        last_active_day: Some(t),
        internal: Some(false),
        daily_input_tokens_limit: Some(0),
        daily_output_tokens_limit: Some(0),
        deleted_at: None,
        original_email: s(""),
        original_username: s(""),
    };
    let mcp_log_fields = McpAuditLog {
        id: 1,
        created_at: Some(t),
        source_type: s("mcp"),
        user_id: s("1"),
        api_key_id: None,
        api_key_name: s(""),
        client_ip: s("203.0.113.7"),
        api_key: s(""),
        mcp_id: s("ms1github"),
        power_user_workspace_id: s(""),
        mcp_server_display_name: s("GitHub"),
        mcp_server_catalog_entry_name: s("github"),
        client_name: s("Claude Desktop"),
        client_version: s("0.12.1"),
        call_type: s("tools/call"),
        call_identifier: s("search_repositories"),
        request_mutated: Some(false),
        request_body: body(
            &json!({"method": "tools/call", "params": {"name": "search_repositories", "arguments": {"query": "diesel encryption"}}}),
        ),
        mutated_request_body: None,
        response_mutated: Some(false),
        response_body: body(
            &json!({"result": {"content": [{"type": "text", "text": "3 repositories"}]}}),
        ),
        original_response_body: None,
        response_status: Some(200),
        error: s(""),
        processing_time_ms: Some(184),
        session_id: s("mcp-session-1"),
        webhook_statuses: Some(GoJson(serde_json::Value::Null)),
        response_received: Some(true),
        proxy_exchange_id: s("px-1"),
        request_id: s("req-1"),
        user_agent: s("Claude-Desktop/0.12.1"),
        request_headers: body(&json!({"Authorization": ["Bearer gho_16C7e42F292c6912E7710c"]})),
        response_headers: body(&json!({"Content-Type": ["application/json"]})),
    };
    Records {
        users: vec![
            user(1, "alice", "Alice Martin"),
            user(2, "bob", "Bob Nakamura"),
        ],
        identities: vec![Identity {
            auth_provider_name: "github-auth-provider".to_owned(),
            auth_provider_namespace: "default".to_owned(),
            provider_username: s("alice-gh"),
            provider_user_id: s("1048571"),
            provider_group_lookup_id: s("MDQ6VXNlcjEwNDg1NzE="),
            email: s("alice@example.com"),
            user_id: Some(1),
            icon_url: s("https://avatars.githubusercontent.com/u/1048571"),
            icon_last_checked: Some(t),
            auth_provider_groups_last_checked: Some(t),
        }],
        local_users: vec![LocalAuthUser {
            id: 1,
            created_at: Some(t),
            updated_at: Some(t),
            email: s("admin@example.com"),
            password_hash: s("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"),
        }],
        tokens: vec![McpOAuthToken {
            auth_url: s("https://github.com/login/oauth/authorize"),
            device_auth_url: s(""),
            token_url: s("https://github.com/login/oauth/access_token"),
            auth_style: Some(1),
            client_id: s("Iv23liAbCdEf012345"),
            client_secret: s("3f1e2d4c5b6a79880f1e2d4c5b6a79880f1e2d4c"),
            redirect_url: s("https://obot.example.com/oauth/mcp/callback"),
            scopes: s("repo read:org"),
            mcp_id: "ms1github".to_owned(),
            user_id: "1".to_owned(),
            url: s("https://api.githubcopilot.com/mcp/"),
            o_auth_auth_request_id: s("oar-1"),
            access_token: s("gho_16C7e42F292c6912E7710c838347Ae178B4a"),
            token_type: s("Bearer"),
            refresh_token: s("ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246"),
            expiry: Some(GoTime(t.0 + chrono::Duration::hours(8))),
            expires_in: Some(28_800),
        }],
        pending: vec![McpOAuthPendingState {
            state: s("st_9c8b7a6f5e4d3c2b1a"),
            verifier: s("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            user_id: s("2"),
            mcp_id: s("ms1github"),
            url: s("https://api.githubcopilot.com/mcp/"),
            resource_url: s("https://api.githubcopilot.com/"),
            o_auth_auth_request_id: s("oar-2"),
            client_id: s("Iv23liAbCdEf012345"),
            client_secret: s("3f1e2d4c5b6a79880f1e2d4c5b6a79880f1e2d4c"),
            auth_url: s("https://github.com/login/oauth/authorize"),
            token_url: s("https://github.com/login/oauth/access_token"),
            auth_style: Some(1),
            redirect_url: s("https://obot.example.com/oauth/mcp/callback"),
            scopes: s("repo"),
            created_at: Some(t),
        }],
        logs: vec![mcp_log_fields],
        local_logs: vec![LocalAgentAuditLog {
            id: 2,
            created_at: Some(t),
            source_type: s("local_agent_tool_call"),
            user_id: s("1"),
            api_key_id: None,
            api_key_name: s(""),
            client_ip: s("203.0.113.8"),
            occurred_at: Some(t),
            started_at: Some(t),
            actor_type: s("user"),
            actor_id: s("1"),
            action_name: s("Bash"),
            action_kind: s("tool"),
            target_type: s("local_tool"),
            target_name: s("Bash"),
            target_parent_type: s(""),
            target_parent_name: s(""),
            outcome_status: s("success"),
            outcome_reason: s(""),
            local_agent_error: s(""),
            duration_ms: Some(1_250),
            idempotency_key: s("idem-1"),
            tool_use_id: s("toolu_01"),
            turn_id: s("turn-1"),
            agent_provider: s("claude_code"),
            agent_version: s("2.1.0"),
            cli_name: s("obot"),
            cli_version: s("0.9.1"),
            model: s("claude-sonnet"),
            model_id: s("claude-sonnet-4"),
            permission_mode: s("default"),
            device_id: s(""),
            device_deployment_id: Some(0),
            hostname: s("alice-mbp.local"),
            os: s("darwin"),
            architecture: s("arm64"),
            local_username: s("alice"),
            cwd: s("/Users/alice/src/obot"),
            git_root: s("/Users/alice/src/obot"),
            git_remotes: Some(vec!["git@github.com:obot-platform/obot.git".to_owned()]),
            git_branch: s("main"),
            git_commit: s("ba10ff72"),
            reported_user_email: s("alice@example.com"),
            transcript_path: s("/Users/alice/.claude/projects/obot/t.jsonl"),
            local_agent_request_body: body(&json!({"command": "cargo test"})),
            local_agent_response_body: body(&json!({"exit_code": 0})),
            local_agent_raw_event: body(&json!({"hook_event_name": "PostToolUse"})),
        }],
        llm_logs: vec![LlmAuditLog {
            id: "01JZ3C4V5B6N7M8Q9R0S1T2U3V".to_owned(),
            created_at: Some(t),
            duration: Some(912),
            user_id: s("1"),
            api_key_id: None,
            api_key_name: s(""),
            model_provider: s("anthropic"),
            model_id: s("claude-sonnet-4"),
            target_model: s("claude-sonnet-4"),
            reasoning_effort: s(""),
            request_path: s("/v1/messages"),
            request_method: s("POST"),
            request_headers: body(&json!({"anthropic-version": ["2023-06-01"]})),
            request_body: body(&json!({"messages": [{"role": "user", "content": "Hello"}]})),
            policy_modified_request_body: None,
            message_policy_triggered: false,
            response_headers: body(&json!({"Content-Type": ["application/json"]})),
            response_body: body(&json!({"id": "msg_01", "content": [{"text": "Hi!"}]})),
            response_id: s("msg_01"),
            response_status: Some(200),
            outcome: s("success"),
            error: s(""),
            input_tokens: Some(9),
            output_tokens: Some(4),
            request_id: s("req-2"),
            user_agent: s("anthropic-sdk/0.40"),
            client_session_id: s("cs-1"),
            client_ip: s("203.0.113.7"),
        }],
        violations: vec![MessagePolicyViolation {
            id: 1,
            created_at: Some(t),
            user_id: s("2"),
            policy_id: s("mp1secrets"),
            policy_name: s("No secrets"),
            policy_definition: s("Never reveal API keys."),
            direction: s("output"),
            violation_explanation: s("The answer contained an API key."),
            blocked_content: body(&json!({"text": "Your key is sk-live-51H..."})),
            project_id: s("p1demo"),
            thread_id: s("t1demo"),
        }],
        properties: vec![Property {
            created_at: Some(t),
            updated_at: Some(t),
            key: "onboarding.completed".to_owned(),
            value: s("true"),
        }],
        credentials: vec![Credential {
            id: 1,
            created_at: Some(t),
            context: "default".to_owned(),
            name: "github-token".to_owned(),
            secrets: Some(BTreeMap::from([(
                "GITHUB_TOKEN".to_owned(),
                "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_owned(),
            )])),
        }],
        cookies: vec![SessionCookie {
            hashed_session_id: SessionCookie::hash_session_id("sess-5f2b9c"),
            auth_provider_namespace: "default".to_owned(),
            auth_provider_name: "github-auth-provider".to_owned(),
            user_id: Some(1),
            cookie: s("_oauth2_proxy=MTcwMDAwMDAwMHxEdi1CQkFFQ180SUFBUkFCRUFBQV9"),
        }],
        runs: vec![RunState {
            name: "r1abc".to_owned(),
            namespace: "default".to_owned(),
            created_at: Some(t),
            updated_at: Some(t),
            thread_name: s("t1weather"),
            program: Some(b"{\"entryToolId\":\"weather\"}".to_vec()),
            chat_state: Some(
                b"{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]}".to_vec(),
            ),
            call_frame: Some(b"{\"id\":\"call_1\",\"tool\":\"weather\"}".to_vec()),
            output: Some("The weather in Paris is 18°C.".as_bytes().to_vec()),
            done: Some(true),
            error: s(""),
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
                    .filter(Identity::provider_user_id_eq(
                        i.provider_user_id.as_deref().unwrap_or(""),
                    )),
            )
            .execute(c)?;
        }
        diesel::insert_into(identities::table)
            .values(&r.identities)
            .execute(c)?;
        for u in &r.local_users {
            diesel::delete(local_auth_users::table.find(u.id)).execute(c)?;
        }
        diesel::insert_into(local_auth_users::table)
            .values(&r.local_users)
            .execute(c)?;
        for t in &r.tokens {
            diesel::delete(mcpo_auth_tokens::table.find((&t.mcp_id, &t.user_id))).execute(c)?;
        }
        diesel::insert_into(mcpo_auth_tokens::table)
            .values(&r.tokens)
            .execute(c)?;
        for p in &r.pending {
            diesel::delete(
                mcpo_auth_pending_states::table.filter(McpOAuthPendingState::state_eq(
                    p.state.as_deref().unwrap_or(""),
                )),
            )
            .execute(c)?;
        }
        diesel::insert_into(mcpo_auth_pending_states::table)
            .values(&r.pending)
            .execute(c)?;
        for l in &r.logs {
            diesel::delete(mcp_audit_logs::table.find(l.id)).execute(c)?;
        }
        for l in &r.local_logs {
            diesel::delete(mcp_audit_logs::table.find(l.id)).execute(c)?;
        }
        diesel::insert_into(mcp_audit_logs::table)
            .values(&r.logs)
            .execute(c)?;
        diesel::insert_into(mcp_audit_logs::table)
            .values(&r.local_logs)
            .execute(c)?;
        for l in &r.llm_logs {
            diesel::delete(llm_audit_logs::table.find(&l.id)).execute(c)?;
        }
        diesel::insert_into(llm_audit_logs::table)
            .values(&r.llm_logs)
            .execute(c)?;
        for v in &r.violations {
            diesel::delete(message_policy_violations::table.find(v.id)).execute(c)?;
        }
        diesel::insert_into(message_policy_violations::table)
            .values(&r.violations)
            .execute(c)?;
        for p in &r.properties {
            diesel::delete(properties::table.find(&p.key)).execute(c)?;
        }
        diesel::insert_into(properties::table)
            .values(&r.properties)
            .execute(c)?;
        for k in &r.credentials {
            diesel::delete(credentials::table.find(k.id)).execute(c)?;
        }
        diesel::insert_into(credentials::table)
            .values(&r.credentials)
            .execute(c)?;
        for k in &r.cookies {
            diesel::delete(session_cookies::table.find((
                &k.hashed_session_id,
                &k.auth_provider_namespace,
                &k.auth_provider_name,
            )))
            .execute(c)?;
        }
        diesel::insert_into(session_cookies::table)
            .values(&r.cookies)
            .execute(c)?;
        for k in &r.runs {
            diesel::delete(run_states::table.find((&k.name, &k.namespace))).execute(c)?;
        }
        diesel::insert_into(run_states::table)
            .values(&r.runs)
            .execute(c)?;
        Ok(())
    }))?;
    Ok(())
}
