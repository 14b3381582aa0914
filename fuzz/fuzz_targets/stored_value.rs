//! The stored-value read path of `encrypted-diesel` through a real in-memory SQLite database:
//! raw stored values (from the input) are inserted with plain Diesel, then the row is loaded
//! through a `#[derive(Encrypted)]` model (base64 decoding of the text columns, `FromSql`, the
//! keyring with `aesgcm` and `identity`, the derive's open path). One model has an `encrypted`
//! flag column, one has none.
//!
//! - Never a panic; an error never shows the plaintext canary the input's values carry.
//! - Nothing that starts with `k8s:enc:` once base64-decoded (text) or as is (binary) loads
//!   unless the model wrote it: no forged `aesgcm` value.
//! - A row with `encrypted = false` loads, as exactly the text and bytes stored.
//! - A row with `encrypted = true` holds base64 of the transformer output: its text reads back
//!   as exactly the decoded text through `identity`, or fails.
//! - A value the model wrote loads back exactly, and its text column holds `azhzOmVuYz...`
//!   (base64 of `k8s:enc:`).
//! - Without a flag, a legacy plaintext text value (one not starting with `azhzOmVuYz`) loads as
//!   exactly its own text or not at all, never as other text. Regression: before issue 12
//!   item 1, `MRN1` (valid base64) read back decoded (seeds `corpus/stored_value/regression-*`).
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::sync::{LazyLock, Mutex};

use diesel::prelude::*;
use diesel::sql_types::{Binary, Bool, Nullable};
use encrypted_core::{EncryptionConfiguration, Keyring};
use libfuzzer_sys::fuzz_target;

mod schema {
    diesel::table! {
        plain_rows (id) {
            id -> BigInt,
            secret -> Text,
            note -> Nullable<Text>,
            blob -> Binary,
        }
    }
    diesel::table! {
        flagged_rows (id) {
            id -> BigInt,
            secret -> Text,
            note -> Nullable<Text>,
            blob -> Binary,
            encrypted -> Bool,
        }
    }
}
use schema::{flagged_rows, plain_rows};

#[derive(Clone, PartialEq, encrypted_diesel::Encrypted)]
#[encrypted(table = plain_rows, resource = "rows.fuzz.example")]
struct PlainRow {
    id: i64,
    #[encrypt]
    secret: String,
    #[encrypt]
    note: Option<String>,
    #[encrypt]
    blob: Vec<u8>,
}

#[derive(Clone, PartialEq, encrypted_diesel::Encrypted)]
#[encrypted(table = flagged_rows, resource = "rows.fuzz.example", flag = encrypted)]
struct FlaggedRow {
    id: i64,
    #[encrypt]
    secret: String,
    #[encrypt]
    note: Option<String>,
    #[encrypt]
    blob: Vec<u8>,
}

const CANARY: &str = "S3CR3T-PLAINTEXT-CANARY";
/// Base64 of `k8s:enc:`, which every sealed text value starts with.
const SEALED_TEXT: &str = "azhzOmVuYz";
const AESGCM_PREFIX: &[u8] = b"k8s:enc:aesgcm:v1:k1:";

static DB: LazyLock<Mutex<SqliteConnection>> = LazyLock::new(|| {
    let config = EncryptionConfiguration::from_yaml(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [rows.fuzz.example]
    providers:
      - aesgcm: {keys: [{name: k1, secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}]}
      - identity: {}
",
    )
    .expect("fuzz configuration");
    encrypted_diesel::install(Keyring::from_config(&config).expect("keyring")).expect("install");
    let mut conn = SqliteConnection::establish(":memory:").expect("SQLite");
    for ddl in [
        "CREATE TABLE plain_rows (id BIGINT PRIMARY KEY, secret TEXT NOT NULL, note TEXT, \
         blob BLOB NOT NULL)",
        "CREATE TABLE flagged_rows (id BIGINT PRIMARY KEY, secret TEXT NOT NULL, note TEXT, \
         blob BLOB NOT NULL, encrypted BOOLEAN NOT NULL)",
    ] {
        diesel::sql_query(ddl).execute(&mut conn).expect("DDL");
    }
    Mutex::new(conn)
});

/// A text column's stored value: text, or bytes stored as a BLOB in the TEXT column (which
/// Diesel reads lossily).
#[derive(Clone)]
enum Stored {
    Text(String),
    Blob(Vec<u8>),
}

