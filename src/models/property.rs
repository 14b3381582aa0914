use encrypted_diesel::Encrypted;

use crate::schema::properties;
use crate::schema::types::GoTime;

/// A server property: table `properties`, resource `properties.obot.obot.ai`, AAD
/// `properties.obot.obot.ai/<key>` (`pkg/gateway/types/property.go`,
/// `pkg/gateway/client/property.go`). The value is encrypted even when empty.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = properties,
    resource = "properties.obot.obot.ai",
    aad = "{resource}/{key}",
    flag = encrypted,
    primary_key(key),
    backends(postgres, sqlite)
)]
pub struct Property {
    /// Creation time.
    pub created_at: Option<GoTime>,
    /// Last update.
    pub updated_at: Option<GoTime>,
    /// The key (primary key).
    pub key: String,
    /// The value (encrypted).
    #[encrypt]
    pub value: Option<String>,
}
