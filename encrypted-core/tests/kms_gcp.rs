//! The Google Cloud KMS key service for real: `google-cloud-kms-v1` against a fake Cloud KMS
//! written here, an HTTP/1.1 server on loopback that speaks the REST surface the client uses
//! (`GetCryptoKey`, `Encrypt`, `Decrypt`, with `$alt=json;enum-encoding=int`, CRC32C checksums,
//! bearer tokens and Google's error bodies) and wraps with real AES-256-GCM per key version, so a
//! tampered ciphertext really fails to decrypt. Tests rotate the primary version, disable versions
//! and change key purposes through the fake's own controls.
#![cfg(feature = "gcp")]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use common::{
    RESOURCE, assert_callable_from_a_runtime, assert_healthy, assert_key_missing, assert_no_secret,
    assert_no_write_seed, assert_reads_in_context, assert_reads_values, assert_times_out,
    assert_unreachable, assert_unwraps, assert_writes_stop_after_the_window, closed_addr,
    config_yaml, decrypt_error, is_unavailable, quiet, service_error, write_values,
};
use encrypted_core::kms::gcp::{GcpKmsClient, GcpKmsOptions};
use encrypted_core::kms::{
    DecryptRequest, DekSourceType, EncryptedObject, KeyService, KeyServiceRegistry, KmsError,
    KmsOptions,
};
use encrypted_core::{EncryptionConfiguration, Error, Keyring, decode_base64, encode_base64};
use serde_json::{Value, json};

const PREFIX: &[u8] = b"k8s:enc:kms:v2:gcp:";
const TOKEN: &str = "ya29.test-token";
const KEY: &str = "projects/obot-test/locations/global/keyRings/obot/cryptoKeys/kek";

// ---------------------------------------------------------------------------------------------
// The fake Cloud KMS
// ---------------------------------------------------------------------------------------------

/// CRC32C (Castagnoli), computed independently of the library's.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

struct Version {
    /// `ENABLED`, `DISABLED`, `DESTROYED`, ...
    state: &'static str,
    key: LessSafeKey,
}

struct Key {
    /// `ENCRYPT_DECRYPT`, `ASYMMETRIC_SIGN`, ...
    purpose: &'static str,
    /// 1-based number of the primary version.
    primary: usize,
    /// Version n is `versions[n - 1]`.
    versions: Vec<Version>,
}

/// One request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// The path without `/v1/`, such as `projects/.../cryptoKeys/kek:encrypt`.
    path: String,
    query: String,
    authorization: Option<String>,
    /// The JSON body (`{}` when empty).
    body: Value,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Key>,
    seen: Vec<Seen>,
    /// Accept requests and never answer.
    hang: bool,
    /// Answer with checksums that do not match (corruption in transit).
    corrupt: bool,
}

/// A fake Cloud KMS on `127.0.0.1:<random port>` that requires `Authorization: Bearer TOKEN`.
struct FakeKms {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

fn new_version() -> Version {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("random key");
    Version {
        state: "ENABLED",
        key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("AES key")),
    }
}

fn state_number(state: &str) -> u64 {
    match state {
        "ENABLED" => 1,
        "DISABLED" => 2,
        "DESTROYED" => 3,
        "DESTROY_SCHEDULED" => 4,
        "PENDING_GENERATION" => 5,
        _ => 0,
    }
}

fn purpose_number(purpose: &str) -> u64 {
    match purpose {
        "ENCRYPT_DECRYPT" => 1,
        "ASYMMETRIC_SIGN" => 5,
        "ASYMMETRIC_DECRYPT" => 6,
        _ => 0,
    }
}

/// Google's error body.
fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"code": status, "message": message, "status": code}}),
    )
}

fn version_name(key: &str, number: usize) -> String {
    format!("{key}/cryptoKeyVersions/{number}")
}

/// A checksum field as the REST API writes an int64: a decimal string.
fn checksum(data: &[u8]) -> String {
    crc32c(data).to_string()
}

fn checksum_matches(field: Option<&Value>, data: &[u8]) -> bool {
    match field {
        None => true,
        Some(Value::String(s)) => s.parse::<u32>().ok() == Some(crc32c(data)),
        Some(Value::Number(n)) => n.as_u64() == Some(u64::from(crc32c(data))),
        Some(_) => false,
    }
}

fn bytes_field(body: &Value, field: &str) -> Option<Vec<u8>> {
    body.get(field)
        .and_then(Value::as_str)
        .and_then(|s| decode_base64(s).ok())
}

