//! The KMS v2 plugin server: any [`KeyService`] as `v2.KeyManagementService` on a Unix socket.

use std::future::Future;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic::{Request, Response};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use zeroize::Zeroizing;

use super::authority::AuthorityFix;
use super::pb::key_management_service_server::{KeyManagementService, KeyManagementServiceServer};
use super::pb::{self};
use super::{SERVICE_NAME, SocketAddress, error_chain, parse_endpoint, socket_addr};
use crate::Error;
use crate::kms::crypto::random_uid;
use crate::kms::{DecryptRequest, KeyService, KmsError};

/// How a [`PluginServer`] runs.
///
/// | option | default | meaning |
/// |---|---|---|
/// | [`grace`](Self::grace) | 5 s | after shutdown is asked, how long calls in flight may take before the server stops anyway |
/// | [`health_interval`](Self::health_interval) | 10 s | how often the gRPC health service asks the key service for its `status` |
#[derive(Debug, Clone)]
pub struct ServeOptions {
    grace: Duration,
    health_interval: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(5),
            health_interval: Duration::from_secs(10),
        }
    }
}

impl ServeOptions {
    /// After shutdown is asked, how long calls in flight may take before the server stops anyway.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How often the gRPC health service (`grpc.health.v1.Health`) refreshes its answer from the
    /// key service's `status`.
    #[must_use]
    pub fn health_interval(mut self, interval: Duration) -> Self {
        self.health_interval = interval.max(Duration::from_millis(10));
        self
    }
}

/// A KMS v2 plugin: serves a [`KeyService`] as gRPC `v2.KeyManagementService` (`Status`,
/// `Encrypt`, `Decrypt`) on a Unix socket, beside the standard gRPC health service
/// (`grpc.health.v1.Health`, serving while the key service's `status` says `ok`, for the
/// service names `""` and `v2.KeyManagementService`).
///
/// [`bind`](Self::bind) creates the socket: `unix:///path` (a stale socket file left by a plugin
/// that died is removed first; a live one is an error; the new file gets mode 0600, so only this
/// user can connect) or `unix:///@name` (a Linux abstract socket: no file, reachable by any
/// process in the same network namespace). [`serve`](Self::serve) answers until the shutdown
/// future completes, lets calls in flight finish (for at most [`ServeOptions::grace`]) and
/// removes the socket file. Key-service calls run on tokio's blocking pool, so a slow or
/// synchronous key service does not stall the others.
///
/// Any HTTP/2 `:authority` is accepted: clients built on grpc-go 1.33 send the socket path, which
/// the HTTP/2 stack under tonic refuses as a malformed authority; each connection goes through a
/// small frame-level shim that replaces such an authority with `localhost` before the request is
/// parsed (see the `authority` module's source for how, and why it cannot desynchronise HPACK).
///
/// Errors of the key service become gRPC statuses carrying the error's message (which never holds
/// key material): `INVALID_ARGUMENT` when it refuses to unwrap, `UNAVAILABLE` or
/// `DEADLINE_EXCEEDED` when it could not be reached in time, `INTERNAL` otherwise.
#[derive(Debug)]
pub struct PluginServer {
    listen: String,
    listener: std::os::unix::net::UnixListener,
    socket_file: Option<SocketFile>,
    service: Arc<dyn KeyService>,
    options: ServeOptions,
}

