//! The Google Cloud KMS key service:
//! `gcp-kms://projects/<project>/locations/<location>/keyRings/<key ring>/cryptoKeys/<key>`
//! endpoints, through `google-cloud-kms-v1` (the Cloud KMS REST API, JSON over HTTPS).
//!
//! The KMS v2 contract maps onto Cloud KMS as follows:
//!
//! | KMS v2 | Cloud KMS | notes |
//! |---|---|---|
//! | `status` | `GetCryptoKey(name = configured key)` | `healthz` is `"ok"` when the key's purpose is `ENCRYPT_DECRYPT` and its primary version is `ENABLED`, otherwise a description such as `primary version projects/…/cryptoKeyVersions/2 is DISABLED`; `key_id` is the primary version's name (`…/cryptoKeys/<key>/cryptoKeyVersions/<n>`) |
//! | `encrypt` | `Encrypt(name = configured key, plaintext = seed, plaintextCrc32c)` | Cloud KMS encrypts with the primary version; `key_id` is the version it used (`EncryptResponse.name`), no annotations |
//! | `decrypt` | `Decrypt(name = the key of the stored key id, ciphertext, ciphertextCrc32c)` | Cloud KMS finds the version from the ciphertext |
//!
//! **Integrity.** Every call carries and checks the CRC32C checksums Cloud KMS offers: `Encrypt`
//! sends `plaintextCrc32c` and requires `verifiedPlaintextCrc32c` and a matching
//! `ciphertextCrc32c`; `Decrypt` sends `ciphertextCrc32c` and checks `plaintextCrc32c`. A mismatch
//! (data corrupted in transit) is [`KmsError::ServiceUnavailable`] and is retried on the next call.
//!
//! **Rotation.** Rotating the key (a new primary version, by schedule or by hand) changes the
//! primary version's name, so `status` reports a new key id: the envelope layer wraps a new seed
//! under the new version, and values written under older versions read on (Cloud KMS decrypts
//! with any enabled version of the key) and are reported stale until re-encrypted. Old versions
//! must stay enabled until then. Disabling or destroying the *primary* version makes the key
//! unhealthy.
//!
//! **Key versions.** An endpoint naming a key version (`…/cryptoKeyVersions/<n>`) is refused with
//! [`KmsError::InvalidKeyUri`]: Cloud KMS `Decrypt` takes the crypto key, not a version, and
//! pinning a version would stop rotation. Configure the crypto key.
//!
//! **Decrypt and the stored key id.** `Decrypt` is sent to the crypto key that the stored key id
//! (a version name) belongs to, so values written under another crypto key (before the endpoint
//! was changed to a new key) stay readable while that key exists and is enabled. A stored key id
//! that is not a version name is sent to the configured key.
//!
//! **Configuration.** Credentials are Google's Application Default Credentials (ADC) as
//! `google-cloud-auth` loads them: `GOOGLE_APPLICATION_CREDENTIALS` (a service account key,
//! external account / workload identity federation, impersonation), the `gcloud auth
//! application-default login` file, or the metadata server (GKE Workload Identity, Compute
//! Engine, Cloud Run). The endpoint is `https://cloudkms.googleapis.com/`. [`GcpKmsOptions`]
//! overrides both in code (a private endpoint, a test server; anonymous or an access token).
//! Building the client may ask the metadata server for its universe domain (within the timeout).
//!
//! **Timeout.** The provider's `timeout` bounds every call: each HTTP attempt, the retry loop
//! (the client's AIP-194 policy: connection failures, and `UNAVAILABLE` for these idempotent
//! calls) and fetching a token. A call that does not finish in time is
//! [`KmsError::ServiceTimeout`].
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use encrypted_core::kms::gcp::GcpKmsOptions;
//! use encrypted_core::kms::{KeyServiceRegistry, KmsOptions};
//! // Defaults: ADC and the Cloud KMS endpoint; override both for a test server.
//! let registry = KeyServiceRegistry::default()
//!     .gcp(GcpKmsOptions::default()
//!         .endpoint("http://127.0.0.1:8089")
//!         .anonymous_credentials())
//!     .options(KmsOptions::default());
//! let keyring = encrypted_core::Keyring::builder()
//!     .kms(registry.factory())
//!     .build(&encrypted_core::EncryptionConfiguration::from_yaml(
//!         "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
//!          - resources: [secrets]\n  providers:\n  - kms:\n      apiVersion: v2\n      name: gcp\n      \
//!          endpoint: gcp-kms://projects/my-project/locations/global/keyRings/obot/cryptoKeys/kek\n",
//!     )?)?;
//! # let _ = keyring;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_auth::errors::CredentialsError;
use google_cloud_gax::options::RequestOptionsBuilder as _;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt as _};
use google_cloud_kms_v1::client::KeyManagementService;
use google_cloud_kms_v1::model::crypto_key::CryptoKeyPurpose;
use google_cloud_kms_v1::model::crypto_key_version::CryptoKeyVersionState;
use zeroize::Zeroizing;

