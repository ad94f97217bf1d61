//! `encore run`: the whole pipeline as a durable job, against the real services (or `--sim`).
//!
//! Every run is a job in the job store (`--db`, `store.path`, or `jobs.db` in the platform's
//! data directory) whose steps are journaled as they happen, so that a crash, a Ctrl-C or a
//! lost answer does not throw away what was paid for: `encore run --resume JOB` continues the
//! job from its last stored step (its input comes from the job), reading the provider's state
//! of a task or render again instead of trusting the old record. The job's id is printed when
//! it starts.
//!
//! The first Ctrl-C stops the job at its next safe point (a billed request already sent is
//! awaited and its answer stored) and queues it again; a second one exits at once. A billed
//! step whose answer was lost leaves the job `needs_attention` (exit 4), and the error names
//! the `encore jobs resolve` command that resolves it.

mod resume;
mod stop;

use clap::Args;
use encore_pipeline::{BusinessInput, JobStatus, Pipeline, Report, StepName};
use encore_service::{Ended, Finished, JobInput};
use encore_store::{Job, JobId, Lease, NewJob, Origin, Store};

use crate::args::{BusinessArgs, ConfigArgs, StoreArgs, TargetArgs, job_id};
use crate::error::CliError;
use crate::exit::Exit;
use crate::holder::Runner;
use crate::json::{RunJobJson, RunJson, StoredResult};
use crate::keys::Needs;
use crate::progress::Progress;
use crate::setup::Setup;
use crate::{output, report, store};

/// `encore run`
#[derive(Debug, Args, Clone)]
#[command(
    override_usage = "encore run --business <TEXT> --name <NAME> [OPTIONS]\n       encore run --resume <JOB> [OPTIONS]"
)]
pub struct RunArgs {
    #[command(flatten)]
    pub business: Option<BusinessArgs>,
    /// Continue job JOB from its journal: finished steps are not run again, and a task or
    /// render it created is read from the provider again. Its input comes from the job, so the
    /// business flags are refused.
    #[arg(
        long,
        value_name = "JOB",
        value_parser = job_id,
        conflicts_with = "BusinessArgs",
        required_unless_present = "BusinessArgs"
    )]
    pub resume: Option<JobId>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// A job this process holds, ready to run.
struct Claimed {
    lease: Lease,
    input: BusinessInput,
}

/// Checks the input, keys and settings, creates the job (or claims the one to resume), runs
/// lyrics → song → video with a progress display, and prints the summary (or the `--json`
/// document).
pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let fresh = match &args.business {
        Some(business) => Some(business.input()?),
        None => None,
    };
    let setup = Setup::prepare(&args.config, &args.target, Needs::ALL)?;
    let target = store::target(&args.store, &setup.settings.store)?;
    let ttl = setup.settings.store.lease_ttl;
    let me = Runner::this_process().owner();
    let progress = std::sync::Arc::new(Progress::new(""));
    let (store, claimed) = match (fresh, args.resume) {
        (Some(input), _) => {
            setup.pipeline().preflight(&input)?;
            let store = store::open(&target).await?;
            let input_json = serde_json::to_value(JobInput::from_business(&input))
                .map_err(|e| CliError::permanent(anyhow::Error::new(e)))?;
            let job = store
                .create_job(&NewJob::new(Origin::Cli, input_json))
                .await?
                .job;
            let lease = store.claim(job.id, &me, ttl).await?;
            progress.line(&format!(
                "job {} started (journal {}); if it stops, continue it with `encore run --resume {}`",
                job.id,
                store.database(),
                job.id
            ));
            (store, Claimed { lease, input })
        }
        (None, Some(id)) => {
            let store = store::open_existing(&target).await?;
            match resume::claim(&store, id, &me, ttl, &progress).await? {
                resume::Resumable::Claimed(claimed) => {
                    setup.pipeline().preflight(&claimed.input)?;
                    progress.line(&format!(
                        "job {id} resumed from its journal ({})",
                        store.database()
                    ));
                    (store, claimed)
                }
                resume::Resumable::Succeeded(job) => {
                    return succeeded_earlier(&job, args.config.json);
                }
            }
        }
        (None, None) => unreachable!("clap requires the business flags or --resume"),
    };
    let job_id = claimed.lease.job_id();
    let pipeline = setup.pipeline();
    let finished = stop::run_until_done(
        claimed.lease,
        with_progress(pipeline, &progress),
        ttl,
        &progress,
    )
    .await?;
    finish(&store, job_id, finished, args.config.json).await
}

