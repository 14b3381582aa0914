use encrypted_diesel::Encrypted;

use crate::schema::identities;
use crate::schema::types::GoTime;

/// A user's identity at an auth provider: table `identities`, resource
/// `identities.obot.obot.ai`, AAD
/// `identities.obot.obot.ai/<namespace>/<provider name>/<hashed provider user id>`
/// (`pkg/gateway/types/identity.go`, `pkg/gateway/client/identity.go` `encryptIdentity`).
///
/// Every encrypted field is encrypted even when empty. The hash columns are `''` for an empty
/// value (`ensureIdentity` hashes only non-empty ones). `provider_group_lookup_id` is NULL on rows
/// from before Obot added it.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = identities,
    resource = "identities.obot.obot.ai",
    aad = "{resource}/{auth_provider_namespace}/{auth_provider_name}/{hashed_provider_user_id}",
    flag = encrypted,
    primary_key(auth_provider_name, auth_provider_namespace, hashed_provider_user_id),
    backends(postgres, sqlite)
)]
pub struct Identity {
    /// Auth provider name (primary key).
    pub auth_provider_name: String,
    /// Auth provider namespace (primary key).
    pub auth_provider_namespace: String,
    /// Username at the provider (encrypted).
    #[encrypt]
    pub provider_username: Option<String>,
    /// User id at the provider (encrypted; its hash is part of the primary key and the AAD).
    #[encrypt(hash = hashed_provider_user_id, hash_empty = blank)]
    pub provider_user_id: Option<String>,
    /// Group lookup id at the provider (encrypted).
    #[encrypt]
    pub provider_group_lookup_id: Option<String>,
    /// E-mail (encrypted; `hashed_email`, `''` when empty).
    #[encrypt(hash = hashed_email, hash_empty = blank)]
    pub email: Option<String>,
    /// The Obot user.
    pub user_id: Option<i64>,
    /// Avatar URL (encrypted).
    #[encrypt]
    pub icon_url: Option<String>,
    /// When the avatar was last checked.
    pub icon_last_checked: Option<GoTime>,
    /// When the provider's groups were last checked.
    pub auth_provider_groups_last_checked: Option<GoTime>,
}
