//! Jobs: creating one (idempotently), reading one with its steps, listing them, and asking for
//! one to be cancelled — the operations that need no lease.

use std::fmt;
use std::str::FromStr;

use encore_pipeline::job::{JobStatus, Millis, StepName, StepRecord, StepState, now_millis};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use crate::event::INSERT_EVENT;
pub use crate::id::JobId;
use crate::row::{StoreRow, parse_json, parse_name, parse_opt_json, to_json};
use crate::store::Fail;
use crate::{Error, ErrorKind, Store};

/// The columns of a [`Job`], in the order [`job_from_row`] reads them by name.
macro_rules! job_columns {
    () => {
        "id, status, origin, input, idempotency_key, request_hash, created_at, updated_at, \
         result, error, attention, cancel_requested, lease_owner, lease_expires_at, lease_fence, \
         event_seq"
    };
}
pub(crate) use job_columns;

/// Who created a job, which decides who runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `encore run`: run by the process that created it, resumed by `encore run --resume`;
    /// never claimed by a worker's [`Store::claim_next`].
    Cli,
    /// `POST /v1/jobs`: claimed by an `encore serve` worker.
    Api,
}

impl Origin {
    /// `cli` or `api`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Cli => "cli",
            Origin::Api => "api",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Origin {
    type Err = Error;

    fn from_str(s: &str) -> Result<Origin, Error> {
        match s {
            "cli" => Ok(Origin::Cli),
            "api" => Ok(Origin::Api),
            other => Err(Error::new(
                ErrorKind::Invalid,
                format!("unknown job origin {other:?}: expected cli or api"),
            )),
        }
    }
}

/// Why a job failed: a stable code for programs, a message for people, and its class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// A stable, machine-readable code (`suno.insufficient_credits`, `video.render_failed`, …).
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// How to treat it: the pipeline's `FailureClass` name (`permanent`, `gave_up`,
    /// `bad_input`, `outcome_unknown`).
    pub class: String,
}

/// Why a job needs a person, and what resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    /// The step whose outcome is unknown, if one is.
    pub step: Option<StepName>,
    /// What is unknown and how to check it ("Suno generate may have run: …").
    pub reason: String,
    /// The command or API call that resolves it (`encore jobs resolve <id> --adopt <task>` /
    /// `POST /v1/jobs/<id>/resolve`).
    pub resolution: String,
}

/// Who holds a job and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// The holder (a worker's or `encore run` process's name).
    pub owner: String,
    /// When the lease expires unless renewed.
    pub expires_at: Millis,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its id (UUIDv7).
    pub id: JobId,
    /// Its status.
    pub status: JobStatus,
    /// Who created it.
    pub origin: Origin,
    /// The business input, as submitted.
    pub input: Value,
    /// The idempotency key it was created with.
    pub idempotency_key: Option<String>,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// What it produced (`video_url`, `audio_url`, `lyrics`, …), once succeeded.
    pub result: Option<Value>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// Why it needs a person.
    pub attention: Option<Attention>,
    /// Whether a cancel was asked for while a runner held it.
    pub cancel_requested: bool,
    /// Who holds it, while someone does (expired leases included: see
    /// [`Job::is_leased_at`]).
    pub lease: Option<LeaseInfo>,
    /// The fencing number of its latest claim (or change made without a lease).
    pub fence: i64,
    /// The seq of its latest event when it was read: a follower of its timeline that starts
    /// after it sees only what comes next.
    pub last_event: i64,
}

impl Job {
    /// Whether a runner's lease on the job is live at `now`.
    pub fn is_leased_at(&self, now: Millis) -> bool {
        self.lease.as_ref().is_some_and(|l| l.expires_at > now)
    }
}

/// A job with its stored steps, in step order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    /// The job.
    pub job: Job,
    /// Its steps (steps never started are absent).
    pub steps: Vec<StepRecord>,
}

/// An idempotency key with the hash of the request that carried it: the same key and hash give
/// the same job; the same key with another hash is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key (`Idempotency-Key`).
    pub key: String,
    /// A hash of the request body, made by the caller (any stable text).
    pub request_hash: String,
}

/// A job to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Who creates it.
    pub origin: Origin,
    /// The business input (JSON).
    pub input: Value,
    /// The idempotency key, if the client sent one.
    pub idempotency: Option<Idempotency>,
}

impl NewJob {
    /// A job without an idempotency key.
    pub fn new(origin: Origin, input: Value) -> NewJob {
        NewJob {
            origin,
            input,
            idempotency: None,
        }
    }

