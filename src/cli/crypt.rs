//! `obot-store encrypt` and `obot-store decrypt`: one value, as Obot stores text columns.

use std::io::{Read as _, Write as _};

use super::{CliError, ConfigArgs};

/// Which keys and context a value is encrypted or decrypted with.
#[derive(Debug, clap::Args)]
struct Target {
    #[command(flatten)]
    config: ConfigArgs,
    /// The group-resource, such as users.obot.obot.ai or credentials.
    #[arg(long, short = 'r')]
    resource: String,
    /// The context (additional authenticated data) the value is bound to, such as
    /// users.obot.obot.ai/<hashed username>.
    #[arg(long, default_value = "")]
    aad: String,
}

impl Target {
    /// Loads the configuration (printing its warnings) and returns the resource's keys.
    fn keys(&self) -> Result<std::sync::Arc<encrypted_core::ResourceKeyring>, CliError> {
        let keyring = super::load_keyring(&self.config.config)?;
        Ok(keyring.resource(&self.resource)?)
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct EncryptArgs {
    #[command(flatten)]
    target: Target,
    /// The plaintext; read from standard input, byte for byte, when absent.
    value: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DecryptArgs {
    #[command(flatten)]
    target: Target,
    /// Write the plaintext bytes exactly, without a trailing newline (for binary values).
    #[arg(long)]
    raw: bool,
    /// The standard base64 of the stored value; read from standard input when absent.
    value: Option<String>,
}

fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    Ok(buf)
}

pub(crate) fn encrypt(args: &EncryptArgs) -> Result<(), CliError> {
    let keys = args.target.keys()?;
    let plaintext = match &args.value {
        Some(v) => v.as_bytes().to_vec(),
        None => read_stdin()?,
    };
    let text = keys.encrypt_base64(&plaintext, args.target.aad.as_bytes())?;
    println!("{text}");
    Ok(())
}

pub(crate) fn decrypt(args: &DecryptArgs) -> Result<(), CliError> {
    let chain = args.target.keys()?;
    let text = match &args.value {
        Some(v) => v.clone(),
        None => String::from_utf8(read_stdin()?)
            .map_err(|_| "standard input is not base64 text (it is not even UTF-8)")?,
    };
    let read = chain.decrypt_base64(text.trim(), args.target.aad.as_bytes())?;
    if read.stale {
        eprintln!(
            "note: read with {}, not the current write key ({}): rewrap to rotate",
            read.key,
            chain.write_key()
        );
    }
    let mut out = std::io::stdout().lock();
    if args.raw {
        out.write_all(&read.plaintext)?;
    } else {
        let text = std::str::from_utf8(&read.plaintext)
            .map_err(|_| "the plaintext is not UTF-8 text; pass --raw to write its bytes")?;
        writeln!(out, "{text}")?;
    }
    out.flush()?;
    Ok(())
}
