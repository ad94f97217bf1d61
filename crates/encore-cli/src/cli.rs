//! The command line: `encore <command> [options]`.

use clap::{Parser, Subcommand};

use crate::commands::{config, demo, jobs, lyrics, run, serve, sim, song, video};

/// encore: describe a business, get a music video (OpenAI lyrics → Suno song → Creatomate video),
/// with every call bounded, retried where safe, and reported.
#[derive(Debug, Parser)]
#[command(name = "encore", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// How this command writes its log lines (`encore serve --log-format`; text otherwise).
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Serve(args) => args.log_format,
            _ => LogFormat::Text,
        }
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline against the embedded simulator (no keys, no network).
    Demo(demo::DemoArgs),
    /// Run the whole pipeline against the real services (keys from the environment), as a job
    /// journaled in the job store, or continue one (--resume JOB).
    Run(run::RunArgs),
    /// Serve the pipeline as an HTTP service: jobs API, provider callbacks, a worker.
    Serve(serve::ServeArgs),
    /// List, show or resolve the jobs of the job store.
    Jobs {
        /// list | show | resolve
        #[command(subcommand)]
        action: jobs::JobsAction,
    },
    /// Serve the simulator of the three APIs on loopback until interrupted.
    Sim(sim::SimArgs),
    /// Show or check the effective configuration.
    Config {
        /// show | check
        #[command(subcommand)]
        action: config::ConfigAction,
    },
    /// Run the lyrics stage alone.
    Lyrics(lyrics::LyricsArgs),
    /// Run the song stage alone (Suno), from lyrics.
    Song(song::SongArgs),
    /// Run the video stage alone (Creatomate), from an audio URL.
    Video(video::VideoArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
