//! Retention: removing finished jobs, with their steps, events and callbacks, once they are old
//! enough that nobody needs them.
//!
//! Only jobs that nothing will touch again go: `succeeded` and `cancelled`, and `failed` when
//! asked. A job that needs attention (a billed step whose outcome is unknown) is never removed,
//! nor one that is queued or running. A removed job's idempotency key goes with it: a client
//! that sends the same key afterwards creates a new job, so keep jobs at least as long as
//! clients may retry (the CLI refuses less than a day).
//!
//! Jobs are removed in batches of [`BATCH`], each in its own transaction, so that a large purge
//! holds no lock for long. The batch's first statement takes its jobs' rows (PostgreSQL: row
//! locks, skipping rows another transaction holds; SQLite: the write lock) and checks their
//! status again, so a failed job resumed meanwhile is left alone.

use std::time::Duration;

use encore_pipeline::job::{JobStatus, Millis, now_millis};
use sqlx::Row;

use crate::row::parse_name;
use crate::store::Fail;
use crate::{Backend, Error, Store};

/// How many jobs one transaction removes.
const BATCH: i64 = 100;

/// The jobs a purge removes: finished before `$1`, succeeded or cancelled, or failed when `$2`
/// is 1.
macro_rules! purgeable {
    () => {
        "updated_at < $1 AND (status IN ('succeeded', 'cancelled') OR ($2 = 1 AND status = 'failed'))"
    };
}

/// Takes a batch: the oldest purgeable jobs, checked again on the rows taken.
macro_rules! take_batch_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET event_seq = event_seq WHERE id IN (SELECT id FROM jobs WHERE ",
            purgeable!(),
            " ORDER BY updated_at, id LIMIT $3",
            $lock,
            ") AND ",
            purgeable!(),
            " RETURNING id, status"
        )
    };
}
const TAKE_BATCH_SQLITE: &str = take_batch_sql!("");
const TAKE_BATCH_POSTGRES: &str = take_batch_sql!(" FOR UPDATE SKIP LOCKED");
const COUNT: &str = concat!(
    "SELECT status, COUNT(*) FROM jobs WHERE ",
    purgeable!(),
    " GROUP BY status"
);
/// A taken job's rows, children first.
const DELETE_JOB: [&str; 4] = [
    "DELETE FROM job_events WHERE job_id = $1",
    "DELETE FROM job_steps WHERE job_id = $1",
    "DELETE FROM callbacks WHERE job_id = $1",
    "DELETE FROM jobs WHERE id = $1",
];

/// Which finished jobs a purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purge {
    /// Jobs whose last change is before this time (unix ms).
    pub finished_before: Millis,
    /// Failed jobs too (they could still be resumed).
    pub include_failed: bool,
}

impl Purge {
    /// The least age a purge should be given (a day): a removed job's idempotency key goes
    /// with it, and a client retrying a request within a day must find its job, not make a new
    /// one. `encore jobs purge` and `serve.retention` refuse less.
    pub const MIN_AGE: Duration = Duration::from_secs(24 * 3600);

    /// The jobs whose last change is more than `age` ago (failed ones too when
    /// `include_failed`). An age reaching before 1970 gives a time before it, which no job has.
    pub fn older_than(age: Duration, include_failed: bool) -> Purge {
        let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        Purge {
            finished_before: now_millis().saturating_sub(age),
            include_failed,
        }
    }
}

/// What a purge removed (or, counted, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    /// Jobs per status; only statuses with at least one.
    pub jobs: Vec<(JobStatus, u64)>,
}

impl Purged {
    /// All the jobs.
    pub fn total(&self) -> u64 {
        self.jobs.iter().map(|(_, n)| n).sum()
    }

    fn add(&mut self, status: JobStatus, count: u64) {
        match self.jobs.iter_mut().find(|(s, _)| *s == status) {
            Some(slot) => slot.1 += count,
            None => self.jobs.push((status, count)),
        }
    }
}

impl Store {
    /// Removes the jobs `purge` selects, with their steps, events and callbacks, and says how
    /// many of each status went.
    /// Never a job that needs attention, is queued or is running; failed jobs only with
    /// [`Purge::include_failed`]. A removed job's idempotency key goes with it.
    ///
    /// # Errors
    ///
    /// When the store cannot be written; the batches committed before stay removed.
    pub async fn purge(&self, purge: &Purge) -> Result<Purged, Error> {
        let sql = match self.backend() {
            Backend::Sqlite => TAKE_BATCH_SQLITE,
            Backend::Postgres => TAKE_BATCH_POSTGRES,
        };
        let mut purged = Purged::default();
        loop {
            let outcome: Result<Vec<(String, String)>, Fail> = on_backend!(self, |pool| async {
                let mut tx = pool.begin().await?;
                let taken: Vec<(String, String)> = sqlx::query_as(sql)
                    .bind(purge.finished_before)
                    .bind(i64::from(purge.include_failed))
                    .bind(BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
                for (id, _) in &taken {
                    for statement in DELETE_JOB {
                        sqlx::query(statement).bind(id).execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(taken)
            }
            .await);
            let taken = outcome.map_err(|f| self.fail("purging finished jobs", f))?;
            for (id, status) in &taken {
                purged.add(parse_name(status, "status", &format_args!("job {id}"))?, 1);
            }
            if taken.len() < BATCH as usize {
                break;
            }
        }
        Ok(purged)
    }

    /// Counts the jobs [`Store::purge`] would remove, removing nothing.
    pub async fn purgeable(&self, purge: &Purge) -> Result<Purged, Error> {
        let outcome: Result<Purged, Fail> = on_backend!(self, |pool| async {
            let mut purged = Purged::default();
            for row in sqlx::query(COUNT)
                .bind(purge.finished_before)
                .bind(i64::from(purge.include_failed))
                .fetch_all(pool)
                .await?
            {
                let status: JobStatus =
                    parse_name(&row.try_get::<String, _>(0)?, "status", &"the job store")?;
                let count: i64 = row.try_get(1)?;
                purged.add(status, count.max(0) as u64);
            }
            Ok(purged)
        }
        .await);
        outcome.map_err(|f| self.fail("counting finished jobs", f))
    }
}
