//! encore's durable job store: jobs, their journaled steps, leases with fencing, a timeline of
//! events, an inbox of provider callbacks and request quotas shared by every worker, on an
//! embedded SQLite file (the CLI and a single `encore serve`) or on PostgreSQL (several
//! `encore serve` workers) — one schema and one set of migrations for both
//! (`shared/design/service.md`, "Stores").
//!
//! A job survives the process that runs it. A runner [claims](Store::claim_next) it and gets a
//! [`Lease`]: an owner, an expiry it keeps [renewing](Lease::renew), and a **fencing number**
//! that grows with every claim. Every write made through the lease — a step of the journal
//! (`Lease` implements [`encore_pipeline::Journal`]), an event, the job's final status — is
//! conditional on that number in the same transaction, so a runner that was paused or cut off
//! past its expiry, and whose job another runner took over, gets [`ErrorKind::LeaseLost`] and
//! changes nothing. A billed step that a runner left `in_flight` becomes `unknown` when the job
//! is claimed again: it is never resubmitted by itself (an operator [resolves](Store::resolve)
//! it, or a provider callback names what it created).
//!
//! **Backends.** SQLite: WAL, `synchronous = FULL` (a committed write-ahead record survives a
//! power loss), a busy timeout; one `encore serve` per file ([`Store::lock_worker`]), any
//! number of readers and `encore run` processes. PostgreSQL: the tables live in the schema the
//! URL's `search_path` names; claims use `FOR UPDATE SKIP LOCKED`. Both run the same
//! migrations (`migrations/`, portable SQL) at open, after checking that the database is
//! encore's and not newer than this encore ([`SCHEMA_VERSION`]). Every write is one
//! transaction; times are the writers' clocks in milliseconds since the Unix epoch, so workers
//! on several machines keep their clocks in sync (NTP).
//!
//! **Errors** have a kind ([`ErrorKind`]) to branch on: `Unavailable` and `Busy` are
//! retryable; `LeaseLost`, `Conflict`, `NotFound` answer the request; `Incompatible`,
//! `Storage`, `WorkerLocked`, `Invalid` need a person. A PostgreSQL URL's password never
//! appears in an error, a log line or `Debug` output.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use encore_pipeline::{Journal, JobStatus, StepName, StepState};
//! use encore_store::{NewJob, Origin, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path().join("jobs.db").to_str().unwrap()).await?;
//!
//! // The API accepts a job; a worker claims it.
//! let input = serde_json::json!({"business": "a bakery in Mangwon-dong", "name": "Haneul"});
//! let job = store.create_job(&NewJob::new(Origin::Api, input)).await?.job;
//! let lease = store.claim_next("worker-1", Duration::from_secs(30)).await?.expect("a queued job");
//! assert_eq!(lease.job().id, job.id);
//!
//! // Write-ahead: the billed step is stored in flight before its request is sent …
//! lease.start(StepName::SongSubmit, Some("token-1")).await?;
//! // … and done with the provider's id as soon as the answer is in.
//! lease.finish(StepName::SongSubmit, Some("suno-task-7"), &serde_json::json!({})).await?;
//! lease.set_succeeded(&serde_json::json!({"video_url": "https://…/video.mp4"})).await?;
//!
//! let stored = store.get_job(job.id).await?;
//! assert_eq!(stored.job.status, JobStatus::Succeeded);
//! assert_eq!(stored.steps[0].state, StepState::Done);
//! assert_eq!(stored.steps[0].external_id.as_deref(), Some("suno-task-7"));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

/// Runs `$body` with `$pool` bound to the store's SQLite or PostgreSQL pool: one body, written
/// once, compiled for each backend (the queries are portable SQL with `$n` parameters, which
/// both accept). `$body` evaluates to `Result<T, E>` with `E: From<sqlx::Error>` (the driver's
/// error, or `Fail`), and the whole of it — waiting for a connection, the queries, the commit
/// — is bounded by the store's `query_timeout` (`Store::bounded`): every store
/// operation goes through here, so none waits for a database that does not answer.
macro_rules! on_backend {
    ($store:expr, |$pool:ident| $body:expr) => {{
        let store: &$crate::Store = &$store;
        store
            .bounded(async {
                match store.pool() {
                    $crate::store::Pool::Sqlite($pool) => $body,
                    $crate::store::Pool::Postgres($pool) => $body,
                }
            })
            .await
    }};
}

mod callback;
mod census;
pub mod defaults;
mod error;
mod event;
mod id;
mod job;
mod lease;
mod purge;
mod quota;
mod resolve;
mod row;
mod schema;
mod settings;
mod store;
mod target;
mod worker_lock;

pub use callback::{Callback, CallbackId, CallbackReceipt, NewCallback};
pub use census::Census;
pub use error::{Error, ErrorKind};
pub use event::JobEvent;
pub use job::{
    Attention, Created, Idempotency, Job, JobDetail, JobError, JobId, JobPage, JobQuery, LeaseInfo,
    NewJob, Origin,
};
pub use lease::{Lease, Renewal};
pub use purge::{Purge, Purged};
pub use quota::{Admission, Quota};
pub use resolve::Resolution;
pub use schema::SCHEMA_VERSION;
pub use store::{Backend, Store, StoreOptions};
pub use worker_lock::WorkerLock;
