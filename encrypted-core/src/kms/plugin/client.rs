//! The KMS v2 plugin client: a synchronous [`KeyService`] over gRPC on a Unix socket.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint, Uri};
use zeroize::Zeroizing;

use super::pb::key_management_service_client::KeyManagementServiceClient;
use super::pb::{self};
use super::{SocketAddress, error_chain, parse_endpoint};
use crate::Error;
use crate::config::KmsConfig;
use crate::kms::runtime::{RunError, RuntimeThread};
use crate::kms::{DecryptRequest, EncryptResponse, KeyService, KmsError, Status};

/// Extra time the caller waits beyond the timeout for the runtime to report it.
const REPORT_SLACK: Duration = Duration::from_secs(1);

/// A [`KeyService`] that is a KMS v2 plugin reached over a Unix socket: the endpoints
/// `unix:///absolute/path/to/socket` and, on Linux, `unix:///@name` (an abstract socket).
///
/// Each call (`Status`, `Encrypt`, `Decrypt`) must complete within the provider's `timeout`,
/// connecting included, or fails with [`KmsError::PluginTimeout`]; a plugin that cannot be
/// reached gives [`KmsError::PluginUnavailable`] and one that answers with a gRPC error
/// [`KmsError::PluginStatus`]. Nothing is connected until the first call, and a failed connection
/// is replaced by a new one on the next call, so a plugin that starts late or restarts is picked
/// up by itself.
///
/// The client runs a single-threaded tokio runtime on a thread of its own (stopped when the client
/// is dropped). A call hands its request to that runtime and waits for the answer on a channel,
/// so the methods may be called from any thread, including a thread that is running another
/// tokio runtime: it never calls `block_on` there. (It does block the calling thread for up to the
/// timeout: from async code, prefer `spawn_blocking`.)
pub struct PluginClient {
    shared: Arc<Shared>,
    /// Runs the calls; stopped when the client is dropped.
    runtime: RuntimeThread,
}

struct Shared {
    endpoint: String,
    address: SocketAddress,
    timeout: Duration,
    channel: Mutex<Option<Channel>>,
}

impl fmt::Debug for PluginClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginClient")
            .field("endpoint", &self.shared.endpoint)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

impl PluginClient {
    /// A client of the plugin at `endpoint` (`unix:///path` or `unix:///@name`); every call
    /// times out after `timeout`. Does not connect yet.
    ///
    /// # Errors
    /// [`Error::Kms`] ([`KmsError::InvalidPluginEndpoint`]) for a malformed endpoint,
    /// [`Error::Other`] when the runtime thread cannot be started.
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, Error> {
        let address = parse_endpoint(endpoint)?;
        let runtime = RuntimeThread::start("kms-plugin-client", "KMS plugin client")?;
        Ok(Self {
            shared: Arc::new(Shared {
                endpoint: endpoint.to_owned(),
                address,
                timeout,
                channel: Mutex::new(None),
            }),
            runtime,
        })
    }

    /// The client for a `kms` provider entry: its endpoint and timeout.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_config(config: &KmsConfig) -> Result<Self, Error> {
        Self::new(&config.endpoint, config.timeout)
    }

    /// The endpoint it calls.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// The timeout of each call.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// Runs one call on the client's runtime and waits for its answer (at most the timeout).
    fn call<T, F, Fut>(&self, request: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(KeyManagementServiceClient<Channel>, Duration) -> Fut + Send + 'static,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let timeout = shared.timeout;
        let answer = self.runtime.run(
            async move {
                let client = KeyManagementServiceClient::new(shared.channel()?);
                match tokio::time::timeout(timeout, request(client, timeout)).await {
                    Ok(Ok(response)) => Ok(response.into_inner()),
                    Ok(Err(status)) => Err(shared.status_error(&status)),
                    Err(_elapsed) => Err(shared.timeout_error()),
                }
            },
            timeout + REPORT_SLACK,
        );
        match answer {
            Ok(result) => result,
            Err(RunError::TimedOut) => Err(self.shared.timeout_error()),
            Err(RunError::Stopped) => Err(KmsError::PluginUnavailable {
                endpoint: self.shared.endpoint.clone(),
                reason: "the client's runtime has stopped".to_owned(),
            }
            .into()),
        }
    }
}

impl Shared {
    /// The connection, made lazily (it connects on the first call that uses it).
    fn channel(&self) -> Result<Channel, Error> {
        let mut slot = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = &*slot {
            return Ok(channel.clone());
        }
        // The URI is required by HTTP/2 but unused: the connector dials the socket.
        let endpoint = Endpoint::from_static("http://kms-plugin.invalid")
            .connect_timeout(self.timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(false);
        let address = self.address.clone();
        let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let address = address.clone();
            async move {
                let stream =
                    tokio::net::UnixStream::connect_addr(&super::socket_addr(&address)?.into())
                        .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }));
        *slot = Some(channel.clone());
        Ok(channel)
    }

    /// Forgets the connection, so the next call makes a new one.
    fn reset(&self) {
        *self.channel.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn timeout_error(&self) -> Error {
        KmsError::PluginTimeout {
            endpoint: self.endpoint.clone(),
            timeout: self.timeout,
        }
        .into()
    }

    /// A gRPC status as a typed error: transport failures (the status has a source) are
    /// "unavailable", a deadline is a timeout, anything else is the plugin's answer.
    fn status_error(&self, status: &tonic::Status) -> Error {
        if let Some(source) = std::error::Error::source(status) {
            // The client-side deadline (the `grpc-timeout` the request carries) expired.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
            while let Some(e) = cause {
                if e.is::<tonic::TimeoutExpired>() {
                    return self.timeout_error();
                }
                cause = e.source();
            }
            self.reset();
            return KmsError::PluginUnavailable {
                endpoint: self.endpoint.clone(),
                reason: error_chain(source),
            }
            .into();
        }
        match status.code() {
            tonic::Code::DeadlineExceeded => self.timeout_error(),
            code => {
                if code == tonic::Code::Unavailable {
                    self.reset();
                }
                KmsError::PluginStatus {
                    endpoint: self.endpoint.clone(),
                    code: code as i32,
                    message: status.message().chars().take(256).collect(),
                }
                .into()
            }
        }
    }
}

/// A request with the `grpc-timeout` header, so the plugin knows the deadline too.
fn with_deadline<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

impl KeyService for PluginClient {
    fn status(&self) -> Result<Status, Error> {
        let response = self.call(|mut client, timeout| async move {
            client
                .status(with_deadline(pb::StatusRequest {}, timeout))
                .await
        })?;
        Ok(Status::new(
            response.version,
            response.healthz,
            response.key_id,
        ))
    }

    fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        let message = pb::EncryptRequest {
            plaintext: plaintext.to_vec(),
            uid: uid.to_owned(),
        };
        let response = self.call(|mut client, timeout| async move {
            client.encrypt(with_deadline(message, timeout)).await
        })?;
        Ok(EncryptResponse::new(
            response.ciphertext,
            response.key_id,
            response.annotations.into_iter().collect(),
        ))
    }

    fn decrypt(&self, uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        let message = pb::DecryptRequest {
            ciphertext: request.ciphertext.clone(),
            uid: uid.to_owned(),
            key_id: request.key_id.clone(),
            annotations: request
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let response = self.call(|mut client, timeout| async move {
            client.decrypt(with_deadline(message, timeout)).await
        })?;
        Ok(Zeroizing::new(response.plaintext))
    }
}