impl State {
    fn handle(&mut self, method: &str, path: &str, ints: bool, body: &Value) -> (u16, Value) {
        if let Some(name) = path.strip_suffix(":encrypt") {
            if method != "POST" {
                return error(405, "UNIMPLEMENTED", "method");
            }
            return self.encrypt(name, body);
        }
        if let Some(name) = path.strip_suffix(":decrypt") {
            if method != "POST" {
                return error(405, "UNIMPLEMENTED", "method");
            }
            return self.decrypt(name, body);
        }
        if method != "GET" {
            return error(404, "NOT_FOUND", "no such method");
        }
        let Some(key) = self.keys.get(path) else {
            return error(404, "NOT_FOUND", &format!("{path} not found."));
        };
        let enum_value = |text: &'static str, number: u64| -> Value {
            if ints { json!(number) } else { json!(text) }
        };
        let mut answer = json!({
            "name": path,
            "purpose": enum_value(key.purpose, purpose_number(key.purpose)),
            "createTime": "2026-01-01T00:00:00Z",
        });
        // Cloud KMS reports a primary version only for ENCRYPT_DECRYPT keys.
        if key.purpose == "ENCRYPT_DECRYPT" {
            let primary = &key.versions[key.primary - 1];
            answer["primary"] = json!({
                "name": version_name(path, key.primary),
                "state": enum_value(primary.state, state_number(primary.state)),
                "protectionLevel": enum_value("SOFTWARE", 1),
                "algorithm": enum_value("GOOGLE_SYMMETRIC_ENCRYPTION", 1),
            });
        }
        (200, answer)
    }

    fn encrypt(&mut self, name: &str, body: &Value) -> (u16, Value) {
        let Some(key) = self.keys.get(name) else {
            return error(404, "NOT_FOUND", &format!("{name} not found."));
        };
        if key.purpose != "ENCRYPT_DECRYPT" {
            return error(
                400,
                "FAILED_PRECONDITION",
                "the key's purpose is not ENCRYPT_DECRYPT",
            );
        }
        let plaintext = bytes_field(body, "plaintext").unwrap_or_default();
        if !checksum_matches(body.get("plaintextCrc32c"), &plaintext) {
            return error(
                400,
                "INVALID_ARGUMENT",
                "The checksum in field plaintext_crc32c did not match the data in field plaintext.",
            );
        }
        let version = &key.versions[key.primary - 1];
        if version.state != "ENABLED" {
            return error(
                400,
                "FAILED_PRECONDITION",
                &format!(
                    "{} is not enabled, current state is: {}.",
                    version_name(name, key.primary),
                    version.state
                ),
            );
        }
        // Ciphertext: version number (4 bytes, big endian) || nonce || AES-GCM(plaintext), with the
        // key name as associated data.
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("nonce");
        let mut sealed = plaintext;
        version
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut sealed,
            )
            .expect("seal");
        let number = u32::try_from(key.primary).expect("version number");
        let mut ciphertext = number.to_be_bytes().to_vec();
        ciphertext.extend_from_slice(&nonce);
        ciphertext.extend_from_slice(&sealed);
        (
            200,
            json!({
                "name": version_name(name, key.primary),
                "ciphertext": encode_base64(&ciphertext),
                "ciphertextCrc32c": if self.corrupt {
                    checksum(b"something else")
                } else {
                    checksum(&ciphertext)
                },
                "verifiedPlaintextCrc32c": body.get("plaintextCrc32c").is_some(),
                "verifiedAdditionalAuthenticatedDataCrc32c": false,
                "protectionLevel": 1,
            }),
        )
    }

    fn decrypt(&mut self, name: &str, body: &Value) -> (u16, Value) {
        let Some(key) = self.keys.get(name) else {
            return error(404, "NOT_FOUND", &format!("{name} not found."));
        };
        let ciphertext = bytes_field(body, "ciphertext").unwrap_or_default();
        if !checksum_matches(body.get("ciphertextCrc32c"), &ciphertext) {
            return error(
                400,
                "INVALID_ARGUMENT",
                "The checksum in field ciphertext_crc32c did not match the data in field \
                 ciphertext.",
            );
        }
        let invalid = || {
            error(
                400,
                "INVALID_ARGUMENT",
                "Decryption failed: the ciphertext is invalid.",
            )
        };
        if ciphertext.len() < 4 + NONCE_LEN + 16 {
            return invalid();
        }
        let number = u32::from_be_bytes(ciphertext[..4].try_into().expect("4 bytes")) as usize;
        let Some(version) = number.checked_sub(1).and_then(|i| key.versions.get(i)) else {
            return invalid();
        };
        if version.state != "ENABLED" {
            return error(
                400,
                "FAILED_PRECONDITION",
                &format!(
                    "{} is not enabled, current state is: {}.",
                    version_name(name, number),
                    version.state
                ),
            );
        }
        let nonce: [u8; NONCE_LEN] = ciphertext[4..4 + NONCE_LEN].try_into().expect("nonce");
        let mut sealed = ciphertext[4 + NONCE_LEN..].to_vec();
        let Ok(plaintext) = version.key.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name.as_bytes()),
            &mut sealed,
        ) else {
            return invalid();
        };
        (
            200,
            json!({
                "plaintext": encode_base64(plaintext),
                "plaintextCrc32c": if self.corrupt {
                    checksum(b"something else")
                } else {
                    checksum(plaintext)
                },
                "usedPrimary": number == key.primary,
                "protectionLevel": 1,
            }),
        )
    }
}

