//! The configuration loader: `EncryptionConfiguration::from_yaml` and `from_json`, and
//! `Keyring::from_config` of whatever they accept.
//!
//! - Arbitrary text (an input whose first byte is ASCII): never a panic.
//! - Documents this target writes with a known base64 secret planted in a key's place or in a
//!   place of the wrong type (a list, a map, a map key, a provider, a tag; quoted or not,
//!   truncated or altered; YAML or JSON) (an input whose first byte is not ASCII): never a panic,
//!   the secret never shows in an error, nor in the `Debug` of an accepted configuration; a
//!   well-formed document is accepted. Names, resources and endpoints, which errors may show,
//!   never hold the secret.
//!
//! Regression: before issue 12, serde's `invalid type: string "<value>"` (and `unknown field`)
//! messages, kept in syntax errors, showed the scalar (seeds `corpus/config/regression-*`,
//! `seed-planted-*`).
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use encrypted_core::{EncryptionConfiguration, Error, Keyring};
use libfuzzer_sys::fuzz_target;

/// Base64 of 32 bytes: the planted secret.
const SECRET: &str = "c0VDUmV0LWNhbmFyeS1rZXktYnl0ZXMtMDEyMzQ1Njc=";
/// Base64 of 48 bytes beginning with the same bytes (a key of the wrong length).
const SECRET_LONG: &str = "c0VDUmV0LWNhbmFyeS1rZXktYnl0ZXMtMDEyMzQ1NjdTRUNSRVQtbG9uZ2VyLWtleSEh";
/// A second, valid secret of another key.
const OTHER: &str = "b3RoZXItc2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg=";

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&mode, rest)) if mode >= 0x80 => planted(rest),
        _ => {
            if let Ok(text) = std::str::from_utf8(data) {
                let yaml = EncryptionConfiguration::from_yaml(text);
                let json = EncryptionConfiguration::from_json(text);
                for config in yaml.iter().chain(&json) {
                    let _ = Keyring::from_config(config);
                }
            }
        }
    }
});

struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn next(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }
}

/// The secret must not show in `e`.
fn check(e: &Error, secrets: &[&str]) {
    let text = common::describe(e);
    for s in secrets {
        assert!(
            !text.contains(s),
            "a secret in a configuration error: {text}"
        );
    }
}

fn planted(rest: &[u8]) {
    let mut c = Choices(rest);
    let mut secret = match c.next() % 4 {
        0 | 1 => SECRET.to_owned(),
        2 => SECRET_LONG.to_owned(),
        // Truncated (still long enough to recognise).
        _ => SECRET[..16 + usize::from(c.next()) % (SECRET.len() - 16)].to_owned(),
    };
    if c.next() & 1 == 1 {
        // One character replaced, from a set that keeps the value a single scalar.
        const SET: &[u8] = b"ABCxyz019+/=-_.:~! ";
        let at = usize::from(c.next()) % secret.len();
        let ch = char::from(SET[usize::from(c.next()) % SET.len()]);
        secret.replace_range(at..=at, &ch.to_string());
        if secret.trim() != secret || secret.contains(": ") {
            secret = SECRET.to_owned();
        }
    }
    let provider = ["aesgcm", "aescbc", "secretbox"][usize::from(c.next()) % 3];
    let position = c.next() % 13;
    let quote = c.next() % 3;
    let extra = c.next();
    let json = extra & 1 == 1;
    let q = |s: &str| match (json, quote) {
        (true, _) | (false, 2) => format!("\"{s}\""),
        (false, 1) => format!("'{s}'"),
        (false, _) => s.to_owned(),
    };
    let p = q(&secret);
    let other_key = if json {
        format!("{{\"name\": \"k0\", \"secret\": \"{OTHER}\"}}")
    } else {
        format!("{{name: k0, secret: {OTHER}}}")
    };
    let key = |secret_part: &str| {
        if json {
            format!("{{\"name\": \"k1\", {secret_part}}}")
        } else {
            format!("{{name: k1, {secret_part}}}")
        }
    };
    let field = |name: &str, value: &str| {
        if json {
            format!("\"{name}\": {value}")
        } else {
            format!("{name}: {value}")
        }
    };
    let keys = |one: String| {
        let list = if extra & 2 == 2 {
            format!("[{other_key}, {one}]")
        } else {
            format!("[{one}]")
        };
        format!(
            "{{{}}}",
            field(provider, &format!("{{{}}}", field("keys", &list)))
        )
    };
    let provider_entry = match position {
        0 => keys(key(&field("secret", &p))),
        1 => keys(key(&field("secret", &format!("[{p}]")))),
        2 => keys(key(&field("secret", &format!("{{{p}: 1}}")))),
        3 => keys(key(&field("secret", &format!("{{{}}}", field("k", &p))))),
        4 => format!(
            "{{{}}}",
            field(provider, &format!("{{{}}}", field("keys", &p)))
        ),
        5 => format!("{{{}}}", field(provider, &p)),
        6 => p.clone(),
        7 => format!(
            "{{{}}}",
            field(
                provider,
                &format!("{{{}}}", field("keys", &format!("[{p}]")))
            )
        ),
        8 if !json => keys(key(&field("secret", &format!("!!binary {p}")))),
        // The secret as a map key (JSON quotes names itself).
        9 => {
            let name = if json { secret.clone() } else { p.clone() };
            keys(key(&format!(
                "{}, {}",
                field("secret", &q(OTHER)),
                field(&name, &q("x"))
            )))
        }
        10 => format!("{{{}}}", field("identity", &p)),
        11 => format!("{{{}}}", field("kms", &p)),
        _ => keys(key(&field("secret", &p))),
    };
    let identity = if json {
        "{\"identity\": {}}"
    } else {
        "{identity: {}}"
    };
    let providers = match (position, extra & 4 == 4) {
        (12, _) => p.clone(),
        (_, true) => format!("[{identity}, {provider_entry}]"),
        (_, false) => format!("[{provider_entry}, {identity}]"),
    };
    let text = if json {
        format!(
            "{{\"apiVersion\": \"apiserver.config.k8s.io/v1\", \"kind\": \"EncryptionConfiguration\", \
             \"resources\": [{{\"resources\": [\"secrets\"], \"providers\": {providers}}}]}}"
        )
    } else {
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  \
             - resources: [secrets]\n    providers: {providers}\n"
        )
    };
    let secrets = [secret.as_str(), SECRET, OTHER];
    let well_formed = position == 0 && secret == SECRET;
    let mut results = vec![EncryptionConfiguration::from_yaml(&text)];
    if json {
        results.push(EncryptionConfiguration::from_json(&text));
    }
    for result in results {
        match result {
            Ok(config) => {
                let debug = format!("{config:?}");
                for s in &secrets {
                    assert!(
                        !debug.contains(s),
                        "a secret in the configuration's Debug: {debug}"
                    );
                }
                match Keyring::from_config(&config) {
                    Ok(keyring) => {
                        let debug = format!("{keyring:?}");
                        for s in &secrets {
                            assert!(
                                !debug.contains(s),
                                "a secret in the keyring's Debug: {debug}"
                            );
                        }
                    }
                    Err(e) => check(&e, &secrets),
                }
            }
            Err(e) => {
                assert!(
                    !well_formed,
                    "a well-formed document was refused: {e}\n{text}"
                );
                check(&e, &secrets);
            }
        }
    }
}