use super::runtime::{Outcome, RunError, RuntimeThread, clip, error_chain, run_error};
use super::{DecryptRequest, EncryptResponse, KeyService, KeyServiceConstructor, KmsError, Status};
use crate::Error;
use crate::config::KmsConfig;

/// The scheme of Google Cloud KMS endpoints.
pub const SCHEME: &str = "gcp-kms://";

/// The accepted endpoint form, for error messages.
const EXPECTED: &str =
    "gcp-kms://projects/<project>/locations/<location>/keyRings/<key ring>/cryptoKeys/<key>";

/// Which credentials the client uses.
#[derive(Clone)]
enum CredentialsChoice {
    /// No `Authorization` header (emulators, test servers).
    Anonymous,
    /// `Authorization: Bearer <token>`, never refreshed.
    AccessToken(Arc<Zeroizing<String>>),
    /// Credentials built by the caller with `google-cloud-auth`.
    Custom(Credentials),
}

/// Overrides of the endpoint and credentials, for every `gcp-kms://` provider of a registry
/// ([`super::KeyServiceRegistry::gcp`]). The default overrides nothing: the Cloud KMS endpoint and
/// Application Default Credentials.
///
/// Its `Debug` shows the endpoint and the kind of credentials, never a token.
#[derive(Clone, Default)]
pub struct GcpKmsOptions {
    endpoint: Option<String>,
    credentials: Option<CredentialsChoice>,
}

impl fmt::Debug for GcpKmsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpKmsOptions")
            .field("endpoint", &self.endpoint)
            .field(
                "credentials",
                &match &self.credentials {
                    None => "application default",
                    Some(CredentialsChoice::Anonymous) => "anonymous",
                    Some(CredentialsChoice::AccessToken(_)) => "access token",
                    Some(CredentialsChoice::Custom(_)) => "custom",
                },
            )
            .finish()
    }
}

impl GcpKmsOptions {
    /// Calls this URL (such as `http://127.0.0.1:8089` or a Private Service Connect endpoint)
    /// instead of `https://cloudkms.googleapis.com/`.
    #[must_use]
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Sends no credentials (a local test server or emulator).
    #[must_use]
    pub fn anonymous_credentials(mut self) -> Self {
        self.credentials = Some(CredentialsChoice::Anonymous);
        self
    }

    /// Sends this OAuth 2.0 access token (`Authorization: Bearer <token>`) with every call. The
    /// token is never refreshed: for tests and short-lived tools.
    #[must_use]
    pub fn access_token(mut self, token: impl Into<String>) -> Self {
        self.credentials = Some(CredentialsChoice::AccessToken(Arc::new(Zeroizing::new(
            token.into(),
        ))));
        self
    }

    /// Uses these credentials (built with `google-cloud-auth`: a service account key,
    /// impersonation, ...) instead of Application Default Credentials.
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(CredentialsChoice::Custom(credentials));
        self
    }

    /// The constructor to register for [`SCHEME`] with
    /// [`KeyServiceRegistry::register`](super::KeyServiceRegistry::register).
    #[must_use]
    pub fn constructor(self) -> KeyServiceConstructor {
        Arc::new(move |config: &KmsConfig| {
            Ok(Arc::new(GcpKmsClient::from_config(config, &self)?) as Arc<dyn KeyService>)
        })
    }

    /// The credentials to hand to the client builder; `None` for Application Default
    /// Credentials.
    fn build_credentials(&self) -> Option<Credentials> {
        match self.credentials.as_ref()? {
            CredentialsChoice::Anonymous => {
                Some(google_cloud_auth::credentials::anonymous::Builder::new().build())
            }
            CredentialsChoice::AccessToken(token) => {
                Some(Credentials::from(StaticToken::new(token.as_str())))
            }
            CredentialsChoice::Custom(credentials) => Some(credentials.clone()),
        }
    }
}

