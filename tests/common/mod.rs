//! Test support shared by the root package's integration tests.
#![allow(dead_code, reason = "each test binary uses part of the shared code")]

use diesel::prelude::*;
use obot_store::db::Db;

/// The PostgreSQL server of the tests (`POSTGRES_URL`).
pub(crate) fn postgres_url() -> String {
    std::env::var("POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/encrypted_test".to_owned())
}

/// A fresh PostgreSQL database on the tests' server, dropped on drop. A server that cannot be
/// reached fails the test.
pub(crate) struct PgDb {
    admin: String,
    name: String,
    /// Its URL.
    pub(crate) url: String,
}

impl PgDb {
    /// A database named after `tag`, the process and the clock.
    pub(crate) fn new(tag: &str) -> Self {
        let base = postgres_url();
        let (server, _) = base.rsplit_once('/').expect("a database URL");
        let admin = format!("{server}/postgres");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos();
        let name = format!("obot_store_{tag}_{}_{nanos}", std::process::id());
        let mut c = PgConnection::establish(&admin)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .expect("create database");
        Self {
            url: format!("{server}/{name}"),
            admin,
            name,
        }
    }

    /// Its URL with `password` as the user's password, in place of any the server URL has (the
    /// server trusts loopback, so any password works).
    pub(crate) fn url_with_password(&self, password: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("a URL");
        let (user, host) = match rest.rsplit_once('@') {
            Some((userinfo, host)) => (userinfo.split(':').next().unwrap_or("postgres"), host),
            None => ("postgres", rest),
        };
        format!("{scheme}://{user}:{password}@{host}")
    }

    /// The store on it, migrated.
    pub(crate) fn db(&self) -> Db {
        let mut db = Db::connect(&self.url).expect("connect");
        db.migrate().expect("migrate");
        db
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = PgConnection::establish(&self.admin) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut c);
        }
    }
}
