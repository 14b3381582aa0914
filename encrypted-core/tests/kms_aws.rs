//! The AWS KMS key service for real: `aws-sdk-kms` against a moto server on loopback
//! (`MOTO_URL`, default `http://127.0.0.1:5055`; `.ci/run` starts it, or run
//! `moto_server -H 127.0.0.1 -p 5055`). Each test creates its own key with `CreateKey`, then runs
//! the whole envelope through a keyring configured with an `aws-kms://<arn>` endpoint.
//!
//! The tests fail, not skip, when the moto server is unreachable.
#![cfg(feature = "aws")]

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::primitives::Blob;
use common::{
    Calls, RESOURCE, assert_callable_from_a_runtime, assert_healthy, assert_key_missing,
    assert_no_secret, assert_no_write_seed, assert_reads_in_context, assert_reads_values,
    assert_times_out, assert_unreachable, assert_unwraps, assert_writes_stop_after_the_window,
    closed_addr, decrypt_error, is_unavailable, quiet, service_error, write_values,
};
use encrypted_core::kms::aws::{AwsKmsClient, AwsKmsOptions, SCHEME};
use encrypted_core::kms::{
    DekSourceType, EncryptedObject, KeyService, KeyServiceRegistry, KmsError, KmsOptions,
};
use encrypted_core::{EncryptionConfiguration, Error, Keyring};

const PREFIX: &[u8] = b"k8s:enc:kms:v2:aws:";
const REGION: &str = "us-east-1";

fn moto_url() -> String {
    std::env::var("MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".to_owned())
}

/// The options every keyring of these tests uses: moto's URL and dummy credentials, set in code
/// (not through the environment).
fn moto_options() -> AwsKmsOptions {
    AwsKmsOptions::default()
        .endpoint_url(moto_url())
        .static_credentials("test", "test")
}

// ---------------------------------------------------------------------------------------------
// The administrator: creates, disables and aliases keys on moto with aws-sdk-kms
// ---------------------------------------------------------------------------------------------

struct Admin {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_kms::Client,
}

impl Admin {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(moto_url())
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .build();
        Self {
            runtime,
            client: aws_sdk_kms::Client::from_conf(config),
        }
    }

    /// A new symmetric key; its ARN. Panics (fails the test) when moto is unreachable.
    fn create_key(&self) -> String {
        let created = self
            .runtime
            .block_on(
                self.client
                    .create_key()
                    .description("encrypted-core test key")
                    .send(),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "moto server at {} is unreachable or failed ({}); start it with \
                     `moto_server -H 127.0.0.1 -p 5055` or set MOTO_URL",
                    moto_url(),
                    aws_sdk_kms::error::DisplayErrorContext(&e)
                )
            });
        created
            .key_metadata
            .and_then(|m| m.arn)
            .expect("CreateKey returns the key ARN")
    }

    /// Disables the key. (moto's DisableKey and EnableKey take the bare key id, not the ARN.)
    fn disable(&self, arn: &str) {
        self.runtime
            .block_on(self.client.disable_key().key_id(bare_key_id(arn)).send())
            .expect("DisableKey");
    }

    fn enable(&self, arn: &str) {
        self.runtime
            .block_on(self.client.enable_key().key_id(bare_key_id(arn)).send())
            .expect("EnableKey");
    }

    /// Creates `alias/<name>` for `arn`; the alias ARN.
    fn alias(&self, name: &str, arn: &str) -> String {
        self.runtime
            .block_on(
                self.client
                    .create_alias()
                    .alias_name(format!("alias/{name}"))
                    .target_key_id(arn)
                    .send(),
            )
            .expect("CreateAlias");
        // arn:aws:kms:<region>:<account>:key/<id> -> ...:alias/<name>
        let (prefix, _) = arn.rsplit_once(":key/").expect("key ARN");
        format!("{prefix}:alias/{name}")
    }

    fn retarget(&self, name: &str, arn: &str) {
        self.runtime
            .block_on(
                self.client
                    .update_alias()
                    .alias_name(format!("alias/{name}"))
                    .target_key_id(arn)
                    .send(),
            )
            .expect("UpdateAlias");
    }

    /// Decrypts a wrapped seed with the SDK directly (an independent unwrap).
    fn raw_decrypt(&self, ciphertext: &[u8]) -> (Vec<u8>, String) {
        let out = self
            .runtime
            .block_on(
                self.client
                    .decrypt()
                    .ciphertext_blob(Blob::new(ciphertext.to_vec()))
                    .send(),
            )
            .expect("Decrypt");
        (
            out.plaintext.expect("plaintext").into_inner(),
            out.key_id.expect("key id"),
        )
    }
}