/// Credentials that send one fixed bearer token.
#[derive(Clone)]
struct StaticToken {
    headers: http::HeaderMap,
    tag: EntityTag,
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken").finish_non_exhaustive()
    }
}

impl StaticToken {
    fn new(token: &str) -> Self {
        let mut headers = http::HeaderMap::new();
        // A token with bytes a header cannot carry is sent as no header; the service then
        // answers UNAUTHENTICATED, which names the problem.
        if let Ok(mut value) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        Self {
            headers,
            tag: EntityTag::new(),
        }
    }
}

impl CredentialsProvider for StaticToken {
    fn headers(
        &self,
        extensions: http::Extensions,
    ) -> impl Future<Output = Result<CacheableResource<http::HeaderMap>, CredentialsError>> + Send
    {
        let result = match extensions.get::<EntityTag>() {
            Some(tag) if *tag == self.tag => CacheableResource::NotModified,
            _ => CacheableResource::New {
                entity_tag: self.tag.clone(),
                data: self.headers.clone(),
            },
        };
        std::future::ready(Ok(result))
    }

    fn universe_domain(&self) -> impl Future<Output = Option<String>> + Send {
        std::future::ready(None)
    }
}

/// A crypto key's resource name split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyName {
    /// `projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>`.
    pub(crate) name: String,
    /// The project id (or number).
    pub(crate) project: String,
    /// The location, such as `global` or `europe-west1`.
    pub(crate) location: String,
}

/// Whether `s` is a Cloud KMS key ring or crypto key id: 1 to 63 of `[a-zA-Z0-9_-]`.
fn is_kms_id(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `s` is a project id or number: lowercase letters, digits, `-`, and `.` / `:` of
/// domain-scoped projects (`example.com:my-project`), at most 100 bytes.
fn is_project(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':')
        })
}

/// Whether `s` is a location id: lowercase letters, digits and `-`.
fn is_location(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses `projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>` (no scheme); the reason it is
/// not one otherwise.
fn parse_key_name(name: &str) -> Result<KeyName, &'static str> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() >= 10 && parts.get(8) == Some(&"cryptoKeyVersions") {
        return Err(
            "it names a key version (…/cryptoKeyVersions/<n>), not a crypto key: \
                    configure the crypto key; Cloud KMS encrypts with its primary version and \
                    finds the version itself on decrypt, so rotation keeps working",
        );
    }
    let [
        "projects",
        project,
        "locations",
        location,
        "keyRings",
        key_ring,
        "cryptoKeys",
        crypto_key,
    ] = parts[..]
    else {
        return Err("it is not a crypto key resource name \
                    (projects/…/locations/…/keyRings/…/cryptoKeys/…)");
    };
    if !is_project(project) {
        return Err("the project is empty or not a project id");
    }
    if !is_location(location) {
        return Err("the location is empty or not a location id (such as global or us-east1)");
    }
    if !is_kms_id(key_ring) {
        return Err(
            "the key ring id is empty, longer than 63 characters or has characters \
                    other than letters, digits, _ and -",
        );
    }
    if !is_kms_id(crypto_key) {
        return Err(
            "the crypto key id is empty, longer than 63 characters or has characters \
                    other than letters, digits, _ and -",
        );
    }
    Ok(KeyName {
        name: name.to_owned(),
        project: project.to_owned(),
        location: location.to_owned(),
    })
}

/// Parses `gcp-kms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>`.
pub(crate) fn parse_endpoint(endpoint: &str) -> Result<KeyName, Error> {
    let invalid = KmsError::invalid_key_uri(endpoint, EXPECTED);
    let name = endpoint
        .strip_prefix(SCHEME)
        .ok_or_else(|| invalid("it does not start with gcp-kms://"))?;
    parse_key_name(name).map_err(invalid)
}

/// The crypto key a key version name belongs to, when `key_id` is
/// `projects/…/cryptoKeys/<k>/cryptoKeyVersions/<n>` with a well-formed key name.
fn key_of_version(key_id: &str) -> Option<&str> {
    let (key, version) = key_id.rsplit_once("/cryptoKeyVersions/")?;
    let version_ok = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
    (version_ok && parse_key_name(key).is_ok()).then_some(key)
}

