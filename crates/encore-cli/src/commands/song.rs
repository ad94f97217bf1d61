//! `encore song`: the song stage alone (Suno: generate, poll, timestamps), from lyrics.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use encore_pipeline::Lyrics;
use encore_pipeline::lyrics::{SunoLimits, fit_to_limits};

use crate::args::{ConfigArgs, TargetArgs, non_blank};
use crate::commands::stage;
use crate::error::CliError;
use crate::interrupt::interruptible;
use crate::keys::Needs;
use crate::setup::Setup;

/// `encore song`
#[derive(Debug, Args, Clone)]
pub struct SongArgs {
    /// The song's title.
    #[arg(long, value_parser = non_blank)]
    pub title: String,
    /// Style tags.
    #[arg(long, value_parser = non_blank)]
    pub style: String,
    /// The lyrics (use --lyrics-file for a file).
    #[arg(
        long,
        value_parser = non_blank,
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

impl SongArgs {
    /// The lyrics from `--lyrics` or `--lyrics-file` (clap requires exactly one).
    fn lyrics_text(&self) -> Result<String, CliError> {
        let (text, source) = match (&self.lyrics, &self.lyrics_file) {
            (Some(text), _) => (text.clone(), "--lyrics".to_owned()),
            (None, Some(path)) => (
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the lyrics file {}", path.display()))
                    .map_err(CliError::bad_input)?,
                path.display().to_string(),
            ),
            (None, None) => unreachable!("clap requires --lyrics or --lyrics-file"),
        };
        if text.trim().is_empty() {
            return Err(CliError::bad_input(anyhow::anyhow!(
                "no lyrics in {source}: it is empty"
            )));
        }
        Ok(text)
    }
}

/// Makes a song from the lyrics (cut to the model's limits, with a note) and prints it.
pub async fn run(args: SongArgs) -> Result<(), CliError> {
    let mut lyrics = Lyrics {
        title: args.title.clone(),
        lyrics: args.lyrics_text()?,
        style: args.style.clone(),
    };
    let setup = Setup::prepare(&args.config, &args.target, Needs::SONG)?;
    let limits = SunoLimits::for_model(&setup.settings.clients.suno.model);
    for note in fit_to_limits(&mut lyrics, limits) {
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
    let pipeline = stage::pipeline(&setup);
    let result = interruptible(pipeline.song(&lyrics)).await?;
    stage::finish(result, args.config.json, |song| {
        format!(
            "task:   {}\naudio:  {}\ncaptions: {} lines{}\n",
            song.task_id,
            song.audio_url,
            song.captions.len(),
            if song.timed_captions {
                ""
            } else {
                " (untimed)"
            }
        )
    })
}
