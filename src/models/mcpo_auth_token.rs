use encrypted_diesel::Encrypted;

use crate::schema::mcpo_auth_tokens;
use crate::schema::types::GoTime;

/// An MCP server's OAuth token for a user: table `mcpo_auth_tokens` (GORM's name for
/// `MCPOAuthToken`: "OAuth" is not one of its initialisms), resource
/// `mcpoauthtokens.obot.obot.ai`, AAD `mcpoauthtokens.obot.obot.ai/<mcp id>` without the user
/// id (`pkg/gateway/types/tokens.go`, `pkg/gateway/client/mcpoauthtoken.go`).
///
/// Every encrypted field is encrypted even when empty. The pending authorization's `state` and
/// `verifier` live in [`McpOAuthPendingState`](super::McpOAuthPendingState) since Obot 12259d402
/// (old databases may still have those columns here, unused: Obot's migration that drops them
/// names the wrong table).
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = mcpo_auth_tokens,
    resource = "mcpoauthtokens.obot.obot.ai",
    aad = "{resource}/{mcp_id}",
    flag = encrypted,
    primary_key(mcp_id, user_id),
    backends(postgres, sqlite)
)]
pub struct McpOAuthToken {
    /// OAuth authorization endpoint (`oauth2.Endpoint`).
    pub auth_url: Option<String>,
    /// Device authorization endpoint.
    pub device_auth_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// `oauth2.AuthStyle`.
    pub auth_style: Option<i64>,
    /// OAuth client id (encrypted).
    #[encrypt]
    pub client_id: Option<String>,
    /// OAuth client secret (encrypted).
    #[encrypt]
    pub client_secret: Option<String>,
    /// Redirect URL.
    pub redirect_url: Option<String>,
    /// Space-separated scopes.
    pub scopes: Option<String>,
    /// MCP server id (primary key).
    pub mcp_id: String,
    /// User id (primary key).
    pub user_id: String,
    /// MCP server URL.
    pub url: Option<String>,
    /// The OAuth authorization request.
    pub o_auth_auth_request_id: Option<String>,
    /// Access token (encrypted).
    #[encrypt]
    pub access_token: Option<String>,
    /// Token type (`Bearer`).
    pub token_type: Option<String>,
    /// Refresh token (encrypted).
    #[encrypt]
    pub refresh_token: Option<String>,
    /// Access token expiry.
    pub expiry: Option<GoTime>,
    /// Lifetime in seconds, as the server reported it.
    pub expires_in: Option<i64>,
}
