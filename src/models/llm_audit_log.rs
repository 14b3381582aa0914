use encrypted_diesel::Encrypted;

use crate::schema::llm_audit_logs;
use crate::schema::types::GoTime;

/// An LLM call's audit record: table `llm_audit_logs` (explicit `TableName`), resource
/// `llmauditlogs.obot.obot.ai`, AAD `llmauditlogs.obot.obot.ai/<id>/<user id>`
/// (`pkg/gateway/types/llmauditlog.go`, `pkg/gateway/client/llmauditlog.go`). Headers and
/// bodies are `json.RawMessage`: ASCII base64 in binary columns, empty ones not encrypted.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = llm_audit_logs,
    resource = "llmauditlogs.obot.obot.ai",
    aad = "{resource}/{id}/{user_id}",
    flag = encrypted,
    backends(postgres, sqlite)
)]
pub struct LlmAuditLog {
    /// Primary key (text).
    pub id: String,
    /// When the call was logged.
    pub created_at: Option<GoTime>,
    /// Duration (ms).
    pub duration: Option<i64>,
    /// The user.
    pub user_id: Option<String>,
    /// The API key used, if any.
    pub api_key_id: Option<i64>,
    /// The API key's display name.
    pub api_key_name: Option<String>,
    /// Model provider.
    pub model_provider: Option<String>,
    /// Model id.
    pub model_id: Option<String>,
    /// Target model.
    pub target_model: Option<String>,
    /// Reasoning effort.
    pub reasoning_effort: Option<String>,
    /// Request path.
    pub request_path: Option<String>,
    /// Request method.
    pub request_method: Option<String>,
    /// Request headers (encrypted).
    #[encrypt(base64, skip_empty)]
    pub request_headers: Option<Vec<u8>>,
    /// Request body (encrypted).
    #[encrypt(base64, skip_empty)]
    pub request_body: Option<Vec<u8>>,
    /// Request body after a message policy changed it (encrypted).
    #[encrypt(base64, skip_empty)]
    pub policy_modified_request_body: Option<Vec<u8>>,
    /// Whether a message policy triggered (NOT NULL).
    pub message_policy_triggered: bool,
    /// Response headers (encrypted).
    #[encrypt(base64, skip_empty)]
    pub response_headers: Option<Vec<u8>>,
    /// Response body (encrypted).
    #[encrypt(base64, skip_empty)]
    pub response_body: Option<Vec<u8>>,
    /// Response id.
    pub response_id: Option<String>,
    /// HTTP status.
    pub response_status: Option<i64>,
    /// `success`, `canceled`, `error`.
    pub outcome: Option<String>,
    /// Error message.
    pub error: Option<String>,
    /// Input tokens.
    pub input_tokens: Option<i64>,
    /// Output tokens.
    pub output_tokens: Option<i64>,
    /// Request id.
    pub request_id: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Client session.
    pub client_session_id: Option<String>,
    /// Client IP address.
    pub client_ip: Option<String>,
}
