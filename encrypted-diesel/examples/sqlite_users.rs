//! A complete program: an encrypted `users` table in an in-memory SQLite database.
//!
//! ```sh
//! cargo run -p encrypted-diesel --features sqlite --example sqlite_users
//! ```

use diesel::prelude::*;
use encrypted_core::{EncryptionConfiguration, Keyring, config::generate_aesgcm};
use encrypted_diesel::Encrypted;

mod schema {
    diesel::table! {
        users (id) {
            id -> BigInt,
            username -> Text,
            hashed_username -> Text,
            email -> Text,
            hashed_email -> Text,
            display_name -> Text,
            icon_url -> Nullable<Text>,
        }
    }
}
use schema::users;

/// A user whose personal data is encrypted at rest.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = users, resource = "users.obot.obot.ai", aad = "{resource}/{hashed_username}")]
struct User {
    id: i64,
    #[encrypt(hash = hashed_username)]
    username: String,
    #[encrypt(hash = hashed_email, normalize = lowercase_trim)]
    email: String,
    #[encrypt]
    display_name: String,
    #[encrypt]
    icon_url: Option<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh key; a real deployment reads its EncryptionConfiguration file with
    // `Keyring::from_file("encryption-config.yaml")`.
    let config =
        EncryptionConfiguration::from_yaml(&generate_aesgcm(&["users.obot.obot.ai"], "key1")?)?;
    encrypted_diesel::install(Keyring::from_config(&config)?)?;

    let mut conn = SqliteConnection::establish(":memory:")?;
    diesel::sql_query(
        "CREATE TABLE users (id BIGINT PRIMARY KEY, username TEXT NOT NULL, \
         hashed_username TEXT NOT NULL, email TEXT NOT NULL, hashed_email TEXT NOT NULL, \
         display_name TEXT NOT NULL, icon_url TEXT)",
    )
    .execute(&mut conn)?;

    let alice = User {
        id: 1,
        username: "alice".into(),
        email: "Alice@Example.com".into(),
        display_name: "Alice Liddell".into(),
        icon_url: None,
    };
    let bob = User {
        id: 2,
        username: "bob".into(),
        email: "bob@example.com".into(),
        display_name: "Bob".into(),
        icon_url: Some("https://example.com/bob.png".into()),
    };
    diesel::insert_into(users::table)
        .values(&vec![alice.clone(), bob])
        .execute(&mut conn)?;

    // What the database holds: base64 of `k8s:enc:aesgcm:v1:key1:...`, never the plaintext.
    let stored: String = users::table.select(users::email).first(&mut conn)?;
    println!("stored email: {stored}");

    // Lookups go through the hash column; loading decrypts.
    let found: User = users::table
        .filter(User::email_eq(" alice@example.COM"))
        .select(User::as_select())
        .first(&mut conn)?;
    assert!(found == alice);
    println!("found: {found:?}"); // encrypted fields print as [REDACTED]

    let mut renamed = found;
    renamed.display_name = "Alice L.".into();
    diesel::update(users::table.find(1))
        .set(&renamed)
        .execute(&mut conn)?;

    let all: Vec<User> = users::table
        .select(User::as_select())
        .order(users::id)
        .load(&mut conn)?;
    for user in &all {
        println!("{} <{}>: {}", user.username, user.email, user.display_name);
    }
    Ok(())
}
