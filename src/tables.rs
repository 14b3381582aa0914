//! Table-level operations over every model: `status` (what the keyring makes of each stored
//! value) and `rewrap` (re-encrypt stale and plaintext values with the current write key).
//!
//! Both walk a table in primary-key order, in batches, loading the hidden record each model's
//! `#[derive(Encrypted)]` generates and judging it with [`Rewrap::inspect`]. `rewrap` updates rows
//! inside the batch's transaction with an `UPDATE` that sets only the encrypted columns (and the
//! `encrypted` flag), so no other column an application changes is touched, and no row changed
//! since it was read is overwritten:
//!
//! - On PostgreSQL the batch is read with `FOR UPDATE SKIP LOCKED`: the rows returned are locked
//!   until the batch commits, so nobody changes them in between, and rows the application holds
//!   are skipped rather than waited for. One `UPDATE .. FROM (VALUES ..)` statement, matching by
//!   key, writes the batch. Several processes share the work this way; when a batch's key range
//!   holds more rows than it returned (rows others held were skipped), a final pass with a
//!   blocking `FOR UPDATE` picks them up.
//! - On SQLite a batch is an `IMMEDIATE` transaction (the database's write lock), and each row is
//!   updated by one statement that also matches every old stored value, so a row changed since
//!   it was read would be left alone (counted as a conflict).
//!
//! A run is idempotent: rows already under the write key are read and
//! left alone, so restarting after a crash just finishes the job.

use std::collections::BTreeMap;

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Binary, Bool, Nullable, Text};
use diesel::sqlite::Sqlite;
use encrypted_diesel::Rewrap;
use encrypted_diesel::rewrap::{Inspected, ValueState};
use encrypted_diesel::{Keys, with_keyring};
use serde::Serialize;

use crate::db::{Db, DbError};
use crate::models::{
    Credential, Identity, McpAuditLog, McpOAuthToken, RunState, SessionCookie, User,
};
use crate::schema;

/// A primary-key value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PkValue {
    /// An integer key.
    Int(i64),
    /// A text key.
    Text(String),
}

impl From<&i64> for PkValue {
    fn from(v: &i64) -> Self {
        PkValue::Int(*v)
    }
}

impl From<&String> for PkValue {
    fn from(v: &String) -> Self {
        PkValue::Text(v.clone())
    }
}

impl PkValue {
    /// The value as an SQL literal (text quoted, quotes doubled).
    fn literal(&self) -> String {
        match self {
            PkValue::Int(i) => i.to_string(),
            PkValue::Text(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }
}

/// How a batch is read on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// No lock (status, dry runs).
    None,
    /// `FOR UPDATE`, waiting for rows locked by others.
    Wait,
    /// `FOR UPDATE SKIP LOCKED`.
    SkipLocked,
}

/// A model's table, as the generic operations need it.
pub trait Table: Rewrap<Record: Send + Sync> {
    /// The table name.
    const NAME: &'static str;
    /// The `EncryptionConfiguration` resource.
    const RESOURCE: &'static str;
    /// The primary-key columns.
    const PK: &'static [&'static str];
    /// The primary key of a loaded record.
    fn pk(record: &Self::Record) -> Vec<PkValue>;
    /// Loads up to `limit` records matching the SQL condition `cond`, in key order.
    ///
    /// # Errors
    /// Database errors.
    fn load_pg(
        c: &mut PgConnection,
        cond: &str,
        limit: i64,
        lock: Lock,
    ) -> QueryResult<Vec<Self::Record>>;
    /// As [`Table::load_pg`] for SQLite.
    ///
    /// # Errors
    /// Database errors.
    fn load_sqlite(
        c: &mut SqliteConnection,
        cond: &str,
        limit: i64,
    ) -> QueryResult<Vec<Self::Record>>;
    /// Number of rows.
    ///
    /// # Errors
    /// Database errors.
    fn count(db: &mut Db) -> QueryResult<i64>;
}

