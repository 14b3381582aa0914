//! Arbitrary bytes through a keyring that reads aesgcm, secretbox, aescbc and identity:
//! `decrypt` and `decrypt_base64` never panic, nothing forges an authenticated value, and a
//! value we wrote reads back only when it is unchanged. No error shows a key or the plaintext.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::sync::{Arc, LazyLock};

use encrypted_core::{EncryptionConfiguration, Keyring, ProviderKind, ResourceKeyring};
use libfuzzer_sys::fuzz_target;

static CHAIN: LazyLock<Arc<ResourceKeyring>> = LazyLock::new(|| {
    let config = EncryptionConfiguration::from_yaml(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm: {keys: [{name: k1, secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=}]}
      - secretbox: {keys: [{name: k2, secret: AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=}]}
      - aescbc: {keys: [{name: k3, secret: AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=}]}
      - identity: {}
",
    )
    .expect("fuzz configuration");
    Keyring::from_config(&config)
        .expect("keyring")
        .resource("secrets")
        .expect("resource")
});

/// The keys of the configuration above.
const KEYS: [[u8; 32]; 3] = [[1; 32], [2; 32], [3; 32]];

/// No key and no plaintext (of at least 8 bytes) in the error, unless the stored bytes
/// themselves hold it (an error may show a stored prefix).
fn check_error(e: &encrypted_core::Error, plaintext: &[u8], stored: &[u8]) {
    let text = common::describe(e);
    let stored = String::from_utf8_lossy(stored);
    for secret in KEYS.iter().map(|k| &k[..]).chain([plaintext]) {
        if !common::shows(&stored, secret) {
            assert!(
                !common::shows(&text, secret),
                "a secret in an error: {text}"
            );
        }
    }
}

const PREFIXES: [&[u8]; 4] = [
    b"k8s:enc:aesgcm:v1:k1:",
    b"k8s:enc:secretbox:v1:k2:",
    b"k8s:enc:aescbc:v1:k3:",
    b"k8s:enc:aesgcm:v1:other:",
];

/// `decrypt_owned` (in place where it can) returns what `decrypt` returned: the same plaintext
/// or the same error.
fn agrees_in_place(
    chain: &ResourceKeyring,
    stored: &[u8],
    result: &Result<encrypted_core::Decrypted, encrypted_core::Error>,
) {
    match (result, chain.decrypt_owned(stored.to_vec(), b"ctx")) {
        (Ok(read), Ok(owned)) => assert_eq!(read.plaintext, owned),
        (Err(e), Err(owned)) => assert_eq!(format!("{e:?}"), format!("{owned:?}")),
        (read, owned) => panic!(
            "decrypt and decrypt_owned disagree: {} / {}",
            read.is_ok(),
            owned.is_ok()
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let chain = &**CHAIN;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let stored = match mode % 3 {
        // Raw bytes, and the same bytes behind a known prefix (reaches the ciphers sooner).
        0 => rest.to_vec(),
        1 => [PREFIXES[usize::from(mode / 3) % PREFIXES.len()], rest].concat(),
        // A value we wrote, maybe with one byte flipped: it reads back only when unchanged (or,
        // with the prefix broken, as plaintext through identity, as in Kubernetes).
        _ => {
            let (edit, plaintext) = rest.split_at(rest.len().min(3));
            let mut stored = chain.encrypt(plaintext, b"ctx").expect("encrypt");
            let xor = if let [at_hi, at_lo, xor] = *edit {
                let at = usize::from(u16::from_be_bytes([at_hi, at_lo])) % stored.len();
                stored[at] ^= xor;
                xor
            } else {
                0
            };
            let result = chain.decrypt(&stored, b"ctx");
            agrees_in_place(chain, &stored, &result);
            match result {
                Ok(read) if xor == 0 => {
                    assert_eq!(read.plaintext, plaintext);
                    assert!(
                        chain.decrypt(&stored, b"other").is_err(),
                        "context not bound"
                    );
                }
                Ok(read) => {
                    assert_eq!(read.key.provider, ProviderKind::Identity, "tamper accepted")
                }
                Err(e) => {
                    assert!(xor != 0, "round trip failed: {e}");
                    check_error(&e, plaintext, &stored);
                }
            }
            return;
        }
    };
    let result = chain.decrypt(&stored, b"ctx");
    agrees_in_place(chain, &stored, &result);
    if let Err(e) = &result {
        check_error(e, &[], &stored);
    }
    if let Ok(read) = result {
        match read.key.provider {
            ProviderKind::Identity => {
                assert!(!stored.starts_with(b"k8s:enc:"));
                assert_eq!(read.plaintext, stored);
            }
            // Unauthenticated: random bytes with valid padding do decrypt.
            ProviderKind::AesCbc => {}
            other => panic!("forged a {other} value"),
        }
    }
    if let Ok(text) = std::str::from_utf8(&stored) {
        let _ = chain.decrypt_base64(text, b"ctx");
    }
});
