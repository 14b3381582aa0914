//! Rotating the keys of your own table, end to end, on SQLite with no setup: an encryption key
//! *and* the HMAC lookup key of a hash column, while lookups keep working.
//!
//! ```sh
//! cargo run -p encrypted-diesel --features sqlite --example rotate_keys
//! ```
//!
//! The steps are the ones to follow in production: 1. add the new keys beside the old ones,
//! the new ones first (every process reads both, new writes use the new ones); 2. `status`
//! shows what is stale; 3. `rewrap` re-encrypts and rehashes it; 4. `verify` and `status` show
//! nothing left; 5. remove the old keys.

use diesel::prelude::*;
use encrypted_core::{EncryptionConfiguration, Keyring, SecretKey};
use encrypted_diesel::rotate::{self, Options};
use encrypted_diesel::{Encrypted, Keys, LookupKey, LookupKeys, with_keyring};

mod schema {
    diesel::table! {
        /// The table (as `diesel print-schema` would print it).
        patients (clinic, mrn_id) {
            clinic -> Text,
            mrn_id -> Text,
            name -> Text,
            email -> Nullable<Text>,
            hashed_email -> Nullable<Text>,
            notes -> Nullable<Binary>,
        }
    }
}
use schema::patients;

/// A patient: a composite text key, encrypted fields, an HMAC lookup on the e-mail.
#[derive(Clone, PartialEq, Encrypted)]
#[encrypted(
    table = patients,
    resource = "patients.clinic.example",
    aad = "{resource}/{clinic}/{mrn_id}/{column}",
    primary_key(clinic, mrn_id)
)]
struct Patient {
    clinic: String,
    mrn_id: String,
    #[encrypt]
    name: String,
    #[encrypt(hash = hashed_email, hmac, normalize = lowercase_trim)]
    email: Option<String>,
    #[encrypt]
    notes: Option<Vec<u8>>,
}

/// The keys of a deployment: `aesgcm` keys in order (the first writes) and lookup keys in
/// order (the first computes new hashes, all are searched).
fn keys(aes: &[(&str, u8)], lookup: &[(&str, u8)]) -> Result<Keys, Box<dyn std::error::Error>> {
    let mut yaml = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  \
         - resources: [patients.clinic.example]\n    providers:\n      - aesgcm:\n          keys:\n",
    );
    for (name, byte) in aes {
        // Demo keys; a real deployment generates them (`obot-store keygen`) and keeps them in
        // its EncryptionConfiguration file.
        let secret = encrypted_core::encode_base64(&[*byte; 32]);
        yaml.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    let keyring = Keyring::from_config(&EncryptionConfiguration::from_yaml(&yaml)?)?;
    let mut lookups = LookupKeys::new(LookupKey::hmac(
        lookup[0].0,
        SecretKey::from(vec![lookup[0].1; 32]),
    )?);
    for (name, byte) in &lookup[1..] {
        lookups = lookups.with_older(LookupKey::hmac(name, SecretKey::from(vec![*byte; 32]))?);
    }
    Ok(Keys::new(keyring).with_lookup_keys(lookups))
}

fn patient(i: usize) -> Patient {
    Patient {
        clinic: if i.is_multiple_of(2) {
            "north"
        } else {
            "south"
        }
        .to_owned(),
        mrn_id: format!("MRN-{i:05}"),
        name: format!("Patient {i}"),
        email: (!i.is_multiple_of(4)).then(|| format!("patient{i}@mail.example")),
        notes: (i.is_multiple_of(3)).then(|| format!("notes of {i}").into_bytes()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = SqliteConnection::establish(":memory:")?;
    diesel::sql_query(
        "CREATE TABLE patients (clinic TEXT NOT NULL, mrn_id TEXT NOT NULL, name TEXT NOT NULL, \
         email TEXT, hashed_email TEXT, notes BLOB, PRIMARY KEY (clinic, mrn_id))",
    )
    .execute(&mut conn)?;

    // Before: key k1, lookup key l1.
    let before = keys(&[("k1", 1)], &[("l1", 11)])?;
    with_keyring(before, || -> Result<(), Box<dyn std::error::Error>> {
        let all: Vec<Patient> = (0..2_000).map(patient).collect();
        for chunk in all.chunks(500) {
            diesel::insert_into(patients::table)
                .values(chunk)
                .execute(&mut conn)?;
        }
        Ok(())
    })?;
    println!("2000 patients written with k1 (lookup key l1)");

    // 1. The new keys first, the old ones still read (and still found by lookups).
    let during = keys(&[("k2", 2), ("k1", 1)], &[("l2", 12), ("l1", 11)])?;
    with_keyring(during, || -> Result<(), Box<dyn std::error::Error>> {
        let found = patients::table
            .filter(Patient::email_eq("Patient7@mail.example")?)
            .select(Patient::as_select())
            .first(&mut conn)?;
        assert!(found == patient(7), "found under the old lookup key");

        // 2. What is stale.
        let s = rotate::status::<Patient, _>(&mut conn)?;
        println!(
            "status: {} rows, {} current, {} stale ({} with a hash under an older lookup key), \
             write key {}",
            s.rows, s.current, s.stale, s.stale_lookup, s.write_key
        );
        assert_eq!((s.rows, s.stale, s.stale_lookup), (2000, 2000, 1500));

        // 3. Re-encrypt and rehash, in batches, with progress.
        let opts = Options::default().batch_size(400).progress(|p| {
            println!(
                "  rewrap: {}/{} rows scanned, {} re-encrypted",
                p.scanned, p.estimated_total, p.rewrapped
            );
        });
        let done = rotate::rewrap::<Patient, _>(&mut conn, &opts)?;
        println!(
            "rewrap: {} scanned, {} re-encrypted, {} conflicts, {} unreadable",
            done.scanned, done.rewrapped, done.conflicts, done.undecryptable
        );
        assert_eq!(done.rewrapped, 2000);

        // 4. Nothing left: every value under k2, every hash under l2, none drifted.
        let v = rotate::verify::<Patient, _>(&mut conn, &Options::default())?;
        assert!(v.drifted.is_empty() && v.stale_lookup == 0);
        let s = rotate::status::<Patient, _>(&mut conn)?;
        assert_eq!((s.current, s.stale), (2000, 0));
        println!("after: {} current, {} stale", s.current, s.stale);
        Ok(())
    })?;

    // 5. The old keys can go: everything reads, and is found, with k2 and l2 alone.
    let after = keys(&[("k2", 2)], &[("l2", 12)])?;
    with_keyring(after, || -> Result<(), Box<dyn std::error::Error>> {
        let all: Vec<Patient> = patients::table
            .order((patients::clinic, patients::mrn_id))
            .select(Patient::as_select())
            .load(&mut conn)?;
        assert_eq!(all.len(), 2000);
        let found = patients::table
            .filter(Patient::email_eq(" PATIENT7@mail.example ")?)
            .select(Patient::as_select())
            .first(&mut conn)?;
        assert!(found == patient(7));
        println!("k1 and l1 removed: all 2000 patients read and are found with k2 and l2 alone");
        Ok(())
    })
}
