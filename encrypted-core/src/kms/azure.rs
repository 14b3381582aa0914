//! The Azure Key Vault key service: `azure-keyvault://<vault host>/keys/<key name>[/<version>]`
//! endpoints, through `azure_security_keyvault_keys`.
//!
//! `<vault host>` is the vault's DNS name, such as `myvault.vault.azure.net` (or a Managed HSM,
//! `myhsm.managedhsm.azure.net`, or a sovereign cloud's `myvault.vault.azure.cn`), optionally with
//! a `:port`. A bare vault name without a dot (`myvault`) expands to `myvault.vault.azure.net`,
//! the public cloud. The vault is always called over HTTPS (`https://<vault host>/`).
//!
//! The KMS v2 contract maps onto Key Vault as follows:
//!
//! | KMS v2 | Azure Key Vault | notes |
//! |---|---|---|
//! | `status` | `GetKey(name[, version])` | `healthz` is `"ok"` when the key is enabled, not expired nor before its activation date, of a type that can wrap and its `key_ops` allow `wrapKey` and `unwrapKey`, otherwise a description such as `key disabled`; `key_id` is the key's full id with its version, `https://<vault>/keys/<name>/<version>` |
//! | `encrypt` | `WrapKey(name, version, alg, seed)` | the version `status` last reported (or the pinned one); `key_id` is the `kid` Key Vault returns, and the annotation `algorithm.azure.akv.io` records the algorithm |
//! | `decrypt` | `UnwrapKey(name, version, alg, wrapped seed)` | name and version come from the stored key id, the algorithm from the annotation |
//!
//! **Algorithm.** It follows the key type: `RSA` and `RSA-HSM` keys wrap with `RSA-OAEP-256`
//! (RSA-OAEP with SHA-256 and MGF1-SHA-256); `oct-HSM` keys (Managed HSM) with `A256KW` (AES key
//! wrap, RFC 3394, which needs a 256-bit key). EC keys cannot wrap: `status` reports them
//! unhealthy.
//!
//! **Rotation.** Each key version has its own key id, so a new version of the key (manual, or
//! Key Vault's rotation policy) is a key id change: the next `status` reports it, the envelope
//! layer wraps a new seed under it, and values written under the older version read as stale.
//! Older versions must stay enabled until those values are re-encrypted. An endpoint with a
//! `/<version>` pins that version: rotation then takes an endpoint change.
//!
//! Stored key ids must name a key in the configured vault (any key name, any version); one in
//! another vault is refused with [`KmsError::UnwrapRefused`].
//!
//! **Credentials.** Without [`AzureKeyVaultOptions::credential`], the credential is chosen from
//! the environment when the client is built (`azure_identity` 1.0 has no
//! `DefaultAzureCredential`; this is the part of its chain that fits a server):
//!
//! 1. `AZURE_FEDERATED_TOKEN_FILE` set: workload identity (AKS), with `AZURE_CLIENT_ID` and
//!    `AZURE_TENANT_ID`;
//! 2. `AZURE_CLIENT_SECRET` set: a service principal's secret, with `AZURE_CLIENT_ID` and
//!    `AZURE_TENANT_ID`;
//! 3. otherwise managed identity (App Service, Functions, virtual machines, Arc), user-assigned
//!    when `AZURE_CLIENT_ID` is set, else system-assigned.
//!
//! On a developer's machine pass `azure_identity::DeveloperToolsCredential` (Azure CLI) to
//! [`AzureKeyVaultOptions::credential`].
//!
//! **TLS.** HTTPS through reqwest and rustls (aws-lc-rs), with the platform's root certificates;
//! [`AzureKeyVaultOptions::add_root_certificate_pem`] trusts more (a TLS-inspecting proxy, a test
//! server), and [`AzureKeyVaultOptions::resolve`] pins a vault host to an address (a private
//! endpoint without DNS, a test server). No system OpenSSL.
//!
//! **Timeout.** The provider's `timeout` bounds every call, the authentication challenge, token
//! requests and retries included; it is also the connect timeout.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use encrypted_core::kms::azure::AzureKeyVaultOptions;
//! use encrypted_core::kms::{KeyServiceRegistry, KmsOptions};
//! // The credential comes from the environment (workload identity, a client secret, managed
//! // identity); options can override it and add trusted root certificates.
//! let registry = KeyServiceRegistry::default()
//!     .azure(AzureKeyVaultOptions::default())
//!     .options(KmsOptions::default());
//! let keyring = encrypted_core::Keyring::builder()
//!     .kms(registry.factory())
//!     .build(&encrypted_core::EncryptionConfiguration::from_yaml(
//!         "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
//!          - resources: [secrets]\n  providers:\n  - kms:\n      apiVersion: v2\n      name: azure\n      \
//!          endpoint: azure-keyvault://myvault.vault.azure.net/keys/kek\n",
//!     )?)?;
//! # let _ = keyring;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport, Url};
use azure_security_keyvault_keys::models::{
    EncryptionAlgorithm, Key, KeyClientGetKeyOptions, KeyClientWrapKeyOptions,
    KeyOperationParameters, KeyType,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions, ResourceId};
