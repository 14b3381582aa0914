//! The suite on PostgreSQL (`POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/encrypted_test`). Fails when the server is unreachable.
#![cfg(feature = "postgres")]

mod common;

type Conn = diesel::PgConnection;

fn connect() -> Box<Conn> {
    use diesel::{Connection, RunQueryDsl};
    let url = common::postgres_url();
    let mut c =
        Conn::establish(&url).unwrap_or_else(|e| panic!("PostgreSQL at {url} is unreachable: {e}"));
    // Temporary tables: private to this connection, so tests run in parallel.
    for stmt in common::ddl("TEMPORARY ", "BIGINT", "TEXT", "BYTEA", "BOOLEAN") {
        diesel::sql_query(stmt)
            .execute(&mut c)
            .expect("create table");
    }
    Box::new(c)
}

suite!(connect());