/// The socket file this server created; removed on drop unless another file replaced it.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl PluginServer {
    /// Creates the socket at `listen` (`unix:///path` or `unix:///@name`) for `service`.
    ///
    /// # Errors
    /// [`Error::Kms`]: [`KmsError::InvalidPluginEndpoint`] for a malformed endpoint,
    /// [`KmsError::PluginServer`] when the path exists and is not a socket, another process is
    /// serving on it, or the socket cannot be created.
    pub fn bind(
        listen: &str,
        service: Arc<dyn KeyService>,
        options: ServeOptions,
    ) -> Result<Self, Error> {
        let address = parse_endpoint(listen)?;
        let fail = |reason: String| -> Error {
            KmsError::PluginServer {
                listen: listen.to_owned(),
                reason,
            }
            .into()
        };
        let addr = socket_addr(&address).map_err(|e| fail(e.to_string()))?;
        if let SocketAddress::Path(path) = &address {
            remove_stale(path).map_err(fail)?;
        }
        let listener = std::os::unix::net::UnixListener::bind_addr(&addr)
            .map_err(|e| fail(format!("cannot bind: {e}")))?;
        let socket_file = match &address {
            SocketAddress::Path(path) => {
                let meta = std::fs::symlink_metadata(path)
                    .map_err(|e| fail(format!("cannot inspect the new socket: {e}")))?;
                let file = SocketFile {
                    path: path.clone(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                };
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| fail(format!("cannot set the socket's mode to 0600: {e}")))?;
                Some(file)
            }
            SocketAddress::Abstract(_) => None,
        };
        listener
            .set_nonblocking(true)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            listen: listen.to_owned(),
            listener,
            socket_file,
            service,
            options,
        })
    }

    /// The endpoint it listens on.
    #[must_use]
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// Answers calls until `shutdown` completes, then stops accepting, lets calls in flight
    /// finish (at most [`ServeOptions::grace`]) and removes the socket file. Must be polled on a
    /// tokio runtime with I/O and time enabled.
    ///
    /// # Errors
    /// [`Error::Kms`] ([`KmsError::PluginServer`]) when the socket cannot be used.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let Self {
            listen,
            listener,
            socket_file,
            service,
            options,
        } = self;
        let fail = |reason: String| -> Error { KmsError::PluginServer { listen, reason }.into() };
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => return Err(fail(e.to_string())),
        };
        // Every connection goes through the :authority shim (see `authority`): grpc-go 1.33
        // sends the socket path, which h2 refuses.
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            |conn| conn.map(AuthorityFix::new),
        );
        let (reporter, health_service) = tonic_health::server::health_reporter();
        // Registered before the first connection is accepted, so that a probe arriving before the
        // first status answer sees NOT_SERVING rather than "service not registered".
        for name in ["", SERVICE_NAME] {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        let health = tokio::spawn(report_health(
            reporter,
            Arc::clone(&service),
            options.health_interval,
        ));
        let (stopping, mut stop_seen) = watch::channel(false);
        let signal = async move {
            shutdown.await;
            tracing::info!("KMS plugin server is shutting down");
            let _ = stopping.send(true);
        };
        let server = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(KeyManagementServiceServer::new(Plugin { service }))
            .serve_with_incoming_shutdown(incoming, signal);
        let grace = options.grace;
        let grace_over = async move {
            if stop_seen.wait_for(|stop| *stop).await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            served = server => served.map_err(|e| fail(error_chain(&e))),
            () = grace_over => {
                tracing::warn!(?grace, "KMS plugin calls in flight did not finish in time");
                Ok(())
            }
        };
        health.abort();
        drop(socket_file);
        result
    }

    /// Serves on a tokio runtime of its own until the process receives SIGTERM or SIGINT, then
    /// shuts down gracefully. Blocks; must not be called from within a tokio runtime.
    ///
    /// # Errors
    /// As [`serve`](Self::serve); [`Error::Other`] when the runtime cannot be started.
    pub fn run(self) -> Result<(), Error> {
        let grace = self.options.grace;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("kms-plugin")
            .build()
            .map_err(|e| Error::Other {
                context: "cannot start the KMS plugin server's runtime".to_owned(),
                source: Arc::new(e),
            })?;
        let result = runtime.block_on(self.serve(shutdown_signal()));
        // Key-service calls still blocking (a hung key service) are abandoned.
        runtime.shutdown_timeout(grace);
        result
    }
}

/// Binds `listen` and serves `service` with the default [`ServeOptions`] until `shutdown`
/// completes (see [`PluginServer`]). Combine `shutdown` with [`shutdown_signal`] to stop on
/// SIGTERM and SIGINT too.
///
/// # Errors
/// As [`PluginServer::bind`] and [`PluginServer::serve`].
pub async fn serve(
    listen: &str,
    service: Arc<dyn KeyService>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    PluginServer::bind(listen, service, ServeOptions::default())?
        .serve(shutdown)
        .await
}

/// Completes when the process receives SIGTERM or SIGINT. Must be polled on a tokio runtime
/// (the handlers are installed on its first poll). If they cannot be installed it logs a warning
/// and never completes.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot install SIGTERM/SIGINT handlers");
            std::future::pending::<()>().await;
        }
    }
}