use zeroize::Zeroizing;

use super::runtime::{Outcome, RuntimeThread, clip, error_chain};
use super::{DecryptRequest, EncryptResponse, KeyService, KeyServiceConstructor, KmsError, Status};
use crate::Error;
use crate::config::KmsConfig;

/// The scheme of Azure Key Vault endpoints.
pub const SCHEME: &str = "azure-keyvault://";

/// The annotation that records the wrapping algorithm (as the Kubernetes Azure KMS plugin does).
pub const ALGORITHM_ANNOTATION: &str = "algorithm.azure.akv.io";

/// The domain a bare vault name is completed with.
pub const DEFAULT_VAULT_DOMAIN: &str = "vault.azure.net";

/// The accepted endpoint forms, for error messages.
const EXPECTED: &str = "azure-keyvault://<vault host>/keys/<key name>[/<key version>], such as \
                        azure-keyvault://myvault.vault.azure.net/keys/kek (a bare vault name \
                        such as `myvault` means myvault.vault.azure.net)";

/// Overrides for every `azure-keyvault://` provider of a registry
/// ([`super::KeyServiceRegistry::azure`]). The default overrides nothing: the credential comes
/// from the environment (see the [module documentation](self)), TLS trusts the platform's roots.
///
/// Its `Debug` shows whether a credential is set, never a token.
#[derive(Clone, Default)]
pub struct AzureKeyVaultOptions {
    credential: Option<Arc<dyn TokenCredential>>,
    root_certificates: Vec<Vec<u8>>,
    resolve: Vec<(String, SocketAddr)>,
}

impl fmt::Debug for AzureKeyVaultOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureKeyVaultOptions")
            .field("credential", &self.credential.as_ref().map(|_| "set"))
            .field("root_certificates", &self.root_certificates.len())
            .field("resolve", &self.resolve)
            .finish()
    }
}

impl AzureKeyVaultOptions {
    /// Uses this credential instead of the one chosen from the environment (any
    /// `azure_identity` credential, or an own [`TokenCredential`]).
    #[must_use]
    pub fn credential(mut self, credential: Arc<dyn TokenCredential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Sends this bearer token on every call ([`StaticTokenCredential`]): for tests, or a token
    /// obtained elsewhere that outlives the process.
    #[must_use]
    pub fn static_token(self, token: impl Into<String>) -> Self {
        self.credential(Arc::new(StaticTokenCredential::new(token)))
    }

    /// Also trusts the certificates of this PEM bundle as roots (beside the platform's), such as
    /// a private CA or the self-signed certificate of a test server. Checked when a client is
    /// built.
    #[must_use]
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Connects to `addr` for the vault host `host` instead of resolving it (its port is used
    /// unless the endpoint names one): a private endpoint without DNS, a test server. TLS still
    /// verifies the certificate against `host`.
    #[must_use]
    pub fn resolve(mut self, host: impl Into<String>, addr: SocketAddr) -> Self {
        self.resolve.push((host.into(), addr));
        self
    }

    /// The constructor to register for [`SCHEME`] with
    /// [`KeyServiceRegistry::register`](super::KeyServiceRegistry::register).
    #[must_use]
    pub fn constructor(self) -> KeyServiceConstructor {
        Arc::new(move |config: &KmsConfig| {
            Ok(Arc::new(AzureKeyVaultClient::from_config(config, &self)?) as Arc<dyn KeyService>)
        })
    }
}

/// A credential that always returns the same bearer token (valid for a day from each call).
pub struct StaticTokenCredential {
    token: Secret,
}

impl fmt::Debug for StaticTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokenCredential")
            .finish_non_exhaustive()
    }
}

