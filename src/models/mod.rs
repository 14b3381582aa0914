//! Obot's resources with their encrypted fields, hash columns and AAD conventions.
//!
//! Every model derives [`encrypted_diesel::Encrypted`]: values are encrypted on write and
//! decrypted on load with the Obot resource's keys and Obot's authenticated-data string, and
//! stored exactly as Obot stores them (standard base64 of the Kubernetes transformer output in text
//! columns). Hash columns are Obot's lowercase hex SHA-256 of the raw value.

mod credential;
mod identity;
mod mcp_audit_log;
mod mcp_oauth_token;
mod run_state;
mod session_cookie;
mod user;

pub use credential::Credential;
pub use identity::Identity;
pub use mcp_audit_log::McpAuditLog;
pub use mcp_oauth_token::McpOAuthToken;
pub use run_state::RunState;
pub use session_cookie::SessionCookie;
pub use user::User;
