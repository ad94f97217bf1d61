//! The job runner: runs (or resumes) one job that this process holds a lease on — the same for
//! `encore run` and for an `encore serve` worker.
//!
//! While the pipeline runs, the runner renews the lease (a third of its lifetime before it
//! expires), writes the pipeline's events to the job's timeline, and stops the pipeline at its
//! next safe point when the caller asks, when a cancel was requested, or when the lease was lost
//! to another worker (whose writes then win: this runner's are refused by their fencing number).
//! When the pipeline ends, the job's status is stored from the outcome:
//!
//! | outcome | job status |
//! |---|---|
//! | a video | `succeeded`, with `video_url`, `audio_url`, `lyrics` … as its result |
//! | a billed step whose outcome is unknown | `needs_attention`, saying what resolves it |
//! | stopped at a safe point (Ctrl-C, SIGTERM) | `queued` again: the lease is released |
//! | cancel requested | `cancelled` |
//! | any other failure | `failed`, with a stable error code, message and class |
//! | the job store unreachable for longer than the runner's patience | `queued` again (once the store answers) |
//! | lease lost | nothing: the job is another runner's now |
//!
//! A job store that stops answering (a lost connection, a restarting PostgreSQL) pauses the
//! run: every write (and the lease's renewal) is asked again with backoff (the `steadfast`
//! module), so nothing stored is lost and no billed request is sent before its `in_flight`
//! record is stored. When the store answers again, the renewal keeps the lease unless another
//! worker claimed the job meanwhile (then this runner's next write is refused and it stops).

use std::time::Duration;

use encore_pipeline::{
    Callbacks, Event, FailureClass, JobContext, Pipeline, PipelineError, Report, StepName,
    StopSignal,
};
use encore_store::{Attention, JobError, Lease};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::JobInput;
use crate::steadfast::{
    SteadfastJournal, journal_retryable, patience, retry_store, store_retryable,
};

/// How one job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The video exists; the job is `succeeded`.
    Succeeded,
    /// The job is `failed` (running it again may help or not: see its error's class).
    Failed,
    /// A billed step's outcome is unknown; the job is `needs_attention`.
    NeedsAttention,
    /// Stopped at a safe point on request; the job is `queued` again.
    Interrupted,
    /// Cancelled on request; the job is `cancelled`.
    Cancelled,
    /// Another runner holds the job now; this one wrote nothing more.
    LeaseLost,
    /// The job store did not answer for minutes: the run stopped, and the job is `queued`
    /// again with every finished step stored (the report's error says why).
    Requeued,
}

/// What a run produced, and how it ended.
#[derive(Debug)]
pub struct Finished {
    /// The pipeline's report (results from this run and earlier ones, the error, the calls).
    pub report: Report,
    /// How it ended.
    pub ended: Ended,
}

/// One job to run.
pub struct JobRun<'a> {
    /// The lease this process holds on the job.
    pub lease: Lease,
    /// A pipeline for this run only (it collects this run's calls).
    pub pipeline: Pipeline,
    /// Provider callbacks for this job (`encore serve` with a public URL), or none.
    pub callbacks: Option<&'a dyn Callbacks>,
    /// Stops the run at its next safe point.
    pub stop: StopSignal,
    /// How long each renewal extends the lease.
    pub lease_ttl: Duration,
}

impl std::fmt::Debug for JobRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRun")
            .field("lease", &self.lease)
            .field("callbacks", &self.callbacks.is_some())
            .field("lease_ttl", &self.lease_ttl)
            .finish_non_exhaustive()
    }
}

/// The first wait before a failed lease renewal is tried again (doubling, at most
/// [`RENEW_RETRY_MAX`] or a third of the lease's lifetime).
const RENEW_RETRY_FIRST: Duration = Duration::from_millis(100);
const RENEW_RETRY_MAX: Duration = Duration::from_millis(500);

/// Why the runner stopped the pipeline itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    Running,
    Stop,
    Cancel,
    LeaseLost,
}