macro_rules! table {
    ($model:ty, $table:ident, $resource:literal, [$($pk:ident),+]) => {
        impl Table for $model {
            const NAME: &'static str = stringify!($table);
            const RESOURCE: &'static str = $resource;
            const PK: &'static [&'static str] = &[$(stringify!($pk)),+];

            fn pk(r: &Self::Record) -> Vec<PkValue> {
                vec![$(PkValue::from(&r.$pk)),+]
            }

            fn load_pg(
                c: &mut PgConnection,
                cond: &str,
                limit: i64,
                lock: Lock,
            ) -> QueryResult<Vec<Self::Record>> {
                let q = schema::$table::table
                    .select(<<Self as Rewrap>::Record as SelectableHelper<Pg>>::as_select())
                    .filter(diesel::dsl::sql::<Bool>(cond))
                    .order(($(schema::$table::$pk,)+))
                    .limit(limit);
                match lock {
                    Lock::None => q.load(c),
                    Lock::Wait => q.for_update().load(c),
                    Lock::SkipLocked => q.for_update().skip_locked().load(c),
                }
            }

            fn load_sqlite(
                c: &mut SqliteConnection,
                cond: &str,
                limit: i64,
            ) -> QueryResult<Vec<Self::Record>> {
                schema::$table::table
                    .select(<<Self as Rewrap>::Record as SelectableHelper<Sqlite>>::as_select())
                    .filter(diesel::dsl::sql::<Bool>(cond))
                    .order(($(schema::$table::$pk,)+))
                    .limit(limit)
                    .load(c)
            }

            fn count(db: &mut Db) -> QueryResult<i64> {
                let q = schema::$table::table.count();
                match db {
                    Db::Pg(c) => q.get_result(c),
                    Db::Sqlite(c) => q.get_result(c),
                }
            }
        }
    };
}

table!(User, users, "users.obot.obot.ai", [id]);
table!(
    Identity,
    identities,
    "identities.obot.obot.ai",
    [
        auth_provider_name,
        auth_provider_namespace,
        hashed_provider_user_id
    ]
);
table!(
    McpOAuthToken,
    mcp_oauth_tokens,
    "mcpoauthtokens.obot.obot.ai",
    [mcp_id, user_id]
);
table!(
    SessionCookie,
    session_cookies,
    "sessioncookies.obot.obot.ai",
    [
        hashed_session_id,
        auth_provider_namespace,
        auth_provider_name
    ]
);
table!(
    McpAuditLog,
    mcp_audit_logs,
    "mcpauditlogs.obot.obot.ai",
    [id]
);
table!(
    RunState,
    run_states,
    "runstates.obot.obot.ai",
    [name, namespace]
);
table!(Credential, credentials, "credentials", [id]);

/// The condition selecting rows after `cursor` in key order.
fn after(pk: &[&str], cursor: Option<&[PkValue]>) -> String {
    match cursor {
        None => "1 = 1".to_owned(),
        Some(values) => {
            let values: Vec<String> = values.iter().map(PkValue::literal).collect();
            format!("({}) > ({})", pk.join(", "), values.join(", "))
        }
    }
}

/// Per-table counts reported by `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableStatus {
    /// The table.
    pub table: &'static str,
    /// Its resource.
    pub resource: &'static str,
    /// The key that writes now.
    pub write_key: String,
    /// Rows.
    pub rows: u64,
    /// Rows whose values are all under the write key.
    pub current: u64,
    /// Rows with a value under an older key or another provider (and none worse).
    pub stale: u64,
    /// Rows with a plaintext value (and none undecryptable).
    pub plaintext: u64,
    /// Rows with a value no configured key reads.
    pub undecryptable: u64,
    /// Rows without any encrypted value (all NULL).
    pub empty: u64,
    /// Rows per key (a row counts once for each key one of its values is under); plaintext
    /// values count under `plaintext`.
    pub by_key: BTreeMap<String, u64>,
}

