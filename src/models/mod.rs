//! Obot's resources with their encrypted fields, hash columns and AAD conventions.
//!
//! One model per table Obot encrypts today (obot-platform/obot
//! ba10ff724730e58414ff2185626ea3077c698b19), two for `mcp_audit_logs` (its MCP rows and its
//! local-agent rows have different encrypted fields and AADs), plus the historic session cookies
//! and run states. Every model derives [`encrypted_diesel::Encrypted`]: values are encrypted on
//! write and decrypted on load with the Obot resource's keys and Obot's authenticated-data
//! string, and stored exactly as Obot stores them (standard base64 of the Kubernetes transformer
//! output in text columns, ASCII base64 in the binary columns of `json.RawMessage` fields, raw
//! bytes for run states). Hash columns are Obot's lowercase hex SHA-256. Fields are `Option` where
//! GORM's column is nullable. See `docs/obot-encryption-spec.md` for every rule and its source.

mod credential;
mod identity;
mod llm_audit_log;
mod local_agent_audit_log;
mod local_auth_user;
mod mcp_audit_log;
mod mcpo_auth_pending_state;
mod mcpo_auth_token;
mod message_policy_violation;
mod property;
mod run_state;
mod session_cookie;
mod user;

pub use credential::Credential;
pub use identity::Identity;
pub use llm_audit_log::LlmAuditLog;
pub use local_agent_audit_log::LocalAgentAuditLog;
pub use local_auth_user::LocalAuthUser;
pub use mcp_audit_log::McpAuditLog;
pub use mcpo_auth_pending_state::McpOAuthPendingState;
pub use mcpo_auth_token::McpOAuthToken;
pub use message_policy_violation::MessagePolicyViolation;
pub use property::Property;
pub use run_state::RunState;
pub use session_cookie::SessionCookie;
pub use user::User;
