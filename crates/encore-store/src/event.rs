//! A job's timeline: numbered events for server-sent events and a status page.
//!
//! Each event's `seq` is made by its writer from the job row's counter (`jobs.event_seq`),
//! under the job row's lock and in the same transaction as the change it records, so the seqs
//! of a job have no gaps and followers read them in order. The store writes `status` events
//! (`{"status": …}`), `step` events for every journal write (`{"step": …, "state": …}`),
//! `cancel_requested`, `resolved` and `callback` events; a runner adds its own through
//! [`Lease::append_event`](crate::Lease::append_event) (retries, waits).

use encore_pipeline::job::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::{JobId, decode_error};
use crate::row::{StoreRow, parse_json};
use crate::store::Fail;
use crate::{Error, Store};

/// One event of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// The job.
    pub job_id: JobId,
    /// Its number: 1 for the job's creation, then one more per event.
    pub seq: i64,
    /// When it was written.
    pub at: Millis,
    /// What kind of event (`status`, `step`, `callback`, … or a runner's own).
    pub kind: String,
    /// Its data (JSON).
    pub data: Value,
}

pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO job_events (job_id, seq, at, kind, data) VALUES ($1, $2, $3, $4, $5)";

const EVENTS_AFTER: &str = "SELECT seq, at, kind, data FROM job_events \
     WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

impl Store {
    /// The job's events after `seq` (0 for all), in order, at most `limit` (at least 1, at most
    /// 1000). A follower polls with the last seq it saw. A job that does not exist has none.
    pub async fn events_after(
        &self,
        job: JobId,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<JobEvent>, Error> {
        let limit = i64::from(limit.clamp(1, 1000));
        let outcome: Result<Vec<JobEvent>, Fail> = on_backend!(self, |pool| async {
            let rows = sqlx::query(EVENTS_AFTER)
                .bind(job.to_string())
                .bind(seq)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows
                .iter()
                .map(|row| event_from_row(row, job))
                .collect::<Result<Vec<_>, Error>>()?)
        }
        .await);
        outcome.map_err(|f| self.fail("reading events", f))
    }
}

fn event_from_row(row: &impl StoreRow, job_id: JobId) -> Result<JobEvent, Error> {
    let whose = format!("an event of job {job_id}");
    let get = |e| decode_error(&whose, e);
    Ok(JobEvent {
        job_id,
        seq: row.int("seq").map_err(get)?,
        at: row.int("at").map_err(get)?,
        kind: row.text("kind").map_err(get)?,
        data: parse_json(&row.text("data").map_err(get)?, "event data", &whose)?,
    })
}
