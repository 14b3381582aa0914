use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use encrypted_diesel::Encrypted;

use crate::schema::credentials;

/// A tool credential (`credentials`, resource `credentials`, AAD `<name>///<context>` with no
/// resource prefix, as Obot). The whole secret map is encrypted as one JSON value. (Obot wraps
/// the base64 in `{"_obot_encrypted_env": ...}`; this column holds the base64 itself.)
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = credentials,
    resource = "credentials",
    aad = "{name}///{context}",
    flag = encrypted
)]
pub struct Credential {
    /// Primary key.
    pub id: i64,
    /// Creation time.
    pub created_at: NaiveDateTime,
    /// Context (unique with `name`).
    pub context: String,
    /// Name.
    pub name: String,
    /// The secrets (encrypted JSON object).
    #[encrypt(json)]
    pub secrets: BTreeMap<String, String>,
}
