//! Models, keys and seed data shared by the rotation suites (sync, async, crash): two user
//! models that are not Obot's — `Note` with a composite text key and an HMAC lookup hash,
//! `Patient` with an integer key, a SHA-256 hash and an `encrypted` flag.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of the shared code"
)]

use encrypted_core::{EncryptionConfiguration, Keyring};
use encrypted_diesel::{Encrypted, Keys, LookupKey, LookupKeys};

diesel::table! {
    rot_notes (tenant, slug) {
        tenant -> Text,
        slug -> Text,
        body -> Text,
        email -> Nullable<Text>,
        hashed_email -> Nullable<Text>,
    }
}

diesel::table! {
    rot_patients (id) {
        id -> BigInt,
        mrn -> Text,
        hashed_mrn -> Text,
        chart -> Nullable<Binary>,
        encrypted -> Bool,
    }
}

/// A composite text key, an HMAC lookup on an optional field, a per-column context.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = rot_notes,
    resource = "notes.example.com",
    aad = "{resource}/{tenant}/{slug}/{column}",
    primary_key(tenant, slug)
)]
pub(crate) struct Note {
    pub tenant: String,
    pub slug: String,
    #[encrypt]
    pub body: String,
    #[encrypt(hash = hashed_email, hmac, normalize = lowercase_trim)]
    pub email: Option<String>,
}

/// An integer key, a SHA-256 lookup, binary values and Obot's `encrypted` flag.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = rot_patients,
    resource = "patients.example.com",
    aad = "{resource}/{id}",
    flag = encrypted
)]
pub(crate) struct Patient {
    pub id: i64,
    #[encrypt(hash = hashed_mrn)]
    pub mrn: String,
    #[encrypt]
    pub chart: Option<Vec<u8>>,
}

pub(crate) const K1: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";
pub(crate) const K2: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";

/// A canary that must never appear in SQL logs or errors.
pub(crate) const CANARY: &str = "canary-rotation-5f2e";

/// The keyring with `aesgcm` keys in `order` (the first writes) and `identity` last, for both
/// resources.
pub(crate) fn keyring(order: &[(&str, &str)]) -> Keyring {
    let mut y = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  \
         - resources: [notes.example.com, patients.example.com]\n    providers:\n      - aesgcm:\n          keys:\n",
    );
    for (name, secret) in order {
        y.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    y.push_str("      - identity: {}\n");
    Keyring::from_config(&EncryptionConfiguration::from_yaml(&y).expect("config")).expect("keyring")
}

pub(crate) fn lookup(name: &str) -> LookupKey {
    let byte = name.as_bytes().last().copied().unwrap_or(0);
    LookupKey::hmac(name, encrypted_core::SecretKey::from(vec![byte; 32])).expect("lookup key")
}

/// Keys: `aesgcm` in `order`, lookup keys in `lookups` order (the first computes).
pub(crate) fn keys(order: &[(&str, &str)], lookups: &[&str]) -> Keys {
    let mut set = LookupKeys::new(lookup(lookups[0]));
    for name in &lookups[1..] {
        set = set.with_older(lookup(name));
    }
    Keys::new(keyring(order)).with_lookup_keys(set)
}

/// Before the rotation: k1 writes, lookup key l1.
pub(crate) fn old_keys() -> Keys {
    keys(&[("k1", K1)], &["l1"])
}

/// During the rotation: k2 writes, k1 reads; lookup key l2 computes, l1 is still found.
pub(crate) fn rotating_keys() -> Keys {
    keys(&[("k2", K2), ("k1", K1)], &["l2", "l1"])
}

/// After the rotation: k2 and l2 only (plus identity).
pub(crate) fn new_keys() -> Keys {
    keys(&[("k2", K2)], &["l2"])
}

pub(crate) fn note(tenant: &str, i: usize) -> Note {
    Note {
        tenant: tenant.to_owned(),
        slug: format!("note-{i:04}"),
        body: format!("{CANARY} body {i}"),
        email: (!i.is_multiple_of(3)).then(|| format!(" Person{i}@Example.com ")),
    }
}

pub(crate) fn patient(id: i64) -> Patient {
    Patient {
        id,
        mrn: format!("MRN-{id}-{CANARY}"),
        chart: (id % 2 == 0).then(|| format!("chart {id} {CANARY}").into_bytes()),
    }
}

