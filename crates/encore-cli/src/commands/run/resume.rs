//! `encore run --resume JOB`: what the job's state allows, and claiming it — at once from an
//! `encore run` of this host whose process is gone (see [`crate::holder`]).

use std::time::Duration;

use anyhow::anyhow;
use encore_pipeline::JobStatus;
use encore_pipeline::job::now_millis;
use encore_service::JobInput;
use encore_store::{Job, JobId, Lease, Origin, Store};

use super::Claimed;
use crate::error::CliError;
use crate::exit::Exit;
use crate::holder::{Liveness, Runner};
use crate::json::time;
use crate::progress::Progress;

/// What resuming found.
pub enum Resumable {
    /// The job, claimed for this process, with its input.
    Claimed(Claimed),
    /// The job had already succeeded: nothing to run.
    Succeeded(Job),
}

/// Claims job `id` for `owner` for `ttl`, refusing (with what to do) a job that cannot run.
pub async fn claim(
    store: &Store,
    id: JobId,
    owner: &str,
    ttl: Duration,
    progress: &Progress,
) -> Result<Resumable, CliError> {
    let job = match store.get_job(id).await {
        Ok(detail) => detail.job,
        Err(e) if e.is_not_found() => {
            return Err(CliError::bad_input(anyhow!(
                "no job {id} in {}",
                store.database()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if job.origin == Origin::Api {
        return Err(CliError::bad_input(anyhow!(
            "job {id} was submitted to encore serve (origin api): a serve worker runs it, not encore run"
        )));
    }
    match (job.status, &job.attention) {
        (JobStatus::Succeeded, _) => return Ok(Resumable::Succeeded(job)),
        (JobStatus::Cancelled, _) => {
            return Err(CliError::permanent(anyhow!(
                "job {id} was cancelled: nothing to run"
            )));
        }
        (JobStatus::NeedsAttention, Some(attention)) => {
            return Err(CliError::new(
                Exit::OutcomeUnknown,
                anyhow!("job {id} needs attention: {}", attention.reason),
            )
            .with_note(format!(
                "{}; then continue it with `encore run --resume {id}`",
                attention.resolution
            )));
        }
        _ => {}
    }
    let input = stored_input(&job)?;
    let lease = match store.claim(id, owner, ttl).await {
        Ok(lease) => lease,
        Err(e) if e.is_conflict() => held(store, id, owner, ttl, e, progress).await?,
        Err(e) => return Err(e.into()),
    };
    Ok(Resumable::Claimed(Claimed { lease, input }))
}

/// The job's business input, as stored.
fn stored_input(job: &Job) -> Result<encore_pipeline::BusinessInput, CliError> {
    serde_json::from_value::<JobInput>(job.input.clone())
        .map_err(|e| e.to_string())
        .and_then(|input| input.to_business().map_err(|e| e.to_string()))
        .map_err(|why| {
            CliError::bad_input(anyhow!(
                "job {}: its stored input cannot be used: {why}",
                job.id
            ))
        })
}

/// A claim refused while the job is running under another lease: taken over at once when the
/// holder is an `encore run` of this host whose process is gone; otherwise refused, saying
/// who holds it and until when.
async fn held(
    store: &Store,
    id: JobId,
    owner: &str,
    ttl: Duration,
    refusal: encore_store::Error,
    progress: &Progress,
) -> Result<Lease, CliError> {
    let job = store.get_job(id).await?.job;
    let now = now_millis();
    let lease = match (&job.status, &job.lease) {
        (JobStatus::Running, Some(lease)) if lease.expires_at > now => lease,
        _ => return Err(refusal.into()),
    };
    let until = time(lease.expires_at);
    let left = humantime::format_duration(Duration::from_secs(
        u64::try_from(lease.expires_at - now)
            .unwrap_or(0)
            .div_ceil(1000),
    ));
    match Runner::liveness(&lease.owner) {
        Liveness::Gone => {
            progress.line(&format!(
                "job {id}: its runner ({}) is gone; taking the job over",
                lease.owner
            ));
            Ok(store
                .take_over(id, owner, ttl, &lease.owner, job.fence)
                .await?)
        }
        Liveness::Alive => Err(CliError::new(
            Exit::GaveUp,
            anyhow!(
                "job {id} is being run by {}, which is still running: wait for it to finish, or stop it (Ctrl-C) and resume again",
                lease.owner
            ),
        )),
        Liveness::Unknown => Err(CliError::new(
            Exit::GaveUp,
            anyhow!(
                "job {id} is held by {} until {until} ({left} from now), whose process cannot be checked from this host: resume it once that lease has expired",
                lease.owner
            ),
        )),
    }
}
