//! Errors of the `kms` provider: the stored `EncryptedObject`, the key service and the key
//! lifecycle.

use std::fmt;
use std::time::Duration;

use crate::Error;

/// The key-service call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KmsOperation {
    /// `Status`: health and the current key id.
    Status,
    /// `Encrypt`: wrapping a new seed.
    Encrypt,
    /// `Decrypt`: unwrapping a stored seed or data-encryption key.
    Decrypt,
}

impl fmt::Display for KmsOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KmsOperation::Status => "status",
            KmsOperation::Encrypt => "encrypt",
            KmsOperation::Decrypt => "decrypt",
        })
    }
}

/// Why the `kms` provider failed.
///
/// Messages name the provider, the field or the call and what was expected; they never contain
/// plaintext, seeds, data-encryption keys or key-encryption keys. Annotation keys and key ids are
/// metadata and are shown (annotation keys shortened).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// The stored bytes after `k8s:enc:kms:v2:<name>:` are not a well-formed protobuf
    /// `EncryptedObject`.
    #[error("stored KMS v2 object is not valid protobuf: {reason} at byte offset {offset}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
        /// Where, counted from the start of the object.
        offset: usize,
    },
    /// `encryptedData` is empty.
    #[error("invalid KMS v2 object: encryptedData is empty")]
    EmptyEncryptedData,
    /// `keyID` is empty.
    #[error("invalid KMS v2 object: keyID is empty")]
    EmptyKeyId,
    /// `keyID` is longer than 1 KiB.
    #[error("invalid KMS v2 object: keyID is {len} bytes, expected at most {max}")]
    KeyIdTooLong {
        /// Its length.
        len: usize,
        /// The limit (1024).
        max: usize,
    },
    /// `encryptedDEKSource` is empty.
    #[error("invalid KMS v2 object: encryptedDEKSource is empty")]
    EmptyDekSource,
    /// `encryptedDEKSource` is longer than 1 KiB.
    #[error("invalid KMS v2 object: encryptedDEKSource is {len} bytes, expected at most {max}")]
    DekSourceTooLong {
        /// Its length.
        len: usize,
        /// The limit (1024).
        max: usize,
    },
    /// An annotation key is not a fully qualified domain name.
    #[error(
        "invalid KMS v2 object: annotation key {key:?} is not a fully qualified domain name \
         ({reason}); expected lowercase DNS labels separated by dots, such as \
         \"version.kms.example.com\""
    )]
    InvalidAnnotationKey {
        /// The key (at most 64 characters of it).
        key: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Annotation keys and values add up to more than 32 KiB.
    #[error("invalid KMS v2 object: annotations total {size} bytes, expected at most {max}")]
    AnnotationsTooLarge {
        /// Sum of key and value lengths.
        size: usize,
        /// The limit (32 KiB).
        max: usize,
    },
    /// `encryptedDEKSourceType` is neither `AES_GCM_KEY` (0) nor
    /// `HKDF_SHA256_XNONCE_AES_GCM_SEED` (1).
    #[error(
        "invalid KMS v2 object: unknown encryptedDEKSourceType {value} (expected 0 AES_GCM_KEY \
         or 1 HKDF_SHA256_XNONCE_AES_GCM_SEED)"
    )]
    UnknownDekSourceType {
        /// The value found.
        value: i32,
    },
    /// A key-service call failed.
    #[error("kms provider {provider:?}: key service {operation} call failed: {source}")]
    Call {
        /// The KMS provider name.
        provider: String,
        /// The call.
        operation: KmsOperation,
        /// What the key service returned.
        #[source]
        source: Box<Error>,
    },
    /// The key service answered `status` with something other than `ok`.
    #[error(
        "kms provider {provider:?}: key service is not healthy (healthz {healthz:?}, expected \"ok\")"
    )]
    Unhealthy {
        /// The KMS provider name.
        provider: String,
        /// The `healthz` it returned (at most 128 characters).
        healthz: String,
    },
    /// The key service speaks another KMS API version than `v2`.
    #[error(
        "kms provider {provider:?}: key service status reports API version {version:?}, expected \"v2\" (a KMS v1 plugin cannot serve a v2 provider)"
    )]
    UnsupportedVersion {
        /// The KMS provider name.
        provider: String,
        /// The version it reported (at most 64 characters).
        version: String,
    },
    /// The key service's `status` reported no usable key id.
    #[error("kms provider {provider:?}: key service status has an invalid key id: {reason}")]
    InvalidStatusKeyId {
        /// The KMS provider name.
        provider: String,
        /// Why (empty, too long).
        reason: String,
    },
    /// A new seed was wrapped under another key id than `status` announced (the key rotated
    /// between the calls, or the plugin is inconsistent); the seed is not used.
    #[error(
        "kms provider {provider:?}: key service wrapped the new seed under key id \
         {response_key_id:?} but its status reports {status_key_id:?}; will retry"
    )]
    KeyIdMismatch {
        /// The KMS provider name.
        provider: String,
        /// The key id from `status`.
        status_key_id: String,
        /// The key id from `encrypt`.
        response_key_id: String,
    },
    /// The key service returned a seed or data-encryption key of an unusable length.
    #[error(
        "kms provider {provider:?}: key service returned a {found}-byte {what}, expected {expected}"
    )]
    InvalidUnwrappedKey {
        /// The KMS provider name.
        provider: String,
        /// "seed" or "data-encryption key".
        what: &'static str,
        /// The acceptable lengths.
        expected: &'static str,
        /// The length returned.
        found: usize,
    },
    /// The key service unwrapped the current seed to other bytes than were wrapped (found by
    /// [`KmsTransformer::check_key_service`](super::KmsTransformer::check_key_service)).
    #[error(
        "kms provider {provider:?}: the key service unwrapped the current seed to different \
         bytes than it wrapped (is another key service answering, or is it broken?)"
    )]
    UnwrapMismatch {
        /// The KMS provider name.
        provider: String,
    },
    /// No write is possible: the key service has never answered `status` and `encrypt`
    /// successfully since start-up.
    #[error(
        "kms provider {provider:?} cannot encrypt: no seed has been wrapped yet because the key \
         service has not been reachable and healthy since start-up{}",
        last_error_suffix(.last_error.as_deref())
    )]
    NoWriteSeed {
        /// The KMS provider name.
        provider: String,
        /// The last key-service error, if any.
        last_error: Option<String>,
    },
    /// The key service has been unhealthy for longer than the write window: writes are refused
    /// until it answers `status` again (reads of cached seeds go on).
    #[error(
        "kms provider {provider:?} refuses to encrypt: the key service last confirmed the \
         current key {elapsed:?} ago, longer than the {window:?} write window{}",
        last_error_suffix(.last_error.as_deref())
    )]
    WriteWindowExpired {
        /// The KMS provider name.
        provider: String,
        /// Time since the last successful `status`.
        elapsed: Duration,
        /// The configured window.
        window: Duration,
        /// The last key-service error, if any.
        last_error: Option<String>,
    },
    /// The endpoint's scheme has no key-service implementation in this build.
    #[error(
        "kms provider {provider:?}: endpoint {endpoint:?} is not supported by this build \
         (supported schemes: {supported})"
    )]
    UnsupportedEndpoint {
        /// The KMS provider name.
        provider: String,
        /// The configured endpoint.
        endpoint: String,
        /// The schemes this build can serve.
        supported: String,
    },
    /// The local key service could not load its key.
    #[error("local key service {source_name}: {reason}")]
    LocalKey {
        /// Where the key was to come from (a path or `env:NAME`), never the key.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// The key service refused to unwrap: the key id is not its key, or the wrapped bytes fail
    /// authentication.
    #[error("key service cannot unwrap: {reason}")]
    UnwrapRefused {
        /// Why.
        reason: String,
    },
    /// A `unix://` endpoint of a KMS v2 plugin is malformed.
    #[error(
        "KMS plugin endpoint {endpoint:?} is invalid: {reason}; expected unix:///absolute/path \
         or unix:///@abstract-name"
    )]
    InvalidPluginEndpoint {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The KMS v2 plugin could not be reached: no socket, connection refused or reset, or the
    /// client's own runtime is gone. Retried on the next call (a new connection).
    #[error("KMS plugin at {endpoint} is unavailable: {reason}")]
    PluginUnavailable {
        /// The plugin's endpoint.
        endpoint: String,
        /// The transport error.
        reason: String,
    },
    /// The KMS v2 plugin did not answer within the provider's `timeout`.
    #[error("KMS plugin at {endpoint} did not answer within the {timeout:?} timeout")]
    PluginTimeout {
        /// The plugin's endpoint.
        endpoint: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The KMS v2 plugin answered with a gRPC error status.
    #[error(
        "KMS plugin at {endpoint} returned gRPC status {} ({code}): {message}",
        grpc_code_name(*.code)
    )]
    PluginStatus {
        /// The plugin's endpoint.
        endpoint: String,
        /// The gRPC status code (2 unknown, 3 invalid argument, 13 internal, 14 unavailable, ...).
        code: i32,
        /// The plugin's message (at most 256 characters of it).
        message: String,
    },
    /// A cloud key service's key URI in `endpoint` (such as `aws-kms://arn:aws:kms:...`) is
    /// malformed.
    #[error("KMS endpoint {endpoint:?} is invalid: {reason}; expected {expected}")]
    InvalidKeyUri {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        reason: &'static str,
        /// The accepted forms.
        expected: &'static str,
    },
    /// A cloud key service could not be reached or its answer could not be read (connection
    /// refused, DNS, TLS, no credentials, a malformed response). Retried on the next call.
    #[error("{service} is unavailable: {reason}")]
    ServiceUnavailable {
        /// The service and key, such as `AWS KMS key arn:aws:kms:...`.
        service: String,
        /// The transport or SDK error (never credentials or key material).
        reason: String,
    },
    /// A cloud key service did not answer within the provider's `timeout` (retries included).
    #[error("{service} did not answer within the {timeout:?} timeout")]
    ServiceTimeout {
        /// The service and key.
        service: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// A cloud key service answered with an error: the key does not exist, is disabled or
    /// pending deletion, access is denied, a request was throttled, ...
    #[error("{service} refused the call: {code}: {message}")]
    ServiceRejected {
        /// The service and key.
        service: String,
        /// The service's error code, such as `NotFoundException` or `DisabledException`.
        code: String,
        /// The service's message (at most 256 characters of it).
        message: String,
    },
    /// The KMS v2 plugin server could not start.
    #[error("KMS plugin server cannot listen on {listen}: {reason}")]
    PluginServer {
        /// The `unix://` endpoint it was to listen on.
        listen: String,
        /// Why.
        reason: String,
    },
}

/// The name of a gRPC status code.
fn grpc_code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "unknown code",
    }
}

fn last_error_suffix(last: Option<&str>) -> String {
    last.map(|e| format!(" (last error: {e})"))
        .unwrap_or_default()
}

impl KmsError {
    pub(crate) fn malformed(reason: &'static str, offset: usize) -> Self {
        KmsError::Malformed { reason, offset }
    }

    /// The [`KmsError::InvalidKeyUri`] errors of one cloud endpoint, by reason.
    #[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
    pub(crate) fn invalid_key_uri<'a>(
        endpoint: &'a str,
        expected: &'static str,
    ) -> impl Fn(&'static str) -> crate::Error + 'a {
        move |reason| {
            KmsError::InvalidKeyUri {
                endpoint: endpoint.to_owned(),
                reason,
                expected,
            }
            .into()
        }
    }
}
