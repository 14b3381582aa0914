//! Known answers: values written by independent implementations (Python's `cryptography` and
//! PyNaCl, in the exact layout of `k8s.io/apiserver`'s transformers; see
//! `fixtures/gen_kat.py`) must decrypt to their plaintext with every compiled AES-GCM engine, and
//! every corrupted variant must be a decryption error.

use std::collections::BTreeMap;

use encrypted_core::{
    DecryptError, Decrypted, EncryptionConfiguration, Engine, Error, KeyLabel, Keyring,
    ProviderKind, decode_base64,
};
use serde_json::Value;

const KAT: &str = include_str!("fixtures/kat.json");
const RESOURCE: &str = "kat.test";

/// One entry of `cases` or `negative`.
struct Case {
    name: String,
    provider: String,
    key_name: String,
    key: Vec<u8>,
    key_b64: String,
    aad: Vec<u8>,
    plaintext: Vec<u8>,
    stored: Vec<u8>,
    why: Option<String>,
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("KAT entry without string field {name:?}: {v}"))
}

fn b64(v: &Value, name: &str) -> Vec<u8> {
    decode_base64(field(v, name)).unwrap_or_else(|e| panic!("KAT field {name} is not base64: {e}"))
}

fn load(list: &str) -> Vec<Case> {
    let doc: Value = serde_json::from_str(KAT).expect("kat.json is JSON");
    let entries = doc
        .get(list)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("kat.json has no {list:?} array"));
    entries
        .iter()
        .map(|v| Case {
            name: field(v, "name").to_owned(),
            provider: field(v, "provider").to_owned(),
            key_name: field(v, "key_name").to_owned(),
            key: b64(v, "key_b64"),
            key_b64: field(v, "key_b64").to_owned(),
            aad: b64(v, "aad_b64"),
            plaintext: b64(v, "plaintext_b64"),
            stored: b64(v, "stored_b64"),
            why: v.get("why").and_then(Value::as_str).map(str::to_owned),
        })
        .collect()
}

fn kind(provider: &str) -> ProviderKind {
    match provider {
        "aesgcm" => ProviderKind::AesGcm,
        "aescbc" => ProviderKind::AesCbc,
        "secretbox" => ProviderKind::Secretbox,
        other => panic!("KAT provider {other:?} is not covered by this test"),
    }
}

/// Every AES-GCM engine compiled in.
fn engines() -> Vec<Engine> {
    let engines = vec![
        #[cfg(feature = "aws-lc")]
        Engine::AwsLc,
        #[cfg(feature = "rustcrypto")]
        Engine::RustCrypto,
    ];
    assert!(!engines.is_empty());
    engines
}

/// A keyring with one resource and the case's provider and key, and nothing else (no identity:
/// a value no key claims is an error, not plaintext).
fn keyring(case: &Case, engine: Engine) -> Keyring {
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  \
         - resources: [{RESOURCE}]\n    providers:\n      - {}:\n          keys:\n            \
         - name: \"{}\"\n              secret: \"{}\"\n",
        case.provider, case.key_name, case.key_b64
    );
    let config = EncryptionConfiguration::from_yaml(&yaml)
        .unwrap_or_else(|e| panic!("{}: config rejected: {e}", case.name));
    Keyring::builder()
        .engine(engine)
        .build(&config)
        .unwrap_or_else(|e| panic!("{}: keyring rejected: {e}", case.name))
}

#[test]
fn known_answers_decrypt_with_every_engine() {
    let cases = load("cases");
    for engine in engines() {
        let mut checked: BTreeMap<(String, usize), usize> = BTreeMap::new();
        for case in &cases {
            let keyring = keyring(case, engine);
            let read: Decrypted = keyring
                .decrypt(RESOURCE, &case.stored, &case.aad)
                .unwrap_or_else(|e| panic!("{} ({engine:?}): {e}", case.name));
            assert_eq!(read.plaintext, case.plaintext, "{} ({engine:?})", case.name);
            assert_eq!(
                read.key,
                KeyLabel {
                    provider: kind(&case.provider),
                    name: case.key_name.as_str().into(),
                },
                "{}",
                case.name
            );
            assert!(!read.stale, "{}: read by the write key", case.name);
            assert_eq!(
                keyring
                    .resource(RESOURCE)
                    .expect("listed")
                    .identify(&case.stored),
                Some(&read.key),
                "{}",
                case.name
            );
            // Through base64, as Obot stores text columns.
            let text = encrypted_core::encode_base64(&case.stored);
            let read = keyring
                .resource(RESOURCE)
                .expect("listed")
                .decrypt_base64(&text, &case.aad)
                .unwrap_or_else(|e| panic!("{} ({engine:?}) via base64: {e}", case.name));
            assert_eq!(read.plaintext, case.plaintext, "{}", case.name);
            *checked
                .entry((case.provider.clone(), case.key.len()))
                .or_default() += 1;
        }
        // Nothing passes vacuously: every provider and key size has known answers.
        for expected in [
            ("aesgcm", 16),
            ("aesgcm", 24),
            ("aesgcm", 32),
            ("aescbc", 16),
            ("aescbc", 24),
            ("aescbc", 32),
            ("secretbox", 32),
        ] {
            let n = checked
                .get(&(expected.0.to_owned(), expected.1))
                .copied()
                .unwrap_or(0);
            assert!(n > 0, "{engine:?}: no known answer for {expected:?}");
        }
        assert_eq!(checked.values().sum::<usize>(), cases.len());
    }
}

