//! Validation of `EncryptionConfiguration` documents: every rejection names its place and kind,
//! and the files Obot documents are accepted as written.

use std::time::Duration;

use base64::Engine as _;

use super::*;
use crate::error::ConfigErrorKind;

const OBOT_AESGCM_YAML: &str = include_str!("../../tests/fixtures/configs/obot-aesgcm.yaml");
const OBOT_AESGCM_JSON: &str = include_str!("../../tests/fixtures/configs/obot-aesgcm.json");
const OBOT_KMS_YAML: &str = include_str!("../../tests/fixtures/configs/obot-kms.yaml");
const OBOT_KMS_JSON: &str = include_str!("../../tests/fixtures/configs/obot-kms.json");

/// The 32-byte key of the fixtures ("secret is secure, I think so!!!!", Kubernetes' doc example).
const KEY32: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=";

/// Where the first key's secret of [`one`] is.
const USERS0: &str = "resources[0] (users.obot.obot.ai).providers[0]";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A document with one entry for `users.obot.obot.ai` and the given provider list (YAML lines
/// indented by six spaces, each starting with `- `).
fn one(providers: &str) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - \
         resources:\n      - users.obot.obot.ai\n    providers:\n{providers}"
    )
}

/// A provider list element `- <provider>:` with one key.
fn keyed(provider: &str, name: &str, secret: &str) -> String {
    format!(
        "      - {provider}:\n          keys:\n            - name: {name}\n              secret: \
         {secret}\n"
    )
}

/// A `kms` provider list element from `key: value` lines.
fn kms(fields: &[&str]) -> String {
    let mut out = String::from("      - kms:\n");
    for f in fields {
        out.push_str("          ");
        out.push_str(f);
        out.push('\n');
    }
    out
}

/// Parses a document that must be rejected, and returns the configuration error.
#[track_caller]
fn rejected(yaml: &str) -> ConfigError {
    match EncryptionConfiguration::from_yaml(yaml) {
        Ok(config) => panic!("expected a configuration error, got {config:?}\n{yaml}"),
        Err(Error::Config(e)) => e,
        Err(other) => panic!("expected Error::Config, got {other:?}"),
    }
}

/// Asserts the full message and the kind of a rejection.
#[track_caller]
fn assert_rejected(yaml: &str, location: &str, kind: ConfigErrorKind, message: &str) {
    let e = rejected(yaml);
    assert_eq!(e.kind, kind, "{yaml}");
    assert_eq!(e.location, location, "{yaml}");
    assert_eq!(e.file, None);
    assert_eq!(
        e.to_string(),
        format!("invalid EncryptionConfiguration at {location}: {message}"),
        "{yaml}"
    );
}

