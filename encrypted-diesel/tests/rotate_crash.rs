//! A rewrap killed with SIGKILL part-way, then resumed by two rewrap processes at once while the
//! application keeps updating rows, on SQLite (a file), PostgreSQL and MariaDB: no update is
//! lost and every row reads back.
//!
//! A test without the libtest harness: the same binary is the parent (this test) and the
//! rewrap processes it starts (`ROTATE_CHILD=<backend>`), so the rewrap really is another
//! process that is really killed. The kill lands once a fifth of the rows are under the new key,
//! counted by their stored prefix (the first rewrap is paced, so it lands part-way on any
//! machine).

#[macro_use]
#[path = "rotation/mod.rs"]
mod rotation;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use encrypted_diesel::rotate::{self, Options, Rate};
use encrypted_diesel::with_keyring;
use rotation::*;

const ROWS: i64 = 20_000;
const BATCH: usize = 250;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            "mysql" => Backend::Mysql,
            other => panic!("unknown backend {other}"),
        }
    }
}

/// A connection of either kind, so the parent and the children share code.
enum Conn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
    Mysql(MysqlConnection),
}

macro_rules! on {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Pg($c) => $body,
            Conn::Mysql($c) => $body,
        }
    };
}

fn connect(backend: Backend, url: &str) -> Conn {
    match backend {
        Backend::Sqlite => {
            let mut c = SqliteConnection::establish(url).expect("SQLite");
            diesel::sql_query("PRAGMA busy_timeout = 30000")
                .execute(&mut c)
                .expect("busy timeout");
            Conn::Sqlite(c)
        }
        Backend::Postgres => Conn::Pg(
            PgConnection::establish(url)
                .unwrap_or_else(|e| panic!("PostgreSQL at {url} is unreachable: {e}")),
        ),
        Backend::Mysql => Conn::Mysql(
            MysqlConnection::establish(url)
                .unwrap_or_else(|e| panic!("MySQL at {url} is unreachable: {e}")),
        ),
    }
}

/// A fresh database for `backend`; returns its URL and a cleanup.
fn create_database(backend: Backend, dir: &std::path::Path) -> (String, Box<dyn FnOnce()>) {
    let name = format!("rot_crash_{}", std::process::id());
    let server = |url: String| -> (String, String) {
        let (server, _) = url.rsplit_once('/').expect("a database URL");
        (server.to_owned(), format!("{server}/{name}"))
    };
    match backend {
        Backend::Sqlite => {
            let path = dir.join("rotate.db");
            let url = path.to_str().expect("utf-8").to_owned();
            let mut c = SqliteConnection::establish(&url).expect("SQLite");
            diesel::sql_query("PRAGMA journal_mode = WAL")
                .execute(&mut c)
                .expect("wal");
            for stmt in ddl("", "TEXT", "TEXT", "BLOB") {
                diesel::sql_query(stmt).execute(&mut c).expect("ddl");
            }
            (url, Box::new(|| {}))
        }
        Backend::Postgres => {
            let (server, url) = server(postgres_url());
            let admin = format!("{server}/postgres");
            let mut a = PgConnection::establish(&admin)
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is unreachable: {e}"));
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut a)
                .expect("create database");
            let mut c = PgConnection::establish(&url).expect("new database");
            for stmt in ddl("", "TEXT", "TEXT", "BYTEA") {
                diesel::sql_query(stmt).execute(&mut c).expect("ddl");
            }
            (
                url,
                Box::new(move || {
                    let _ = diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
                        .execute(&mut a);
                }),
            )
        }
        Backend::Mysql => {
            let (_, url) = server(mysql_url());
            let mut a = MysqlConnection::establish(&mysql_url())
                .unwrap_or_else(|e| panic!("MySQL at {} is unreachable: {e}", mysql_url()));
            diesel::sql_query(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
                .execute(&mut a)
                .expect("create database");
            let mut c = MysqlConnection::establish(&url).expect("new database");
            for stmt in ddl("", "VARCHAR(64)", "LONGTEXT", "LONGBLOB") {
                diesel::sql_query(stmt).execute(&mut c).expect("ddl");
            }
            (
                url,
                Box::new(move || {
                    let _ = diesel::sql_query(format!("DROP DATABASE {name}")).execute(&mut a);
                }),
            )
        }
    }
}

/// Rows whose `mrn` is under k2, by the stored prefix: `k8s:enc:aesgcm:v1:k2:` is 21 bytes, so
/// its base64 is exactly the first 28 characters of every value it wrote.
fn under_k2(c: &mut Conn) -> i64 {
    let prefix = encrypted_core::encode_base64(b"k8s:enc:aesgcm:v1:k2:");
    assert_eq!(prefix.len(), 28);
    let like = format!("{prefix}%");
    on!(c, |c| rot_patients::table
        .filter(rot_patients::mrn.like(like))
        .count()
        .get_result::<i64>(c)
        .expect("count"))
}

