//! 10 000 rows with 4 encrypted fields: batch insert and load, the encrypted model beside the
//! identical plaintext model in the same run, on in-memory SQLite and PostgreSQL
//! (`POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/encrypted_test`).
//!
//! `cargo bench -p encrypted-diesel --features sqlite,postgres --bench models` prints criterion's
//! figures and, at the end, the encrypted/plaintext ratios (medians of interleaved runs).
//! Targets: ≤ 1.10 on PostgreSQL, ≤ 1.5 on in-memory SQLite.

use std::time::{Duration, Instant};

use criterion::Criterion;
use diesel::prelude::*;
use encrypted_core::{EncryptionConfiguration, Keyring};
use encrypted_diesel::{Encrypted, LoadDecrypted, Model};

const ROWS: i64 = 10_000;
const CHUNK: usize = 1_000;

mod schema {
    diesel::table! {
        bench_enc (id) {
            id -> BigInt,
            email -> Text,
            display_name -> Text,
            icon_url -> Nullable<Text>,
            secret -> Binary,
        }
    }
    diesel::table! {
        bench_plain (id) {
            id -> BigInt,
            email -> Text,
            display_name -> Text,
            icon_url -> Nullable<Text>,
            secret -> Binary,
        }
    }
}
use schema::{bench_enc, bench_plain};

#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = bench_enc, resource = "users.obot.obot.ai")]
struct EncUser {
    id: i64,
    #[encrypt]
    email: String,
    #[encrypt]
    display_name: String,
    #[encrypt]
    icon_url: Option<String>,
    #[encrypt]
    secret: Vec<u8>,
}

/// The same model without encryption. Inserted with the semantics the derive gives the
/// encrypted record (`None` is NULL, never `DEFAULT`): with Diesel's default, a batch containing
/// an `Option` field is inserted on SQLite one statement per row (SQLite has no `DEFAULT` in a
/// multi-row `VALUES`), which would make the baseline twice as slow and flatter the ratio.
#[derive(Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = bench_plain)]
#[diesel(treat_none_as_default_value = false)]
struct PlainUser {
    id: i64,
    email: String,
    display_name: String,
    icon_url: Option<String>,
    secret: Vec<u8>,
}

fn plain_rows() -> Vec<PlainUser> {
    (0..ROWS)
        .map(|id| PlainUser {
            id,
            email: format!("user{id}@example.com"),
            display_name: format!("User Number {id}"),
            icon_url: Some(format!("https://cdn.example.com/avatars/{id}.png")),
            secret: vec![u8::try_from(id % 251).unwrap_or(0); 32],
        })
        .collect()
}

fn enc_rows(plain: &[PlainUser]) -> Vec<EncUser> {
    plain
        .iter()
        .map(|p| EncUser {
            id: p.id,
            email: p.email.clone(),
            display_name: p.display_name.clone(),
            icon_url: p.icon_url.clone(),
            secret: p.secret.clone(),
        })
        .collect()
}

/// One backend's four measurements.
trait Bench<C> {
    fn insert_plain(c: &mut C, rows: &[PlainUser]);
    fn insert_enc(c: &mut C, rows: &[EncUser]);
    fn insert_chunks(c: &mut C, rows: &[EncUser]);
    fn load_plain(c: &mut C) -> usize;
    fn load_enc(c: &mut C) -> usize;
    fn load_parallel(c: &mut C) -> usize;
    fn load_records(c: &mut C) -> Vec<<EncUser as Model>::Record>;
    /// The stored values of `bench_enc` as they are (strings and bytes).
    fn load_stored(c: &mut C) -> Stored;
    /// Empties `bench_enc` and inserts `rows`, already encrypted, as plain strings and bytes.
    fn insert_stored(c: &mut C, rows: &Stored);
}

struct Run;

