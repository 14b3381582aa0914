use encrypted_diesel::Encrypted;

use crate::schema::mcp_audit_logs;
use crate::schema::types::{GoJson, GoTime};

/// An MCP call's audit record: the rows of `mcp_audit_logs` with `source_type = 'mcp'`,
/// resource `mcpauditlogs.obot.obot.ai`, AAD `mcpauditlogs.obot.obot.ai/<mcp id>/<user id>`
/// (`pkg/gateway/types/mcpauditlog.go` `MCPAuditLog` + `MCPAuditLogFields`,
/// `pkg/gateway/client/mcpauditlog.go` `encryptMCPAuditLog`).
///
/// The six bodies and header sets are Go `json.RawMessage`: encrypted, then stored as ASCII
/// base64 in the `bytea`/`blob` column; an empty or NULL one is left as it is, not encrypted
/// (`encryptRawMessageField`). The bytes are kept exactly (no JSON parsing). The local-agent
/// columns of the same table are NULL on these rows (GORM writes a nil embedded struct as NULLs);
/// [`LocalAgentAuditLog`](super::LocalAgentAuditLog) covers the other rows.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = mcp_audit_logs,
    resource = "mcpauditlogs.obot.obot.ai",
    aad = "{resource}/{mcp_id}/{user_id}",
    flag = encrypted,
    rows(source_type = "mcp"),
    backends(postgres, sqlite)
)]
pub struct McpAuditLog {
    /// Primary key.
    pub id: i64,
    /// When the call was logged.
    pub created_at: Option<GoTime>,
    /// `mcp`.
    pub source_type: Option<String>,
    /// The calling user.
    pub user_id: Option<String>,
    /// The API key used, if any.
    pub api_key_id: Option<i64>,
    /// The API key's display name at the time.
    pub api_key_name: Option<String>,
    /// The client's IP address.
    pub client_ip: Option<String>,
    /// The API key's masked form.
    pub api_key: Option<String>,
    /// The MCP server.
    pub mcp_id: Option<String>,
    /// The power user workspace.
    pub power_user_workspace_id: Option<String>,
    /// The MCP server's display name.
    pub mcp_server_display_name: Option<String>,
    /// The catalog entry.
    pub mcp_server_catalog_entry_name: Option<String>,
    /// The MCP client's name.
    pub client_name: Option<String>,
    /// The MCP client's version.
    pub client_version: Option<String>,
    /// `tools/call`, `resources/read`, ...
    pub call_type: Option<String>,
    /// The tool or resource.
    pub call_identifier: Option<String>,
    /// Whether a webhook changed the request.
    pub request_mutated: Option<bool>,
    /// Request body (encrypted; raw JSON bytes).
    #[encrypt(base64, skip_empty)]
    pub request_body: Option<Vec<u8>>,
    /// Request body after a webhook changed it (encrypted).
    #[encrypt(base64, skip_empty)]
    pub mutated_request_body: Option<Vec<u8>>,
    /// Whether a webhook changed the response.
    pub response_mutated: Option<bool>,
    /// Response body (encrypted).
    #[encrypt(base64, skip_empty)]
    pub response_body: Option<Vec<u8>>,
    /// Response body before a webhook changed it (encrypted).
    #[encrypt(base64, skip_empty)]
    pub original_response_body: Option<Vec<u8>>,
    /// HTTP status of the response.
    pub response_status: Option<i64>,
    /// Error message.
    pub error: Option<String>,
    /// Processing time.
    pub processing_time_ms: Option<i64>,
    /// MCP session.
    pub session_id: Option<String>,
    /// Webhook results (JSON array, not encrypted).
    pub webhook_statuses: Option<GoJson>,
    /// Whether a response arrived.
    pub response_received: Option<bool>,
    /// Shared by the request and response entries of one proxied exchange.
    pub proxy_exchange_id: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Request headers (encrypted; JSON).
    #[encrypt(base64, skip_empty)]
    pub request_headers: Option<Vec<u8>>,
    /// Response headers (encrypted; JSON).
    #[encrypt(base64, skip_empty)]
    pub response_headers: Option<Vec<u8>>,
}
