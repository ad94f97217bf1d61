//! Leases: claiming a job, renewing and releasing the claim, and every write a runner makes
//! while it holds one — the journal of steps, events, the job's final status — each
//! conditional on the lease's fencing number in the same transaction.
//!
//! **Fencing.** Every claim increments the job's `lease_fence`, and so does every change made
//! without a lease (cancel, resolve, a callback's requeue). A write through a [`Lease`] starts
//! with `UPDATE jobs … WHERE id = ? AND lease_owner = ? AND lease_fence = ?`: if the job has
//! moved on, no row matches, the transaction is rolled back and the writer gets
//! [`ErrorKind::LeaseLost`]. That first statement also takes the job row's lock (PostgreSQL) or
//! the file's write lock (SQLite), so a claim by another runner is ordered entirely before or
//! after the write, never in between. An expired lease that nobody took over still writes: the
//! expiry only decides when another runner may claim the job.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use encore_pipeline::job::{
    JobStatus, Journal, JournalError, JournalFuture, Millis, StepName, StepRecord, StepState,
    now_millis,
};
use serde_json::{Value, json};

use crate::event::INSERT_EVENT;
use crate::job::{
    Attention, Job, JobError, JobId, SELECT_STEPS, job_columns, job_from_row, not_found,
    sort_steps, step_from_row,
};
use crate::row::{parse_name, to_json};
use crate::store::Fail;
use crate::{Backend, Error, ErrorKind, Store};

/// A runner's claim on a job: the job as claimed, the owner, the fencing number and the
/// expiry. Cheap to clone (clones are the same lease).
///
/// It is the job's [`Journal`]: the pipeline stores its steps through it. Every write through
/// it fails with [`ErrorKind::LeaseLost`], changing nothing, once another runner claimed the
/// job or the job was finished, released, cancelled or resolved.
///
/// A claimed job can carry [`Job::cancel_requested`] (a cancel asked while a runner that then
/// stopped held it): the runner is to stop and call [`Lease::set_cancelled`].
#[derive(Clone)]
pub struct Lease {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    job: Job,
    owner: String,
    fence: i64,
    expires_at: AtomicI64,
}

/// What a renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// The new expiry.
    pub expires_at: Millis,
    /// Whether a cancel was asked for: the runner stops and calls [`Lease::set_cancelled`].
    pub cancel_requested: bool,
}

/// Claims the oldest claimable `api` job: queued, or running under an expired lease.
/// `{lock}` is PostgreSQL's `FOR UPDATE SKIP LOCKED` (concurrent claimers skip each other's
/// rows instead of waiting); SQLite's writers are serialized by the file's write lock.
macro_rules! claim_next_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2 + $3, \
             lease_fence = lease_fence + 1, event_seq = event_seq + 1, updated_at = $2, \
             error = NULL, attention = NULL \
             WHERE id = (SELECT id FROM jobs WHERE origin = 'api' AND (status = 'queued' OR \
             (status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at <= $2))) \
             ORDER BY created_at, id LIMIT 1",
            $lock,
            ") RETURNING ",
            job_columns!()
        )
    };
}
const CLAIM_NEXT_SQLITE: &str = claim_next_sql!("");
const CLAIM_NEXT_POSTGRES: &str = claim_next_sql!(" FOR UPDATE SKIP LOCKED");

/// Claims one job, of any origin, unless another owner's lease on it is live.
const CLAIM_ONE: &str = concat!(
    "UPDATE jobs SET status = 'running', lease_owner = $2, lease_expires_at = $3 + $4, \
     lease_fence = lease_fence + 1, event_seq = event_seq + 1, updated_at = $3, \
     error = NULL, attention = NULL \
     WHERE id = $1 AND status IN ('queued', 'running', 'failed') AND (lease_owner IS NULL \
     OR lease_expires_at IS NULL OR lease_expires_at <= $3 OR lease_owner = $2) \
     RETURNING ",
    job_columns!()
);