    /// The same job, created at most once for `key` (with `request_hash` the hash of the
    /// request body).
    pub fn with_idempotency(
        mut self,
        key: impl Into<String>,
        request_hash: impl Into<String>,
    ) -> NewJob {
        self.idempotency = Some(Idempotency {
            key: key.into(),
            request_hash: request_hash.into(),
        });
        self
    }
}

/// A created (or found again) job.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// The job.
    pub job: Job,
    /// Whether the job existed already: the same idempotency key and request hash were
    /// submitted before.
    pub replayed: bool,
}

/// Which jobs to list, newest first.
///
/// # Defaults
///
/// Every status and origin, from the newest, 50 per page ([`JobQuery::DEFAULT_LIMIT`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobQuery {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this origin.
    pub origin: Option<Origin>,
    /// Only jobs older than this one: the previous page's [`JobPage::next`].
    pub before: Option<JobId>,
    /// At most this many (1 to [`JobQuery::MAX_LIMIT`]; outside, the nearest bound).
    pub limit: u32,
}

impl JobQuery {
    /// The page size unless another is asked for.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The largest page.
    pub const MAX_LIMIT: u32 = 500;
}

impl Default for JobQuery {
    fn default() -> JobQuery {
        JobQuery {
            status: None,
            origin: None,
            before: None,
            limit: JobQuery::DEFAULT_LIMIT,
        }
    }
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<Job>,
    /// The cursor of the next page ([`JobQuery::before`]), if there are older jobs.
    pub next: Option<JobId>,
}

pub(crate) fn decode_error(what: &dyn fmt::Display, err: sqlx::Error) -> Error {
    Error::new(ErrorKind::Database, format!("reading {what}")).with_source(err)
}

/// Reads a row of [`job_columns`].
pub(crate) fn job_from_row(row: &impl StoreRow) -> Result<Job, Error> {
    let id_text = row.text("id").map_err(|e| decode_error(&"a job", e))?;
    let whose = format!("job {id_text}");
    let get = |e| decode_error(&whose, e);
    let id = parse_name::<JobId>(&id_text, "job id", &whose)?;
    let lease = match (
        row.opt_text("lease_owner").map_err(get)?,
        row.opt_int("lease_expires_at").map_err(get)?,
    ) {
        (Some(owner), Some(expires_at)) => Some(LeaseInfo { owner, expires_at }),
        _ => None,
    };
    Ok(Job {
        id,
        status: parse_name(&row.text("status").map_err(get)?, "job status", &whose)?,
        origin: parse_name(&row.text("origin").map_err(get)?, "job origin", &whose)?,
        input: parse_json(&row.text("input").map_err(get)?, "input", &whose)?,
        idempotency_key: row.opt_text("idempotency_key").map_err(get)?,
        created_at: row.int("created_at").map_err(get)?,
        updated_at: row.int("updated_at").map_err(get)?,
        result: parse_opt_json(row.opt_text("result").map_err(get)?, "result", &whose)?,
        error: parse_opt_json(row.opt_text("error").map_err(get)?, "error", &whose)?,
        attention: parse_opt_json(row.opt_text("attention").map_err(get)?, "attention", &whose)?,
        cancel_requested: row.int("cancel_requested").map_err(get)? != 0,
        lease,
        fence: row.int("lease_fence").map_err(get)?,
        last_event: row.int("event_seq").map_err(get)?,
    })
}

/// Reads a row of [`SELECT_STEPS`].
pub(crate) fn step_from_row(row: &impl StoreRow, job: JobId) -> Result<StepRecord, Error> {
    let whose = format!("a step of job {job}");
    let get = |e| decode_error(&whose, e);
    Ok(StepRecord {
        name: parse_name::<StepName>(&row.text("name").map_err(get)?, "step", &whose)?,
        state: parse_name::<StepState>(&row.text("state").map_err(get)?, "step state", &whose)?,
        attempts: u32::try_from(row.int("attempts").map_err(get)?).unwrap_or(u32::MAX),
        external_id: row.opt_text("external_id").map_err(get)?,
        correlation: row.opt_text("correlation").map_err(get)?,
        result: parse_opt_json(row.opt_text("result").map_err(get)?, "step result", &whose)?,
        error: row.opt_text("error").map_err(get)?,
        started_at: row.opt_int("started_at").map_err(get)?,
        finished_at: row.opt_int("finished_at").map_err(get)?,
    })
}

/// Steps in pipeline order.
pub(crate) fn sort_steps(steps: &mut [StepRecord]) {
    steps.sort_by_key(|s| s.name);
}

pub(crate) fn not_found(id: JobId) -> Error {
    Error::new(ErrorKind::NotFound, format!("no job {id}"))
}

