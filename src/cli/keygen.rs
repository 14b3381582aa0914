//! `obot-store keygen`.

use std::io::Write as _;
use std::path::PathBuf;

use encrypted_core::config::generate_aesgcm;

use crate::resources;

use super::CliError;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write the configuration to this file (mode 0600) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace the output file if it exists (its old key is lost: rewrap data first).
    #[arg(long)]
    force: bool,
    /// Name of the new key (part of every stored value's prefix); Obot's chart names its key
    /// key0.
    #[arg(long, default_value = resources::DEFAULT_KEY_NAME, value_name = "NAME")]
    key_name: String,
    /// Resources to encrypt (repeatable). Default: the nine Obot's chart lists, then
    /// `credentials`, `sessioncookies.obot.obot.ai` and `runstates.obot.obot.ai`.
    #[arg(long = "resource", short = 'r', value_name = "RESOURCE")]
    resources: Vec<String>,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let key_name = &args.key_name;
    let resources: Vec<&str> = if args.resources.is_empty() {
        resources::ALL.to_vec()
    } else {
        args.resources.iter().map(String::as_str).collect()
    };
    let text = generate_aesgcm(&resources, key_name)?;
    match &args.output {
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
        }
        Some(path) => {
            write_private(path, text.as_bytes(), args.force)?;
            eprintln!(
                "wrote {} with aesgcm key {key_name:?} for {} resource(s); keep it secret and backed up",
                path.display(),
                resources.len()
            );
        }
    }
    Ok(())
}

/// Writes `bytes` to a new file readable by its owner only.
pub(crate) fn write_private(
    path: &std::path::Path,
    bytes: &[u8],
    force: bool,
) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| -> CliError {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "{} already exists; pass --force to replace it (its key will be lost)",
                path.display()
            )
            .into()
        } else {
            format!("cannot write {}: {e}", path.display()).into()
        }
    })?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
