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

use crate::Error;

/// Why [`RuntimeThread::run`] returned no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunError {
    /// No answer within the wait.
    TimedOut,
    /// The runtime thread has stopped (it panicked or was shut down).
    Stopped,
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