fn label(key: &encrypted_core::KeyLabel) -> String {
    if key.name.is_empty() {
        key.provider.to_string()
    } else {
        format!("{}:{}", key.provider, key.name)
    }
}

fn write_key<M: Table>() -> Result<String, DbError> {
    let keys = encrypted_diesel::current()?;
    let ring = keys.resource(M::NAME, M::RESOURCE)?;
    Ok(label(ring.write_key()))
}

/// Counts one table.
///
/// # Errors
/// Database errors, a missing keyring or resource.
pub fn status_table<M: Table>(db: &mut Db, batch: i64) -> Result<TableStatus, DbError> {
    let mut s = TableStatus {
        table: M::NAME,
        resource: M::RESOURCE,
        write_key: write_key::<M>()?,
        ..TableStatus::default()
    };
    let mut cursor: Option<Vec<PkValue>> = None;
    loop {
        let cond = after(M::PK, cursor.as_deref());
        let rows = match db {
            Db::Pg(c) => M::load_pg(c, &cond, batch, Lock::None)?,
            Db::Sqlite(c) => M::load_sqlite(c, &cond, batch)?,
        };
        for r in &rows {
            let inspected = M::inspect(r)?;
            s.rows += 1;
            let mut keys = std::collections::BTreeSet::new();
            let (mut stale, mut plain, mut bad) = (false, false, false);
            for v in &inspected.values {
                match &v.state {
                    ValueState::Current(k) => {
                        keys.insert(label(k));
                    }
                    ValueState::Stale(k) => {
                        stale = true;
                        keys.insert(label(k));
                    }
                    ValueState::Plaintext => {
                        plain = true;
                        keys.insert("plaintext".to_owned());
                    }
                    ValueState::Undecryptable(_) => {
                        bad = true;
                        keys.insert("undecryptable".to_owned());
                    }
                    _ => {}
                }
            }
            for k in keys {
                *s.by_key.entry(k).or_default() += 1;
            }
            if inspected.values.is_empty() {
                s.empty += 1;
            } else if bad {
                s.undecryptable += 1;
            } else if plain {
                s.plaintext += 1;
            } else if stale {
                s.stale += 1;
            } else {
                s.current += 1;
            }
        }
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= batch;
        match rows.last() {
            Some(last) if full => cursor = Some(M::pk(last)),
            _ => break,
        }
    }
    Ok(s)
}

/// `status` for every table.
///
/// # Errors
/// As [`status_table`].
pub fn status(db: &mut Db) -> Result<Vec<TableStatus>, DbError> {
    const BATCH: i64 = 2000;
    Ok(vec![
        status_table::<User>(db, BATCH)?,
        status_table::<Identity>(db, BATCH)?,
        status_table::<McpOAuthToken>(db, BATCH)?,
        status_table::<SessionCookie>(db, BATCH)?,
        status_table::<McpAuditLog>(db, BATCH)?,
        status_table::<RunState>(db, BATCH)?,
        status_table::<Credential>(db, BATCH)?,
    ])
}

/// What `rewrap` did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RewrapSummary {
    /// The table.
    pub table: &'static str,
    /// Rows read.
    pub scanned: u64,
    /// Rows re-encrypted (with `--dry-run`: that would be).
    pub rewrapped: u64,
    /// Rows changed by someone else between read and update (left as they are: their new values
    /// were written by the application with its keys).
    pub conflicts: u64,
    /// Rows with a value no configured key reads (left alone).
    pub undecryptable: u64,
}

impl RewrapSummary {
    /// Adds the counts of `other` (a batch, a connection's share) to these.
    fn add(&mut self, other: &RewrapSummary) {
        self.scanned += other.scanned;
        self.rewrapped += other.rewrapped;
        self.conflicts += other.conflicts;
        self.undecryptable += other.undecryptable;
    }
}

