//! A count of the store's jobs by status and of billed steps whose outcome is unknown: what a
//! metrics scrape or a status page reads, in two grouped queries.

use encore_pipeline::job::{JobStatus, StepName};
use sqlx::Row;

use crate::Store;
use crate::store::Fail;

const JOBS_BY_STATUS: &str = "SELECT status, COUNT(*) FROM jobs GROUP BY status";
const UNKNOWN_STEPS: &str =
    "SELECT name, COUNT(*) FROM job_steps WHERE state = 'unknown' GROUP BY name";

/// How many jobs are in each status, and how many steps are `unknown`, right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Jobs per status; every status is listed (0 when none).
    pub jobs: Vec<(JobStatus, u64)>,
    /// Steps whose outcome is unknown (billed requests that may have run), per step; only
    /// steps with at least one.
    pub unknown_steps: Vec<(StepName, u64)>,
}

impl Census {
    /// The jobs in `status`.
    pub fn jobs_in(&self, status: JobStatus) -> u64 {
        self.jobs
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }
}

impl Store {
    /// Counts the jobs by status and the `unknown` steps.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    pub async fn census(&self) -> Result<Census, crate::Error> {
        let outcome: Result<Census, Fail> = on_backend!(self, |pool| async {
            let mut census = Census {
                jobs: JobStatus::ALL.iter().map(|s| (*s, 0)).collect(),
                unknown_steps: Vec::new(),
            };
            for row in sqlx::query(JOBS_BY_STATUS).fetch_all(pool).await? {
                // A status a newer encore wrote is not counted here.
                let status = row.try_get::<String, _>(0)?.parse::<JobStatus>().ok();
                let count: i64 = row.try_get(1)?;
                if let Some(slot) = census.jobs.iter_mut().find(|(s, _)| Some(*s) == status) {
                    slot.1 = count.max(0) as u64;
                }
            }
            for row in sqlx::query(UNKNOWN_STEPS).fetch_all(pool).await? {
                let Ok(step) = row.try_get::<String, _>(0)?.parse::<StepName>() else {
                    continue;
                };
                let count: i64 = row.try_get(1)?;
                census.unknown_steps.push((step, count.max(0) as u64));
            }
            Ok(census)
        }
        .await);
        outcome.map_err(|f| self.fail("counting jobs", f))
    }
}
