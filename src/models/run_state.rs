use encrypted_diesel::Encrypted;

use crate::schema::run_states;
use crate::schema::types::GoTime;

/// A run's state: the historic table `run_states` (removed from Obot in 9e9aa06e7, dropped by its
/// migration `drop_run_thread_run_states_tables`; kept in the layout Obot's GORM gave it,
/// `pkg/gateway/types/runstate.go` at 9e9aa06e7^). Resource `runstates.obot.obot.ai`, AAD
/// `runstates.obot.obot.ai/<namespace>/<name>`. Raw transformer output in binary columns, no
/// `encrypted` flag: legacy plaintext reads through the configuration's `identity` provider, and
/// without a configured key for the resource reads fail closed.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = run_states,
    resource = "runstates.obot.obot.ai",
    aad = "{resource}/{namespace}/{name}",
    primary_key(name, namespace),
    backends(postgres, sqlite)
)]
pub struct RunState {
    /// Run name (primary key).
    pub name: String,
    /// Namespace (primary key).
    pub namespace: String,
    /// Creation time.
    pub created_at: Option<GoTime>,
    /// Last update.
    pub updated_at: Option<GoTime>,
    /// The thread.
    pub thread_name: Option<String>,
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
    pub done: Option<bool>,
    /// Error message.
    pub error: Option<String>,
}