const INSERT_JOB: &str = concat!(
    "INSERT INTO jobs (id, status, origin, input, idempotency_key, request_hash, created_at, \
     updated_at, event_seq) VALUES ($1, 'queued', $2, $3, $4, $5, $6, $6, 1) \
     ON CONFLICT (idempotency_key) DO NOTHING RETURNING ",
    job_columns!()
);
const SELECT_JOB: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");
const SELECT_JOB_BY_KEY: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE idempotency_key = $1"
);
pub(crate) const SELECT_STEPS: &str = "SELECT name, state, attempts, external_id, \
     correlation, result, error, started_at, finished_at FROM job_steps WHERE job_id = $1";
/// The steps of the jobs whose ids lie between `$1` and `$2`.
const SELECT_STEPS_BETWEEN: &str = "SELECT job_id, name, state, attempts, external_id, \
     correlation, result, error, started_at, finished_at FROM job_steps \
     WHERE job_id >= $1 AND job_id <= $2";
// Ids are UUIDv7 text: lowercase hex with hyphens at fixed places, so their order is the same
// under any collation, and it is their creation order.
const LIST_JOBS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR origin = $2) \
     AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
);
/// A cancel that needs nobody's consent: the job is waiting, needs attention, or its runner's
/// lease expired. The fence grows so that a runner that wakes up changes nothing.
const CANCEL_NOW: &str = "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, \
     lease_owner = NULL, lease_expires_at = NULL, lease_fence = lease_fence + 1, \
     event_seq = event_seq + 1, updated_at = $2 \
     WHERE id = $1 AND (status IN ('queued', 'needs_attention') \
     OR (status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at <= $2))) \
     RETURNING event_seq";
/// A cancel the runner must carry out: it sees the flag when it renews its lease.
const CANCEL_LATER: &str = "UPDATE jobs SET cancel_requested = 1, event_seq = event_seq + 1, \
     updated_at = $2 WHERE id = $1 AND status = 'running' AND cancel_requested = 0 \
     RETURNING event_seq";

