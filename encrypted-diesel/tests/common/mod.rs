//! Shared models, keys and the backend-independent test suite.
#![allow(dead_code, reason = "each test binary uses part of the shared code")]

use encrypted_core::{EncryptionConfiguration, Keyring, SecretKey};
use encrypted_diesel::{Encrypted, Keys};
use serde::{Deserialize, Serialize};

diesel::table! {
    enc_users (id) {
        id -> BigInt,
        username -> Text,
        hashed_username -> Text,
        email -> Text,
        hashed_email -> Text,
        display_name -> Text,
        icon_url -> Nullable<Text>,
        avatar -> Nullable<Binary>,
        secret_blob -> Binary,
        settings -> Text,
        b64_blob -> Binary,
        nickname -> Nullable<Text>,
        hashed_nickname -> Nullable<Text>,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    enc_legacy (id) {
        id -> BigInt,
        secret -> Text,
        data -> Nullable<Binary>,
        encrypted -> Bool,
    }
}

diesel::table! {
    plain_users (id) {
        id -> BigInt,
        email -> Text,
        display_name -> Text,
        icon_url -> Nullable<Text>,
        secret_blob -> Binary,
    }
}

/// A serde type stored as encrypted JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Settings {
    pub theme: String,
    pub volume: u8,
    pub tags: Vec<String>,
}

/// Every field kind.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = enc_users,
    resource = "users.obot.obot.ai",
    aad = "{resource}/{hashed_username}/{column}"
)]
pub(crate) struct User {
    pub id: i64,
    #[encrypt(hash = hashed_username)]
    pub username: String,
    #[encrypt(hash = hashed_email, normalize = lowercase_trim)]
    pub email: String,
    #[encrypt]
    pub display_name: String,
    #[encrypt]
    pub icon_url: Option<String>,
    #[encrypt]
    pub avatar: Option<Vec<u8>>,
    #[encrypt]
    pub secret_blob: Vec<u8>,
    #[encrypt(json)]
    pub settings: Settings,
    #[encrypt(base64)]
    pub b64_blob: Vec<u8>,
    #[encrypt(hash = hashed_nickname, hmac, normalize = lowercase)]
    pub nickname: Option<String>,
    pub note: Option<String>,
}

/// Obot's convention: an `encrypted` flag column, AAD by the Obot users template.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = enc_legacy, resource = "users.obot.obot.ai", aad = "{resource}/{id}", flag = encrypted)]
pub(crate) struct Legacy {
    pub id: i64,
    #[encrypt]
    pub secret: String,
    #[encrypt]
    pub data: Option<Vec<u8>>,
}

pub(crate) const CANARY: &str = "canary-7c1d9e-plaintext";

pub(crate) const KEY1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";

fn config(identity: bool) -> EncryptionConfiguration {
    let mut yaml = [
        "apiVersion: apiserver.config.k8s.io/v1",
        "kind: EncryptionConfiguration",
        "resources:",
        "  - resources: [users.obot.obot.ai]",
        "    providers:",
        "      - aesgcm:",
        "          keys:",
        "            - name: k1",
        &format!("              secret: {KEY1}"),
        "",
    ]
    .join("\n");
    if identity {
        yaml.push_str("      - identity: {}\n");
    }
    EncryptionConfiguration::from_yaml(&yaml).expect("valid configuration")
}

/// AES-GCM, then identity (legacy plaintext readable), and an HMAC lookup key.
pub(crate) fn keys() -> Keys {
    Keys::new(Keyring::from_config(&config(true)).expect("keyring"))
        .with_lookup_key(SecretKey::from(vec![42u8; 32]))
}

/// `identity` first (it writes), then AES-GCM.
pub(crate) fn identity_first_keys() -> Keys {
    let yaml = [
        "apiVersion: apiserver.config.k8s.io/v1",
        "kind: EncryptionConfiguration",
        "resources:",
        "  - resources: [users.obot.obot.ai]",
        "    providers:",
        "      - identity: {}",
        "      - aesgcm:",
        "          keys:",
        "            - name: k1",
        &format!("              secret: {KEY1}"),
        "",
    ]
    .join("\n");
    let config = EncryptionConfiguration::from_yaml(&yaml).expect("valid configuration");
    Keys::new(Keyring::from_config(&config).expect("keyring"))
        .with_lookup_key(SecretKey::from(vec![42u8; 32]))
}