/// Options of a rewrap run.
#[derive(Debug, Clone, Copy)]
pub struct RewrapOptions {
    /// Rows per batch (one transaction each).
    pub batch: i64,
    /// Report only.
    pub dry_run: bool,
    /// Connections working at once on PostgreSQL ([`rewrap_url`]); 1 on SQLite, which has one
    /// writer at a time.
    pub jobs: usize,
}

impl Default for RewrapOptions {
    /// Batches of 500 rows, one connection, changes written.
    fn default() -> Self {
        Self {
            batch: 500,
            dry_run: false,
            jobs: 1,
        }
    }
}

fn update_sql<M: Table>(pg: bool) -> String {
    let mut n = 0;
    let mut ph = || {
        n += 1;
        if pg { format!("${n}") } else { "?".to_owned() }
    };
    let mut set: Vec<String> = M::COLUMNS
        .iter()
        .map(|c| format!("{} = {}", c.name, ph()))
        .collect();
    if let Some(flag) = M::FLAG {
        set.push(format!("{flag} = TRUE"));
    }
    let mut cond: Vec<String> = M::PK.iter().map(|k| format!("{k} = {}", ph())).collect();
    let same = if pg { "IS NOT DISTINCT FROM" } else { "IS" };
    for c in M::COLUMNS {
        cond.push(format!("{} {same} {}", c.name, ph()));
    }
    if let Some(flag) = M::FLAG {
        cond.push(format!("{flag} = {}", ph()));
    }
    format!(
        "UPDATE {} SET {} WHERE {}",
        M::NAME,
        set.join(", "),
        cond.join(" AND ")
    )
}

macro_rules! conditional_update {
    ($backend:ty, $conn:expr, $sql:expr, $model:ty, $old:expr, $new:expr) => {{
        let mut q: BoxedSqlQuery<'_, $backend, SqlQuery> =
            diesel::sql_query($sql).into_boxed::<$backend>();
        let cols = <$model as Rewrap>::COLUMNS;
        for (c, v) in cols.iter().zip(<$model as Rewrap>::stored($new)) {
            q = if c.binary {
                q.bind::<Nullable<Binary>, _>(v)
            } else {
                q.bind::<Nullable<Text>, _>(v)
            };
        }
        for k in <$model as Table>::pk($old) {
            q = match k {
                PkValue::Int(i) => q.bind::<BigInt, _>(i),
                PkValue::Text(s) => q.bind::<Text, _>(s),
            };
        }
        for (c, v) in cols.iter().zip(<$model as Rewrap>::stored($old)) {
            q = if c.binary {
                q.bind::<Nullable<Binary>, _>(v)
            } else {
                q.bind::<Nullable<Text>, _>(v)
            };
        }
        if let Some(f) = <$model as Rewrap>::flag($old) {
            q = q.bind::<Bool, _>(f);
        }
        q.execute($conn)
    }};
}

/// The PostgreSQL statement updating a batch at once: `UPDATE .. FROM unnest(<one array per
/// column>)`, each row matched by its key. The statement has one parameter per column whatever the
/// batch size, so it is cheap to parse and plan. The batch was read `FOR UPDATE` in the same
/// transaction, so no other transaction can have changed (or deleted) these rows since: matching
/// the old values as well would only double what is sent.
fn batch_update_sql_pg<M: Table>() -> String {
    let cols = M::COLUMNS;
    let mut n = 0;
    let mut arrays = Vec::with_capacity(cols.len() + M::PK.len());
    let mut names = Vec::with_capacity(cols.len() + M::PK.len());
    for c in cols {
        n += 1;
        arrays.push(format!(
            "${n}::{}[]",
            if c.binary { "bytea" } else { "text" }
        ));
        names.push(format!("n_{}", c.name));
    }
    for k in M::PK {
        n += 1;
        // The array's element type is the bound one (int8 or text).
        arrays.push(format!("${n}"));
        names.push(format!("k_{k}"));
    }
    let mut set: Vec<String> = cols
        .iter()
        .map(|c| format!("{0} = v.n_{0}", c.name))
        .collect();
    if let Some(flag) = M::FLAG {
        set.push(format!("{flag} = TRUE"));
    }
    let cond: Vec<String> = M::PK.iter().map(|k| format!("t.{k} = v.k_{k}")).collect();
    format!(
        "UPDATE {} AS t SET {} FROM unnest({}) AS v({}) WHERE {}",
        M::NAME,
        set.join(", "),
        arrays.join(", "),
        names.join(", "),
        cond.join(" AND ")
    )
}

