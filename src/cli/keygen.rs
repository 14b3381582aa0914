//! `obot-store keygen`.

use std::io::Write as _;
use std::path::PathBuf;

use encrypted_core::config::{OBOT_RESOURCES, generate_aesgcm};

use super::CliError;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write the configuration to this file (mode 0600) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace the output file if it exists (its old key is lost: rewrap data first).
    #[arg(long)]
    force: bool,
    /// Name of the new key (part of every stored value's prefix). Default: key-YYYYMMDD.
    #[arg(long, value_name = "NAME")]
    key_name: Option<String>,
    /// Resources to encrypt (repeatable). Default: the Obot resources.
    #[arg(long = "resource", short = 'r', value_name = "RESOURCE")]
    resources: Vec<String>,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let key_name = args.key_name.clone().unwrap_or_else(default_key_name);
    let resources: Vec<&str> = if args.resources.is_empty() {
        OBOT_RESOURCES.to_vec()
    } else {
        args.resources.iter().map(String::as_str).collect()
    };
    let text = generate_aesgcm(&resources, &key_name)?;
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

/// `key-YYYYMMDD` for today (UTC).
fn default_key_name() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    format!("key-{y:04}{m:02}{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
    }
}