/// Runs the job to its end (or to a safe stop) and stores how it ended.
///
/// # Errors
///
/// When the final status could not be stored (the database stayed unavailable); the job then
/// keeps its last stored step and is picked up again once its lease expires.
pub async fn run_job(run: JobRun<'_>) -> Result<Finished, encore_store::Error> {
    let JobRun {
        lease,
        pipeline,
        callbacks,
        stop,
        lease_ttl,
    } = run;
    let job_id = lease.job_id().to_string();
    let (halt_tx, halt_rx) = watch::channel(Halt::Running);
    let (stop_tx, stop_rx) = watch::channel(false);
    let pipeline_stop = StopSignal::new(stop_rx);

    // The timeline: events are written in order by one task, so that the pipeline never waits
    // for the database to report progress.
    let (events_tx, events_rx) = mpsc::unbounded_channel::<Event>();
    let pipeline = pipeline.on_event(move |event| {
        let _ = events_tx.send(event.clone());
    });
    let writer = tokio::spawn(write_events(lease.clone(), events_rx));

    let input = match serde_json::from_value::<JobInput>(lease.job().input.clone())
        .map_err(|e| e.to_string())
        .and_then(|i| i.to_business().map_err(|e| e.to_string()))
    {
        Ok(input) => input,
        Err(why) => {
            drop(pipeline);
            let _ = writer.await;
            let error = JobError {
                code: "input.invalid".into(),
                message: format!("the job's stored input cannot be used: {why}"),
                class: FailureClass::BadInput.as_str().into(),
            };
            retry_store(
                &lease,
                "storing a job's status",
                patience(&lease),
                store_retryable,
                || lease.set_failed(&error),
            )
            .await?;
            return Ok(Finished {
                report: Report::default(),
                ended: Ended::Failed,
            });
        }
    };

    let journal = SteadfastJournal::new(&lease);
    let report = {
        let ctx = JobContext {
            job_id: &job_id,
            journal: &journal,
            callbacks,
            stop: &pipeline_stop,
        };
        let work = pipeline.run_job(&input, ctx);
        let keep = keep_lease(&lease, lease_ttl, &halt_tx, &stop_tx, &stop);
        tokio::pin!(work);
        tokio::select! {
            report = &mut work => report,
            // Never returns: renewal failures end in a halt, which stops the pipeline.
            () = keep => unreachable!("the lease keeper never returns"),
        }
    };
    drop(pipeline);
    let _ = writer.await;
    let halt = *halt_rx.borrow();
    let ended = store_outcome(&lease, &report, halt).await?;
    Ok(Finished { report, ended })
}

/// Renews the lease until the future is dropped; fires `stop_tx` when the caller stops, a cancel
/// is requested, or the lease is lost.
async fn keep_lease(
    lease: &Lease,
    ttl: Duration,
    halt: &watch::Sender<Halt>,
    stop_tx: &watch::Sender<bool>,
    stop: &StopSignal,
) {
    let every = (ttl / 3).max(Duration::from_millis(50));
    let mut next = tokio::time::Instant::now() + every;
    let set = |why: Halt| {
        halt.send_if_modified(|h| {
            if *h == Halt::Running {
                *h = why;
                true
            } else {
                false
            }
        });
        let _ = stop_tx.send(true);
    };
    let mut retry = RENEW_RETRY_FIRST;
    loop {
        tokio::select! {
            () = stop.stopped(), if *halt.borrow() == Halt::Running => set(Halt::Stop),
            () = tokio::time::sleep_until(next) => {
                next += every;
                match lease.renew(ttl).await {
                    Ok(renewal) => {
                        retry = RENEW_RETRY_FIRST;
                        if renewal.cancel_requested {
                            set(Halt::Cancel);
                        }
                    }
                    Err(e) if e.is_lease_lost() => {
                        tracing::warn!(job = %lease.job_id(), error = %e, "lease lost: stopping");
                        set(Halt::LeaseLost);
                    }
                    // Ask again soon: a lease nobody took over is renewed even once expired, so
                    // the sooner the store answers the renewal, the likelier this runner keeps
                    // the job. The journal's writes wait meanwhile: nothing is done unrecorded.
                    Err(e) => {
                        tracing::warn!(job = %lease.job_id(), error = %e, retry_in_ms = retry.as_millis() as u64, "could not renew the lease");
                        next = tokio::time::Instant::now() + retry.min(every);
                        retry = (retry * 2).min(RENEW_RETRY_MAX);
                    }
                }
            }
        }
    }
}

/// Writes the pipeline's events to the job's timeline, in order (each asked again while the
/// store is unreachable and the lease may be valid; then dropped, with a log line).
async fn write_events(lease: Lease, mut events: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = events.recv().await {
        let data = serde_json::to_value(&event).unwrap_or(Value::Null);
        let kind = data
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("event")
            .to_owned();
        let written = retry_store(
            &lease,
            "storing an event",
            patience(&lease),
            store_retryable,
            || lease.append_event(&kind, &data),
        )
        .await;
        if let Err(e) = written {
            if e.is_lease_lost() {
                return;
            }
            tracing::debug!(job = %lease.job_id(), error = %e, "an event was not stored");
        }
    }
}