/// Takes one running job over from a holder its caller knows is gone (its process no longer
/// exists), before that holder's lease expires: only while the same holder and fence still
/// hold it, so a job that changed hands meanwhile is left alone.
const TAKE_OVER: &str = concat!(
    "UPDATE jobs SET status = 'running', lease_owner = $2, lease_expires_at = $3 + $4, \
     lease_fence = lease_fence + 1, event_seq = event_seq + 1, updated_at = $3, \
     error = NULL, attention = NULL \
     WHERE id = $1 AND status = 'running' AND lease_owner = $5 AND lease_fence = $6 \
     RETURNING ",
    job_columns!()
);

const SELECT_IN_FLIGHT: &str =
    "SELECT name FROM job_steps WHERE job_id = $1 AND state = 'in_flight'";
const SET_STEP_STATE: &str = "UPDATE job_steps SET state = $3, error = $4, finished_at = $5 \
     WHERE job_id = $1 AND name = $2";
const NEXT_SEQ: &str =
    "UPDATE jobs SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq";

/// The first statement of every write through a lease: checks the lease, takes the job row's
/// lock and numbers the write's event.
const FENCE: &str = "UPDATE jobs SET event_seq = event_seq + 1, updated_at = $4 \
     WHERE id = $1 AND lease_owner = $2 AND lease_fence = $3 RETURNING event_seq";
const RENEW: &str = "UPDATE jobs SET lease_expires_at = $4 \
     WHERE id = $1 AND lease_owner = $2 AND lease_fence = $3 RETURNING cancel_requested";
const LEASE_HOLDER: &str = "SELECT status, lease_owner, lease_fence FROM jobs WHERE id = $1";
/// A final status (or `needs_attention`), ending the lease.
const SET_STATUS: &str = "UPDATE jobs SET status = $2, result = $3, error = $4, attention = $5, \
     lease_owner = NULL, lease_expires_at = NULL WHERE id = $1";
const RELEASE: &str = "UPDATE jobs SET status = CASE WHEN status = 'running' THEN 'queued' \
     ELSE status END, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 \
     RETURNING status";

const STEP_BILLED_STATE: &str = "SELECT state FROM job_steps WHERE job_id = $1 AND name = $2";
const UPSERT_START: &str = "INSERT INTO job_steps (job_id, name, state, attempts, correlation, \
     started_at) VALUES ($1, $2, 'in_flight', 1, $3, $4) \
     ON CONFLICT (job_id, name) DO UPDATE SET state = 'in_flight', \
     attempts = job_steps.attempts + 1, \
     correlation = COALESCE(excluded.correlation, job_steps.correlation), \
     started_at = COALESCE(job_steps.started_at, excluded.started_at) RETURNING attempts";
const UPSERT_FINISH: &str = "INSERT INTO job_steps (job_id, name, state, attempts, external_id, \
     result, finished_at) VALUES ($1, $2, 'done', 0, $3, $4, $5) \
     ON CONFLICT (job_id, name) DO UPDATE SET state = 'done', \
     external_id = excluded.external_id, result = excluded.result, error = NULL, \
     finished_at = excluded.finished_at";
const UPSERT_FAIL: &str = "INSERT INTO job_steps (job_id, name, state, attempts, error, \
     finished_at) VALUES ($1, $2, $3, 0, $4, $5) \
     ON CONFLICT (job_id, name) DO UPDATE SET state = excluded.state, error = excluded.error, \
     finished_at = excluded.finished_at";

fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4)
}

/// A time in messages: RFC 3339 in UTC, to the millisecond.
pub(crate) fn fmt_millis(at: Millis) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