impl StaticTokenCredential {
    /// A credential returning `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: Secret::new(token.into()),
        }
    }
}

#[async_trait::async_trait]
impl TokenCredential for StaticTokenCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.token.clone(),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::days(1),
        ))
    }
}

/// A key endpoint split into what the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyUri {
    /// `https://<vault host>[:port]/`.
    pub(crate) vault_url: String,
    /// The key's name.
    pub(crate) name: String,
    /// The pinned version, if any.
    pub(crate) version: Option<String>,
}

/// Whether `label` is a DNS label (letters, digits, inner hyphens, at most 63 bytes).
fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Parses `azure-keyvault://<vault host>[:port]/keys/<name>[/<version>]`.
pub(crate) fn parse_endpoint(endpoint: &str) -> Result<KeyUri, Error> {
    let invalid = KmsError::invalid_key_uri(endpoint, EXPECTED);
    let rest = endpoint
        .strip_prefix(SCHEME)
        .ok_or_else(|| invalid("it does not start with azure-keyvault://"))?;
    if endpoint.len() > super::MAX_KEY_ID_LEN {
        return Err(invalid("it is longer than 1024 bytes"));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let (vault, name, version) = match parts[..] {
        [vault, "keys", name] => (vault, name, None),
        [vault, "keys", name, version] => (vault, name, Some(version)),
        [_, "keys", ..] => {
            return Err(invalid(
                "the path has more than /keys/<name>/<version> (or ends with /)",
            ));
        }
        _ => return Err(invalid("the path is not /keys/<name>[/<version>]")),
    };
    let (host, port) = match vault.rsplit_once(':') {
        Some((host, port)) => {
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid("the vault port is not a number from 1 to 65535"))?;
            (host, Some(port))
        }
        None => (vault, None),
    };
    if host.is_empty() {
        return Err(invalid("the vault host is empty"));
    }
    let host = host.to_ascii_lowercase();
    let host = if !host.contains('.') && port.is_none() {
        // A bare vault name: 3 to 24 letters, digits and single hyphens, starting with a letter.
        if !(3..=24).contains(&host.len())
            || !host.starts_with(|c: char| c.is_ascii_alphabetic())
            || host.contains("--")
            || !is_dns_label(&host)
        {
            return Err(invalid(
                "the bare vault name is not 3 to 24 letters, digits and single hyphens starting \
                 with a letter",
            ));
        }
        format!("{host}.{DEFAULT_VAULT_DOMAIN}")
    } else {
        if host.len() > 253 || !host.split('.').all(is_dns_label) {
            return Err(invalid(
                "the vault host is not a DNS name (letters, digits, hyphens and dots)",
            ));
        }
        host
    };
    if name.is_empty()
        || name.len() > 127
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(invalid(
            "the key name is not 1 to 127 letters, digits and hyphens",
        ));
    }
    if let Some(version) = version
        && (version.is_empty()
            || version.len() > 64
            || !version.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(invalid("the key version is not 1 to 64 letters and digits"));
    }
    let vault_url = match port {
        Some(port) => format!("https://{host}:{port}/"),
        None => format!("https://{host}/"),
    };
    Ok(KeyUri {
        vault_url,
        name: name.to_owned(),
        version: version.map(str::to_owned),
    })
}

/// The wrapping algorithm for a key type, `None` for types that cannot wrap.
fn algorithm_for(kty: &KeyType) -> Option<EncryptionAlgorithm> {
    match kty {
        KeyType::Rsa | KeyType::RsaHsm => Some(EncryptionAlgorithm::RsaOaep256),
        KeyType::Oct | KeyType::OctHsm => Some(EncryptionAlgorithm::A256Kw),
        _ => None,
    }
}

/// A key id without a query string or fragment (Key Vault may append `?api-version=`).
fn bare_key_id(kid: &str) -> &str {
    kid.split(['?', '#']).next().unwrap_or(kid)
}

/// The key version `status` last reported, for `encrypt`.
#[derive(Debug, Clone)]
struct CurrentKey {
    kid: String,
    version: String,
    algorithm: EncryptionAlgorithm,
}

