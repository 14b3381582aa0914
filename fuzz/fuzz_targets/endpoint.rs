//! KMS endpoint parsing, for the endpoints this build serves without the cloud features
//! (`aws`, `gcp` and `azure` pull large SDKs; their parsers are not fuzzed here):
//!
//! - the configuration's `endpoint` check (`from_json`): accepted exactly when the endpoint
//!   starts with a KMS scheme, kept as written; otherwise a typed `InvalidKmsEndpoint`;
//! - the plugin's `unix://` parser (`encrypted_core::__fuzz::plugin_endpoint`): what it accepts
//!   formats back to the same endpoint; what it refuses is a typed `InvalidPluginEndpoint`;
//! - `LocalKeyService::from_endpoint` (`local://` file and environment forms), confined to a
//!   directory and variables this target made: it loads exactly the files and variables that
//!   hold base64 of 32 bytes, with that key's id, and its errors never show a key, the base64 of
//!   one, or the content of a file or variable;
//! - a registry that serves no scheme: a typed `UnsupportedEndpoint`.
//!
//! Never a panic.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use encrypted_core::config::{KmsConfig, ProviderConfig};
use encrypted_core::kms::{KeyServiceRegistry, KmsError, LocalKeyService};
use encrypted_core::{ConfigErrorKind, EncryptionConfiguration, Error};
use libfuzzer_sys::fuzz_target;

const GOOD: [u8; 32] = [0x5a; 32];
const SHORT: [u8; 16] = [0x6b; 16];
const CANARY: &str = "FILE-CONTENT-CANARY-not-base64";
/// Environment variables this target sets: (name, value).
const VARS: [(&str, &str); 3] = [
    (
        "FUZZ_KMS_GOOD",
        "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=",
    ),
    ("FUZZ_KMS_SHORT", "a2tra2tra2tra2tra2tra2s="),
    ("FUZZ_KMS_CANARY", CANARY),
];

struct Sandbox {
    dir: PathBuf,
    good_key_id: String,
}

static SANDBOX: LazyLock<Sandbox> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("fuzz-endpoint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).expect("sandbox");
    let files: [(&str, Vec<u8>); 5] = [
        (
            "good",
            format!("{}\n", encrypted_core::encode_base64(&GOOD)).into_bytes(),
        ),
        ("short", encrypted_core::encode_base64(&SHORT).into_bytes()),
        ("canary", CANARY.as_bytes().to_vec()),
        ("binary", [&[0xff, 0xfe][..], &GOOD].concat()),
        ("empty", Vec::new()),
    ];
    for (name, content) in files {
        std::fs::write(dir.join(name), content).expect("sandbox file");
    }
    for (name, value) in VARS {
        // SAFETY: set once, before any other thread of this process reads the environment
        // (libFuzzer runs the target on one thread; this target starts none).
        unsafe { std::env::set_var(name, value) };
    }
    let good_key_id = LocalKeyService::from_key(&GOOD, "x")
        .expect("key")
        .key_id()
        .to_owned();
    Sandbox { dir, good_key_id }
});

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// No key, base64 of one, or file or variable content in the error, unless the endpoint itself
/// holds it (errors show the endpoint).
fn check_secrets(e: &Error, endpoint: &str) {
    let text = common::describe(e);
    for secret in [&GOOD[..], &SHORT[..]] {
        if !common::shows(endpoint, secret) {
            assert!(!common::shows(&text, secret), "a key in an error: {text}");
        }
    }
    for value in VARS.map(|(_, value)| value) {
        if !endpoint.contains(value) {
            assert!(!text.contains(value), "a key's text in an error: {text}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(endpoint) = std::str::from_utf8(data) else {
        return;
    };
    let sandbox = &*SANDBOX;

    // The configuration's check.
    let document = format!(
        "{{\"apiVersion\": \"apiserver.config.k8s.io/v1\", \"kind\": \"EncryptionConfiguration\", \
         \"resources\": [{{\"resources\": [\"secrets\"], \"providers\": [{{\"kms\": \
         {{\"apiVersion\": \"v2\", \"name\": \"fz\", \"endpoint\": {}}}}}]}}]}}",
        json_string(endpoint)
    );
    let schemes = [
        "unix://",
        "aws-kms://",
        "gcp-kms://",
        "azure-keyvault://",
        "local://",
    ];
    match EncryptionConfiguration::from_json(&document) {
        Ok(config) => {
            let providers = &config.resources[0].providers;
            match &providers[0] {
                ProviderConfig::Kms(kms) => assert_eq!(kms.endpoint, endpoint),
                other => panic!("another provider: {other:?}"),
            }
            assert!(
                schemes.iter().any(|s| endpoint.starts_with(s)),
                "accepted {endpoint:?}"
            );
        }
        Err(Error::Config(c)) => match c.kind {
            ConfigErrorKind::InvalidKmsEndpoint { found } => assert_eq!(found, endpoint),
            other => panic!("{endpoint:?}: {other:?}"),
        },
        Err(other) => panic!("untyped: {other:?}"),
    }

    // The plugin's parser.
    match encrypted_core::__fuzz::plugin_endpoint(endpoint) {
        Ok(canonical) => {
            assert_eq!(canonical, endpoint, "parsed to another endpoint");
            assert!(endpoint.starts_with("unix:///"));
            // Abstract names are bytes (a NUL is allowed); paths cannot hold one.
            assert!(endpoint.starts_with("unix:///@") || !endpoint.contains('\0'));
        }
        Err(Error::Kms(KmsError::InvalidPluginEndpoint { endpoint: e, .. })) => {
            assert_eq!(e, endpoint)
        }
        Err(other) => panic!("untyped: {other:?}"),
    }

    // The local key service, confined: file paths go under the sandbox, variables are ours.
    let confined = match endpoint.strip_prefix("local:///") {
        Some(path) if path.split('/').any(|c| c == "..") => None,
        Some(path) => Some(format!("local://{}/{path}", sandbox.dir.display())),
        None => Some(endpoint.to_owned()),
    };
    if let Some(confined) = confined {
        match LocalKeyService::from_endpoint(&confined) {
            Ok(service) => assert_eq!(service.key_id(), sandbox.good_key_id, "{confined:?}"),
            Err(e) => {
                assert!(matches!(e, Error::Kms(KmsError::LocalKey { .. })), "{e:?}");
                check_secrets(&e, endpoint);
            }
        }
    }

    // No scheme served.
    let config = KmsConfig::new("fz", endpoint, Duration::from_secs(3));
    match KeyServiceRegistry::empty().key_service(&config) {
        Ok(service) => panic!("an empty registry served {endpoint:?}: {service:?}"),
        Err(Error::Kms(KmsError::UnsupportedEndpoint { endpoint: e, .. })) => {
            assert_eq!(e, endpoint)
        }
        Err(other) => panic!("untyped: {other:?}"),
    }
});
