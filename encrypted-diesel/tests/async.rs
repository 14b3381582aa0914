//! The same models through diesel-async: `AsyncPgConnection`, `AsyncMysqlConnection`,
//! `SyncConnectionWrapper<SqliteConnection>`, and a deadpool pool. The keys are put in scope
//! with [`encrypted_diesel::scope`], which follows the future across polls and threads.
#![cfg(all(
    feature = "async",
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql"
))]

mod common;

macro_rules! insert_all {
    (true, $c:ident, $users:ident) => {
        diesel::insert_into(enc_users::table)
            .values($users)
            .execute($c)
            .await
            .expect("batch insert");
    };
    (false, $c:ident, $users:ident) => {
        for u in $users {
            diesel::insert_into(enc_users::table)
                .values(u)
                .execute(&mut *$c)
                .await
                .expect("insert");
        }
    };
}

macro_rules! async_suite {
    ($conn:ty, batch = $batch:tt, $connect:expr) => {
        use diesel::prelude::*;
        use diesel_async::{AsyncConnection, RunQueryDsl};
        use encrypted_diesel::Error;
        use $crate::common::*;

        /// Batch insert where the connection supports it (diesel-async's SQLite wrapper
        /// does not support batch inserts, for any model).
        async fn insert_all(c: &mut $conn, users: &[User]) {
            insert_all!($batch, c, users);
        }

        async fn conn() -> $conn {
            let mut c: $conn = $connect;
            c.begin_test_transaction()
                .await
                .expect("begin test transaction");
            c
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn round_trip_batch_lookup_update() {
            let mut c = conn().await;
            encrypted_diesel::scope(keys(), async move {
                let users: Vec<User> = (1..=5).map(user).collect();
                insert_all(&mut c, &users).await;
                diesel::insert_into(enc_users::table)
                    .values(&user(6))
                    .execute(&mut c)
                    .await
                    .expect("insert");
                let all: Vec<User> = enc_users::table
                    .select(User::as_select())
                    .order(enc_users::id)
                    .load(&mut c)
                    .await
                    .expect("load");
                assert!(all[..5] == users[..] && all[5] == user(6));
                let found: User = enc_users::table
                    .filter(User::email_eq("USER2@example.com"))
                    .select(User::as_select())
                    .first(&mut c)
                    .await
                    .expect("lookup");
                assert!(found == users[1]);
                let mut changed = found.clone();
                changed.display_name = "changed".into();
                diesel::update(enc_users::table.find(2))
                    .set(&changed)
                    .execute(&mut c)
                    .await
                    .expect("update");
                let back: User = enc_users::table
                    .find(2)
                    .select(User::as_select())
                    .first(&mut c)
                    .await
                    .expect("reload");
                assert!(back == changed);
            })
            .await;
        }

        /// Many models encrypted by `encrypt_all` and inserted through diesel-async, loaded as
        /// records and decrypted together by `decrypt_all`, with the keys of the task's scope:
        /// the same models, in order.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn encrypt_all_and_decrypt_all_around_async_queries() {
            use encrypted_diesel::Model;
            let mut c = conn().await;
            encrypted_diesel::scope(keys(), async move {
                let users: Vec<User> = (1..=600).map(user).collect();
                // Encrypted together on several threads, inserted through diesel-async.
                let records: Vec<<User as Model>::Record> = encrypted_diesel::encrypt_all(&users);
                for record in &records {
                    diesel::insert_into(enc_users::table)
                        .values(record)
                        .execute(&mut c)
                        .await
                        .expect("insert");
                }
                let records: Vec<<User as Model>::Record> = enc_users::table
                    .select(<User as Model>::Record::as_select())
                    .order(enc_users::id)
                    .load(&mut c)
                    .await
                    .expect("records");
                let all = encrypted_diesel::decrypt_all::<User>(records).expect("decrypt_all");
                assert!(all == users, "decrypt_all differs from the inserted rows");
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn moved_ciphertext_and_missing_keyring_are_errors() {
            let mut c = conn().await;
            let e = diesel::insert_into(enc_users::table)
                .values(&user(1))
                .execute(&mut c)
                .await
                .expect_err("no keyring");
            match &e {
                diesel::result::Error::SerializationError(inner) => {
                    assert!(matches!(
                        inner.downcast_ref::<Error>(),
                        Some(Error::NoKeyring)
                    ));
                }
                other => panic!("expected a serialization error, found {other:?}"),
            }
            encrypted_diesel::scope(keys(), async move {
                let mut users: Vec<User> = (1..=2).map(user).collect();
                users[0].display_name = CANARY.into();
                insert_all(&mut c, &users).await;
                let stolen: String = enc_users::table
                    .find(1)
                    .select(enc_users::display_name)
                    .first(&mut c)
                    .await
                    .expect("raw");
                assert!(!stolen.contains(CANARY));
                diesel::update(enc_users::table.find(2))
                    .set(enc_users::display_name.eq(&stolen))
                    .execute(&mut c)
                    .await
                    .expect("tamper");
                let e = enc_users::table
                    .find(2)
                    .select(User::as_select())
                    .first::<User>(&mut c)
                    .await
                    .expect_err("moved ciphertext");
                assert!(!format!("{e} {e:?}").contains(CANARY));
                match &e {
                    diesel::result::Error::DeserializationError(inner) => assert!(matches!(
                        inner.downcast_ref::<Error>(),
                        Some(Error::Crypto {
                            field: "display_name",
                            ..
                        })
                    )),
                    other => panic!("expected a deserialization error, found {other:?}"),
                }
            })
            .await;
        }
    };
}

mod postgres {
    type Conn = diesel_async::AsyncPgConnection;

    async_suite!(Conn, batch = true, {
        let url = postgres_url();
        let mut c = Conn::establish(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is unreachable: {e}"));
        for stmt in ddl("TEMPORARY ", "BIGINT", "TEXT", "BYTEA", "BOOLEAN") {
            diesel::sql_query(stmt)
                .execute(&mut c)
                .await
                .expect("create table");
        }
        c
    });

    /// A deadpool pool of async PostgreSQL connections; each task borrows one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deadpool_pool_round_trip() {
        use diesel_async::pooled_connection::AsyncDieselConnectionManager;
        use diesel_async::pooled_connection::deadpool::Pool;
        let manager = AsyncDieselConnectionManager::<Conn>::new(postgres_url());
        let pool = Pool::builder(manager).max_size(2).build().expect("pool");
        let mut tasks = Vec::new();
        for task in 0..4i64 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(encrypted_diesel::scope(keys(), async move {
                let mut c = pool.get().await.expect("pooled PostgreSQL connection");
                for stmt in ddl("TEMPORARY ", "BIGINT", "TEXT", "BYTEA", "BOOLEAN") {
                    // Temporary tables live as long as the pooled connection (no test
                    // transaction here: the pool would hand it out again still open); a reused
                    // connection already has them.
                    let stmt = stmt.replace("TABLE ", "TABLE IF NOT EXISTS ");
                    diesel::sql_query(stmt)
                        .execute(&mut c)
                        .await
                        .expect("create table");
                }
                let u = user(100 + task);
                diesel::insert_into(enc_users::table)
                    .values(&u)
                    .execute(&mut c)
                    .await
                    .expect("insert");
                let back: User = enc_users::table
                    .find(100 + task)
                    .select(User::as_select())
                    .first(&mut c)
                    .await
                    .expect("load");
                assert!(back == u);
            })));
        }
        for t in tasks {
            t.await.expect("task");
        }
    }
}

mod mysql {
    type Conn = diesel_async::AsyncMysqlConnection;

    async_suite!(Conn, batch = true, {
        let url = mysql_url();
        let mut c = Conn::establish(&url)
            .await
            .unwrap_or_else(|e| panic!("MySQL at {url} is unreachable: {e}"));
        for stmt in ddl("TEMPORARY ", "BIGINT", "LONGTEXT", "LONGBLOB", "BOOLEAN") {
            diesel::sql_query(stmt)
                .execute(&mut c)
                .await
                .expect("create table");
        }
        c
    });
}

mod sqlite {
    type Conn =
        diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>;

    async_suite!(Conn, batch = false, {
        let mut c = Conn::establish(":memory:").await.expect("in-memory SQLite");
        for stmt in ddl("", "BIGINT", "TEXT", "BLOB", "BOOLEAN") {
            diesel::sql_query(stmt)
                .execute(&mut c)
                .await
                .expect("create table");
        }
        c
    });
}
