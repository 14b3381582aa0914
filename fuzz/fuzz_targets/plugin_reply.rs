//! A KMS v2 plugin's replies as the client decodes them (`encrypted_core::__fuzz::plugin_reply`)
//! and the envelope layer checks them: the input scripts the `Status`, `Encrypt` and `Decrypt`
//! answers of a key service behind a `KmsTransformer`.
//!
//! - Never a panic.
//! - A transformer becomes writable exactly when the replies are valid by the KMS v2 rules
//!   (`version` `v2`, `healthz` `ok`, the same key id in `Status` and `Encrypt`, a wrapped seed
//!   of 1 to 1024 bytes, a key id of 1 to 1024 bytes, annotation keys that are domain names and
//!   at most 32 KiB of annotations); otherwise writes fail with a typed error.
//! - A value written reads back through a second transformer (a fresh cache) exactly when the
//!   plugin's `Decrypt` answers the seed it was given; any other answer fails to read.
//! - No error shows the seed.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};

use encrypted_core::__fuzz::{PluginMethod, PluginReply, plugin_reply};
use encrypted_core::kms::{
    DecryptRequest, EncryptResponse, EncryptedObject, KeyService, KmsError, KmsOptions,
    KmsTransformer, Status, Zeroizing,
};
use encrypted_core::{Error, Transformer};
use libfuzzer_sys::fuzz_target;

/// A plugin answering what the input says; it remembers the seeds it was given.
#[derive(Debug)]
struct Scripted {
    status: Option<Status>,
    encrypt: Option<EncryptResponse>,
    /// `None`: answers the seed it wrapped (an honest plugin).
    decrypt: Option<Zeroizing<Vec<u8>>>,
    seeds: Arc<Mutex<Vec<Vec<u8>>>>,
}

fn refused() -> Error {
    KmsError::PluginStatus {
        endpoint: "unix:///fuzz".to_owned(),
        code: 13,
        message: "not protobuf".to_owned(),
    }
    .into()
}

impl KeyService for Scripted {
    fn status(&self) -> Result<Status, Error> {
        self.status.clone().ok_or_else(refused)
    }

    fn encrypt(&self, _uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        self.seeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(plaintext.to_vec());
        self.encrypt.clone().ok_or_else(refused)
    }

    fn decrypt(&self, _uid: &str, _request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        match &self.decrypt {
            Some(answer) => Ok(answer.clone()),
            None => {
                let seeds = self.seeds.lock().unwrap_or_else(|e| e.into_inner());
                seeds
                    .first()
                    .cloned()
                    .map(Zeroizing::new)
                    .ok_or_else(refused)
            }
        }
    }
}

/// `[len u16] body` pieces.
fn piece<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let len = match data {
        [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => 0,
    };
    let rest = data.get(2..).unwrap_or_default();
    let (body, rest) = rest.split_at(len.min(rest.len()));
    *data = rest;
    body
}

fn valid(status: Option<&Status>, encrypt: Option<&EncryptResponse>) -> bool {
    let (Some(status), Some(encrypt)) = (status, encrypt) else {
        return false;
    };
    let object = EncryptedObject {
        encrypted_data: vec![1],
        key_id: encrypt.key_id.clone(),
        encrypted_dek_source: encrypt.ciphertext.clone(),
        annotations: encrypt.annotations.clone(),
        ..EncryptedObject::default()
    };
    status.version == "v2"
        && status.healthz == "ok"
        && status.key_id == encrypt.key_id
        && object.validate().is_ok()
}

fn check_error(e: &Error, service: &Scripted) {
    let text = common::describe(e);
    for seed in service
        .seeds
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        assert!(!common::shows(&text, seed), "the seed in an error: {text}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let status = match plugin_reply(PluginMethod::Status, piece(&mut data)) {
        Some(PluginReply::Status(s)) => Some(s),
        _ => None,
    };
    let encrypt = match plugin_reply(PluginMethod::Encrypt, piece(&mut data)) {
        Some(PluginReply::Encrypt(e)) => Some(e),
        _ => None,
    };
    let lie = piece(&mut data);
    let decrypt = match plugin_reply(PluginMethod::Decrypt, lie) {
        Some(PluginReply::Decrypt(d)) if !lie.is_empty() => Some(d),
        _ => None,
    };
    let expected = valid(status.as_ref(), encrypt.as_ref());
    let seeds = Arc::new(Mutex::new(Vec::new()));
    let service = Arc::new(Scripted {
        status,
        encrypt,
        decrypt: decrypt.clone(),
        seeds: Arc::clone(&seeds),
    });
    let options = KmsOptions::default().background_polling(false);
    let writer = KmsTransformer::new(
        "fz",
        Arc::clone(&service) as Arc<dyn KeyService>,
        options.clone(),
    )
    .expect("a transformer");
    assert_eq!(
        writer.health().writable,
        expected,
        "writable disagrees with the rules"
    );
    let plaintext = b"the plaintext";
    let mut stored = Vec::new();
    match writer.seal(plaintext, b"ctx", &mut stored) {
        Ok(()) => assert!(expected, "wrote with invalid replies"),
        Err(e) => {
            assert!(!expected, "valid replies but no write: {e}");
            assert!(
                matches!(e, Error::Kms(KmsError::NoWriteSeed { .. })),
                "{e:?}"
            );
            check_error(&e, &service);
            if let Err(e) = writer.poll_now() {
                check_error(&e, &service);
            }
            return;
        }
    }
    let opened = writer.open(&stored, b"ctx").expect("reads its own value");
    assert_eq!(opened.plaintext, plaintext);
    // A second process whose plugin is down for Status and Encrypt: no write seed, an empty
    // cache, so the read asks the plugin's Decrypt. (With the same scripted Encrypt answer it
    // would hold another seed under the same wrapped bytes.)
    let down = Arc::new(Scripted {
        status: None,
        encrypt: None,
        decrypt,
        seeds,
    });
    let reader =
        KmsTransformer::new("fz", down as Arc<dyn KeyService>, options).expect("a transformer");
    let honest = match &service.decrypt {
        None => true,
        Some(answer) => service
            .seeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .is_some_and(|seed| **answer == *seed),
    };
    match reader.open(&stored, b"ctx") {
        Ok(read) => {
            assert!(honest, "read with a wrong seed");
            assert_eq!(read.plaintext, plaintext);
        }
        Err(e) => {
            assert!(!honest, "an honest plugin's value does not read: {e}");
            check_error(&e, &service);
        }
    }
});
