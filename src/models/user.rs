use chrono::NaiveDateTime;
use encrypted_diesel::Encrypted;

use crate::schema::users;

/// An Obot user (`users`, resource `users.obot.obot.ai`, AAD
/// `users.obot.obot.ai/<hashed_username>`).
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = users,
    resource = "users.obot.obot.ai",
    aad = "{resource}/{hashed_username}",
    flag = encrypted
)]
pub struct User {
    /// Primary key.
    pub id: i64,
    /// Creation time.
    pub created_at: NaiveDateTime,
    /// Display name (encrypted).
    #[encrypt]
    pub display_name: String,
    /// Username (encrypted; `hashed_username` for lookups, part of the AAD).
    #[encrypt(hash = hashed_username)]
    pub username: String,
    /// Email (encrypted; `hashed_email` for lookups, case-sensitive as in Obot).
    #[encrypt(hash = hashed_email)]
    pub email: String,
    /// Whether the provider verified the email.
    pub verified_email: Option<bool>,
    /// Role bitmask.
    pub role: i64,
    /// Avatar URL (encrypted).
    #[encrypt]
    pub icon_url: String,
    /// IANA time zone.
    pub timezone: String,
    /// Internal (system) user.
    pub internal: bool,
    /// Soft-delete time.
    pub deleted_at: Option<NaiveDateTime>,
    /// Email before soft deletion (encrypted).
    #[encrypt]
    pub original_email: String,
    /// Username before soft deletion (encrypted).
    #[encrypt]
    pub original_username: String,
}
