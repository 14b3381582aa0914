//! `init`, `migrate`, `status` and `rewrap`: the database commands.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use encrypted_core::config::generate_aesgcm;
use encrypted_diesel::Keys;

use super::{CONFIG_ENV, CliError};
use encrypted_diesel::rotate::{Options, Progress, Rate, Unreadable};

use crate::db::{Db, redact_url};
use crate::resources;
use crate::rotation;

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
    #[arg(long, default_value = resources::DEFAULT_KEY_NAME, value_name = "NAME")]
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
pub(crate) struct VerifyArgs {
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
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// At most this many rows per second (averaged), so a production database is not
    /// saturated.
    #[arg(long, value_name = "ROWS", conflicts_with = "pause_ms")]
    rate: Option<u32>,
    /// A pause after every batch, in milliseconds.
    #[arg(long, value_name = "MS")]
    pause_ms: Option<u64>,
    /// Stop at the first row no configured key reads (nothing of its batch is written),
    /// naming its key; by default such rows are counted and left alone.
    #[arg(long)]
    stop_on_unreadable: bool,
    /// Also rewrite hash columns that do not match their value (`verify` lists them).
    #[arg(long)]
    repair_hashes: bool,
    /// Count what would be re-encrypted; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Connections working at once on PostgreSQL (each takes the next batch while the others
    /// decrypt, re-encrypt and write theirs); SQLite always uses one.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Print progress and the summary as JSON lines (`{"progress": ...}` after every batch,
    /// then `{"summary": [...]}`) instead of a progress bar and a table.
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
    let text = generate_aesgcm(resources::ALL, key_name)?;
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
    let report = rotation::status(&mut db)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<34} {:>7} {:>7} {:>6} {:>9} {:>13} {:>14} {:>7}  {:<20} rows by key",
        "table",
        "rows",
        "current",
        "stale",
        "plaintext",
        "undecryptable",
        "not configured",
        "drifted",
        "write key"
    )?;
    for t in &report {
        let by_key: Vec<String> = t.by_key.iter().map(|(k, n)| format!("{k}={n}")).collect();
        writeln!(
            out,
            "{:<34} {:>7} {:>7} {:>6} {:>9} {:>13} {:>14} {:>7}  {:<20} {}",
            t.table,
            t.rows,
            t.current,
            t.stale,
            t.plaintext,
            t.undecryptable,
            t.not_configured,
            t.drifted,
            t.write_key,
            by_key.join(" ")
        )?;
    }
    let todo: u64 = report.iter().map(|t| t.stale + t.plaintext).sum();
    let bad: u64 = report.iter().map(|t| t.undecryptable).sum();
    let unconfigured: u64 = report.iter().map(|t| t.not_configured).sum();
    let drifted: u64 = report.iter().map(|t| t.drifted).sum();
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
    if unconfigured > 0 {
        writeln!(
            out,
            "{unconfigured} row(s) stored in plaintext because their resource is not in the \
             configuration: add it, then run `obot-store rewrap`"
        )?;
    }
    if drifted > 0 {
        writeln!(
            out,
            "{drifted} row(s) whose hash columns do not match their values: `obot-store verify` \
             lists them, `obot-store rewrap --repair-hashes` rewrites them"
        )?;
    }
    Ok(())
}

pub(crate) fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    let mut db = open_existing(&args.store.database_url)?;
    install_keys(&args.store.config)?;
    let report = rotation::verify(&mut db, &Options::default().batch_size(2000))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:<34} {:>8} {:>8} {:>12} {:>12} {:>8}",
            "table", "rows", "ok", "unverifiable", "stale lookup", "drifted"
        )?;
        for t in &report {
            writeln!(
                out,
                "{:<34} {:>8} {:>8} {:>12} {:>12} {:>8}",
                t.table,
                t.rows,
                t.ok,
                t.unverifiable,
                t.stale_lookup,
                t.drifted.len()
            )?;
        }
        for t in &report {
            for d in &t.drifted {
                writeln!(
                    out,
                    "drift: {} key {} in {}",
                    t.table,
                    d.key,
                    d.columns.join(", ")
                )?;
            }
        }
    }
    if report.iter().any(|t| !t.drifted.is_empty()) {
        return Err("hash columns do not match their values (listed above)".into());
    }
    Ok(())
}

pub(crate) fn rewrap(args: &RewrapArgs) -> Result<(), CliError> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let mut db = open_existing(&args.store.database_url)?;
    install_keys(&args.store.config)?;
    let total = rotation::total_rows(&mut db)?;
    let bar = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} rewrap {msg} [{bar:40}] {pos}/{len} rows {per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    // Rows of the tables already done, so the bar counts across tables.
    let before = Arc::new(AtomicU64::new(0));
    let json = args.json;
    let progress = {
        let (bar, before) = (bar.clone(), Arc::clone(&before));
        move |p: &Progress| {
            if json {
                let line = serde_json::json!({ "progress": p });
                println!("{line}");
            } else {
                bar.set_message(p.table);
                bar.set_position(before.load(Ordering::Relaxed) + p.scanned);
            }
        }
    };
    let mut opts = Options::default()
        .batch_size(usize::try_from(args.batch_size).unwrap_or(500))
        .dry_run(args.dry_run)
        .jobs(usize::from(args.jobs))
        .repair_hashes(args.repair_hashes)
        .on_unreadable(if args.stop_on_unreadable {
            Unreadable::Stop
        } else {
            Unreadable::Continue
        })
        .progress(progress);
    if let Some(rate) = args.rate {
        opts = opts.rate(Rate::RowsPerSecond(f64::from(rate.max(1))));
    }
    if let Some(ms) = args.pause_ms {
        opts = opts.rate(Rate::Pause(std::time::Duration::from_millis(ms)));
    }
    let started = std::time::Instant::now();
    let summary = rotation::rewrap_each(&mut db, &args.store.database_url, &opts, &|s| {
        before.fetch_add(s.scanned, Ordering::Relaxed);
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &serde_json::json!({ "summary": summary }))?;
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
        "{:<34} {:>8} {:>16} {:>9} {:>13} {:>14}",
        "table", "scanned", verb, "conflicts", "undecryptable", "not configured"
    )?;
    for s in &summary {
        writeln!(
            out,
            "{:<34} {:>8} {:>16} {:>9} {:>13} {:>14}",
            s.table, s.scanned, s.rewrapped, s.conflicts, s.undecryptable, s.not_configured
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
    let unconfigured: u64 = summary.iter().map(|s| s.not_configured).sum();
    if unconfigured > 0 {
        writeln!(
            out,
            "{unconfigured} row(s) left in plaintext: their resource is not in the configuration"
        )?;
    }
    Ok(())
}
