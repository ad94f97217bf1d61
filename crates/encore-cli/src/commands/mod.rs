//! One module per command; each has its arguments and a `run` that returns what went wrong,
//! if anything.

pub mod config;
pub mod demo;
pub mod lyrics;
pub mod run;
pub mod sim;
pub mod song;
mod stage;
pub mod video;

use std::pin::Pin;
use std::task::Poll;

use crate::cli::Command;
use crate::error::CliError;

/// Runs `command`.
pub async fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        // The pipeline futures are large (tens of KiB); keep them on the heap.
        Command::Demo(args) => Box::pin(demo::run(args)).await,
        Command::Run(args) => Box::pin(run::run(args)).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Config { action } => config::run(action),
        Command::Lyrics(args) => Box::pin(lyrics::run(args)).await,
        Command::Song(args) => Box::pin(song::run(args)).await,
        Command::Video(args) => Box::pin(video::run(args)).await,
    }
}

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
