//! Command-line interface: argument parsing and the subcommands.

mod check;
mod credentials;
mod crypt;
mod demo;
mod keygen;
mod kms_plugin;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Environment variable Obot reads the encryption configuration path from.
pub const CONFIG_ENV: &str = "OBOT_SERVER_ENCRYPTION_CONFIG_FILE";

/// Encrypted storage for Obot: keys, values and (later) tables.
#[derive(Debug, Parser)]
#[command(name = "obot-store", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show encryption at work on the embedded default: a generated key, a SQLite database with
    /// realistic records in every Obot table, what is stored beside what is read.
    Demo(demo::Args),
    /// Print or write an EncryptionConfiguration with a fresh random AES-256-GCM key for the
    /// Obot resources, followed by `identity: {}`.
    Keygen(keygen::Args),
    /// Encrypt one value (argument or stdin) and print standard base64 of the stored bytes.
    Encrypt(crypt::EncryptArgs),
    /// Decrypt one base64 value (argument or stdin) and print the plaintext.
    Decrypt(crypt::DecryptArgs),
    /// Serve a key service as a Kubernetes KMS v2 plugin (gRPC on a Unix socket) until SIGTERM
    /// or SIGINT.
    KmsPlugin(kms_plugin::Args),
    /// Write an EncryptionConfiguration with a fresh key if the file is missing, then create or
    /// migrate the database (SQLite `obot-data/obot.db` unless `--database-url`).
    Init(store::InitArgs),
    /// Run the pending migrations.
    Migrate(store::MigrateArgs),
    /// Per table: rows by provider and key, stale, plaintext and undecryptable rows.
    Status(store::StatusArgs),
    /// Re-encrypt every stale or plaintext value with the current write key, in primary-key
    /// batches; safe to interrupt and rerun, and to run from several processes.
    Rewrap(store::RewrapArgs),
    /// Recompute every hash column from the decrypted values and list the rows (by key) whose
    /// hashes do not match; exits 1 when any does.
    Verify(store::VerifyArgs),
    /// Check every configured key: each encrypts a random value and reads it back, each KMS
    /// key service answers status and unwraps its current key; one line per key, and a
    /// failure names the broken providers.
    Check(check::Args),
    /// Move the legacy GPTScript credential store (`gptscript_credentials`, `{"e": ...}` secrets)
    /// into `credentials` as Obot does: SQLite `<db>-credentials.db`, or the PostgreSQL database.
    MigrateCredentials(credentials::Args),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Keygen(_) => "keygen",
            Command::Encrypt(_) => "encrypt",
            Command::Decrypt(_) => "decrypt",
            Command::KmsPlugin(_) => "kms-plugin",
            Command::Init(_) => "init",
            Command::Migrate(_) => "migrate",
            Command::Status(_) => "status",
            Command::Rewrap(_) => "rewrap",
            Command::Verify(_) => "verify",
            Command::Check(_) => "check",
            Command::MigrateCredentials(_) => "migrate-credentials",
        }
    }
}

/// Options shared by commands that use a configuration file.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    /// The EncryptionConfiguration file (YAML or JSON).
    #[arg(long, short = 'c', env = CONFIG_ENV, value_name = "FILE")]
    pub(crate) config: PathBuf,
}

/// A failure to report: its message is printed after `error: `.
pub(crate) type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Reads an EncryptionConfiguration and builds its keyring, with every key service compiled in
/// for `kms` providers (`local://`, `unix://` plugins, and the cloud KMSs of the enabled
/// features), and prints the configuration's warnings to stderr.
pub(crate) fn load_keyring(path: &std::path::Path) -> Result<encrypted_core::Keyring, CliError> {
    let config = encrypted_core::EncryptionConfiguration::from_file(path)?;
    let keyring = encrypted_core::Keyring::builder()
        .kms(encrypted_core::kms::factory(
            encrypted_core::kms::KmsOptions::default(),
        ))
        .build(&config)
        .map_err(|e| {
            format!(
                "cannot load the EncryptionConfiguration {}: {e}",
                path.display()
            )
        })?;
    for warning in keyring.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(keyring)
}

/// Runs the CLI with the process arguments and returns the exit code: 0 on success, 1 on a
/// failure (with `error: ...` on stderr), 2 on a usage error.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.name();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Keygen(args) => keygen::run(&args),
        Command::Encrypt(args) => crypt::encrypt(&args),
        Command::Decrypt(args) => crypt::decrypt(&args),
        Command::KmsPlugin(args) => kms_plugin::run(&args),
        Command::Init(args) => store::init(&args),
        Command::Migrate(args) => store::migrate(&args),
        Command::Status(args) => store::status(&args),
        Command::Rewrap(args) => store::rewrap(&args),
        Command::Verify(args) => store::verify(&args),
        Command::Check(args) => check::run(&args),
        Command::MigrateCredentials(args) => credentials::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&*e) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("{}", scrub(&render(command, &*e)));
            ExitCode::FAILURE
        }
    }
}

/// Passwords of the database URLs this run was given, never to be printed.
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Shorter secrets are not scrubbed from free text (a one-letter password would mangle every
/// message); URLs are always shown through [`crate::db::redact_url`].
const MIN_SCRUBBED: usize = 4;

/// Remembers the passwords of `url` so that no error message shows them, whoever wrote it.
pub(crate) fn hide_url_secrets(url: &str) {
    let mut secrets = SECRETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    secrets.extend(crate::db::url_secrets(url));
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every remembered password replaced by `***`.
fn scrub(text: &str) -> String {
    let secrets = SECRETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SCRUBBED) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// `error: ...` and its causes; SQLite's "database is locked" explained.
fn render(command: &str, e: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if is_sqlite_locked(e) {
        let _ = writeln!(
            out,
            "error: the SQLite database is locked: another process (another `obot-store rewrap`, \
             a migration or the application) holds its write lock and kept it longer than the 10 \
             s `{command}` waits for it"
        );
        let _ = writeln!(
            out,
            "  {}",
            if command == "rewrap" {
                "nothing was lost: each batch is one transaction, so the rows already \
                 re-encrypted stay done and the others are untouched; rerunning is safe: run \
                 `obot-store rewrap` again once the other process has finished"
            } else {
                "run the command again once the other process has finished"
            }
        );
        let _ = writeln!(out, "  caused by: {e}");
    } else {
        let _ = writeln!(out, "error: {e}");
    }
    let mut source = e.source();
    while let Some(s) = source {
        let _ = writeln!(out, "  caused by: {s}");
        source = s.source();
    }
    out
}

/// SQLite's `SQLITE_BUSY` / `SQLITE_LOCKED` anywhere in the chain (diesel reports both as a
/// database error with SQLite's message).
fn is_sqlite_locked(e: &(dyn std::error::Error + 'static)) -> bool {
    const MESSAGES: [&str; 2] = ["database is locked", "database table is locked"];
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = current {
        let locked = match e.downcast_ref::<diesel::result::Error>() {
            Some(diesel::result::Error::DatabaseError(_, info)) => {
                MESSAGES.iter().any(|m| info.message().contains(m))
            }
            _ => MESSAGES.iter().any(|m| e.to_string().contains(m)),
        };
        if locked {
            return true;
        }
        current = e.source();
    }
    false
}

/// Output closed early (`obot-store demo | head`): stop quietly.
fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
