//! A tokio runtime on a thread of its own, for key services that are asynchronous inside but
//! serve the synchronous [`KeyService`](super::KeyService) contract.
//!
//! A call hands a future to the runtime and waits for its answer on a standard channel, so it may
//! be made from any thread, including one that is running another tokio runtime: it never calls
//! `block_on` on the caller's runtime.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;
#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
use tracing::Instrument as _;

#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
use super::KmsError;
use crate::Error;

/// Extra time the caller of [`RuntimeThread::call`] waits beyond the timeout for the runtime to
/// report it.
#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
pub(crate) const REPORT_SLACK: Duration = Duration::from_secs(1);

/// Longest service message the cloud clients keep in an error.
#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
const MAX_MESSAGE: usize = 256;

/// A service's message cut to its first [`MAX_MESSAGE`] characters, to keep in an error.
#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
pub(crate) fn clip(message: &str) -> String {
    message.chars().take(MAX_MESSAGE).collect()
}

/// Why [`RuntimeThread::run`] returned no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunError {
    /// No answer within the wait.
    TimedOut,
    /// The runtime thread has stopped (it panicked or was shut down).
    Stopped,
}

/// Why [`RuntimeThread::call`] returned no answer.
#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
pub(crate) enum Outcome<E> {
    /// The call answered with this error.
    Failed(Box<E>),
    /// No answer within the timeout.
    Timeout,
    /// The runtime thread has stopped.
    Stopped,
}

#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
impl<E> Outcome<E> {
    /// The error the call answered with; a timeout or a stopped runtime as the typed error of
    /// `service` (see [`run_error`]).
    pub(crate) fn into_failure(self, service: &str, timeout: Duration) -> Result<Box<E>, Error> {
        match self {
            Self::Failed(e) => Ok(e),
            Self::Timeout => Err(run_error(service, timeout, RunError::TimedOut)),
            Self::Stopped => Err(run_error(service, timeout, RunError::Stopped)),
        }
    }
}

/// A timeout ([`KmsError::ServiceTimeout`]) or a stopped runtime
/// ([`KmsError::ServiceUnavailable`]) of the client of `service`.
#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
pub(crate) fn run_error(service: &str, timeout: Duration, e: RunError) -> Error {
    match e {
        RunError::TimedOut => KmsError::ServiceTimeout {
            service: service.to_owned(),
            timeout,
        }
        .into(),
        RunError::Stopped => KmsError::ServiceUnavailable {
            service: service.to_owned(),
            reason: "the client's runtime has stopped".to_owned(),
        }
        .into(),
    }
}

/// A single-threaded tokio runtime running on a named thread until this value is dropped.
pub(crate) struct RuntimeThread {
    handle: tokio::runtime::Handle,
    /// Dropping it stops the runtime thread.
    _stop: oneshot::Sender<()>,
}

impl fmt::Debug for RuntimeThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeThread").finish_non_exhaustive()
    }
}

impl RuntimeThread {
    /// Starts the runtime on a thread called `name`; `what` names the client in the error.
    pub(crate) fn start(name: &str, what: &str) -> Result<Self, Error> {
        let (handle_tx, handle_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                // Runs the calls' tasks until the owner is dropped.
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            });
        let other = |e: std::io::Error| Error::Other {
            context: format!("cannot start the {what}'s runtime"),
            source: Arc::new(e),
        };
        spawned.map_err(other)?;
        let handle = handle_rx
            .recv()
            .map_err(|_| other(std::io::Error::other("the runtime thread exited")))?
            .map_err(other)?;
        Ok(Self {
            handle,
            _stop: stop,
        })
    }

    /// Runs `future` on the runtime and waits at most `wait` for its output.
    ///
    /// The future should enforce its own deadline (shorter than `wait`) so that it reports the
    /// timeout itself; after `wait` it is left to finish (or be dropped with the runtime) and
    /// [`RunError::TimedOut`] is returned.
    pub(crate) fn run<T, Fut>(&self, future: Fut, wait: Duration) -> Result<T, RunError>
    where
        T: Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        match rx.recv_timeout(wait) {
            Ok(output) => Ok(output),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(RunError::TimedOut),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(RunError::Stopped),
        }
    }

    /// Runs one client call on the runtime, in `span`, and waits for its answer: the call is cut
    /// off after `timeout` on the runtime (a backstop: the clients' own timeouts normally answer
    /// first), and the caller waits at most `timeout` and a second.
    #[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
    pub(crate) fn call<T, E, Fut>(
        &self,
        span: tracing::Span,
        timeout: Duration,
        request: Fut,
    ) -> Result<T, Outcome<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let request = async move {
            match tokio::time::timeout(timeout, request).await {
                Ok(result) => result.map_err(|e| Outcome::Failed(Box::new(e))),
                Err(_elapsed) => Err(Outcome::Timeout),
            }
        };
        match self.run(request.instrument(span), timeout + REPORT_SLACK) {
            Ok(result) => result,
            Err(RunError::TimedOut) => Err(Outcome::Timeout),
            Err(RunError::Stopped) => Err(Outcome::Stopped),
        }
    }
}

/// An error and its sources, joined by `: `.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
