//! `encore jobs resolve JOB --adopt EXTERNAL_ID | --resubmit --i-accept-paying-twice`: an
//! operator's resolution of a billed step whose outcome is unknown, through
//! [`Store::resolve`](encore_store::Store::resolve). The job is queued again; `encore run
//! --resume JOB` continues it (an `encore serve` worker, for a job of the API).

use anyhow::anyhow;
use clap::builder::PossibleValuesParser;
use clap::{ArgGroup, Args};
use encore_pipeline::job::now_millis;
use encore_pipeline::{StepName, StepState};
use encore_store::{JobDetail, JobId, Origin, Resolution};

use super::{JobsArgs, read};
use crate::args::{job_id, non_blank};
use crate::error::CliError;
use crate::json::JobDetailJson;
use crate::output;

/// `encore jobs resolve`
#[derive(Debug, Args, Clone)]
#[command(group(ArgGroup::new("resolution").required(true).args(["adopt", "resubmit"])))]
pub struct ResolveArgs {
    /// The job's id.
    #[arg(value_name = "JOB", value_parser = job_id)]
    pub job: JobId,
    /// The provider's id of what the lost request created (the Suno task id or Creatomate
    /// render id, found on its dashboard): the step is done with it, nothing is paid again.
    #[arg(long, value_name = "EXTERNAL_ID", value_parser = non_blank)]
    pub adopt: Option<String>,
    /// Send the billed request again: if the lost one ran, this pays twice. Needs
    /// --i-accept-paying-twice.
    #[arg(long)]
    pub resubmit: bool,
    /// Confirms --resubmit.
    #[arg(long)]
    pub i_accept_paying_twice: bool,
    /// The billed step to resolve (default: the job's one billed step whose outcome is
    /// unknown).
    #[arg(long, value_parser = PossibleValuesParser::new([StepName::SongSubmit.as_str(), StepName::VideoSubmit.as_str()]))]
    pub step: Option<String>,
    #[command(flatten)]
    pub jobs: JobsArgs,
}

/// Resolves the step and prints the job as it is now.
pub async fn run(args: ResolveArgs) -> Result<(), CliError> {
    if args.resubmit && !args.i_accept_paying_twice {
        return Err(CliError::bad_input(anyhow!(
            "--resubmit sends the billed request again: if the lost one ran, it is paid twice; check the provider's dashboard, then adopt what it created (--adopt ID) or confirm with --i-accept-paying-twice (nothing was changed)"
        )));
    }
    if args.i_accept_paying_twice && !args.resubmit {
        return Err(CliError::bad_input(anyhow!(
            "--i-accept-paying-twice confirms --resubmit, which was not given (nothing was changed)"
        )));
    }
    let store = args.jobs.open().await?;
    let detail = read(&store, args.job).await?;
    let step = match &args.step {
        Some(name) => name.parse().expect("clap accepts only billed step names"),
        None => unknown_step(&detail)?,
    };
    let resolution = match &args.adopt {
        Some(id) => Resolution::Adopt {
            external_id: id.trim().to_owned(),
        },
        None => Resolution::Resubmit {
            accept_paying_twice: true,
        },
    };
    let detail = store.resolve(args.job, step, &resolution).await?;
    if args.jobs.config.json {
        return output::json(&JobDetailJson::new(&detail, now_millis()));
    }
    let id = args.job;
    let done = match &resolution {
        Resolution::Adopt { external_id } => format!("{step} adopted {external_id}"),
        Resolution::Resubmit { .. } => {
            format!("{step} will be sent again (paying twice accepted)")
        }
    };
    let next = match detail.job.origin {
        Origin::Cli => format!("continue it with `encore run --resume {id}`"),
        Origin::Api => "an encore serve worker continues it".to_owned(),
    };
    output::text(&format!(
        "job {id}: {done}; the job is {}: {next}\n",
        detail.job.status
    ))
}

/// The job's billed step whose outcome is unknown (or in flight under no live lease: its
/// runner stopped), when there is exactly one.
fn unknown_step(detail: &JobDetail) -> Result<StepName, CliError> {
    let now = now_millis();
    let runner_stopped = !detail.job.is_leased_at(now);
    let unknown: Vec<StepName> = detail
        .steps
        .iter()
        .filter(|s| s.name.is_billed())
        .filter(|s| {
            s.state == StepState::Unknown || (s.state == StepState::InFlight && runner_stopped)
        })
        .map(|s| s.name)
        .collect();
    match unknown.as_slice() {
        [step] => Ok(*step),
        [] => {
            let states: Vec<String> = [StepName::SongSubmit, StepName::VideoSubmit]
                .into_iter()
                .map(|name| {
                    let state = detail
                        .steps
                        .iter()
                        .find(|s| s.name == name)
                        .map_or("not started", |s| s.state.as_str());
                    format!("{name} is {state}")
                })
                .collect();
            Err(CliError::permanent(anyhow!(
                "job {}: no billed step's outcome is unknown ({}): nothing to resolve",
                detail.job.id,
                states.join(", ")
            )))
        }
        _ => Err(CliError::bad_input(anyhow!(
            "job {}: both song.submit and video.submit are unknown: name one with --step",
            detail.job.id
        ))),
    }
}
