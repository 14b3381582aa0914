//! Obot's tables for `encrypted-diesel`'s rotation engine: the list of models, nothing else.
//!
//! `status`, `rewrap` and `verify` are the engine's ([`encrypted_diesel::rotate`]); this module
//! only names the models, in the order the CLI reports them, and picks the connection.

use diesel::{PgConnection, SqliteConnection};
use encrypted_diesel::rotate::{self, Options, RewrapSummary, Table, TableStatus, Verification};

use crate::db::{Db, DbError, HISTORIC_TABLES};
use crate::models::{
    Credential, Identity, LlmAuditLog, LocalAgentAuditLog, LocalAuthUser, McpAuditLog,
    McpOAuthPendingState, McpOAuthToken, MessagePolicyViolation, Property, RunState, SessionCookie,
    User,
};

/// A model the CLI rotates: every backend it supports.
pub trait ObotTable: Table<PgConnection> + Table<SqliteConnection> + Send {}

impl<M> ObotTable for M
where
    M: Table<PgConnection> + Table<SqliteConnection> + Send,
    M::Record: Sync,
{
}

/// Calls `$f::<Model>($args)` for every Obot model present in `$db`, collecting the results in
/// order: a historic table ([`HISTORIC_TABLES`]) a current Obot database no longer has is skipped.
macro_rules! for_each_model {
    ($db:ident, $f:ident $args:tt) => {{
        let mut out = Vec::new();
        for_each_model!(@each $db, $f $args, out, [
            User, Identity, LocalAuthUser, McpOAuthToken, McpOAuthPendingState, McpAuditLog,
            LocalAgentAuditLog, LlmAuditLog, MessagePolicyViolation, Property, Credential,
            SessionCookie, RunState
        ]);
        out
    }};
    (@each $db:ident, $f:ident $args:tt, $out:ident, [$($m:ty),*]) => {
        $(
            if present::<$m>($db)? {
                $out.push($f::<$m> $args?);
            }
        )*
    };
}

/// Whether `M`'s table is in the database: always for Obot's current tables (`open_existing`
/// checked them), looked up for a historic one.
fn present<M: ObotTable>(db: &mut Db) -> Result<bool, DbError> {
    let table = <M as encrypted_diesel::rotate::Rotate>::TABLE;
    if HISTORIC_TABLES.contains(&table) {
        db.table_exists(table)
    } else {
        Ok(true)
    }
}

fn status_one<M>(db: &mut Db, opts: &Options) -> Result<TableStatus, DbError>
where
    M: ObotTable,
    M::Record: Sync,
{
    Ok(match db {
        Db::Pg(c) => rotate::status_with::<M, _>(c, opts)?,
        Db::Sqlite(c) => rotate::status_with::<M, _>(c, opts)?,
    })
}

/// `status` of every table.
///
/// # Errors
/// The engine's ([`encrypted_diesel::Error`]).
pub fn status(db: &mut Db) -> Result<Vec<TableStatus>, DbError> {
    let opts = Options::default().batch_size(2000);
    Ok(for_each_model!(db, status_one(db, &opts)))
}

fn verify_one<M>(db: &mut Db, opts: &Options) -> Result<Verification, DbError>
where
    M: ObotTable,
    M::Record: Sync,
{
    Ok(match db {
        Db::Pg(c) => rotate::verify::<M, _>(c, opts)?,
        Db::Sqlite(c) => rotate::verify::<M, _>(c, opts)?,
    })
}

/// `verify` of every table: hash columns recomputed from the decrypted values.
///
/// # Errors
/// The engine's.
pub fn verify(db: &mut Db, opts: &Options) -> Result<Vec<Verification>, DbError> {
    Ok(for_each_model!(db, verify_one(db, opts)))
}

fn rewrap_one<M>(db: &mut Db, url: &str, opts: &Options) -> Result<RewrapSummary, DbError>
where
    M: ObotTable,
    M::Record: Sync,
{
    Ok(match db {
        Db::Pg(c) if opts.jobs > 1 && !opts.dry_run => {
            let connect = || <PgConnection as diesel::Connection>::establish(url);
            rotate::rewrap_parallel::<M, _>(c, &connect, opts)?
        }
        Db::Pg(c) => rotate::rewrap::<M, _>(c, opts)?,
        Db::Sqlite(c) => rotate::rewrap::<M, _>(c, opts)?,
    })
}

/// `rewrap` of every table; on PostgreSQL with [`Options::jobs`] connections (the extra ones
/// opened with `url`).
///
/// # Errors
/// The engine's; a connection failure.
pub fn rewrap(db: &mut Db, url: &str, opts: &Options) -> Result<Vec<RewrapSummary>, DbError> {
    rewrap_each(db, url, opts, &|_| {})
}

/// [`rewrap`], calling `done` after each table.
///
/// # Errors
/// As [`rewrap`].
pub fn rewrap_each(
    db: &mut Db,
    url: &str,
    opts: &Options,
    done: &dyn Fn(&RewrapSummary),
) -> Result<Vec<RewrapSummary>, DbError> {
    Ok(for_each_model!(db, rewrap_then(db, url, opts, done)))
}

fn rewrap_then<M>(
    db: &mut Db,
    url: &str,
    opts: &Options,
    done: &dyn Fn(&RewrapSummary),
) -> Result<RewrapSummary, DbError>
where
    M: ObotTable,
    M::Record: Sync,
{
    let summary = rewrap_one::<M>(db, url, opts)?;
    done(&summary);
    Ok(summary)
}

fn count_one<M>(db: &mut Db) -> Result<u64, DbError>
where
    M: ObotTable,
    M::Record: Sync,
{
    let n = match db {
        Db::Pg(c) => <M as Table<PgConnection>>::count(c)?,
        Db::Sqlite(c) => <M as Table<SqliteConnection>>::count(c)?,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Rows of every table, for a progress bar.
///
/// # Errors
/// Database errors.
pub fn total_rows(db: &mut Db) -> Result<u64, DbError> {
    let counts: Vec<u64> = for_each_model!(db, count_one(db));
    Ok(counts.iter().sum())
}
