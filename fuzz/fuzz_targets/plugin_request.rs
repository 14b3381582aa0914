//! The KMS v2 plugin server's request handling (`Status`, `Encrypt`, `Decrypt`) over a local
//! key service, fed arbitrary protobuf request bodies without a network
//! (`encrypted_core::__fuzz::plugin_call`).
//!
//! - Never a panic; a failure is a gRPC status (`INVALID_ARGUMENT`, `INTERNAL`, `UNAVAILABLE` or
//!   `DEADLINE_EXCEEDED`) whose message shows neither the key-encryption key nor the secret of
//!   the request, with no details attached.
//! - The server accepts exactly the bodies this target's own messages (written from the
//!   Kubernetes contract) decode; `Status` answers `v2`, `ok` and the key id.
//! - What `Encrypt` wraps, `Decrypt` unwraps to the same bytes (whatever uid and annotations
//!   the request carries); `Decrypt` of anything the server did not wrap fails.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use encrypted_core::__fuzz::{PluginMethod, plugin_call};
use encrypted_core::kms::{KeyService, LocalKeyService};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

const KEK: [u8; 32] = [0x44; 32];

/// `v2.StatusRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct StatusRequest {}

/// `v2.StatusResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct StatusResponse {
    #[prost(string, tag = "1")]
    version: String,
    #[prost(string, tag = "2")]
    healthz: String,
    #[prost(string, tag = "3")]
    key_id: String,
}

/// `v2.EncryptRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct EncryptRequest {
    #[prost(bytes = "vec", tag = "1")]
    plaintext: Vec<u8>,
    #[prost(string, tag = "2")]
    uid: String,
}

/// `v2.EncryptResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct EncryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    ciphertext: Vec<u8>,
    #[prost(string, tag = "2")]
    key_id: String,
    #[prost(map = "string, bytes", tag = "3")]
    annotations: HashMap<String, Vec<u8>>,
}

/// `v2.DecryptRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct DecryptRequest {
    #[prost(bytes = "vec", tag = "1")]
    ciphertext: Vec<u8>,
    #[prost(string, tag = "2")]
    uid: String,
    #[prost(string, tag = "3")]
    key_id: String,
    #[prost(map = "string, bytes", tag = "4")]
    annotations: HashMap<String, Vec<u8>>,
}

/// `v2.DecryptResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct DecryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    plaintext: Vec<u8>,
}

struct World {
    service: Arc<dyn KeyService>,
    key_id: String,
    /// Ciphertexts the server returned (bounded).
    wrapped: Mutex<HashSet<Vec<u8>>>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let local = LocalKeyService::from_key(&KEK, "fuzz").expect("a local key");
    World {
        key_id: local.key_id().to_owned(),
        service: Arc::new(local),
        wrapped: Mutex::new(HashSet::new()),
    }
});

/// A failed call: a status the server maps to, without details, whose message shows neither the
/// key nor `secret` (unless the request body holds it: a status may show the request's key id).
fn check_status(status: &tonic::Status, secret: &[u8], body: &[u8]) {
    use tonic::Code;
    assert!(
        matches!(
            status.code(),
            Code::InvalidArgument | Code::Internal | Code::Unavailable | Code::DeadlineExceeded
        ),
        "unexpected code: {status:?}"
    );
    assert!(status.details().is_empty(), "details attached: {status:?}");
    let text = format!("{} {status:?}", status.message());
    let body = String::from_utf8_lossy(body);
    for secret in [&KEK[..], secret] {
        if !common::shows(&body, secret) {
            assert!(
                !common::shows(&text, secret),
                "a secret in a status: {text}"
            );
        }
    }
}

fn call(method: PluginMethod, body: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    plugin_call(&WORLD.service, method, body)
}

