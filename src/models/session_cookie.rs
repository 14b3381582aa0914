use encrypted_diesel::Encrypted;

use crate::schema::session_cookies;

/// An auth provider's session cookie: the historic table `session_cookies` (removed from Obot in
/// cbd6faea1, dropped by its migration `drop_session_cookies`; kept here in the layout Obot's GORM
/// gave it, `pkg/gateway/types/sessioncookie.go` at cbd6faea1^). Resource
/// `sessioncookies.obot.obot.ai`, AAD
/// `sessioncookies.obot.obot.ai/<namespace>/<provider name>/<hashed session id>`.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = session_cookies,
    resource = "sessioncookies.obot.obot.ai",
    aad = "{resource}/{auth_provider_namespace}/{auth_provider_name}/{hashed_session_id}",
    flag = encrypted,
    primary_key(hashed_session_id, auth_provider_namespace, auth_provider_name),
    backends(postgres, sqlite)
)]
pub struct SessionCookie {
    /// SHA-256 hex of the session id (primary key; the session id itself is never stored).
    pub hashed_session_id: String,
    /// Auth provider namespace (primary key).
    pub auth_provider_namespace: String,
    /// Auth provider name (primary key).
    pub auth_provider_name: String,
    /// The Obot user.
    pub user_id: Option<i64>,
    /// The cookie (encrypted).
    #[encrypt]
    pub cookie: Option<String>,
}

impl SessionCookie {
    /// Obot's `hashed_session_id` of a session id.
    #[must_use]
    pub fn hash_session_id(session_id: &str) -> String {
        encrypted_diesel::hash::sha256_hex(session_id.as_bytes())
    }
}