/// The claim's own side effects, in its transaction: the status event, and the in-flight steps
/// its previous runner left, read as [`StepRecord::on_load`] says (a billed step possibly
/// sent is `unknown`, a free one is `pending` again).
macro_rules! after_claim {
    ($tx:ident, $row:ident, $owner:expr, $now:expr) => {{
        let job = job_from_row(&$row)?;
        let seq = job.last_event;
        let id = job.id.to_string();
        sqlx::query(INSERT_EVENT)
            .bind(&id)
            .bind(seq)
            .bind($now)
            .bind("status")
            .bind(to_json(&json!({
                "status": JobStatus::Running, "owner": $owner, "fence": job.fence,
            })))
            .execute(&mut *$tx)
            .await?;
        let names: Vec<String> = sqlx::query_scalar(SELECT_IN_FLIGHT)
            .bind(&id)
            .fetch_all(&mut *$tx)
            .await?;
        for name in names {
            // An unknown step left in flight cannot be judged: refuse the claim rather than
            // run the job past a request that may have been sent.
            let step: StepName = parse_name(&name, "step", &format_args!("job {id}"))?;
            let mut record = StepRecord::pending(step);
            record.state = StepState::InFlight;
            let state = record.on_load();
            let reason = if state == StepState::Unknown {
                "the previous runner stopped while this billed request may have been sent"
            } else {
                "the previous runner stopped during this step; it runs again"
            };
            sqlx::query(SET_STEP_STATE)
                .bind(&id)
                .bind(&name)
                .bind(state.as_str())
                .bind(reason)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
            let seq: i64 = sqlx::query_scalar(NEXT_SEQ)
                .bind(&id)
                .fetch_one(&mut *$tx)
                .await?;
            sqlx::query(INSERT_EVENT)
                .bind(&id)
                .bind(seq)
                .bind($now)
                .bind("step")
                .bind(to_json(&json!({"step": step, "state": state, "error": reason})))
                .execute(&mut *$tx)
                .await?;
        }
        job
    }};
}

