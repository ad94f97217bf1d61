//! Store writes that outlast a database outage: a runner asks again, with backoff, while the
//! store is unreachable (or busy), so that a lost connection or a restarting PostgreSQL costs
//! a pause, not a job.
//!
//! Every write stays conditional on the lease's fencing number, so asking again is safe: a
//! write that was committed before its answer was lost is committed once more (the journal's
//! writes are idempotent, events may be doubled), and a write after another runner took the
//! job over is refused ([`ErrorKind::LeaseLost`](encore_store::ErrorKind::LeaseLost), which
//! ends the retries at once). Until a write is confirmed the pipeline waits: a billed request
//! is never sent before its `in_flight` record is stored, and no stored step is lost.
//!
//! How long: while the lease may still be valid, and [`OUTAGE_PATIENCE`] beyond its expiry.
//! Past the expiry the lease is still this runner's unless another runner claimed the job —
//! which needs the same store, and then the fence refuses the write — so waiting on is safe, and
//! it keeps what only this runner knows (the task a billed request just created) from turning
//! into an unknown step. Past the patience the write fails, the run stops, and the job is picked
//! up again from its journal.

use std::future::Future;
use std::time::Duration;

use encore_pipeline::job::{
    Journal, JournalError, JournalFuture, Millis, StepName, StepRecord, StepState, now_millis,
};
use encore_store::Lease;
use serde_json::Value;

/// The first wait before asking the store again (doubling, at most [`RETRY_MAX`]).
const RETRY_FIRST: Duration = Duration::from_millis(50);
/// The longest wait between two tries.
const RETRY_MAX: Duration = Duration::from_secs(1);
/// How long past its lease's expiry a runner keeps asking an unreachable store.
pub(crate) const OUTAGE_PATIENCE: Duration = Duration::from_secs(300);

/// Until when (unix ms) a write of `lease` is asked again: [`OUTAGE_PATIENCE`] past the
/// lease's expiry (read at each try: a renewal pushes it).
pub(crate) fn patience(lease: &Lease) -> impl Fn() -> Millis + '_ {
    move || lease.expires_at().saturating_add(millis(OUTAGE_PATIENCE))
}

/// Runs `op` until it succeeds, fails for another reason than an unreachable or busy store,
/// or the next try would start after `until()` (unix ms, read again before each wait).
pub(crate) async fn retry_store<T, E, Fut>(
    lease: &Lease,
    what: &str,
    until: impl Fn() -> Millis,
    is_retryable: impl Fn(&E) -> bool,
    mut op: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut wait = RETRY_FIRST;
    let mut tries = 1_u32;
    loop {
        match op().await {
            Err(e) if is_retryable(&e) && now_millis() + millis(wait) < until() => {
                tracing::warn!(
                    job = %lease.job_id(),
                    error = %e,
                    tries,
                    retry_in_ms = millis(wait),
                    "{what}: the job store does not answer; asking again"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
                tries += 1;
            }
            Err(e) => {
                if tries > 1 {
                    tracing::warn!(job = %lease.job_id(), error = %e, tries, "{what}: giving up");
                }
                return Err(e);
            }
            Ok(value) => {
                if tries > 1 {
                    tracing::info!(job = %lease.job_id(), tries, "{what}: the job store answered again");
                }
                return Ok(value);
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether a store error is worth asking again for (the database was unreachable or busy).
pub(crate) fn store_retryable(e: &encore_store::Error) -> bool {
    e.is_retryable()
}

/// Whether a journal write failed because the store was unreachable or busy (its cause, down
/// the source chain, is such a store error); never when the lease was lost.
pub(crate) fn journal_retryable(e: &JournalError) -> bool {
    if e.is_lease_lost() {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(store) = c.downcast_ref::<encore_store::Error>() {
            return store.is_retryable();
        }
        cause = c.source();
    }
    false
}

/// The lease as the pipeline's [`Journal`], each write asked again while the store is
/// unreachable (up to the [`patience`]).
pub(crate) struct SteadfastJournal<'a> {
    lease: &'a Lease,
}

impl<'a> SteadfastJournal<'a> {
    pub(crate) fn new(lease: &'a Lease) -> Self {
        SteadfastJournal { lease }
    }

    async fn retry<T, Fut>(&self, what: &str, op: impl FnMut() -> Fut) -> Result<T, JournalError>
    where
        Fut: Future<Output = Result<T, JournalError>>,
    {
        let lease = self.lease;
        retry_store(lease, what, patience(lease), journal_retryable, op).await
    }
}

impl Journal for SteadfastJournal<'_> {
    fn load(&self) -> JournalFuture<'_, Vec<StepRecord>> {
        Box::pin(self.retry("loading the journal", || self.lease.load()))
    }

    fn start<'a>(&'a self, step: StepName, correlation: Option<&'a str>) -> JournalFuture<'a, ()> {
        Box::pin(self.retry("storing a step as in_flight", move || {
            self.lease.start(step, correlation)
        }))
    }

    fn finish<'a>(
        &'a self,
        step: StepName,
        external_id: Option<&'a str>,
        result: &'a Value,
    ) -> JournalFuture<'a, ()> {
        Box::pin(self.retry("storing a step as done", move || {
            self.lease.finish(step, external_id, result)
        }))
    }

    fn fail<'a>(
        &'a self,
        step: StepName,
        state: StepState,
        error: &'a str,
    ) -> JournalFuture<'a, ()> {
        Box::pin(self.retry("storing a step's failure", move || {
            self.lease.fail(step, state, error)
        }))
    }
}