/// Writes the new values of `pairs` (old, new), rows this transaction holds `FOR UPDATE`, in
/// one statement; returns the rows changed.
fn batch_update_pg<M: Table>(
    c: &mut PgConnection,
    pairs: &[(&M::Record, M::Record)],
) -> QueryResult<usize> {
    let stored: Vec<Vec<Option<&encrypted_diesel::EncryptedValue>>> =
        pairs.iter().map(|(_, new)| M::stored(new)).collect();
    let keys: Vec<Vec<PkValue>> = pairs.iter().map(|(old, _)| M::pk(old)).collect();
    let mut q: BoxedSqlQuery<'_, Pg, SqlQuery> =
        diesel::sql_query(batch_update_sql_pg::<M>()).into_boxed::<Pg>();
    for (i, col) in M::COLUMNS.iter().enumerate() {
        let values: Vec<Option<&encrypted_diesel::EncryptedValue>> =
            stored.iter().map(|row| row[i]).collect();
        q = if col.binary {
            q.bind::<Array<Nullable<Binary>>, _>(values)
        } else {
            q.bind::<Array<Nullable<Text>>, _>(values)
        };
    }
    for i in 0..M::PK.len() {
        let ints: Option<Vec<i64>> = keys
            .iter()
            .map(|k| match &k[i] {
                PkValue::Int(v) => Some(*v),
                PkValue::Text(_) => None,
            })
            .collect();
        q = match ints {
            Some(ints) => q.bind::<Array<BigInt>, _>(ints),
            None => q.bind::<Array<Text>, _>(
                keys.iter()
                    .map(|k| match &k[i] {
                        PkValue::Int(v) => v.to_string(),
                        PkValue::Text(t) => t.clone(),
                    })
                    .collect::<Vec<String>>(),
            ),
        };
    }
    q.execute(c)
}

/// Rows to re-encrypt of a batch, each as read beside its re-encrypted record.
type Pairs<'a, M> = Vec<(&'a <M as Rewrap>::Record, <M as Rewrap>::Record)>;

/// Judges a batch: its counts (rows read, rows with an unreadable value) and the rows to
/// re-encrypt, each beside its re-encrypted record.
fn judge<M: Table>(
    rows: &[M::Record],
    threads: usize,
) -> Result<(RewrapSummary, Pairs<'_, M>), DbError> {
    let mut summary = RewrapSummary {
        scanned: rows.len() as u64,
        ..RewrapSummary::default()
    };
    let mut pairs = Vec::new();
    for (r, inspected) in rows.iter().zip(inspect_all::<M>(rows, threads)?) {
        if inspected
            .values
            .iter()
            .any(|v| matches!(v.state, ValueState::Undecryptable(_)))
        {
            summary.undecryptable += 1;
        }
        if let Some(new) = inspected.rewrapped {
            pairs.push((r, new));
        }
    }
    Ok((summary, pairs))
}

