//! The rotation engine (`encrypted_diesel::rotate`) on every sync backend, with user models that
//! are not Obot's: SQLite in memory and in a file, PostgreSQL and MySQL/MariaDB (temporary
//! tables, private to the test's connection; the servers must be reachable: `POSTGRES_URL`,
//! `MYSQL_URL`).
#![cfg(all(feature = "sqlite", feature = "postgres", feature = "mysql"))]

#[macro_use]
#[path = "rotation/mod.rs"]
mod rotation;

mod sqlite_memory {
    type Conn = diesel::SqliteConnection;

    fn conn() -> Box<Conn> {
        use diesel::{Connection, RunQueryDsl};
        let mut c = Conn::establish(":memory:").expect("SQLite");
        for stmt in crate::rotation::ddl("", "TEXT", "TEXT", "BLOB") {
            diesel::sql_query(stmt).execute(&mut c).expect("ddl");
        }
        Box::new(c)
    }

    rotation_suite!(conn());
}

mod sqlite_file {
    type Conn = diesel::SqliteConnection;

    fn conn() -> Box<Conn> {
        use diesel::{Connection, RunQueryDsl};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.keep().join("rotate.db");
        let mut c = Conn::establish(path.to_str().expect("utf-8")).expect("SQLite file");
        diesel::sql_query("PRAGMA journal_mode = WAL")
            .execute(&mut c)
            .expect("wal");
        for stmt in crate::rotation::ddl("", "TEXT", "TEXT", "BLOB") {
            diesel::sql_query(stmt).execute(&mut c).expect("ddl");
        }
        Box::new(c)
    }

    rotation_suite!(conn());
}

mod postgres {
    type Conn = diesel::PgConnection;

    fn conn() -> Box<Conn> {
        use diesel::{Connection, RunQueryDsl};
        let url = crate::rotation::postgres_url();
        let mut c = Conn::establish(&url)
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is unreachable: {e}"));
        for stmt in crate::rotation::ddl("TEMPORARY ", "TEXT", "TEXT", "BYTEA") {
            diesel::sql_query(stmt).execute(&mut c).expect("ddl");
        }
        Box::new(c)
    }

    rotation_suite!(conn());
}

pub(crate) mod mysql {
    type Conn = diesel::MysqlConnection;

    pub(crate) fn conn() -> Box<Conn> {
        use diesel::{Connection, RunQueryDsl};
        let url = crate::rotation::mysql_url();
        let mut c =
            Conn::establish(&url).unwrap_or_else(|e| panic!("MySQL at {url} is unreachable: {e}"));
        for stmt in crate::rotation::ddl("TEMPORARY ", "VARCHAR(64)", "LONGTEXT", "LONGBLOB") {
            diesel::sql_query(stmt).execute(&mut c).expect("ddl");
        }
        Box::new(c)
    }

    rotation_suite!(conn());
}

/// MySQL writes a batch in one statement, split where its values would not fit in a packet.
mod mysql_batches {
    use diesel::prelude::*;
    use encrypted_diesel::rotate::{self, Options};
    use encrypted_diesel::with_keyring;
    use std::sync::{Arc, Mutex};

    use crate::rotation::*;

    /// The `UPDATE` statements of `rot_notes` the connection runs from now on.
    fn count_updates(c: &mut diesel::MysqlConnection) -> Arc<Mutex<usize>> {
        let n = Arc::new(Mutex::new(0));
        let seen = Arc::clone(&n);
        c.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
            if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event
                && query.to_string().starts_with("UPDATE `rot_notes`")
            {
                *seen.lock().expect("count") += 1;
            }
        });
        n
    }

    #[test]
    fn a_batch_is_one_statement_and_large_values_split_it_under_the_packet_limit() {
        let mut c = super::mysql::conn();
        with_keyring(old_keys(), || {
            for i in 0..40 {
                diesel::insert_into(rot_notes::table)
                    .values(&note("acme", i))
                    .execute(&mut *c)
                    .expect("insert note");
            }
        });
        let updates = count_updates(&mut c);
        let opts = Options::default().batch_size(100);
        with_keyring(rotating_keys(), || {
            let done = rotate::rewrap::<Note, _>(&mut *c, &opts).expect("rewrap");
            assert_eq!((done.rewrapped, done.conflicts), (40, 0), "{done:?}");
        });
        assert_eq!(
            *updates.lock().expect("count"),
            1,
            "40 rows, one batch: one UPDATE"
        );

        // 64 bodies of 300 kB: about 26 MB of base64, more than MariaDB's default
        // max_allowed_packet (16 MiB), which would refuse them in one statement.
        let big = |i: usize| Note {
            tenant: "zeta".to_owned(),
            slug: format!("big-{i:02}"),
            body: format!("{CANARY} {i} {}", "y".repeat(300_000)),
            email: None,
        };
        with_keyring(old_keys(), || {
            for i in 0..64 {
                diesel::insert_into(rot_notes::table)
                    .values(&big(i))
                    .execute(&mut *c)
                    .expect("insert a large note");
            }
        });
        *updates.lock().expect("count") = 0;
        with_keyring(rotating_keys(), || {
            let done = rotate::rewrap::<Note, _>(&mut *c, &opts).expect("rewrap large values");
            assert_eq!(
                (done.scanned, done.rewrapped, done.conflicts),
                (104, 64, 0),
                "{done:?}"
            );
        });
        let statements = *updates.lock().expect("count");
        // Each statement carries at most MYSQL_BATCH_BYTES of values (a row above it alone).
        let per = encrypted_diesel::__private::MYSQL_BATCH_BYTES / 400_000;
        assert_eq!(statements, 64usize.div_ceil(per), "{statements} statements");
        with_keyring(new_keys(), || {
            let s = rotate::status::<Note, _>(&mut *c).expect("status");
            assert_eq!(
                (s.rows, s.stale, s.plaintext, s.undecryptable),
                (104, 0, 0, 0),
                "{s:?}"
            );
            let rows: Vec<Note> = rot_notes::table
                .filter(rot_notes::tenant.eq("zeta"))
                .order(rot_notes::slug)
                .select(Note::as_select())
                .load(&mut *c)
                .expect("load");
            assert_eq!(rows.len(), 64);
            assert!(
                rows.iter().enumerate().all(|(i, n)| *n == big(i)),
                "every value reads back"
            );
        });
    }
}
