//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// encore: describe a business, get a music video (OpenAI lyrics → Suno song → Creatomate video),
/// with every call bounded, retried where safe, and reported.
#[derive(Debug, Parser)]
#[command(name = "encore", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline against the embedded simulator (no keys, no network).
    Demo(DemoArgs),
    /// Run the whole pipeline against the real services (keys from the environment).
    Run(RunArgs),
    /// Serve the simulator of the three APIs on loopback until interrupted.
    Sim(SimArgs),
    /// Show or check the effective configuration.
    Config {
        /// show | check
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Run the lyrics stage alone.
    Lyrics(LyricsArgs),
    /// Run the song stage alone (Suno), from lyrics.
    Song(SongArgs),
    /// Run the video stage alone (Creatomate), from an audio URL.
    Video(VideoArgs),
}

/// `encore config …`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective per-endpoint policy table.
    Show(ConfigArgs),
    /// Validate the configuration (file and ENCORE_* variables) and exit.
    Check(ConfigArgs),
}

/// Options shared by the commands that read configuration.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (default: ./encore.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The business the video is for.
#[derive(Debug, Args, Clone)]
pub struct BusinessArgs {
    /// What the business is and does.
    #[arg(long, value_name = "TEXT")]
    pub business: String,
    /// The business's name.
    #[arg(long)]
    pub name: String,
    /// Where it is.
    #[arg(long)]
    pub region: Option<String>,
    /// Mood or genre hints.
    #[arg(long)]
    pub mood: Option<String>,
    /// Language of the lyrics: ko or en.
    #[arg(long, default_value = "ko")]
    pub lang: String,
}

/// Where the services are.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Send all three services' calls to a simulator at this base URL (e.g. one started with
    /// `encore sim`), instead of the base URLs in the configuration.
    #[arg(long, value_name = "URL")]
    pub sim: Option<String>,
}

/// `encore demo`
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Fault scenario: calm, flaky, outage or hostile.
    #[arg(long, default_value = "flaky")]
    pub scenario: String,
    /// Seed for the simulator's ids, texts and fault draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated job durations relative to the real services (0.01: a 2.5 min song takes 1.5 s).
    #[arg(long, default_value_t = 0.01)]
    pub time_scale: f64,
    /// Run this many pipelines at once against the one simulator.
    #[arg(long, default_value_t = 1)]
    pub pipelines: u32,
    /// Business name (default: a Seoul bakery).
    #[arg(long)]
    pub name: Option<String>,
    /// Business description.
    #[arg(long, value_name = "TEXT")]
    pub business: Option<String>,
    /// Language of the lyrics: ko or en.
    #[arg(long, default_value = "ko")]
    pub lang: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `encore run`
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub business: BusinessArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `encore sim`
#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Fault scenario: calm, flaky, outage or hostile.
    #[arg(long, default_value = "calm")]
    pub scenario: String,
    /// A scenario file (TOML) instead of a named scenario.
    #[arg(long, value_name = "FILE", conflicts_with = "scenario")]
    pub scenario_file: Option<PathBuf>,
    /// Seed for ids, texts and fault draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated job durations relative to the real services.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
}

/// `encore lyrics`
#[derive(Debug, Args, Clone)]
pub struct LyricsArgs {
    #[command(flatten)]
    pub business: BusinessArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `encore song`
#[derive(Debug, Args, Clone)]
pub struct SongArgs {
    /// The song's title.
    #[arg(long)]
    pub title: String,
    /// Style tags.
    #[arg(long)]
    pub style: String,
    /// The lyrics (use --lyrics-file for a file).
    #[arg(
        long,
        conflicts_with = "lyrics_file",
        required_unless_present = "lyrics_file"
    )]
    pub lyrics: Option<String>,
    /// A file holding the lyrics.
    #[arg(long, value_name = "FILE")]
    pub lyrics_file: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `encore video`
#[derive(Debug, Args, Clone)]
pub struct VideoArgs {
    /// The song's audio URL.
    #[arg(long)]
    pub audio_url: String,
    /// The title shown in the video.
    #[arg(long)]
    pub title: String,
    /// Caption text (one line per caption, spread over --duration seconds).
    #[arg(long)]
    pub captions: Option<String>,
    /// The song's length in seconds (for spreading the captions).
    #[arg(long, default_value_t = 120.0)]
    pub duration: f64,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}