/// `1234abcd-...` from `arn:aws:kms:<region>:<account>:key/1234abcd-...`.
fn bare_key_id(arn: &str) -> &str {
    arn.rsplit_once(":key/").map_or(arn, |(_, id)| id)
}

fn unique(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "encrypted-core-{tag}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

// ---------------------------------------------------------------------------------------------
// Keyrings on the AWS key service, with call counting
// ---------------------------------------------------------------------------------------------

fn config(endpoint: &str, timeout: &str) -> EncryptionConfiguration {
    common::config("aws", endpoint, timeout)
}

/// A keyring whose `aws-kms://` provider is the real AWS client against moto, counted.
fn keyring(
    config: &EncryptionConfiguration,
    options: KmsOptions,
) -> (Keyring, KeyServiceRegistry, Arc<Calls>) {
    let aws = moto_options();
    common::counted_keyring(config, options, SCHEME, move |config| {
        AwsKmsClient::from_config(config, &aws)
    })
}

fn client(arn: &str, timeout: Duration) -> AwsKmsClient {
    AwsKmsClient::new(&format!("aws-kms://{arn}"), timeout, &moto_options()).expect("client")
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn key_service_contract_against_moto() {
    let admin = Admin::new();
    let arn = admin.create_key();
    let client = client(&arn, Duration::from_secs(5));
    assert_healthy(&client, &arn, "status reports the key ARN");

    let seed = [7u8; 32];
    let wrapped = client.encrypt("uid-1", &seed).expect("encrypt");
    assert_eq!(wrapped.key_id, arn, "Encrypt reports the key ARN");
    assert!(wrapped.annotations.is_empty());
    assert!(!wrapped.ciphertext.is_empty() && wrapped.ciphertext.len() <= 1024);
    assert_ne!(&wrapped.ciphertext[..], &seed[..]);
    assert_unwraps(&client, &wrapped, &seed);
    // AWS KMS itself (not our client) unwraps it too.
    assert_eq!(admin.raw_decrypt(&wrapped.ciphertext), (seed.to_vec(), arn));
}

#[test]
fn envelope_round_trip_and_call_counts_100k_writes_one_encrypt_one_decrypt() {
    const N: usize = 100_000;
    let admin = Admin::new();
    let arn = admin.create_key();
    let config = config(&format!("aws-kms://{arn}"), "5s");

    let (writer, registry, calls) = keyring(&config, quiet());
    let stored = write_values(&writer, N);
    assert_eq!(calls.encrypts(), 1, "{N} writes, one KMS Encrypt");
    assert_eq!(calls.decrypts(), 0);
    let metrics = registry.providers().get("aws").expect("provider").metrics();
    assert_eq!(
        (metrics.encrypt_calls, metrics.decrypt_calls),
        (1, 0),
        "{metrics:?}"
    );

    // The stored object is a Kubernetes KMS v2 EncryptedObject naming the key ARN, and its seed
    // is a KMS ciphertext of 32 bytes.
    let first = &stored[0];
    assert!(first.starts_with(PREFIX));
    let object = EncryptedObject::decode(&first[PREFIX.len()..]).expect("EncryptedObject");
    assert_eq!(object.key_id, arn);
    assert_eq!(
        object.encrypted_dek_source_type,
        DekSourceType::HkdfSha256XnonceAesGcmSeed
    );
    let (seed, unwrapped_by) = admin.raw_decrypt(&object.encrypted_dek_source);
    assert_eq!((seed.len(), unwrapped_by), (32, arn.clone()));

    // Reads in the same keyring need no KMS call; the context is bound.
    assert_reads_in_context(&writer, first);
    assert_eq!(calls.decrypts(), 0);

    // A fresh keyring (another process) reads all of them with one KMS Decrypt.
    let (reader, reader_registry, reader_calls) = keyring(&config, quiet());
    assert_eq!(
        reader_calls.encrypts(),
        1,
        "starting up wraps the reader's own write seed"
    );
    assert_reads_values(&reader, &stored);
    assert_eq!(
        reader_calls.decrypts(),
        1,
        "{N} reads in a fresh keyring, one KMS Decrypt"
    );
    let metrics = reader_registry
        .providers()
        .get("aws")
        .expect("provider")
        .metrics();
    assert_eq!(metrics.decrypt_calls, 1);
    eprintln!(
        "call counts against AWS KMS (moto): {N} writes -> {} Encrypt, {} DescribeKey; a fresh \
         keyring reading the {N} values -> {} Decrypt (and {} Encrypt for its own start-up seed, \
         {} DescribeKey)",
        calls.encrypts(),
        calls.status.load(Ordering::SeqCst),
        reader_calls.decrypts(),
        reader_calls.encrypts(),
        reader_calls.status.load(Ordering::SeqCst),
    );
}

#[test]
fn alias_arn_reports_the_key_arn_and_retargeting_it_rotates() {
    let admin = Admin::new();
    let first = admin.create_key();
    let name = unique("alias");
    let alias = admin.alias(&name, &first);
    let config = config(&format!("aws-kms://{alias}"), "5s");
    let (keyring, registry, calls) = keyring(&config, quiet());
    let transformer = registry.providers().get("aws").expect("provider");
    assert_eq!(transformer.health().write_key_id.as_deref(), Some(&*first));
    let old = keyring
        .encrypt(RESOURCE, b"alice@example.com", b"ctx")
        .expect("encrypt");

    // Pointing the alias at a new key is a key id change: a new seed under the new key, and values
    // written under the old key read as stale.
    let second = admin.create_key();
    admin.retarget(&name, &second);
    transformer.poll_now().expect("poll");
    assert_eq!(transformer.health().write_key_id.as_deref(), Some(&*second));
    assert_eq!(calls.encrypts(), 2);
    let read = keyring.decrypt(RESOURCE, &old, b"ctx").expect("old value");
    assert_eq!(read.plaintext, b"alice@example.com");
    assert!(read.stale, "written under {first}, current {second}");
    let new = keyring
        .encrypt(RESOURCE, b"alice@example.com", b"ctx")
        .expect("encrypt");
    let object = EncryptedObject::decode(&new[PREFIX.len()..]).expect("object");
    assert_eq!(object.key_id, second);

    // A fresh keyring reads both through the stored key ARNs (not the alias).
    let (fresh, _, fresh_calls) = keyring_fresh(&config);
    for value in [&old, &new] {
        assert_eq!(
            fresh
                .decrypt(RESOURCE, value, b"ctx")
                .expect("read")
                .plaintext,
            b"alice@example.com"
        );
    }
    assert_eq!(fresh_calls.decrypts(), 2, "one Decrypt per seed");
}

fn keyring_fresh(config: &EncryptionConfiguration) -> (Keyring, KeyServiceRegistry, Arc<Calls>) {
    keyring(config, quiet())
}

#[test]
fn disabled_key_is_unhealthy_writes_stop_after_the_window_and_cached_reads_go_on() {
    let window = Duration::from_secs(2);
    let admin = Admin::new();
    let arn = admin.create_key();
    let config = config(&format!("aws-kms://{arn}"), "5s");
    let (keyring, registry, _) = keyring(&config, quiet().write_window(window));
    let transformer = registry.providers().get("aws").expect("provider");
    let before = keyring
        .encrypt(RESOURCE, b"written before", b"ctx")
        .expect("encrypt");

    admin.disable(&arn);
    let disabled_at = Instant::now();
    let status = client(&arn, Duration::from_secs(5))
        .status()
        .expect("status");
    assert_eq!(status.healthz, "key state Disabled");
    assert_eq!(status.key_id, arn);
    let e = transformer.poll_now().expect_err("unhealthy");
    assert!(
        matches!(&e, Error::Kms(KmsError::Unhealthy { healthz, .. }) if healthz == "key state Disabled"),
        "{e:?}"
    );
    let health = transformer.health();
    assert!(!health.healthy);

    // Within the window writes go on with the current seed (no KMS call); after it, writes fail
    // with a clear error; reads of cached seeds go on.
    let during = assert_writes_stop_after_the_window(&keyring, disabled_at, window);
    for (value, expected) in [
        (&before, &b"written before"[..]),
        (&during, b"written during"),
    ] {
        assert_eq!(
            keyring
                .decrypt(RESOURCE, value, b"ctx")
                .expect("cached read")
                .plaintext,
            expected
        );
    }

    // A fresh keyring cannot write while the key is disabled: its start-up status is unhealthy,
    // so it wraps no seed. (Real AWS KMS also refuses Decrypt with DisabledException; moto does
    // not enforce the key state on Encrypt/Decrypt, so that is not asserted here.)
    let (fresh, _, fresh_calls) = keyring_fresh(&config);
    assert_eq!(
        fresh_calls.encrypts(),
        0,
        "no seed wrapped under a disabled key"
    );
    let e = fresh
        .encrypt(RESOURCE, b"v", b"ctx")
        .expect_err("the key is disabled");
    assert_no_write_seed(&e, "key state Disabled");

    // Enabled again: the next poll resumes writes.
    admin.enable(&arn);
    transformer.poll_now().expect("healthy again");
    keyring
        .encrypt(RESOURCE, b"written after", b"ctx")
        .expect("write after re-enabling");
}

#[test]
fn unknown_and_wrong_keys_are_typed_errors() {
    let admin = Admin::new();
    let arn = admin.create_key();
    let (prefix, _) = arn.rsplit_once(":key/").expect("key ARN");
    let unknown = format!("{prefix}:key/00000000-0000-4000-8000-000000000000");

    // Status and Encrypt of a key that does not exist.
    let missing = client(&unknown, Duration::from_secs(5));
    assert_key_missing(&missing, "NotFoundException", &unknown);
    // Through a keyring: it builds, and writes fail with the reason.
    let (keyring, _, _) = keyring(&config(&format!("aws-kms://{unknown}"), "5s"), quiet());
    let e = keyring
        .encrypt(RESOURCE, b"v", b"ctx")
        .expect_err("no seed");
    assert_no_write_seed(&e, "NotFoundException");

    // Decrypt: a tampered ciphertext is refused, and a secret never shows in the message.
    let good = client(&arn, Duration::from_secs(5));
    let seed = [0x5au8; 32];
    let wrapped = good.encrypt("uid", &seed).expect("encrypt");
    let mut tampered = wrapped.ciphertext.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    // Decrypt naming a key that does not exist, and naming another existing key than the one
    // that wrapped (AWS: IncorrectKeyException, moto: AccessDeniedException), are refused too.
    let other = admin.create_key();
    for (ciphertext, key_id, what) in [
        (&tampered, &arn, "tampered"),
        (&wrapped.ciphertext, &unknown, "unknown key id"),
        (&wrapped.ciphertext, &other, "wrong key id"),
    ] {
        let e = decrypt_error(&good, ciphertext, key_id, what);
        assert!(
            matches!(
                &e,
                Error::Kms(KmsError::UnwrapRefused { .. } | KmsError::ServiceRejected { .. })
            ),
            "{what}: {e:?}"
        );
        assert_no_secret(&format!("{e} {e:?}"));
    }

    // Malformed endpoints are refused when the keyring is built.
    let e = Keyring::builder()
        .kms(KeyServiceRegistry::default().aws(moto_options()).factory())
        .build(&config("aws-kms://arn:aws:kms:us-east-1:123:key/x", "5s"))
        .expect_err("bad ARN");
    assert!(
        matches!(service_error(&e), KmsError::InvalidKeyUri { .. }),
        "{e:?}"
    );
}

#[test]
fn unreachable_and_hanging_servers_are_typed_errors_within_the_timeout() {
    let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let timeout = Duration::from_secs(1);
    let slack = Duration::from_millis(1500);

    // Nothing listens: refused connections (the SDK retries within the timeout).
    let options = AwsKmsOptions::default()
        .endpoint_url(format!("http://{}", closed_addr()))
        .static_credentials("test", "test");
    let refused =
        AwsKmsClient::new(&format!("aws-kms://{arn}"), timeout, &options).expect("client");
    assert_unreachable(
        &refused,
        timeout,
        slack,
        "unreachable AWS KMS endpoint",
        |e| matches!(e, Error::Kms(inner) if is_unavailable(inner)),
    );

    // Something accepts connections but never answers: the timeout fires.
    let hanging = TcpListener::bind("127.0.0.1:0").expect("bind");
    let options = AwsKmsOptions::default()
        .endpoint_url(format!("http://{}", hanging.local_addr().expect("addr")))
        .static_credentials("test", "test");
    let hung = AwsKmsClient::new(&format!("aws-kms://{arn}"), timeout, &options).expect("client");
    assert_times_out(&hung, timeout, slack);

    // Through a keyring: it builds and writes fail typed, quickly.
    let registry = KeyServiceRegistry::default()
        .aws(
            AwsKmsOptions::default()
                .endpoint_url(format!("http://{}", closed_addr()))
                .static_credentials("test", "test"),
        )
        .options(quiet());
    let keyring = Keyring::builder()
        .kms(registry.factory())
        .build(&config(&format!("aws-kms://{arn}"), "1s"))
        .expect("keyring");
    let e = keyring
        .encrypt(RESOURCE, b"v", b"ctx")
        .expect_err("no seed");
    assert_no_write_seed(&e, "");
}

#[test]
fn client_is_callable_from_inside_a_tokio_runtime() {
    let admin = Admin::new();
    let arn = admin.create_key();
    let client = Arc::new(client(&arn, Duration::from_secs(5)));
    assert_callable_from_a_runtime(&client, &arn);
}
