//! Obot's data layer with encrypted fields: resource models, migrations and the operator CLI.
//!
//! [`models`] holds one Diesel model per Obot resource, [`schema`] the tables as
//! `diesel print-schema` prints them, [`db`] connections and the embedded migrations, and
//! [`rotation`] the list of models `status`, `rewrap` and `verify` walk (the engine is
//! `encrypted_diesel::rotate`). The CLI (`obot-store`) runs them for operators. See the
//! repository README for the commands. [`legacy_credentials`] reads Obot's old GPTScript
//! credential store and moves it into `credentials` as Obot does.

#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod cli;
pub mod db;
pub mod legacy_credentials;
pub mod models;
pub mod resources;
pub mod rotation;
pub mod sample;
pub mod schema;
