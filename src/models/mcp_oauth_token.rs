use chrono::NaiveDateTime;
use encrypted_diesel::Encrypted;

use crate::schema::mcp_oauth_tokens;

/// An MCP server's OAuth token for a user (`mcp_oauth_tokens` — Obot's GORM table is
/// `mcpo_auth_tokens`; resource `mcpoauthtokens.obot.obot.ai`, AAD
/// `mcpoauthtokens.obot.obot.ai/<mcp id>`, without the user id, as in Obot).
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = mcp_oauth_tokens,
    resource = "mcpoauthtokens.obot.obot.ai",
    aad = "{resource}/{mcp_id}",
    flag = encrypted,
    primary_key(mcp_id, user_id)
)]
pub struct McpOAuthToken {
    /// MCP server id (primary key).
    pub mcp_id: String,
    /// User id (primary key).
    pub user_id: String,
    /// MCP server URL.
    pub url: String,
    /// OAuth authorization endpoint.
    pub auth_url: String,
    /// OAuth token endpoint.
    pub token_url: String,
    /// `oauth2.AuthStyle`.
    pub auth_style: i64,
    /// Redirect URL.
    pub redirect_url: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// OAuth client id (encrypted).
    #[encrypt]
    pub client_id: String,
    /// OAuth client secret (encrypted).
    #[encrypt]
    pub client_secret: String,
    /// Access token (encrypted).
    #[encrypt]
    pub access_token: String,
    /// Token type (`Bearer`).
    pub token_type: String,
    /// Refresh token (encrypted).
    #[encrypt]
    pub refresh_token: String,
    /// Access token expiry.
    pub expiry: Option<NaiveDateTime>,
    /// Pending authorization state (encrypted; `hashed_state` for the callback lookup).
    #[encrypt(hash = hashed_state)]
    pub state: Option<String>,
    /// PKCE verifier (encrypted).
    #[encrypt]
    pub verifier: Option<String>,
}
