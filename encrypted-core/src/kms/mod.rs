//! The `kms` provider: KMS v2 envelope encryption, byte-compatible with `k8s.io/apiserver`.
//!
//! A stored value is `k8s:enc:kms:v2:<name>:` followed by a protobuf [`EncryptedObject`]. The
//! [`KmsTransformer`] writes seed mode (`HKDF_SHA256_XNONCE_AES_GCM_SEED`) and reads seed mode and
//! `AES_GCM_KEY` objects; a [`KeyService`] wraps its seeds (the Kubernetes KMS v2 contract:
//! `status`, `encrypt`, `decrypt`).
//!
//! Build a keyring with [`factory`], which picks the key service from each provider's `endpoint`:
//!
//! | endpoint | key service |
//! |---|---|
//! | `local:///absolute/path/to/keyfile`, `local://env/VAR_NAME` | [`LocalKeyService`] (development and tests) |
//! | `unix:///path/to/socket`, `unix:///@abstract-name` | a KMS v2 plugin over gRPC (`plugin::PluginClient`), with the `kms-plugin` feature |
//! | `aws-kms://arn:aws:kms:<region>:<account>:key/<id>` (or `…:alias/<name>`) | AWS KMS (`aws::AwsKmsClient`), with the `aws` feature |
//! | `azure-keyvault://<vault>.vault.azure.net/keys/<name>[/<version>]` | Azure Key Vault or Managed HSM (`azure::AzureKeyVaultClient`), with the `azure` feature |
//! | `gcp-kms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>` | Google Cloud KMS (`gcp::GcpKmsClient`), with the `gcp` feature |
//!
//! More schemes are added with [`KeyServiceRegistry::register`].
//!
//! ```
//! use encrypted_core::{EncryptionConfiguration, Keyring, kms};
//! let dir = tempfile::tempdir()?;
//! let keyfile = dir.path().join("kek");
//! std::fs::write(&keyfile, encrypted_core::encode_base64(&[42u8; 32]))?;
//! let yaml = format!(
//!     r#"
//! apiVersion: apiserver.config.k8s.io/v1
//! kind: EncryptionConfiguration
//! resources:
//!   - resources: [users.obot.obot.ai]
//!     providers:
//!       - kms:
//!           apiVersion: v2
//!           name: dev
//!           endpoint: local://{}
//! "#,
//!     keyfile.display()
//! );
//! let config = EncryptionConfiguration::from_yaml(&yaml)?;
//! let keyring = Keyring::builder().kms(kms::factory(kms::KmsOptions::default())).build(&config)?;
//! let stored = keyring.encrypt("users.obot.obot.ai", b"alice@example.com", b"users/alice")?;
//! assert!(stored.starts_with(b"k8s:enc:kms:v2:dev:"));
//! let read = keyring.decrypt("users.obot.obot.ai", &stored, b"users/alice")?;
//! assert_eq!(read.plaintext, b"alice@example.com");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::KmsConfig;
use crate::{Error, KmsFactory, Transformer};

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
mod crypto;
mod envelope;
mod error;
#[cfg(feature = "gcp")]
pub mod gcp;
mod local;
#[cfg(feature = "kms-plugin")]
pub mod plugin;
mod proto;
#[cfg(any(
    feature = "kms-plugin",
    feature = "aws",
    feature = "azure",
    feature = "gcp"
))]
mod runtime;
mod service;

pub use envelope::{KmsHealth, KmsMetrics, KmsOptions, KmsTransformer};
pub use error::{KmsError, KmsOperation};
pub use local::LocalKeyService;
pub use proto::{
    DekSourceType, EncryptedObject, MAX_ANNOTATIONS_SIZE, MAX_DEK_SOURCE_LEN, MAX_KEY_ID_LEN,
};
pub use service::{DecryptRequest, EncryptResponse, KeyService, Status};
pub use zeroize::Zeroizing;

/// Endpoint schemes the configuration accepts whose key services later versions add.
const PLANNED_SCHEMES: &[&str] = &["unix://", "aws-kms://", "gcp-kms://", "azure-keyvault://"];

/// Builds the key service of one `kms` provider from its configuration (endpoint, timeout).
pub type KeyServiceConstructor =
    Arc<dyn Fn(&KmsConfig) -> Result<Arc<dyn KeyService>, Error> + Send + Sync>;