/// AES-GCM only: plaintext fails closed.
pub(crate) fn strict_keys() -> Keys {
    Keys::new(Keyring::from_config(&config(false)).expect("keyring"))
        .with_lookup_key(SecretKey::from(vec![42u8; 32]))
}

pub(crate) fn user(id: i64) -> User {
    User {
        id,
        username: format!("user{id}"),
        email: format!(" User{id}@Example.COM "),
        display_name: format!("Ünïcødé 名前 {id} 🦀"),
        icon_url: (id % 2 == 0).then(|| format!("https://example.com/{id}.png")),
        avatar: (id % 3 != 0).then(|| vec![0, 1, 2, 255, id.to_le_bytes()[0]]),
        secret_blob: vec![9; usize::try_from(id % 7).expect("small")],
        settings: Settings {
            theme: "dark".into(),
            volume: 7,
            tags: vec!["a".into(), String::new()],
        },
        b64_blob: b"forced base64".to_vec(),
        nickname: (id % 2 == 1).then(|| format!("Nick{id}")),
        note: Some(format!("not secret {id}")),
    }
}

pub(crate) fn postgres_url() -> String {
    std::env::var("POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/encrypted_test".to_owned())
}

pub(crate) fn mysql_url() -> String {
    std::env::var("MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/encrypted_test".to_owned())
}

/// CREATE TABLE statements; `temp` is `TEMPORARY ` on servers so parallel tests do not meet.
pub(crate) fn ddl(
    temp: &str,
    bigint: &str,
    text: &str,
    binary: &str,
    boolean: &str,
) -> Vec<String> {
    vec![
        format!(
            "CREATE {temp}TABLE enc_users (id {bigint} PRIMARY KEY, username {text} NOT NULL, \
             hashed_username {text} NOT NULL, email {text} NOT NULL, hashed_email {text} NOT NULL, \
             display_name {text} NOT NULL, icon_url {text}, avatar {binary}, \
             secret_blob {binary} NOT NULL, settings {text} NOT NULL, b64_blob {binary} NOT NULL, \
             nickname {text}, hashed_nickname {text}, note {text})"
        ),
        format!(
            "CREATE {temp}TABLE enc_legacy (id {bigint} PRIMARY KEY, secret {text} NOT NULL, \
             data {binary}, encrypted {boolean} NOT NULL)"
        ),
        format!(
            "CREATE {temp}TABLE plain_users (id {bigint} PRIMARY KEY, email {text} NOT NULL, \
             display_name {text} NOT NULL, icon_url {text}, secret_blob {binary} NOT NULL)"
        ),
    ]
}

