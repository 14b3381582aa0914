use chrono::NaiveDateTime;
use encrypted_diesel::Encrypted;
use serde_json::Value;

use crate::schema::mcp_audit_logs;

/// An MCP call's audit record (`mcp_audit_logs`, resource `mcpauditlogs.obot.obot.ai`, AAD
/// `mcpauditlogs.obot.obot.ai/<mcp id>/<user id>`). Bodies and headers are JSON, encrypted and
/// stored as ASCII base64 in the binary columns, as Obot stores `json.RawMessage` fields.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = mcp_audit_logs,
    resource = "mcpauditlogs.obot.obot.ai",
    aad = "{resource}/{mcp_id}/{user_id}",
    flag = encrypted
)]
pub struct McpAuditLog {
    /// Primary key.
    pub id: i64,
    /// When the call was logged.
    pub created_at: NaiveDateTime,
    /// `mcp` (this model's AAD is the `mcp` source's).
    pub source_type: String,
    /// The calling user.
    pub user_id: String,
    /// The MCP server.
    pub mcp_id: String,
    /// The MCP server's display name.
    pub mcp_server_display_name: String,
    /// The MCP client's name.
    pub client_name: String,
    /// The client's IP address.
    pub client_ip: String,
    /// `tools/call`, `resources/read`, ...
    pub call_type: String,
    /// The tool or resource.
    pub call_identifier: String,
    /// Request body (encrypted JSON).
    #[encrypt(json, base64)]
    pub request_body: Option<Value>,
    /// Response body (encrypted JSON).
    #[encrypt(json, base64)]
    pub response_body: Option<Value>,
    /// Request headers (encrypted JSON).
    #[encrypt(json, base64)]
    pub request_headers: Option<Value>,
    /// Response headers (encrypted JSON).
    #[encrypt(json, base64)]
    pub response_headers: Option<Value>,
    /// HTTP status of the response.
    pub response_status: i64,
    /// Processing time.
    pub processing_time_ms: i64,
}
