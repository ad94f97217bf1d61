//! An operator's resolution of a billed step whose outcome is unknown: adopt what the provider
//! created, or send the request again knowing it may be paid twice. Nothing else ever sends a
//! possibly-billed request again.

use encore_pipeline::job::{JobStatus, StepName, StepState, now_millis};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::event::INSERT_EVENT;
use crate::job::{JobDetail, JobId};
use crate::lease::fmt_millis;
use crate::row::to_json;
use crate::store::Fail;
use crate::{Error, ErrorKind, Store};

/// How an operator resolves an `unknown` billed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Resolution {
    /// The request did create `external_id` (a Suno task id, a Creatomate render id, checked
    /// on the provider's dashboard): the step is done with it and the job continues from the
    /// next step. Nothing is paid again.
    Adopt {
        /// The provider's id of what the lost request created.
        external_id: String,
    },
    /// Send the request again. If the lost request did run, this **pays twice**:
    /// `accept_paying_twice` must be `true`.
    Resubmit {
        /// The operator's explicit consent.
        accept_paying_twice: bool,
    },
}

/// Queues the job again, when the step may be resolved: the job has not succeeded or been
/// cancelled, and the step is `unknown`, or `in_flight` with no live lease on the job (its
/// runner stopped). The fence grows: a runner still holding the job changes nothing more.
const REQUEUE_RESOLVED: &str = "UPDATE jobs SET status = 'queued', error = NULL, \
     attention = NULL, lease_owner = NULL, lease_expires_at = NULL, \
     lease_fence = lease_fence + 1, event_seq = event_seq + 1, updated_at = $3 \
     WHERE id = $1 AND status NOT IN ('succeeded', 'cancelled') AND EXISTS (\
     SELECT 1 FROM job_steps WHERE job_steps.job_id = $1 AND job_steps.name = $2 AND \
     (job_steps.state = 'unknown' OR (job_steps.state = 'in_flight' AND \
     (jobs.lease_owner IS NULL OR jobs.lease_expires_at IS NULL OR jobs.lease_expires_at <= $3)))) \
     RETURNING event_seq";
const ADOPT: &str = "UPDATE job_steps SET state = 'done', external_id = $3, result = $4, \
     error = NULL, finished_at = $5 \
     WHERE job_id = $1 AND name = $2 AND state IN ('unknown', 'in_flight')";
const RESUBMIT: &str = "UPDATE job_steps SET state = 'pending', error = $3, finished_at = $4 \
     WHERE job_id = $1 AND name = $2 AND state IN ('unknown', 'in_flight')";

impl Store {
    /// Resolves the billed `step` of job `id` whose outcome is unknown, and queues the job
    /// again (a worker claims an `api` job; `encore run --resume` resumes a `cli` one).
    /// Returns the job with its steps as they are now.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Invalid`]: the step is not billed, the external id is empty, or a
    ///   resubmit without `accept_paying_twice`;
    /// - [`ErrorKind::NotFound`]: no such job;
    /// - [`ErrorKind::Conflict`]: the step is not `unknown` (nor `in_flight` without a live
    ///   lease), or the job succeeded or was cancelled — the message says which.
    pub async fn resolve(
        &self,
        id: JobId,
        step: StepName,
        resolution: &Resolution,
    ) -> Result<JobDetail, Error> {
        if !step.is_billed() {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "resolving job {id}: step {step} is not billed; only a billed step's outcome can be unknown"
                ),
            ));
        }
        match resolution {
            Resolution::Adopt { external_id } if external_id.trim().is_empty() => {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    format!("resolving step {step} of job {id}: the external id to adopt is empty"),
                ));
            }
            Resolution::Resubmit {
                accept_paying_twice: false,
            } => {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    format!(
                        "resolving step {step} of job {id}: resubmitting may pay twice if the lost request ran; confirm with accept_paying_twice"
                    ),
                ));
            }
            _ => {}
        }
        let now = now_millis();
        let (action, event) = match resolution {
            Resolution::Adopt { external_id } => (
                "adopt",
                json!({"step": step, "action": "adopt", "external_id": external_id}),
            ),
            Resolution::Resubmit { .. } => (
                "resubmit",
                json!({"step": step, "action": "resubmit", "accept_paying_twice": true}),
            ),
        };
        let outcome: Result<bool, Fail> = on_backend!(self, |pool| {
            async {
            let mut tx = pool.begin().await?;
            let Some(seq) = sqlx::query_scalar::<_, i64>(REQUEUE_RESOLVED)
                .bind(id.to_string())
                .bind(step.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(false);
            };
            let changed = match resolution {
                Resolution::Adopt { external_id } => sqlx::query(ADOPT)
                    .bind(id.to_string())
                    .bind(step.as_str())
                    .bind(external_id.trim())
                    .bind(to_json(&json!({"adopted": external_id.trim()})))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                Resolution::Resubmit { .. } => sqlx::query(RESUBMIT)
                    .bind(id.to_string())
                    .bind(step.as_str())
                    .bind(
                        "resubmit accepted by an operator: the previous request may have been billed, the next one may pay twice",
                    )
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
            };
            if changed != 1 {
                return Ok(false);
            }
            sqlx::query(INSERT_EVENT)
                .bind(id.to_string())
                .bind(seq)
                .bind(now)
                .bind("resolved")
                .bind(to_json(&event))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await
        });
        let resolved = outcome.map_err(|f| self.fail("resolving a step", f))?;
        let detail = self.get_job(id).await?;
        if resolved {
            tracing::info!(job = %id, %step, action, "unknown step resolved by an operator");
            return Ok(detail);
        }
        Err(refusal(&detail, step, now))
    }
}

/// Why a resolution matched nothing, from the job as it is.
fn refusal(detail: &JobDetail, step: StepName, now: i64) -> Error {
    let id = detail.job.id;
    let conflict = |why: String| {
        Error::new(
            ErrorKind::Conflict,
            format!("resolving step {step} of job {id}: {why}"),
        )
    };
    if matches!(
        detail.job.status,
        JobStatus::Succeeded | JobStatus::Cancelled
    ) {
        return conflict(format!("the job is {}", detail.job.status));
    }
    let Some(record) = detail.steps.iter().find(|s| s.name == step) else {
        return conflict("the step never started: nothing to resolve".to_owned());
    };
    match (record.state, &detail.job.lease) {
        (StepState::InFlight, Some(lease)) if lease.expires_at > now => conflict(format!(
            "the step is in flight under a live lease held by {} until {}; it is not unknown yet",
            lease.owner,
            fmt_millis(lease.expires_at)
        )),
        (state, _) => conflict(format!(
            "the step is {state}, not unknown: nothing to resolve"
        )),
    }
}