/// A [`KeyService`] backed by an Azure Key Vault (or Managed HSM) key
/// (`azure-keyvault://<vault>/keys/<name>` endpoints); see the [module documentation](self) for
/// the mapping, rotation, credentials and TLS.
///
/// Every call must finish within the provider's `timeout` or fails with
/// [`KmsError::ServiceTimeout`]; an unreachable vault (or no token) gives
/// [`KmsError::ServiceUnavailable`], an error answer [`KmsError::ServiceRejected`] (such as
/// `KeyNotFound`, `Forbidden` for a disabled key, `Unauthorized`), and a wrapped seed the key
/// cannot unwrap [`KmsError::UnwrapRefused`].
///
/// It runs a tokio runtime on a thread of its own, so its methods may be called from any thread,
/// including one that runs another tokio runtime.
pub struct AzureKeyVaultClient {
    key: KeyUri,
    /// The vault's origin, to check stored key ids against.
    vault: Url,
    /// `Azure Key Vault key <vault>keys/<name>`, for errors.
    service: String,
    timeout: Duration,
    client: Arc<KeyClient>,
    current: Mutex<Option<CurrentKey>>,
    runtime: RuntimeThread,
}

impl fmt::Debug for AzureKeyVaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureKeyVaultClient")
            .field("vault_url", &self.key.vault_url)
            .field("key", &self.key.name)
            .field("version", &self.key.version)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The credential chosen from the environment (see the module documentation).
fn environment_credential() -> azure_core::Result<Arc<dyn TokenCredential>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        return Ok(azure_identity::WorkloadIdentityCredential::new(None)?);
    }
    if let Some(secret) = var("AZURE_CLIENT_SECRET") {
        let tenant = var("AZURE_TENANT_ID").unwrap_or_default();
        let client = var("AZURE_CLIENT_ID").unwrap_or_default();
        return Ok(azure_identity::ClientSecretCredential::new(
            &tenant,
            client,
            Secret::new(secret),
            None,
        )?);
    }
    let options = azure_identity::ManagedIdentityCredentialOptions {
        user_assigned_id: var("AZURE_CLIENT_ID").map(azure_identity::UserAssignedId::ClientId),
        ..Default::default()
    };
    Ok(azure_identity::ManagedIdentityCredential::new(Some(
        options,
    ))?)
}

impl AzureKeyVaultClient {
    /// A client of the key at `endpoint` (`azure-keyvault://<vault>/keys/<name>[/<version>]`);
    /// every call times out after `timeout`. Nothing is sent until the first call.
    ///
    /// # Errors
    /// [`Error::Kms`] ([`KmsError::InvalidKeyUri`]) for a malformed endpoint,
    /// [`KmsError::ServiceUnavailable`] when no credential can be made from the environment,
    /// [`Error::Other`] for an unreadable root certificate or when the HTTP client or the
    /// runtime thread cannot be started.
    pub fn new(
        endpoint: &str,
        timeout: Duration,
        options: &AzureKeyVaultOptions,
    ) -> Result<Self, Error> {
        let key = parse_endpoint(endpoint)?;
        let service = format!("Azure Key Vault key {}keys/{}", key.vault_url, key.name);
        let other = |context: &str, e: Box<dyn std::error::Error + Send + Sync>| Error::Other {
            context: format!("{service}: {context}"),
            source: Arc::from(e),
        };
        let vault = Url::parse(&key.vault_url).map_err(|e| other("invalid vault URL", e.into()))?;

        let mut http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        for pem in &options.root_certificates {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| other("cannot read a root certificate (PEM)", e.into()))?;
            http = http.tls_certs_merge(certs);
        }
        for (host, addr) in &options.resolve {
            http = http.resolve(host, *addr);
        }
        let http = http
            .build()
            .map_err(|e| other("cannot build the HTTP client", e.into()))?;

