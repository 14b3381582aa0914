//! The `obot-store` operator CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    obot_store::cli::main()
}
