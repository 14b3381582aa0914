//! Errors and `tracing` output never contain a planted canary: every span and event of the whole
//! stack (the models, the keyring, a `kms` provider and its key service) is captured at TRACE
//! level, with span fields, while canary plaintexts are written, read, looked up, tampered with,
//! moved to another row and read without the right key; then the capture and every error's
//! `Display` and `Debug` are searched for the canaries.
#![cfg(feature = "sqlite")]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use common::{CANARY, KEY1, User, enc_users, user};
use diesel::prelude::*;
use encrypted_core::kms::{KmsOptions, factory};
use encrypted_core::{EncryptionConfiguration, Keyring, SecretKey};
use encrypted_diesel::{Keys, with_keyring};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// A `kms` provider (local key service, a key-encryption key in a file) first, `aesgcm` after it.
fn kms_keys(dir: &std::path::Path) -> Keys {
    let kek = dir.join("kek");
    std::fs::write(
        &kek,
        base64::engine::general_purpose::STANDARD.encode([7_u8; 32]),
    )
    .expect("write the key-encryption key");
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
         - resources: [users.obot.obot.ai]\n  providers:\n  \
         - kms:\n      apiVersion: v2\n      name: local-kms\n      endpoint: local://{}\n  \
         - aesgcm:\n      keys:\n      - name: k1\n        secret: {KEY1}\n",
        kek.display()
    );
    let config = EncryptionConfiguration::from_yaml(&yaml).expect("configuration");
    let keyring = Keyring::builder()
        .kms(factory(KmsOptions::default()))
        .build(&config)
        .expect("keyring");
    Keys::new(keyring).with_lookup_key(SecretKey::from(vec![42_u8; 32]))
}

/// The errors seen, as their `Display` and `Debug` text.
fn describe(e: &dyn std::fmt::Debug, display: &dyn std::fmt::Display) -> String {
    format!("{display}\n{e:?}\n")
}

#[test]
fn errors_and_tracing_output_never_contain_the_canary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish();
    let canary_email = format!("{CANARY}@example.com");
    let mut errors = String::new();

    tracing::subscriber::with_default(subscriber, || {
        // Something must be captured, or the search below proves nothing.
        tracing::info!(target: "canary-test", "capture is on");
        let mut c = SqliteConnection::establish(":memory:").expect("SQLite");
        for stmt in common::ddl("", "BIGINT", "TEXT", "BLOB", "BOOLEAN") {
            diesel::sql_query(stmt)
                .execute(&mut c)
                .expect("create table");
        }
        let keys = kms_keys(dir.path());
        with_keyring(keys, || {
            let mut a = user(1);
            a.email = canary_email.clone();
            a.display_name = CANARY.into();
            a.secret_blob = CANARY.as_bytes().to_vec();
            a.nickname = Some(CANARY.into());
            let b = user(2);
            diesel::insert_into(enc_users::table)
                .values(&vec![a.clone(), b])
                .execute(&mut c)
                .expect("insert");
            let back: User = enc_users::table
                .filter(User::email_eq(&canary_email))
                .select(User::as_select())
                .first(&mut c)
                .expect("lookup by email");
            assert!(back == a, "the canary row reads back");

            // Moved: row 1's display name copied into row 2.
            let stolen: String = enc_users::table
                .find(1)
                .select(enc_users::display_name)
                .first(&mut c)
                .expect("raw value");
            diesel::update(enc_users::table.find(2))
                .set(enc_users::display_name.eq(&stolen))
                .execute(&mut c)
                .expect("copy");
            let moved = enc_users::table
                .find(2)
                .select(User::as_select())
                .first::<User>(&mut c)
                .expect_err("a moved value is refused");
            errors.push_str(&describe(&moved, &moved));

            // Tampered: one bit of row 1's stored email flipped (in the ciphertext, well after
            // the prefix), re-encoded as valid base64.
            let stored: String = enc_users::table
                .find(1)
                .select(enc_users::email)
                .first(&mut c)
                .expect("raw value");
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut bytes = b64.decode(&stored).expect("stored base64");
            let at = bytes.len() - 20;
            bytes[at] ^= 0x01;
            diesel::update(enc_users::table.find(1))
                .set(enc_users::email.eq(b64.encode(&bytes)))
                .execute(&mut c)
                .expect("tamper");
            let tampered = enc_users::table
                .find(1)
                .select(User::as_select())
                .first::<User>(&mut c)
                .expect_err("a tampered value is refused");
            errors.push_str(&describe(&tampered, &tampered));
        });

        // Read with keys that do not hold the writing key.
        with_keyring(common::strict_keys(), || {
            let unknown = enc_users::table
                .select(User::as_select())
                .load::<User>(&mut c)
                .expect_err("no configured key reads the kms values");
            errors.push_str(&describe(&unknown, &unknown));
        });
    });

    let captured = capture.text();
    assert!(
        captured.contains("capture is on") && captured.contains("kms."),
        "the subscriber saw the test and the kms spans:\n{captured}"
    );
    assert!(
        !errors.is_empty() && errors.matches('\n').count() >= 6,
        "{errors}"
    );
    for (what, text) in [("tracing output", &captured), ("errors", &errors)] {
        assert!(!text.contains(CANARY), "{what} leak the canary:\n{text}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(CANARY);
        assert!(
            !text.contains(&b64[..20]),
            "{what} leak the canary's base64:\n{text}"
        );
    }
}
