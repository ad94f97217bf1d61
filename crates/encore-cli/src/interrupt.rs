//! Ctrl-C: a command stops with exit 130, and says that jobs the services accepted keep
//! running there.

use std::pin::Pin;
use std::task::Poll;

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