/// Whether the run stopped because a journal write gave up on an unreachable store rather
/// than for anything the job did: it is queued again.
fn store_lost(report: &Report) -> bool {
    matches!(&report.error, Some(PipelineError::Journal { source, external_id: None, .. })
        if journal_retryable(source))
}

/// Stores the job's status for how the run ended (asked again while the store is unreachable,
/// up to the runner's patience).
async fn store_outcome(
    lease: &Lease,
    report: &Report,
    halt: Halt,
) -> Result<Ended, encore_store::Error> {
    let lease_lost = halt == Halt::LeaseLost
        || matches!(&report.error, Some(PipelineError::Journal { source, .. }) if source.is_lease_lost());
    if lease_lost {
        return Ok(Ended::LeaseLost);
    }
    let written = retry_store(
        lease,
        "storing a job's status",
        patience(lease),
        store_retryable,
        || write_outcome(lease, report, halt),
    )
    .await;
    match written {
        Err(e) if e.is_lease_lost() => Ok(Ended::LeaseLost),
        other => other,
    }
}

/// One try at storing how the run ended.
async fn write_outcome(
    lease: &Lease,
    report: &Report,
    halt: Halt,
) -> Result<Ended, encore_store::Error> {
    if store_lost(report) {
        return lease.release().await.map(|()| Ended::Requeued);
    }
    match (&report.error, halt) {
        (None, _) if report.succeeded() => lease
            .set_succeeded(&result_of(report))
            .await
            .map(|()| Ended::Succeeded),
        (_, Halt::Cancel) => lease.set_cancelled().await.map(|()| Ended::Cancelled),
        (Some(e), _) if e.class() == FailureClass::Interrupted => {
            lease.release().await.map(|()| Ended::Interrupted)
        }
        (Some(e), _) if e.class() == FailureClass::OutcomeUnknown => lease
            .set_needs_attention(&attention(lease, e))
            .await
            .map(|()| Ended::NeedsAttention),
        (error, _) => {
            let error = error.as_ref().map_or_else(
                || JobError {
                    code: "internal".into(),
                    message: "the pipeline ended without a video or an error".into(),
                    class: FailureClass::Permanent.as_str().into(),
                },
                |e| JobError {
                    code: e.code(),
                    message: e.to_string(),
                    class: e.class().as_str().into(),
                },
            );
            lease.set_failed(&error).await.map(|()| Ended::Failed)
        }
    }
}

/// What a succeeded job stores as its result.
fn result_of(report: &Report) -> Value {
    json!({
        "video_url": report.video.as_ref().map(|v| &v.url),
        "audio_url": report.song.as_ref().map(|s| &s.audio_url),
        "lyrics": report.lyrics,
        "suno_task_id": report.song.as_ref().map(|s| &s.task_id),
        "render_id": report.video.as_ref().map(|v| &v.render_id),
        "duration": report.video.as_ref().and_then(|v| v.duration),
    })
}

/// What an operator needs to know about an unknown billed step, and how to resolve it.
fn attention(lease: &Lease, error: &PipelineError) -> Attention {
    let job = lease.job_id();
    let step = match error {
        PipelineError::OutcomeUnknown { step, .. } | PipelineError::Journal { step, .. } => {
            Some(*step)
        }
        PipelineError::Call(e) => e.endpoint().and_then(|e| match e.name() {
            "suno.generate" => Some(StepName::SongSubmit),
            "creatomate.render" => Some(StepName::VideoSubmit),
            _ => None,
        }),
        _ => None,
    };
    let (dashboard, id) = match step {
        Some(StepName::VideoSubmit) => ("Creatomate's renders", "RENDER_ID"),
        _ => ("Suno's tasks", "TASK_ID"),
    };
    Attention {
        step,
        reason: error.to_string(),
        resolution: format!(
            "look for it among {dashboard} (created around this job's last update), then adopt \
             it: `encore jobs resolve {job} --adopt {id}` (POST /v1/jobs/{job}/resolve \
             {{\"adopt\": \"{id}\"}}); if none was created, resubmit: `encore jobs resolve {job} \
             --resubmit --i-accept-paying-twice` (POST /v1/jobs/{job}/resolve \
             {{\"resubmit\": true, \"accept_paying_twice\": true}})"
        ),
    }
}
