//! One module per command; each has its arguments and a `run` that returns what went wrong,
//! if anything.

pub mod config;
pub mod demo;
pub mod jobs;
pub mod lyrics;
pub mod run;
pub mod serve;
pub mod sim;
pub mod song;
mod stage;
pub mod video;

use crate::cli::Command;
use crate::error::CliError;

/// Runs `command`.
pub async fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        // The pipeline futures are large (tens of KiB); keep them on the heap.
        Command::Demo(args) => Box::pin(demo::run(args)).await,
        Command::Run(args) => Box::pin(run::run(args)).await,
        Command::Serve(args) => Box::pin(serve::run(args)).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Jobs { action } => jobs::run(action).await,
        Command::Config { action } => config::run(action),
        Command::Lyrics(args) => Box::pin(lyrics::run(args)).await,
        Command::Song(args) => Box::pin(song::run(args)).await,
        Command::Video(args) => Box::pin(video::run(args)).await,
    }
}
