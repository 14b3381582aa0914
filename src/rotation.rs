//! Obot's tables for `encrypted-diesel`'s rotation engine: the list of models, nothing else.
//!
//! `status`, `rewrap` and `verify` are the engine's ([`encrypted_diesel::rotate`]); this module
//! only names the models, in the order the CLI reports them, and picks the connection.

use diesel::{PgConnection, SqliteConnection};
use encrypted_diesel::rotate::{self, Options, RewrapSummary, Table, TableStatus, Verification};

use crate::db::{Db, DbError};
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

/// Calls `$f::<Model>($args)` for every Obot model, collecting the results in order.
macro_rules! for_each_model {
    ($f:ident($($arg:expr),*)) => {
        vec![
            $f::<User>($($arg),*)?,
            $f::<Identity>($($arg),*)?,
            $f::<LocalAuthUser>($($arg),*)?,
            $f::<McpOAuthToken>($($arg),*)?,
            $f::<McpOAuthPendingState>($($arg),*)?,
            $f::<McpAuditLog>($($arg),*)?,
            $f::<LocalAgentAuditLog>($($arg),*)?,
            $f::<LlmAuditLog>($($arg),*)?,
            $f::<MessagePolicyViolation>($($arg),*)?,
            $f::<Property>($($arg),*)?,
            $f::<Credential>($($arg),*)?,
            $f::<SessionCookie>($($arg),*)?,
            $f::<RunState>($($arg),*)?,
        ]
    };
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
    Ok(for_each_model!(status_one(db, &opts)))
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
    Ok(for_each_model!(verify_one(db, opts)))
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
    Ok(for_each_model!(rewrap_then(db, url, opts, done)))
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
    let counts: Vec<u64> = for_each_model!(count_one(db));
    Ok(counts.iter().sum())
}