/// CRC32C (Castagnoli), as Cloud KMS computes its checksums.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A [`KeyService`] backed by a Cloud KMS symmetric crypto key (`gcp-kms://projects/...`
/// endpoints); see the [module documentation](self) for the mapping, rotation and configuration.
///
/// Every call must finish within the provider's `timeout` or fails with
/// [`KmsError::ServiceTimeout`]; an unreachable service, no credentials, or a response that fails
/// its checksum gives [`KmsError::ServiceUnavailable`], an error answer
/// [`KmsError::ServiceRejected`] (with the status name: `NOT_FOUND`, `PERMISSION_DENIED`,
/// `FAILED_PRECONDITION` for a disabled version, `UNAUTHENTICATED`, ...), and a ciphertext that
/// the key cannot decrypt (`INVALID_ARGUMENT` from `Decrypt`) [`KmsError::UnwrapRefused`].
///
/// Like the KMS plugin client (`plugin::PluginClient`) it runs a tokio runtime on a thread of its own, so its
/// methods may be called from any thread, including one that runs another tokio runtime.
pub struct GcpKmsClient {
    key: KeyName,
    /// `Cloud KMS key <name>`, for errors.
    service: String,
    /// The client's retry time limit and attempt timeout, which normally answer first; the
    /// runtime's is a backstop (token fetches, for one, are not under the attempt timeout).
    timeout: Duration,
    client: KeyManagementService,
    runtime: RuntimeThread,
}

impl fmt::Debug for GcpKmsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpKmsClient")
            .field("key", &self.key.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GcpKmsClient {
    /// A client of the crypto key at `endpoint` (`gcp-kms://projects/...`); every call times out
    /// after `timeout`. Loads the credentials (tokens are fetched on the first call).
    ///
    /// # Errors
    /// [`Error::Kms`] ([`KmsError::InvalidKeyUri`]) for a malformed endpoint,
    /// [`KmsError::ServiceUnavailable`] when the client cannot be built (unreadable Application
    /// Default Credentials, a malformed endpoint override),
    /// [`KmsError::ServiceTimeout`] when building it takes longer than `timeout`,
    /// [`Error::Other`] when the runtime thread cannot be started.
    pub fn new(endpoint: &str, timeout: Duration, options: &GcpKmsOptions) -> Result<Self, Error> {
        let key = parse_endpoint(endpoint)?;
        let service = format!("Cloud KMS key {}", key.name);
        let runtime = RuntimeThread::start("kms-gcp-client", "Google Cloud KMS client")?;
        let endpoint_override = options.endpoint.clone();
        let credentials = options.build_credentials();
        let build = async move {
            let mut builder = KeyManagementService::builder()
                .with_retry_policy(Aip194Strict.with_time_limit(timeout))
                .with_attempt_timeout(timeout);
            if let Some(url) = endpoint_override {
                builder = builder.with_endpoint(url);
            }
            if let Some(credentials) = credentials {
                builder = builder.with_credentials(credentials);
            }
            builder.build().await
        };
        let client = match runtime.call(tracing::Span::none(), timeout, build) {
            Ok(client) => client,
            Err(outcome) => {
                let e = outcome.into_failure(&service, timeout)?;
                return Err(KmsError::ServiceUnavailable {
                    service,
                    reason: format!("the client could not be built: {}", error_chain(&*e)),
                }
                .into());
            }
        };
        Ok(Self {
            key,
            service,
            timeout,
            client,
            runtime,
        })
    }

    /// The client for a `kms` provider entry: its endpoint and timeout, with `options`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_config(config: &KmsConfig, options: &GcpKmsOptions) -> Result<Self, Error> {
        Self::new(&config.endpoint, config.timeout, options)
    }

    /// The configured crypto key's resource name
    /// (`projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>`).
    #[must_use]
    pub fn key_name(&self) -> &str {
        &self.key.name
    }

    /// The project of the key (from its name).
    #[must_use]
    pub fn project(&self) -> &str {
        &self.key.project
    }

    /// The location of the key (from its name).
    #[must_use]
    pub fn location(&self) -> &str {
        &self.key.location
    }

    /// The timeout of each call.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A failed call as a typed error.
    fn error(&self, e: CallError) -> Error {
        let e = match e.into_failure(&self.service, self.timeout) {
            Ok(e) => e,
            Err(e) => return e,
        };
        if e.is_timeout() {
            return self.timeout_error();
        }
        if let Some(status) = e.status() {
            return KmsError::ServiceRejected {
                service: self.service.clone(),
                code: status.code.name().to_owned(),
                message: clip(&status.message),
            }
            .into();
        }
        if let Some(code) = e.http_status_code() {
            // An HTTP error without a Google error body (a proxy, a load balancer).
            let payload = e
                .http_payload()
                .map(|p| clip(&String::from_utf8_lossy(p)))
                .unwrap_or_default();
            return KmsError::ServiceRejected {
                service: self.service.clone(),
                code: format!("HTTP {code}"),
                message: payload,
            }
            .into();
        }
        if e.is_authentication() {
            return self.unavailable(format!("no usable credentials: {}", error_chain(&*e)));
        }
        self.unavailable(error_chain(&*e))
    }

    fn unavailable(&self, reason: String) -> Error {
        KmsError::ServiceUnavailable {
            service: self.service.clone(),
            reason,
        }
        .into()
    }

    fn timeout_error(&self) -> Error {
        run_error(&self.service, self.timeout, RunError::TimedOut)
    }
}

