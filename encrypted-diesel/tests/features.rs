//! The storage rules Obot's tables need, on SQLite and PostgreSQL: empty values kept as they
//! are (`skip_empty`), blank hashes for empty values (`hash_empty = blank`), JSON wrappers
//! (`wrap`), lists encrypted element by element (`each`), models covering some rows of a shared
//! table (`rows(...)`), a fallback resource, plaintext with the flag false for a resource that
//! is not configured, and keys that must be assigned before they bind a context.
#![cfg(all(feature = "sqlite", feature = "postgres"))]
#![allow(missing_docs, unreachable_pub, reason = "test models")]

use std::collections::BTreeMap;

use diesel::prelude::*;
use encrypted_core::{EncryptionConfiguration, Keyring};
use encrypted_diesel::rotate::{self, Options};
use encrypted_diesel::{Encrypted, Error, Keys, with_keyring};

diesel::table! {
    f_audit (id) {
        id -> BigInt,
        kind -> Text,
        user_id -> Text,
        body -> Nullable<Binary>,
        note -> Nullable<Text>,
        remotes -> Nullable<Json>,
        encrypted -> Bool,
    }
}

diesel::table! {
    f_creds (id) {
        id -> BigInt,
        name -> Text,
        context -> Text,
        secrets -> Nullable<Text>,
        encrypted -> Bool,
    }
}

diesel::table! {
    f_people (id) {
        id -> BigInt,
        email -> Text,
        hashed_email -> Text,
        encrypted -> Bool,
    }
}

/// The `mcp` rows of the shared audit table.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = f_audit, resource = "audit.example.com", aad = "{resource}/{user_id}/mcp",
    flag = encrypted, rows(kind = "mcp"))]
pub struct AuditMcp {
    pub id: i64,
    pub kind: String,
    pub user_id: String,
    #[encrypt(base64, skip_empty)]
    pub body: Option<Vec<u8>>,
    #[encrypt(skip_empty)]
    pub note: Option<String>,
}

/// The `local` rows: another context, a list encrypted element by element.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = f_audit, resource = "audit.example.com", aad = "{resource}/local/{user_id}",
    flag = encrypted, rows(kind = "local"))]
pub struct AuditLocal {
    pub id: i64,
    pub kind: String,
    pub user_id: String,
    #[encrypt(each, skip_empty)]
    pub remotes: Option<Vec<String>>,
}

/// Obot's credential layout: a JSON wrapper around the base64, a fallback resource.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = f_creds, resource = "creds.example.com", fallback_resource = "fallback.example.com",
    aad = "{name}///{context}", flag = encrypted)]
pub struct Cred {
    pub id: i64,
    pub name: String,
    pub context: String,
    #[encrypt(json, wrap = "_obot_encrypted_env")]
    pub secrets: Option<BTreeMap<String, String>>,
}

/// A resource the first configuration does not list; a blank hash for an empty value; its key
/// in the context.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = f_people, resource = "people.example.com", aad = "{resource}/{id}", flag = encrypted)]
pub struct Person {
    pub id: i64,
    #[encrypt(hash = hashed_email, hash_empty = blank)]
    pub email: String,
}

diesel::table! {
    f_members (id) {
        id -> BigInt,
        email -> Text,
        hashed_email -> Text,
    }
}

/// A JSON SQL type of the application's own: `jsonb` on PostgreSQL, JSON text on SQLite (as
/// obot-store's schema declares GORM's `JSONSlice` columns).
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DualJson;

encrypted_diesel::list_column_type!(DualJson,
    diesel::pg::Pg => diesel::sql_types::Jsonb,
    diesel::sqlite::Sqlite => diesel::sql_types::Json);

diesel::table! {
    use diesel::sql_types::*;
    use super::DualJson;

    f_tags (id) {
        id -> BigInt,
        tags -> Nullable<DualJson>,
    }
}

/// Each element of a list in the application's own JSON type.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = f_tags, resource = "audit.example.com", aad = "{resource}/tags/{id}",
    backends(postgres, sqlite))]
pub struct Tagged {
    pub id: i64,
    #[encrypt(each, skip_empty)]
    pub tags: Option<Vec<String>>,
}

diesel::table! {
    f_gorm (id) {
        id -> BigInt,
        secret -> Nullable<Text>,
        encrypted -> Nullable<Bool>,
    }
}

