use encrypted_diesel::Encrypted;

use crate::schema::message_policy_violations;
use crate::schema::types::GoTime;

/// A message blocked by a policy: table `message_policy_violations`, resource
/// `policyviolations.obot.obot.ai`, AAD `policyviolations.obot.obot.ai/<policy id>/<user id>`
/// (`pkg/gateway/types/messagepolicyviolation.go`, `pkg/gateway/client/messagepolicyviolation.go`).
/// Only the blocked content is encrypted (ASCII base64 in a binary column; empty content is not
/// encrypted).
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = message_policy_violations,
    resource = "policyviolations.obot.obot.ai",
    aad = "{resource}/{policy_id}/{user_id}",
    flag = encrypted,
    backends(postgres, sqlite)
)]
pub struct MessagePolicyViolation {
    /// Primary key.
    pub id: i64,
    /// When.
    pub created_at: Option<GoTime>,
    /// The user.
    pub user_id: Option<String>,
    /// The policy.
    pub policy_id: Option<String>,
    /// Its name.
    pub policy_name: Option<String>,
    /// Its definition.
    pub policy_definition: Option<String>,
    /// `input` or `output`.
    pub direction: Option<String>,
    /// Why the content was blocked.
    pub violation_explanation: Option<String>,
    /// The blocked content (encrypted; raw JSON bytes).
    #[encrypt(base64, skip_empty)]
    pub blocked_content: Option<Vec<u8>>,
    /// The project.
    pub project_id: Option<String>,
    /// The thread.
    pub thread_id: Option<String>,
}
