//! `encore lyrics`: the lyrics stage alone (OpenAI).

use clap::Args;

use crate::args::{BusinessArgs, ConfigArgs, TargetArgs};
use crate::commands::stage;
use crate::error::CliError;
use crate::interrupt::interruptible;
use crate::keys::Needs;
use crate::setup::Setup;

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

/// Writes lyrics for the business and prints them.
pub async fn run(args: LyricsArgs) -> Result<(), CliError> {
    let input = args.business.input()?;
    let setup = Setup::prepare(&args.config, &args.target, Needs::LYRICS)?;
    let pipeline = stage::pipeline(&setup);
    let result = interruptible(pipeline.lyrics(&input)).await?;
    stage::finish(result, args.config.json, |lyrics| {
        format!(
            "title: {}\nstyle: {}\n\n{}\n",
            lyrics.title, lyrics.style, lyrics.lyrics
        )
    })
}