impl Store {
    /// Claims the oldest claimable `api` job for `owner` for `ttl`: a queued one, or a running
    /// one whose lease expired (its runner stopped or was cut off; it resumes from its
    /// journal). `None` when there is none. Concurrent claimers, in this process or others,
    /// never get the same job.
    pub async fn claim_next(&self, owner: &str, ttl: Duration) -> Result<Option<Lease>, Error> {
        let now = now_millis();
        let sql = match self.backend() {
            Backend::Sqlite => CLAIM_NEXT_SQLITE,
            Backend::Postgres => CLAIM_NEXT_POSTGRES,
        };
        let outcome: Result<Option<Job>, Fail> = on_backend!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(sql)
                .bind(owner)
                .bind(now)
                .bind(ttl_millis(ttl))
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let job = after_claim!(tx, row, owner, now);
            tx.commit().await?;
            Ok(Some(job))
        }
        .await);
        let job = outcome.map_err(|f| self.fail("claiming a job", f))?;
        Ok(job.map(|job| self.lease_for(job, owner)))
    }

    /// Claims one job for `owner` for `ttl` (`encore run --resume`): a queued or failed job, or
    /// a running one whose lease expired or is `owner`'s own.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Conflict`] while another owner's lease is live
    /// (naming the owner and the expiry), or when the job succeeded, was cancelled or needs
    /// attention (naming how to resolve it).
    pub async fn claim(&self, id: JobId, owner: &str, ttl: Duration) -> Result<Lease, Error> {
        let now = now_millis();
        let outcome: Result<Option<Job>, Fail> = on_backend!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(CLAIM_ONE)
                .bind(id.to_string())
                .bind(owner)
                .bind(now)
                .bind(ttl_millis(ttl))
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let job = after_claim!(tx, row, owner, now);
            tx.commit().await?;
            Ok(Some(job))
        }
        .await);
        match outcome.map_err(|f| self.fail("claiming a job", f))? {
            Some(job) => Ok(self.lease_for(job, owner)),
            None => Err(self.claim_refusal(id, now).await),
        }
    }

    /// Takes job `id` over for `owner` for `ttl` from `gone`, the holder of its lease at
    /// fencing number `fence`, before that lease expires — for a caller that knows the holder
    /// stopped (`encore run` checks that an `encore run` process of this host that held the job
    /// no longer exists). The change is conditional on `gone` and `fence` still holding the
    /// job, in one statement; the claim is then the same as [`Store::claim`]'s (a billed step
    /// left `in_flight` becomes `unknown`), and the timeline says whose lease was taken.
    ///
    /// A wrong judgment cannot pay twice: the holder, if it was alive after all, has lost its
    /// fence, so its next write (a billed step's `in_flight` record included, which comes
    /// before its request is sent) is refused with [`ErrorKind::LeaseLost`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Conflict`] when the job is no longer running
    /// under `gone` at `fence` (the message says who holds it now, or what it is).
    pub async fn take_over(
        &self,
        id: JobId,
        owner: &str,
        ttl: Duration,
        gone: &str,
        fence: i64,
    ) -> Result<Lease, Error> {
        let now = now_millis();
        let outcome: Result<Option<Job>, Fail> = on_backend!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(TAKE_OVER)
                .bind(id.to_string())
                .bind(owner)
                .bind(now)
                .bind(ttl_millis(ttl))
                .bind(gone)
                .bind(fence)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let job = after_claim!(tx, row, owner, now);
            let seq: i64 = sqlx::query_scalar(NEXT_SEQ)
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(INSERT_EVENT)
                .bind(id.to_string())
                .bind(seq)
                .bind(now)
                .bind("taken_over")
                .bind(to_json(&json!({
                    "from": gone, "from_fence": fence, "owner": owner, "fence": job.fence,
                })))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(job))
        }
        .await);
        if let Some(job) = outcome.map_err(|f| self.fail("taking a job over", f))? {
            tracing::info!(job = %id, from = gone, owner, "job taken over from a stopped runner");
            return Ok(self.lease_for(job, owner));
        }
        let why = self.claim_refusal(id, now).await;
        if why.is_not_found() {
            return Err(why);
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "taking job {id} over from {gone} (fence {fence}): it is no longer theirs; {why}"
            ),
        ))
    }

    fn lease_for(&self, job: Job, owner: &str) -> Lease {
        let expires_at = job.lease.as_ref().map_or(0, |l| l.expires_at);
        tracing::debug!(job = %job.id, owner, fence = job.fence, "job claimed");
        Lease {
            inner: Arc::new(Inner {
                store: self.clone(),
                fence: job.fence,
                owner: owner.to_owned(),
                expires_at: AtomicI64::new(expires_at),
                job,
            }),
        }
    }

    /// Why a claim of `id` matched nothing.
    async fn claim_refusal(&self, id: JobId, now: Millis) -> Error {
        let job = match self.get_job(id).await {
            Ok(detail) => detail.job,
            Err(e) => return e,
        };
        let message = match (&job.status, &job.lease, &job.attention) {
            (JobStatus::NeedsAttention, _, Some(a)) => format!(
                "job {id} needs attention: {}; resolve it first: {}",
                a.reason, a.resolution
            ),
            (JobStatus::Running, Some(lease), _) if lease.expires_at > now => format!(
                "job {id} is held by {} until {} (fence {}); wait for it to finish or for its lease to expire",
                lease.owner,
                fmt_millis(lease.expires_at),
                job.fence
            ),
            (status, _, _) => format!("job {id} is {status}: nothing to run"),
        };
        Error::new(ErrorKind::Conflict, message)
    }
}

/// Runs `$body` in a transaction that first passes the lease's fence ([`FENCE`]); the body
/// sees the transaction as `$tx` and the write's event seq as `$seq`. Evaluates to
/// `Result<Option<T>, Fail>`, `None` when the lease is lost (nothing written).
macro_rules! with_lease {
    ($lease:expr, $now:expr, |$tx:ident, $seq:ident| $body:block) => {
        on_backend!($lease.inner.store, |pool| async {
            let mut $tx = pool.begin().await?;
            let fenced: Option<i64> = sqlx::query_scalar(FENCE)
                .bind($lease.inner.job.id.to_string())
                .bind(&$lease.inner.owner)
                .bind($lease.inner.fence)
                .bind($now)
                .fetch_optional(&mut *$tx)
                .await?;
            let Some($seq) = fenced else {
                return Ok(None);
            };
            let value = $body;
            $tx.commit().await?;
            Ok(Some(value))
        }
        .await)
    };
}