impl Stored {
    fn bytes(&self) -> &[u8] {
        match self {
            Stored::Text(t) => t.as_bytes(),
            Stored::Blob(b) => b,
        }
    }

    /// The text a reader gets.
    fn read_as(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

struct Raw {
    secret: Stored,
    note: Option<Stored>,
    blob: Vec<u8>,
    flag: bool,
}

/// One row, as the loaded model's fields.
#[derive(Debug, PartialEq)]
struct Fields {
    secret: String,
    note: Option<String>,
    blob: Vec<u8>,
}

const INSERT_PLAIN: &str = "INSERT INTO plain_rows (id, secret, note, blob) VALUES (1, \
    CASE WHEN ?1 THEN CAST(?2 AS TEXT) ELSE ?2 END, CASE WHEN ?3 THEN CAST(?4 AS TEXT) ELSE ?4 END, ?5)";
const INSERT_FLAGGED: &str = "INSERT INTO flagged_rows (id, secret, note, blob, encrypted) \
    VALUES (1, CASE WHEN ?1 THEN CAST(?2 AS TEXT) ELSE ?2 END, \
    CASE WHEN ?3 THEN CAST(?4 AS TEXT) ELSE ?4 END, ?5, ?6)";

/// Inserts `raw` with plain Diesel, loads the row through the model, deletes it.
fn load_raw(conn: &mut SqliteConnection, flagged: bool, raw: &Raw) -> QueryResult<Fields> {
    let is_text = |s: &Stored| matches!(s, Stored::Text(_));
    let query = diesel::sql_query(if flagged {
        INSERT_FLAGGED
    } else {
        INSERT_PLAIN
    })
    .bind::<Bool, _>(is_text(&raw.secret))
    .bind::<Binary, _>(raw.secret.bytes())
    .bind::<Bool, _>(raw.note.as_ref().is_some_and(is_text))
    .bind::<Nullable<Binary>, _>(raw.note.as_ref().map(Stored::bytes))
    .bind::<Binary, _>(&raw.blob);
    if flagged {
        query.bind::<Bool, _>(raw.flag).execute(conn)
    } else {
        query.execute(conn)
    }
    .expect("insert the raw values");
    load(conn, flagged)
}

fn load(conn: &mut SqliteConnection, flagged: bool) -> QueryResult<Fields> {
    let loaded = if flagged {
        let row = flagged_rows::table
            .select(FlaggedRow::as_select())
            .first::<FlaggedRow>(conn);
        diesel::delete(flagged_rows::table)
            .execute(conn)
            .expect("delete");
        row.map(|r| Fields {
            secret: r.secret,
            note: r.note,
            blob: r.blob,
        })
    } else {
        let row = plain_rows::table
            .select(PlainRow::as_select())
            .first::<PlainRow>(conn);
        diesel::delete(plain_rows::table)
            .execute(conn)
            .expect("delete");
        row.map(|r| Fields {
            secret: r.secret,
            note: r.note,
            blob: r.blob,
        })
    };
    if let Err(e) = &loaded {
        let text = common::describe(e);
        assert!(!text.contains(CANARY), "plaintext in an error: {text}");
    }
    loaded
}

/// What the keyring is given for a stored text value: its base64 decoding, when it is base64.
fn keyring_bytes(text: &str) -> Option<Vec<u8>> {
    encrypted_core::decode_base64(text).ok()
}

/// Checks one text column of a row loaded without a flag (or with `encrypted = true`).
fn check_text(stored: &Stored, read: &str, flagged: bool) {
    let text = stored.read_as();
    if keyring_bytes(&text).is_some_and(|b| b.starts_with(b"k8s:enc:"))
        || text.starts_with("k8s:enc:")
    {
        panic!(
            "an encrypted value the model did not write loaded ({} chars)",
            text.len()
        );
    }
    if !matches!(stored, Stored::Text(_)) || text.starts_with(SEALED_TEXT) {
        return;
    }
    if flagged {
        // `encrypted = true`: the column is base64 of the transformer output, always (Obot's
        // format), so what `identity` reads is the decoded text, exactly.
        assert_eq!(
            Some(read.as_bytes().to_vec()),
            keyring_bytes(&text),
            "a flagged value read back as other than its decoded text"
        );
    } else {
        assert_eq!(read, text, "legacy plaintext text read back as other text");
    }
}

/// Splits the input into the values of a row.
fn split(mode: u8, rest: &[u8]) -> Raw {
    let take = |rest: &mut &[u8]| -> Vec<u8> {
        let Some((&len, tail)) = rest.split_first() else {
            return Vec::new();
        };
        let (head, tail) = tail.split_at(usize::from(len).min(tail.len()));
        *rest = tail;
        head.to_vec()
    };
    let mut rest = rest;
    let secret = take(&mut rest);
    let note = take(&mut rest);
    let blob = rest.to_vec();
    let stored = |bytes: Vec<u8>, blob_in_text: bool| {
        let bytes = match (mode >> 1) & 3 {
            // Sealed-looking: base64 of the aesgcm prefix and the input (reaches the cipher).
            1 => encrypted_core::encode_base64(&[AESGCM_PREFIX, &bytes].concat()).into_bytes(),
            // The input with the canary.
            3 => [&bytes[..], CANARY.as_bytes()].concat(),
            _ => bytes,
        };
        if blob_in_text {
            Stored::Blob(bytes)
        } else {
            Stored::Text(String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let blob = match (mode >> 1) & 3 {
        1 => [AESGCM_PREFIX, &blob].concat(),
        3 => [&blob[..], CANARY.as_bytes()].concat(),
        _ => blob,
    };
    Raw {
        secret: stored(secret, mode & 0x08 != 0),
        note: (mode & 0x20 == 0).then(|| stored(note, mode & 0x10 != 0)),
        blob,
        flag: mode & 0x40 != 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut conn = DB.lock().unwrap_or_else(|e| e.into_inner());
    let conn = &mut *conn;
    let flagged = mode & 1 == 1;
    if (mode >> 1) & 3 == 2 {
        return written(conn, flagged, rest);
    }
    let raw = split(mode, rest);
    let Ok(read) = load_raw(conn, flagged, &raw) else {
        assert!(
            !flagged || raw.flag,
            "a legacy row (encrypted = false) does not load"
        );
        return;
    };
    if flagged && !raw.flag {
        // Legacy row: the values as stored.
        assert_eq!(read.secret, raw.secret.read_as());
        assert_eq!(read.note, raw.note.as_ref().map(Stored::read_as));
        assert_eq!(read.blob, raw.blob);
        return;
    }
    check_text(&raw.secret, &read.secret, flagged);
    match (&raw.note, &read.note) {
        (Some(stored), Some(note)) => check_text(stored, note, flagged),
        (None, None) => {}
        _ => panic!("NULL and a value confused"),
    }
    assert!(
        !raw.blob.starts_with(b"k8s:enc:"),
        "a forged binary value loaded"
    );
    assert_eq!(
        read.blob, raw.blob,
        "a plaintext binary value read back as other bytes"
    );
});

/// A row the model writes: loads back exactly; its text columns hold sealed base64.
fn written(conn: &mut SqliteConnection, flagged: bool, rest: &[u8]) {
    let raw = split(0x06, rest);
    let want = Fields {
        secret: raw.secret.read_as(),
        note: (rest.first().is_some_and(|b| b & 1 == 0))
            .then(|| raw.note.as_ref().map(Stored::read_as).unwrap_or_default()),
        blob: raw.blob,
    };
    if flagged {
        let row = FlaggedRow {
            id: 1,
            secret: want.secret.clone(),
            note: want.note.clone(),
            blob: want.blob.clone(),
        };
        diesel::insert_into(flagged_rows::table)
            .values(&row)
            .execute(conn)
            .expect("insert a model");
        let stored: String = flagged_rows::table
            .select(flagged_rows::secret)
            .first(conn)
            .expect("raw");
        assert!(
            stored.starts_with(SEALED_TEXT),
            "not sealed: {} chars",
            stored.len()
        );
    } else {
        let row = PlainRow {
            id: 1,
            secret: want.secret.clone(),
            note: want.note.clone(),
            blob: want.blob.clone(),
        };
        diesel::insert_into(plain_rows::table)
            .values(&row)
            .execute(conn)
            .expect("insert a model");
        let stored: String = plain_rows::table
            .select(plain_rows::secret)
            .first(conn)
            .expect("raw");
        assert!(
            stored.starts_with(SEALED_TEXT),
            "not sealed: {} chars",
            stored.len()
        );
    }
    match load(conn, flagged) {
        Ok(read) => assert_eq!(read, want, "a written row read back otherwise"),
        Err(e) => panic!("a written row does not load: {e}"),
    }
}