        let credential = match &options.credential {
            Some(credential) => Arc::clone(credential),
            None => environment_credential().map_err(|e| KmsError::ServiceUnavailable {
                service: service.clone(),
                reason: format!(
                    "no Azure credential from the environment: {}",
                    error_chain(&e)
                ),
            })?,
        };
        // Retries stop at half the timeout, so that an unreachable vault reports why (connection
        // refused, TLS, DNS) rather than only the timeout.
        let max_total_elapsed = azure_core::time::Duration::try_from(timeout / 2)
            .unwrap_or(azure_core::time::Duration::seconds(30));
        let client_options = KeyClientOptions {
            client_options: ClientOptions {
                transport: Some(Transport::new(Arc::new(http))),
                retry: RetryOptions::exponential(ExponentialRetryOptions {
                    max_retries: 3,
                    max_total_elapsed,
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let client = KeyClient::new(&key.vault_url, credential, Some(client_options))
            .map_err(|e| other("cannot create the Key Vault client", e.into()))?;
        let runtime = RuntimeThread::start("kms-azure-client", "Azure Key Vault client")?;
        Ok(Self {
            key,
            vault,
            service,
            timeout,
            client: Arc::new(client),
            current: Mutex::new(None),
            runtime,
        })
    }

    /// The client for a `kms` provider entry: its endpoint and timeout, with `options`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_config(config: &KmsConfig, options: &AzureKeyVaultOptions) -> Result<Self, Error> {
        Self::new(&config.endpoint, config.timeout, options)
    }

    /// The vault's URL, `https://<vault host>/`.
    #[must_use]
    pub fn vault_url(&self) -> &str {
        &self.key.vault_url
    }

    /// The key's name.
    #[must_use]
    pub fn key_name(&self) -> &str {
        &self.key.name
    }

    /// The version the endpoint pins, if any.
    #[must_use]
    pub fn pinned_version(&self) -> Option<&str> {
        self.key.version.as_deref()
    }

    /// The timeout of each call.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one SDK call on the client's runtime, in `span`, and waits for its answer (at most
    /// the timeout).
    fn call<T, Fut>(&self, span: tracing::Span, request: Fut) -> Result<T, CallError>
    where
        T: Send + 'static,
        Fut: Future<Output = azure_core::Result<T>> + Send + 'static,
    {
        self.runtime.call(span, self.timeout, request)
    }

    /// A failed call as a typed error.
    fn error(&self, e: CallError) -> Error {
        let e = match e.into_failure(&self.service, self.timeout) {
            Ok(e) => e,
            Err(e) => return e,
        };
        match e.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => KmsError::ServiceRejected {
                service: self.service.clone(),
                code: match error_code {
                    Some(code) => format!("{code} (HTTP {})", u16::from(*status)),
                    None => format!("HTTP {}", u16::from(*status)),
                },
                message: clip(&e.to_string()),
            }
            .into(),
            ErrorKind::Credential => KmsError::ServiceUnavailable {
                service: self.service.clone(),
                reason: format!("cannot get an access token: {}", error_chain(&*e)),
            }
            .into(),
            _ => KmsError::ServiceUnavailable {
                service: self.service.clone(),
                reason: error_chain(&*e),
            }
            .into(),
        }
    }

    /// `GetKey` of the configured key (its pinned version, or the current one).
    fn get_key(&self, span: tracing::Span) -> Result<Key, Error> {
        let client = Arc::clone(&self.client);
        let name = self.key.name.clone();
        let options = KeyClientGetKeyOptions {
            key_version: self.key.version.clone(),
            ..Default::default()
        };
        self.call(span, async move {
            client.get_key(&name, Some(options)).await?.into_model()
        })
        .map_err(|e| self.error(e))
    }

    fn malformed(&self, what: &str) -> Error {
        KmsError::ServiceUnavailable {
            service: self.service.clone(),
            reason: format!("Key Vault answered without {what}"),
        }
        .into()
    }

    /// The key id, version and algorithm of a `GetKey` answer, and its health.
    fn describe(&self, key: &Key) -> Result<(CurrentKey, String), Error> {
        let jwk = key.key.as_ref().ok_or_else(|| self.malformed("a key"))?;
        let kid = bare_key_id(jwk.kid.as_deref().ok_or_else(|| self.malformed("a kid"))?);
        let version = ResourceId::from_str(kid)
            .ok()
            .and_then(|id| id.version)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.malformed("a versioned kid"))?;
        let kty = jwk.kty.as_ref().ok_or_else(|| self.malformed("a kty"))?;
        let algorithm = algorithm_for(kty);
        let now = azure_core::time::OffsetDateTime::now_utc();
        let attributes = key.attributes.clone().unwrap_or_default();
        let ops = jwk.key_ops.as_deref();
        let allows = |op: &str| ops.is_none_or(|ops| ops.iter().any(|o| o == op));
        let healthz = if attributes.enabled == Some(false) {
            "key disabled".to_owned()
        } else if attributes.expires.is_some_and(|t| t <= now) {
            "key expired".to_owned()
        } else if attributes.not_before.is_some_and(|t| t > now) {
            "key not yet active (nbf in the future)".to_owned()
        } else if algorithm.is_none() {
            format!("key type {kty} cannot wrap keys (expected RSA, RSA-HSM or oct-HSM)")
        } else if !allows("wrapKey") || !allows("unwrapKey") {
            format!(
                "key operations {:?} do not allow wrapKey and unwrapKey",
                ops.unwrap_or_default()
            )
        } else {
            "ok".to_owned()
        };
        Ok((
            CurrentKey {
                kid: kid.to_owned(),
                version,
                algorithm: algorithm.unwrap_or(EncryptionAlgorithm::RsaOaep256),
            },
            healthz,
        ))
    }
}

