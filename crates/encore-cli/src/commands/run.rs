//! `encore run`: the whole pipeline against the real services (or `--sim`).

use clap::Args;

use crate::args::{BusinessArgs, ConfigArgs, TargetArgs};
use crate::error::CliError;
use crate::interrupt::interruptible;
use crate::json::RunJson;
use crate::keys::Needs;
use crate::setup::Setup;
use crate::{output, progress, report};

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

/// Checks the input, keys and settings, then runs lyrics → song → video with a progress
/// display, and prints the summary (or the `--json` document).
pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let input = args.business.input()?;
    let setup = Setup::prepare(&args.config, &args.target, Needs::ALL)?;
    let pipeline = setup.pipeline();
    pipeline.preflight(&input)?;
    let pipeline = progress::attach(pipeline, String::new(), true);
    let report = interruptible(pipeline.run(&input)).await?;
    if args.config.json {
        output::json(&RunJson::new(&report))?;
    } else {
        output::text(&format!("\n{}", report::text(&report)))?;
    }
    report::into_result(report)
}