/// `Encrypt` of `plaintext`, then `Decrypt` of the answer with `uid` and `annotations`.
fn round_trip(plaintext: &[u8], answer: &[u8], uid: String, annotations: HashMap<String, Vec<u8>>) {
    let world = &*WORLD;
    let wrapped = EncryptResponse::decode(answer).expect("the server's EncryptResponse");
    assert_eq!(wrapped.key_id, world.key_id, "wrapped under another key id");
    assert_eq!(wrapped.ciphertext.len(), 12 + plaintext.len() + 16);
    {
        let mut seen = world.wrapped.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 4096 {
            seen.clear();
        }
        seen.insert(wrapped.ciphertext.clone());
    }
    let request = DecryptRequest {
        ciphertext: wrapped.ciphertext,
        uid,
        key_id: wrapped.key_id,
        annotations,
    };
    match call(PluginMethod::Decrypt, &request.encode_to_vec()) {
        Ok(answer) => {
            let unwrapped =
                DecryptResponse::decode(&*answer).expect("the server's DecryptResponse");
            assert_eq!(unwrapped.plaintext, plaintext, "unwrapped to other bytes");
        }
        Err(status) => panic!("cannot unwrap what the server wrapped: {status:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            // StatusRequest is empty: a body is unknown fields, or not protobuf.
            let ours = StatusRequest::decode(body);
            match (call(PluginMethod::Status, body), ours) {
                (Ok(answer), Ok(_)) => {
                    let status = StatusResponse::decode(&*answer).expect("a StatusResponse");
                    assert_eq!(
                        (status.version.as_str(), status.healthz.as_str()),
                        ("v2", "ok")
                    );
                    assert_eq!(status.key_id, world.key_id);
                }
                (Err(status), Err(_)) => check_status(&status, &[], body),
                (Ok(_), Err(e)) => panic!("the server accepted a body the contract refuses: {e}"),
                (Err(status), Ok(_)) => panic!("a valid StatusRequest failed: {status:?}"),
            }
        }
        1 => {
            let ours = EncryptRequest::decode(body);
            match (call(PluginMethod::Encrypt, body), ours) {
                (Ok(answer), Ok(request)) => {
                    round_trip(&request.plaintext, &answer, request.uid, HashMap::new())
                }
                (Err(status), Err(_)) => check_status(&status, &[], body),
                (Ok(_), Err(e)) => panic!("the server accepted a body the contract refuses: {e}"),
                (Err(status), Ok(_)) => panic!("a valid EncryptRequest failed: {status:?}"),
            }
        }
        2 => {
            let ours = DecryptRequest::decode(body);
            match (call(PluginMethod::Decrypt, body), ours) {
                (Ok(_), Ok(request)) => {
                    let seen = world.wrapped.lock().unwrap_or_else(|e| e.into_inner());
                    assert!(
                        seen.contains(&request.ciphertext),
                        "unwrapped a ciphertext the server never wrapped"
                    );
                }
                (Ok(_), Err(e)) => panic!("the server accepted a body the contract refuses: {e}"),
                (Err(status), _) => check_status(&status, &[], body),
            }
        }
        // A well-formed Encrypt of the input, then Decrypt with an input uid and annotations.
        _ => {
            let (head, plaintext) = body.split_at(body.len().min(8));
            let uid = String::from_utf8_lossy(&head[..head.len().min(4)]).into_owned();
            let mut annotations = HashMap::new();
            if head.len() > 4 {
                let key = String::from_utf8_lossy(&head[4..]).into_owned();
                annotations.insert(key, head.to_vec());
            }
            let request = EncryptRequest {
                plaintext: plaintext.to_vec(),
                uid: String::new(),
            };
            match call(PluginMethod::Encrypt, &request.encode_to_vec()) {
                Ok(answer) => round_trip(plaintext, &answer, uid, annotations),
                Err(status) => {
                    check_status(&status, plaintext, &[]);
                    panic!("a valid EncryptRequest failed: {status:?}");
                }
            }
        }
    }
});
