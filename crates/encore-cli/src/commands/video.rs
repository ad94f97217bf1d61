//! `encore video`: the video stage alone (Creatomate), from an audio URL.

use clap::Args;
use encore_pipeline::VideoInput;
use encore_pipeline::captions;

use crate::args::{ConfigArgs, TargetArgs, non_blank, positive_seconds};
use crate::commands::stage;
use crate::error::CliError;
use crate::interrupt::interruptible;
use crate::keys::Needs;
use crate::setup::Setup;

/// `encore video`
#[derive(Debug, Args, Clone)]
pub struct VideoArgs {
    /// The song's audio URL.
    #[arg(long, value_parser = non_blank)]
    pub audio_url: String,
    /// The title shown in the video.
    #[arg(long, value_parser = non_blank)]
    pub title: String,
    /// Caption text (one line per caption, spread over --duration seconds).
    #[arg(long)]
    pub captions: Option<String>,
    /// The song's length in seconds (for spreading the captions).
    #[arg(long, default_value_t = 120.0, value_parser = positive_seconds)]
    pub duration: f64,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Renders the video and prints where it is.
pub async fn run(args: VideoArgs) -> Result<(), CliError> {
    let setup = Setup::prepare(&args.config, &args.target, Needs::VIDEO)?;
    let input = VideoInput {
        audio_url: args.audio_url.clone(),
        title: args.title.clone(),
        captions: args
            .captions
            .as_deref()
            .map(|text| captions::spread(text, args.duration))
            .unwrap_or_default(),
        metadata: None,
    };
    let pipeline = stage::pipeline(&setup);
    let result = interruptible(pipeline.video(&input)).await?;
    stage::finish(result, args.config.json, |video| {
        format!("render: {}\nvideo:  {}\n", video.render_id, video.url)
    })
}
