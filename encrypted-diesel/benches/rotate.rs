//! Rotation throughput: `rotate::rewrap` of a user model beside a plain batched `UPDATE` of the
//! same rows and columns, in the same run, on SQLite (a WAL file), PostgreSQL and MariaDB (each in
//! a database of its own, created and dropped here; `POSTGRES_URL` and `MYSQL_URL` as for the
//! tests).
//!
//! `cargo bench -p encrypted-diesel --features sqlite,postgres,mysql --bench rotate`
//! (`ROTATE_ROWS`, default 20 000; `ROTATE_RUNS`, default 3). Each run rewraps every row to the
//! other key (k1 → k2, then k2 → k1), so every run does the whole job; the figures are medians of
//! interleaved runs. Printed per backend: rows/s of the rewrap and of the baseline, their ratio
//! (targets: PostgreSQL ≥ 0.70 with the default two jobs, SQLite and MariaDB ≥ 0.50), and two
//! floors measured in the same run: the cryptography alone (base64, decrypt, encrypt of the same
//! values in memory, one thread) and a read-only pass over the same batches.
//!
//! The baseline is the same job in plain Diesel with no cryptography: per batch of the same size,
//! one transaction reading the batch's stored values in key order and writing new values of the
//! same columns the fastest plain way on each backend (`write_sqlite`, `write_pg`,
//! `write_mysql`). The set-based floor is one `UPDATE … WHERE id > lo AND id <= hi` per batch with
//! no values sent: `SET c = c` on PostgreSQL and SQLite (a new tuple version, a rewritten page);
//! InnoDB skips a row whose values do not change, so on MariaDB it writes `REVERSE(c)` (same
//! length), twice per run with the time halved, so that the values the rewrap reads are restored.
#![allow(clippy::cast_precision_loss, reason = "rates")]

use std::time::{Duration, Instant};

use diesel::prelude::*;
use encrypted_core::{EncryptionConfiguration, Keyring};
use encrypted_diesel::rotate::{self, Options, Session, Table};
use encrypted_diesel::{Encrypted, Keys, with_keyring};

const K1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";
const K2: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";
const RESOURCE: &str = "accounts.example.com";

mod schema {
    diesel::table! {
        bench_accounts (id) {
            id -> BigInt,
            email -> Text,
            display_name -> Text,
            secret -> Nullable<Binary>,
        }
    }
}
use schema::bench_accounts;

/// A user model that is not Obot's: an integer key, a per-row context, text and binary values.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = bench_accounts, resource = "accounts.example.com", aad = "{resource}/{id}")]
struct Account {
    id: i64,
    #[encrypt]
    email: String,
    #[encrypt]
    display_name: String,
    #[encrypt]
    secret: Option<Vec<u8>>,
}

fn account(id: i64) -> Account {
    Account {
        id,
        email: format!("user{id}@example.com"),
        display_name: format!("User Number {id}"),
        secret: (id % 4 != 0).then(|| format!("oauth-refresh-token-{id:08}").into_bytes()),
    }
}

