//! `obot-store migrate-credentials`: move the legacy GPTScript credential store into
//! `credentials`, as Obot does once at startup (see [`crate::legacy_credentials`]).

use std::io::Write as _;
use std::path::PathBuf;

use super::CliError;
use super::store::StoreArgs;
use crate::db::{Db, is_postgres};
use crate::legacy_credentials::{self, MigrateOptions};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The legacy store's SQLite file, instead of Obot's `<db>-credentials.db` beside a SQLite
    /// database (on PostgreSQL the legacy table is in the database itself).
    #[arg(long, value_name = "FILE")]
    legacy_database: Option<PathBuf>,
    /// Count what would be migrated; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep the legacy table after migrating (Obot drops it).
    #[arg(long)]
    keep_legacy: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let keyring = super::load_keyring(&args.store.config)?;
    let url = &args.store.database_url;
    let mut db = Db::connect(url).map_err(|e| format!("cannot open the database {url}: {e}"))?;
    let legacy_path = if is_postgres(url) {
        args.legacy_database.clone()
    } else {
        let main = PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url));
        match &args.legacy_database {
            Some(p) => Some(p.clone()),
            None => Some(legacy_credentials::sqlite_legacy_path(&main).ok_or_else(|| {
                format!(
                    "{}: the legacy store is found beside a database whose name ends in .db; pass --legacy-database",
                    main.display()
                )
            })?),
        }
    };
    let opts = MigrateOptions {
        dry_run: args.dry_run,
        keep_legacy: args.keep_legacy,
    };
    let summary = match &legacy_path {
        None => legacy_credentials::migrate(&mut db, None, "the main database", &keyring, opts)?,
        Some(path) if !path.exists() => legacy_credentials::MigrateSummary::default(),
        Some(path) => {
            let shown = path.display().to_string();
            let mut legacy = Db::connect(&shown)
                .map_err(|e| format!("cannot open the legacy store {shown}: {e}"))?;
            legacy_credentials::migrate(&mut db, Some(&mut legacy), &shown, &keyring, opts)?
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
        return Ok(());
    }
    match &summary.source {
        None => writeln!(out, "no legacy credential store: nothing to migrate")?,
        Some(source) => writeln!(
            out,
            "{source}: {} legacy credential(s), {} {}, {} skipped (no name or context){}",
            summary.read,
            summary.migrated,
            if args.dry_run {
                "would be migrated"
            } else {
                "migrated"
            },
            summary.skipped,
            if summary.dropped {
                "; legacy table dropped"
            } else {
                ""
            }
        )?,
    }
    Ok(())
}