/// GORM's nullable `encrypted` column: NULL reads as false.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = f_gorm, resource = "audit.example.com", aad = "{resource}/gorm/{id}", flag = encrypted)]
pub struct Gorm {
    pub id: i64,
    #[encrypt]
    pub secret: Option<String>,
}

/// A table whose hash column is plain SHA-256 (as Obot's are)...
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = f_members, resource = "audit.example.com", aad = "{resource}/member/{id}")]
pub struct MemberSha {
    pub id: i64,
    #[encrypt(hash = hashed_email, normalize = lowercase_trim)]
    pub email: String,
}

/// ...and the same table once the field is declared `hmac`: the migration.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(table = f_members, resource = "audit.example.com", aad = "{resource}/member/{id}")]
pub struct MemberHmac {
    pub id: i64,
    #[encrypt(hash = hashed_email, hmac, normalize = lowercase_trim)]
    pub email: String,
}

const K1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";
const K2: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";
const CANARY: &str = "canary-features-91ab";

/// `aesgcm` with `list` (the first writes), then `identity`, for `resources`.
fn keys(resources: &[&str], list: &[(&str, &str)]) -> Keys {
    let mut y = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  \
         - resources: [{}]\n    providers:\n      - aesgcm:\n          keys:\n",
        resources.join(", ")
    );
    for (name, secret) in list {
        y.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    y.push_str("      - identity: {}\n");
    Keys::new(
        Keyring::from_config(&EncryptionConfiguration::from_yaml(&y).expect("config"))
            .expect("keyring"),
    )
}

fn all_keys() -> Keys {
    keys(
        &[
            "audit.example.com",
            "fallback.example.com",
            "people.example.com",
        ],
        &[("k1", K1)],
    )
}

fn decoded_prefix(text: &str) -> Vec<u8> {
    encrypted_core::decode_base64(text).expect("base64")[..8].to_vec()
}

