use chrono::NaiveDateTime;
use encrypted_diesel::Encrypted;

use crate::schema::run_states;

/// A run's state (`run_states`, historic in Obot; resource `runstates.obot.obot.ai`, AAD
/// `runstates.obot.obot.ai/<namespace>/<name>`). Raw transformer output in binary columns, no
/// `encrypted` flag: legacy plaintext reads through the configuration's `identity` provider.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = run_states,
    resource = "runstates.obot.obot.ai",
    aad = "{resource}/{namespace}/{name}",
    primary_key(name, namespace)
)]
pub struct RunState {
    /// Run name (primary key).
    pub name: String,
    /// Namespace (primary key).
    pub namespace: String,
    /// Creation time.
    pub created_at: NaiveDateTime,
    /// Last update.
    pub updated_at: NaiveDateTime,
    /// The thread.
    pub thread_name: String,
    /// The program (not encrypted).
    pub program: Option<Vec<u8>>,
    /// Chat state (encrypted).
    #[encrypt]
    pub chat_state: Option<Vec<u8>>,
    /// Call frame (encrypted).
    #[encrypt]
    pub call_frame: Option<Vec<u8>>,
    /// Output (encrypted).
    #[encrypt]
    pub output: Option<Vec<u8>>,
    /// Finished.
    pub done: bool,
    /// Error message.
    pub error: String,
}
