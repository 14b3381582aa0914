//! The AWS KMS key service: `aws-kms://arn:aws:kms:<region>:<account>:key/<id>` (or
//! `…:alias/<name>`) endpoints, through `aws-sdk-kms`.
//!
//! The KMS v2 contract maps onto AWS KMS as follows:
//!
//! | KMS v2 | AWS KMS | notes |
//! |---|---|---|
//! | `status` | `DescribeKey(KeyId = configured ARN)` | `healthz` is `"ok"` when the key is `Enabled` and usable for `ENCRYPT_DECRYPT`, otherwise a description such as `key state Disabled`; `key_id` is the key's ARN (`KeyMetadata.Arn`) |
//! | `encrypt` | `Encrypt(KeyId = configured ARN, Plaintext = seed)` | `key_id` is the `KeyId` AWS reports (the key's ARN), no annotations |
//! | `decrypt` | `Decrypt(CiphertextBlob, KeyId = stored key id)` | |
//!
//! **Rotation.** With AWS automatic key rotation (or `RotateKeyOnDemand`) the key's ARN stays the
//! same: AWS keeps every backing key and picks the right one for each ciphertext, so the envelope
//! layer sees no key id change, does not make a new seed, and old values read on without being
//! reported stale; this matches `kubernetes-sigs/aws-encryption-provider`, which also reports the
//! key ARN. To move to a *new* key, configure an alias ARN (`…:alias/<name>`) and re-point the alias
//! (`UpdateAlias`): `status` then reports the new key's ARN, the envelope layer wraps a new seed
//! under it, and values written under the old key read as stale (the old key must stay enabled
//! until they are re-encrypted), or change the endpoint to the new key's ARN.
//!
//! **Configuration.** The region comes from the ARN. Credentials, and an endpoint override, come
//! from the standard AWS sources as `aws-config` loads them: `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, `AWS_PROFILE` and the shared config and
//! credentials files (including `credential_process`), web identity (EKS IRSA, EKS Pod Identity),
//! ECS and EC2 instance metadata; `AWS_ENDPOINT_URL_KMS` or `AWS_ENDPOINT_URL` (or `endpoint_url`
//! in the profile) override the endpoint. [`AwsKmsOptions`] overrides both in code (tests).
//! SSO profiles are not supported (the `sso` feature of `aws-config` is off to keep the build
//! small): use `credential_process` or exported credentials instead.
//!
//! **Timeout.** The provider's `timeout` is the operation timeout of every call, retries (the
//! SDK's standard retry policy) and credential resolution included, and the connect timeout.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use encrypted_core::kms::aws::AwsKmsOptions;
//! use encrypted_core::kms::{KeyServiceRegistry, KmsOptions};
//! // Defaults come from the environment; override the endpoint and credentials for a test server.
//! let registry = KeyServiceRegistry::default()
//!     .aws(AwsKmsOptions::default()
//!         .endpoint_url("http://127.0.0.1:5055")
//!         .static_credentials("test", "test"))
//!     .options(KmsOptions::default());
//! let keyring = encrypted_core::Keyring::builder()
//!     .kms(registry.factory())
//!     .build(&encrypted_core::EncryptionConfiguration::from_yaml(
//!         "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
//!          - resources: [secrets]\n  providers:\n  - kms:\n      apiVersion: v2\n      name: aws\n      \
//!          endpoint: aws-kms://arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\n",
//!     )?)?;
//! # let _ = keyring;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{Credentials, Region};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, KeyUsageType};
use zeroize::Zeroizing;

use super::runtime::{
    Outcome, REPORT_SLACK, RunError, RuntimeThread, clip, error_chain, run_error,
};
use super::{DecryptRequest, EncryptResponse, KeyService, KeyServiceConstructor, KmsError, Status};
use crate::Error;
use crate::config::KmsConfig;

/// The scheme of AWS KMS endpoints.
pub const SCHEME: &str = "aws-kms://";

/// The accepted endpoint forms, for error messages.
const EXPECTED: &str = "aws-kms://arn:<partition>:kms:<region>:<12-digit account>:key/<key id> \
                        or aws-kms://arn:<partition>:kms:<region>:<account>:alias/<alias name>";

