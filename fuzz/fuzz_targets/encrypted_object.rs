//! The KMS v2 `EncryptedObject` codec: arbitrary bytes through the decoder, and objects built
//! from the input through the encoder. Decoding never panics and fails only with a typed
//! [`KmsError`] (a `Malformed` offset inside the input); whatever decodes is valid, re-encodes,
//! and decodes again to the same object, whose encoding is the same bytes (deterministic); an
//! object the encoder accepts decodes back to itself, and one it refuses fails `validate` with
//! the same error.
#![no_main]

use std::collections::BTreeMap;

use encrypted_core::Error;
use encrypted_core::kms::{DekSourceType, EncryptedObject, KmsError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode & 1 == 1 => built(rest),
        Some((_, rest)) => decoded(rest),
        None => {}
    }
});

/// The decoder's errors: malformed protobuf or a broken validation rule, nothing else.
fn check_typed(e: &Error, input_len: usize) {
    match e {
        Error::Kms(KmsError::Malformed { offset, .. }) => {
            assert!(
                *offset <= input_len,
                "offset {offset} past {input_len}: {e}"
            )
        }
        Error::Kms(
            KmsError::UnknownDekSourceType { .. }
            | KmsError::EmptyEncryptedData
            | KmsError::EmptyKeyId
            | KmsError::KeyIdTooLong { .. }
            | KmsError::EmptyDekSource
            | KmsError::DekSourceTooLong { .. }
            | KmsError::InvalidAnnotationKey { .. }
            | KmsError::AnnotationsTooLarge { .. },
        ) => {}
        other => panic!("untyped decode error: {other:?}"),
    }
}

/// An object that decoded: valid, and its canonical encoding is a fixed point.
fn round_trips(object: &EncryptedObject) -> Vec<u8> {
    if let Err(e) = object.validate() {
        panic!("decoded but invalid: {e}");
    }
    let encoded = match object.encode() {
        Ok(bytes) => bytes,
        Err(e) => panic!("decoded but does not encode: {e}"),
    };
    match EncryptedObject::decode(&encoded) {
        Ok(again) => {
            assert_eq!(&again, object, "re-encoding changed the object");
            assert_eq!(
                again.encode().ok(),
                Some(encoded.clone()),
                "not deterministic"
            );
        }
        Err(e) => panic!("its own encoding does not decode: {e}"),
    }
    encoded
}

fn decoded(bytes: &[u8]) {
    match EncryptedObject::decode(bytes) {
        Ok(object) => {
            round_trips(&object);
            let debug = format!("{object:?}");
            assert!(debug.contains("REDACTED"), "Debug shows the data: {debug}");
        }
        Err(e) => check_typed(&e, bytes.len()),
    }
}

/// Takes `[len] bytes` pieces from the input.
struct Pieces<'a>(&'a [u8]);

impl<'a> Pieces<'a> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    /// A length byte (scaled: 0xF0 and up mean kilobytes, to reach the limits) and that many
    /// bytes, repeating the input when it is shorter.
    fn bytes(&mut self) -> Vec<u8> {
        let len = match self.byte() {
            b @ 0xF0.. => usize::from(b - 0xF0) * 1024 + usize::from(self.byte()),
            b => usize::from(b),
        };
        let take = len.min(self.0.len());
        let (head, rest) = self.0.split_at(take);
        self.0 = rest;
        let mut out = head.to_vec();
        while out.len() < len {
            out.push(out.len() as u8);
        }
        out
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

fn built(input: &[u8]) {
    let mut p = Pieces(input);
    let source_type = if p.byte() & 1 == 0 {
        DekSourceType::AesGcmKey
    } else {
        DekSourceType::HkdfSha256XnonceAesGcmSeed
    };
    let mut object = EncryptedObject {
        encrypted_data: p.bytes(),
        key_id: p.text(),
        encrypted_dek_source: p.bytes(),
        annotations: BTreeMap::new(),
        encrypted_dek_source_type: source_type,
    };
    for _ in 0..p.byte() % 4 {
        let key = p.text();
        let value = p.bytes();
        object.annotations.insert(key, value);
    }
    match object.encode() {
        Ok(bytes) => {
            match EncryptedObject::decode(&bytes) {
                Ok(back) => assert_eq!(back, object, "the encoding decodes to another object"),
                Err(e) => panic!("an encoded object does not decode: {e}"),
            }
            assert_eq!(round_trips(&object), bytes);
        }
        Err(e) => {
            let validated = object.validate().err().map(|v| v.to_string());
            assert_eq!(
                validated,
                Some(e.to_string()),
                "encode and validate disagree"
            );
            check_typed(&e, 0);
        }
    }
}