fn child(backend: Backend) {
    let url = std::env::var("ROTATE_URL").expect("ROTATE_URL");
    let paced = std::env::var("ROTATE_PACED").is_ok();
    let mut opts = Options::default().batch_size(BATCH).jobs(2);
    if paced {
        opts = opts.rate(Rate::Pause(Duration::from_millis(15)));
    }
    let summary = with_keyring(rotating_keys(), || match connect(backend, &url) {
        Conn::Pg(mut c) => {
            let connect = || PgConnection::establish(&url);
            rotate::rewrap_parallel::<Patient, _>(&mut c, &connect, &opts)
        }
        Conn::Mysql(mut c) => {
            let connect = || MysqlConnection::establish(&url);
            rotate::rewrap_parallel::<Patient, _>(&mut c, &connect, &opts)
        }
        Conn::Sqlite(mut c) => rotate::rewrap::<Patient, _>(&mut c, &opts),
    });
    match summary {
        Ok(s) => println!(
            "scanned {} rewrapped {} conflicts {} undecryptable {}",
            s.scanned, s.rewrapped, s.conflicts, s.undecryptable
        ),
        Err(e) => {
            eprintln!("rewrap failed: {e}");
            std::process::exit(1);
        }
    }
}

fn spawn(backend: Backend, url: &str, paced: bool) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.env("ROTATE_CHILD", backend.name())
        .env("ROTATE_URL", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if paced {
        cmd.env("ROTATE_PACED", "1");
    }
    cmd.spawn().expect("spawn a rewrap process")
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "a rewrap process failed: {text}");
    text
}

fn scenario(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, cleanup) = create_database(backend, dir.path());
    let mut c = connect(backend, &url);
    with_keyring(old_keys(), || {
        let all: Vec<Patient> = (1..=ROWS).map(patient).collect();
        for chunk in all.chunks(1000) {
            on!(&mut c, |c| diesel::insert_into(rot_patients::table)
                .values(chunk)
                .execute(c)
                .expect("seed"));
        }
    });

    // A paced rewrap, killed once a fifth of the rows are under k2.
    let started = Instant::now();
    let mut first = spawn(backend, &url, true);
    loop {
        let done = under_k2(&mut c);
        if done >= ROWS / 5 {
            break;
        }
        if let Some(status) = first.try_wait().expect("poll") {
            panic!("the first rewrap ended ({status}) before the kill, at {done} rows");
        }
        assert!(started.elapsed() < Duration::from_secs(600), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");
    let at_kill = under_k2(&mut c);

    // The application updates rows while two rewrap processes resume the work.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, url) = (Arc::clone(&stop), url.clone());
        std::thread::spawn(move || {
            let mut c = connect(backend, &url);
            let mut updated: Vec<(i64, String)> = Vec::new();
            let mut state = 7u64;
            with_keyring(rotating_keys(), || {
                while !stop.load(Ordering::Relaxed) {
                    // A small LCG: rows all over the table, some more than once.
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    let id = i64::try_from((state >> 33) % ROWS as u64).expect("small") + 1;
                    let mut p = patient(id);
                    p.mrn = format!("updated-{}-{id}", updated.len());
                    let changed = on!(&mut c, |c| diesel::update(rot_patients::table.find(id))
                        .set(&p)
                        .execute(c)
                        .expect("application update"));
                    assert_eq!(changed, 1);
                    updated.push((id, p.mrn));
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            updated
        })
    };
    let resumed = Instant::now();
    let (a, b) = (spawn(backend, &url, false), spawn(backend, &url, false));
    let (a, b) = (finish(a), finish(b));
    let resume_secs = resumed.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let updated = writer.join().expect("writer");
    assert!(
        !updated.is_empty(),
        "the application wrote during the rewrap"
    );

    // Everything current and readable; the last update of each row is what it holds.
    with_keyring(new_keys(), || {
        let s = on!(&mut c, |c| rotate::status::<Patient, _>(c).expect("status"));
        assert_eq!(
            (s.rows, s.current, s.stale, s.plaintext, s.undecryptable),
            (ROWS as u64, ROWS as u64, 0, 0, 0),
            "{s:?}"
        );
        let rows: Vec<Patient> = on!(&mut c, |c| rot_patients::table
            .order(rot_patients::id)
            .select(Patient::as_select())
            .load(c)
            .expect("every row reads with the new key alone"));
        let mut expected: std::collections::BTreeMap<i64, String> =
            std::collections::BTreeMap::new();
        for (id, mrn) in &updated {
            expected.insert(*id, mrn.clone());
        }
        let mut lost = 0;
        for p in &rows {
            let want = expected
                .get(&p.id)
                .cloned()
                .unwrap_or_else(|| patient(p.id).mrn);
            if p.mrn != want {
                lost += 1;
            }
        }
        assert_eq!(lost, 0, "updates lost");
        println!(
            "{}: {ROWS} rows; killed at {at_kill} under k2 ({} stale); resumed by two processes in \
             {resume_secs:.1} s [{} | {}] while the application updated {} rows ({} distinct): 0 \
             lost, {} of {ROWS} readable with k2 alone",
            backend.name(),
            ROWS - at_kill,
            a.trim(),
            b.trim(),
            updated.len(),
            expected.len(),
            rows.len()
        );
    });
    drop(c);
    cleanup();
}

fn main() {
    if let Ok(backend) = std::env::var("ROTATE_CHILD") {
        child(Backend::parse(&backend));
        return;
    }
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::Mysql] {
        scenario(backend);
    }
}