/// Inserts the event numbered `$seq` of the write being made in `$tx`.
macro_rules! insert_event {
    ($tx:ident, $job:expr, $seq:expr, $now:expr, $kind:expr, $data:expr) => {
        sqlx::query(INSERT_EVENT)
            .bind($job.to_string())
            .bind($seq)
            .bind($now)
            .bind($kind)
            .bind(to_json($data))
            .execute(&mut *$tx)
            .await?
    };
}

impl Lease {
    /// The job as it was when claimed.
    pub fn job(&self) -> &Job {
        &self.inner.job
    }

    /// The job's id.
    pub fn job_id(&self) -> JobId {
        self.inner.job.id
    }

    /// Who holds the lease.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The lease's fencing number.
    pub fn fence(&self) -> i64 {
        self.inner.fence
    }

    /// When the lease expires unless renewed (as of the claim or the last renewal).
    pub fn expires_at(&self) -> Millis {
        self.inner.expires_at.load(Ordering::Relaxed)
    }

    /// Extends the lease to `ttl` from now, and says whether a cancel was asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LeaseLost`] when the job is no longer this lease's (even if it expired,
    /// a lease nobody took over is renewed).
    pub async fn renew(&self, ttl: Duration) -> Result<Renewal, Error> {
        let now = now_millis();
        let expires_at = now.saturating_add(ttl_millis(ttl));
        let outcome: Result<Option<i64>, Fail> = on_backend!(self.inner.store, |pool| async {
            Ok(sqlx::query_scalar(RENEW)
                .bind(self.inner.job.id.to_string())
                .bind(&self.inner.owner)
                .bind(self.inner.fence)
                .bind(expires_at)
                .fetch_optional(pool)
                .await?)
        }
        .await);
        let cancel = self.written("renewing a lease", outcome).await?;
        self.inner.expires_at.store(expires_at, Ordering::Relaxed);
        Ok(Renewal {
            expires_at,
            cancel_requested: cancel != 0,
        })
    }