/// Removes the socket file a dead plugin left at `path`.
fn remove_stale(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt as _;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err("another process is serving on this socket".to_owned());
            }
            tracing::info!(path = %path.display(), "removing a stale KMS plugin socket");
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale socket file: {e}"))
        }
        Ok(_) => Err("the path exists and is not a socket".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot inspect the path: {e}")),
    }
}

/// Keeps the gRPC health service in step with the key service's `status`.
async fn report_health(reporter: HealthReporter, service: Arc<dyn KeyService>, every: Duration) {
    let mut last = None;
    loop {
        let svc = Arc::clone(&service);
        let healthy = matches!(
            tokio::task::spawn_blocking(move || svc.status()).await,
            Ok(Ok(status)) if status.healthz == "ok"
        );
        if last != Some(healthy) {
            let status = if healthy {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            reporter.set_service_status(SERVICE_NAME, status).await;
            last = Some(healthy);
        }
        tokio::time::sleep(every).await;
    }
}

/// The gRPC service around a key service.
#[derive(Debug)]
struct Plugin {
    service: Arc<dyn KeyService>,
}

impl Plugin {
    /// Runs a key-service call on the blocking pool.
    async fn call<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn KeyService) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, tonic::Status> {
        let service = Arc::clone(&self.service);
        match tokio::task::spawn_blocking(move || call(&*service)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "key service call failed");
                Err(to_status(&e))
            }
            Err(_) => Err(tonic::Status::internal("the key service call panicked")),
        }
    }
}

/// An error of the key service as a gRPC status (its message holds no key material).
fn to_status(e: &Error) -> tonic::Status {
    let code = match e {
        Error::Kms(KmsError::UnwrapRefused { .. }) => tonic::Code::InvalidArgument,
        Error::Kms(KmsError::PluginUnavailable { .. }) => tonic::Code::Unavailable,
        Error::Kms(KmsError::PluginTimeout { .. }) => tonic::Code::DeadlineExceeded,
        _ => tonic::Code::Internal,
    };
    tonic::Status::new(code, e.to_string())
}

/// The request's uid, or a new one when the client sent none.
fn uid_or_new(uid: String) -> String {
    if uid.is_empty() { random_uid() } else { uid }
}

#[tonic::async_trait]
impl KeyManagementService for Plugin {
    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, tonic::Status> {
        let status = self.call(|service| service.status()).await?;
        Ok(Response::new(pb::StatusResponse {
            version: status.version,
            healthz: status.healthz,
            key_id: status.key_id,
        }))
    }

    async fn decrypt(
        &self,
        request: Request<pb::DecryptRequest>,
    ) -> Result<Response<pb::DecryptResponse>, tonic::Status> {
        let pb::DecryptRequest {
            ciphertext,
            uid,
            key_id,
            annotations,
        } = request.into_inner();
        let uid = uid_or_new(uid);
        tracing::debug!(%uid, %key_id, "KMS plugin Decrypt");
        let request = DecryptRequest::new(ciphertext, key_id, annotations.into_iter().collect());
        let mut plaintext = self
            .call(move |service| service.decrypt(&uid, &request))
            .await?;
        Ok(Response::new(pb::DecryptResponse {
            plaintext: std::mem::take(&mut *plaintext),
        }))
    }

    async fn encrypt(
        &self,
        request: Request<pb::EncryptRequest>,
    ) -> Result<Response<pb::EncryptResponse>, tonic::Status> {
        let pb::EncryptRequest { plaintext, uid } = request.into_inner();
        let plaintext = Zeroizing::new(plaintext);
        let uid = uid_or_new(uid);
        tracing::debug!(%uid, "KMS plugin Encrypt");
        let response = self
            .call(move |service| service.encrypt(&uid, &plaintext))
            .await?;
        Ok(Response::new(pb::EncryptResponse {
            ciphertext: response.ciphertext,
            key_id: response.key_id,
            annotations: response.annotations.into_iter().collect(),
        }))
    }
}

/// The handlers a connection reaches, for the fuzz entry `super::fuzzing::plugin_call` (which
/// calls them without a network).
pub(super) fn handlers(service: Arc<dyn KeyService>) -> impl KeyManagementService {
    Plugin { service }
}
