//! The callbacks inbox: what a provider's callback said about a job's step (the external id it
//! names, its kind), kept until a worker has verified it by a free read and used it.
//!
//! A callback is untrusted input: it moves nothing by itself but one thing — a job that
//! `needs_attention` because that step's outcome is unknown goes back to `queued`, so that a
//! worker claims it, verifies the id with the provider and adopts it. Recording the same
//! callback again (providers repeat them) changes nothing more.

use encore_pipeline::job::{Millis, StepName, now_millis};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::INSERT_EVENT;
pub use crate::id::CallbackId;
use crate::job::{JobId, decode_error, not_found};
use crate::row::{StoreRow, parse_name, parse_opt_json, to_json};
use crate::store::Fail;
use crate::{Error, ErrorKind, Store};

/// A callback to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCallback {
    /// The job its URL names.
    pub job_id: JobId,
    /// The step its URL names.
    pub step: StepName,
    /// The provider's id it names (Suno task id, Creatomate render id).
    pub external_id: String,
    /// Its kind or stage (Suno `text`, `first`, `complete`, `error`; Creatomate's status).
    pub kind: String,
    /// Its body, as parsed (size-limited by the receiver).
    pub payload: Option<Value>,
    /// Whether a free read from the provider confirmed what it claims. Only a verified
    /// callback moves a job that needs attention back to the queue.
    pub verified: bool,
}

/// A recorded callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    /// Its id.
    pub id: CallbackId,
    /// The job.
    pub job_id: JobId,
    /// The step.
    pub step: StepName,
    /// The provider's id it names.
    pub external_id: String,
    /// Its kind or stage.
    pub kind: String,
    /// Its body.
    pub payload: Option<Value>,
    /// When it was first received.
    pub received_at: Millis,
    /// When a free read from the provider confirmed what it claims.
    pub verified_at: Option<Millis>,
    /// When a worker used it.
    pub consumed_at: Option<Millis>,
}

/// What recording a callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackReceipt {
    /// The callback's id (the first one's, for a duplicate).
    pub id: CallbackId,
    /// Whether the same callback (job, step, external id, kind) was recorded before.
    pub duplicate: bool,
    /// Whether the job went from `needs_attention` back to `queued`.
    pub requeued: bool,
}

/// Takes the job row's lock first, as every writer of a job does, and finds whether it exists.
const LOCK_JOB: &str = "UPDATE jobs SET updated_at = updated_at WHERE id = $1 RETURNING status";
const INSERT_CALLBACK: &str = "INSERT INTO callbacks (id, job_id, step, external_id, kind, \
     payload, received_at, verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (job_id, step, external_id, kind) DO NOTHING RETURNING id";
const SELECT_DUPLICATE: &str = "SELECT id FROM callbacks \
     WHERE job_id = $1 AND step = $2 AND external_id = $3 AND kind = $4";
/// The job waits for a person because this step is unknown: queue it for a worker to verify
/// and adopt the callback's id. The fence grows as for every change made without a lease.
const REQUEUE: &str = "UPDATE jobs SET status = 'queued', attention = NULL, lease_owner = NULL, \
     lease_expires_at = NULL, lease_fence = lease_fence + 1, event_seq = event_seq + 1, \
     updated_at = $3 WHERE id = $1 AND status = 'needs_attention' AND EXISTS (\
     SELECT 1 FROM job_steps WHERE job_steps.job_id = $1 AND job_steps.name = $2 \
     AND job_steps.state = 'unknown') RETURNING event_seq";
const NEXT_SEQ: &str =
    "UPDATE jobs SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq";
const UNCONSUMED: &str = "SELECT id, job_id, step, external_id, kind, payload, received_at, \
     verified_at, consumed_at FROM callbacks WHERE job_id = $1 AND consumed_at IS NULL \
     ORDER BY received_at, id";
const MARK_VERIFIED: &str =
    "UPDATE callbacks SET verified_at = $2 WHERE id = $1 AND verified_at IS NULL";
const MARK_CONSUMED: &str =
    "UPDATE callbacks SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL";
const CALLBACK_EXISTS: &str = "SELECT id FROM callbacks WHERE id = $1";
const RECEIVED_AFTER: &str = "SELECT id, job_id, step, external_id, kind, payload, received_at, \
     verified_at, consumed_at FROM callbacks WHERE received_at > $1 \
     ORDER BY received_at, id LIMIT $2";