    /// Gives the job back: a running job is queued again for the next claim (SIGTERM, Ctrl-C).
    /// The lease is over.
    pub async fn release(&self) -> Result<(), Error> {
        let now = now_millis();
        let outcome: Result<Option<()>, Fail> = with_lease!(self, now, |tx, seq| {
            let status: String = sqlx::query_scalar(RELEASE)
                .bind(self.inner.job.id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            insert_event!(
                tx,
                self.job_id(),
                seq,
                now,
                "status",
                &json!({"status": status, "reason": "released by its runner"})
            );
        });
        self.written("releasing a job", outcome).await?;
        tracing::debug!(job = %self.job_id(), owner = self.owner(), "job released");
        Ok(())
    }

    /// The job succeeded with `result` (`video_url`, `audio_url`, `lyrics`, …). The lease is
    /// over.
    pub async fn set_succeeded(&self, result: &Value) -> Result<(), Error> {
        self.set_status(JobStatus::Succeeded, Some(result), None, None)
            .await
    }

    /// The job failed with `error`. The lease is over.
    pub async fn set_failed(&self, error: &JobError) -> Result<(), Error> {
        self.set_status(JobStatus::Failed, None, Some(error), None)
            .await
    }

    /// The job needs a person (`attention` says why and how to resolve it). The lease is over.
    pub async fn set_needs_attention(&self, attention: &Attention) -> Result<(), Error> {
        self.set_status(JobStatus::NeedsAttention, None, None, Some(attention))
            .await
    }

    /// The job is cancelled, as asked. The lease is over.
    pub async fn set_cancelled(&self) -> Result<(), Error> {
        self.set_status(JobStatus::Cancelled, None, None, None)
            .await
    }

    async fn set_status(
        &self,
        status: JobStatus,
        result: Option<&Value>,
        error: Option<&JobError>,
        attention: Option<&Attention>,
    ) -> Result<(), Error> {
        let now = now_millis();
        let event = json!({
            "status": status, "error": error, "attention": attention,
        });
        let outcome: Result<Option<()>, Fail> = with_lease!(self, now, |tx, seq| {
            sqlx::query(SET_STATUS)
                .bind(self.inner.job.id.to_string())
                .bind(status.as_str())
                .bind(result.map(to_json))
                .bind(error.map(to_json))
                .bind(attention.map(to_json))
                .execute(&mut *tx)
                .await?;
            insert_event!(tx, self.job_id(), seq, now, "status", &event);
        });
        self.written("storing a job's status", outcome).await?;
        tracing::debug!(job = %self.job_id(), %status, "job status stored");
        Ok(())
    }

    /// Adds an event of `kind` with `data` to the job's timeline (a retry, a wait, …), and
    /// returns its seq.
    pub async fn append_event(&self, kind: &str, data: &Value) -> Result<i64, Error> {
        let now = now_millis();
        let outcome: Result<Option<i64>, Fail> = with_lease!(self, now, |tx, seq| {
            insert_event!(tx, self.job_id(), seq, now, kind, data);
            seq
        });
        self.written("storing an event", outcome).await
    }

    /// The result of a lease write: the value, or the lease-lost error (naming who holds the
    /// job now), or the store's error for the operation.
    async fn written<T>(&self, op: &str, outcome: Result<Option<T>, Fail>) -> Result<T, Error> {
        match outcome {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(self.lost(op).await),
            Err(fail) => Err(self.inner.store.fail(op, fail)),
        }
    }

    /// The lease-lost error, saying what became of the job.
    async fn lost(&self, op: &str) -> Error {
        let id = self.job_id();
        let now_held: Result<Option<(String, Option<String>, i64)>, sqlx::Error> =
            on_backend!(self.inner.store, |pool| sqlx::query_as(LEASE_HOLDER)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await);
        let now = match now_held {
            Ok(Some((status, Some(holder), fence))) => {
                format!("it is {status}, held by {holder} (fence {fence})")
            }
            Ok(Some((status, None, fence))) => format!("it is {status} (fence {fence})"),
            Ok(None) => "it no longer exists".to_owned(),
            Err(_) => "its current holder could not be read".to_owned(),
        };
        let message = format!(
            "{op}: lease lost on job {id}: {} (fence {}) no longer holds it; {now}; nothing was written",
            self.inner.owner, self.inner.fence
        );
        tracing::warn!(job = %id, owner = %self.inner.owner, fence = self.inner.fence, "{message}");
        Error::new(ErrorKind::LeaseLost, message)
    }

    async fn load_steps(&self) -> Result<Vec<StepRecord>, Error> {
        let id = self.job_id();
        let outcome: Result<Option<Vec<StepRecord>>, Fail> =
            on_backend!(self.inner.store, |pool| async {
                let mut tx = pool.begin().await?;
                let holder: Option<(String, Option<String>, i64)> = sqlx::query_as(LEASE_HOLDER)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((_, owner, fence)) = holder else {
                    return Err(Fail::Refused(not_found(id)));
                };
                if owner.as_deref() != Some(self.inner.owner.as_str()) || fence != self.inner.fence
                {
                    return Ok(None);
                }
                let rows = sqlx::query(SELECT_STEPS)
                    .bind(id.to_string())
                    .fetch_all(&mut *tx)
                    .await?;
                let mut steps = rows
                    .iter()
                    .map(|r| step_from_row(r, id))
                    .collect::<Result<Vec<_>, Error>>()?;
                sort_steps(&mut steps);
                Ok(Some(steps))
            }
            .await);
        self.written("loading a job's steps", outcome).await
    }

    async fn start_step(&self, step: StepName, correlation: Option<&str>) -> Result<(), Error> {
        let now = now_millis();
        let id = self.job_id();
        let outcome: Result<Option<()>, Fail> = with_lease!(self, now, |tx, seq| {
            if step.is_billed() {
                let state: Option<String> = sqlx::query_scalar(STEP_BILLED_STATE)
                    .bind(id.to_string())
                    .bind(step.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(state) = state.filter(|s| s == "unknown" || s == "done") {
                    return Err(Fail::Refused(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "starting step {step} of job {id}: refused, the step is {state} (its request may have been billed); resolve it instead of sending it again"
                        ),
                    )));
                }
            }
            let attempt: i64 = sqlx::query_scalar(UPSERT_START)
                .bind(id.to_string())
                .bind(step.as_str())
                .bind(correlation)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            insert_event!(
                tx,
                self.job_id(),
                seq,
                now,
                "step",
                &json!({"step": step, "state": StepState::InFlight, "attempt": attempt})
            );
        });
        self.written("storing a step", outcome).await
    }