/// Percent-decodes a request path.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One HTTP/1.1 request.
struct Request {
    method: String,
    target: String,
    /// By lowercase name.
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Reads one HTTP/1.1 request.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length = headers
        .get("content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn serve(stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    let Some(Request {
        method,
        target,
        headers,
        body,
    }) = read_request(&mut reader)
    else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let path = percent_decode(path);
    let query = percent_decode(query);
    let path = path.strip_prefix("/v1/").unwrap_or(&path).to_owned();
    let authorization = headers.get("authorization").cloned();
    let body = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let (status, answer, hang) = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            authorization: authorization.clone(),
            body: body.clone(),
        });
        if state.hang {
            (0, Value::Null, true)
        } else if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
            let (s, v) = error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            );
            (s, v, false)
        } else {
            let ints = query.contains("enum-encoding=int");
            let (s, v) = state.handle(&method, &path, ints, &body);
            (s, v, false)
        }
    };
    if hang {
        // Never answer; give up when the fake stops (at most 30 s).
        let started = Instant::now();
        while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(20));
        }
        return;
    }
    let body = answer.to_string();
    let reason = if status == 200 { "OK" } else { "Error" };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=UTF-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = writer.write_all(response.as_bytes());
    let _ = writer.flush();
}

impl FakeKms {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
                    std::thread::spawn(move || serve(stream, &state, &stop));
                }
            })
        };
        Self {
            addr,
            state,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The options that reach this fake with the right token.
    fn options(&self) -> GcpKmsOptions {
        GcpKmsOptions::default()
            .endpoint(self.url())
            .access_token(TOKEN)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates an ENCRYPT_DECRYPT key with one enabled version; its name.
    fn create_key(&self, name: &str) -> String {
        self.create_key_with_purpose(name, "ENCRYPT_DECRYPT")
    }

    fn create_key_with_purpose(&self, name: &str, purpose: &'static str) -> String {
        self.lock().keys.insert(
            name.to_owned(),
            Key {
                purpose,
                primary: 1,
                versions: vec![new_version()],
            },
        );
        name.to_owned()
    }

    /// Adds a version and makes it primary; its name.
    fn rotate(&self, name: &str) -> String {
        let mut state = self.lock();
        let key = state.keys.get_mut(name).expect("key");
        key.versions.push(new_version());
        key.primary = key.versions.len();
        version_name(name, key.primary)
    }

    fn set_state(&self, name: &str, version: usize, value: &'static str) {
        self.lock().keys.get_mut(name).expect("key").versions[version - 1].state = value;
    }

    fn set_hang(&self, on: bool) {
        self.lock().hang = on;
    }

    fn set_corrupt(&self, on: bool) {
        self.lock().corrupt = on;
    }

    fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    fn count(&self, suffix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path.ends_with(suffix))
            .count()
    }

    /// Decrypts with the fake's own key material (an independent unwrap): (plaintext, version).
    fn raw_decrypt(&self, name: &str, ciphertext: &[u8]) -> Option<(Vec<u8>, usize)> {
        let mut state = self.lock();
        let (status, answer) =
            state.decrypt(name, &json!({"ciphertext": encode_base64(ciphertext)}));
        let number = u32::from_be_bytes(ciphertext.get(..4)?.try_into().ok()?) as usize;
        (status == 200).then(|| {
            (
                bytes_field(&answer, "plaintext").unwrap_or_default(),
                number,
            )
        })
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for FakeKms {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Keyrings on the Google Cloud KMS key service
// ---------------------------------------------------------------------------------------------

fn config(endpoint: &str, timeout: &str) -> EncryptionConfiguration {
    common::config("gcp", endpoint, timeout)
}

/// A keyring whose `gcp-kms://` provider goes through [`KeyServiceRegistry::gcp`].
fn build_keyring(
    config: &EncryptionConfiguration,
    gcp: GcpKmsOptions,
    options: KmsOptions,
) -> (Keyring, KeyServiceRegistry) {
    let registry = KeyServiceRegistry::default().gcp(gcp).options(options);
    let keyring = Keyring::builder()
        .kms(registry.factory())
        .build(config)
        .expect("keyring");
    (keyring, registry)
}

fn client(fake: &FakeKms, key: &str) -> GcpKmsClient {
    GcpKmsClient::new(
        &format!("gcp-kms://{key}"),
        Duration::from_secs(5),
        &fake.options(),
    )
    .expect("client")
}

fn object(stored: &[u8]) -> EncryptedObject {
    assert!(
        stored.starts_with(PREFIX),
        "{:?}",
        String::from_utf8_lossy(&stored[..PREFIX.len().min(stored.len())])
    );
    EncryptedObject::decode(&stored[PREFIX.len()..]).expect("EncryptedObject")
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn key_service_contract_against_the_fake() {
    let fake = FakeKms::start();
    let key = fake.create_key(KEY);
    let client = client(&fake, &key);
    assert_eq!(client.key_name(), KEY);
    assert_eq!(
        (client.project(), client.location()),
        ("obot-test", "global")
    );

    let v1 = format!("{KEY}/cryptoKeyVersions/1");
    assert_healthy(&client, &v1, "status reports the primary version");

    let seed = [7u8; 32];
    let wrapped = client.encrypt("uid-1", &seed).expect("encrypt");
    assert_eq!(wrapped.key_id, v1, "Encrypt reports the version it used");
    assert!(wrapped.annotations.is_empty());
    assert_eq!(wrapped.ciphertext.len(), 4 + NONCE_LEN + 32 + 16);
    assert!(!wrapped.ciphertext.windows(32).any(|w| w == seed));
    assert_unwraps(&client, &wrapped, &seed);
    // The fake's own key material unwraps it too.
    assert_eq!(
        fake.raw_decrypt(KEY, &wrapped.ciphertext),
        Some((seed.to_vec(), 1))
    );

    // What went over the wire: the REST paths, int enums, the bearer token on every call, and
    // the checksums.
    let seen = fake.seen();
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("GET", KEY),
            ("POST", &*format!("{KEY}:encrypt")),
            ("POST", &*format!("{KEY}:decrypt")),
        ]
    );
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
        assert!(s.query.contains("enum-encoding=int"), "{s:?}");
    }
}

#[test]
fn envelope_round_trip_through_a_keyring_wraps_once_and_a_fresh_reader_unwraps_once() {
    const N: usize = 2_000;
    let fake = FakeKms::start();
    fake.create_key(KEY);
    let config = config(&format!("gcp-kms://{KEY}"), "5s");

    let (writer, registry) = build_keyring(&config, fake.options(), quiet());
    let stored = write_values(&writer, N);
    assert_eq!(
        fake.count(":encrypt"),
        1,
        "{N} writes, one Cloud KMS Encrypt"
    );
    assert_eq!(fake.count(":decrypt"), 0);
    let metrics = registry.providers().get("gcp").expect("provider").metrics();
    assert_eq!((metrics.encrypt_calls, metrics.decrypt_calls), (1, 0));

    // The stored value is a Kubernetes KMS v2 EncryptedObject naming the key version, and its
    // seed is a Cloud KMS ciphertext of 32 bytes.
    let first = object(&stored[0]);
    assert_eq!(first.key_id, format!("{KEY}/cryptoKeyVersions/1"));
    assert_eq!(
        first.encrypted_dek_source_type,
        DekSourceType::HkdfSha256XnonceAesGcmSeed
    );
    let (seed, version) = fake
        .raw_decrypt(KEY, &first.encrypted_dek_source)
        .expect("the fake unwraps the stored seed");
    assert_eq!((seed.len(), version), (32, 1));
    // The plaintext is nowhere in the stored bytes.
    assert!(!stored[0].windows(7).any(|w| w == b"value 0"));

    // Reads in the same keyring need no call; the context is bound.
    assert_reads_in_context(&writer, &stored[0]);
    assert_eq!(fake.count(":decrypt"), 0);

    // A fresh keyring (another process) reads all of them with one Decrypt.
    let (reader, _) = build_keyring(&config, fake.options(), quiet());
    assert_eq!(
        fake.count(":encrypt"),
        2,
        "the reader wraps its own write seed"
    );
    assert_reads_values(&reader, &stored);
    assert_eq!(
        fake.count(":decrypt"),
        1,
        "{N} reads, one Cloud KMS Decrypt"
    );
}

#[test]
fn rotating_the_primary_version_changes_the_key_id_and_old_values_read_as_stale() {
    let fake = FakeKms::start();
    fake.create_key(KEY);
    let config = config(&format!("gcp-kms://{KEY}"), "5s");
    let (keyring, registry) = build_keyring(&config, fake.options(), quiet());
    let transformer = registry.providers().get("gcp").expect("provider");
    let v1 = format!("{KEY}/cryptoKeyVersions/1");
    assert_eq!(transformer.health().write_key_id.as_deref(), Some(&*v1));
    let old = keyring
        .encrypt(RESOURCE, b"alice@example.com", b"ctx")
        .expect("encrypt");

    let v2 = fake.rotate(KEY);
    assert_eq!(v2, format!("{KEY}/cryptoKeyVersions/2"));
    transformer.poll_now().expect("poll");
    assert_eq!(
        transformer.health().write_key_id.as_deref(),
        Some(&*v2),
        "a new primary version is a new key id"
    );
    assert_eq!(
        fake.count(":encrypt"),
        2,
        "a new seed under the new version"
    );

    let read = keyring.decrypt(RESOURCE, &old, b"ctx").expect("old value");
    assert_eq!(read.plaintext, b"alice@example.com");
    assert!(read.stale, "written under {v1}, current {v2}");
    let new = keyring
        .encrypt(RESOURCE, b"alice@example.com", b"ctx")
        .expect("encrypt");
    assert_eq!(object(&new).key_id, v2);
    assert!(
        !keyring
            .decrypt(RESOURCE, &new, b"ctx")
            .expect("new value")
            .stale
    );
    let (_, version) = fake
        .raw_decrypt(KEY, &object(&new).encrypted_dek_source)
        .expect("unwrap");
    assert_eq!(version, 2, "the new seed is wrapped by version 2");

    // A fresh keyring reads both (Cloud KMS decrypts with either version); the old one is stale.
    let (fresh, _) = build_keyring(&config, fake.options(), quiet());
    let decrypts = fake.count(":decrypt");
    let old_read = fresh.decrypt(RESOURCE, &old, b"ctx").expect("old");
    let new_read = fresh.decrypt(RESOURCE, &new, b"ctx").expect("new");
    assert_eq!(
        (old_read.plaintext.as_slice(), old_read.stale),
        (&b"alice@example.com"[..], true)
    );
    assert_eq!(
        (new_read.plaintext.as_slice(), new_read.stale),
        (&b"alice@example.com"[..], false)
    );
    assert_eq!(fake.count(":decrypt") - decrypts, 2, "one Decrypt per seed");

    // Once version 1 is disabled, values under it cannot be read by a fresh keyring: typed.
    fake.set_state(KEY, 1, "DISABLED");
    let (fresh, _) = build_keyring(&config, fake.options(), quiet());
    let e = fresh
        .decrypt(RESOURCE, &old, b"ctx")
        .expect_err("version 1 disabled");
    assert!(
        matches!(service_error(&e), KmsError::ServiceRejected { code, .. } if code == "FAILED_PRECONDITION"),
        "{e:?}"
    );
}

#[test]
fn disabled_primary_version_and_wrong_purpose_are_unhealthy() {
    let window = Duration::from_secs(2);
    let fake = FakeKms::start();
    fake.create_key(KEY);
    let config = config(&format!("gcp-kms://{KEY}"), "5s");
    let (keyring, registry) = build_keyring(&config, fake.options(), quiet().write_window(window));
    let transformer = registry.providers().get("gcp").expect("provider");
    let before = keyring
        .encrypt(RESOURCE, b"written before", b"ctx")
        .expect("encrypt");

    fake.set_state(KEY, 1, "DISABLED");
    let disabled_at = Instant::now();
    let status = client(&fake, KEY).status().expect("status");
    let v1 = format!("{KEY}/cryptoKeyVersions/1");
    assert_eq!(status.healthz, format!("primary version {v1} is DISABLED"));
    assert_eq!(status.key_id, v1);
    let e = transformer.poll_now().expect_err("unhealthy");
    assert!(
        matches!(&e, Error::Kms(KmsError::Unhealthy { healthz, .. }) if healthz.contains("DISABLED")),
        "{e:?}"
    );
    assert!(!transformer.health().healthy);

    // Within the write window writes go on with the current seed; after it they fail typed, and
    // reads of cached seeds go on.
    assert_writes_stop_after_the_window(&keyring, disabled_at, window);
    assert_eq!(
        keyring
            .decrypt(RESOURCE, &before, b"ctx")
            .expect("cached read")
            .plaintext,
        b"written before"
    );

    // A fresh keyring wraps no seed under a disabled version and says why.
    let encrypts = fake.count(":encrypt");
    let (fresh, _) = build_keyring(&config, fake.options(), quiet());
    assert_eq!(fake.count(":encrypt"), encrypts);
    let e = fresh.encrypt(RESOURCE, b"v", b"ctx").expect_err("disabled");
    assert_no_write_seed(&e, "DISABLED");
    // Cloud KMS itself refuses Encrypt with the disabled primary: typed too.
    let e = client(&fake, KEY)
        .encrypt("uid", &[1; 32])
        .expect_err("disabled");
    assert!(
        matches!(&e, Error::Kms(KmsError::ServiceRejected { code, message, .. })
            if code == "FAILED_PRECONDITION" && message.contains("not enabled")),
        "{e:?}"
    );

    // Enabled again: the next poll resumes writes.
    fake.set_state(KEY, 1, "ENABLED");
    transformer.poll_now().expect("healthy again");
    keyring
        .encrypt(RESOURCE, b"written after", b"ctx")
        .expect("write after re-enabling");

    // A key for signing is not a key for envelopes.
    let signing = fake.create_key_with_purpose(
        "projects/obot-test/locations/global/keyRings/obot/cryptoKeys/signer",
        "ASYMMETRIC_SIGN",
    );
    let status = client(&fake, &signing).status().expect("status");
    assert_eq!(
        status.healthz,
        "key purpose ASYMMETRIC_SIGN (expected ENCRYPT_DECRYPT)"
    );
}

#[test]
fn tampered_wrapped_seeds_and_wrong_keys_are_typed_errors() {
    let fake = FakeKms::start();
    fake.create_key(KEY);
    let other =
        fake.create_key("projects/obot-test/locations/global/keyRings/obot/cryptoKeys/other");
    let config = config(&format!("gcp-kms://{KEY}"), "5s");
    let (writer, _) = build_keyring(&config, fake.options(), quiet());
    let stored = writer
        .encrypt(RESOURCE, b"alice@example.com", b"ctx")
        .expect("encrypt");

    // Flip one bit of the wrapped seed in the stored object: a fresh reader gets a typed error
    // (Cloud KMS answers INVALID_ARGUMENT), never a wrong plaintext or a panic.
    let mut object = object(&stored);
    let last = object.encrypted_dek_source.len() - 1;
    object.encrypted_dek_source[last] ^= 1;
    let mut tampered = PREFIX.to_vec();
    tampered.extend_from_slice(&object.encode().expect("encode"));
    let (reader, _) = build_keyring(&config, fake.options(), quiet());
    let e = reader
        .decrypt(RESOURCE, &tampered, b"ctx")
        .expect_err("tampered seed");
    match service_error(&e) {
        KmsError::UnwrapRefused { reason } => {
            assert!(reason.contains("INVALID_ARGUMENT"), "{reason}");
        }
        other => panic!("expected UnwrapRefused, got {other:?}"),
    }
    // The untampered value still reads.
    assert_eq!(
        reader
            .decrypt(RESOURCE, &stored, b"ctx")
            .expect("untampered")
            .plaintext,
        b"alice@example.com"
    );

    // Directly: a seed wrapped by one key does not decrypt under another (the stored key id names
    // the other key's version).
    let client = client(&fake, KEY);
    let seed = [0x5au8; 32];
    let wrapped = client.encrypt("uid", &seed).expect("encrypt");
    let e = decrypt_error(
        &client,
        &wrapped.ciphertext,
        format!("{other}/cryptoKeyVersions/1"),
        "wrong key",
    );
    assert!(
        matches!(&e, Error::Kms(KmsError::UnwrapRefused { .. })),
        "{e:?}"
    );
    let message = format!("{e} {e:?}");
    assert_no_secret(&message);
    // Garbage is refused the same way.
    let e = decrypt_error(&client, &[0; 8], wrapped.key_id.clone(), "garbage");
    assert!(
        matches!(&e, Error::Kms(KmsError::UnwrapRefused { .. })),
        "{e:?}"
    );
}

#[test]
fn checksum_mismatches_are_typed_errors() {
    let fake = FakeKms::start();
    fake.create_key(KEY);
    let client = client(&fake, KEY);
    let seed = [9u8; 32];
    let wrapped = client.encrypt("uid", &seed).expect("encrypt");
    let request = DecryptRequest::new(
        wrapped.ciphertext.clone(),
        wrapped.key_id.clone(),
        Default::default(),
    );

    // Answers whose checksums do not match what they carry are refused, typed, on both calls.
    fake.set_corrupt(true);
    for e in [
        client.encrypt("uid", &seed).expect_err("encrypt"),
        client.decrypt("uid", &request).expect_err("decrypt"),
    ] {
        assert!(
            matches!(&e, Error::Kms(KmsError::ServiceUnavailable { reason, .. })
                if reason.contains("checksum")),
            "{e:?}"
        );
    }
    fake.set_corrupt(false);
    assert_eq!(&*client.decrypt("uid", &request).expect("decrypt"), &seed);

    // Every request carried the checksum of what it sent (the fake refuses a wrong one).
    let seen = fake.seen();
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(posts.len(), 4, "{seen:?}");
    for s in posts {
        let (field, data) = if s.path.ends_with(":encrypt") {
            ("plaintextCrc32c", bytes_field(&s.body, "plaintext"))
        } else {
            ("ciphertextCrc32c", bytes_field(&s.body, "ciphertext"))
        };
        let data = data.expect("base64 data");
        assert!(!data.is_empty());
        assert!(
            s.body.get(field).is_some() && checksum_matches(s.body.get(field), &data),
            "{field} in {:?}",
            s.body
        );
    }
}

#[test]
fn unknown_keys_and_bad_credentials_are_typed_errors() {
    let fake = FakeKms::start();
    fake.create_key(KEY);
    let missing = "projects/obot-test/locations/global/keyRings/obot/cryptoKeys/missing";
    let client = client(&fake, missing);
    assert_key_missing(&client, "NOT_FOUND", missing);
    // Through a keyring: it builds, and writes fail with the reason.
    let (keyring, _) = build_keyring(
        &config(&format!("gcp-kms://{missing}"), "5s"),
        fake.options(),
        quiet(),
    );
    let e = keyring
        .encrypt(RESOURCE, b"v", b"ctx")
        .expect_err("no seed");
    assert_no_write_seed(&e, "NOT_FOUND");

    // A wrong token and no token are UNAUTHENTICATED, and the token never shows.
    for options in [
        GcpKmsOptions::default()
            .endpoint(fake.url())
            .access_token("ya29.wrong-token"),
        GcpKmsOptions::default()
            .endpoint(fake.url())
            .anonymous_credentials(),
    ] {
        let client = GcpKmsClient::new(
            &format!("gcp-kms://{KEY}"),
            Duration::from_secs(5),
            &options,
        )
        .expect("client");
        let e = client.status().expect_err("unauthenticated");
        assert!(
            matches!(&e, Error::Kms(KmsError::ServiceRejected { code, .. }) if code == "UNAUTHENTICATED"),
            "{e:?}"
        );
        assert!(!format!("{e} {e:?} {client:?} {options:?}").contains("wrong-token"));
    }
    let seen = fake.seen();
    assert_eq!(
        seen.last().map(|s| s.authorization.clone()),
        Some(None),
        "anonymous credentials send no Authorization header"
    );
}

#[test]
fn server_down_and_hanging_are_typed_errors_within_the_timeout() {
    let timeout = Duration::from_secs(1);
    let slack = Duration::from_millis(1500);
    let endpoint = format!("gcp-kms://{KEY}");

    // Nothing listens: refused connections (the client retries them within the timeout).
    let options = GcpKmsOptions::default()
        .endpoint(format!("http://{}", closed_addr()))
        .access_token(TOKEN);
    let refused = GcpKmsClient::new(&endpoint, timeout, &options).expect("client");
    assert_unreachable(
        &refused,
        timeout,
        slack,
        "unreachable Cloud KMS endpoint",
        |e| matches!(e, Error::Kms(inner) if is_unavailable(inner)),
    );

    // The server goes away after a keyring has its seed: cached reads and writes go on, a fresh
    // keyring cannot write, typed.
    let mut fake = FakeKms::start();
    fake.create_key(KEY);
    let config = config(&endpoint, "1s");
    let (keyring, registry) = build_keyring(&config, fake.options(), quiet());
    let stored = keyring.encrypt(RESOURCE, b"v", b"ctx").expect("encrypt");
    let options = fake.options();
    fake.stop();
    let e = registry
        .providers()
        .get("gcp")
        .expect("provider")
        .poll_now()
        .expect_err("server down");
    assert!(is_unavailable(service_error(&e)), "{e:?}");
    assert_eq!(
        keyring
            .decrypt(RESOURCE, &stored, b"ctx")
            .expect("cached")
            .plaintext,
        b"v"
    );
    let registry = KeyServiceRegistry::default().gcp(options).options(quiet());
    let fresh = Keyring::builder()
        .kms(registry.factory())
        .build(&config)
        .expect("keyring builds while the server is down");
    let e = fresh.encrypt(RESOURCE, b"v", b"ctx").expect_err("no seed");
    assert_no_write_seed(&e, "");
    let e = fresh
        .decrypt(RESOURCE, &stored, b"ctx")
        .expect_err("no unwrap");
    assert!(is_unavailable(service_error(&e)), "{e:?}");

    // Something accepts connections and never answers: the timeout fires.
    let hanging = FakeKms::start();
    hanging.create_key(KEY);
    hanging.set_hang(true);
    let hung = GcpKmsClient::new(&endpoint, timeout, &hanging.options()).expect("client");
    assert_times_out(&hung, timeout, slack);
    assert!(!hanging.seen().is_empty(), "the request reached the server");
}

#[test]
fn bad_endpoints_are_typed_errors() {
    let fake = FakeKms::start();
    let registry = KeyServiceRegistry::default().gcp(fake.options());

    // The configuration itself refuses a bare scheme; the client does too.
    let e = EncryptionConfiguration::from_yaml(&config_yaml("gcp", "gcp-kms://", "5s"))
        .expect_err("bare scheme");
    assert!(e.to_string().contains("gcp-kms://"), "{e}");
    let e = GcpKmsClient::new("gcp-kms://", Duration::from_secs(1), &fake.options())
        .expect_err("bare scheme");
    assert!(
        matches!(&e, Error::Kms(KmsError::InvalidKeyUri { .. })),
        "{e:?}"
    );

    for (endpoint, why) in [
        ("gcp-kms://my-key", "not a crypto key resource name"),
        (
            "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3",
            "names a key version",
        ),
        (
            "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/",
            "crypto key id",
        ),
        (
            "gcp-kms://projects/p/locations/global/keyRings/r!/cryptoKeys/k",
            "key ring id",
        ),
        (
            "gcp-kms://projects/P/locations/global/keyRings/r/cryptoKeys/k",
            "project",
        ),
        (
            "gcp-kms://projects/p/locations//keyRings/r/cryptoKeys/k",
            "location",
        ),
    ] {
        let e = Keyring::builder()
            .kms(registry.factory())
            .build(&config(endpoint, "5s"))
            .expect_err("bad endpoint");
        let message = e.to_string();
        match service_error(&e) {
            KmsError::InvalidKeyUri {
                endpoint: found, ..
            } => assert_eq!(found, endpoint),
            other => panic!("{endpoint}: expected InvalidKeyUri, got {other:?}"),
        }
        assert!(
            message.contains(why) && message.contains("gcp-kms://projects/<project>"),
            "{endpoint}: {message}"
        );
    }
    assert!(fake.seen().is_empty(), "no call for a bad endpoint");

    // A build without the scheme registered names the feature.
    let e = KeyServiceRegistry::empty()
        .key_service(&encrypted_core::config::KmsConfig::new(
            "gcp",
            format!("gcp-kms://{KEY}"),
            Duration::from_secs(1),
        ))
        .expect_err("not registered");
    assert!(
        matches!(&e, Error::Kms(KmsError::UnsupportedEndpoint { .. }))
            && e.to_string().contains("`gcp` feature"),
        "{e}"
    );
    // The default registry serves the scheme with this feature on.
    assert!(
        KeyServiceRegistry::default()
            .schemes()
            .any(|s| s == encrypted_core::kms::gcp::SCHEME)
    );
}

#[test]
fn client_is_callable_from_inside_a_tokio_runtime() {
    let fake = FakeKms::start();
    fake.create_key(KEY);
    let client = Arc::new(client(&fake, KEY));
    assert_callable_from_a_runtime(&client, &format!("{KEY}/cryptoKeyVersions/1"));
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = current.block_on(async { client.status() }).expect("status");
    assert_eq!(status.healthz, "ok");
}
