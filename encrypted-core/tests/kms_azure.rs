//! The Azure Key Vault key service for real: `azure_security_keyvault_keys` against a fake Key
//! Vault written here, served over HTTPS on 127.0.0.1 with a certificate from a CA made at test
//! time. The client reaches it as `testvault.vault.azure.net` (pinned to the loopback address with
//! [`AzureKeyVaultOptions::resolve`], the CA trusted with
//! [`AzureKeyVaultOptions::add_root_certificate_pem`]), so TLS verification and Key Vault's
//! authentication challenge (with its resource check) run as against Azure.
//!
//! The fake implements what the client calls: `GET /keys/{name}[/{version}]`,
//! `POST /keys/{name}/{version}/wrapkey` and `/unwrapkey` with RSA-OAEP-256 (aws-lc-rs), the
//! `401` challenge for requests without the expected bearer token, `403` for a disabled key, `404`
//! for an unknown key or version and `400` for a ciphertext that does not unwrap.
#![cfg(feature = "azure")]

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{
    Calls, RESOURCE, assert_callable_from_a_runtime, assert_healthy, assert_no_secret,
    assert_no_write_seed, assert_reads_in_context, assert_reads_values, assert_times_out,
    assert_unreachable, assert_unwraps, closed_addr, decrypt_error, is_unavailable, quiet,
    service_error, write_values,
};
use encrypted_core::kms::azure::{
    ALGORITHM_ANNOTATION, AzureKeyVaultClient, AzureKeyVaultOptions, SCHEME,
};
use encrypted_core::kms::{
    DecryptRequest, DekSourceType, EncryptedObject, KeyService, KeyServiceRegistry, KmsError,
    KmsOptions,
};
use encrypted_core::{EncryptionConfiguration, Error, Keyring};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

const PREFIX: &[u8] = b"k8s:enc:kms:v2:azure:";
const VAULT_HOST: &str = "testvault.vault.azure.net";
const TOKEN: &str = "test-token-0123456789";

// ---------------------------------------------------------------------------------------------
// The fake Key Vault
// ---------------------------------------------------------------------------------------------

struct KeyVersion {
    version: String,
    /// `None` for an EC key (it cannot wrap).
    rsa: Option<PrivateDecryptingKey>,
    enabled: bool,
    key_ops: Vec<String>,
}

#[derive(Default)]
struct VaultState {
    keys: HashMap<String, Vec<KeyVersion>>,
    /// The `Authorization` header of every request, in order (`None` when absent).
    authorizations: Vec<Option<String>>,
    /// `METHOD path` of every request.
    requests: Vec<String>,
}

fn lock(state: &Mutex<VaultState>) -> std::sync::MutexGuard<'_, VaultState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn kid(name: &str, version: &str) -> String {
    format!("https://{VAULT_HOST}/keys/{name}/{version}")
}