    async fn finish_step(
        &self,
        step: StepName,
        external_id: Option<&str>,
        result: &Value,
    ) -> Result<(), Error> {
        let now = now_millis();
        let outcome: Result<Option<()>, Fail> = with_lease!(self, now, |tx, seq| {
            sqlx::query(UPSERT_FINISH)
                .bind(self.job_id().to_string())
                .bind(step.as_str())
                .bind(external_id)
                .bind(to_json(result))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            insert_event!(
                tx,
                self.job_id(),
                seq,
                now,
                "step",
                &json!({"step": step, "state": StepState::Done, "external_id": external_id})
            );
        });
        self.written("storing a step", outcome).await
    }

    async fn fail_step(&self, step: StepName, state: StepState, error: &str) -> Result<(), Error> {
        if !matches!(
            state,
            StepState::Pending | StepState::Unknown | StepState::Failed
        ) {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "storing step {step} of job {}: a failed step is pending, unknown or failed, not {state}",
                    self.job_id()
                ),
            ));
        }
        let now = now_millis();
        let outcome: Result<Option<()>, Fail> = with_lease!(self, now, |tx, seq| {
            sqlx::query(UPSERT_FAIL)
                .bind(self.job_id().to_string())
                .bind(step.as_str())
                .bind(state.as_str())
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            insert_event!(
                tx,
                self.job_id(),
                seq,
                now,
                "step",
                &json!({"step": step, "state": state, "error": error})
            );
        });
        self.written("storing a step", outcome).await
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("job", &self.inner.job.id)
            .field("owner", &self.inner.owner)
            .field("fence", &self.inner.fence)
            .field("expires_at", &self.expires_at())
            .finish()
    }
}

fn journal_error(what: String, err: Error) -> JournalError {
    if err.is_lease_lost() {
        JournalError::lease_lost(err.to_string())
    } else {
        JournalError::new(what, err)
    }
}

impl Journal for Lease {
    fn load(&self) -> JournalFuture<'_, Vec<StepRecord>> {
        Box::pin(async move {
            self.load_steps().await.map_err(|e| {
                journal_error(format!("loading the journal of job {}", self.job_id()), e)
            })
        })
    }

    /// Stores the step `in_flight`. A billed step that is `unknown` or `done` is refused
    /// ([`ErrorKind::Conflict`] as the source): its request may have been billed, and sending
    /// it again would pay twice; an operator resolves it instead.
    fn start<'a>(&'a self, step: StepName, correlation: Option<&'a str>) -> JournalFuture<'a, ()> {
        Box::pin(async move {
            self.start_step(step, correlation)
                .await
                .map_err(|e| journal_error(format!("storing step {step} as in_flight"), e))
        })
    }

    fn finish<'a>(
        &'a self,
        step: StepName,
        external_id: Option<&'a str>,
        result: &'a Value,
    ) -> JournalFuture<'a, ()> {
        Box::pin(async move {
            self.finish_step(step, external_id, result)
                .await
                .map_err(|e| journal_error(format!("storing step {step} as done"), e))
        })
    }

    fn fail<'a>(
        &'a self,
        step: StepName,
        state: StepState,
        error: &'a str,
    ) -> JournalFuture<'a, ()> {
        Box::pin(async move {
            self.fail_step(step, state, error)
                .await
                .map_err(|e| journal_error(format!("storing step {step} as {state}"), e))
        })
    }
}
