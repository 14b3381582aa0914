use chrono::NaiveDateTime;
use encrypted_diesel::Encrypted;

use crate::schema::identities;

/// A user's identity at an auth provider (`identities`, resource `identities.obot.obot.ai`, AAD
/// `identities.obot.obot.ai/<namespace>/<provider name>/<hashed provider user id>`).
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = identities,
    resource = "identities.obot.obot.ai",
    aad = "{resource}/{auth_provider_namespace}/{auth_provider_name}/{hashed_provider_user_id}",
    flag = encrypted,
    primary_key(auth_provider_name, auth_provider_namespace, hashed_provider_user_id)
)]
pub struct Identity {
    /// Auth provider name (primary key).
    pub auth_provider_name: String,
    /// Auth provider namespace (primary key).
    pub auth_provider_namespace: String,
    /// Username at the provider (encrypted).
    #[encrypt]
    pub provider_username: String,
    /// User id at the provider (encrypted; its hash is part of the primary key and the AAD).
    #[encrypt(hash = hashed_provider_user_id)]
    pub provider_user_id: String,
    /// Group lookup id at the provider (encrypted).
    #[encrypt]
    pub provider_group_lookup_id: String,
    /// Email (encrypted; `hashed_email` for lookups).
    #[encrypt(hash = hashed_email)]
    pub email: String,
    /// The Obot user.
    pub user_id: i64,
    /// Avatar URL (encrypted).
    #[encrypt]
    pub icon_url: String,
    /// When the avatar was last checked.
    pub icon_last_checked: Option<NaiveDateTime>,
}