#[test]
fn accepts_a_valid_document() -> Result<(), Error> {
    // The helpers themselves produce a valid document, so every rejection below is caused by
    // the one thing each test changes.
    let config = EncryptionConfiguration::from_yaml(&one(&keyed("aesgcm", "key1", KEY32)))?;
    assert_eq!(config.resources.len(), 1);
    let config = EncryptionConfiguration::from_yaml(&one(&kms(&[
        "apiVersion: v2",
        "name: kms1",
        "endpoint: unix:///tmp/kms.sock",
    ])))?;
    assert_eq!(config.resources.len(), 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

#[test]
fn aesgcm_wrong_key_length() {
    for len in [0usize, 1, 15, 17, 31, 33, 64] {
        if len == 0 {
            continue; // an empty string is tested with the missing secret
        }
        assert_rejected(
            &one(&keyed("aesgcm", "key1", &b64(&vec![7u8; len]))),
            &format!("{USERS0}.aesgcm.keys[0] (\"key1\").secret"),
            ConfigErrorKind::InvalidKeyLength {
                expected: "16, 24 or 32",
                found: len,
            },
            &format!(
                "expected a key of 16, 24 or 32 bytes after base64 decoding, found {len} bytes"
            ),
        );
    }
}

#[test]
fn aesgcm_accepts_every_aes_key_size() -> Result<(), Error> {
    for len in [16usize, 24, 32] {
        let config =
            EncryptionConfiguration::from_yaml(&one(&keyed("aesgcm", "k", &b64(&vec![1; len]))))?;
        let ProviderConfig::AesGcm(keys) = &config.resources[0].providers[0] else {
            panic!(
                "expected aesgcm, got {:?}",
                config.resources[0].providers[0]
            );
        };
        assert_eq!(keys[0].secret.len(), len);
        assert_eq!(keys[0].secret.expose(), vec![1u8; len].as_slice());
    }
    Ok(())
}

#[test]
fn aescbc_wrong_key_length() {
    assert_rejected(
        &one(&keyed("aescbc", "old", &b64(&[9u8; 8]))),
        &format!("{USERS0}.aescbc.keys[0] (\"old\").secret"),
        ConfigErrorKind::InvalidKeyLength {
            expected: "16, 24 or 32",
            found: 8,
        },
        "expected a key of 16, 24 or 32 bytes after base64 decoding, found 8 bytes",
    );
}

#[test]
fn secretbox_wrong_key_length() {
    for len in [16usize, 24, 31, 33] {
        assert_rejected(
            &one(&keyed("secretbox", "box", &b64(&vec![3u8; len]))),
            &format!("{USERS0}.secretbox.keys[0] (\"box\").secret"),
            ConfigErrorKind::InvalidKeyLength {
                expected: "32",
                found: len,
            },
            &format!("expected a key of 32 bytes after base64 decoding, found {len} bytes"),
        );
    }
}

#[test]
fn missing_or_empty_secret() {
    for secret_line in [
        "",
        "              secret: \"\"\n",
        "              secret: ~\n",
    ] {
        let yaml = one(&format!(
            "      - aesgcm:\n          keys:\n            - name: key1\n{secret_line}"
        ));
        assert_rejected(
            &yaml,
            &format!("{USERS0}.aesgcm.keys[0] (\"key1\").secret"),
            ConfigErrorKind::InvalidKeyLength {
                expected: "16, 24 or 32",
                found: 0,
            },
            "expected a key of 16, 24 or 32 bytes after base64 decoding, found 0 bytes",
        );
    }
}

#[test]
fn bad_base64_secret() {
    let cases = [
        // '!' is outside the alphabet.
        (
            "\"not base64!!\"".to_owned(),
            "a character outside the standard alphabet",
        ),
        // URL-safe alphabet is not the standard one (Kubernetes uses StdEncoding).
        (
            b64(&[0xfb; 32]).replace('+', "-").replace('/', "_"),
            "a character outside the standard alphabet",
        ),
        // Unpadded.
        (
            b64(&[1; 32]).trim_end_matches('=').to_owned(),
            "invalid padding",
        ),
        // A length that is no base64 length.
        ("QUJDRA=".to_owned(), "invalid padding"),
        ("QUJDR".to_owned(), "invalid length"),
    ];
    for (secret, reason) in cases {
        let yaml = one(&keyed("aesgcm", "key1", &secret));
        let e = rejected(&yaml);
        assert_eq!(
            e.location,
            format!("{USERS0}.aesgcm.keys[0] (\"key1\").secret"),
            "{secret}"
        );
        assert!(
            matches!(e.kind, ConfigErrorKind::InvalidBase64 { .. }),
            "{secret}: {:?}",
            e.kind
        );
        let message = e.to_string();
        assert!(message.starts_with(&format!(
            "invalid EncryptionConfiguration at {USERS0}.aesgcm.keys[0] (\"key1\").secret: secret \
             is not valid standard base64 ("
        )));
        assert!(message.contains(reason), "{secret}: {message}");
        let bare = secret.trim_matches('"');
        assert!(!message.contains(bare), "the secret leaked: {message}");
    }
}

#[test]
fn duplicate_key_name() {
    let yaml = one(&format!(
        "      - aesgcm:\n          keys:\n            - name: key1\n              secret: {KEY32}\n            \
         - name: key2\n              secret: {KEY32}\n            - name: key1\n              secret: {KEY32}\n"
    ));
    assert_rejected(
        &yaml,
        &format!("{USERS0}.aesgcm.keys[2] (\"key1\").name"),
        ConfigErrorKind::DuplicateKeyName {
            name: "key1".into(),
        },
        "duplicate key name \"key1\": key names must be unique within a provider",
    );
}

#[test]
fn same_key_name_in_different_providers_is_fine() -> Result<(), Error> {
    let yaml = one(&format!(
        "{}{}",
        keyed("aesgcm", "key1", KEY32),
        keyed("secretbox", "key1", KEY32)
    ));
    let config = EncryptionConfiguration::from_yaml(&yaml)?;
    assert_eq!(config.resources[0].providers.len(), 2);
    Ok(())
}

#[test]
fn empty_key_name_and_empty_key_list() {
    let yaml = one(&format!(
        "      - aesgcm:\n          keys:\n            - secret: {KEY32}\n"
    ));
    assert_rejected(
        &yaml,
        &format!("{USERS0}.aesgcm.keys[0].name"),
        ConfigErrorKind::EmptyName,
        "expected a non-empty name",
    );
    for keys in ["          keys: []\n", ""] {
        let yaml = one(&format!("      - secretbox:\n{keys}"));
        let yaml = if keys.is_empty() {
            yaml.replace("- secretbox:\n", "- secretbox: {}\n")
        } else {
            yaml
        };
        assert_rejected(
            &yaml,
            &format!("{USERS0}.secretbox.keys"),
            ConfigErrorKind::Empty { what: "key" },
            "expected at least one key, found none",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// KMS
// ---------------------------------------------------------------------------------------------

#[test]
fn kms_name_with_colon() {
    assert_rejected(
        &one(&kms(&[
            "apiVersion: v2",
            "name: \"aws:prod\"",
            "endpoint: unix:///tmp/kms.sock",
        ])),
        &format!("{USERS0}.kms.name"),
        ConfigErrorKind::KmsNameContainsColon {
            name: "aws:prod".into(),
        },
        "KMS provider name \"aws:prod\" must not contain ':' (it is part of the stored prefix)",
    );
}

#[test]
fn kms_empty_name() {
    assert_rejected(
        &one(&kms(&["apiVersion: v2", "endpoint: unix:///tmp/kms.sock"])),
        &format!("{USERS0}.kms.name"),
        ConfigErrorKind::EmptyName,
        "expected a non-empty name",
    );
}

#[test]
fn duplicate_kms_name_across_entries() {
    let provider = kms(&[
        "apiVersion: v2",
        "name: aws-encryption-provider",
        "endpoint: unix:///tmp/kms.sock",
    ]);
    let yaml = format!(
        "{}  - resources:\n      - credentials\n    providers:\n{provider}",
        one(&provider)
    );
    assert_rejected(
        &yaml,
        "resources[1] (credentials).providers[0].kms.name",
        ConfigErrorKind::DuplicateKmsName {
            name: "aws-encryption-provider".into(),
        },
        "duplicate KMS provider name \"aws-encryption-provider\": KMS v2 names must be unique in \
         the file",
    );
}

#[test]
fn duplicate_kms_name_within_an_entry() {
    let provider = kms(&[
        "apiVersion: v2",
        "name: same",
        "endpoint: unix:///tmp/kms.sock",
    ]);
    let e = rejected(&one(&format!("{provider}{provider}")));
    assert_eq!(
        e.location,
        "resources[0] (users.obot.obot.ai).providers[1].kms.name"
    );
    assert_eq!(
        e.kind,
        ConfigErrorKind::DuplicateKmsName {
            name: "same".into()
        }
    );
}

#[test]
fn kms_api_version_v1_or_missing() {
    for (line, found) in [
        (Some("apiVersion: v1"), "v1"),
        (None, ""),
        (Some("apiVersion: v3"), "v3"),
    ] {
        let mut fields = vec!["name: kms1", "endpoint: unix:///tmp/kms.sock"];
        fields.extend(line);
        assert_rejected(
            &one(&kms(&fields)),
            &format!("{USERS0}.kms.apiVersion"),
            ConfigErrorKind::UnsupportedKmsApiVersion {
                found: found.into(),
            },
            &format!(
                "expected KMS apiVersion \"v2\", found {found:?} (KMS v1 is deprecated and not \
                 supported)"
            ),
        );
    }
}

#[test]
fn kms_cachesize_with_v2() {
    assert_rejected(
        &one(&kms(&[
            "apiVersion: v2",
            "name: kms1",
            "endpoint: unix:///tmp/kms.sock",
            "cachesize: 1000",
        ])),
        &format!("{USERS0}.kms.cachesize"),
        ConfigErrorKind::KmsCacheSizeUnsupported,
        "cachesize is not supported for KMS v2 (it caches data-encryption keys itself)",
    );
}

#[test]
fn kms_bad_endpoint() {
    for endpoint in [
        None,
        Some("\"\""),
        Some("unix://"),
        Some("unix:///"),
        Some("/tmp/kms.sock"),
        Some("http://127.0.0.1:8080"),
        Some("aws-kms://"),
    ] {
        let mut fields = vec!["apiVersion: v2", "name: kms1"];
        let line = endpoint.map(|e| format!("endpoint: {e}"));
        fields.extend(line.as_deref());
        let found = endpoint.unwrap_or("").trim_matches('"');
        assert_rejected(
            &one(&kms(&fields)),
            &format!("{USERS0}.kms.endpoint"),
            ConfigErrorKind::InvalidKmsEndpoint {
                found: found.into(),
            },
            &format!(
                "expected endpoint \"unix:///path/to/socket\" (or unix:///@abstract, \
                 aws-kms://arn..., gcp-kms://projects/..., azure-keyvault://vault/keys/name, \
                 local://...), found {found:?}"
            ),
        );
    }
}

#[test]
fn kms_good_endpoints() -> Result<(), Error> {
    for endpoint in [
        "unix:///tmp/aws-cred-socket.sock",
        "unix:///@abstract-name",
        "aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd",
        "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k",
        "azure-keyvault://vault/keys/name/version",
        "local://dev",
    ] {
        let config = EncryptionConfiguration::from_yaml(&one(&kms(&[
            "apiVersion: v2",
            "name: kms1",
            &format!("endpoint: \"{endpoint}\""),
        ])))?;
        let ProviderConfig::Kms(k) = &config.resources[0].providers[0] else {
            panic!("expected kms");
        };
        assert_eq!(k.endpoint, endpoint);
        assert_eq!(k.timeout, DEFAULT_KMS_TIMEOUT, "Kubernetes' default is 3s");
    }
    Ok(())
}

#[test]
fn kms_bad_timeout() {
    for timeout in ["3", "0s", "0", "-1s", "soon", "3 s", "1e3s", "\"\""] {
        let found = timeout.trim_matches('"');
        assert_rejected(
            &one(&kms(&[
                "apiVersion: v2",
                "name: kms1",
                "endpoint: unix:///tmp/kms.sock",
                &format!("timeout: {timeout}"),
            ])),
            &format!("{USERS0}.kms.timeout"),
            ConfigErrorKind::InvalidTimeout {
                found: found.into(),
            },
            &format!("expected a positive duration such as \"3s\" or \"500ms\", found {found:?}"),
        );
    }
}

#[test]
fn kms_timeouts() -> Result<(), Error> {
    for (timeout, expected) in [
        ("3s", Duration::from_secs(3)),
        ("500ms", Duration::from_millis(500)),
        ("1m30s", Duration::from_secs(90)),
        ("1.5s", Duration::from_millis(1500)),
    ] {
        let config = EncryptionConfiguration::from_yaml(&one(&kms(&[
            "apiVersion: v2",
            "name: kms1",
            "endpoint: unix:///tmp/kms.sock",
            &format!("timeout: {timeout}"),
        ])))?;
        let ProviderConfig::Kms(k) = &config.resources[0].providers[0] else {
            panic!("expected kms");
        };
        assert_eq!(k.timeout, expected, "{timeout}");
    }
    Ok(())
}

#[test]
fn kms_without_a_factory_is_a_keyring_error() -> Result<(), Error> {
    let config = EncryptionConfiguration::from_yaml(OBOT_KMS_YAML)?;
    let Err(Error::Config(e)) = crate::Keyring::from_config(&config) else {
        panic!("a kms provider needs a factory");
    };
    assert_eq!(
        e.kind,
        ConfigErrorKind::KmsUnavailable {
            name: "aws-encryption-provider".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "invalid EncryptionConfiguration at resources[0].providers[0].kms \
         (\"aws-encryption-provider\"): kms provider \"aws-encryption-provider\" needs a key \
         service: build the keyring with a KMS factory (KeyringBuilder::kms)"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Document shape
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_api_version() {
    let good = one(&keyed("aesgcm", "key1", KEY32));
    for (replacement, found) in [
        (
            "apiVersion: apiserver.config.k8s.io/v1beta1\n",
            "apiserver.config.k8s.io/v1beta1",
        ),
        ("apiVersion: v1\n", "v1"),
        ("", ""),
    ] {
        let yaml = good.replace("apiVersion: apiserver.config.k8s.io/v1\n", replacement);
        assert_rejected(
            &yaml,
            "apiVersion",
            ConfigErrorKind::UnknownApiVersion {
                found: found.into(),
            },
            &format!("expected apiVersion \"apiserver.config.k8s.io/v1\", found {found:?}"),
        );
    }
}

#[test]
fn unknown_kind() {
    let good = one(&keyed("aesgcm", "key1", KEY32));
    for (replacement, found) in [
        ("kind: EncryptionConfig\n", "EncryptionConfig"),
        ("kind: encryptionconfiguration\n", "encryptionconfiguration"),
        ("", ""),
    ] {
        let yaml = good.replace("kind: EncryptionConfiguration\n", replacement);
        assert_rejected(
            &yaml,
            "kind",
            ConfigErrorKind::UnknownKind {
                found: found.into(),
            },
            &format!("expected kind \"EncryptionConfiguration\", found {found:?}"),
        );
    }
}

#[test]
fn no_resources() {
    for tail in ["resources: []\n", "resources:\n", ""] {
        let yaml = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n{tail}"
        );
        assert_rejected(
            &yaml,
            "resources",
            ConfigErrorKind::Empty {
                what: "resources entry",
            },
            "expected at least one resources entry, found none",
        );
    }
}

#[test]
fn empty_resource_list() {
    for list in ["  - resources: []\n", "  - resources:\n", "  -\n"] {
        let yaml = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n{list}    providers:\n      - identity: {{}}\n"
        );
        // `-` alone followed by an indented mapping is the same entry without `resources`.
        let yaml = yaml.replace("  -\n    providers", "  - providers");
        assert_rejected(
            &yaml,
            "resources[0].resources",
            ConfigErrorKind::Empty { what: "resource" },
            "expected at least one resource, found none",
        );
    }
}

#[test]
fn no_providers() {
    for providers in ["    providers: []\n", "    providers:\n", ""] {
        let yaml = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - users.obot.obot.ai\n      - credentials\n      - runstates.obot.obot.ai\n{providers}"
        );
        assert_rejected(
            &yaml,
            "resources[0] (users.obot.obot.ai, credentials, +1 more).providers",
            ConfigErrorKind::Empty { what: "provider" },
            "expected at least one provider, found none",
        );
    }
}

#[test]
fn provider_element_with_two_providers() {
    let yaml = one(&format!(
        "      - aesgcm:\n          keys:\n            - name: key1\n              secret: {KEY32}\n        identity: {{}}\n"
    ));
    assert_rejected(
        &yaml,
        USERS0,
        ConfigErrorKind::MultipleProviderTypes {
            found: "aesgcm, identity".into(),
        },
        "expected exactly one provider per list element, found aesgcm, identity: split them into \
         separate `- ` entries",
    );
}

#[test]
fn provider_element_with_none() {
    let yaml = one(&format!("{}      - {{}}\n", keyed("aesgcm", "key1", KEY32)));
    assert_rejected(
        &yaml,
        "resources[0] (users.obot.obot.ai).providers[1]",
        ConfigErrorKind::NoProviderType,
        "expected exactly one of aesgcm, aescbc, secretbox, kms or identity in this provider \
         entry, found none",
    );
}

#[test]
fn unknown_field_is_a_syntax_error() {
    // A typo in a provider name must not silently drop the provider.
    let yaml = one(&keyed("aesgmc", "key1", KEY32));
    let e = rejected(&yaml);
    assert!(matches!(e.kind, ConfigErrorKind::Syntax(_)), "{:?}", e.kind);
    let message = e.to_string();
    assert!(
        message.starts_with("invalid EncryptionConfiguration: "),
        "{message}"
    );
    assert!(message.contains("unknown field `aesgmc`"), "{message}");
    assert!(
        message.contains("aesgcm"),
        "expected fields listed: {message}"
    );
    assert!(!message.contains(KEY32), "the secret leaked: {message}");

    // Unknown fields at the other levels too.
    for (from, to) in [
        (
            "kind: EncryptionConfiguration\n",
            "kind: EncryptionConfiguration\nmetadata: {}\n",
        ),
        ("    providers:\n", "    provider:\n"),
        ("            - name: key1\n", "            - nmae: key1\n"),
        ("              secret:", "              secrets:"),
    ] {
        let yaml = one(&keyed("aesgcm", "key1", KEY32)).replace(from, to);
        let e = rejected(&yaml);
        assert!(
            matches!(&e.kind, ConfigErrorKind::Syntax(m) if m.contains("unknown field")),
            "{to}: {:?}",
            e.kind
        );
        assert!(!e.to_string().contains(KEY32), "the secret leaked: {e}");
    }
    // identity takes no options.
    let e = rejected(&one("      - identity: {foo: 1}\n"));
    assert!(matches!(e.kind, ConfigErrorKind::Syntax(_)), "{:?}", e.kind);
}

#[test]
fn not_yaml_at_all() {
    for text in ["[", "just a string", "apiVersion: [unclosed", "\t- x"] {
        let e = rejected(text);
        assert!(
            matches!(e.kind, ConfigErrorKind::Syntax(_)),
            "{text:?}: {:?}",
            e.kind
        );
        assert_eq!(e.location, "", "{text:?}");
    }
    // An empty document is an empty mapping: the first thing missing is the apiVersion.
    let e = rejected("");
    assert_eq!(
        e.kind,
        ConfigErrorKind::UnknownApiVersion {
            found: String::new()
        }
    );
    let Err(Error::Config(e)) = EncryptionConfiguration::from_json("{\"apiVersion\": ") else {
        panic!("truncated JSON must be rejected");
    };
    assert!(matches!(e.kind, ConfigErrorKind::Syntax(_)), "{:?}", e.kind);
}

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

fn two_entries(first: &[&str], second: &[&str]) -> String {
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("      - \"{n}\"\n"))
            .collect::<String>()
    };
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - \
         resources:\n{}    providers:\n      - identity: {{}}\n  - resources:\n{}    providers:\n      \
         - identity: {{}}\n",
        list(first),
        list(second)
    )
}

#[test]
fn masked_resource() {
    assert_rejected(
        &two_entries(&["*.*"], &["users.obot.obot.ai"]),
        "resources[1] (users.obot.obot.ai).resources[0]",
        ConfigErrorKind::MaskedResource {
            name: "users.obot.obot.ai".into(),
            wildcard: "*.*".into(),
            first: "resources[0] (*.*).resources[0]".into(),
        },
        "resource \"users.obot.obot.ai\" is masked by the earlier wildcard \"*.*\" in \
         resources[0] (*.*).resources[0]",
    );
    // A group wildcard masks its group's resources, `*.*` masks other wildcards, and `*.`
    // masks core resources.
    for (first, second, wildcard) in [
        (
            &["*.obot.obot.ai"][..],
            &["users.obot.obot.ai"][..],
            "*.obot.obot.ai",
        ),
        (&["*.*"][..], &["*.obot.obot.ai"][..], "*.*"),
        (&["*.*"][..], &["*."][..], "*.*"),
        (&["*."][..], &["credentials"][..], "*."),
    ] {
        let e = rejected(&two_entries(first, second));
        assert!(
            matches!(&e.kind, ConfigErrorKind::MaskedResource { wildcard: w, .. } if w == wildcard),
            "{first:?} {second:?}: {:?}",
            e.kind
        );
    }
    // Within one entry too.
    let e = rejected(&two_entries(
        &["*.obot.obot.ai", "users.obot.obot.ai"],
        &["x"],
    ));
    assert_eq!(
        e.location,
        "resources[0] (*.obot.obot.ai, users.obot.obot.ai).resources[1]"
    );
    assert!(
        matches!(e.kind, ConfigErrorKind::MaskedResource { .. }),
        "{:?}",
        e.kind
    );
}

#[test]
fn specific_before_wildcard_is_fine() -> Result<(), Error> {
    for (first, second) in [
        (&["users.obot.obot.ai"][..], &["*.obot.obot.ai"][..]),
        (&["users.obot.obot.ai"][..], &["*.*"][..]),
        (&["*.obot.obot.ai"][..], &["*.*"][..]),
        (&["credentials"][..], &["*."][..]),
        (&["*.obot.obot.ai"][..], &["credentials"][..]),
        (&["*.obot.obot.ai"][..], &["obot.obot.ai"][..]),
        (&["*."][..], &["users.obot.obot.ai"][..]),
    ] {
        let config = EncryptionConfiguration::from_yaml(&two_entries(first, second))?;
        assert_eq!(config.resources.len(), 2, "{first:?} {second:?}");
    }
    Ok(())
}

#[test]
fn duplicate_resource() {
    assert_rejected(
        &two_entries(
            &["credentials", "users.obot.obot.ai"],
            &["users.obot.obot.ai"],
        ),
        "resources[1] (users.obot.obot.ai).resources[0]",
        ConfigErrorKind::DuplicateResource {
            name: "users.obot.obot.ai".into(),
            first: "resources[0] (credentials, users.obot.obot.ai).resources[1]".into(),
        },
        "resource \"users.obot.obot.ai\" is listed more than once (also in resources[0] \
         (credentials, users.obot.obot.ai).resources[1])",
    );
    let e = rejected(&two_entries(&["*.*", "*.*"], &["x"]));
    assert!(
        matches!(e.kind, ConfigErrorKind::DuplicateResource { .. }),
        "{:?}",
        e.kind
    );
}

#[test]
fn invalid_resource_names() {
    let wildcard = "wildcards must be \"*.*\" (all), \"*.<group>\" or \"*.\" (core group)";
    for (name, reason) in [
        ("*", wildcard),
        ("users.*", wildcard),
        ("*.obot.*", wildcard),
        ("**.obot.obot.ai", wildcard),
        ("users*", wildcard),
        ("*users.obot.obot.ai", wildcard),
        (
            "Users.obot.obot.ai",
            "resource names are lower case without spaces",
        ),
        ("users obot", "resource names are lower case without spaces"),
        (
            "",
            "expected a resource such as \"users.obot.obot.ai\", found an empty name",
        ),
    ] {
        let yaml = two_entries(&["credentials", name], &["x"]);
        let e = rejected(&yaml);
        assert_eq!(
            e.kind,
            ConfigErrorKind::InvalidResource {
                name: name.into(),
                reason
            },
            "{name:?}"
        );
        assert_eq!(
            e.location,
            format!("resources[0] (credentials, {name}).resources[1]")
        );
        assert_eq!(
            e.to_string(),
            format!(
                "invalid EncryptionConfiguration at resources[0] (credentials, {name}).resources[1]: \
                 invalid resource name {name:?}: {reason}"
            )
        );
    }
}

#[test]
fn resource_pattern_matching() -> Result<(), &'static str> {
    let p = ResourcePattern::parse("*.obot.obot.ai")?;
    assert!(p.is_wildcard());
    assert!(p.matches("users.obot.obot.ai"));
    assert!(
        !p.matches("obot.obot.ai"),
        "the group of obot.obot.ai is obot.ai"
    );
    assert!(!p.matches("users.obot.obot.ai.evil"));
    assert!(!p.matches("users.xobot.obot.ai"));
    assert!(!p.matches("credentials"));
    let core = ResourcePattern::parse("*.")?;
    assert!(core.matches("credentials"));
    assert!(core.matches("secrets"));
    assert!(!core.matches("users.obot.obot.ai"));
    let all = ResourcePattern::parse("*.*")?;
    assert!(all.matches("credentials") && all.matches("a.b.c"));
    let exact = ResourcePattern::parse("credentials")?;
    assert!(!exact.is_wildcard());
    assert!(exact.matches("credentials"));
    assert!(!exact.matches("credentials2") && !exact.matches("credential"));
    assert_eq!(exact.to_string(), "credentials");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Obot's files
// ---------------------------------------------------------------------------------------------

fn assert_obot_resources(config: &EncryptionConfiguration) {
    assert_eq!(config.resources.len(), 1);
    let names: Vec<&str> = config.resources[0]
        .resources
        .iter()
        .map(ResourcePattern::as_str)
        .collect();
    assert_eq!(names, OBOT_RESOURCES);
    for r in OBOT_RESOURCES {
        assert!(config.entry_for(r).is_some(), "{r}");
    }
    assert!(config.entry_for("secrets").is_none());
    assert!(config.entry_for("obot.obot.ai").is_none());
}

#[test]
fn obot_aesgcm_file() -> Result<(), Error> {
    for config in [
        EncryptionConfiguration::from_yaml(OBOT_AESGCM_YAML)?,
        EncryptionConfiguration::from_yaml(OBOT_AESGCM_JSON)?,
        EncryptionConfiguration::from_json(OBOT_AESGCM_JSON)?,
    ] {
        assert_obot_resources(&config);
        let providers = &config.resources[0].providers;
        assert_eq!(providers.len(), 2);
        let ProviderConfig::AesGcm(keys) = &providers[0] else {
            panic!("expected aesgcm first, got {:?}", providers[0]);
        };
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].name, "key1");
        assert_eq!(keys[0].secret.expose(), b"secret is secure, I think so!!!!");
        assert!(matches!(providers[1], ProviderConfig::Identity));
        assert_eq!(providers[0].kind(), ProviderKind::AesGcm);
        assert_eq!(providers[1].kind(), ProviderKind::Identity);
    }
    Ok(())
}