/// Why a call returned no answer.
type CallError = Outcome<azure_core::Error>;

impl KeyService for AzureKeyVaultClient {
    fn status(&self) -> Result<Status, Error> {
        let span = tracing::debug_span!(
            "azure_keyvault.get_key",
            vault = %self.key.vault_url,
            key = %self.key.name
        );
        let key = self.get_key(span)?;
        let (current, healthz) = self.describe(&key)?;
        let key_id = current.kid.clone();
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
            (healthz == "ok").then_some(current);
        Ok(Status::new("v2", healthz, key_id))
    }

    fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        let cached = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let current = match cached {
            Some(current) => current,
            None => {
                let span = tracing::debug_span!(
                    "azure_keyvault.get_key",
                    vault = %self.key.vault_url,
                    key = %self.key.name
                );
                self.describe(&self.get_key(span)?)?.0
            }
        };
        let span = tracing::info_span!(
            "azure_keyvault.wrap_key",
            key = %current.kid,
            alg = %current.algorithm,
            %uid
        );
        let client = Arc::clone(&self.client);
        let name = self.key.name.clone();
        let parameters = KeyOperationParameters {
            algorithm: Some(current.algorithm.clone()),
            value: Some(plaintext.to_vec()),
            ..Default::default()
        };
        let options = KeyClientWrapKeyOptions {
            key_version: Some(current.version.clone()),
            ..Default::default()
        };
        let result = self
            .call(span, async move {
                client
                    .wrap_key(&name, parameters.try_into()?, Some(options))
                    .await?
                    .into_model()
            })
            .map_err(|e| self.error(e))?;
        let ciphertext = result.result.ok_or_else(|| self.malformed("a result"))?;
        let key_id = bare_key_id(&result.kid.unwrap_or(current.kid)).to_owned();
        let annotations = BTreeMap::from([(
            ALGORITHM_ANNOTATION.to_owned(),
            current.algorithm.to_string().into_bytes(),
        )]);
        Ok(EncryptResponse::new(ciphertext, key_id, annotations))
    }

    fn decrypt(&self, uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        let refused = |reason: String| -> Error { KmsError::UnwrapRefused { reason }.into() };
        let url = Url::parse(&request.key_id)
            .map_err(|_| refused(format!("key id {:?} is not a URL", request.key_id)))?;
        if url.origin() != self.vault.origin() {
            return Err(refused(format!(
                "key id {} is not in the configured vault {}",
                request.key_id, self.key.vault_url
            )));
        }
        let id = ResourceId::try_from(&url)
            .ok()
            .filter(|id| id.version.as_deref().is_some_and(|v| !v.is_empty()))
            .ok_or_else(|| {
                refused(format!(
                    "key id {} is not https://<vault>/keys/<name>/<version>",
                    request.key_id
                ))
            })?;
        let algorithm = match request.annotations.get(ALGORITHM_ANNOTATION) {
            Some(alg) => std::str::from_utf8(alg)
                .ok()
                .and_then(|alg| EncryptionAlgorithm::from_str(alg).ok())
                .filter(|alg| !matches!(alg, EncryptionAlgorithm::UnknownValue(_)))
                .ok_or_else(|| {
                    refused(format!(
                        "unknown wrapping algorithm in annotation {ALGORITHM_ANNOTATION}"
                    ))
                })?,
            None => EncryptionAlgorithm::RsaOaep256,
        };
        let span = tracing::info_span!(
            "azure_keyvault.unwrap_key",
            key = %request.key_id,
            alg = %algorithm,
            %uid
        );
        let client = Arc::clone(&self.client);
        let name = id.name.clone();
        let version = id.version.clone().unwrap_or_default();
        let parameters = KeyOperationParameters {
            algorithm: Some(algorithm),
            value: Some(request.ciphertext.clone()),
            ..Default::default()
        };
        let result = self
            .call(span, async move {
                client
                    .unwrap_key(&name, &version, parameters.try_into()?, None)
                    .await?
                    .into_model()
            })
            .map_err(|e| {
                if let Outcome::Failed(azure) = &e
                    && let ErrorKind::HttpResponse {
                        status, error_code, ..
                    } = azure.kind()
                    && u16::from(*status) == 400
                {
                    return refused(format!(
                        "Azure Key Vault key {} answered {} (HTTP 400): {}",
                        request.key_id,
                        error_code.as_deref().unwrap_or("BadRequest"),
                        clip(&azure.to_string())
                    ));
                }
                self.error(e)
            })?;
        let plaintext = result.result.ok_or_else(|| self.malformed("a result"))?;
        Ok(Zeroizing::new(plaintext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let parsed = |e: &str| parse_endpoint(e).ok();
        assert_eq!(
            parsed("azure-keyvault://myvault.vault.azure.net/keys/kek"),
            Some(KeyUri {
                vault_url: "https://myvault.vault.azure.net/".to_owned(),
                name: "kek".to_owned(),
                version: None,
            })
        );
        assert_eq!(
            parsed("azure-keyvault://MyVault/keys/kek-1/0123456789abcdef0123456789abcdef"),
            Some(KeyUri {
                vault_url: "https://myvault.vault.azure.net/".to_owned(),
                name: "kek-1".to_owned(),
                version: Some("0123456789abcdef0123456789abcdef".to_owned()),
            })
        );
        assert_eq!(
            parsed("azure-keyvault://myhsm.managedhsm.azure.net:8443/keys/k").map(|k| k.vault_url),
            Some("https://myhsm.managedhsm.azure.net:8443/".to_owned())
        );
        for bad in [
            "azure-keyvault://",
            "azure-keyvault://myvault.vault.azure.net",
            "azure-keyvault://myvault.vault.azure.net/keys",
            "azure-keyvault://myvault.vault.azure.net/keys/",
            "azure-keyvault://myvault.vault.azure.net/keys/kek/",
            "azure-keyvault://myvault.vault.azure.net/keys/kek/v1/x",
            "azure-keyvault://myvault.vault.azure.net/secrets/kek",
            "azure-keyvault://myvault.vault.azure.net/keys/k_e_k",
            "azure-keyvault://myvault.vault.azure.net/keys/kek/v-1",
            "azure-keyvault://myvault.vault.azure.net:0/keys/kek",
            "azure-keyvault://myvault.vault.azure.net:x/keys/kek",
            "azure-keyvault://my_vault.vault.azure.net/keys/kek",
            "azure-keyvault://-vault.vault.azure.net/keys/kek",
            "azure-keyvault://user@myvault.vault.azure.net/keys/kek",
            "azure-keyvault:///keys/kek",
            "azure-keyvault://ab/keys/kek",
            "azure-keyvault://1vault/keys/kek",
            "azure-keyvault://my--vault/keys/kek",
            "azure-keyvault://myvault.vault.azure.net/keys/kek?api-version=7.5",
            "https://myvault.vault.azure.net/keys/kek",
        ] {
            let err = parse_endpoint(bad).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(
                    |m| m.contains("is invalid") && m.contains("azure-keyvault://<vault host>")
                ),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let options = AzureKeyVaultOptions::default().static_token("s3cr3t-token");
        let shown = format!(
            "{options:?} {:?}",
            StaticTokenCredential::new("s3cr3t-token")
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("credential: Some(\"set\")"), "{shown}");
    }

    #[test]
    fn algorithms_follow_the_key_type() {
        assert_eq!(
            algorithm_for(&KeyType::Rsa),
            Some(EncryptionAlgorithm::RsaOaep256)
        );
        assert_eq!(
            algorithm_for(&KeyType::RsaHsm),
            Some(EncryptionAlgorithm::RsaOaep256)
        );
        assert_eq!(
            algorithm_for(&KeyType::OctHsm),
            Some(EncryptionAlgorithm::A256Kw)
        );
        assert_eq!(algorithm_for(&KeyType::Ec), None);
        assert_eq!(
            bare_key_id("https://v.vault.azure.net/keys/k/1?api-version=7.5"),
            "https://v.vault.azure.net/keys/k/1"
        );
    }
}