/// Inspects (decrypts, and re-encrypts where needed) `records`, on up to `max_threads` threads
/// when there are enough of them: the database waits meanwhile, so its core is free. Each worker
/// runs with the keys in scope on the calling thread.
fn inspect_all<M: Table>(
    records: &[M::Record],
    max_threads: usize,
) -> Result<Vec<Inspected<M::Record>>, DbError> {
    const MIN_PER_THREAD: usize = 128;
    let threads = max_threads.min(records.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return Ok(records.iter().map(M::inspect).collect::<Result<_, _>>()?);
    }
    let keys = encrypted_diesel::current()?;
    let chunk = records.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = records
            .chunks(chunk)
            .map(|part| {
                let keys = Keys::clone(&keys);
                scope.spawn(move || {
                    with_keyring(keys, || {
                        part.iter().map(M::inspect).collect::<Result<Vec<_>, _>>()
                    })
                })
            })
            .collect();
        let mut all = Vec::with_capacity(records.len());
        for worker in workers {
            let part = worker
                .join()
                .map_err(|_| DbError::from("a rewrap worker thread panicked"))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// Threads for inspecting a batch when `jobs` batches are worked on at once.
fn inspect_threads(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    (cores / jobs.max(1)).clamp(1, 4)
}

/// True when the key range that `rows` (a batch read `FOR UPDATE SKIP LOCKED` after `cond`)
/// covers holds more rows than were returned: rows another transaction held were skipped.
fn skipped_in_range<M: Table>(
    c: &mut PgConnection,
    cond: &str,
    rows: &[M::Record],
    batch: i64,
) -> Result<bool, DbError> {
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= batch;
    let range = match rows.last() {
        Some(last) if full => {
            let values: Vec<String> = M::pk(last).iter().map(PkValue::literal).collect();
            format!(
                "{cond} AND ({}) <= ({})",
                M::PK.join(", "),
                values.join(", ")
            )
        }
        _ => cond.to_owned(),
    };
    let n: RowCount = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM {} WHERE {range}",
        M::NAME
    ))
    .get_result(c)?;
    Ok(n.n > i64::try_from(rows.len()).unwrap_or(i64::MAX))
}

/// Judges a batch read on PostgreSQL (locked, unless `dry_run`) and writes the re-encrypted rows.
fn apply_pg<M: Table>(
    c: &mut PgConnection,
    rows: &[M::Record],
    dry_run: bool,
    threads: usize,
) -> Result<RewrapSummary, DbError> {
    let (mut summary, pairs) = judge::<M>(rows, threads)?;
    let wanted = pairs.len() as u64;
    let changed = if dry_run || pairs.is_empty() {
        wanted
    } else {
        batch_update_pg::<M>(c, &pairs)? as u64
    };
    summary.rewrapped = changed;
    summary.conflicts = wanted - changed;
    Ok(summary)
}

