use encrypted_diesel::Encrypted;

use crate::schema::mcpo_auth_pending_states;
use crate::schema::types::GoTime;

/// An OAuth authorization in progress: table `mcpo_auth_pending_states`, resource
/// `mcpoauthpendingstates.obot.obot.ai`, or the tokens' keys (`mcpoauthtokens.obot.obot.ai`) when
/// the configuration does not list it; the AAD is `mcpoauthpendingstates.obot.obot.ai/<mcp id>`
/// either way (`pkg/gateway/types/tokens.go`, `pkg/gateway/client/mcpoauthtoken.go`
/// `encryptMCPOAuthPendingState`). `hashed_state` is the SHA-256 of the state (the callback's
/// lookup); every encrypted field is encrypted even when empty. Obot deletes rows older than
/// 30 minutes.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = mcpo_auth_pending_states,
    resource = "mcpoauthpendingstates.obot.obot.ai",
    fallback_resource = "mcpoauthtokens.obot.obot.ai",
    aad = "{resource}/{mcp_id}",
    flag = encrypted,
    primary_key(hashed_state),
    backends(postgres, sqlite)
)]
pub struct McpOAuthPendingState {
    /// The OAuth `state` (encrypted; `hashed_state`, the primary key).
    #[encrypt(hash = hashed_state)]
    pub state: Option<String>,
    /// PKCE verifier (encrypted).
    #[encrypt]
    pub verifier: Option<String>,
    /// The user.
    pub user_id: Option<String>,
    /// The MCP server.
    pub mcp_id: Option<String>,
    /// MCP server URL.
    pub url: Option<String>,
    /// The protected resource's URL.
    pub resource_url: Option<String>,
    /// The OAuth authorization request.
    pub o_auth_auth_request_id: Option<String>,
    /// OAuth client id (encrypted).
    #[encrypt]
    pub client_id: Option<String>,
    /// OAuth client secret (encrypted).
    #[encrypt]
    pub client_secret: Option<String>,
    /// Authorization endpoint.
    pub auth_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// `oauth2.AuthStyle`.
    pub auth_style: Option<i64>,
    /// Redirect URL.
    pub redirect_url: Option<String>,
    /// Space-separated scopes.
    pub scopes: Option<String>,
    /// Creation time.
    pub created_at: Option<GoTime>,
}
