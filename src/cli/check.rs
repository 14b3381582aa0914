//! `obot-store check`: every configured key encrypts and decrypts, every key service answers.

use std::io::Write as _;
use std::path::PathBuf;

use super::store::DEFAULT_CONFIG;
use super::{CONFIG_ENV, CliError};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The EncryptionConfiguration file (YAML or JSON).
    #[arg(long, short = 'c', env = CONFIG_ENV, default_value = DEFAULT_CONFIG, value_name = "FILE")]
    config: PathBuf,
}

/// Prints one line per key of every resource entry (`ok`, `FAILED: <why>`, or `not testable`
/// for identity) and fails naming the broken providers.
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let keyring = super::load_keyring(&args.config)?;
    let report = keyring.check();
    let mut out = std::io::stdout().lock();
    write!(out, "{report}")?;
    out.flush()?;
    let mut broken: Vec<String> = Vec::new();
    for failure in report.failures() {
        let name = failure.key.to_string();
        if !broken.contains(&name) {
            broken.push(name);
        }
    }
    if broken.is_empty() {
        writeln!(out, "every key works")?;
        return Ok(());
    }
    Err(format!(
        "health check failed for {} (see the FAILED lines above)",
        broken.join(", ")
    )
    .into())
}