/// One pass over a table; true when rows locked by others were skipped.
fn rewrap_pass<M: Table>(
    db: &mut Db,
    opts: RewrapOptions,
    lock: Lock,
    summary: &mut RewrapSummary,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<bool, DbError> {
    let sql = update_sql::<M>(false);
    let mut skipped_rows = false;
    let mut cursor: Option<Vec<PkValue>> = None;
    loop {
        let cond = after(M::PK, cursor.as_deref());
        let mut batch_summary = RewrapSummary::default();
        let last = match db {
            Db::Pg(c) => c.transaction::<_, DbError, _>(|c| {
                let lock = if opts.dry_run { Lock::None } else { lock };
                let rows = M::load_pg(c, &cond, opts.batch, lock)?;
                if lock == Lock::SkipLocked && !skipped_rows {
                    skipped_rows = skipped_in_range::<M>(c, &cond, &rows, opts.batch)?;
                }
                batch_summary = apply_pg::<M>(c, &rows, opts.dry_run, inspect_threads(1))?;
                Ok((rows.len(), rows.last().map(M::pk)))
            })?,
            Db::Sqlite(c) => c.immediate_transaction::<_, DbError, _>(|c| {
                let rows = M::load_sqlite(c, &cond, opts.batch)?;
                let (judged, pairs) = judge::<M>(&rows, inspect_threads(1))?;
                batch_summary = judged;
                for (old, new) in pairs {
                    if opts.dry_run
                        || conditional_update!(Sqlite, &mut *c, sql.as_str(), M, old, &new)? == 1
                    {
                        batch_summary.rewrapped += 1;
                    } else {
                        batch_summary.conflicts += 1;
                    }
                }
                Ok((rows.len(), rows.last().map(M::pk)))
            })?,
        };
        let (n, last) = last;
        summary.add(&batch_summary);
        progress(n as u64);
        match last {
            Some(k) if i64::try_from(n).unwrap_or(i64::MAX) >= opts.batch => cursor = Some(k),
            _ => break,
        }
    }
    Ok(skipped_rows)
}

#[derive(QueryableByName)]
struct RowCount {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Where the extra connections of a parallel rewrap come from (PostgreSQL).
pub type Connect<'a> = &'a (dyn Fn() -> Result<PgConnection, DbError> + Sync);

/// Rewraps one table on one connection; `progress` is called with the rows read by each batch of
/// the first pass. [`RewrapOptions::jobs`] is ignored: see [`rewrap_table_jobs`].
///
/// # Errors
/// Database errors, a missing keyring or resource, an encryption failure.
pub fn rewrap_table<M: Table>(
    db: &mut Db,
    opts: RewrapOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RewrapSummary, DbError> {
    rewrap_table_jobs::<M>(db, None, opts, progress)
}

/// Rewraps one table; on PostgreSQL with `connect` and [`RewrapOptions::jobs`] > 1, that many
/// connections work at once (`db` and `jobs - 1` from `connect`): each takes the next batch in key
/// order under a shared cursor, then decrypts, re-encrypts and writes it while the others read
/// theirs, so the database and the cryptography overlap.
///
/// # Errors
/// As [`rewrap_table`]; the first error of any connection.
pub fn rewrap_table_jobs<M: Table>(
    db: &mut Db,
    connect: Option<Connect<'_>>,
    opts: RewrapOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RewrapSummary, DbError> {
    let mut summary = RewrapSummary {
        table: M::NAME,
        ..RewrapSummary::default()
    };
    let pg = matches!(db, Db::Pg(_));
    let skipped = match (&mut *db, connect) {
        (Db::Pg(c), Some(connect)) if opts.jobs > 1 && !opts.dry_run => {
            parallel_pass::<M>(c, connect, opts, &mut summary, progress)?
        }
        (db, _) => rewrap_pass::<M>(db, opts, Lock::SkipLocked, &mut summary, progress)?,
    };
    if pg && !opts.dry_run && skipped {
        // Rows another transaction held were skipped: a blocking pass picks them up (rows
        // already current are only read).
        let mut second = RewrapSummary::default();
        rewrap_pass::<M>(db, opts, Lock::Wait, &mut second, &|_| {})?;
        summary.rewrapped += second.rewrapped;
        summary.conflicts += second.conflicts;
        summary.undecryptable = second.undecryptable;
    }
    Ok(summary)
}

/// The shared position of a parallel pass.
#[derive(Debug, Default)]
struct Cursor {
    /// The key of the last row handed out.
    after: Option<Vec<PkValue>>,
    /// No rows are left (or a connection failed).
    done: bool,
    /// Some batch's key range held rows another transaction had locked.
    skipped: bool,
}

/// The first pass with `opts.jobs` connections; true when rows locked by others were skipped.
fn parallel_pass<M: Table>(
    main: &mut PgConnection,
    connect: Connect<'_>,
    opts: RewrapOptions,
    summary: &mut RewrapSummary,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<bool, DbError> {
    let keys = encrypted_diesel::current()?;
    let cursor = std::sync::Mutex::new(Cursor::default());
    let threads = inspect_threads(opts.jobs);
    let work = |c: &mut PgConnection| -> Result<RewrapSummary, DbError> {
        let mut total = RewrapSummary::default();
        let result = with_keyring(Keys::clone(&keys), || {
            loop {
                let batch = c.transaction::<_, DbError, _>(|c| {
                    let rows = {
                        let mut shared = cursor.lock().map_err(|_| "a rewrap worker panicked")?;
                        if shared.done {
                            return Ok(None);
                        }
                        let cond = after(M::PK, shared.after.as_deref());
                        let rows = M::load_pg(c, &cond, opts.batch, Lock::SkipLocked)?;
                        if !shared.skipped {
                            shared.skipped = skipped_in_range::<M>(c, &cond, &rows, opts.batch)?;
                        }
                        match rows.last() {
                            Some(last)
                                if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= opts.batch =>
                            {
                                shared.after = Some(M::pk(last));
                            }
                            _ => shared.done = true,
                        }
                        rows
                    };
                    apply_pg::<M>(c, &rows, false, threads).map(Some)
                })?;
                let Some(done) = batch else {
                    return Ok::<_, DbError>(());
                };
                total.add(&done);
                progress(done.scanned);
            }
        });
        if result.is_err()
            && let Ok(mut shared) = cursor.lock()
        {
            shared.done = true;
        }
        result.map(|()| total)
    };
    let results: Vec<Result<RewrapSummary, DbError>> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..opts.jobs)
            .map(|_| {
                scope.spawn(|| {
                    let mut c = connect()?;
                    work(&mut c)
                })
            })
            .collect();
        let mut results = vec![work(main)];
        for helper in helpers {
            results.push(
                helper
                    .join()
                    .unwrap_or_else(|_| Err("a rewrap worker thread panicked".into())),
            );
        }
        results
    });
    for result in results {
        summary.add(&result?);
    }
    let skipped = cursor.lock().map_or(true, |c| c.skipped);
    Ok(skipped)
}

/// Row counts of every table, for a progress bar.
///
/// # Errors
/// Database errors.
pub fn total_rows(db: &mut Db) -> QueryResult<i64> {
    Ok(User::count(db)?
        + Identity::count(db)?
        + McpOAuthToken::count(db)?
        + SessionCookie::count(db)?
        + McpAuditLog::count(db)?
        + RunState::count(db)?
        + Credential::count(db)?)
}

/// Rewraps every table of the database at `url`, with [`RewrapOptions::jobs`] connections at
/// once on PostgreSQL.
///
/// # Errors
/// As [`rewrap_table_jobs`]; a connection failure.
pub fn rewrap_url(
    url: &str,
    opts: RewrapOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<RewrapSummary>, DbError> {
    let mut db = Db::connect(url)?;
    let connect = || -> Result<PgConnection, DbError> { Ok(PgConnection::establish(url)?) };
    let connect: Connect<'_> = &connect;
    let db = &mut db;
    Ok(vec![
        rewrap_table_jobs::<User>(db, Some(connect), opts, progress)?,
        rewrap_table_jobs::<Identity>(db, Some(connect), opts, progress)?,
        rewrap_table_jobs::<McpOAuthToken>(db, Some(connect), opts, progress)?,
        rewrap_table_jobs::<SessionCookie>(db, Some(connect), opts, progress)?,
        rewrap_table_jobs::<McpAuditLog>(db, Some(connect), opts, progress)?,
        rewrap_table_jobs::<RunState>(db, Some(connect), opts, progress)?,
        rewrap_table_jobs::<Credential>(db, Some(connect), opts, progress)?,
    ])
}

/// Rewraps every table on one connection.
///
/// # Errors
/// As [`rewrap_table`].
pub fn rewrap(
    db: &mut Db,
    opts: RewrapOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<RewrapSummary>, DbError> {
    Ok(vec![
        rewrap_table::<User>(db, opts, progress)?,
        rewrap_table::<Identity>(db, opts, progress)?,
        rewrap_table::<McpOAuthToken>(db, opts, progress)?,
        rewrap_table::<SessionCookie>(db, opts, progress)?,
        rewrap_table::<McpAuditLog>(db, opts, progress)?,
        rewrap_table::<RunState>(db, opts, progress)?,
        rewrap_table::<Credential>(db, opts, progress)?,
    ])
}
