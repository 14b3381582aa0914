//! The suite on SQLite: in memory and in a file.
#![cfg(feature = "sqlite")]

mod common;

type Conn = diesel::SqliteConnection;

fn create(c: &mut Conn) {
    use diesel::RunQueryDsl;
    for stmt in common::ddl("", "BIGINT", "TEXT", "BLOB", "BOOLEAN") {
        diesel::sql_query(stmt).execute(c).expect("create table");
    }
}

mod memory {
    use super::*;

    fn memory() -> Box<Conn> {
        use diesel::Connection;
        let mut c = Conn::establish(":memory:").expect("in-memory SQLite");
        create(&mut c);
        Box::new(c)
    }

    suite!(memory());
}

mod file {
    use super::*;

    /// A connection to a database file in a fresh temporary directory, removed on drop.
    pub(crate) struct FileConn(
        Conn,
        #[expect(dead_code, reason = "kept for its Drop")] tempfile::TempDir,
    );

    impl std::ops::Deref for FileConn {
        type Target = Conn;
        fn deref(&self) -> &Conn {
            &self.0
        }
    }
    impl std::ops::DerefMut for FileConn {
        fn deref_mut(&mut self) -> &mut Conn {
            &mut self.0
        }
    }

    fn file() -> FileConn {
        use diesel::Connection;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("test.db");
        let mut c = Conn::establish(path.to_str().expect("utf-8 path")).expect("SQLite file");
        create(&mut c);
        FileConn(c, dir)
    }

    suite!(file());
}