// Each insert run empties the table first. On PostgreSQL that is `TRUNCATE`: a `DELETE` would
// leave every earlier run's rows behind as dead tuples, and autovacuum never visits temporary
// tables, so the loads would scan an ever-growing table (larger for the encrypted one, whose rows
// are wider) instead of measuring the models. SQLite's `DELETE` without `WHERE` already truncates.
macro_rules! bench_impl {
    ($conn:ty, $empty:literal) => {
        impl Bench<$conn> for Run {
            fn insert_plain(c: &mut $conn, rows: &[PlainUser]) {
                diesel::sql_query(format!($empty, "bench_plain"))
                    .execute(c)
                    .expect("empty");
                for chunk in rows.chunks(CHUNK) {
                    diesel::insert_into(bench_plain::table)
                        .values(chunk)
                        .execute(c)
                        .expect("insert");
                }
            }
            fn insert_enc(c: &mut $conn, rows: &[EncUser]) {
                diesel::sql_query(format!($empty, "bench_enc"))
                    .execute(c)
                    .expect("empty");
                for chunk in rows.chunks(CHUNK) {
                    diesel::insert_into(bench_enc::table)
                        .values(chunk)
                        .execute(c)
                        .expect("insert");
                }
            }
            fn insert_chunks(c: &mut $conn, rows: &[EncUser]) {
                diesel::sql_query(format!($empty, "bench_enc"))
                    .execute(c)
                    .expect("empty");
                encrypted_diesel::encrypt_chunks(rows, CHUNK, |records| {
                    diesel::insert_into(bench_enc::table)
                        .values(records)
                        .execute(c)
                        .map(drop)
                })
                .expect("insert");
            }
            fn load_plain(c: &mut $conn) -> usize {
                bench_plain::table
                    .select(PlainUser::as_select())
                    .load::<PlainUser>(c)
                    .expect("load")
                    .len()
            }
            fn load_enc(c: &mut $conn) -> usize {
                bench_enc::table
                    .select(EncUser::as_select())
                    .load::<EncUser>(c)
                    .expect("load")
                    .len()
            }
            fn load_stored(c: &mut $conn) -> Stored {
                bench_enc::table
                    .select((
                        bench_enc::id,
                        bench_enc::email,
                        bench_enc::display_name,
                        bench_enc::icon_url,
                        bench_enc::secret,
                    ))
                    .order(bench_enc::id)
                    .load(c)
                    .expect("raw load")
            }
            fn insert_stored(c: &mut $conn, rows: &Stored) {
                diesel::sql_query(format!($empty, "bench_enc"))
                    .execute(c)
                    .expect("empty");
                for chunk in rows.chunks(CHUNK) {
                    let values: Vec<_> = chunk
                        .iter()
                        .map(|(id, email, name, icon, secret)| {
                            (
                                bench_enc::id.eq(*id),
                                bench_enc::email.eq(email),
                                bench_enc::display_name.eq(name),
                                bench_enc::icon_url.eq(icon.as_deref()),
                                bench_enc::secret.eq(secret),
                            )
                        })
                        .collect();
                    diesel::insert_into(bench_enc::table)
                        .values(&values)
                        .execute(c)
                        .expect("insert");
                }
            }
            fn load_records(c: &mut $conn) -> Vec<<EncUser as Model>::Record> {
                bench_enc::table
                    .select(<EncUser as Model>::Record::as_select())
                    .load(c)
                    .expect("load")
            }
            fn load_parallel(c: &mut $conn) -> usize {
                bench_enc::table
                    .load_decrypted::<EncUser>(c)
                    .expect("load")
                    .len()
            }
        }
    };
}
bench_impl!(SqliteConnection, "DELETE FROM {}");
bench_impl!(PgConnection, "TRUNCATE {}");

fn setup(c: &mut impl diesel::connection::SimpleConnection, ddl: &[&str]) {
    for stmt in ddl {
        c.batch_execute(stmt).expect("create table");
    }
}