fn new_version() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("random");
    format!(
        "{:08x}{}",
        COUNTER.fetch_add(1, Ordering::SeqCst),
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

struct FakeVault {
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<Mutex<VaultState>>,
}

impl FakeVault {
    fn start() -> Self {
        // A CA, and a server certificate for the vault host signed by it.
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "encrypted-core test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let mut params =
            rcgen::CertificateParams::new(vec![VAULT_HOST.to_owned()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, VAULT_HOST);
        params.use_authority_key_identifier_extension = true;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = rcgen::KeyPair::generate().expect("server key");
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )
            .expect("server TLS config");
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(VaultState::default()));
        let served = Arc::clone(&state);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(&state, request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            runtime: Some(runtime),
            addr,
            ca_pem: ca_cert.pem(),
            state,
        }
    }

    /// Options that reach this vault as `testvault.vault.azure.net` with `token`.
    fn options_with_token(&self, token: &str) -> AzureKeyVaultOptions {
        AzureKeyVaultOptions::default()
            .static_token(token)
            .add_root_certificate_pem(self.ca_pem.clone())
            .resolve(VAULT_HOST, self.addr)
    }

    fn options(&self) -> AzureKeyVaultOptions {
        self.options_with_token(TOKEN)
    }

    /// Creates an RSA key `name` (or a new version of it); its versioned key id.
    fn create_key(&self, name: &str) -> String {
        self.add_version(
            name,
            Some(PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("RSA key")),
            &["wrapKey", "unwrapKey", "encrypt", "decrypt"],
        )
    }

    fn add_version(&self, name: &str, rsa: Option<PrivateDecryptingKey>, ops: &[&str]) -> String {
        let version = new_version();
        lock(&self.state)
            .keys
            .entry(name.to_owned())
            .or_default()
            .push(KeyVersion {
                version: version.clone(),
                rsa,
                enabled: true,
                key_ops: ops.iter().map(|&o| o.to_owned()).collect(),
            });
        kid(name, &version)
    }

    /// Enables or disables every version of `name`.
    fn set_enabled(&self, name: &str, enabled: bool) {
        for version in lock(&self.state)
            .keys
            .get_mut(name)
            .expect("key exists")
            .iter_mut()
        {
            version.enabled = enabled;
        }
    }

    /// Unwraps with the fake's own key, not through the client (an independent check).
    fn raw_unwrap(&self, key_id: &str, ciphertext: &[u8]) -> Vec<u8> {
        let state = lock(&self.state);
        let (name, version) = split_kid(key_id).expect("a key id of this vault");
        let key = state.keys[name]
            .iter()
            .find(|v| v.version == version)
            .and_then(|v| v.rsa.clone())
            .expect("RSA key version");
        let key = OaepPrivateDecryptingKey::new(key).expect("OAEP key");
        let mut out = vec![0u8; key.min_output_size()];
        key.decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, None)
            .expect("unwrap")
            .to_vec()
    }

    fn authorizations(&self) -> Vec<Option<String>> {
        lock(&self.state).authorizations.clone()
    }

    fn requests(&self) -> Vec<String> {
        lock(&self.state).requests.clone()
    }

    /// Stops serving: the port closes and open connections drop.
    fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for FakeVault {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `(name, version)` of `https://<VAULT_HOST>/keys/<name>/<version>`.
fn split_kid(kid: &str) -> Option<(&str, &str)> {
    let rest = kid.strip_prefix(&format!("https://{VAULT_HOST}/keys/"))?;
    rest.split_once('/')
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}

async fn handle(state: &Mutex<VaultState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    {
        let mut state = lock(state);
        state.requests.push(format!("{method} {path}"));
        state.authorizations.push(authorization.clone());
    }
    if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        let mut response = error_response(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        );
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static(
                "Bearer authorization=\"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000\", resource=\"https://vault.azure.net\"",
            ),
        );
        return response;
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return error_response(StatusCode::BAD_REQUEST, "BadParameter", "no body"),
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let state = lock(state);
    let find = |name: &str, version: &str| -> Option<&KeyVersion> {
        let versions = state.keys.get(name)?;
        if version.is_empty() {
            versions.last()
        } else {
            versions.iter().find(|v| v.version == version)
        }
    };
    let not_found = |name: &str| {
        error_response(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            &format!("A key with (name/id) {name} was not found in this key vault."),
        )
    };
    match (method.as_str(), &segments[..]) {
        ("GET", ["keys", name] | ["keys", name, ""]) | ("GET", ["keys", name, _]) => {
            let version = segments.get(2).copied().unwrap_or("");
            let Some(key) = find(name, version) else {
                return not_found(name);
            };
            let kty = if key.rsa.is_some() { "RSA" } else { "EC" };
            json_response(
                StatusCode::OK,
                &json!({
                    "key": {
                        "kid": kid(name, &key.version),
                        "kty": kty,
                        "key_ops": key.key_ops,
                    },
                    "attributes": { "enabled": key.enabled, "recoveryLevel": "Recoverable+Purgeable" },
                }),
            )
        }
        ("POST", ["keys", name, version, op @ ("wrapkey" | "unwrapkey")]) => {
            let Some(key) = find(name, version) else {
                return not_found(name);
            };
            if !key.enabled {
                return error_response(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    &format!("Operation {op} is not allowed on a disabled key."),
                );
            }
            let Ok(parameters) = serde_json::from_slice::<Value>(&body) else {
                return error_response(StatusCode::BAD_REQUEST, "BadParameter", "not JSON");
            };
            if parameters["alg"] != "RSA-OAEP-256" {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    "unsupported algorithm",
                );
            }
            let Some(value) = parameters["value"]
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            else {
                return error_response(StatusCode::BAD_REQUEST, "BadParameter", "no value");
            };
            let Some(rsa) = key.rsa.clone() else {
                return error_response(StatusCode::BAD_REQUEST, "BadParameter", "not an RSA key");
            };
            let result = if *op == "wrapkey" {
                let public = OaepPublicEncryptingKey::new(rsa.public_key()).expect("OAEP key");
                let mut out = vec![0u8; public.ciphertext_size()];
                public
                    .encrypt(&OAEP_SHA256_MGF1SHA256, &value, &mut out, None)
                    .map(|c| c.to_vec())
            } else {
                let private = OaepPrivateDecryptingKey::new(rsa).expect("OAEP key");
                let mut out = vec![0u8; private.min_output_size()];
                private
                    .decrypt(&OAEP_SHA256_MGF1SHA256, &value, &mut out, None)
                    .map(|p| p.to_vec())
            };
            match result {
                Ok(result) => json_response(
                    StatusCode::OK,
                    &json!({ "kid": kid(name, &key.version), "value": URL_SAFE_NO_PAD.encode(result) }),
                ),
                Err(_) => error_response(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    "The parameter is incorrect.",
                ),
            }
        }
        _ => error_response(StatusCode::NOT_FOUND, "NotFound", "no such operation"),
    }
}

