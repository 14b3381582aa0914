//! Rewrap throughput on PostgreSQL beside a plain batched `UPDATE` of the same rows, in the same
//! run: `cargo bench --bench rewrap` (`POSTGRES_URL` as for the tests; `REWRAP_ROWS`, default
//! 50 000). Prints rows/s of both and the ratio.

use std::time::Instant;

use diesel::prelude::*;
use encrypted_core::{EncryptionConfiguration, Keyring};
use encrypted_diesel::rotate::Options;
use encrypted_diesel::{Keys, with_keyring};
use obot_store::db::Db;
use obot_store::models::User;
use obot_store::schema::users;

const K1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";
const K2: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";

fn keys(list: &[(&str, &str)]) -> Keys {
    let mut y = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [users.obot.obot.ai]\n    providers:\n      - aesgcm:\n          keys:\n",
    );
    for (name, secret) in list {
        y.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    y.push_str("      - identity: {}\n");
    let config = EncryptionConfiguration::from_yaml(&y).expect("config");
    Keys::new(Keyring::from_config(&config).expect("keyring"))
}

fn main() {
    let n: i64 = std::env::var("REWRAP_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let base = std::env::var("POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/encrypted_test".to_owned());
    let (server, _) = base.rsplit_once('/').expect("a database URL");
    let admin = format!("{server}/postgres");
    let name = format!("obot_store_bench_{}", std::process::id());
    let mut a = PgConnection::establish(&admin).expect("PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut a)
        .expect("create");
    let url = format!("{server}/{name}");
    let mut db = Db::connect(&url).expect("connect");
    db.migrate().expect("migrate");
    let template = obot_store::sample::records().users[0].clone();
    with_keyring(keys(&[("k1", K1)]), || {
        let Db::Pg(c) = &mut db else { unreachable!() };
        for chunk in (1..=n).collect::<Vec<_>>().chunks(2000) {
            let rows: Vec<User> = chunk
                .iter()
                .map(|&id| {
                    let mut u = template.clone();
                    u.id = id;
                    u.username = Some(format!("user{id}"));
                    u
                })
                .collect();
            diesel::insert_into(users::table)
                .values(&rows)
                .execute(c)
                .expect("seed");
        }
    });
    let batch = 1000usize;
    #[allow(clippy::cast_precision_loss, reason = "rates")]
    let rate = |secs: f64| n as f64 / secs;

    // Baseline: the same rows, the same batches, the same columns, no cryptography.
    let started = Instant::now();
    {
        let Db::Pg(c) = &mut db else { unreachable!() };
        let mut lo = 0;
        while lo < n {
            c.transaction::<_, diesel::result::Error, _>(|c| {
                diesel::sql_query(format!(
                    "UPDATE users SET username = username, email = email, display_name = display_name, \
                     icon_url = icon_url, original_email = original_email, \
                     original_username = original_username, encrypted = TRUE \
                     WHERE id > {lo} AND id <= {}",
                    lo + batch as i64
                ))
                .execute(c)
            })
            .expect("plain update");
            lo += batch as i64;
        }
    }
    let plain = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let summary = with_keyring(keys(&[("k2", K2), ("k1", K1)]), || {
        let Db::Pg(c) = &mut db else { unreachable!() };
        let opts = Options::default().batch_size(batch).jobs(1);
        encrypted_diesel::rotate::rewrap::<User, _>(c, &opts).expect("rewrap")
    });
    let rewrap = started.elapsed().as_secs_f64();
    assert_eq!(summary.rewrapped, u64::try_from(n).expect("positive"));

    // The same again with two connections (the CLI's default), back to k1.
    let connect = || PgConnection::establish(&url);
    let started = Instant::now();
    let summary = with_keyring(keys(&[("k1", K1), ("k2", K2)]), || {
        let Db::Pg(c) = &mut db else { unreachable!() };
        let opts = Options::default().batch_size(batch).jobs(2);
        encrypted_diesel::rotate::rewrap_parallel::<User, _>(c, &connect, &opts)
            .expect("rewrap with two connections")
    });
    let rewrap2 = started.elapsed().as_secs_f64();
    assert_eq!(summary.rewrapped, u64::try_from(n).expect("positive"));
    drop(db);
    diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut a)
        .expect("drop");
    println!(
        "rows: {n}, batch: {batch}, 6 encrypted columns per row\n\
         plain batched UPDATE (one connection): {plain:.2} s, {:.0} rows/s\n\
         rewrap, one connection (read FOR UPDATE SKIP LOCKED, decrypt k1, encrypt k2, UPDATE .. FROM unnest): \
         {rewrap:.2} s, {:.0} rows/s = {:.0}% of plain\n\
         rewrap, two connections (--jobs 2, the CLI default): {rewrap2:.2} s, {:.0} rows/s = {:.0}% of plain",
        rate(plain),
        rate(rewrap),
        100.0 * plain / rewrap,
        rate(rewrap2),
        100.0 * plain / rewrap2
    );
}
