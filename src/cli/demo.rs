//! `obot-store demo`: the main job on an embedded default.
//!
//! Uses (or creates, with a fresh key) `<data-dir>/encryption.yaml`, encrypts a realistic value
//! for every Obot resource with Obot's context conventions, shows what is stored beside what the
//! application reads back, and shows that a value moved to another row is refused.

use std::path::PathBuf;

use encrypted_core::config::OBOT_RESOURCES;
use encrypted_core::{Keyring, ProviderKind};

use super::CliError;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory for the generated configuration (created if missing).
    #[arg(long, default_value = "obot-data", value_name = "DIR")]
    data_dir: PathBuf,
}

/// (resource, field, context, plaintext): one sample value per Obot resource.
const SAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "users.obot.obot.ai",
        "email",
        "users.obot.obot.ai/2c26b46b68ffc68ff99b453c1d304134",
        "alice@example.com",
    ),
    (
        "identities.obot.obot.ai",
        "providerUserID",
        "identities.obot.obot.ai/default/github-auth-provider/9f86d081884c7d65",
        "1048576",
    ),
    (
        "mcpoauthtokens.obot.obot.ai",
        "accessToken",
        "mcpoauthtokens.obot.obot.ai/ms1github",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
    ),
    (
        "mcpauditlogs.obot.obot.ai",
        "requestBody",
        "mcpauditlogs.obot.obot.ai/ms1github/42",
        r#"{"method":"tools/call","params":{"name":"search"}}"#,
    ),
    (
        "sessioncookies.obot.obot.ai",
        "cookie",
        "sessioncookies.obot.obot.ai/sess-1",
        "MTcwMDAwMDAwMHxEdi1CQkFFQ180SUFBUkFCRUFBQV9",
    ),
    (
        "runstates.obot.obot.ai",
        "output",
        "runstates.obot.obot.ai/default/r1",
        "The weather in Paris is 18°C.",
    ),
    (
        "credentials",
        "secret",
        "github-token///default",
        r#"{"token":"ghp_xxxxxxxxxxxxxxxxxxxx"}"#,
    ),
];

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    let path = args.data_dir.join("encryption.yaml");
    if path.exists() {
        writeln!(
            out,
            "Using the EncryptionConfiguration in {}",
            path.display()
        )?;
    } else {
        let text = encrypted_core::config::generate_aesgcm(OBOT_RESOURCES, "demo-key")?;
        super::keygen::write_private(&path, text.as_bytes(), false)?;
        writeln!(
            out,
            "Generated {} with a fresh AES-256-GCM key \"demo-key\" (then identity)",
            path.display()
        )?;
    }
    let keyring = Keyring::from_file(&path)?;
    for warning in keyring.warnings() {
        writeln!(out, "warning: {warning}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<28} {:<15} {:<30} {:<22} stored (base64, as Obot writes text columns)",
        "resource", "field", "application reads", "key"
    )?;
    for (resource, field, context, plaintext) in SAMPLES {
        let chain = keyring.resource(resource)?;
        let stored = chain.encrypt_base64(plaintext.as_bytes(), context.as_bytes())?;
        let read = chain.decrypt_base64(&stored, context.as_bytes())?;
        if read.plaintext != plaintext.as_bytes() {
            return Err(format!(
                "{resource}.{field}: the value read back differs from the value written"
            )
            .into());
        }
        let raw = encrypted_core::decode_base64(&stored)?;
        if chain.write_key().provider != ProviderKind::Identity
            && raw
                .windows(plaintext.len().max(1))
                .any(|w| w == plaintext.as_bytes())
        {
            return Err(format!("{resource}.{field}: plaintext found in the stored bytes").into());
        }
        let shown: String = stored.chars().take(44).collect();
        writeln!(
            out,
            "{resource:<28} {field:<15} {:<30} {:<22} {shown}… ({} bytes)",
            truncate(plaintext, 30),
            read.key.to_string(),
            raw.len()
        )?;
    }
    writeln!(out)?;
    let (resource, _, context, plaintext) = SAMPLES[0];
    let chain = keyring.resource(resource)?;
    let stored = chain.encrypt(plaintext.as_bytes(), context.as_bytes())?;
    let prefix_end = stored
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b':')
        .nth(4)
        .map_or(0, |(i, _)| i + 1);
    writeln!(
        out,
        "Stored bytes start with the prefix {:?}; the rest is nonce ‖ ciphertext ‖ tag.",
        String::from_utf8_lossy(&stored[..prefix_end])
    )?;
    match chain.decrypt(&stored, b"users.obot.obot.ai/another-user") {
        Err(e) => writeln!(
            out,
            "Copied to another user's row, the value is refused: {e}"
        )?,
        Ok(_) => {
            return Err("a value moved to another row decrypted: the context is not bound".into());
        }
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}