/// `pipeline` with its events shown by `progress`.
fn with_progress(pipeline: Pipeline, progress: &std::sync::Arc<Progress>) -> Pipeline {
    let progress = progress.clone();
    pipeline.on_event(move |event| progress.event(event))
}

/// Prints how the run ended and returns the exit it earns, from the job as stored.
async fn finish(store: &Store, id: JobId, finished: Finished, json: bool) -> Result<(), CliError> {
    let Finished { report, ended } = finished;
    let job = store.get_job(id).await?.job;
    if json {
        output::json(&RunJobJson {
            job_id: id,
            job_status: job.status,
            attention: job.attention.as_ref(),
            run: RunJson::new(&report),
        })?;
    } else {
        output::text(&format!("\njob:    {id}\n{}", report::text(&report)))?;
    }
    let resume = format!("`encore run --resume {id}`");
    match ended {
        Ended::Succeeded => Ok(()),
        Ended::NeedsAttention => {
            let resolution = job.attention.as_ref().map_or_else(
                || format!("resolve it with `encore jobs resolve {id}`"),
                |a| a.resolution.clone(),
            );
            Err(failure(report).with_note(format!(
                "job {id} needs attention: {resolution}; then continue it with {resume}"
            )))
        }
        Ended::Interrupted => Err(CliError::new(
            Exit::Interrupted,
            anyhow::anyhow!(
                "interrupted: job {id} stopped at a safe point and is queued again; every finished step is stored"
            ),
        )
        .with_note(format!("continue it with {resume}"))),
        Ended::Requeued => Err(failure(report).with_note(format!(
            "the job store stopped answering: job {id} is queued again with every finished step stored; continue it with {resume}"
        ))),
        Ended::Failed => Err(failure(report).with_note(format!(
            "job {id} failed; once the cause is fixed, {resume} runs it again from the failed step"
        ))),
        Ended::Cancelled => Err(CliError::permanent(anyhow::anyhow!(
            "job {id} was cancelled"
        ))),
        Ended::LeaseLost => Err(CliError::permanent(anyhow::anyhow!(
            "job {id} was taken over by another runner (its lease was lost): this run stopped without writing more"
        ))),
    }
}

/// The run's error, with the exit its class earns.
fn failure(report: Report) -> CliError {
    match report::into_result(report) {
        Err(error) => error,
        Ok(()) => CliError::permanent(anyhow::anyhow!("the job ended without its video")),
    }
}

/// `--resume` of a job that had already succeeded: its stored result, and exit 0.
fn succeeded_earlier(job: &Job, json: bool) -> Result<(), CliError> {
    let result = StoredResult::of(job);
    if json {
        return output::json(&RunJobJson {
            job_id: job.id,
            job_status: JobStatus::Succeeded,
            attention: None,
            run: RunJson::succeeded_earlier(&result),
        });
    }
    let mut text = format!("job {} had already succeeded: nothing was run\n", job.id);
    if let Some(lyrics) = result.lyrics() {
        text.push_str(&format!(
            "title:  {}\nstyle:  {}\n",
            lyrics.title, lyrics.style
        ));
    }
    for (label, url) in [("audio", result.audio_url()), ("video", result.video_url())] {
        if let Some(url) = url {
            text.push_str(&format!("{label}:  {url}\n"));
        }
    }
    output::text(&text)
}

/// The billed step a step name stands for, as a person reads it while it is in flight.
fn in_flight_name(step: StepName) -> &'static str {
    match step {
        StepName::VideoSubmit => "Creatomate render submission",
        _ => "Suno submission",
    }
}