impl Store {
    /// Creates a queued job, or finds the one created before with the same idempotency key and
    /// request hash.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Conflict`] when the idempotency key was used with another request hash.
    pub async fn create_job(&self, new: &NewJob) -> Result<Created, Error> {
        let id = JobId::generate();
        let now = now_millis();
        let input = to_json(&new.input);
        let key = new.idempotency.as_ref().map(|i| i.key.as_str());
        let hash = new.idempotency.as_ref().map(|i| i.request_hash.as_str());
        let event = to_json(&json!({"status": JobStatus::Queued, "origin": new.origin}));
        let outcome: Result<Created, Fail> = on_backend!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(INSERT_JOB)
                .bind(id.to_string())
                .bind(new.origin.as_str())
                .bind(&input)
                .bind(key)
                .bind(hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = inserted {
                let job = job_from_row(&row)?;
                sqlx::query(INSERT_EVENT)
                    .bind(id.to_string())
                    .bind(1_i64)
                    .bind(now)
                    .bind("status")
                    .bind(&event)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::debug!(job = %job.id, origin = %new.origin, "job created");
                return Ok(Created {
                    job,
                    replayed: false,
                });
            }
            let row = sqlx::query(SELECT_JOB_BY_KEY)
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
            let stored_hash: Option<String> = row.try_get("request_hash")?;
            let job = job_from_row(&row)?;
            if stored_hash.as_deref() == hash {
                Ok(Created {
                    job,
                    replayed: true,
                })
            } else {
                Err(Fail::Refused(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "idempotency key {:?} was used for job {} with another request body",
                        key.unwrap_or_default(),
                        job.id
                    ),
                )))
            }
        }
        .await);
        outcome.map_err(|f| self.fail("creating a job", f))
    }

    /// The job with its steps.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when there is no such job.
    pub async fn get_job(&self, id: JobId) -> Result<JobDetail, Error> {
        let outcome: Result<JobDetail, Fail> = on_backend!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(SELECT_JOB)
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Err(Fail::Refused(not_found(id)));
            };
            let job = job_from_row(&row)?;
            let rows = sqlx::query(SELECT_STEPS)
                .bind(id.to_string())
                .fetch_all(&mut *tx)
                .await?;
            let mut steps = rows
                .iter()
                .map(|r| step_from_row(r, id))
                .collect::<Result<Vec<_>, Error>>()?;
            sort_steps(&mut steps);
            Ok(JobDetail { job, steps })
        }
        .await);
        outcome.map_err(|f| self.fail("reading a job", f))
    }

    /// A page of jobs, newest first (see [`JobQuery`]).
    pub async fn list_jobs(&self, query: &JobQuery) -> Result<JobPage, Error> {
        let limit = query.limit.clamp(1, JobQuery::MAX_LIMIT);
        let outcome: Result<Vec<Job>, Fail> = on_backend!(self, |pool| async {
            let rows = sqlx::query(LIST_JOBS)
                .bind(query.status.map(JobStatus::as_str))
                .bind(query.origin.map(Origin::as_str))
                .bind(query.before.map(|id| id.to_string()))
                .bind(i64::from(limit) + 1)
                .fetch_all(pool)
                .await?;
            Ok(rows
                .iter()
                .map(job_from_row)
                .collect::<Result<Vec<_>, Error>>()?)
        }
        .await);
        let mut jobs = outcome.map_err(|f| self.fail("listing jobs", f))?;
        let next = if jobs.len() > limit as usize {
            jobs.truncate(limit as usize);
            jobs.last().map(|j| j.id)
        } else {
            None
        };
        Ok(JobPage { jobs, next })
    }

    /// A page of jobs, newest first, each with its steps: what [`Store::list_jobs`] lists,
    /// with the steps of all of them read by one more statement (not one per job).
    pub async fn list_job_details(&self, query: &JobQuery) -> Result<Vec<JobDetail>, Error> {
        let limit = query.limit.clamp(1, JobQuery::MAX_LIMIT);
        let outcome: Result<Vec<JobDetail>, Fail> = on_backend!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(LIST_JOBS)
                .bind(query.status.map(JobStatus::as_str))
                .bind(query.origin.map(Origin::as_str))
                .bind(query.before.map(|id| id.to_string()))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
            let mut details = rows
                .iter()
                .map(|row| {
                    Ok(JobDetail {
                        job: job_from_row(row)?,
                        steps: Vec::new(),
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            // Newest first: the page's ids run from the last one's to the first one's.
            let (Some(newest), Some(oldest)) = (details.first(), details.last()) else {
                return Ok(details);
            };
            let steps = sqlx::query(SELECT_STEPS_BETWEEN)
                .bind(oldest.job.id.to_string())
                .bind(newest.job.id.to_string())
                .fetch_all(&mut *tx)
                .await?;
            for row in &steps {
                let id = parse_name::<JobId>(
                    &row.text("job_id").map_err(|e| decode_error(&"a step", e))?,
                    "job id",
                    &"a step",
                )?;
                // Jobs in the range that the query's filters left out are skipped.
                if let Some(detail) = details.iter_mut().find(|d| d.job.id == id) {
                    detail.steps.push(step_from_row(row, id)?);
                }
            }
            for detail in &mut details {
                sort_steps(&mut detail.steps);
            }
            Ok(details)
        }
        .await);
        outcome.map_err(|f| self.fail("listing jobs", f))
    }

    /// Cancels a job: at once when no runner holds it (queued, needing attention, or its
    /// runner's lease expired); otherwise the job is marked and its runner cancels it when it
    /// next renews its lease ([`Renewal::cancel_requested`](crate::Renewal)). Asking again is
    /// harmless. Returns the job as it is now.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Conflict`] when the job already succeeded or
    /// failed.
    pub async fn request_cancel(&self, id: JobId) -> Result<Job, Error> {
        let now = now_millis();
        let outcome: Result<Job, Fail> = on_backend!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let now_row = sqlx::query(CANCEL_NOW)
                .bind(id.to_string())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let (seq, kind, data) = if let Some(row) = now_row {
                let seq: i64 = row.try_get(0)?;
                (
                    Some(seq),
                    "status",
                    json!({"status": JobStatus::Cancelled, "reason": "cancel requested"}),
                )
            } else {
                let later = sqlx::query(CANCEL_LATER)
                    .bind(id.to_string())
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                let seq = later.map(|row| row.try_get::<i64, _>(0)).transpose()?;
                (seq, "cancel_requested", json!({}))
            };
            if let Some(seq) = seq {
                sqlx::query(INSERT_EVENT)
                    .bind(id.to_string())
                    .bind(seq)
                    .bind(now)
                    .bind(kind)
                    .bind(to_json(&data))
                    .execute(&mut *tx)
                    .await?;
            }
            let Some(row) = sqlx::query(SELECT_JOB)
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Err(Fail::Refused(not_found(id)));
            };
            let job = job_from_row(&row)?;
            if matches!(job.status, JobStatus::Succeeded | JobStatus::Failed) {
                return Err(Fail::Refused(Error::new(
                    ErrorKind::Conflict,
                    format!("job {id} already {}: nothing to cancel", job.status),
                )));
            }
            tx.commit().await?;
            Ok(job)
        }
        .await);
        let job = outcome.map_err(|f| self.fail("cancelling a job", f))?;
        tracing::debug!(job = %id, status = %job.status, "cancel requested");
        Ok(job)
    }
}