macro_rules! feature_suite {
    ($conn:expr) => {
        use super::*;

        #[test]
        fn empty_values_are_kept_and_lists_are_encrypted_element_by_element() {
            let mut c = $conn;
            with_keyring(all_keys(), || {
                let mcp = AuditMcp {
                    id: 1,
                    kind: "mcp".into(),
                    user_id: "u1".into(),
                    body: Some(Vec::new()),
                    note: Some(format!("{CANARY} note")),
                };
                let empty_note = AuditMcp {
                    id: 2,
                    body: Some(br#"{"a":1}"#.to_vec()),
                    note: Some(String::new()),
                    ..mcp.clone()
                };
                let local = AuditLocal {
                    id: 3,
                    kind: "local".into(),
                    user_id: "u1".into(),
                    remotes: Some(vec![
                        format!("git@{CANARY}"),
                        String::new(),
                        "https://b".into(),
                    ]),
                };
                for m in [&mcp, &empty_note] {
                    diesel::insert_into(f_audit::table)
                        .values(m)
                        .execute(&mut c)
                        .expect("mcp");
                }
                diesel::insert_into(f_audit::table)
                    .values(&local)
                    .execute(&mut c)
                    .expect("local");
                let (body, note): (Option<Vec<u8>>, Option<String>) = f_audit::table
                    .find(1i64)
                    .select((f_audit::body, f_audit::note))
                    .first(&mut c)
                    .expect("raw");
                assert_eq!(body, Some(Vec::new()), "an empty body is stored as it is");
                assert_eq!(decoded_prefix(&note.expect("note")), b"k8s:enc:");
                let note2: Option<String> = f_audit::table
                    .find(2i64)
                    .select(f_audit::note)
                    .first(&mut c)
                    .expect("raw");
                assert_eq!(
                    note2.as_deref(),
                    Some(""),
                    "an empty note is stored as it is"
                );
                let remotes: Option<serde_json::Value> = f_audit::table
                    .find(3i64)
                    .select(f_audit::remotes)
                    .first(&mut c)
                    .expect("raw");
                let remotes = remotes.expect("remotes");
                let items = remotes.as_array().expect("a JSON array");
                assert_eq!(items.len(), 3);
                assert_eq!(
                    decoded_prefix(items[0].as_str().expect("string")),
                    b"k8s:enc:"
                );
                assert_eq!(items[1], "", "an empty element is kept as it is");
                assert!(!remotes.to_string().contains(CANARY));
                // Each model reads its rows (and only knows its columns).
                let back: Vec<AuditMcp> = f_audit::table
                    .filter(f_audit::kind.eq("mcp"))
                    .order(f_audit::id)
                    .select(AuditMcp::as_select())
                    .load(&mut c)
                    .expect("mcp rows");
                assert!(back == vec![mcp, empty_note]);
                let back: AuditLocal = f_audit::table
                    .find(3i64)
                    .select(AuditLocal::as_select())
                    .first(&mut c)
                    .expect("local row");
                assert!(back == local);
            });
            // Each model's status and rewrap see only its rows.
            let two = keys(&["audit.example.com"], &[("k2", K2), ("k1", K1)]);
            with_keyring(two.clone(), || {
                let mcp = rotate::status::<AuditMcp, _>(&mut c).expect("status");
                assert_eq!(
                    (mcp.table.as_str(), mcp.rows, mcp.stale),
                    ("f_audit[kind=mcp]", 2, 2),
                    "{mcp:?}"
                );
                let local = rotate::status::<AuditLocal, _>(&mut c).expect("status");
                assert_eq!((local.rows, local.stale), (1, 1), "{local:?}");
            });
            with_keyring(two, || {
                let done =
                    rotate::rewrap::<AuditLocal, _>(&mut c, &Options::default()).expect("rewrap");
                assert_eq!((done.scanned, done.rewrapped), (1, 1));
                let done =
                    rotate::rewrap::<AuditMcp, _>(&mut c, &Options::default()).expect("rewrap");
                assert_eq!((done.scanned, done.rewrapped), (2, 2));
                let back: AuditLocal = f_audit::table
                    .find(3i64)
                    .select(AuditLocal::as_select())
                    .first(&mut c)
                    .expect("local row");
                assert_eq!(back.remotes.as_ref().expect("remotes")[2], "https://b");
                let s = rotate::status::<AuditLocal, _>(&mut c).expect("status");
                assert_eq!((s.current, s.stale), (1, 0));
            });
        }

        #[test]
        fn wrapped_json_fallback_resource_and_legacy_rows() {
            let mut c = $conn;
            // Only the fallback resource is configured.
            with_keyring(keys(&["fallback.example.com"], &[("fb", K2)]), || {
                let cred = Cred {
                    id: 1,
                    name: "github".into(),
                    context: "default".into(),
                    secrets: Some(BTreeMap::from([("TOKEN".into(), CANARY.into())])),
                };
                diesel::insert_into(f_creds::table)
                    .values(&cred)
                    .execute(&mut c)
                    .expect("insert");
                let stored: Option<String> = f_creds::table
                    .find(1i64)
                    .select(f_creds::secrets)
                    .first(&mut c)
                    .expect("raw");
                let stored = stored.expect("secrets");
                let object: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&stored).expect("a JSON object");
                assert_eq!(object.len(), 1);
                let b64 = object["_obot_encrypted_env"]
                    .as_str()
                    .expect("base64 string");
                assert!(
                    encrypted_core::decode_base64(b64)
                        .expect("base64")
                        .starts_with(b"k8s:enc:aesgcm:v1:fb:")
                );
                assert!(!stored.contains(CANARY));
                // A legacy row holds the plaintext JSON itself.
                diesel::insert_into(f_creds::table)
                    .values((
                        f_creds::id.eq(2i64),
                        f_creds::name.eq("old"),
                        f_creds::context.eq("default"),
                        f_creds::secrets.eq(r#"{"A":"b"}"#),
                        f_creds::encrypted.eq(false),
                    ))
                    .execute(&mut c)
                    .expect("legacy");
                let all: Vec<Cred> = f_creds::table
                    .order(f_creds::id)
                    .select(Cred::as_select())
                    .load(&mut c)
                    .expect("load");
                assert!(all[0] == cred);
                assert!(all[1].secrets == Some(BTreeMap::from([("A".into(), "b".into())])));
                // A value moved to another row does not read (the context binds name and context).
                diesel::update(f_creds::table.find(2i64))
                    .set((f_creds::secrets.eq(&stored), f_creds::encrypted.eq(true)))
                    .execute(&mut c)
                    .expect("move");
                let e = f_creds::table
                    .find(2i64)
                    .select(Cred::as_select())
                    .first::<Cred>(&mut c)
                    .expect_err("moved");
                assert!(!format!("{e} {e:?}").contains(CANARY));
                // A wrapper with another shape is an error, not a value.
                diesel::update(f_creds::table.find(2i64))
                    .set(f_creds::secrets.eq(r#"{"_obot_encrypted_env":"x","more":"y"}"#))
                    .execute(&mut c)
                    .expect("bad wrapper");
                assert!(
                    f_creds::table
                        .find(2i64)
                        .select(Cred::as_select())
                        .first::<Cred>(&mut c)
                        .is_err()
                );
            });
        }

        #[test]
        fn an_unconfigured_resource_writes_plaintext_with_the_flag_false_until_configured() {
            let mut c = $conn;
            let unlisted = keys(&["audit.example.com"], &[("k1", K1)]);
            with_keyring(unlisted.clone(), || {
                for (id, email) in [(1i64, "Alice@Example.com"), (2, "")] {
                    diesel::insert_into(f_people::table)
                        .values(&Person {
                            id,
                            email: email.into(),
                        })
                        .execute(&mut c)
                        .expect("insert");
                }
                let rows: Vec<(String, String, bool)> = f_people::table
                    .order(f_people::id)
                    .select((f_people::email, f_people::hashed_email, f_people::encrypted))
                    .load(&mut c)
                    .expect("raw");
                assert_eq!(
                    rows[0].0, "Alice@Example.com",
                    "plaintext, as Obot writes without a transformer"
                );
                assert!(!rows[0].2, "with the flag false");
                assert_eq!(
                    rows[0].1,
                    encrypted_diesel::hash::sha256_hex(b"Alice@Example.com")
                );
                assert_eq!(rows[1].1, "", "an empty e-mail leaves the hash blank");
                let s = rotate::status::<Person, _>(&mut c).expect("status");
                assert_eq!(
                    (s.rows, s.not_configured, s.write_key.as_str()),
                    (2, 2, "not configured"),
                    "{s:?}"
                );
                let done =
                    rotate::rewrap::<Person, _>(&mut c, &Options::default()).expect("rewrap");
                assert_eq!(
                    (done.rewrapped, done.not_configured),
                    (0, 2),
                    "nothing to encrypt with"
                );
                let back: Vec<Person> = f_people::table
                    .order(f_people::id)
                    .select(Person::as_select())
                    .load(&mut c)
                    .expect("load");
                assert!(back[0].email == "Alice@Example.com");
                let found: i64 = f_people::table
                    .filter(Person::email_eq("Alice@Example.com"))
                    .count()
                    .get_result(&mut c)
                    .expect("lookup");
                assert_eq!(found, 1);
            });
            with_keyring(all_keys(), || {
                let s = rotate::status::<Person, _>(&mut c).expect("status");
                assert_eq!((s.rows, s.plaintext, s.not_configured), (2, 2, 0), "{s:?}");
                let done =
                    rotate::rewrap::<Person, _>(&mut c, &Options::default()).expect("rewrap");
                assert_eq!(done.rewrapped, 2);
                let flags: Vec<bool> = f_people::table
                    .select(f_people::encrypted)
                    .load(&mut c)
                    .expect("flags");
                assert!(flags.iter().all(|f| *f));
                let back: Vec<Person> = f_people::table
                    .order(f_people::id)
                    .select(Person::as_select())
                    .load(&mut c)
                    .expect("load");
                assert!(back[0].email == "Alice@Example.com" && back[1].email.is_empty());
                let s = rotate::status::<Person, _>(&mut c).expect("status");
                assert_eq!((s.current, s.drifted), (2, 0), "{s:?}");
            });
            // A flag-true row whose resource is then unlisted fails closed.
            with_keyring(unlisted, || {
                let e = f_people::table
                    .select(Person::as_select())
                    .load::<Person>(&mut c)
                    .expect_err("not configured");
                assert!(e.to_string().contains("people.example.com"), "{e}");
            });
        }

        #[test]
        fn lists_in_a_json_type_of_the_application() {
            let mut c = $conn;
            with_keyring(all_keys(), || {
                let rows = [
                    Tagged {
                        id: 1,
                        tags: Some(vec![format!("tag {CANARY}"), String::new()]),
                    },
                    Tagged { id: 2, tags: None },
                    Tagged {
                        id: 3,
                        tags: Some(Vec::new()),
                    },
                ];
                for r in &rows {
                    diesel::insert_into(f_tags::table)
                        .values(r)
                        .execute(&mut c)
                        .expect("insert");
                }
                let back: Vec<Tagged> = f_tags::table
                    .order(f_tags::id)
                    .select(Tagged::as_select())
                    .load(&mut c)
                    .expect("load");
                assert!(back == rows);
                // `None` is JSON null (as GORM writes a nil slice), not SQL NULL; both read as None.
                let null_rows: i64 = f_tags::table
                    .filter(f_tags::tags.is_null())
                    .count()
                    .get_result(&mut c)
                    .expect("count");
                assert_eq!(null_rows, 0, "None is stored as JSON null");
                let s = rotate::status::<Tagged, _>(&mut c).expect("status");
                assert_eq!((s.rows, s.current, s.empty), (3, 1, 2), "{s:?}");
            });
        }

        #[test]
        fn a_nullable_flag_reads_null_as_false_and_rewrap_sets_it() {
            let mut c = $conn;
            diesel::insert_into(f_gorm::table)
                .values((
                    f_gorm::id.eq(1i64),
                    f_gorm::secret.eq("MRN1"),
                    f_gorm::encrypted.eq(None::<bool>),
                ))
                .execute(&mut c)
                .expect("legacy row, NULL flag");
            with_keyring(all_keys(), || {
                let row: Gorm = f_gorm::table
                    .find(1i64)
                    .select(Gorm::as_select())
                    .first(&mut c)
                    .expect("load");
                assert!(
                    row.secret.as_deref() == Some("MRN1"),
                    "NULL flag: plaintext as stored"
                );
                let s = rotate::status::<Gorm, _>(&mut c).expect("status");
                assert_eq!((s.rows, s.plaintext), (1, 1), "{s:?}");
                let done = rotate::rewrap::<Gorm, _>(&mut c, &Options::default()).expect("rewrap");
                assert_eq!(done.rewrapped, 1);
                let flag: Option<bool> = f_gorm::table
                    .find(1i64)
                    .select(f_gorm::encrypted)
                    .first(&mut c)
                    .expect("flag");
                assert_eq!(flag, Some(true));
                let row: Gorm = f_gorm::table
                    .find(1i64)
                    .select(Gorm::as_select())
                    .first(&mut c)
                    .expect("load");
                assert!(row.secret.as_deref() == Some("MRN1"));
                diesel::insert_into(f_gorm::table)
                    .values(&Gorm {
                        id: 2,
                        secret: None,
                    })
                    .execute(&mut c)
                    .expect("insert");
                let flag: Option<bool> = f_gorm::table
                    .find(2i64)
                    .select(f_gorm::encrypted)
                    .first(&mut c)
                    .expect("flag");
                assert_eq!(flag, Some(true), "written rows are flagged");
            });
        }

        /// Migrating a hash column from SHA-256 to HMAC: declare the field `hmac`, accept the
        /// legacy SHA-256 beside the new lookup key while `rewrap` rehashes, then drop it.
        #[test]
        fn a_sha256_hash_column_migrates_to_hmac() {
            let mut c = $conn;
            with_keyring(all_keys(), || {
                for id in 1..=5i64 {
                    diesel::insert_into(f_members::table)
                        .values(&MemberSha {
                            id,
                            email: format!("Member{id}@Example.com"),
                        })
                        .execute(&mut c)
                        .expect("insert");
                }
            });
            let lookup = |name: &str| {
                encrypted_diesel::LookupKey::hmac(
                    name,
                    encrypted_core::SecretKey::from(vec![7u8; 32]),
                )
                .expect("lookup key")
            };
            let migrating = all_keys().with_lookup_keys(
                encrypted_diesel::LookupKeys::new(lookup("l1")).with_legacy_sha256(),
            );
            with_keyring(migrating, || {
                // Old rows are found through their SHA-256 hash.
                let n: i64 = f_members::table
                    .filter(MemberHmac::email_eq("member3@example.com").expect("lookup"))
                    .count()
                    .get_result(&mut c)
                    .expect("count");
                assert_eq!(n, 1);
                let s = rotate::status::<MemberHmac, _>(&mut c).expect("status");
                assert_eq!(
                    (s.rows, s.stale, s.stale_lookup, s.drifted),
                    (5, 5, 5, 0),
                    "{s:?}"
                );
                let done =
                    rotate::rewrap::<MemberHmac, _>(&mut c, &Options::default()).expect("rewrap");
                assert_eq!(done.rewrapped, 5);
            });
            let hmac_only =
                all_keys().with_lookup_keys(encrypted_diesel::LookupKeys::new(lookup("l1")));
            with_keyring(hmac_only, || {
                let stored: String = f_members::table
                    .find(3i64)
                    .select(f_members::hashed_email)
                    .first(&mut c)
                    .expect("hash");
                assert_ne!(
                    stored,
                    encrypted_diesel::hash::sha256_hex(b"member3@example.com"),
                    "rehashed"
                );
                let found: MemberHmac = f_members::table
                    .filter(MemberHmac::email_eq(" MEMBER3@example.com").expect("lookup"))
                    .select(MemberHmac::as_select())
                    .first(&mut c)
                    .expect("found with the HMAC alone");
                assert!(found.email == "Member3@Example.com");
                let v =
                    rotate::verify::<MemberHmac, _>(&mut c, &Options::default()).expect("verify");
                assert_eq!((v.ok, v.stale_lookup, v.drifted.len()), (5, 0, 0));
            });
        }

        #[test]
        fn a_key_in_the_context_must_be_assigned_before_sealing() {
            let mut c = $conn;
            with_keyring(all_keys(), || {
                let e = diesel::insert_into(f_people::table)
                    .values(&Person {
                        id: 0,
                        email: CANARY.into(),
                    })
                    .execute(&mut c)
                    .expect_err("id 0 is not assigned");
                match &e {
                    diesel::result::Error::SerializationError(inner) => assert!(
                        matches!(
                            inner.downcast_ref::<Error>(),
                            Some(Error::UnassignedKey {
                                model: "Person",
                                field: "id"
                            })
                        ),
                        "{e:?}"
                    ),
                    other => panic!("expected a serialization error, found {other:?}"),
                }
                assert!(!format!("{e} {e:?}").contains(CANARY));
                let n: i64 = f_people::table.count().get_result(&mut c).expect("count");
                assert_eq!(n, 0, "nothing was written");
            });
        }
    };
}

const SQLITE_DDL: &[&str] = &[
    "CREATE TABLE f_audit (id BIGINT PRIMARY KEY, kind TEXT NOT NULL, user_id TEXT NOT NULL, \
     body BLOB, note TEXT, remotes JSON, encrypted BOOLEAN NOT NULL)",
    "CREATE TABLE f_creds (id BIGINT PRIMARY KEY, name TEXT NOT NULL, context TEXT NOT NULL, \
     secrets TEXT, encrypted BOOLEAN NOT NULL)",
    "CREATE TABLE f_people (id BIGINT PRIMARY KEY, email TEXT NOT NULL, hashed_email TEXT NOT NULL, \
     encrypted BOOLEAN NOT NULL)",
    "CREATE TABLE f_members (id BIGINT PRIMARY KEY, email TEXT NOT NULL, hashed_email TEXT NOT NULL)",
    "CREATE TABLE f_tags (id BIGINT PRIMARY KEY, tags JSON)",
    "CREATE TABLE f_gorm (id BIGINT PRIMARY KEY, secret TEXT, encrypted BOOLEAN)",
];

mod sqlite {
    fn conn() -> diesel::SqliteConnection {
        use diesel::{Connection, RunQueryDsl};
        let mut c = diesel::SqliteConnection::establish(":memory:").expect("SQLite");
        for stmt in super::SQLITE_DDL {
            diesel::sql_query(*stmt).execute(&mut c).expect("ddl");
        }
        c
    }

    feature_suite!(conn());
}

mod postgres {
    fn conn() -> diesel::PgConnection {
        use diesel::{Connection, RunQueryDsl};
        let url = std::env::var("POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/encrypted_test".to_owned());
        let mut c = diesel::PgConnection::establish(&url)
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is unreachable: {e}"));
        for stmt in super::SQLITE_DDL {
            let stmt = stmt
                .replace("CREATE TABLE", "CREATE TEMPORARY TABLE")
                .replace("BLOB", "BYTEA")
                .replace("tags JSON", "tags JSONB");
            diesel::sql_query(stmt).execute(&mut c).expect("ddl");
        }
        c
    }

    feature_suite!(conn());
}
