use encrypted_diesel::Encrypted;

use crate::schema::local_auth_users;
use crate::schema::types::GoTime;

/// A local (password) login: table `local_auth_users`, encrypted with the users' keys
/// (resource `users.obot.obot.ai`), AAD `users.obot.obot.ai/<hashed_email>`
/// (`pkg/gateway/types/localauth.go`, `pkg/gateway/client/localauth.go`).
///
/// Obot stores the e-mail lower-cased and trimmed (`NormalizeEmail`) and hashes that; the hash
/// here is of the lower-cased, trimmed value too, so a lookup finds the user whatever the case.
/// The password hash is not encrypted (it is already a one-way hash).
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = local_auth_users,
    resource = "users.obot.obot.ai",
    aad = "{resource}/{hashed_email}",
    flag = encrypted,
    backends(postgres, sqlite)
)]
pub struct LocalAuthUser {
    /// Primary key.
    pub id: i64,
    /// Creation time.
    pub created_at: Option<GoTime>,
    /// Last update.
    pub updated_at: Option<GoTime>,
    /// E-mail, as Obot stores it: lower-cased and trimmed (encrypted; `hashed_email`, unique).
    #[encrypt(hash = hashed_email, normalize = lowercase_trim)]
    pub email: Option<String>,
    /// The password's hash (bcrypt; not encrypted).
    pub password_hash: Option<String>,
}