fn criterion_group<C>(criterion: &mut Criterion, name: &str, c: &mut C)
where
    Run: Bench<C>,
{
    let plain = plain_rows();
    let enc = enc_rows(&plain);
    let mut group = criterion.benchmark_group(name);
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("insert 10k plaintext", |b| {
        b.iter(|| Run::insert_plain(c, &plain))
    });
    group.bench_function("insert 10k encrypted", |b| {
        b.iter(|| Run::insert_enc(c, &enc))
    });
    group.bench_function("encrypt_chunks + insert 10k encrypted", |b| {
        b.iter(|| Run::insert_chunks(c, &enc))
    });
    Run::insert_plain(c, &plain);
    Run::insert_enc(c, &enc);
    group.bench_function("load 10k plaintext", |b| b.iter(|| Run::load_plain(c)));
    group.bench_function("load 10k encrypted", |b| b.iter(|| Run::load_enc(c)));
    group.bench_function("load_decrypted 10k encrypted", |b| {
        b.iter(|| Run::load_parallel(c))
    });
    group.finish();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The stored values of `bench_enc`, as read without the model.
type Stored = Vec<(i64, String, String, Option<String>, Vec<u8>)>;

/// The cryptography of a load alone, no database: base64-decodes and decrypts every stored value
/// of `stored` through the keyring, with the contexts the model uses.
fn decrypt_only(ring: &encrypted_core::ResourceKeyring, stored: &Stored) -> Duration {
    let open = |text: &str, aad: &str| {
        let bytes = encrypted_core::decode_base64(text).expect("base64");
        ring.decrypt(&bytes, aad.as_bytes())
            .expect("decrypt")
            .plaintext
            .len()
    };
    let t = Instant::now();
    let mut n = 0;
    for (_, email, name, icon, secret) in stored {
        n +=
            open(email, "users.obot.obot.ai/email") + open(name, "users.obot.obot.ai/display_name");
        n += icon
            .as_deref()
            .map_or(0, |i| open(i, "users.obot.obot.ai/icon_url"));
        n += ring
            .decrypt(secret, b"users.obot.obot.ai/secret")
            .expect("decrypt")
            .plaintext
            .len();
    }
    let elapsed = t.elapsed();
    assert!(n > 0);
    elapsed
}

/// Interleaved runs, so both models see the same machine state; prints the ratios, and the share
/// of the encrypted load that is the cryptography alone.
fn ratios<C>(name: &str, c: &mut C, runs: usize, ring: &encrypted_core::ResourceKeyring)
where
    Run: Bench<C>,
{
    let plain = plain_rows();
    let enc = enc_rows(&plain);
    let (mut ip, mut ie, mut lp, mut le) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ld, mut lr, mut ir, mut ic) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    Run::insert_enc(c, &enc);
    let stored = Run::load_stored(c);
    for _ in 0..runs {
        let t = Instant::now();
        Run::insert_plain(c, &plain);
        ip.push(t.elapsed());
        let t = Instant::now();
        Run::insert_enc(c, &enc);
        ie.push(t.elapsed());
        let t = Instant::now();
        Run::insert_chunks(c, &enc);
        ic.push(t.elapsed());
        let t = Instant::now();
        Run::insert_stored(c, &stored);
        ir.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(Run::load_plain(c), plain.len());
        lp.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(Run::load_enc(c), enc.len());
        le.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(Run::load_parallel(c), enc.len());
        ld.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(Run::load_stored(c).len(), enc.len());
        lr.push(t.elapsed());
    }
    let (mut ds, mut dp) = (Vec::new(), Vec::new());
    let row = <EncUser as Model>::keys().expect("keys in scope");
    for _ in 0..runs {
        let records = Run::load_records(c);
        let t = Instant::now();
        let n = records
            .into_iter()
            .map(|r| EncUser::decrypt(r, &row).expect("decrypt"))
            .collect::<Vec<_>>()
            .len();
        ds.push(t.elapsed());
        assert_eq!(n, enc.len());
        let records = Run::load_records(c);
        let t = Instant::now();
        let n = encrypted_diesel::decrypt_all::<EncUser>(records)
            .expect("decrypt")
            .len();
        dp.push(t.elapsed());
        assert_eq!(n, enc.len());
    }
    let (ds, dp) = (median(ds), median(dp));
    println!("{name}: decrypting 10k loaded records: one thread {ds:.1?}, decrypt_all {dp:.1?}");
    let crypto = median((0..runs).map(|_| decrypt_only(ring, &stored)).collect());
    let (ip, ie, lp, le, ld) = (median(ip), median(ie), median(lp), median(le), median(ld));
    let (lr, ir, ic) = (median(lr), median(ir), median(ic));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    println!(
        "{name}: insert 10k plaintext {ip:.1?}, encrypted: `insert_into` {ie:.1?}, ratio {:.3}, \
         `encrypt_chunks` ({threads} threads) {ic:.1?}, ratio {:.3} \
         (the same stored values inserted as plain strings and bytes: {ir:.1?} = {:.2}x); \
         load 10k plaintext {lp:.1?}, encrypted: `load` {le:.1?}, ratio {:.3}, \
         `load_decrypted` ({threads} threads) {ld:.1?}, ratio {:.3}; \
         the stored values loaded as they are (strings and bytes, no decoding or decryption) \
         {lr:.1?} = {:.2}x the plaintext load; \
         base64 + decrypt of the same values alone (no database) {crypto:.1?} = {:.2}x the plaintext load",
        ie.as_secs_f64() / ip.as_secs_f64(),
        ic.as_secs_f64() / ip.as_secs_f64(),
        ir.as_secs_f64() / ip.as_secs_f64(),
        le.as_secs_f64() / lp.as_secs_f64(),
        ld.as_secs_f64() / lp.as_secs_f64(),
        lr.as_secs_f64() / lp.as_secs_f64(),
        crypto.as_secs_f64() / lp.as_secs_f64(),
    );
}