/// Overrides of what `aws-config` loads from the environment, for every `aws-kms://` provider
/// of a registry ([`super::KeyServiceRegistry::aws`]). The default overrides nothing.
///
/// Its `Debug` shows the endpoint and the access key id, never the secret.
#[derive(Clone, Default)]
pub struct AwsKmsOptions {
    endpoint_url: Option<String>,
    credentials: Option<Credentials>,
}

impl fmt::Debug for AwsKmsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsOptions")
            .field("endpoint_url", &self.endpoint_url)
            .field(
                "credentials",
                &self.credentials.as_ref().map(Credentials::access_key_id),
            )
            .finish()
    }
}

impl AwsKmsOptions {
    /// Calls this URL instead of the regional AWS KMS endpoint (an AWS-compatible server such as
    /// moto or LocalStack, a VPC endpoint); wins over `AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL`.
    #[must_use]
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Uses these long-term credentials instead of the default credential chain.
    #[must_use]
    pub fn static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "encrypted-core",
        ));
        self
    }

    /// Uses these credentials (static, or with a session token and expiry) instead of the default
    /// credential chain.
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// The constructor to register for [`SCHEME`] with
    /// [`KeyServiceRegistry::register`](super::KeyServiceRegistry::register).
    #[must_use]
    pub fn constructor(self) -> KeyServiceConstructor {
        Arc::new(move |config: &KmsConfig| {
            Ok(Arc::new(AwsKmsClient::from_config(config, &self)?) as Arc<dyn KeyService>)
        })
    }
}

/// A key ARN split into what the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyArn {
    /// The whole ARN, as configured.
    pub(crate) arn: String,
    /// Its region.
    pub(crate) region: String,
}

/// Parses `aws-kms://arn:<partition>:kms:<region>:<account>:(key|alias)/<name>`.
pub(crate) fn parse_endpoint(endpoint: &str) -> Result<KeyArn, Error> {
    let invalid = KmsError::invalid_key_uri(endpoint, EXPECTED);
    let arn = endpoint
        .strip_prefix(SCHEME)
        .ok_or_else(|| invalid("it does not start with aws-kms://"))?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Err(invalid("it is not an ARN (six `:`-separated parts)"));
    };
    if prefix != "arn" {
        return Err(invalid("it does not start with arn:"));
    }
    if !partition.starts_with("aws") {
        return Err(invalid(
            "the partition is not an AWS partition (aws, aws-cn, ...)",
        ));
    }
    if service != "kms" {
        return Err(invalid("the service is not kms"));
    }
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid("the region is empty or not a region name"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the account is not 12 digits"));
    }
    let name = resource
        .strip_prefix("key/")
        .or_else(|| resource.strip_prefix("alias/"))
        .ok_or_else(|| invalid("the resource is neither key/<id> nor alias/<name>"))?;
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("the key id or alias name is empty or has blanks"));
    }
    if arn.len() > super::MAX_KEY_ID_LEN {
        return Err(invalid("it is longer than 1024 bytes"));
    }
    Ok(KeyArn {
        arn: arn.to_owned(),
        region: region.to_owned(),
    })
}

/// A [`KeyService`] backed by an AWS KMS symmetric key (`aws-kms://arn:aws:kms:...` endpoints);
/// see the [module documentation](self) for the mapping, rotation and configuration.
///
/// Every call must finish within the provider's `timeout` or fails with
/// [`KmsError::ServiceTimeout`]; an unreachable service (or no credentials) gives
/// [`KmsError::ServiceUnavailable`], an error answer [`KmsError::ServiceRejected`] (such as
/// `NotFoundException`, `DisabledException`, `AccessDeniedException`), and a ciphertext that the
/// key cannot unwrap [`KmsError::UnwrapRefused`].
///
/// Like [`super::plugin::PluginClient`] it runs a tokio runtime on a thread of its own, so its
/// methods may be called from any thread, including one that runs another tokio runtime.
pub struct AwsKmsClient {
    key: KeyArn,
    /// `AWS KMS key <arn>`, for errors.
    service: String,
    /// The SDK's operation timeout, which normally answers first; the runtime's is a backstop.
    timeout: Duration,
    client: aws_sdk_kms::Client,
    runtime: RuntimeThread,
}

