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

mod mysql {
    type Conn = diesel::MysqlConnection;

    fn conn() -> Box<Conn> {
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
