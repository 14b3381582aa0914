//! `init`, `migrate`, `status` and `rewrap`: the database commands.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use encrypted_core::config::{OBOT_RESOURCES, generate_aesgcm};
use encrypted_diesel::Keys;

use super::{CONFIG_ENV, CliError};
use crate::db::{Db, redact_url};
use crate::tables::{self, RewrapOptions};

/// Default SQLite database.
pub(crate) const DEFAULT_DATABASE: &str = "obot-data/obot.db";
/// Default configuration file.
pub(crate) const DEFAULT_CONFIG: &str = "obot-data/encryption.yaml";

/// The database and the configuration.
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArgs {
    /// The database: a SQLite file, or a `postgres://` URL.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE, value_name = "URL")]
    pub(crate) database_url: String,
    /// The EncryptionConfiguration file (YAML or JSON).
    #[arg(long, short = 'c', env = CONFIG_ENV, default_value = DEFAULT_CONFIG, value_name = "FILE")]
    pub(crate) config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Name of the key generated when the configuration file is missing.
    #[arg(long, default_value = "key1", value_name = "NAME")]
    key_name: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// The database: a SQLite file, or a `postgres://` URL.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE, value_name = "URL")]
    database_url: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print JSON (an array of per-table objects) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RewrapArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Rows per batch (one transaction each).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..))]
    batch_size: i64,
    /// Count what would be re-encrypted; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Connections working at once on PostgreSQL (each takes the next batch while the others
    /// decrypt, re-encrypt and write theirs); SQLite always uses one.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Writes a fresh configuration when `path` is missing; true when it did.
pub(crate) fn ensure_config(path: &Path, key_name: &str) -> Result<bool, CliError> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = generate_aesgcm(OBOT_RESOURCES, key_name)?;
    super::keygen::write_private(path, text.as_bytes(), false)?;
    Ok(true)
}

/// Loads the configuration and installs it for the models.
pub(crate) fn install_keys(path: &Path) -> Result<(), CliError> {
    let keyring = super::load_keyring(path)?;
    encrypted_diesel::install(Keys::new(keyring))?;
    Ok(())
}

/// Connects for `init` and `migrate`: a SQLite file is created if missing.
fn connect(url: &str) -> Result<Db, CliError> {
    super::hide_url_secrets(url);
    Db::connect(url).map_err(|e| open_error(url, e))
}

/// A connection failure, with the URL (redacted) unless the error names it already.
fn open_error(url: &str, e: crate::db::DbError) -> CliError {
    if e.is::<crate::db::OpenError>() {
        e
    } else {
        format!("cannot open the database {}: {e}", redact_url(url)).into()
    }
}

/// Connects to a database that must exist and be migrated (`status`, `rewrap`, `demo
/// --database-url`): nothing is created.
pub(crate) fn open_existing(url: &str) -> Result<Db, CliError> {
    super::hide_url_secrets(url);
    Db::open_existing(url).map_err(|e| open_error(url, e))
}

pub(crate) fn init(args: &InitArgs) -> Result<(), CliError> {
    // An unusable URL is refused before anything (the configuration) is written.
    super::hide_url_secrets(&args.store.database_url);
    crate::db::check_url(&args.store.database_url)?;
    if ensure_config(&args.store.config, &args.key_name)? {
        eprintln!(
            "wrote {} with a fresh AES-256-GCM key {:?} (then identity); keep it secret and backed up",
            args.store.config.display(),
            args.key_name
        );
    } else {
        eprintln!("using the existing {}", args.store.config.display());
    }
    super::load_keyring(&args.store.config)?;
    let mut db = connect(&args.store.database_url)?;
    report_migrations(&db.migrate()?, &args.store.database_url);
    Ok(())
}

fn report_migrations(done: &[String], url: &str) {
    let url = redact_url(url);
    if done.is_empty() {
        eprintln!("{url}: schema up to date");
    }
    for m in done {
        eprintln!("{url}: applied migration {m}");
    }
}

pub(crate) fn migrate(args: &MigrateArgs) -> Result<(), CliError> {
    let mut db = connect(&args.database_url)?;
    report_migrations(&db.migrate()?, &args.database_url);
    Ok(())
}

pub(crate) fn status(args: &StatusArgs) -> Result<(), CliError> {
    let mut db = open_existing(&args.store.database_url)?;
    install_keys(&args.store.config)?;
    let report = tables::status(&mut db)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<18} {:>8} {:>8} {:>8} {:>9} {:>13}  {:<24} rows by key",
        "table", "rows", "current", "stale", "plaintext", "undecryptable", "write key"
    )?;
    for t in &report {
        let by_key: Vec<String> = t.by_key.iter().map(|(k, n)| format!("{k}={n}")).collect();
        writeln!(
            out,
            "{:<18} {:>8} {:>8} {:>8} {:>9} {:>13}  {:<24} {}",
            t.table,
            t.rows,
            t.current,
            t.stale,
            t.plaintext,
            t.undecryptable,
            t.write_key,
            by_key.join(" ")
        )?;
    }
    let todo: u64 = report.iter().map(|t| t.stale + t.plaintext).sum();
    let bad: u64 = report.iter().map(|t| t.undecryptable).sum();
    if todo > 0 {
        writeln!(
            out,
            "\n{todo} row(s) to re-encrypt: run `obot-store rewrap`"
        )?;
    }
    if bad > 0 {
        writeln!(
            out,
            "{bad} row(s) no configured key reads: restore the missing key, or inspect them"
        )?;
    }
    Ok(())
}

pub(crate) fn rewrap(args: &RewrapArgs) -> Result<(), CliError> {
    let mut db = open_existing(&args.store.database_url)?;
    install_keys(&args.store.config)?;
    let total = u64::try_from(tables::total_rows(&mut db)?).unwrap_or(0);
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} rewrap [{bar:40}] {pos}/{len} rows {per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let started = std::time::Instant::now();
    let opts = RewrapOptions {
        batch: args.batch_size,
        dry_run: args.dry_run,
        jobs: usize::from(args.jobs),
    };
    drop(db);
    let summary = tables::rewrap_url(&args.store.database_url, opts, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
        return Ok(());
    }
    let verb = if args.dry_run {
        "would re-encrypt"
    } else {
        "re-encrypted"
    };
    writeln!(
        out,
        "{:<18} {:>8} {:>16} {:>9} {:>13}",
        "table", "scanned", verb, "conflicts", "undecryptable"
    )?;
    for s in &summary {
        writeln!(
            out,
            "{:<18} {:>8} {:>16} {:>9} {:>13}",
            s.table, s.scanned, s.rewrapped, s.conflicts, s.undecryptable
        )?;
    }
    let scanned: u64 = summary.iter().map(|s| s.scanned).sum();
    let done: u64 = summary.iter().map(|s| s.rewrapped).sum();
    #[allow(clippy::cast_precision_loss, reason = "a rate for humans")]
    let rate = scanned as f64 / secs.max(1e-9);
    writeln!(
        out,
        "\n{scanned} rows scanned, {done} {verb} in {secs:.2} s ({rate:.0} rows/s){}",
        if args.dry_run { " (dry run)" } else { "" }
    )?;
    let bad: u64 = summary.iter().map(|s| s.undecryptable).sum();
    if bad > 0 {
        writeln!(out, "{bad} row(s) left alone: no configured key reads them")?;
    }
    Ok(())
}