#[test]
fn known_answers_cover_aad_and_sizes() {
    // The AES-GCM answers bind a non-empty context, and the plaintexts span the block edges.
    let cases = load("cases");
    assert!(
        cases
            .iter()
            .any(|c| c.provider == "aesgcm" && !c.aad.is_empty())
    );
    for len in [0usize, 16, 17] {
        assert!(
            cases.iter().any(|c| c.plaintext.len() == len),
            "no {len}-byte plaintext"
        );
    }
    assert!(cases.iter().any(|c| c.plaintext.len() >= 1000));
}

#[test]
fn known_answers_fail_under_another_context() {
    // The AES-GCM answers with a context fail with any other context: AAD is bound.
    for engine in engines() {
        let mut checked = 0;
        for case in load("cases")
            .iter()
            .filter(|c| c.provider == "aesgcm" && !c.aad.is_empty())
        {
            let keyring = keyring(case, engine);
            let mut other = case.aad.clone();
            other.push(b'x');
            for aad in [&b""[..], &other, &case.aad[..case.aad.len() - 1]] {
                let result = keyring.decrypt(RESOURCE, &case.stored, aad);
                assert!(
                    matches!(
                        result,
                        Err(Error::Decrypt(DecryptError::Authentication { .. }))
                    ),
                    "{} ({engine:?}): {result:?}",
                    case.name
                );
            }
            checked += 1;
        }
        assert!(checked > 0);
    }
}

/// The error a negative case must produce, judged from its name and reason.
fn expected_error(case: &Case) -> fn(&DecryptError) -> bool {
    let name = case.name.as_str();
    let why = case.why.as_deref().unwrap_or_default();
    if name.contains("other-key-name") {
        return |e| matches!(e, DecryptError::UnknownKey { .. });
    }
    if name.contains("truncated-below")
        || name.contains("prefix-only")
        || name.contains("iv-only")
        || name.contains("shorter-than-iv")
    {
        return |e| matches!(e, DecryptError::Truncated { .. });
    }
    if case.provider == "aescbc" && (name.contains("padding") || why.contains("multiple of 16")) {
        return |e| matches!(e, DecryptError::InvalidCbc { .. });
    }
    if case.provider == "aescbc" {
        panic!("{name}: no expected error known for {why:?}; extend expected_error");
    }
    // aesgcm and secretbox: any change to nonce, ciphertext, tag, key or context, and a value
    // one byte short that is still longer than nonce and tag.
    |e| matches!(e, DecryptError::Authentication { .. })
}

#[test]
fn negative_answers_are_decrypt_errors() {
    let negatives = load("negative");
    for engine in engines() {
        let mut per_provider: BTreeMap<String, usize> = BTreeMap::new();
        for case in &negatives {
            let why = case.why.as_deref().unwrap_or_else(|| {
                panic!("{}: negative case without \"why\"", case.name);
            });
            let keyring = keyring(case, engine);
            let result = keyring.decrypt(RESOURCE, &case.stored, &case.aad);
            let error = match result {
                Ok(read) => panic!(
                    "{} ({why}; {engine:?}): decrypted to {} bytes instead of failing",
                    case.name,
                    read.plaintext.len()
                ),
                Err(Error::Decrypt(e)) => e,
                Err(other) => panic!(
                    "{} ({why}): expected Error::Decrypt, got {other:?}",
                    case.name
                ),
            };
            assert!(
                expected_error(case)(&error),
                "{} ({why}; {engine:?}): unexpected {error:?}",
                case.name
            );
            // The error names the key by its label only.
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(&case.key_b64), "{}: {shown}", case.name);
            if case.plaintext.len() >= 5 {
                let plaintext = String::from_utf8_lossy(&case.plaintext);
                assert!(!shown.contains(&*plaintext), "{}: {shown}", case.name);
            }
            *per_provider.entry(case.provider.clone()).or_default() += 1;
        }
        for provider in ["aesgcm", "aescbc", "secretbox"] {
            assert!(
                per_provider.get(provider).copied().unwrap_or(0) > 0,
                "{engine:?}: no negative case for {provider}"
            );
        }
    }
}

#[test]
fn negative_answers_cover_the_known_failure_modes() {
    // Guard against a fixture that silently lost its interesting cases.
    let negatives = load("negative");
    let names: Vec<&str> = negatives.iter().map(|c| c.name.as_str()).collect();
    for expected in [
        "negative/aesgcm/wrong-aad",
        "negative/aesgcm/wrong-key",
        "negative/aesgcm/other-key-name",
        "negative/aesgcm/truncated-prefix-only",
        "negative/secretbox/flipped-tag",
        "negative/aescbc/iv-only",
        "negative/aescbc/bad-padding-zero",
    ] {
        assert!(names.contains(&expected), "kat.json lacks {expected}");
    }
}
