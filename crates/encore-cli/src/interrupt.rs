//! Ctrl-C: a command stops with exit 130.
//!
//! Most commands stop at once and say that jobs the services accepted keep running there
//! ([`interruptible`]). `encore run` stops its job at the next safe point on the first Ctrl-C
//! and at once on the second ([`Interrupts`]).

use std::pin::Pin;
use std::task::Poll;

use anyhow::Context as _;

use crate::error::CliError;

/// Runs `work` unless Ctrl-C comes first (listened for before `work` starts): jobs the
/// services already accepted keep running there, so the error says so.
pub async fn interruptible<T>(work: impl Future<Output = T>) -> Result<T, CliError> {
    let stop = ctrl_c_from_now().await;
    tokio::select! {
        biased;
        () = stop => Err(CliError::interrupted()),
        out = work => Ok(out),
    }
}

/// Ctrl-C, listened for from now on. (`tokio::signal::ctrl_c()` only starts listening when it is
/// first polled; until then a Ctrl-C kills the process instead of stopping it cleanly.)
pub async fn ctrl_c_from_now() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let mut signal = Box::pin(tokio::signal::ctrl_c());
    match std::future::poll_fn(|cx| Poll::Ready(signal.as_mut().poll(cx))).await {
        Poll::Ready(_) => Box::pin(std::future::ready(())),
        Poll::Pending => Box::pin(async move {
            let _ = signal.await;
        }),
    }
}

/// SIGTERM or Ctrl-C (SIGINT), listened for from now on: the first asks for a graceful stop,
/// the second for an immediate one.
pub struct Terminate {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl std::fmt::Debug for Terminate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Terminate")
    }
}

/// Starts listening for SIGTERM and SIGINT.
pub fn terminate_from_now() -> Result<Terminate, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| {
        signal(kind).map_err(|e| {
            CliError::permanent(anyhow::Error::new(e).context("cannot listen for signals"))
        })
    };
    Ok(Terminate {
        terminate: listen(SignalKind::terminate())?,
        interrupt: listen(SignalKind::interrupt())?,
    })
}

impl Terminate {
    /// The first signal.
    pub async fn first(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }

    /// The next signal after the first.
    pub async fn second(mut self) {
        self.first().await;
    }
}

/// Every Ctrl-C from the moment it is made, one at a time (none is missed between two).
#[derive(Debug)]
pub struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    #[cfg(windows)]
    signal: tokio::signal::windows::CtrlC,
}

impl Interrupts {
    /// Starts listening.
    pub fn listen() -> Result<Interrupts, CliError> {
        #[cfg(unix)]
        let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
        #[cfg(windows)]
        let signal = tokio::signal::windows::ctrl_c();
        let signal = signal
            .context("cannot listen for Ctrl-C")
            .map_err(CliError::permanent)?;
        Ok(Interrupts { signal })
    }

    /// Completes at the next Ctrl-C.
    pub async fn next(&mut self) {
        if self.signal.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}