/// Why a call returned no answer.
type CallError = Outcome<google_cloud_kms_v1::Error>;

/// A checksum as the API carries it (an int64 that is never negative).
fn checksum(data: &[u8]) -> i64 {
    i64::from(crc32c(data))
}

impl KeyService for GcpKmsClient {
    fn status(&self) -> Result<Status, Error> {
        let span = tracing::debug_span!("gcp_kms.get_crypto_key", key = %self.key.name);
        let request = self.client.get_crypto_key().set_name(&self.key.name).send();
        let key = self
            .runtime
            .call(span, self.timeout, request)
            .map_err(|e| self.error(e))?;
        let Some(primary) = key.primary else {
            // Cloud KMS reports a primary version for every ENCRYPT_DECRYPT key.
            let healthz = if key.purpose == CryptoKeyPurpose::EncryptDecrypt {
                "the key has no primary version".to_owned()
            } else {
                format!(
                    "key purpose {} (expected ENCRYPT_DECRYPT)",
                    key.purpose.name().unwrap_or("unknown")
                )
            };
            return Ok(Status::new("v2", healthz, self.key.name.clone()));
        };
        let healthz = if key.purpose != CryptoKeyPurpose::EncryptDecrypt {
            format!(
                "key purpose {} (expected ENCRYPT_DECRYPT)",
                key.purpose.name().unwrap_or("unknown")
            )
        } else if primary.state != CryptoKeyVersionState::Enabled {
            format!(
                "primary version {} is {}",
                primary.name,
                primary.state.name().unwrap_or("in an unknown state")
            )
        } else if primary.name.is_empty() {
            "the primary version has no name".to_owned()
        } else {
            "ok".to_owned()
        };
        let key_id = if primary.name.is_empty() {
            self.key.name.clone()
        } else {
            primary.name
        };
        Ok(Status::new("v2", healthz, key_id))
    }

    fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        let span = tracing::info_span!("gcp_kms.encrypt", key = %self.key.name, %uid);
        let request = self
            .client
            .encrypt()
            .set_name(&self.key.name)
            .set_plaintext(plaintext.to_vec())
            .set_plaintext_crc32c(checksum(plaintext))
            // Encrypting again is harmless: only the answer that arrives is used.
            .with_idempotency(true)
            .send();
        let response = self
            .runtime
            .call(span, self.timeout, request)
            .map_err(|e| self.error(e))?;
        if !response.verified_plaintext_crc32c {
            return Err(self.unavailable(
                "Encrypt did not verify the plaintext checksum (the request may have been \
                 corrupted in transit)"
                    .to_owned(),
            ));
        }
        if response.ciphertext_crc32c != Some(checksum(&response.ciphertext)) {
            return Err(self.unavailable(
                "the ciphertext Encrypt returned does not match its checksum (corrupted in \
                 transit)"
                    .to_owned(),
            ));
        }
        if response.ciphertext.is_empty() || key_of_version(&response.name) != Some(&self.key.name)
        {
            return Err(self.unavailable(format!(
                "Encrypt returned no ciphertext or a version name {:?} that is not a version of \
                 the key",
                response.name
            )));
        }
        Ok(EncryptResponse::new(
            response.ciphertext.to_vec(),
            response.name,
            std::collections::BTreeMap::new(),
        ))
    }

    fn decrypt(&self, uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        let key = key_of_version(&request.key_id).unwrap_or(&self.key.name);
        let span = tracing::info_span!("gcp_kms.decrypt", key = %request.key_id, %uid);
        let call = self
            .client
            .decrypt()
            .set_name(key)
            .set_ciphertext(request.ciphertext.clone())
            .set_ciphertext_crc32c(checksum(&request.ciphertext))
            .with_idempotency(true)
            .send();
        let response = self.runtime.call(span, self.timeout, call).map_err(|e| {
            if let Outcome::Failed(gcp) = &e
                && let Some(status) = gcp.status()
                && status.code == google_cloud_gax::error::rpc::Code::InvalidArgument
            {
                return KmsError::UnwrapRefused {
                    reason: format!(
                        "Cloud KMS key {key} answered INVALID_ARGUMENT: {}",
                        clip(&status.message)
                    ),
                }
                .into();
            }
            self.error(e)
        })?;
        let plaintext = Zeroizing::new(response.plaintext.to_vec());
        if response
            .plaintext_crc32c
            .is_some_and(|sum| sum != checksum(&plaintext))
        {
            return Err(self.unavailable(
                "the plaintext Decrypt returned does not match its checksum (corrupted in \
                 transit)"
                    .to_owned(),
            ));
        }
        Ok(plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "projects/my-project/locations/europe-west1/keyRings/obot/cryptoKeys/kek";

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint(&format!("gcp-kms://{KEY}")).ok(),
            Some(KeyName {
                name: KEY.to_owned(),
                project: "my-project".to_owned(),
                location: "europe-west1".to_owned(),
            })
        );
        let scoped = "projects/example.com:p-1/locations/global/keyRings/R_1/cryptoKeys/K-2";
        assert!(parse_endpoint(&format!("gcp-kms://{scoped}")).is_ok());
        for (bad, why) in [
            ("gcp-kms://", "not a crypto key resource name"),
            ("gcp-kms://projects/p", "not a crypto key resource name"),
            (
                "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/",
                "crypto key id",
            ),
            (
                "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k/",
                "not a crypto key resource name",
            ),
            (
                "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
                "names a key version",
            ),
            (
                "gcp-kms://projects//locations/global/keyRings/r/cryptoKeys/k",
                "project",
            ),
            (
                "gcp-kms://projects/p/locations/Global/keyRings/r/cryptoKeys/k",
                "location",
            ),
            (
                "gcp-kms://projects/p/locations/global/keyRings/r r/cryptoKeys/k",
                "key ring",
            ),
            (
                "gcp-kms://projects/p/locations/global/keyrings/r/cryptoKeys/k",
                "not a crypto key resource name",
            ),
            (
                "gcp-kms:///projects/p/locations/global/keyRings/r/cryptoKeys/k",
                "not a crypto key resource name",
            ),
            (
                "projects/p/locations/global/keyRings/r/cryptoKeys/k",
                "does not start with gcp-kms://",
            ),
        ] {
            let err = parse_endpoint(bad).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|m| m.contains("is invalid")
                    && m.contains(why)
                    && m.contains("gcp-kms://projects/<project>")),
                "{bad}: {err:?}"
            );
        }
        let long = format!(
            "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/{}",
            "k".repeat(64)
        );
        assert!(parse_endpoint(&long).is_err());
    }

    #[test]
    fn versions_belong_to_their_key() {
        assert_eq!(
            key_of_version(&format!("{KEY}/cryptoKeyVersions/12")),
            Some(KEY)
        );
        assert_eq!(key_of_version(KEY), None);
        assert_eq!(key_of_version(&format!("{KEY}/cryptoKeyVersions/")), None);
        assert_eq!(key_of_version(&format!("{KEY}/cryptoKeyVersions/x")), None);
        assert_eq!(key_of_version("garbage/cryptoKeyVersions/1"), None);
    }

    #[test]
    fn crc32c_known_answers() {
        // RFC 3720 B.4 and the standard check value.
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
    }

    #[test]
    fn options_debug_hides_the_token() {
        let options = GcpKmsOptions::default()
            .endpoint("http://127.0.0.1:1")
            .access_token("ya29.secret-token");
        let shown = format!("{options:?}");
        assert!(shown.contains("access token") && shown.contains("127.0.0.1"));
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(format!("{:?}", GcpKmsOptions::default()).contains("application default"));
    }
}