#[test]
fn obot_kms_file() -> Result<(), Error> {
    for config in [
        EncryptionConfiguration::from_yaml(OBOT_KMS_YAML)?,
        EncryptionConfiguration::from_yaml(OBOT_KMS_JSON)?,
        EncryptionConfiguration::from_json(OBOT_KMS_JSON)?,
    ] {
        assert_obot_resources(&config);
        let providers = &config.resources[0].providers;
        assert_eq!(providers.len(), 2);
        let ProviderConfig::Kms(k) = &providers[0] else {
            panic!("expected kms first, got {:?}", providers[0]);
        };
        assert_eq!(
            *k,
            KmsConfig {
                name: "aws-encryption-provider".into(),
                endpoint: "unix:///tmp/aws-cred-socket.sock".into(),
                timeout: Duration::from_secs(3),
            }
        );
        assert_eq!(providers[0].kind(), ProviderKind::Kms);
        assert!(matches!(providers[1], ProviderConfig::Identity));
    }
    Ok(())
}

#[test]
fn obot_file_error_locations_name_the_entry() {
    let yaml = OBOT_AESGCM_YAML.replace(KEY32, &b64(&[0; 20]));
    assert_rejected(
        &yaml,
        "resources[0] (credentials, users.obot.obot.ai, +5 more).providers[0].aesgcm.keys[0] \
         (\"key1\").secret",
        ConfigErrorKind::InvalidKeyLength {
            expected: "16, 24 or 32",
            found: 20,
        },
        "expected a key of 16, 24 or 32 bytes after base64 decoding, found 20 bytes",
    );
}