fn main() {
    let config = EncryptionConfiguration::from_yaml(
        &encrypted_core::config::generate_aesgcm(&["users.obot.obot.ai"], "k1").expect("config"),
    )
    .expect("config");
    encrypted_diesel::install(Keyring::from_config(&config).expect("keyring")).expect("install");
    let ring = Keyring::from_config(&config)
        .expect("keyring")
        .resource("users.obot.obot.ai")
        .expect("resource");
    let full = std::env::args().any(|a| a == "--bench");

    let mut sqlite = SqliteConnection::establish(":memory:").expect("SQLite");
    setup(
        &mut sqlite,
        &[
            "CREATE TABLE bench_enc (id BIGINT PRIMARY KEY, email TEXT NOT NULL, display_name TEXT NOT NULL, icon_url TEXT, secret BLOB NOT NULL)",
            "CREATE TABLE bench_plain (id BIGINT PRIMARY KEY, email TEXT NOT NULL, display_name TEXT NOT NULL, icon_url TEXT, secret BLOB NOT NULL)",
        ],
    );
    let url = std::env::var("POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/encrypted_test".to_owned());
    let mut pg = PgConnection::establish(&url)
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is unreachable: {e}"));
    setup(
        &mut pg,
        &[
            "CREATE TEMPORARY TABLE bench_enc (id BIGINT PRIMARY KEY, email TEXT NOT NULL, display_name TEXT NOT NULL, icon_url TEXT, secret BYTEA NOT NULL)",
            "CREATE TEMPORARY TABLE bench_plain (id BIGINT PRIMARY KEY, email TEXT NOT NULL, display_name TEXT NOT NULL, icon_url TEXT, secret BYTEA NOT NULL)",
        ],
    );

    let mut criterion = Criterion::default().configure_from_args();
    criterion_group(&mut criterion, "sqlite-memory", &mut sqlite);
    criterion_group(&mut criterion, "postgres", &mut pg);
    criterion.final_summary();

    let runs = if full { 9 } else { 1 };
    ratios("sqlite-memory", &mut sqlite, runs, &ring);
    ratios("postgres", &mut pg, runs, &ring);
}
