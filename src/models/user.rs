use encrypted_diesel::Encrypted;

use crate::schema::types::GoTime;
use crate::schema::users;

/// An Obot user: table `users`, resource `users.obot.obot.ai`, AAD
/// `users.obot.obot.ai/<hashed_username>` (obot-platform/obot `pkg/gateway/types/users.go`,
/// `pkg/gateway/client/user.go` `encryptUser`).
///
/// Every encrypted field is encrypted even when empty, as Obot does. `hashed_username` is the
/// SHA-256 of the username; `hashed_email` that of the e-mail, or `''` for an empty e-mail (Obot's
/// owner and admin counts filter on `hashed_email != ''`). Columns are nullable as GORM creates
/// them: `original_email` and `original_username` are NULL on rows from before Obot added them.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = users,
    resource = "users.obot.obot.ai",
    aad = "{resource}/{hashed_username}",
    flag = encrypted,
    backends(postgres, sqlite)
)]
pub struct User {
    /// Primary key (`bigserial` / SQLite autoincrement).
    pub id: i64,
    /// Creation time.
    pub created_at: Option<GoTime>,
    /// Display name (encrypted).
    #[encrypt]
    pub display_name: Option<String>,
    /// Username (encrypted; `hashed_username` for lookups and the AAD).
    #[encrypt(hash = hashed_username)]
    pub username: Option<String>,
    /// E-mail (encrypted; `hashed_email`, case-sensitive as in Obot, `''` when empty).
    #[encrypt(hash = hashed_email, hash_empty = blank)]
    pub email: Option<String>,
    /// Whether the provider verified the e-mail.
    pub verified_email: Option<bool>,
    /// Role bitmask.
    pub role: Option<i64>,
    /// Avatar URL (encrypted).
    #[encrypt]
    pub icon_url: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Last day the user was active (Go's zero time when never set).
    pub last_active_day: Option<GoTime>,
    /// Internal (system) user.
    pub internal: Option<bool>,
    /// Daily input token limit.
    pub daily_input_tokens_limit: Option<i64>,
    /// Daily output token limit.
    pub daily_output_tokens_limit: Option<i64>,
    /// Soft-delete time.
    pub deleted_at: Option<GoTime>,
    /// E-mail before soft deletion (encrypted).
    #[encrypt]
    pub original_email: Option<String>,
    /// Username before soft deletion (encrypted).
    #[encrypt]
    pub original_username: Option<String>,
}