impl fmt::Debug for AwsKmsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsClient")
            .field("key", &self.key.arn)
            .field("region", &self.key.region)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AwsKmsClient {
    /// A client of the key at `endpoint` (`aws-kms://arn:...`); every call times out after
    /// `timeout`. Loads the AWS configuration (credentials are resolved on the first call).
    ///
    /// # Errors
    /// [`Error::Kms`] ([`KmsError::InvalidKeyUri`]) for a malformed endpoint,
    /// [`KmsError::ServiceTimeout`] when loading the configuration takes longer than `timeout`,
    /// [`Error::Other`] when the runtime thread cannot be started.
    pub fn new(endpoint: &str, timeout: Duration, options: &AwsKmsOptions) -> Result<Self, Error> {
        let key = parse_endpoint(endpoint)?;
        let service = format!("AWS KMS key {}", key.arn);
        let runtime = RuntimeThread::start("kms-aws-client", "AWS KMS client")?;
        let region = Region::new(key.region.clone());
        let options = options.clone();
        let load = async move {
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .region(region)
                .timeout_config(
                    TimeoutConfig::builder()
                        .operation_timeout(timeout)
                        .connect_timeout(timeout)
                        .build(),
                );
            if let Some(credentials) = options.credentials {
                loader = loader.credentials_provider(credentials);
            }
            let shared = loader.load().await;
            let mut config = aws_sdk_kms::config::Builder::from(&shared);
            if let Some(url) = options.endpoint_url {
                config = config.endpoint_url(url);
            }
            aws_sdk_kms::Client::from_conf(config.build())
        };
        let client = runtime
            .run(load, timeout + REPORT_SLACK)
            .map_err(|e| run_error(&service, timeout, e))?;
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
    pub fn from_config(config: &KmsConfig, options: &AwsKmsOptions) -> Result<Self, Error> {
        Self::new(&config.endpoint, config.timeout, options)
    }

    /// The configured key ARN (a key or an alias ARN).
    #[must_use]
    pub fn key_arn(&self) -> &str {
        &self.key.arn
    }

    /// The region the key is in (from its ARN).
    #[must_use]
    pub fn region(&self) -> &str {
        &self.key.region
    }

    /// The timeout of each call.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A failed call as a typed error.
    fn error<E>(&self, e: CallError<E>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let e = match e.into_failure(&self.service, self.timeout) {
            Ok(e) => *e,
            Err(e) => return e,
        };
        let unavailable = |reason: String| -> Error {
            KmsError::ServiceUnavailable {
                service: self.service.clone(),
                reason,
            }
            .into()
        };
        match &e {
            SdkError::TimeoutError(_) => self.timeout_error(),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => self.timeout_error(),
            SdkError::ServiceError(service_error) => {
                let err = service_error.err();
                KmsError::ServiceRejected {
                    service: self.service.clone(),
                    code: err.code().unwrap_or("unknown error code").to_owned(),
                    message: clip(err.message().unwrap_or_default()),
                }
                .into()
            }
            SdkError::DispatchFailure(_) => unavailable(error_chain(&e)),
            SdkError::ConstructionFailure(_) => unavailable(format!(
                "the request could not be made: {}",
                error_chain(&e)
            )),
            _ => unavailable(error_chain(&e)),
        }
    }

    fn timeout_error(&self) -> Error {
        run_error(&self.service, self.timeout, RunError::TimedOut)
    }
}

/// The HTTP response type of the SDK's errors.
type HttpResponse = aws_sdk_kms::config::http::HttpResponse;

/// Why a call returned no answer.
type CallError<E> = Outcome<SdkError<E, HttpResponse>>;

impl KeyService for AwsKmsClient {
    fn status(&self) -> Result<Status, Error> {
        let span = tracing::debug_span!("aws_kms.describe_key", key = %self.key.arn);
        let request = self.client.describe_key().key_id(&self.key.arn).send();
        let output = self
            .runtime
            .call(span, self.timeout, request)
            .map_err(|e| self.error(e))?;
        let Some(metadata) = output.key_metadata else {
            return Err(KmsError::ServiceUnavailable {
                service: self.service.clone(),
                reason: "DescribeKey returned no KeyMetadata".to_owned(),
            }
            .into());
        };
        let state = metadata.key_state.as_ref();
        let healthz = if !metadata.enabled || state.is_some_and(|s| *s != KeyState::Enabled) {
            match state {
                Some(state) => format!("key state {}", state.as_str()),
                None => "key disabled".to_owned(),
            }
        } else if metadata
            .key_usage
            .as_ref()
            .is_some_and(|usage| *usage != KeyUsageType::EncryptDecrypt)
        {
            format!(
                "key usage {} (expected ENCRYPT_DECRYPT)",
                metadata.key_usage.as_ref().map_or("", KeyUsageType::as_str)
            )
        } else {
            "ok".to_owned()
        };
        // The key's ARN, also when an alias ARN is configured: it is what Encrypt reports.
        let key_id = metadata.arn.unwrap_or(metadata.key_id);
        Ok(Status::new("v2", healthz, key_id))
    }

    fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        let span = tracing::info_span!("aws_kms.encrypt", key = %self.key.arn, %uid);
        let request = self
            .client
            .encrypt()
            .key_id(&self.key.arn)
            .plaintext(Blob::new(plaintext.to_vec()))
            .send();
        let output = self
            .runtime
            .call(span, self.timeout, request)
            .map_err(|e| self.error(e))?;
        let (Some(ciphertext), Some(key_id)) = (output.ciphertext_blob, output.key_id) else {
            return Err(KmsError::ServiceUnavailable {
                service: self.service.clone(),
                reason: "Encrypt returned no CiphertextBlob or KeyId".to_owned(),
            }
            .into());
        };
        Ok(EncryptResponse::new(
            ciphertext.into_inner(),
            key_id,
            std::collections::BTreeMap::new(),
        ))
    }

    fn decrypt(&self, uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        let span = tracing::info_span!("aws_kms.decrypt", key = %request.key_id, %uid);
        let call = self
            .client
            .decrypt()
            .key_id(&request.key_id)
            .ciphertext_blob(Blob::new(request.ciphertext.clone()))
            .send();
        let output = self.runtime.call(span, self.timeout, call).map_err(|e| {
            if let Outcome::Failed(sdk) = &e
                && let SdkError::ServiceError(service_error) = &**sdk
            {
                let code = service_error.err().code().unwrap_or_default();
                if matches!(code, "InvalidCiphertextException" | "IncorrectKeyException") {
                    return KmsError::UnwrapRefused {
                        reason: format!(
                            "AWS KMS key {} answered {code}: {}",
                            request.key_id,
                            clip(service_error.err().message().unwrap_or_default())
                        ),
                    }
                    .into();
                }
            }
            self.error(e)
        })?;
        let Some(plaintext) = output.plaintext else {
            return Err(KmsError::ServiceUnavailable {
                service: self.service.clone(),
                reason: "Decrypt returned no Plaintext".to_owned(),
            }
            .into());
        };
        Ok(Zeroizing::new(plaintext.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(
            parse_endpoint(&format!("aws-kms://{key}")).ok(),
            Some(KeyArn {
                arn: key.to_owned(),
                region: "eu-west-1".to_owned()
            })
        );
        let alias = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/obot";
        assert_eq!(
            parse_endpoint(&format!("aws-kms://{alias}"))
                .ok()
                .map(|k| k.region),
            Some("us-gov-west-1".to_owned())
        );
        for bad in [
            "aws-kms://",
            "aws-kms://1234abcd-12ab-34cd-56ef-1234567890ab",
            "aws-kms://arn:aws:kms:us-east-1:123456789012",
            "aws-kms://arn:aws:s3:us-east-1:123456789012:key/x",
            "aws-kms://arn:aws:kms::123456789012:key/x",
            "aws-kms://arn:aws:kms:us-east-1:1234:key/x",
            "aws-kms://arn:aws:kms:us-east-1:123456789012:key/",
            "aws-kms://arn:aws:kms:us-east-1:123456789012:keys/x",
            "arn:aws:kms:us-east-1:123456789012:key/x",
        ] {
            let err = parse_endpoint(bad).err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|m| m.contains("is invalid") && m.contains("aws-kms://arn:")),
                "{bad}: {err:?}"
            );
        }
    }
}