// ---------------------------------------------------------------------------------------------
// Keyrings on the Azure key service, with call counting
// ---------------------------------------------------------------------------------------------

fn endpoint(name: &str) -> String {
    format!("{SCHEME}{VAULT_HOST}/keys/{name}")
}

fn config(endpoint: &str, timeout: &str) -> EncryptionConfiguration {
    common::config("azure", endpoint, timeout)
}

/// A keyring whose `azure-keyvault://` provider is the real Azure client against the fake,
/// counted.
fn azure_keyring(
    vault: &FakeVault,
    config: &EncryptionConfiguration,
    options: KmsOptions,
) -> (Keyring, KeyServiceRegistry, Arc<Calls>) {
    let azure = vault.options();
    common::counted_keyring(config, options, SCHEME, move |config| {
        AzureKeyVaultClient::from_config(config, &azure)
    })
}

fn client(vault: &FakeVault, endpoint: &str) -> AzureKeyVaultClient {
    AzureKeyVaultClient::new(endpoint, Duration::from_secs(5), &vault.options()).expect("client")
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn key_service_contract_and_the_bearer_token_is_sent() {
    let vault = FakeVault::start();
    let kid = vault.create_key("kek");
    let client = client(&vault, &endpoint("kek"));
    assert_healthy(&client, &kid, "status reports the versioned key id");

    let seed = [7u8; 32];
    let wrapped = client.encrypt("uid-1", &seed).expect("encrypt");
    assert_eq!(wrapped.key_id, kid, "WrapKey reports the versioned key id");
    assert_eq!(
        wrapped
            .annotations
            .get(ALGORITHM_ANNOTATION)
            .map(Vec::as_slice),
        Some(&b"RSA-OAEP-256"[..])
    );
    assert_eq!(wrapped.ciphertext.len(), 256, "an RSA-2048 OAEP ciphertext");
    // The fake vault itself (not the client) unwraps it.
    assert_eq!(vault.raw_unwrap(&kid, &wrapped.ciphertext), seed);
    assert_unwraps(&client, &wrapped, &seed);

    // The first request went without a token (Key Vault's challenge), every later one with ours.
    let authorizations = vault.authorizations();
    assert_eq!(authorizations.first(), Some(&None), "{authorizations:?}");
    let bearer = format!("Bearer {TOKEN}");
    assert!(
        authorizations[1..]
            .iter()
            .all(|a| a.as_deref() == Some(bearer.as_str())),
        "{authorizations:?}"
    );
    let requests = vault.requests();
    let version = kid.rsplit('/').next().expect("version");
    assert!(
        requests.contains(&format!("POST /keys/kek/{version}/wrapkey"))
            && requests.contains(&format!("POST /keys/kek/{version}/unwrapkey")),
        "{requests:?}"
    );
}

#[test]
fn envelope_round_trip_through_a_keyring() {
    const N: usize = 1000;
    let vault = FakeVault::start();
    let kid = vault.create_key("kek");
    let config = config(&endpoint("kek"), "5s");
    let (writer, registry, calls) = azure_keyring(&vault, &config, quiet());
    let stored = write_values(&writer, N);
    assert_eq!(calls.encrypts(), 1, "{N} writes, one WrapKey");
    let metrics = registry
        .providers()
        .get("azure")
        .expect("provider")
        .metrics();
    assert_eq!((metrics.encrypt_calls, metrics.decrypt_calls), (1, 0));

    let first = &stored[0];
    assert!(first.starts_with(PREFIX));
    let object = EncryptedObject::decode(&first[PREFIX.len()..]).expect("EncryptedObject");
    assert_eq!(object.key_id, kid);
    assert_eq!(
        object.encrypted_dek_source_type,
        DekSourceType::HkdfSha256XnonceAesGcmSeed
    );
    assert_eq!(
        vault.raw_unwrap(&kid, &object.encrypted_dek_source).len(),
        32
    );
    assert!(
        !first.windows(b"value 0".len()).any(|w| w == b"value 0"),
        "plaintext visible in the stored bytes"
    );

    assert_reads_in_context(&writer, first);

    // A fresh keyring (another process) reads all of them with one UnwrapKey.
    let (reader, _, reader_calls) = azure_keyring(&vault, &config, quiet());
    assert_reads_values(&reader, &stored);
    assert_eq!(reader_calls.decrypts(), 1, "{N} reads, one UnwrapKey");
}

#[test]
fn disabled_key_is_unhealthy_and_refused() {
    let vault = FakeVault::start();
    let kid = vault.create_key("kek");
    let config = config(&endpoint("kek"), "5s");
    let (keyring, registry, _) = azure_keyring(&vault, &config, quiet());
    let transformer = registry.providers().get("azure").expect("provider");
    let before = keyring
        .encrypt(RESOURCE, b"written before", b"ctx")
        .expect("encrypt");

    vault.set_enabled("kek", false);
    let client = client(&vault, &endpoint("kek"));
    let status = client.status().expect("status");
    assert_eq!(
        (status.healthz.as_str(), status.key_id.as_str()),
        ("key disabled", kid.as_str())
    );
    let e = transformer.poll_now().expect_err("unhealthy");
    assert!(
        matches!(&e, Error::Kms(KmsError::Unhealthy { healthz, .. }) if healthz == "key disabled"),
        "{e:?}"
    );
    assert!(!transformer.health().healthy);
    // Key Vault refuses WrapKey on a disabled key: a typed rejection.
    let e = client.encrypt("uid", &[1; 32]).expect_err("disabled");
    assert!(
        matches!(&e, Error::Kms(KmsError::ServiceRejected { code, .. }) if code.starts_with("Forbidden (HTTP 403)")),
        "{e:?}"
    );
    // Cached seeds still read.
    assert_eq!(
        keyring
            .decrypt(RESOURCE, &before, b"ctx")
            .expect("cached read")
            .plaintext,
        b"written before"
    );
    // A fresh keyring wraps no seed under a disabled key and cannot write.
    let (fresh, _, fresh_calls) = azure_keyring(&vault, &config, quiet());
    assert_eq!(fresh_calls.encrypts(), 0);
    let e = fresh.encrypt(RESOURCE, b"v", b"ctx").expect_err("disabled");
    assert_no_write_seed(&e, "key disabled");

    vault.set_enabled("kek", true);
    transformer.poll_now().expect("healthy again");
    keyring
        .encrypt(RESOURCE, b"written after", b"ctx")
        .expect("write after re-enabling");
}

#[test]
fn keys_that_cannot_wrap_are_unhealthy() {
    let vault = FakeVault::start();
    vault.add_version("ec", None, &["sign", "verify"]);
    let status = client(&vault, &endpoint("ec")).status().expect("status");
    assert!(
        status.healthz.starts_with("key type EC cannot wrap keys"),
        "{status:?}"
    );
    let rsa = PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("RSA key");
    vault.add_version("encrypt-only", Some(rsa), &["encrypt", "decrypt"]);
    let status = client(&vault, &endpoint("encrypt-only"))
        .status()
        .expect("status");
    assert!(
        status
            .healthz
            .contains("do not allow wrapKey and unwrapKey"),
        "{status:?}"
    );
}

#[test]
fn new_key_version_changes_the_key_id_and_old_values_read_stale() {
    let vault = FakeVault::start();
    let first = vault.create_key("kek");
    let config = config(&endpoint("kek"), "5s");
    let (keyring, registry, calls) = azure_keyring(&vault, &config, quiet());
    let transformer = registry.providers().get("azure").expect("provider");
    assert_eq!(transformer.health().write_key_id.as_deref(), Some(&*first));
    let old = keyring
        .encrypt(RESOURCE, b"alice@example.com", b"ctx")
        .expect("encrypt");

    let second = vault.create_key("kek");
    assert_ne!(first, second);
    transformer.poll_now().expect("poll");
    assert_eq!(transformer.health().write_key_id.as_deref(), Some(&*second));
    assert_eq!(calls.encrypts(), 2, "a new seed under the new version");
    let read = keyring.decrypt(RESOURCE, &old, b"ctx").expect("old value");
    assert_eq!(read.plaintext, b"alice@example.com");
    assert!(read.stale, "written under {first}, current {second}");
    let new = keyring
        .encrypt(RESOURCE, b"alice@example.com", b"ctx")
        .expect("encrypt");
    let object = EncryptedObject::decode(&new[PREFIX.len()..]).expect("object");
    assert_eq!(object.key_id, second);
    assert_eq!(
        vault
            .raw_unwrap(&second, &object.encrypted_dek_source)
            .len(),
        32
    );

    // A fresh keyring unwraps each seed with the version its key id names.
    let (fresh, _, fresh_calls) = azure_keyring(&vault, &config, quiet());
    for value in [&old, &new] {
        let read = fresh.decrypt(RESOURCE, value, b"ctx").expect("read");
        assert_eq!(read.plaintext, b"alice@example.com");
    }
    assert_eq!(fresh_calls.decrypts(), 2, "one UnwrapKey per seed");
    let requests = vault.requests();
    for kid in [&first, &second] {
        let version = kid.rsplit('/').next().expect("version");
        assert!(
            requests.contains(&format!("POST /keys/kek/{version}/unwrapkey")),
            "{requests:?}"
        );
    }

    // An endpoint pinning the first version keeps using it.
    let pinned = client(
        &vault,
        &format!(
            "{SCHEME}{VAULT_HOST}/keys/kek/{}",
            first.rsplit('/').next().expect("version")
        ),
    );
    assert_eq!(pinned.status().expect("status").key_id, first);
    assert_eq!(
        pinned.encrypt("uid", &[2; 32]).expect("encrypt").key_id,
        first
    );
}

#[test]
fn tampered_and_foreign_wrapped_seeds_are_typed_errors() {
    let vault = FakeVault::start();
    let kid = vault.create_key("kek");
    let client = client(&vault, &endpoint("kek"));
    client.status().expect("status");
    let seed = [0x5au8; 32];
    let wrapped = client.encrypt("uid", &seed).expect("encrypt");

    let mut tampered = wrapped.ciphertext.clone();
    tampered[17] ^= 1;
    let e = client
        .decrypt(
            "uid",
            &DecryptRequest::new(tampered, kid.clone(), wrapped.annotations.clone()),
        )
        .expect_err("tampered");
    assert!(
        matches!(&e, Error::Kms(KmsError::UnwrapRefused { reason }) if reason.contains("BadParameter")),
        "{e:?}"
    );
    let message = format!("{e} {e:?}");
    assert_no_secret(&message);

    // A key id in another vault, and one without a version, are refused before any call.
    for foreign in [
        "https://othervault.vault.azure.net/keys/kek/0123".to_owned(),
        format!("https://{VAULT_HOST}/keys/kek"),
        "not a url".to_owned(),
    ] {
        let e = decrypt_error(
            &client,
            &wrapped.ciphertext,
            foreign.clone(),
            "foreign key id",
        );
        assert!(
            matches!(&e, Error::Kms(KmsError::UnwrapRefused { .. })),
            "{foreign}: {e:?}"
        );
    }
    // An unknown version: Key Vault's KeyNotFound.
    let e = decrypt_error(
        &client,
        &wrapped.ciphertext,
        format!("https://{VAULT_HOST}/keys/kek/ffffffffffffffffffffffffffffffff"),
        "unknown version",
    );
    assert!(
        matches!(&e, Error::Kms(KmsError::ServiceRejected { code, .. }) if code.starts_with("KeyNotFound (HTTP 404)")),
        "{e:?}"
    );

    // Through a keyring: a stored value whose wrapped seed was tampered with fails typed.
    let config = config(&endpoint("kek"), "5s");
    let (writer, _, _) = azure_keyring(&vault, &config, quiet());
    let stored = writer.encrypt(RESOURCE, b"v", b"ctx").expect("encrypt");
    let mut object = EncryptedObject::decode(&stored[PREFIX.len()..]).expect("object");
    object.encrypted_dek_source[3] ^= 0x80;
    let mut forged = PREFIX.to_vec();
    forged.extend_from_slice(&object.encode().expect("encode"));
    let (reader, _, _) = azure_keyring(&vault, &config, quiet());
    let e = reader
        .decrypt(RESOURCE, &forged, b"ctx")
        .expect_err("tampered seed");
    assert!(
        matches!(service_error(&e), KmsError::UnwrapRefused { .. }),
        "{e:?}"
    );
}

#[test]
fn bad_endpoints_are_typed_errors() {
    let vault = FakeVault::start();
    for bad in [
        "azure-keyvault://testvault.vault.azure.net",
        "azure-keyvault://testvault.vault.azure.net/keys/",
        "azure-keyvault://testvault.vault.azure.net/secrets/kek",
        "azure-keyvault://testvault.vault.azure.net/keys/kek/v-1",
        "azure-keyvault://test_vault.vault.azure.net/keys/kek",
        "azure-keyvault://testvault.vault.azure.net:99999/keys/kek",
        "azure-keyvault://ab/keys/kek",
    ] {
        let e = Keyring::builder()
            .kms(
                KeyServiceRegistry::default()
                    .azure(vault.options())
                    .factory(),
            )
            .build(&config(bad, "5s"))
            .expect_err("bad endpoint");
        match service_error(&e) {
            KmsError::InvalidKeyUri { endpoint, .. } => assert_eq!(endpoint, bad),
            other => panic!("{bad}: expected InvalidKeyUri, got {other:?}"),
        }
    }
    // A bare vault name expands to <name>.vault.azure.net.
    let client = AzureKeyVaultClient::new(
        "azure-keyvault://testvault/keys/kek",
        Duration::from_secs(5),
        &vault.options(),
    )
    .expect("client");
    assert_eq!(client.vault_url(), "https://testvault.vault.azure.net/");
    vault.create_key("kek");
    assert_eq!(client.status().expect("status").healthz, "ok");
}

#[test]
fn wrong_token_and_untrusted_certificate_are_typed_errors() {
    let vault = FakeVault::start();
    vault.create_key("kek");
    let wrong = AzureKeyVaultClient::new(
        &endpoint("kek"),
        Duration::from_secs(5),
        &vault.options_with_token("wrong-token"),
    )
    .expect("client");
    let e = wrong.status().expect_err("wrong token");
    eprintln!("wrong token: {e}");
    assert!(
        matches!(&e, Error::Kms(KmsError::ServiceRejected { code, .. }) if code.contains("HTTP 401")),
        "{e:?}"
    );
    assert!(
        vault
            .authorizations()
            .contains(&Some("Bearer wrong-token".to_owned())),
        "the credential's token was sent"
    );

    // Without the test CA the server's certificate is not trusted.
    let untrusted = AzureKeyVaultClient::new(
        &endpoint("kek"),
        Duration::from_secs(5),
        &AzureKeyVaultOptions::default()
            .static_token(TOKEN)
            .resolve(VAULT_HOST, vault.addr),
    )
    .expect("client");
    let e = untrusted.status().expect_err("untrusted certificate");
    eprintln!("untrusted certificate: {e}");
    assert!(
        matches!(&e, Error::Kms(KmsError::ServiceUnavailable { reason, .. }) if reason.contains("certificate")),
        "{e:?}"
    );
}

#[test]
fn server_down_is_a_typed_error_within_the_timeout() {
    let timeout = Duration::from_secs(1);
    let slack = Duration::from_millis(1500);
    let options = AzureKeyVaultOptions::default()
        .static_token(TOKEN)
        .resolve(VAULT_HOST, closed_addr());
    let refused = AzureKeyVaultClient::new(&endpoint("kek"), timeout, &options).expect("client");
    // Connection refused, reported as such; on a loaded machine the SDK's retry back-off can
    // outlast the timeout first, which is reported as the timeout: both are typed and in time.
    assert_unreachable(&refused, timeout, slack, "unreachable vault", |e| {
        matches!(
            e,
            Error::Kms(KmsError::ServiceUnavailable { reason, .. }) if reason.contains("Connect")
        ) || matches!(e, Error::Kms(KmsError::ServiceTimeout { timeout: t, .. }) if *t == timeout)
    });

    // A vault that worked and then went away.
    let mut vault = FakeVault::start();
    vault.create_key("kek");
    let config = config(&endpoint("kek"), "1s");
    let (keyring, registry, _) = azure_keyring(&vault, &config, quiet());
    let stored = keyring.encrypt(RESOURCE, b"v", b"ctx").expect("encrypt");
    vault.stop();
    let transformer = registry.providers().get("azure").expect("provider");
    let started = Instant::now();
    let e = transformer.poll_now().expect_err("vault down");
    assert!(
        started.elapsed() < timeout + slack,
        "{:?}",
        started.elapsed()
    );
    assert!(is_unavailable(service_error(&e)), "{e:?}");
    // A fresh keyring cannot unwrap the stored seed: typed, not a panic.
    let (fresh, _, _) = azure_keyring(&vault, &config, quiet());
    let e = fresh
        .decrypt(RESOURCE, &stored, b"ctx")
        .expect_err("vault down");
    assert!(is_unavailable(service_error(&e)), "{e:?}");

    // A server that accepts connections but never answers: the timeout fires.
    let hanging = TcpListener::bind("127.0.0.1:0").expect("bind");
    let options = AzureKeyVaultOptions::default()
        .static_token(TOKEN)
        .resolve(VAULT_HOST, hanging.local_addr().expect("addr"));
    let hung = AzureKeyVaultClient::new(&endpoint("kek"), timeout, &options).expect("client");
    assert_times_out(&hung, timeout, slack);
}

#[test]
fn client_is_callable_from_inside_a_tokio_runtime() {
    let vault = FakeVault::start();
    let kid = vault.create_key("kek");
    let client = Arc::new(client(&vault, &endpoint("kek")));
    assert_callable_from_a_runtime(&client, &kid);
}