/// Which key service serves which endpoint scheme, and the options of the transformers built.
///
/// ```
/// use std::sync::Arc;
/// use encrypted_core::kms::{KeyService, KeyServiceRegistry, LocalKeyService};
/// // Serve `test://anything` with a fixed local key.
/// let registry = KeyServiceRegistry::default().register(
///     "test://",
///     Arc::new(|_config| {
///         Ok(Arc::new(LocalKeyService::from_key(&[9u8; 32], "test")?) as Arc<dyn KeyService>)
///     }),
/// );
/// assert!(registry.schemes().any(|s| s == "test://"));
/// let factory = registry.factory(); // for Keyring::builder().kms(factory)
/// # let _ = factory;
/// ```
#[derive(Clone)]
pub struct KeyServiceRegistry {
    schemes: Vec<(String, KeyServiceConstructor)>,
    options: KmsOptions,
    providers: KmsProviders,
}

impl fmt::Debug for KeyServiceRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyServiceRegistry")
            .field("schemes", &self.schemes().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for KeyServiceRegistry {
    /// `local://` ([`LocalKeyService`]), with the `kms-plugin` feature `unix://`
    /// (`plugin::PluginClient`), with the `aws` feature `aws-kms://` (`aws::AwsKmsClient`,
    /// configured from the environment), with the `azure` feature `azure-keyvault://`
    /// (`azure::AzureKeyVaultClient`, credential from the environment), with the `gcp` feature
    /// `gcp-kms://` (`gcp::GcpKmsClient`, with Application Default Credentials), and the default
    /// [`KmsOptions`].
    fn default() -> Self {
        let registry = Self::empty().register(
            LocalKeyService::SCHEME,
            Arc::new(|config: &KmsConfig| {
                Ok(Arc::new(LocalKeyService::from_endpoint(&config.endpoint)?)
                    as Arc<dyn KeyService>)
            }),
        );
        #[cfg(feature = "kms-plugin")]
        let registry = registry.register(
            plugin::SCHEME,
            Arc::new(|config: &KmsConfig| {
                Ok(Arc::new(plugin::PluginClient::from_config(config)?) as Arc<dyn KeyService>)
            }),
        );
        #[cfg(feature = "aws")]
        let registry = registry.aws(aws::AwsKmsOptions::default());
        #[cfg(feature = "azure")]
        let registry = registry.azure(azure::AzureKeyVaultOptions::default());
        #[cfg(feature = "gcp")]
        let registry = registry.gcp(gcp::GcpKmsOptions::default());
        registry
    }
}

impl KeyServiceRegistry {
    /// A registry that serves no scheme.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            schemes: Vec::new(),
            options: KmsOptions::default(),
            providers: KmsProviders::default(),
        }
    }

    /// Serves endpoints that start with `scheme` (such as `"unix://"`) with `constructor`,
    /// replacing an earlier registration of the same scheme.
    #[must_use]
    pub fn register(mut self, scheme: &str, constructor: KeyServiceConstructor) -> Self {
        self.schemes.retain(|(s, _)| s != scheme);
        self.schemes.push((scheme.to_owned(), constructor));
        self
    }

    /// Serves `aws-kms://` endpoints with [`aws::AwsKmsClient`], with `options` overriding
    /// what is loaded from the environment (an endpoint URL, credentials).
    #[cfg(feature = "aws")]
    #[must_use]
    pub fn aws(self, options: aws::AwsKmsOptions) -> Self {
        self.register(aws::SCHEME, options.constructor())
    }

    /// Serves `azure-keyvault://` endpoints with [`azure::AzureKeyVaultClient`], with `options`
    /// overriding the credential chosen from the environment and adding trusted root
    /// certificates.
    #[cfg(feature = "azure")]
    #[must_use]
    pub fn azure(self, options: azure::AzureKeyVaultOptions) -> Self {
        self.register(azure::SCHEME, options.constructor())
    }

    /// Serves `gcp-kms://` endpoints with [`gcp::GcpKmsClient`], with `options` overriding the
    /// Cloud KMS endpoint and Application Default Credentials.
    #[cfg(feature = "gcp")]
    #[must_use]
    pub fn gcp(self, options: gcp::GcpKmsOptions) -> Self {
        self.register(gcp::SCHEME, options.constructor())
    }

    /// The options of every transformer built.
    #[must_use]
    pub fn options(mut self, options: KmsOptions) -> Self {
        self.options = options;
        self
    }

    /// The registered schemes.
    pub fn schemes(&self) -> impl Iterator<Item = &str> {
        self.schemes.iter().map(|(s, _)| s.as_str())
    }

    /// The transformers built through this registry's factories, for metrics and health.
    #[must_use]
    pub fn providers(&self) -> KmsProviders {
        self.providers.clone()
    }

    /// The key service for a provider's endpoint.
    ///
    /// # Errors
    /// [`Error::Kms`] ([`KmsError::UnsupportedEndpoint`]) when no registered scheme matches,
    /// otherwise whatever the constructor returns.
    pub fn key_service(&self, config: &KmsConfig) -> Result<Arc<dyn KeyService>, Error> {
        let found = self
            .schemes
            .iter()
            .filter(|(scheme, _)| config.endpoint.starts_with(scheme.as_str()))
            .max_by_key(|(scheme, _)| scheme.len());
        match found {
            Some((_, constructor)) => constructor(config),
            None => {
                let mut supported: Vec<&str> = self.schemes().collect();
                supported.sort_unstable();
                let planned = PLANNED_SCHEMES
                    .iter()
                    .any(|s| config.endpoint.starts_with(s));
                let supported = if supported.is_empty() {
                    "none".to_owned()
                } else {
                    supported.join(", ")
                };
                Err(KmsError::UnsupportedEndpoint {
                    provider: config.name.clone(),
                    endpoint: config.endpoint.clone(),
                    supported: if config.endpoint.starts_with("unix://") {
                        format!("{supported}; unix:// needs encrypted-core's `kms-plugin` feature")
                    } else if config.endpoint.starts_with("aws-kms://") {
                        format!("{supported}; aws-kms:// needs encrypted-core's `aws` feature")
                    } else if config.endpoint.starts_with("azure-keyvault://") {
                        format!(
                            "{supported}; azure-keyvault:// needs encrypted-core's `azure` feature"
                        )
                    } else if config.endpoint.starts_with("gcp-kms://") {
                        format!("{supported}; gcp-kms:// needs encrypted-core's `gcp` feature")
                    } else if planned {
                        format!("{supported}; this scheme is planned but not implemented yet")
                    } else {
                        supported
                    },
                }
                .into())
            }
        }
    }

    /// The factory for [`crate::KeyringBuilder::kms`]: one [`KmsTransformer`] per `kms`
    /// provider, with the key service its endpoint names.
    #[must_use]
    pub fn factory(&self) -> KmsFactory {
        let registry = self.clone();
        Arc::new(move |config: &KmsConfig| {
            let service = registry.key_service(config)?;
            let transformer = Arc::new(KmsTransformer::new(
                &config.name,
                service,
                registry.options.clone(),
            )?);
            registry.providers.push(Arc::clone(&transformer));
            Ok(transformer as Arc<dyn Transformer>)
        })
    }
}

/// The [`KmsTransformer`]s a registry's factory has built, by provider name.
#[derive(Debug, Clone, Default)]
pub struct KmsProviders(Arc<Mutex<Vec<Arc<KmsTransformer>>>>);

impl KmsProviders {
    fn push(&self, transformer: Arc<KmsTransformer>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(transformer);
    }

    /// The most recently built transformer of provider `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Arc<KmsTransformer>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .find(|t| &*t.label().name == name)
            .cloned()
    }

    /// Every transformer built, oldest first.
    #[must_use]
    pub fn all(&self) -> Vec<Arc<KmsTransformer>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A [`KmsFactory`] serving the schemes of [`KeyServiceRegistry::default`] (`local://`, and
/// `unix://`, `aws-kms://`, `azure-keyvault://` and `gcp-kms://` when their features are on) with `options`; other schemes are
/// refused with [`KmsError::UnsupportedEndpoint`]. Use [`KeyServiceRegistry`] to add schemes or to read the
/// built transformers' metrics.
#[must_use]
pub fn factory(options: KmsOptions) -> KmsFactory {
    KeyServiceRegistry::default().options(options).factory()
}