/// DDL of both tables; `temp` is `TEMPORARY ` for connection-private tables.
pub(crate) fn ddl(temp: &str, key: &str, text: &str, binary: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE {temp}TABLE rot_notes (tenant {key} NOT NULL, slug {key} NOT NULL, \
             body {text} NOT NULL, email {text}, hashed_email {text}, PRIMARY KEY (tenant, slug))"
        ),
        format!(
            "CREATE {temp}TABLE rot_patients (id BIGINT PRIMARY KEY, mrn {text} NOT NULL, \
             hashed_mrn {text} NOT NULL, chart {binary}, encrypted BOOLEAN NOT NULL)"
        ),
    ]
}

pub(crate) fn postgres_url() -> String {
    std::env::var("POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/encrypted_test".to_owned())
}

pub(crate) fn mysql_url() -> String {
    std::env::var("MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/encrypted_test".to_owned())
}

/// Flips one base64 character of a stored text value (a different, still valid, character).
pub(crate) fn tamper(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ascii")
}

/// The sync suite, once per backend: `$conn()` returns a connection with empty tables, private
/// to it.
#[macro_export]
macro_rules! rotation_suite {
    ($conn:expr) => {
        use diesel::prelude::*;
        use encrypted_diesel::rotate::{self, Options, Unreadable};
        use encrypted_diesel::{Error, with_keyring};
        use $crate::rotation::*;

        /// Patients: 1–3 under k2 (current), 4–5 under k1 (stale), 6–7 plaintext with the flag
        /// false (one looks like base64), 8 tampered (undecryptable), 9 current with a hash that
        /// does not match its value (drift).
        fn seed_patients(c: &mut Conn) {
            with_keyring(keys(&[("k2", K2)], &["l1"]), || {
                for id in [1, 2, 3, 8, 9] {
                    diesel::insert_into(rot_patients::table)
                        .values(&patient(id))
                        .execute(&mut *c)
                        .expect("insert k2");
                }
            });
            with_keyring(old_keys(), || {
                for id in [4, 5] {
                    diesel::insert_into(rot_patients::table)
                        .values(&patient(id))
                        .execute(&mut *c)
                        .expect("insert k1");
                }
            });
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
                    .expect("legacy row");
            }
            let stored: String = rot_patients::table
                .find(8i64)
                .select(rot_patients::mrn)
                .first(&mut *c)
                .expect("stored");
            diesel::update(rot_patients::table.find(8i64))
                .set(rot_patients::mrn.eq(tamper(&stored)))
                .execute(&mut *c)
                .expect("tamper");
            diesel::update(rot_patients::table.find(9i64))
                .set(rot_patients::hashed_mrn.eq(Patient::mrn_hash("someone else")))
                .execute(&mut *c)
                .expect("drift");
        }

        /// Notes under k1 and lookup key l1, in two tenants (a composite key).
        fn seed_notes(c: &mut Conn, n: usize) {
            with_keyring(old_keys(), || {
                for i in 0..n {
                    let tenant = if i.is_multiple_of(2) {
                        "acme"
                    } else {
                        "globex"
                    };
                    diesel::insert_into(rot_notes::table)
                        .values(&note(tenant, i))
                        .execute(&mut *c)
                        .expect("insert note");
                }
            });
        }

        fn counts(s: &rotate::TableStatus) -> (u64, u64, u64, u64, u64, u64) {
            (
                s.rows,
                s.current,
                s.stale,
                s.plaintext,
                s.undecryptable,
                s.drifted,
            )
        }

        #[test]
        fn status_counts_every_state_exactly() {
            let mut c = conn();
            seed_patients(&mut c);
            with_keyring(rotating_keys(), || {
                let s = rotate::status::<Patient, _>(&mut *c).expect("status");
                assert_eq!(counts(&s), (9, 4, 2, 2, 1, 1), "{s:?}");
                assert_eq!(
                    (s.table.as_str(), s.write_key.as_str()),
                    ("rot_patients", "aesgcm:k2")
                );
                let by_key: Vec<(&str, u64)> =
                    s.by_key.iter().map(|(k, n)| (k.as_str(), *n)).collect();
                assert_eq!(
                    by_key,
                    [
                        ("aesgcm:k1", 2),
                        ("aesgcm:k2", 5),
                        ("plaintext", 2),
                        ("undecryptable", 1)
                    ]
                );
                let v = rotate::verify::<Patient, _>(&mut *c, &Options::default()).expect("verify");
                assert_eq!((v.rows, v.unverifiable), (9, 1));
                assert_eq!(v.drifted.len(), 1, "{v:?}");
                assert_eq!(v.drifted[0].key, "(9,)");
                assert_eq!(v.drifted[0].columns, ["hashed_mrn"]);
                assert!(!format!("{v:?} {s:?}").contains(CANARY));
            });
        }

        #[test]
        fn rewrap_rotates_stale_and_plaintext_rows_and_leaves_the_rest() {
            let mut c = conn();
            seed_patients(&mut c);
            with_keyring(rotating_keys(), || {
                let dry = rotate::rewrap::<Patient, _>(&mut *c, &Options::default().dry_run(true))
                    .expect("dry run");
                assert_eq!((dry.scanned, dry.rewrapped, dry.undecryptable), (9, 4, 1));
                let s = rotate::status::<Patient, _>(&mut *c).expect("status");
                assert_eq!(counts(&s), (9, 4, 2, 2, 1, 1), "a dry run changes nothing");

                let opts = Options::default().batch_size(2);
                let done = rotate::rewrap::<Patient, _>(&mut *c, &opts).expect("rewrap");
                assert_eq!(
                    (
                        done.scanned,
                        done.rewrapped,
                        done.conflicts,
                        done.undecryptable,
                        done.repaired
                    ),
                    (9, 4, 0, 1, 0),
                    "{done:?}"
                );
                let s = rotate::status::<Patient, _>(&mut *c).expect("status");
                assert_eq!(counts(&s), (9, 8, 0, 0, 1, 1), "{s:?}");
                // Idempotent: a second run changes nothing.
                let again = rotate::rewrap::<Patient, _>(&mut *c, &opts).expect("again");
                assert_eq!(again.rewrapped, 0);
                // Drift is repaired only when asked.
                let fixed =
                    rotate::rewrap::<Patient, _>(&mut *c, &opts.clone().repair_hashes(true))
                        .expect("repair");
                assert_eq!((fixed.rewrapped, fixed.repaired), (1, 1));
                let s = rotate::status::<Patient, _>(&mut *c).expect("status");
                assert_eq!(counts(&s), (9, 8, 0, 0, 1, 0), "{s:?}");
            });
            // k1 can go: every readable row reads with k2 alone, legacy text exactly.
            with_keyring(new_keys(), || {
                let rows: Vec<Patient> = rot_patients::table
                    .filter(rot_patients::id.ne(8i64))
                    .order(rot_patients::id)
                    .select(Patient::as_select())
                    .load(&mut *c)
                    .expect("load");
                assert_eq!(rows.len(), 8);
                assert!(
                    rows[5].mrn == "MRN1",
                    "legacy base64-looking text kept as is"
                );
                assert!(
                    rows.iter()
                        .filter(|p| p.id <= 5 || p.id == 9)
                        .all(|p| *p == patient(p.id))
                );
                let found: Vec<Patient> = rot_patients::table
                    .filter(Patient::mrn_eq("MRN1"))
                    .select(Patient::as_select())
                    .load(&mut *c)
                    .expect("lookup");
                assert_eq!(found.len(), 1);
                let flags: Vec<bool> = rot_patients::table
                    .select(rot_patients::encrypted)
                    .load(&mut *c)
                    .expect("flags");
                assert!(flags.iter().all(|f| *f), "every rewrapped row is flagged");
            });
        }

        #[test]
        fn stop_on_unreadable_names_the_row_and_writes_nothing_of_its_batch() {
            let mut c = conn();
            seed_patients(&mut c);
            with_keyring(rotating_keys(), || {
                let opts = Options::default()
                    .batch_size(100)
                    .on_unreadable(Unreadable::Stop);
                let e = rotate::rewrap::<Patient, _>(&mut *c, &opts).expect_err("row 8");
                match &e {
                    Error::Unreadable {
                        table, key, column, ..
                    } => {
                        assert_eq!(
                            (table.as_str(), key.as_str(), *column),
                            ("rot_patients", "(8,)", "mrn")
                        );
                    }
                    other => panic!("expected Unreadable, found {other:?}"),
                }
                assert!(!format!("{e} {e:?}").contains(CANARY));
                let s = rotate::status::<Patient, _>(&mut *c).expect("status");
                assert_eq!(
                    counts(&s),
                    (9, 4, 2, 2, 1, 1),
                    "nothing of the batch was written"
                );
            });
        }

        #[test]
        fn composite_keys_and_lookups_during_a_lookup_key_rotation() {
            let mut c = conn();
            seed_notes(&mut c, 25);
            with_keyring(rotating_keys(), || {
                // A note written during the rotation is hashed with l2; the old ones with l1.
                diesel::insert_into(rot_notes::table)
                    .values(&Note {
                        email: Some("person1@example.com".into()),
                        ..note("initech", 1)
                    })
                    .execute(&mut *c)
                    .expect("new note");
                let found: Vec<Note> = rot_notes::table
                    .filter(Note::email_eq("PERSON1@example.com").expect("lookup keys"))
                    .order((rot_notes::tenant, rot_notes::slug))
                    .select(Note::as_select())
                    .load(&mut *c)
                    .expect("lookup");
                let tenants: Vec<&str> = found.iter().map(|n| n.tenant.as_str()).collect();
                assert_eq!(
                    tenants,
                    ["globex", "initech"],
                    "found under l1 and under l2"
                );
                let s = rotate::status::<Note, _>(&mut *c).expect("status");
                // 25 old notes: values under k1 (stale), hashes under l1 (stale lookup) for the
                // 16 with an e-mail; the new note is current.
                assert_eq!(
                    (s.rows, s.current, s.stale, s.stale_lookup),
                    (26, 1, 25, 16),
                    "{s:?}"
                );
                let done = rotate::rewrap::<Note, _>(&mut *c, &Options::default().batch_size(7))
                    .expect("rewrap");
                assert_eq!((done.scanned, done.rewrapped), (26, 25));
                let s = rotate::status::<Note, _>(&mut *c).expect("status");
                assert_eq!(
                    (s.current, s.stale, s.stale_lookup, s.drifted),
                    (26, 0, 0, 0),
                    "{s:?}"
                );
            });
            // After the rotation only l2 is configured: every note is still found.
            with_keyring(new_keys(), || {
                for i in [1usize, 2, 4, 5] {
                    let email = format!("person{i}@example.com");
                    let n: i64 = rot_notes::table
                        .filter(Note::email_eq(&email).expect("lookup keys"))
                        .count()
                        .get_result(&mut *c)
                        .expect("count");
                    assert!(n >= 1, "{email} not found after the rotation");
                }
                let all: Vec<Note> = rot_notes::table
                    .select(Note::as_select())
                    .load(&mut *c)
                    .expect("load");
                assert_eq!(all.len(), 26);
            });
        }

        #[test]
        fn progress_and_rate_limit_are_reported_and_logged_sql_holds_no_plaintext() {
            use std::sync::{Arc, Mutex};
            let mut c = conn();
            seed_notes(&mut c, 40);
            let log = Arc::new(Mutex::new(String::new()));
            {
                let log = Arc::clone(&log);
                c.set_instrumentation(
                    move |event: diesel::connection::InstrumentationEvent<'_>| {
                        use std::fmt::Write as _;
                        let _ = writeln!(log.lock().expect("log"), "{event:?}");
                    },
                );
            }
            let seen = Arc::new(Mutex::new(Vec::new()));
            let opts = {
                let seen = Arc::clone(&seen);
                Options::default()
                    .batch_size(10)
                    .rate(rotate::Rate::Pause(std::time::Duration::from_millis(5)))
                    .progress(move |p| {
                        seen.lock()
                            .expect("seen")
                            .push((p.scanned, p.rewrapped, p.estimated_total))
                    })
            };
            with_keyring(rotating_keys(), || {
                let done = rotate::rewrap::<Note, _>(&mut *c, &opts).expect("rewrap");
                assert_eq!(done.rewrapped, 40);
                rotate::status::<Note, _>(&mut *c).expect("status");
                rotate::verify::<Note, _>(&mut *c, &Options::default()).expect("verify");
            });
            let seen = seen.lock().expect("seen").clone();
            assert_eq!(
                seen,
                [(10, 10, 40), (20, 20, 40), (30, 30, 40), (40, 40, 40)]
            );
            let log = log.lock().expect("log").clone();
            assert!(log.contains("rot_notes"), "the log saw the queries");
            assert!(!log.contains(CANARY), "a plaintext reached the SQL log");
            assert!(!log.to_lowercase().contains("person1@example.com"));
        }
    };
}