impl Store {
    /// Records a received callback and, when it is verified and its job needs attention
    /// because this step is unknown, queues the job again. Idempotent: the same (job, step, external id, kind)
    /// again is a duplicate and changes nothing more.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when the job does not exist.
    pub async fn record_callback(&self, callback: &NewCallback) -> Result<CallbackReceipt, Error> {
        let now = now_millis();
        let job = callback.job_id.to_string();
        let new_id = CallbackId::generate();
        let payload = callback.payload.as_ref().map(to_json);
        let outcome: Result<CallbackReceipt, Fail> = on_backend!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let exists: Option<String> = sqlx::query_scalar(LOCK_JOB)
                .bind(&job)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(Fail::Refused(not_found(callback.job_id)));
            }
            let inserted: Option<String> = sqlx::query_scalar(INSERT_CALLBACK)
                .bind(new_id.to_string())
                .bind(&job)
                .bind(callback.step.as_str())
                .bind(&callback.external_id)
                .bind(&callback.kind)
                .bind(payload.as_deref())
                .bind(now)
                .bind(callback.verified.then_some(now))
                .fetch_optional(&mut *tx)
                .await?;
            let (id, duplicate) = if inserted.is_some() {
                (new_id, false)
            } else {
                let first: String = sqlx::query_scalar(SELECT_DUPLICATE)
                    .bind(&job)
                    .bind(callback.step.as_str())
                    .bind(&callback.external_id)
                    .bind(&callback.kind)
                    .fetch_one(&mut *tx)
                    .await?;
                (parse_name(&first, "callback id", &"a callback")?, true)
            };
            if duplicate && callback.verified {
                sqlx::query(MARK_VERIFIED)
                    .bind(id.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            let requeued_seq: Option<i64> = if callback.verified {
                sqlx::query_scalar(REQUEUE)
                    .bind(&job)
                    .bind(callback.step.as_str())
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
            } else {
                None
            };
            let requeued = requeued_seq.is_some();
            if !duplicate || requeued {
                let seq: i64 = match requeued_seq {
                    Some(seq) => seq,
                    None => {
                        sqlx::query_scalar(NEXT_SEQ)
                            .bind(&job)
                            .fetch_one(&mut *tx)
                            .await?
                    }
                };
                sqlx::query(INSERT_EVENT)
                    .bind(&job)
                    .bind(seq)
                    .bind(now)
                    .bind("callback")
                    .bind(to_json(&json!({
                        "step": callback.step, "kind": callback.kind,
                        "external_id": callback.external_id, "duplicate": duplicate,
                        "requeued": requeued,
                    })))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(CallbackReceipt {
                id,
                duplicate,
                requeued,
            })
        }
        .await);
        let receipt = outcome.map_err(|f| self.fail("recording a callback", f))?;
        tracing::debug!(
            job = %callback.job_id, step = %callback.step, kind = %callback.kind,
            duplicate = receipt.duplicate, requeued = receipt.requeued, "callback recorded"
        );
        Ok(receipt)
    }

    /// The job's callbacks not yet consumed, oldest first.
    pub async fn unconsumed_callbacks(&self, job: JobId) -> Result<Vec<Callback>, Error> {
        let outcome: Result<Vec<Callback>, Fail> = on_backend!(self, |pool| async {
            let rows = sqlx::query(UNCONSUMED)
                .bind(job.to_string())
                .fetch_all(pool)
                .await?;
            Ok(rows
                .iter()
                .map(callback_from_row)
                .collect::<Result<Vec<_>, Error>>()?)
        }
        .await);
        outcome.map_err(|f| self.fail("reading callbacks", f))
    }

    /// Callbacks received after `after` (any job's, oldest first, at most `limit`): how a
    /// worker learns of callbacks that another worker received for a job it runs.
    pub async fn callbacks_received_after(
        &self,
        after: Millis,
        limit: i64,
    ) -> Result<Vec<Callback>, Error> {
        let outcome: Result<Vec<Callback>, Fail> = on_backend!(self, |pool| async {
            let rows = sqlx::query(RECEIVED_AFTER)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows
                .iter()
                .map(callback_from_row)
                .collect::<Result<Vec<_>, Error>>()?)
        }
        .await);
        outcome.map_err(|f| self.fail("reading recent callbacks", f))
    }

    /// Marks a callback as verified by a free read from the provider. `false` when it was
    /// already.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when there is no such callback.
    pub async fn mark_callback_verified(&self, id: CallbackId) -> Result<bool, Error> {
        self.mark_callback(id, MARK_VERIFIED, "marking a callback verified")
            .await
    }

    /// Marks a callback as used by a worker: it no longer appears among the unconsumed.
    /// `false` when it was already.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when there is no such callback.
    pub async fn mark_callback_consumed(&self, id: CallbackId) -> Result<bool, Error> {
        self.mark_callback(id, MARK_CONSUMED, "marking a callback consumed")
            .await
    }

    async fn mark_callback(&self, id: CallbackId, sql: &str, op: &str) -> Result<bool, Error> {
        let now = now_millis();
        let outcome: Result<bool, Fail> = on_backend!(self, |pool| async {
            let changed = sqlx::query(sql)
                .bind(id.to_string())
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
            if changed == 1 {
                return Ok(true);
            }
            let exists: Option<String> = sqlx::query_scalar(CALLBACK_EXISTS)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?;
            match exists {
                Some(_) => Ok(false),
                None => Err(Fail::Refused(Error::new(
                    ErrorKind::NotFound,
                    format!("no callback {id}"),
                ))),
            }
        }
        .await);
        outcome.map_err(|f| self.fail(op, f))
    }
}

fn callback_from_row(row: &impl StoreRow) -> Result<Callback, Error> {
    let get = |e| decode_error(&"a callback", e);
    let id_text = row.text("id").map_err(get)?;
    let whose = format!("callback {id_text}");
    Ok(Callback {
        id: parse_name(&id_text, "callback id", &whose)?,
        job_id: parse_name(&row.text("job_id").map_err(get)?, "job id", &whose)?,
        step: parse_name(&row.text("step").map_err(get)?, "step", &whose)?,
        external_id: row.text("external_id").map_err(get)?,
        kind: row.text("kind").map_err(get)?,
        payload: parse_opt_json(row.opt_text("payload").map_err(get)?, "payload", &whose)?,
        received_at: row.int("received_at").map_err(get)?,
        verified_at: row.opt_int("verified_at").map_err(get)?,
        consumed_at: row.opt_int("consumed_at").map_err(get)?,
    })
}
