//! Quickstart (SQLite): generate a key, migrate a database, write and read an encrypted model.
//!
//! `cargo run --example quickstart`

use diesel::prelude::*;
use encrypted_core::config::generate_aesgcm;
use encrypted_core::{EncryptionConfiguration, Keyring};
use obot_store::db::Db;
use obot_store::models::User;
use obot_store::schema::users;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // 1. Keys: an EncryptionConfiguration (here generated in memory; normally a file).
    let config =
        EncryptionConfiguration::from_yaml(&generate_aesgcm(obot_store::resources::ALL, "key1")?)?;
    encrypted_diesel::install(Keyring::from_config(&config)?)?;

    // 2. A database with the Obot tables (the migrations are embedded).
    let dir = tempfile::tempdir()?;
    let mut db = Db::connect(&dir.path().join("obot.db").display().to_string())?;
    db.migrate()?;
    let Db::Sqlite(conn) = &mut db else {
        unreachable!("a SQLite path")
    };

    // 3. Ordinary Diesel: encryption on write, decryption on load.
    let alice = obot_store::sample::records().users[0].clone();
    diesel::insert_into(users::table)
        .values(&alice)
        .execute(conn)?;
    let found: User = users::table
        .filter(User::email_eq("alice@example.com"))
        .select(User::as_select())
        .first(conn)?;
    assert!(found == alice);
    let stored: String = users::table
        .select(users::email)
        .first::<Option<String>>(conn)?
        .unwrap_or_default();
    println!(
        "application reads {:?}; the column holds {stored}",
        found.email
    );
    println!("Debug never shows encrypted fields: {found:?}");
    Ok(())
}