/// `aesgcm` keys in `order` (the first writes), then identity.
fn keyring(order: &[(&str, &str)]) -> Keyring {
    let mut y = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  \
         - resources: [{RESOURCE}]\n    providers:\n      - aesgcm:\n          keys:\n"
    );
    for (name, secret) in order {
        y.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    y.push_str("      - identity: {}\n");
    Keyring::from_config(&EncryptionConfiguration::from_yaml(&y).expect("config")).expect("keyring")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What differs between the backends.
trait Backend: Session + Steps + diesel::connection::SimpleConnection + Send + Sized + 'static
where
    Account: Table<Self>,
{
    const NAME: &'static str;
    /// The column types of the table: key, text, binary.
    const TYPES: (&'static str, &'static str, &'static str);
    /// The baseline's `SET` list.
    const SET: &'static str;
    /// A connection to the bench database.
    fn connect(url: &str) -> Self;
    /// Rewraps with the default options (`rewrap_parallel` where the server has row locks).
    fn rewrap(&mut self, url: &str, opts: &Options) -> rotate::RewrapSummary;
}

impl Backend for SqliteConnection {
    const NAME: &'static str = "SQLite (WAL file)";
    const TYPES: (&'static str, &'static str, &'static str) = ("BIGINT", "TEXT", "BLOB");
    const SET: &'static str = "email = email, display_name = display_name, secret = secret";
    fn connect(url: &str) -> Self {
        let mut c = SqliteConnection::establish(url).expect("SQLite");
        diesel::sql_query("PRAGMA journal_mode = WAL")
            .execute(&mut c)
            .expect("wal");
        c
    }
    fn rewrap(&mut self, _url: &str, opts: &Options) -> rotate::RewrapSummary {
        rotate::rewrap::<Account, _>(self, opts).expect("rewrap")
    }
}

impl Backend for PgConnection {
    const NAME: &'static str = "PostgreSQL";
    const TYPES: (&'static str, &'static str, &'static str) = ("BIGINT", "TEXT", "BYTEA");
    const SET: &'static str = "email = email, display_name = display_name, secret = secret";
    fn connect(url: &str) -> Self {
        PgConnection::establish(url).unwrap_or_else(|e| panic!("PostgreSQL is unreachable: {e}"))
    }
    fn rewrap(&mut self, url: &str, opts: &Options) -> rotate::RewrapSummary {
        let connect = || PgConnection::establish(url);
        rotate::rewrap_parallel::<Account, _>(self, &connect, opts).expect("rewrap")
    }
}

impl Backend for MysqlConnection {
    const NAME: &'static str = "MariaDB";
    const TYPES: (&'static str, &'static str, &'static str) = ("BIGINT", "LONGTEXT", "LONGBLOB");
    const SET: &'static str =
        "email = REVERSE(email), display_name = REVERSE(display_name), secret = REVERSE(secret)";
    fn connect(url: &str) -> Self {
        MysqlConnection::establish(url).unwrap_or_else(|e| panic!("MariaDB is unreachable: {e}"))
    }
    fn rewrap(&mut self, url: &str, opts: &Options) -> rotate::RewrapSummary {
        let connect = || MysqlConnection::establish(url);
        rotate::rewrap_parallel::<Account, _>(self, &connect, opts).expect("rewrap")
    }
}

/// The stored values, read without the model.
type Stored = Vec<(i64, String, String, Option<Vec<u8>>)>;

/// The measured steps, written once for the three connections.
trait Steps {
    /// Inserts `rows` (encrypted under the keys in scope).
    fn seed(&mut self, rows: &[Account]);
    /// One baseline pass: a transaction per batch, one set-based `UPDATE` each.
    fn baseline(&mut self, rows: i64, batch: i64, set: &str);
    /// The stored values of the `batch` rows after key `after`.
    fn page(&mut self, after: i64, batch: i64) -> QueryResult<Stored>;
    /// The stored values, in key order, in pages of `batch` (the read-only floor).
    fn load_stored(&mut self, batch: i64) -> Stored;
    /// The first `n` rows through the model.
    fn load_first(&mut self, n: i64) -> Vec<Account>;
    /// The baseline: the same job with plain Diesel and no cryptography. Per batch of `batch`
    /// rows, one transaction: the batch's stored values read in key order, then the rows'
    /// columns set to their values in `new` (computed beforehand), written the fastest plain way
    /// on each backend (`write_sqlite`, `write_pg`, `write_mysql`).
    fn plain_rewrite(&mut self, batch: i64, new: &Stored);
}

macro_rules! steps {
    ($conn:ty, $write:ident) => {
        impl Steps for $conn {
            fn seed(&mut self, rows: &[Account]) {
                for chunk in rows.chunks(1000) {
                    diesel::insert_into(bench_accounts::table)
                        .values(chunk)
                        .execute(self)
                        .expect("seed");
                }
            }
            fn baseline(&mut self, rows: i64, batch: i64, set: &str) {
                let mut lo = 0;
                while lo < rows {
                    self.transaction::<_, diesel::result::Error, _>(|c| {
                        diesel::sql_query(format!(
                            "UPDATE bench_accounts SET {set} WHERE id > {lo} AND id <= {}",
                            lo + batch
                        ))
                        .execute(c)
                    })
                    .expect("baseline update");
                    lo += batch;
                }
            }
            fn page(&mut self, after: i64, batch: i64) -> QueryResult<Stored> {
                bench_accounts::table
                    .filter(bench_accounts::id.gt(after))
                    .order(bench_accounts::id)
                    .limit(batch)
                    .select((
                        bench_accounts::id,
                        bench_accounts::email,
                        bench_accounts::display_name,
                        bench_accounts::secret,
                    ))
                    .load(self)
            }
            fn load_stored(&mut self, batch: i64) -> Stored {
                let mut out: Stored = Vec::new();
                let mut lo = 0i64;
                loop {
                    let page: Stored = self.page(lo, batch).expect("select");
                    let Some(last) = page.last() else { break };
                    lo = last.0;
                    out.extend(page);
                }
                out
            }
            fn plain_rewrite(&mut self, batch: i64, new: &Stored) {
                let mut lo = 0i64;
                loop {
                    let done = self
                        .transaction::<_, diesel::result::Error, _>(|c| {
                            let page: Stored = c.page(lo, batch)?;
                            let rows: Vec<&(i64, String, String, Option<Vec<u8>>)> = page
                                .iter()
                                .map(|(id, ..)| &new[usize::try_from(id - 1).expect("dense ids")])
                                .collect();
                            $write(c, &rows)?;
                            Ok(page.last().map(|r| r.0))
                        })
                        .expect("plain rewrite");
                    match done {
                        Some(last) => lo = last,
                        None => break,
                    }
                }
            }
            fn load_first(&mut self, n: i64) -> Vec<Account> {
                bench_accounts::table
                    .order(bench_accounts::id)
                    .limit(n)
                    .select(Account::as_select())
                    .load(self)
                    .expect("load")
            }
        }
    };
}
steps!(SqliteConnection, write_sqlite);
steps!(PgConnection, write_pg);
steps!(MysqlConnection, write_mysql);

type NewRow = (i64, String, String, Option<Vec<u8>>);

/// SQLite: a prepared `UPDATE` per row (cached), inside the batch's transaction, as SQLite is
/// meant to be used (no network between statements).
fn write_sqlite(c: &mut SqliteConnection, rows: &[&NewRow]) -> QueryResult<()> {
    for (id, email, name, secret) in rows {
        diesel::update(bench_accounts::table.find(id))
            .set((
                bench_accounts::email.eq(email),
                bench_accounts::display_name.eq(name),
                bench_accounts::secret.eq(secret),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// PostgreSQL: one statement per batch, the values as arrays (`UPDATE … FROM unnest(…)`).
fn write_pg(c: &mut PgConnection, rows: &[&NewRow]) -> QueryResult<()> {
    use diesel::sql_types::{Array, BigInt, Binary, Nullable, Text};
    diesel::sql_query(
        "UPDATE bench_accounts AS t SET email = v.email, display_name = v.display_name, \
         secret = v.secret FROM unnest($1, $2, $3, $4) AS v(id, email, display_name, secret) \
         WHERE t.id = v.id",
    )
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| &r.1).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| &r.2).collect::<Vec<_>>())
    .bind::<Array<Nullable<Binary>>, _>(rows.iter().map(|r| r.3.as_ref()).collect::<Vec<_>>())
    .execute(c)
    .map(drop)
}

/// MariaDB: one statement per batch, the standard bulk idiom (`INSERT … ON DUPLICATE KEY
/// UPDATE`; every row exists, so each is an update).
fn write_mysql(c: &mut MysqlConnection, rows: &[&NewRow]) -> QueryResult<()> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Binary, Nullable, Text};
    let values: Vec<_> = rows
        .iter()
        .map(|(id, email, name, secret)| {
            (
                bench_accounts::id.eq(id),
                bench_accounts::email.eq(email),
                bench_accounts::display_name.eq(name),
                bench_accounts::secret.eq(secret),
            )
        })
        .collect();
    let n = diesel::insert_into(bench_accounts::table)
        .values(values)
        .on_conflict(diesel::dsl::DuplicatedKeys)
        .do_update()
        .set((
            bench_accounts::email.eq(sql::<Text>("VALUES(email)")),
            bench_accounts::display_name.eq(sql::<Text>("VALUES(display_name)")),
            bench_accounts::secret.eq(sql::<Nullable<Binary>>("VALUES(secret)")),
        ))
        .execute(c)?;
    // MySQL counts an updated row twice.
    assert_eq!(n, 2 * rows.len(), "every row updated");
    Ok(())
}

/// The cryptography of a rewrap alone: base64-decode, decrypt, encrypt under the write key and
/// base64-encode every stored value, one thread, no database.
fn crypto_floor(stored: &Stored, keys: &Keys) -> (Duration, Stored) {
    let ring = keys.keyring().resource(RESOURCE).expect("resource");
    let t = Instant::now();
    let text = |value: &str, aad: &str| {
        let bytes = encrypted_core::decode_base64(value).expect("base64");
        let plain = ring.decrypt(&bytes, aad.as_bytes()).expect("decrypt");
        let sealed = ring
            .encrypt(&plain.plaintext, aad.as_bytes())
            .expect("encrypt");
        encrypted_core::encode_base64(&sealed)
    };
    let out: Stored = stored
        .iter()
        .map(|(id, email, name, secret)| {
            let aad = format!("{RESOURCE}/{id}");
            let secret = secret.as_ref().map(|s| {
                let plain = ring.decrypt(s, aad.as_bytes()).expect("decrypt");
                ring.encrypt(&plain.plaintext, aad.as_bytes())
                    .expect("encrypt")
            });
            (*id, text(email, &aad), text(name, &aad), secret)
        })
        .collect();
    (t.elapsed(), out)
}

#[derive(Default)]
struct Measured {
    rewrap: Vec<Duration>,
    baseline: Vec<Duration>,
    crypto: Vec<Duration>,
    read: Vec<Duration>,
    set_based: Vec<Duration>,
}

struct Figures {
    name: &'static str,
    rewrap: Duration,
    baseline: Duration,
    crypto: Duration,
    read: Duration,
    set_based: Duration,
}

fn bench<C: Backend>(url: &str, rows: usize, runs: usize) -> Figures
where
    Account: Table<C>,
    <Account as encrypted_diesel::Model>::Record: Sync,
{
    let mut c = C::connect(url);
    let n = i64::try_from(rows).expect("rows");
    let seed: Vec<Account> = (1..=n).map(account).collect();
    with_keyring(Keys::new(keyring(&[("k1", K1)])), || c.seed(&seed));
    let opts = Options::default();
    let batch = i64::try_from(opts.batch_size).expect("batch");
    // Every run: the baseline moves every row from k1 to k2 with plain Diesel (ciphertexts
    // computed beforehand), then the rewrap moves every row back to k1.
    let k2_writes = Keys::new(keyring(&[("k2", K2), ("k1", K1)]));
    let k1_writes = Keys::new(keyring(&[("k1", K1), ("k2", K2)]));
    let under_k1 = c.load_stored(batch);
    assert_eq!(under_k1.len(), rows);
    let (_, under_k2) = crypto_floor(&under_k1, &k2_writes);
    let mut m = Measured::default();
    for _ in 0..runs {
        let t = Instant::now();
        c.plain_rewrite(batch, &under_k2);
        m.baseline.push(t.elapsed());
        let status = with_keyring(k2_writes.clone(), || rotate::status::<Account, _>(&mut c))
            .expect("status");
        assert_eq!(
            status.current,
            rows as u64,
            "{}: the baseline wrote every row",
            C::NAME
        );

        let t = Instant::now();
        let stored = c.load_stored(batch);
        m.read.push(t.elapsed());
        assert_eq!(stored.len(), rows);
        m.crypto.push(crypto_floor(&stored, &k1_writes).0);

        // The server's own cost of rewriting the rows, with no values to send: two passes
        // (MariaDB's second reverses the first), halved.
        let t = Instant::now();
        for _ in 0..2 {
            c.baseline(n, batch, C::SET);
        }
        m.set_based.push(t.elapsed() / 2);

        let t = Instant::now();
        let done = with_keyring(k1_writes.clone(), || C::rewrap(&mut c, url, &opts));
        m.rewrap.push(t.elapsed());
        assert_eq!(done.rewrapped, rows as u64, "{}: rows rewrapped", C::NAME);
        assert_eq!(done.conflicts + done.undecryptable, 0);
        let status = with_keyring(k1_writes.clone(), || rotate::status::<Account, _>(&mut c))
            .expect("status");
        assert_eq!(status.current, rows as u64, "{}: rows under k1", C::NAME);
        assert_eq!(status.by_key.get("aesgcm:k1").copied(), Some(rows as u64));
    }
    // The values read back are the values written.
    with_keyring(Keys::new(keyring(&[("k1", K1), ("k2", K2)])), || {
        let back = c.load_first(100);
        assert_eq!(back.len(), 100.min(rows));
        assert!(
            back.iter().all(|a| *a == account(a.id)),
            "{}: plaintext",
            C::NAME
        );
    });
    Figures {
        name: C::NAME,
        rewrap: median(m.rewrap),
        baseline: median(m.baseline),
        crypto: median(m.crypto),
        read: median(m.read),
        set_based: median(m.set_based),
    }
}

/// A database of its own on the server of `base` (dropped by the guard).
struct ServerDb {
    admin: String,
    url: String,
    name: String,
    mysql: bool,
}

impl ServerDb {
    fn create(base: &str, admin_db: &str, mysql: bool) -> Self {
        let (server, _) = base.rsplit_once('/').expect("a database URL");
        let admin = format!("{server}/{admin_db}");
        let name = format!("encrypted_rotate_bench_{}", std::process::id());
        let create = format!("CREATE DATABASE {name}");
        if mysql {
            let mut a = MysqlConnection::establish(&admin).expect("MariaDB");
            diesel::sql_query(create).execute(&mut a).expect("create");
        } else {
            let mut a = PgConnection::establish(&admin).expect("PostgreSQL");
            diesel::sql_query(create).execute(&mut a).expect("create");
        }
        Self {
            url: format!("{server}/{name}"),
            admin,
            name,
            mysql,
        }
    }
}

impl Drop for ServerDb {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {}", self.name);
        let done = if self.mysql {
            MysqlConnection::establish(&self.admin)
                .map(|mut a| diesel::sql_query(drop).execute(&mut a))
        } else {
            PgConnection::establish(&self.admin)
                .map(|mut a| diesel::sql_query(drop).execute(&mut a))
        };
        if !matches!(done, Ok(Ok(_))) {
            eprintln!("could not drop the bench database {}", self.name);
        }
    }
}

fn report(f: &Figures, rows: usize, target: f64) {
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    let ratio = f.baseline.as_secs_f64() / f.rewrap.as_secs_f64();
    println!(
        "{}: rewrap {rows} rows {:.2?} = {:.0} rows/s; the same job in plain Diesel {:.2?} = {:.0} rows/s; \
         ratio {ratio:.2} (target ≥ {target:.2}){}; floors: cryptography alone {:.2?} \
         ({:.0} rows/s, one thread), read-only pass {:.2?} ({:.0} rows/s), set-based UPDATE \
         with no values to send {:.2?} ({:.0} rows/s, rewrap ÷ this {:.2})",
        f.name,
        f.rewrap,
        rate(f.rewrap),
        f.baseline,
        rate(f.baseline),
        if ratio >= target { "" } else { " BELOW TARGET" },
        f.crypto,
        rate(f.crypto),
        f.read,
        rate(f.read),
        f.set_based,
        rate(f.set_based),
        f.set_based.as_secs_f64() / f.rewrap.as_secs_f64(),
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // `cargo test --benches` runs this binary without `--bench`: a small smoke run.
    let rows = env_usize("ROTATE_ROWS", if full { 20_000 } else { 1_000 });
    let runs = env_usize("ROTATE_RUNS", if full { 3 } else { 1 }).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rotate.db");
    measure::<SqliteConnection>(path.to_str().expect("utf-8"), rows, runs, 0.50);

    let pg_base = std::env::var("POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/encrypted_test".to_owned());
    let pg_db = ServerDb::create(&pg_base, "postgres", false);
    measure::<PgConnection>(&pg_db.url, rows, runs, 0.70);
    drop(pg_db);

    let my_base = std::env::var("MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/encrypted_test".to_owned());
    let my_db = ServerDb::create(&my_base, "mysql", true);
    measure::<MysqlConnection>(&my_db.url, rows, runs, 0.50);
    drop(my_db);
}

/// Creates the table in the database at `url`, measures and prints.
fn measure<C: Backend>(url: &str, rows: usize, runs: usize, target: f64)
where
    Account: Table<C>,
    <Account as encrypted_diesel::Model>::Record: Sync,
{
    let (key, text, blob) = C::TYPES;
    let mut c = C::connect(url);
    c.batch_execute(&format!(
        "CREATE TABLE bench_accounts (id {key} PRIMARY KEY, email {text} NOT NULL, \
         display_name {text} NOT NULL, secret {blob})"
    ))
    .expect("ddl");
    drop(c);
    report(&bench::<C>(url, rows, runs), rows, target);
}
