use encrypted_diesel::Encrypted;

use crate::schema::mcp_audit_logs;
use crate::schema::types::GoTime;

/// A local agent's tool call: the rows of `mcp_audit_logs` with
/// `source_type = 'local_agent_tool_call'`, resource `mcpauditlogs.obot.obot.ai`, AAD
/// `mcpauditlogs.obot.obot.ai/local_agent_tool_call/<user id>` (the source type where MCP rows
/// have the MCP id; `user_id` is `''` for a device actor) (`pkg/gateway/types/mcpauditlog.go`
/// `LocalAgentToolCallAuditLogFields`, `pkg/gateway/client/mcpauditlog.go`).
///
/// Encrypted, each skipped when empty (`encryptStringField`, `encryptStringSliceField`,
/// `encryptRawMessageField`): eight strings (base64 in text), every element of `git_remotes`
/// (a JSON array of base64 strings; an empty element stays `""`; see the field), and three
/// bodies (ASCII base64 in binary columns). The MCP columns are NULL on these rows. The event's session id is not
/// stored: GORM maps the `session_id` column to the MCP field, which is nil here.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = mcp_audit_logs,
    resource = "mcpauditlogs.obot.obot.ai",
    aad = "{resource}/{source_type}/{user_id}",
    flag = encrypted,
    rows(source_type = "local_agent_tool_call"),
    backends(postgres, sqlite)
)]
pub struct LocalAgentAuditLog {
    /// Primary key.
    pub id: i64,
    /// When the entry was stored.
    pub created_at: Option<GoTime>,
    /// `local_agent_tool_call`.
    pub source_type: Option<String>,
    /// The user (empty for a device actor).
    pub user_id: Option<String>,
    /// The API key used, if any.
    pub api_key_id: Option<i64>,
    /// The API key's display name.
    pub api_key_name: Option<String>,
    /// The client's IP address.
    pub client_ip: Option<String>,
    /// When the tool call happened (client clock).
    pub occurred_at: Option<GoTime>,
    /// When it started.
    pub started_at: Option<GoTime>,
    /// `user`, `device` or `unknown`.
    pub actor_type: Option<String>,
    /// The actor.
    pub actor_id: Option<String>,
    /// The action (tool) name.
    pub action_name: Option<String>,
    /// The action kind.
    pub action_kind: Option<String>,
    /// `local_tool` or `mcp_tool`.
    pub target_type: Option<String>,
    /// The target.
    pub target_name: Option<String>,
    /// The target's parent type.
    pub target_parent_type: Option<String>,
    /// The target's parent.
    pub target_parent_name: Option<String>,
    /// `success`, `failure`, `denied`, `timeout`.
    pub outcome_status: Option<String>,
    /// Why.
    pub outcome_reason: Option<String>,
    /// The error (`OutcomeError`; encrypted).
    #[encrypt(skip_empty)]
    pub local_agent_error: Option<String>,
    /// Duration.
    pub duration_ms: Option<i64>,
    /// Deduplicates resubmissions (unique).
    pub idempotency_key: Option<String>,
    /// The agent runtime's tool-use id.
    pub tool_use_id: Option<String>,
    /// The conversation turn.
    pub turn_id: Option<String>,
    /// `claude_code`, `codex`, `vscode`, `cursor`.
    pub agent_provider: Option<String>,
    /// Agent version.
    pub agent_version: Option<String>,
    /// CLI name.
    pub cli_name: Option<String>,
    /// CLI version.
    pub cli_version: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Model id.
    pub model_id: Option<String>,
    /// Permission mode.
    pub permission_mode: Option<String>,
    /// The device.
    pub device_id: Option<String>,
    /// The device deployment.
    pub device_deployment_id: Option<i64>,
    /// Host name (encrypted).
    #[encrypt(skip_empty)]
    pub hostname: Option<String>,
    /// Operating system.
    pub os: Option<String>,
    /// CPU architecture.
    pub architecture: Option<String>,
    /// Local user name (encrypted).
    #[encrypt(skip_empty)]
    pub local_username: Option<String>,
    /// Working directory (encrypted).
    #[encrypt(skip_empty)]
    pub cwd: Option<String>,
    /// Git root (encrypted).
    #[encrypt(skip_empty)]
    pub git_root: Option<String>,
    /// Git remotes: a JSON array whose elements Obot encrypts one by one (base64 strings; an
    /// empty element stays `""`; `None` is JSON `null`, as GORM writes a nil slice), in this
    /// schema's JSON type ([`Jsonb`](crate::schema::types::Jsonb): `jsonb` on PostgreSQL, JSON
    /// text on SQLite).
    #[encrypt(each, skip_empty)]
    pub git_remotes: Option<Vec<String>>,
    /// Git branch (encrypted).
    #[encrypt(skip_empty)]
    pub git_branch: Option<String>,
    /// Git commit.
    pub git_commit: Option<String>,
    /// The e-mail the agent reported (encrypted).
    #[encrypt(skip_empty)]
    pub reported_user_email: Option<String>,
    /// Transcript path (encrypted).
    #[encrypt(skip_empty)]
    pub transcript_path: Option<String>,
    /// Request body (encrypted; raw JSON bytes).
    #[encrypt(base64, skip_empty)]
    pub local_agent_request_body: Option<Vec<u8>>,
    /// Response body (encrypted).
    #[encrypt(base64, skip_empty)]
    pub local_agent_response_body: Option<Vec<u8>>,
    /// The hook's raw event (encrypted).
    #[encrypt(base64, skip_empty)]
    pub local_agent_raw_event: Option<Vec<u8>>,
}