#[test]
fn from_file_names_the_file() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, OBOT_AESGCM_YAML)?;
    assert_obot_resources(&EncryptionConfiguration::from_file(&good)?);
    let json = dir.path().join("good.json");
    std::fs::write(&json, OBOT_KMS_JSON)?;
    assert_obot_resources(&EncryptionConfiguration::from_file(&json)?);

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, OBOT_AESGCM_YAML.replace("kind: Enc", "kind: Dec"))?;
    let Err(Error::Config(e)) = EncryptionConfiguration::from_file(&bad) else {
        panic!("expected a config error");
    };
    let shown = bad.display().to_string();
    assert_eq!(e.file.as_deref(), Some(shown.as_str()));
    assert_eq!(
        e.to_string(),
        format!(
            "invalid EncryptionConfiguration in {shown} at kind: expected kind \
             \"EncryptionConfiguration\", found \"DecryptionConfiguration\""
        )
    );

    let missing = dir.path().join("missing.yaml");
    let Err(Error::Config(e)) = EncryptionConfiguration::from_file(&missing) else {
        panic!("expected a config error");
    };
    assert!(matches!(e.kind, ConfigErrorKind::Io(_)), "{:?}", e.kind);
    let message = e.to_string();
    let expected = format!(
        "invalid EncryptionConfiguration in {}: cannot read the file: ",
        missing.display()
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(
        message.len() > expected.len(),
        "the OS reason is missing: {message}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// entry_for
// ---------------------------------------------------------------------------------------------

#[test]
fn entry_for_matches_exact_group_core_and_all_in_order() -> Result<(), Error> {
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  \
         - resources: [users.obot.obot.ai]\n    providers:\n{}  - resources: [\"*.obot.obot.ai\"]\n    \
         providers:\n{}  - resources: [\"*.\"]\n    providers:\n{}  - resources: [\"*.*\"]\n    \
         providers:\n      - identity: {{}}\n",
        keyed("aesgcm", "exact", KEY32),
        keyed("secretbox", "group", KEY32),
        keyed("aescbc", "core", KEY32),
    );
    let config = EncryptionConfiguration::from_yaml(&yaml)?;
    let first_key = |resource: &str| -> Option<(ProviderKind, String)> {
        let entry = config.entry_for(resource)?;
        Some(match &entry.providers[0] {
            ProviderConfig::AesGcm(k)
            | ProviderConfig::AesCbc(k)
            | ProviderConfig::Secretbox(k) => (entry.providers[0].kind(), k[0].name.clone()),
            other => (other.kind(), String::new()),
        })
    };
    assert_eq!(
        first_key("users.obot.obot.ai"),
        Some((ProviderKind::AesGcm, "exact".into())),
        "the exact entry comes first"
    );
    assert_eq!(
        first_key("identities.obot.obot.ai"),
        Some((ProviderKind::Secretbox, "group".into()))
    );
    assert_eq!(
        first_key("credentials"),
        Some((ProviderKind::AesCbc, "core".into()))
    );
    assert_eq!(
        first_key("secrets"),
        Some((ProviderKind::AesCbc, "core".into()))
    );
    assert_eq!(
        first_key("deployments.apps"),
        Some((ProviderKind::Identity, String::new()))
    );
    assert_eq!(
        first_key("obot.obot.ai"),
        Some((ProviderKind::Identity, String::new())),
        "obot.obot.ai is resource `obot` of group `obot.ai`"
    );
    Ok(())
}

#[test]
fn entry_for_without_catch_all() -> Result<(), Error> {
    let config =
        EncryptionConfiguration::from_yaml(&two_entries(&["*.obot.obot.ai"], &["credentials"]))?;
    assert!(config.entry_for("users.obot.obot.ai").is_some());
    assert!(std::ptr::eq(
        config.entry_for("credentials").expect("listed"),
        &config.resources[1]
    ));
    assert!(std::ptr::eq(
        config.entry_for("runstates.obot.obot.ai").expect("listed"),
        &config.resources[0]
    ));
    assert!(config.entry_for("secrets").is_none());
    assert!(config.entry_for("users.example.com").is_none());
    assert!(config.entry_for("").is_none());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Secrets never echoed
// ---------------------------------------------------------------------------------------------

#[test]
fn non_string_secret_is_rejected_without_its_value() {
    let canary_number = "918273645546372819";
    let cases = [
        canary_number.to_owned(),
        format!("{canary_number}.5"),
        "true".to_owned(),
        format!("{{CANARYKEY: {canary_number}}}"),
        format!("[CANARYKEY, {canary_number}]"),
        format!("\n                CANARYKEY: {canary_number}"),
    ];
    for secret in cases {
        let yaml = one(&keyed("aesgcm", "key1", &secret));
        let e = rejected(&yaml);
        let shown = format!("{e} {e:?}");
        assert!(
            matches!(e.kind, ConfigErrorKind::Syntax(_)),
            "{secret}: {:?}",
            e.kind
        );
        assert!(
            shown.contains("secret must be a base64 string (value not shown)"),
            "{secret}: {shown}"
        );
        assert!(!shown.contains(canary_number), "{secret}: {shown}");
        assert!(!shown.contains("CANARYKEY"), "{secret}: {shown}");
    }
    // The same through the JSON parser.
    for secret in [
        canary_number.to_owned(),
        format!("{{\"CANARYKEY\": {canary_number}}}"),
        format!("[\"CANARYKEY\", {canary_number}]"),
        "null".to_owned(),
    ] {
        let json = OBOT_AESGCM_JSON.replace(&format!("\"{KEY32}\""), &secret);
        assert_ne!(json, OBOT_AESGCM_JSON);
        let Err(Error::Config(e)) = EncryptionConfiguration::from_json(&json) else {
            panic!("{secret}: expected a config error");
        };
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(canary_number), "{secret}: {shown}");
        assert!(!shown.contains("CANARYKEY"), "{secret}: {shown}");
    }
}

#[test]
fn config_debug_never_shows_key_bytes() -> Result<(), Error> {
    let key: Vec<u8> = (0u8..32).map(|i| 0x80 | i.wrapping_mul(37)).collect();
    let secret = b64(&key);
    let config = EncryptionConfiguration::from_yaml(&one(&keyed("aesgcm", "key1", &secret)))?;
    let debug = format!("{config:?} {config:#?}");
    assert!(debug.contains("REDACTED"), "{debug}");
    assert!(!debug.contains(&secret));
    let decimal: Vec<String> = key.iter().map(u8::to_string).collect();
    assert!(!debug.contains(&decimal[..4].join(", ")), "{debug}");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!debug.to_lowercase().contains(&hex[..16]), "{debug}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// parse_duration and generate_aesgcm
// ---------------------------------------------------------------------------------------------

#[test]
fn parse_duration_accepts_go_durations() {
    for (text, expected) in [
        ("0", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("3s", Duration::from_secs(3)),
        (" 3s ", Duration::from_secs(3)),
        ("500ms", Duration::from_millis(500)),
        ("1m30s", Duration::from_secs(90)),
        ("1h", Duration::from_secs(3600)),
        ("2h45m", Duration::from_secs(2 * 3600 + 45 * 60)),
        ("1.5s", Duration::from_millis(1500)),
        (".5s", Duration::from_millis(500)),
        ("1.1s", Duration::from_millis(1100)),
        ("10ns", Duration::from_nanos(10)),
        ("10us", Duration::from_micros(10)),
        ("10µs", Duration::from_micros(10)),
        ("10μs", Duration::from_micros(10)),
        ("1s500ms", Duration::from_millis(1500)),
        ("1ms1ms", Duration::from_millis(2)),
        ("100000h", Duration::from_secs(100_000 * 3600)),
    ] {
        assert_eq!(parse_duration(text), Some(expected), "{text:?}");
    }
}

#[test]
fn parse_duration_rejects_the_rest() {
    for text in [
        "",
        " ",
        "3",
        "00",
        "s",
        "ms",
        "-3s",
        "+-3s",
        "3S",
        "3sec",
        "3 s",
        "3s ms",
        "1.2.3s",
        ".s",
        "1e3s",
        "3d",
        "3w",
        "three seconds",
        "NaNs",
        "infs",
        "∞s",
        // More nanoseconds than a u64 holds.
        "99999999999999999999h",
        "1000000000000000000000ns",
    ] {
        assert_eq!(parse_duration(text), None, "{text:?}");
    }
}

#[test]
fn generate_aesgcm_writes_a_valid_file() -> Result<(), Error> {
    let text = generate_aesgcm(OBOT_RESOURCES, "key1")?;
    let config = EncryptionConfiguration::from_yaml(&text)?;
    assert_obot_resources(&config);
    let providers = &config.resources[0].providers;
    let ProviderConfig::AesGcm(keys) = &providers[0] else {
        panic!("expected aesgcm first");
    };
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "key1");
    assert_eq!(keys[0].secret.len(), 32);
    assert!(keys[0].secret.expose().iter().any(|b| *b != 0));
    assert!(matches!(providers[1], ProviderConfig::Identity));
    assert_eq!(providers.len(), 2);
    // It works as a keyring.
    let keyring = crate::Keyring::from_config(&config)?;
    let stored = keyring.encrypt("credentials", b"x", b"ctx")?;
    assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:key1:"));

    // Fresh keys every time.
    let again = EncryptionConfiguration::from_yaml(&generate_aesgcm(OBOT_RESOURCES, "key1")?)?;
    let ProviderConfig::AesGcm(other) = &again.resources[0].providers[0] else {
        panic!("expected aesgcm first");
    };
    assert_ne!(keys[0].secret.expose(), other[0].secret.expose());
    Ok(())
}

#[test]
fn generate_aesgcm_round_trips_any_valid_resource_and_key_name() -> Result<(), Error> {
    // What generate_aesgcm returns must read back with exactly the names it was given: wildcards
    // start with `*` (a YAML alias), `#` starts a comment, and plain `null` is not a string. A
    // name it cannot write faithfully must be an error, never a broken file.
    let resources = [
        "credentials",
        "1",
        "null",
        "true",
        "#x",
        "*.obot.obot.ai",
        "*.",
    ];
    let mut written = 0;
    for name in [
        "key1",
        "null",
        "Null",
        "NULL",
        "true",
        "no",
        "1",
        "-1",
        "1e3",
        "0x10",
        ".inf",
        ".nan",
        "-",
        ".",
        "...",
        "---",
        "key.2_x-y",
    ] {
        let text = match generate_aesgcm(&resources, name) {
            Ok(text) => text,
            Err(Error::Config(e)) => {
                assert!(
                    name.eq_ignore_ascii_case("null") || name == "-",
                    "{name:?}: {e}"
                );
                continue;
            }
            Err(e) => return Err(e),
        };
        let config = EncryptionConfiguration::from_yaml(&text)?;
        let patterns: Vec<&str> = config.resources[0]
            .resources
            .iter()
            .map(ResourcePattern::as_str)
            .collect();
        assert_eq!(patterns, resources, "{name:?}");
        let ProviderConfig::AesGcm(keys) = &config.resources[0].providers[0] else {
            panic!("expected aesgcm first");
        };
        assert_eq!(keys[0].name, name);
        written += 1;
    }
    assert!(written >= 12, "only {written} names written");
    let all = generate_aesgcm(&["*.*"], "k")?;
    assert_eq!(
        EncryptionConfiguration::from_yaml(&all)?.resources[0].resources[0].as_str(),
        "*.*"
    );
    Ok(())
}

#[test]
fn generate_aesgcm_rejects_bad_input() {
    for name in ["", "a b", "a:b", "key\n", "ключ"] {
        let Err(Error::Config(e)) = generate_aesgcm(&["credentials"], name) else {
            panic!("key name {name:?} must be rejected");
        };
        assert_eq!(e.kind, ConfigErrorKind::EmptyName, "{name:?}");
    }
    for resource in ["Users", "users.*", "a b"] {
        let Err(Error::Config(e)) = generate_aesgcm(&["credentials", resource], "k") else {
            panic!("resource {resource:?} must be rejected");
        };
        assert!(
            matches!(&e.kind, ConfigErrorKind::InvalidResource { name, .. } if name == resource),
            "{resource:?}: {:?}",
            e.kind
        );
    }
    // What the parser would reject, the generator must not write.
    for resources in [
        &[][..],
        &["credentials", "credentials"][..],
        &["*.*", "credentials"][..],
    ] {
        let Err(Error::Config(e)) = generate_aesgcm(resources, "k") else {
            panic!("{resources:?} must be rejected");
        };
        assert!(
            matches!(
                e.kind,
                ConfigErrorKind::Empty { .. }
                    | ConfigErrorKind::DuplicateResource { .. }
                    | ConfigErrorKind::MaskedResource { .. }
            ),
            "{resources:?}: {:?}",
            e.kind
        );
    }
}

// ---------------------------------------------------------------------------------------------
// No parse error quotes the document
// ---------------------------------------------------------------------------------------------

/// A realistic key (base64 of 32 bytes) and a number, standing where they must not.
const CANARY_KEY: &str = "Q0FOQVJZLWtleS1ieXRlcy1tdXN0LW5ldmVyLXNob3c=";
const CANARY_NUMBER: &str = "918273645546372819";

#[track_caller]
fn assert_no_canary(what: &str, result: Result<EncryptionConfiguration, Error>) -> ConfigError {
    let e = match result {
        Err(Error::Config(e)) => e,
        other => panic!("{what}: expected a configuration error, got {other:?}"),
    };
    let shown = format!("{e} {e:?}");
    for canary in [CANARY_KEY, &CANARY_KEY[..20], CANARY_NUMBER, "CANARY"] {
        assert!(!shown.contains(canary), "{what}: {canary} leaked: {shown}");
    }
    e
}

#[test]
fn no_yaml_parse_error_quotes_a_value() {
    let k = CANARY_KEY;
    let n = CANARY_NUMBER;
    let head = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n";
    let entry = format!("{head}resources:\n  - resources: [users.obot.obot.ai]\n    providers:\n");
    let shapes = [
        // A key file or a password file passed as the configuration.
        k.to_owned(),
        format!("{k}\n"),
        format!("\"{k}\""),
        format!("'{k}'"),
        format!("postgres-password-{k}\nsecond line {k}\n"),
        n.to_owned(),
        format!("{n}.5"),
        format!("[{k}, {n}]"),
        format!("- {k}\n- {n}\n"),
        // A key where a mapping or a list is expected, at every level.
        format!("{head}resources: {k}\n"),
        format!("{head}resources: {n}\n"),
        format!("{head}resources:\n  - {k}\n"),
        format!("{head}resources:\n  - [{k}]\n"),
        format!("{head}resources:\n  - resources: {k}\n"),
        format!("{head}resources:\n  - resources: [[{k}]]\n"),
        format!("{head}resources:\n  - resources: [{{a: {k}}}]\n"),
        format!("{entry}      - {k}\n"),
        format!("{entry}      - {n}\n"),
        format!("{entry}      - aesgcm: {k}\n"),
        format!("{entry}      - aesgcm: [{k}]\n"),
        format!("{entry}      - aesgcm:\n          keys: {k}\n"),
        format!("{entry}      - aesgcm:\n          keys: {n}\n"),
        format!("{entry}      - aesgcm:\n          keys:\n            - {k}\n"),
        format!("{entry}      - aesgcm:\n          keys: [{k}, {n}]\n"),
        format!("{entry}      - aesgcm:\n          keys:\n            - [{k}]\n"),
        format!("{entry}      - secretbox:\n          keys:\n            - name: [{k}]\n"),
        format!("{entry}      - identity: {k}\n"),
        format!("{entry}      - identity: [{k}]\n"),
        format!("{entry}      - kms: {k}\n"),
        format!("{entry}      - kms:\n          name: {{a: {k}}}\n"),
        format!("{entry}      - kms:\n          cachesize: {k}\n"),
        format!("{entry}      - kms:\n          cachesize: {n}.5\n"),
        // A key as a field name.
        format!("{k}: 1\n"),
        format!("{head}{k}: {n}\n"),
        format!("{entry}      - aesgcm:\n          keys:\n            - {k}: x\n"),
        format!("{entry}      - {k}: {{}}\n"),
        format!("{entry}      - identity: {{{k}: 1}}\n"),
    ];
    for text in &shapes {
        let e = assert_no_canary(text, EncryptionConfiguration::from_yaml(text));
        assert!(matches!(e.kind, ConfigErrorKind::Syntax(_)), "{text}: {e}");
        // What was expected and where are kept.
        let message = e.to_string();
        assert!(
            message.contains("expected") || message.contains("there are no fields"),
            "{text}: {message}"
        );
    }
    // The position is kept where the value is not at the very start.
    let e = rejected(&format!("{head}resources:\n  - {k}\n"));
    assert!(e.to_string().contains("line 4 column 5"), "{e}");
    assert!(e.to_string().contains("a string of 44 characters"), "{e}");
    // A typo in a field name is still shown.
    let e = rejected(&one(&keyed("aesgmc", "key1", KEY32)));
    assert!(e.to_string().contains("unknown field `aesgmc`"), "{e}");
}

#[test]
fn a_wrong_api_version_or_kind_is_shown_unless_it_looks_like_a_key() {
    let doc = |api: &str, kind: &str| {
        format!(
            "apiVersion: {api}\nkind: {kind}\nresources:\n  - resources: [a]\n    providers:\n      - identity: {{}}\n"
        )
    };
    for (api, shown) in [
        ("v1", "v1"),
        (
            "apiserver.config.k8s.io/v2beta1",
            "apiserver.config.k8s.io/v2beta1",
        ),
        (CANARY_KEY, "<44 characters, not shown>"),
        (CANARY_NUMBER, "<18 characters, not shown>"),
        ("Q0FOQVJZ/v1", "<11 characters, not shown>"),
    ] {
        let e = rejected(&doc(api, "EncryptionConfiguration"));
        assert_eq!(
            e.kind,
            ConfigErrorKind::UnknownApiVersion {
                found: shown.into()
            }
        );
    }
    for (kind, shown) in [
        ("Config", "Config"),
        (CANARY_KEY, "<44 characters, not shown>"),
        ("Q0FOQVJZLWtleS1ieXRlcy1tdXN0", "<28 characters, not shown>"),
    ] {
        let e = rejected(&doc(API_VERSION, kind));
        assert_eq!(
            e.kind,
            ConfigErrorKind::UnknownKind {
                found: shown.into()
            }
        );
    }
}

#[test]
fn no_json_parse_error_quotes_a_value() {
    let k = CANARY_KEY;
    let n = CANARY_NUMBER;
    let entry = |providers: &str| {
        format!(
            "{{\"apiVersion\": \"apiserver.config.k8s.io/v1\", \"kind\": \"EncryptionConfiguration\", \
             \"resources\": [{{\"resources\": [\"users.obot.obot.ai\"], \"providers\": [{providers}]}}]}}"
        )
    };
    let shapes = [
        format!("\"{k}\""),
        n.to_owned(),
        format!("{n}.5"),
        "true".to_owned(),
        format!("[\"{k}\", {n}]"),
        format!("{{\"apiVersion\": {n}}}"),
        format!("{{\"kind\": [\"{k}\"]}}"),
        format!("{{\"resources\": \"{k}\"}}"),
        format!("{{\"resources\": [\"{k}\"]}}"),
        format!("{{\"resources\": [{{\"resources\": \"{k}\"}}]}}"),
        format!("{{\"resources\": [{{\"resources\": [{n}]}}]}}"),
        format!("{{\"{k}\": 1}}"),
        entry(&format!("\"{k}\"")),
        entry(&format!("{{\"aesgcm\": \"{k}\"}}")),
        entry(&format!("{{\"aesgcm\": {{\"keys\": \"{k}\"}}}}")),
        entry(&format!("{{\"aesgcm\": {{\"keys\": [\"{k}\"]}}}}")),
        entry(&format!(
            "{{\"aesgcm\": {{\"keys\": [{{\"name\": {n}}}]}}}}"
        )),
        entry(&format!("{{\"aesgcm\": {{\"keys\": [{{\"{k}\": 1}}]}}}}")),
        entry(&format!("{{\"kms\": {{\"cachesize\": \"{k}\"}}}}")),
        entry(&format!("{{\"identity\": \"{k}\"}}")),
    ];
    for text in &shapes {
        let e = assert_no_canary(text, EncryptionConfiguration::from_json(text));
        assert!(matches!(e.kind, ConfigErrorKind::Syntax(_)), "{text}: {e}");
        assert!(e.to_string().contains("line 1 column"), "{text}: {e}");
        // And through the YAML parser, which reads JSON too. There a number where a string is
        // expected is that string: a key or resource *name* (shown in locations by design),
        // so only its parse errors are checked here.
        if let Err(Error::Config(e)) = EncryptionConfiguration::from_yaml(text)
            && matches!(e.kind, ConfigErrorKind::Syntax(_))
        {
            assert_no_canary(text, Err(Error::Config(e)));
        }
    }
}

#[test]
fn a_key_file_given_as_the_configuration_is_not_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in [
        ("key.b64", format!("{CANARY_KEY}\n")),
        ("password", format!("CANARY-db-password-{CANARY_NUMBER}")),
        ("kek.json", format!("{{\"key\": \"{CANARY_KEY}\"}}")),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        let e = assert_no_canary(name, EncryptionConfiguration::from_file(&path));
        assert_eq!(e.file.as_deref(), Some(path.display().to_string().as_str()));
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded cost
// ---------------------------------------------------------------------------------------------

#[test]
fn a_document_over_the_size_limit_is_refused() -> Result<(), Error> {
    // A valid document padded with a comment to exactly the limit passes; one byte more does not.
    let mut text = OBOT_AESGCM_YAML.to_owned();
    text.push('#');
    text.push_str(&" ".repeat(MAX_CONFIG_BYTES - text.len() - 1));
    text.push('\n');
    assert_eq!(text.len(), MAX_CONFIG_BYTES);
    EncryptionConfiguration::from_yaml(&text)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, &text).expect("write");
    EncryptionConfiguration::from_file(&path)?;

    text.push(' ');
    let too_large = ConfigErrorKind::TooLarge {
        limit: MAX_CONFIG_BYTES,
    };
    let e = rejected(&text);
    assert_eq!(e.kind, too_large);
    assert_eq!(
        e.to_string(),
        "invalid EncryptionConfiguration: the configuration is larger than 1048576 bytes; an \
         EncryptionConfiguration is a few KiB"
    );
    let Err(Error::Config(e)) = EncryptionConfiguration::from_json(&text) else {
        panic!("too large for JSON too");
    };
    assert_eq!(e.kind, too_large);
    std::fs::write(&path, &text).expect("write");
    let Err(Error::Config(e)) = EncryptionConfiguration::from_file(&path) else {
        panic!("too large a file");
    };
    assert_eq!(e.kind, too_large);
    assert_eq!(e.file.as_deref(), Some(path.display().to_string().as_str()));
    Ok(())
}

#[test]
fn an_endless_file_is_refused_after_the_limit() {
    // Reading all of /dev/zero would never end; the limit stops it.
    let Err(Error::Config(e)) = EncryptionConfiguration::from_file("/dev/zero") else {
        panic!("/dev/zero must be refused");
    };
    assert_eq!(
        e.kind,
        ConfigErrorKind::TooLarge {
            limit: MAX_CONFIG_BYTES
        }
    );
    assert_eq!(e.file.as_deref(), Some("/dev/zero"));
    // Bytes that are not UTF-8 are named by offset, not shown.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("binary");
    std::fs::write(&path, b"apiVersion: \xff\xfe").expect("write");
    let Err(Error::Config(e)) = EncryptionConfiguration::from_file(&path) else {
        panic!("binary must be refused");
    };
    assert_eq!(
        e.kind,
        ConfigErrorKind::Io("the file is not UTF-8 text (invalid byte at offset 12)".into())
    );
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let deep_flow = "[".repeat(100_000);
    let deep_block = "- ".repeat(100_000);
    let deep_map = format!("{}x", "{a: ".repeat(100_000));
    let deep_lines: String = (0..100)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    for (text, line) in [
        (&deep_flow, 1),
        (&deep_block, 1),
        (&deep_map, 1),
        (&deep_lines, MAX_DEPTH + 1),
    ] {
        let e = rejected(text);
        assert_eq!(
            e.kind,
            ConfigErrorKind::TooDeep {
                limit: MAX_DEPTH,
                line
            },
            "{}",
            &text[..40]
        );
        assert!(e.to_string().contains("more than 64 levels deep"), "{e}");
    }
    let Err(Error::Config(e)) = EncryptionConfiguration::from_json(&deep_flow) else {
        panic!("deep JSON must be refused");
    };
    assert!(matches!(e.kind, ConfigErrorKind::TooDeep { .. }), "{e}");
    // Every fixture nests well within the limit.
    for text in [
        OBOT_AESGCM_YAML,
        OBOT_AESGCM_JSON,
        OBOT_KMS_YAML,
        OBOT_KMS_JSON,
    ] {
        assert_eq!(depth::exceeds(text, 12), None, "{text}");
    }
}

/// `resources: [r0, r1, ...]` in one entry, then `identity: {}`.
fn many_resources(names: impl Iterator<Item = String>) -> String {
    let list: Vec<String> = names.collect();
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - \
         resources: [{}]\n    providers:\n      - identity: {{}}\n",
        list.join(", ")
    )
}

fn parse_unbounded(text: &str) -> Result<EncryptionConfiguration, Error> {
    parse(text, usize::MAX, |t| {
        serde_norway::from_str(t).map_err(|e| e.to_string())
    })
}

#[test]
fn two_hundred_thousand_resources_validate() -> Result<(), Error> {
    // The duplicate and masking checks are linear: compared pairwise, this would take minutes.
    let n = 200_000;
    let names = || (0..n).map(|i| format!("r{i}.g{}", i % 97));
    let config = parse_unbounded(&many_resources(names()))?;
    assert_eq!(config.resources[0].resources.len(), n);
    // A duplicate at the end is still found, and named with its first place.
    let e = match parse_unbounded(&many_resources(
        names().chain(std::iter::once("r17.g17".to_owned())),
    )) {
        Err(Error::Config(e)) => e,
        other => panic!("expected a duplicate, got {other:?}"),
    };
    assert_eq!(
        e.kind,
        ConfigErrorKind::DuplicateResource {
            name: "r17.g17".into(),
            first: "resources[0] (r0.g0, r1.g1, +199999 more).resources[17]".into(),
        }
    );
    assert_eq!(
        e.location,
        "resources[0] (r0.g0, r1.g1, +199999 more).resources[200000]"
    );
    // And a wildcard at the end masks nothing earlier, but one at the start masks the rest.
    parse_unbounded(&many_resources(
        names().chain(std::iter::once("\"*.g3\"".to_owned())),
    ))?;
    let e = match parse_unbounded(&many_resources(
        std::iter::once("\"*.g3\"".to_owned()).chain(names()),
    )) {
        Err(Error::Config(e)) => e,
        other => panic!("expected a masked resource, got {other:?}"),
    };
    assert!(
        matches!(&e.kind, ConfigErrorKind::MaskedResource { name, wildcard, .. } if name == "r3.g3" && wildcard == "*.g3"),
        "{e}"
    );
    Ok(())
}

/// The first duplicate or masked pattern, found by comparing every pair (the definition).
fn pairwise_first_error(patterns: &[ResourcePattern]) -> Option<ConfigErrorKind> {
    for (i, p) in patterns.iter().enumerate() {
        for earlier in &patterns[..i] {
            if earlier.as_str() == p.as_str() {
                return Some(ConfigErrorKind::DuplicateResource {
                    name: p.as_str().to_owned(),
                    first: String::new(),
                });
            }
            if earlier.covers(p) {
                return Some(ConfigErrorKind::MaskedResource {
                    name: p.as_str().to_owned(),
                    wildcard: earlier.as_str().to_owned(),
                    first: String::new(),
                });
            }
        }
    }
    None
}

proptest::proptest! {
    #[test]
    fn the_indexed_check_finds_what_pairwise_comparison_finds(
        picks in proptest::collection::vec(0usize..10, 0..12)
    ) {
        const POOL: [&str; 10] =
            ["a", "b", "x.g", "y.g", "*.g", "x.h", "*.h", "*.", "*.*", "credentials"];
        let patterns: Vec<ResourcePattern> = picks
            .iter()
            .map(|&i| ResourcePattern::parse(POOL[i]).expect("valid"))
            .collect();
        let mut seen = SeenResources::default();
        let indexed = patterns
            .iter()
            .enumerate()
            .find_map(|(i, p)| seen.check(p, &format!("at {i}")).err())
            .map(|e| match e.kind {
                ConfigErrorKind::DuplicateResource { name, .. } => {
                    ConfigErrorKind::DuplicateResource { name, first: String::new() }
                }
                ConfigErrorKind::MaskedResource { name, wildcard, .. } => {
                    ConfigErrorKind::MaskedResource { name, wildcard, first: String::new() }
                }
                other => other,
            });
        proptest::prop_assert_eq!(indexed, pairwise_first_error(&patterns));
    }
}
