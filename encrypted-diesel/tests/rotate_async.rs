//! The rotation engine through diesel-async (`encrypted_diesel::rotate::async`):
//! `AsyncPgConnection`, `AsyncMysqlConnection` and `SyncConnectionWrapper<SqliteConnection>`,
//! with the same user models and seeded mix as the sync suite. The keys are put in scope with
//! [`encrypted_diesel::scope`].
#![cfg(all(
    feature = "async",
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql"
))]

#[path = "rotation/mod.rs"]
mod rotation;

macro_rules! async_rotation_suite {
    ($conn:ty, $connect:expr) => {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use encrypted_diesel::rotate::{Options, r#async as rotate};
        use $crate::rotation::*;

        async fn conn() -> $conn {
            $connect
        }

        async fn insert_patients(c: &mut $conn, ids: &[i64]) {
            for id in ids {
                diesel::insert_into(rot_patients::table)
                    .values(&patient(*id))
                    .execute(&mut *c)
                    .await
                    .expect("insert");
            }
        }

        /// The sync suite's mix: 1–3 k2, 4–5 k1, 6–7 plaintext (flag false), 8 tampered, 9
        /// drifted.
        async fn seed(c: &mut $conn) {
            encrypted_diesel::scope(
                keys(&[("k2", K2)], &["l1"]),
                insert_patients(c, &[1, 2, 3, 8, 9]),
            )
            .await;
            encrypted_diesel::scope(old_keys(), insert_patients(c, &[4, 5])).await;
            for (id, mrn) in [(6i64, "MRN1"), (7, "old-mrn-7")] {
                diesel::insert_into(rot_patients::table)
                    .values((
                        rot_patients::id.eq(id),
                        rot_patients::mrn.eq(mrn),
                        rot_patients::hashed_mrn.eq(Patient::mrn_hash(mrn)),
                        rot_patients::chart.eq(None::<Vec<u8>>),
                        rot_patients::encrypted.eq(false),
                    ))
                    .execute(&mut *c)
                    .await
                    .expect("legacy row");
            }
            let stored: String = rot_patients::table
                .find(8i64)
                .select(rot_patients::mrn)
                .first(&mut *c)
                .await
                .expect("stored");
            diesel::update(rot_patients::table.find(8i64))
                .set(rot_patients::mrn.eq(tamper(&stored)))
                .execute(&mut *c)
                .await
                .expect("tamper");
            diesel::update(rot_patients::table.find(9i64))
                .set(rot_patients::hashed_mrn.eq(Patient::mrn_hash("someone else")))
                .execute(&mut *c)
                .await
                .expect("drift");
        }

        fn counts(s: &encrypted_diesel::rotate::TableStatus) -> (u64, u64, u64, u64, u64, u64) {
            (
                s.rows,
                s.current,
                s.stale,
                s.plaintext,
                s.undecryptable,
                s.drifted,
            )
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn status_rewrap_verify_and_repair() {
            let mut c = conn().await;
            seed(&mut c).await;
            encrypted_diesel::scope(rotating_keys(), async move {
                let opts = Options::default().batch_size(2);
                let s = rotate::status::<Patient, _>(&mut c, &opts)
                    .await
                    .expect("status");
                assert_eq!(counts(&s), (9, 4, 2, 2, 1, 1), "{s:?}");
                let dry = rotate::rewrap::<Patient, _>(&mut c, &opts.clone().dry_run(true))
                    .await
                    .expect("dry run");
                assert_eq!((dry.scanned, dry.rewrapped), (9, 4));
                let done = rotate::rewrap::<Patient, _>(&mut c, &opts)
                    .await
                    .expect("rewrap");
                assert_eq!(
                    (
                        done.scanned,
                        done.rewrapped,
                        done.conflicts,
                        done.undecryptable
                    ),
                    (9, 4, 0, 1),
                    "{done:?}"
                );
                let s = rotate::status::<Patient, _>(&mut c, &opts)
                    .await
                    .expect("status");
                assert_eq!(counts(&s), (9, 8, 0, 0, 1, 1), "{s:?}");
                let v = rotate::verify::<Patient, _>(&mut c, &opts)
                    .await
                    .expect("verify");
                assert_eq!(v.drifted.len(), 1);
                assert_eq!(v.drifted[0].key, "(9,)");
                let fixed = rotate::rewrap::<Patient, _>(&mut c, &opts.clone().repair_hashes(true))
                    .await
                    .expect("repair");
                assert_eq!((fixed.rewrapped, fixed.repaired), (1, 1));
                let s = rotate::status::<Patient, _>(&mut c, &opts)
                    .await
                    .expect("status");
                assert_eq!(counts(&s), (9, 8, 0, 0, 1, 0), "{s:?}");
                let legacy: Patient = rot_patients::table
                    .find(6i64)
                    .select(Patient::as_select())
                    .first(&mut c)
                    .await
                    .expect("legacy row");
                assert!(legacy.mrn == "MRN1");
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn composite_text_keys_and_lookup_key_rotation() {
            let mut c = conn().await;
            encrypted_diesel::scope(old_keys(), async {
                for i in 0..25usize {
                    let tenant = if i.is_multiple_of(2) {
                        "acme"
                    } else {
                        "globex"
                    };
                    diesel::insert_into(rot_notes::table)
                        .values(&note(tenant, i))
                        .execute(&mut c)
                        .await
                        .expect("insert");
                }
            })
            .await;
            encrypted_diesel::scope(rotating_keys(), async {
                let opts = Options::default().batch_size(4);
                let s = rotate::status::<Note, _>(&mut c, &opts)
                    .await
                    .expect("status");
                assert_eq!((s.rows, s.stale, s.stale_lookup), (25, 25, 16), "{s:?}");
                let done = rotate::rewrap::<Note, _>(&mut c, &opts)
                    .await
                    .expect("rewrap");
                assert_eq!(done.rewrapped, 25);
            })
            .await;
            encrypted_diesel::scope(new_keys(), async {
                let n: i64 = rot_notes::table
                    .filter(Note::email_eq("person1@example.com").expect("lookup"))
                    .count()
                    .get_result(&mut c)
                    .await
                    .expect("count");
                assert_eq!(n, 1, "found under the new lookup key alone");
                let s = rotate::status::<Note, _>(&mut c, &Options::default())
                    .await
                    .expect("status");
                assert_eq!((s.current, s.stale, s.stale_lookup), (25, 0, 0), "{s:?}");
            })
            .await;
        }
    };
}

mod postgres {
    use diesel_async::{AsyncConnection, AsyncPgConnection};

    async fn connect() -> AsyncPgConnection {
        let url = crate::rotation::postgres_url();
        let mut c = AsyncPgConnection::establish(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is unreachable: {e}"));
        for stmt in crate::rotation::ddl("TEMPORARY ", "TEXT", "TEXT", "BYTEA") {
            diesel::sql_query(stmt).execute(&mut c).await.expect("ddl");
        }
        c
    }

    async_rotation_suite!(AsyncPgConnection, connect().await);
}

mod mysql {
    use diesel_async::{AsyncConnection, AsyncMysqlConnection};

    async fn connect() -> AsyncMysqlConnection {
        let url = crate::rotation::mysql_url();
        let mut c = AsyncMysqlConnection::establish(&url)
            .await
            .unwrap_or_else(|e| panic!("MySQL at {url} is unreachable: {e}"));
        for stmt in crate::rotation::ddl("TEMPORARY ", "VARCHAR(64)", "LONGTEXT", "LONGBLOB") {
            diesel::sql_query(stmt).execute(&mut c).await.expect("ddl");
        }
        c
    }

    async_rotation_suite!(AsyncMysqlConnection, connect().await);
}

mod sqlite {
    use diesel::SqliteConnection;
    use diesel_async::AsyncConnection;
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

    type Conn = SyncConnectionWrapper<SqliteConnection>;

    async fn connect() -> Conn {
        let mut c = Conn::establish(":memory:").await.expect("SQLite");
        for stmt in crate::rotation::ddl("", "TEXT", "TEXT", "BLOB") {
            diesel::sql_query(stmt).execute(&mut c).await.expect("ddl");
        }
        c
    }

    async_rotation_suite!(Conn, connect().await);
}
