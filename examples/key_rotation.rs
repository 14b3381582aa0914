//! Key rotation end to end (SQLite): write under `key1`, put `key2` first, rewrap, check status.
//!
//! `cargo run --example key_rotation`

use diesel::prelude::*;
use encrypted_core::{EncryptionConfiguration, Keyring};
use encrypted_diesel::rotate::Options;
use encrypted_diesel::{Keys, with_keyring};
use obot_store::db::Db;
use obot_store::rotation;
use obot_store::schema::users;

const KEY1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";
const KEY2: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";

fn keys(list: &[(&str, &str)]) -> Result<Keys, encrypted_core::Error> {
    // Every Obot resource (status and rewrap walk every table), with the given keys.
    let mut yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [{}]\n    providers:\n      - aesgcm:\n          keys:\n",
        obot_store::resources::ALL.join(", ")
    );
    for (name, secret) in list {
        yaml.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    yaml.push_str("      - identity: {}\n");
    Ok(Keys::new(Keyring::from_config(
        &EncryptionConfiguration::from_yaml(&yaml)?,
    )?))
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let mut db = Db::connect(&dir.path().join("obot.db").display().to_string())?;
    db.migrate()?;
    let records = obot_store::sample::records();

    // The application writes with key1.
    with_keyring(keys(&[("key1", KEY1)])?, || {
        let Db::Sqlite(c) = &mut db else {
            unreachable!("SQLite")
        };
        diesel::insert_into(users::table)
            .values(&records.users)
            .execute(c)
    })?;

    // The operator adds key2 first (key1 still reads), then rewraps.
    let rotated = keys(&[("key2", KEY2), ("key1", KEY1)])?;
    with_keyring(
        rotated,
        || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let before = &rotation::status(&mut db)?[0];
            println!(
                "before: {} stale of {} users ({:?})",
                before.stale, before.rows, before.by_key
            );
            let opts = Options::default().jobs(1);
            let done = &rotation::rewrap(&mut db, "", &opts)?[0];
            println!(
                "rewrap: {} of {} re-encrypted",
                done.rewrapped, done.scanned
            );
            let after = &rotation::status(&mut db)?[0];
            println!(
                "after: {} current, {} stale ({:?})",
                after.current, after.stale, after.by_key
            );
            assert_eq!(after.stale, 0);
            Ok(())
        },
    )?;

    // key1 can now be removed: everything reads with key2 alone.
    with_keyring(keys(&[("key2", KEY2)])?, || {
        let s = &rotation::status(&mut db)?[0];
        assert_eq!((s.current, s.undecryptable), (s.rows, 0));
        println!("key1 removed: all {} users read with key2", s.rows);
        Ok(())
    })
}