/// The suite, instantiated once per backend: `$connect` returns `(connection, guard)` with the
/// tables created; every test runs in a transaction that is rolled back.
#[macro_export]
macro_rules! suite {
    ($connect:expr) => {
        use diesel::prelude::*;
        use encrypted_diesel::Error;
        use $crate::common::*;

        fn conn() -> impl Sized + std::ops::DerefMut<Target = Conn> {
            let mut c = $connect;
            c.begin_test_transaction().expect("begin test transaction");
            c
        }

        fn load_all(c: &mut Conn) -> QueryResult<Vec<User>> {
            enc_users::table
                .select(User::as_select())
                .order(enc_users::id)
                .load(c)
        }

        fn crypto_error(e: &diesel::result::Error) -> &Error {
            match e {
                diesel::result::Error::DeserializationError(e)
                | diesel::result::Error::SerializationError(e) => {
                    e.downcast_ref::<Error>().expect("an encrypted_diesel::Error")
                }
                other => panic!("expected a (de)serialization error, found {other:?}"),
            }
        }

        #[test]
        fn round_trip_all_field_kinds() {
            let mut c = conn();
            encrypted_diesel::with_keyring(keys(), || {
                let u = user(1);
                diesel::insert_into(enc_users::table).values(&u).execute(&mut *c).expect("insert");
                let back: User = enc_users::table
                    .select(User::as_select())
                    .first(&mut *c)
                    .expect("first");
                assert!(back == u);
                let all = load_all(&mut c).expect("load");
                assert!(all == vec![u]);
            });
        }

        #[test]
        fn batch_insert_update_and_lookup() {
            let mut c = conn();
            encrypted_diesel::with_keyring(keys(), || {
                let users: Vec<User> = (1..=6).map(user).collect();
                assert_eq!(
                    diesel::insert_into(enc_users::table)
                        .values(&users)
                        .execute(&mut *c)
                        .expect("batch insert"),
                    6
                );
                assert!(load_all(&mut c).expect("load") == users);

                let found: User = enc_users::table
                    .filter(User::email_eq("user4@example.com"))
                    .select(User::as_select())
                    .first(&mut *c)
                    .expect("lookup by email");
                assert!(found == users[3]);
                let found: User = enc_users::table
                    .filter(User::nickname_eq("NICK3").expect("hmac"))
                    .select(User::as_select())
                    .first(&mut *c)
                    .expect("lookup by hmac nickname");
                assert!(found == users[2]);

                let mut changed = users[1].clone();
                changed.email = "new@example.com".into();
                changed.icon_url = None;
                changed.avatar = Some(vec![1; 100]);
                changed.settings.tags.push("changed".into());
                diesel::update(enc_users::table.find(2))
                    .set(&changed)
                    .execute(&mut *c)
                    .expect("update");
                let back: User = enc_users::table
                    .find(2)
                    .select(User::as_select())
                    .first(&mut *c)
                    .expect("reload");
                assert!(back == changed);
                let n: i64 = enc_users::table
                    .filter(User::email_eq("NEW@example.com "))
                    .count()
                    .get_result(&mut *c)
                    .expect("count");
                assert_eq!(n, 1);
            });
        }

        #[test]
        fn raw_columns_hold_no_plaintext_and_nulls_stay_null() {
            let mut c = conn();
            encrypted_diesel::with_keyring(keys(), || {
                let mut u = user(3);
                u.display_name = CANARY.into();
                u.secret_blob = CANARY.as_bytes().to_vec();
                diesel::insert_into(enc_users::table).values(&u).execute(&mut *c).expect("insert");
            });
            type Raw = (String, String, Option<String>, Option<Vec<u8>>, Vec<u8>, Vec<u8>, Option<String>);
            let (email, display, icon, avatar, blob, b64, hashed_nick): Raw = enc_users::table
                .select((
                    enc_users::email,
                    enc_users::display_name,
                    enc_users::icon_url,
                    enc_users::avatar,
                    enc_users::secret_blob,
                    enc_users::b64_blob,
                    enc_users::hashed_nickname,
                ))
                .first(&mut *c)
                .expect("raw select");
            assert_eq!(icon, None, "NULL stays NULL");
            assert_eq!(avatar, None, "NULL stays NULL");
            assert!(hashed_nick.is_some_and(|h| h.len() == 64));
            for text in [&email, &display] {
                assert!(!text.contains(CANARY));
                let stored = encrypted_core::decode_base64(text).expect("standard base64");
                assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:k1:"));
            }
            assert!(blob.starts_with(b"k8s:enc:aesgcm:v1:k1:"), "binary columns hold raw bytes");
            assert!(!blob.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()));
            let b64 = String::from_utf8(b64).expect("base64 text in a binary column");
            assert!(encrypted_core::decode_base64(&b64)
                .expect("base64")
                .starts_with(b"k8s:enc:aesgcm:v1:k1:"));
            let hashed: String = enc_users::table
                .select(enc_users::hashed_email)
                .first(&mut *c)
                .expect("hash");
            assert_eq!(hashed, encrypted_diesel::hash::sha256_hex(b"user3@example.com"));
        }

        #[test]
        fn ciphertext_moved_to_another_row_or_column_fails() {
            let mut c = conn();
            encrypted_diesel::with_keyring(keys(), || {
                let mut users: Vec<User> = (1..=2).map(user).collect();
                users[0].display_name = CANARY.into();
                diesel::insert_into(enc_users::table).values(&users).execute(&mut *c).expect("insert");
                let stolen: String = enc_users::table
                    .find(1)
                    .select(enc_users::display_name)
                    .first(&mut *c)
                    .expect("raw");
                // Another row.
                diesel::update(enc_users::table.find(2))
                    .set(enc_users::display_name.eq(&stolen))
                    .execute(&mut *c)
                    .expect("tamper");
                let e = enc_users::table
                    .find(2)
                    .select(User::as_select())
                    .first::<User>(&mut *c)
                    .expect_err("moved ciphertext must not decrypt");
                let err = crypto_error(&e);
                assert!(matches!(err, Error::Crypto { field: "display_name", .. }), "{err:?}");
                assert!(matches!(
                    err.core(),
                    Some(encrypted_core::Error::Decrypt(
                        encrypted_core::DecryptError::Authentication { .. }
                    ))
                ), "{err:?}");
                for text in [format!("{e}"), format!("{e:?}"), format!("{err}"), format!("{err:?}")] {
                    assert!(!text.contains(CANARY), "error text leaks the canary: {text}");
                }
                // Another column of the same row.
                diesel::update(enc_users::table.find(1))
                    .set(enc_users::email.eq(&stolen))
                    .execute(&mut *c)
                    .expect("tamper");
                let e = enc_users::table
                    .find(1)
                    .select(User::as_select())
                    .first::<User>(&mut *c)
                    .expect_err("moved ciphertext must not decrypt");
                assert!(matches!(crypto_error(&e), Error::Crypto { field: "email", .. }));
                assert!(!format!("{e:?}").contains(CANARY));
            });
        }

        /// Many rows: `load_decrypted` (helper threads) and `decrypt_all` return exactly what
        /// `load` does, in query order, with the keys of the calling thread's scope (nothing is
        /// installed process-wide in the tests, so a helper thread using its own keys would fail).
        #[test]
        fn load_decrypted_matches_load_in_query_order() {
            use encrypted_diesel::{LoadDecrypted, Model};
            let mut c = conn();
            encrypted_diesel::with_keyring(keys(), || {
                let users: Vec<User> = (1..=1_000).map(user).collect();
                for chunk in users.chunks(250) {
                    diesel::insert_into(enc_users::table).values(chunk).execute(&mut *c).expect("insert");
                }
                let loaded = load_all(&mut c).expect("load");
                assert!(loaded == users);
                let parallel: Vec<User> = enc_users::table
                    .order(enc_users::id)
                    .load_decrypted(&mut *c)
                    .expect("load_decrypted");
                assert!(parallel == users, "load_decrypted differs from the inserted rows");
                // Any query shape: a filter, another order, a select clause that is replaced.
                let descending: Vec<User> = enc_users::table
                    .filter(enc_users::id.gt(100))
                    .order(enc_users::id.desc())
                    .select(<User as SelectableHelper<<Conn as diesel::Connection>::Backend>>::as_select())
                    .load_decrypted(&mut *c)
                    .expect("load_decrypted");
                let expected: Vec<User> = users[100..].iter().rev().cloned().collect();
                assert!(descending == expected, "order or filter not kept");
                // Fewer rows than a batch: decrypted inline.
                let few: Vec<User> = enc_users::table
                    .filter(enc_users::id.le(3))
                    .order(enc_users::id)
                    .load_decrypted(&mut *c)
                    .expect("load_decrypted");
                assert_eq!(few.iter().map(|u| u.id).collect::<Vec<_>>(), vec![1, 2, 3]);
                for (a, b) in few.iter().zip(&users) { assert!(a == b, "{a:?} vs {b:?}"); }
                let none: Vec<User> = enc_users::table
                    .filter(enc_users::id.lt(0))
                    .load_decrypted(&mut *c)
                    .expect("load_decrypted");
                assert!(none.is_empty());
                // Records loaded some other way, decrypted together.
                let records: Vec<<User as Model>::Record> = enc_users::table
                    .select(<User as Model>::Record::as_select())
                    .order(enc_users::id)
                    .load(&mut *c)
                    .expect("records");
                let all = encrypted_diesel::decrypt_all::<User>(records).expect("decrypt_all");
                assert!(all == users, "decrypt_all differs from the inserted rows");
            });
        }

        /// Many models written through `encrypt_chunks` (helper threads encrypt ahead while the
        /// caller inserts, chunks handed over in order) and `encrypt_all`, with the calling
        /// thread's scoped keys; both read back exactly.
        #[test]
        fn encrypt_chunks_and_encrypt_all_write_every_model_in_order() {
            use encrypted_diesel::Model;
            let mut c = conn();
            encrypted_diesel::with_keyring(keys(), || {
                let users: Vec<User> = (1..=1_000).map(user).collect();
                let mut seen = Vec::new();
                // Chunks of 300 and a short last one, encrypted ahead by the helpers.
                encrypted_diesel::encrypt_chunks(&users, 300, |records| {
                    seen.push(records.len());
                    diesel::insert_into(enc_users::table).values(records).execute(&mut *c).map(drop)
                })
                .expect("encrypt_chunks");
                assert_eq!(seen, vec![300, 300, 300, 100]);
                assert!(load_all(&mut c).expect("load") == users, "rows differ or out of order");
                diesel::delete(enc_users::table).execute(&mut *c).expect("empty");
                let records: Vec<<User as Model>::Record> = encrypted_diesel::encrypt_all(&users);
                for chunk in records.chunks(250) {
                    diesel::insert_into(enc_users::table).values(chunk).execute(&mut *c).expect("insert");
                }
                assert!(load_all(&mut c).expect("load") == users, "encrypt_all rows differ");
                // Lookups work on rows written this way (the hash columns are filled).
                let found: User = enc_users::table
                    .filter(User::email_eq("user777@example.com"))
                    .select(User::as_select())
                    .first(&mut *c)
                    .expect("lookup");
                assert!(found == users[776]);
            });
        }

        /// `encrypt_chunks` stops at the first failing chunk and returns its error; without
        /// keys every chunk fails to bind with a typed error and nothing is written.
        #[test]
        fn encrypt_chunks_stops_at_the_first_error() {
            let mut c = conn();
            let users: Vec<User> = (1..=900).map(user).collect();
            encrypted_diesel::with_keyring(keys(), || {
                let mut calls = 0;
                let e = encrypted_diesel::encrypt_chunks(&users, 100, |records| {
                    calls += 1;
                    if calls == 4 {
                        return Err("stop here");
                    }
                    diesel::insert_into(enc_users::table)
                        .values(records)
                        .execute(&mut *c)
                        .map(drop)
                        .map_err(|_| "insert failed")
                })
                .expect_err("the fourth chunk fails");
                assert_eq!((e, calls), ("stop here", 4));
                let n: i64 = enc_users::table.count().get_result(&mut *c).expect("count");
                assert_eq!(n, 300);
                diesel::delete(enc_users::table).execute(&mut *c).expect("empty");
            });
            let e = encrypted_diesel::encrypt_chunks(&users, 100, |records| {
                diesel::insert_into(enc_users::table).values(records).execute(&mut *c).map(drop)
            })
            .expect_err("no keyring");
            assert!(matches!(crypto_error(&e), Error::NoKeyring), "{e:?}");
            let n: i64 = enc_users::table.count().get_result(&mut *c).expect("count");
            assert_eq!(n, 0, "nothing was written");
        }

        /// A bad row among many: `load_decrypted` and `decrypt_all` fail with the first bad
        /// row's error (query order), typed, without the plaintext, and return no rows at all.
        #[test]
        fn load_decrypted_fails_on_the_first_bad_row_and_returns_nothing() {
            use encrypted_diesel::{LoadDecrypted, Model};
            let mut c = conn();
            encrypted_diesel::with_keyring(keys(), || {
                let mut users: Vec<User> = (1..=900).map(user).collect();
                users[0].display_name = CANARY.into();
                users[0].email = CANARY.into();
                for chunk in users.chunks(300) {
                    diesel::insert_into(enc_users::table).values(chunk).execute(&mut *c).expect("insert");
                }
                let (name, email): (String, String) = enc_users::table
                    .find(1)
                    .select((enc_users::display_name, enc_users::email))
                    .first(&mut *c)
                    .expect("raw");
                // Row 600 gets row 1's display name, row 800 its e-mail (both bound elsewhere).
                diesel::update(enc_users::table.find(600))
                    .set(enc_users::display_name.eq(&name))
                    .execute(&mut *c)
                    .expect("tamper");
                diesel::update(enc_users::table.find(800))
                    .set(enc_users::email.eq(&email))
                    .execute(&mut *c)
                    .expect("tamper");
                let ascending = enc_users::table
                    .order(enc_users::id)
                    .load_decrypted::<User>(&mut *c)
                    .expect_err("a moved value must not decrypt");
                let err = crypto_error(&ascending);
                assert!(matches!(err, Error::Crypto { field: "display_name", .. }), "{err:?}");
                assert!(!format!("{ascending} {ascending:?}").contains(CANARY));
                let descending = enc_users::table
                    .order(enc_users::id.desc())
                    .load_decrypted::<User>(&mut *c)
                    .expect_err("a moved value must not decrypt");
                assert!(
                    matches!(crypto_error(&descending), Error::Crypto { field: "email", .. }),
                    "the first bad row in query order is reported: {descending:?}"
                );
                let records: Vec<<User as Model>::Record> = enc_users::table
                    .select(<User as Model>::Record::as_select())
                    .order(enc_users::id)
                    .load(&mut *c)
                    .expect("records");
                let e = encrypted_diesel::decrypt_all::<User>(records).expect_err("moved value");
                assert!(matches!(e, Error::Crypto { field: "display_name", .. }), "{e:?}");
            });
            // No keys in effect: a typed error before anything is read.
            let e = enc_users::table
                .load_decrypted::<User>(&mut *c)
                .expect_err("no keyring");
            assert!(matches!(crypto_error(&e), Error::NoKeyring), "{e:?}");
        }

        #[test]
        fn debug_never_prints_encrypted_fields() {
            let mut u = user(2);
            u.display_name = CANARY.into();
            u.settings.theme = CANARY.into();
            let text = format!("{u:?} {u:#?}");
            assert!(!text.contains(CANARY), "{text}");
            assert!(text.contains("[REDACTED]"));
            assert!(text.contains("not secret 2"), "plain fields are shown: {text}");
        }

        #[test]
        fn no_keyring_is_a_typed_error() {
            let mut c = conn();
            let e = diesel::insert_into(enc_users::table)
                .values(&user(1))
                .execute(&mut *c)
                .expect_err("no keyring");
            assert!(matches!(crypto_error(&e), Error::NoKeyring), "{e:?}");
            let n: i64 = enc_users::table.count().get_result(&mut *c).expect("count");
            assert_eq!(n, 0, "nothing was written");
            encrypted_diesel::with_keyring(keys(), || {
                diesel::insert_into(enc_users::table).values(&user(1)).execute(&mut *c).expect("insert");
            });
            let e = load_all(&mut c).expect_err("no keyring");
            assert!(matches!(crypto_error(&e), Error::NoKeyring), "{e:?}");
        }

        #[test]
        fn one_mib_blob_round_trips() {
            let mut c = conn();
            encrypted_diesel::with_keyring(keys(), || {
                let mut u = user(1);
                u.secret_blob = (0..1 << 20).map(|i: u32| i.to_le_bytes()[0] ^ 0x5a).collect();
                u.avatar = Some(u.secret_blob.clone());
                u.display_name = "x".repeat(1 << 20);
                diesel::insert_into(enc_users::table).values(&u).execute(&mut *c).expect("insert");
                let back = load_all(&mut c).expect("load");
                assert!(back == vec![u]);
            });
        }

        #[test]
        fn legacy_flag_and_identity_read_plaintext_and_strict_fails_closed() {
            let mut c = conn();
            diesel::insert_into(enc_legacy::table)
                .values((
                    enc_legacy::id.eq(1),
                    enc_legacy::secret.eq("old plaintext"),
                    enc_legacy::data.eq(Some(b"old bytes".to_vec())),
                    enc_legacy::encrypted.eq(false),
                ))
                .execute(&mut *c)
                .expect("legacy row");
            let read = |c: &mut Conn| {
                enc_legacy::table
                    .select(Legacy::as_select())
                    .order(enc_legacy::id)
                    .load::<Legacy>(c)
            };
            encrypted_diesel::with_keyring(strict_keys(), || {
                let rows = read(&mut c).expect("flag false reads plaintext");
                assert_eq!(rows.len(), 1);
                assert!(rows[0].secret == "old plaintext");
                assert!(rows[0].data.as_deref() == Some(&b"old bytes"[..]));
                let rewritten = Legacy { id: 2, ..rows[0].clone() };
                diesel::insert_into(enc_legacy::table).values(&rewritten).execute(&mut *c).expect("insert");
                let flag: bool = enc_legacy::table
                    .find(2)
                    .select(enc_legacy::encrypted)
                    .first(&mut *c)
                    .expect("flag");
                assert!(flag, "written rows are flagged encrypted");
                assert!(read(&mut c).expect("both").into_iter().map(|l| l.secret).eq(["old plaintext", "old plaintext"]));
            });
            // A plaintext row without a flag: identity reads every value as the text (or bytes)
            // the column holds, a strict keyring fails closed.
            diesel::sql_query(
                "INSERT INTO enc_users (id, username, hashed_username, email, hashed_email, \
                 display_name, secret_blob, settings, b64_blob) VALUES (9, 'bob', 'h', \
                 'bob@example.com', 'h2', 'Bob', 'x', '{\"theme\":\"t\",\"volume\":1,\"tags\":[]}', 'y')",
            )
            .execute(&mut *c)
            .expect("plaintext row");
            encrypted_diesel::with_keyring(keys(), || {
                let rows = load_all(&mut c).expect("identity reads legacy raw text");
                let bob = &rows[0];
                assert!(bob.username == "bob" && bob.email == "bob@example.com");
                assert!(bob.display_name == "Bob");
                assert!(bob.secret_blob == b"x" && bob.b64_blob == b"y");
                assert!(bob.settings == Settings { theme: "t".into(), volume: 1, tags: vec![] });
            });
            encrypted_diesel::with_keyring(strict_keys(), || {
                let e = load_all(&mut c).expect_err("fails closed");
                assert!(matches!(crypto_error(&e), Error::Crypto { .. }));
            });
            // Flag false: the value is the plaintext, even when it looks like base64.
            diesel::update(enc_legacy::table.find(1))
                .set((enc_legacy::secret.eq("MRN1"), enc_legacy::encrypted.eq(false)))
                .execute(&mut *c)
                .expect("legacy base64-looking value");
            encrypted_diesel::with_keyring(strict_keys(), || {
                let rows = read(&mut c).expect("flag false");
                assert!(rows[0].secret == "MRN1", "flag false: the text as stored");
            });
            // Flag true with identity: base64 of identity's output, as Obot writes it.
            diesel::update(enc_legacy::table.find(1))
                .set((
                    enc_legacy::secret.eq(encrypted_core::encode_base64(b"MRN1")),
                    enc_legacy::encrypted.eq(true),
                ))
                .execute(&mut *c)
                .expect("identity-written value");
            encrypted_diesel::with_keyring(keys(), || {
                let rows = read(&mut c).expect("flag true through identity");
                assert!(rows[0].secret == "MRN1");
            });
        }

        /// Issue 12 item 1: legacy text that looks like base64 (`MRN1` decodes to three bytes)
        /// read through `identity` must come back as itself — never as other text. Only values
        /// whose base64 decodes to a `k8s:enc:` prefix are treated as encrypted, and those fail
        /// rather than read as anything else.
        #[test]
        fn legacy_text_reads_back_as_itself_never_as_other_text() {
            let mut c = conn();
            encrypted_diesel::with_keyring(keys(), || {
                diesel::insert_into(enc_users::table).values(&user(1)).execute(&mut *c).expect("insert");
            });
            let looks_like_base64 = encrypted_core::encode_base64(b"legacy value");
            for legacy in [
                "MRN1",
                "abcd",
                "QUJD",
                "1234",
                "",
                "old@clinic.example",
                looks_like_base64.as_str(),
                "azhz",
            ] {
                diesel::update(enc_users::table.find(1))
                    .set(enc_users::display_name.eq(legacy))
                    .execute(&mut *c)
                    .expect("plaintext value");
                encrypted_diesel::with_keyring(keys(), || {
                    let back = load_all(&mut c).expect("identity reads it");
                    assert!(back[0].display_name == legacy, "{legacy:?} read back as other text");
                });
                encrypted_diesel::with_keyring(strict_keys(), || {
                    let e = load_all(&mut c).expect_err("fails closed");
                    assert!(matches!(crypto_error(&e), Error::Crypto { .. }), "{legacy:?}: {e:?}");
                });
            }
            // Text that decodes to the encrypted prefix is not plaintext: an error, not text.
            // Nor is transformer output stored without its base64 (found by the stored_value
            // fuzz target: it used to read back as legacy text).
            for enc_like in [
                "azhzOmVuYzo=",
                "azhzOmVuYzphZXNnY206djE6azE6AAAA",
                "k8s:enc:aesgcmgcm:v2::",
                "k8s:enc:aesgcm:v1:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ] {
                diesel::update(enc_users::table.find(1))
                    .set(enc_users::display_name.eq(enc_like))
                    .execute(&mut *c)
                    .expect("value");
                encrypted_diesel::with_keyring(keys(), || {
                    let e = load_all(&mut c).expect_err("never read as text");
                    assert!(matches!(crypto_error(&e), Error::Crypto { .. }), "{e:?}");
                });
            }
            // Written through identity (first provider) without a flag: stored as the text
            // itself, so it reads back exactly whatever it looks like.
            diesel::delete(enc_users::table).execute(&mut *c).expect("clear");
            encrypted_diesel::with_keyring(identity_first_keys(), || {
                let mut u = user(2);
                u.display_name = "MRN1".into();
                diesel::insert_into(enc_users::table).values(&u).execute(&mut *c).expect("insert");
                let stored: String = enc_users::table
                    .find(2)
                    .select(enc_users::display_name)
                    .first(&mut *c)
                    .expect("stored");
                assert_eq!(stored, "MRN1", "identity without a flag stores the raw text");
                let back = load_all(&mut c).expect("load");
                assert!(back == vec![u], "every field reads back as written");
            });
        }

        #[test]
        fn property_round_trips() {
            use proptest::prelude::*;
            let c = std::cell::RefCell::new(conn());
            let next_id = std::cell::Cell::new(0i64);
            let strategy = (
                any::<String>(),
                proptest::option::of(any::<String>()),
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50)),
                proptest::option::of("[a-zA-Z]{0,12}"),
            );
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
                cases: 24,
                ..ProptestConfig::default()
            });
            runner
                .run(&strategy, |(name, icon, blob, avatar, nick)| {
                    let id = next_id.get() + 1;
                    next_id.set(id);
                    let mut c = c.borrow_mut();
                    let mut u = user(id);
                    // NUL cannot be stored in PostgreSQL text; it is never stored here (base64),
                    // but the plain `note` column is.
                    u.display_name = name.clone();
                    u.username = name;
                    u.icon_url = icon;
                    u.secret_blob = blob;
                    u.avatar = avatar;
                    u.nickname = nick;
                    let c: &mut Conn = &mut c;
                    encrypted_diesel::with_keyring(keys(), || {
                        diesel::insert_into(enc_users::table).values(&u).execute(c).expect("insert");
                        let back: User = enc_users::table
                            .find(id)
                            .select(User::as_select())
                            .first(c)
                            .expect("load");
                        prop_assert!(back == u);
                        Ok(())
                    })
                })
                .expect("property");
        }
    };
}
