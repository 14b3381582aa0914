use std::collections::BTreeMap;

use encrypted_diesel::Encrypted;

use crate::schema::credentials;
use crate::schema::types::GoTime;

/// A tool credential: table `credentials`, resource `credentials.obot.obot.ai`, AAD
/// `<name>///<context>` (no resource prefix) (`pkg/gateway/types/credentials.go`,
/// `pkg/gateway/client/credential.go` `encryptCredential`).
///
/// The whole secret map is encrypted as one JSON value and the `secrets` column holds
/// `{"_obot_encrypted_env":"<base64>"}`; a row written without a key for the resource
/// (`encrypted` false) holds the map's JSON itself. Go marshals the map with sorted keys and
/// `<`, `>`, `&` escaped; serde writes the same keys in the same order unescaped, which Go's
/// `json.Unmarshal` reads the same. The old GPTScript store (`gptscript_credentials`,
/// resource `credentials`) is read by [`crate::legacy_credentials`].
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = credentials,
    resource = "credentials.obot.obot.ai",
    aad = "{name}///{context}",
    flag = encrypted,
    backends(postgres, sqlite)
)]
pub struct Credential {
    /// Primary key.
    pub id: i64,
    /// Creation time.
    pub created_at: Option<GoTime>,
    /// Context (unique with `name`).
    pub context: String,
    /// Name.
    pub name: String,
    /// The secrets (encrypted JSON object in Obot's wrapper; NULL when Go's map was nil).
    #[encrypt(json, wrap = "_obot_encrypted_env")]
    pub secrets: Option<BTreeMap<String, String>>,
}
