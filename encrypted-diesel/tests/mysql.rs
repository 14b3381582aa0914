//! The suite on MySQL/MariaDB (`MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/encrypted_test`). Fails when the server is unreachable.
#![cfg(feature = "mysql")]

mod common;

type Conn = diesel::MysqlConnection;

fn connect() -> Box<Conn> {
    use diesel::{Connection, RunQueryDsl};
    let url = common::mysql_url();
    let mut c =
        Conn::establish(&url).unwrap_or_else(|e| panic!("MySQL at {url} is unreachable: {e}"));
    // Temporary tables: private to this connection and, unlike CREATE TABLE, no implicit commit.
    for stmt in common::ddl("TEMPORARY ", "BIGINT", "LONGTEXT", "LONGBLOB", "BOOLEAN") {
        diesel::sql_query(stmt)
            .execute(&mut c)
            .expect("create table");
    }
    Box::new(c)
}

suite!(connect());
