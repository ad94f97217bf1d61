//! Provider callbacks: `POST /hooks/suno/{job}/{token}` (Suno's `callBackUrl`) and
//! `POST /hooks/creatomate/{job}/{token}` (Creatomate's `webhook_url`).
//!
//! A callback is untrusted input. Its URL's token must be the HMAC of its job and step (else
//! 404, as for any unknown URL); its body must be JSON naming a task or render (else 400); what
//! it names is checked by a free read from the provider (Suno: the task's `callBackUrl` is this
//! step's address; Creatomate: the render's metadata names this job) before it may change a
//! job: a refuted claim is answered 422 and changes nothing. A verified (or, when the provider
//! could not be read, an unverified) callback is recorded once (providers repeat themselves),
//! wakes the job's waiting step, and — verified — resumes a job that needed attention because
//! the answer it names was lost.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use encore_pipeline::{StepName, StepState};
use encore_store::{JobId, NewCallback};
use http::StatusCode;
use serde_json::{Value, json};

use super::Shared;
use super::callbacks::address;
use super::error::{ApiError, Body, PathParams};
use super::metrics::CallbackRejection;

/// Longest external id accepted from a callback.
const MAX_ID: usize = 200;
/// How long a callback's free read may take before the callback is recorded unverified.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST /hooks/suno/{job}/{token}`.
pub(crate) async fn suno(
    State(shared): State<Arc<Shared>>,
    PathParams((job, token)): PathParams<(String, String)>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    receive(&shared, StepName::SongSubmit, &job, &token, &body).await
}

/// `POST /hooks/creatomate/{job}/{token}`.
pub(crate) async fn creatomate(
    State(shared): State<Arc<Shared>>,
    PathParams((job, token)): PathParams<(String, String)>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    receive(&shared, StepName::VideoSubmit, &job, &token, &body).await
}

fn unknown() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "hook.unknown",
        "no such callback address",
    )
}

fn malformed(why: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "hook.malformed", why)
}

/// What a callback's body says: the external id and its kind.
fn parse(step: StepName, body: &[u8]) -> Result<(String, String), ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| malformed("the body is not JSON"))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let (id, kind) = match step {
        // Suno: {"code", "msg", "data": {"callbackType", "task_id", "data": [...]}}; snake_case
        // per the docs, camelCase tolerated.
        StepName::SongSubmit => {
            let data = value.get("data");
            let id = text(data.and_then(|d| d.get("task_id")))
                .or_else(|| text(data.and_then(|d| d.get("taskId"))))
                .or_else(|| text(value.get("task_id")))
                .or_else(|| text(value.get("taskId")));
            let kind = text(data.and_then(|d| d.get("callbackType")))
                .or_else(|| value.get("code").map(|c| format!("code-{c}")))
                .unwrap_or_else(|| "unknown".to_owned());
            (id, kind)
        }
        // Creatomate: the render object.
        _ => (
            text(value.get("id")),
            text(value.get("status")).unwrap_or_else(|| "unknown".to_owned()),
        ),
    };
    let id = id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| malformed("the body names no task or render"))?;
    if id.len() > MAX_ID || id.chars().any(char::is_control) {
        return Err(malformed("the id it names is not an id"));
    }
    let kind: String = kind.chars().filter(|c| !c.is_control()).take(40).collect();
    Ok((id, kind))
}

/// Receives a callback, and counts it (received; verified or rejected, and why).
async fn receive(
    shared: &Shared,
    step: StepName,
    job: &str,
    token: &str,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    let provider = super::callbacks::hook_segment(step);
    shared.metrics.callback_received(provider);
    let answer = handle(shared, step, job, token, body).await;
    match &answer {
        Ok((_, true)) => shared.metrics.callback_verified(provider),
        Ok((_, false)) => {}
        Err(e) => {
            let why = match e.code() {
                "hook.malformed" => CallbackRejection::Malformed,
                "hook.unverified" => CallbackRejection::Refuted,
                _ => CallbackRejection::UnknownAddress,
            };
            shared.metrics.callback_rejected(provider, why);
        }
    }
    answer.map(|(json, _)| json)
}

/// What a callback does: its answer, and whether the provider confirmed it.
async fn handle(
    shared: &Shared,
    step: StepName,
    job: &str,
    token: &str,
    body: &[u8],
) -> Result<(Json<Value>, bool), ApiError> {
    let Ok(job) = job.parse::<JobId>() else {
        return Err(unknown());
    };
    if !shared.secret.verify(job, step, token) {
        tracing::warn!(job = %job, step = %step, "callback with a wrong token: ignored");
        return Err(unknown());
    }
    let (external_id, kind) = parse(step, body)?;
    let Some(public_url) = &shared.public_url else {
        return Err(unknown());
    };
    let detail = shared.store.get_job(job).await.map_err(|e| {
        if e.is_not_found() {
            unknown()
        } else {
            ApiError::store(&e)
        }
    })?;
    let record = detail.steps.iter().find(|s| s.name == step);
    // What the job stored itself needs no provider read: the callback only confirms it.
    let known = record.is_some_and(|r| {
        r.state == StepState::Done && r.external_id.as_deref() == Some(external_id.as_str())
    });
    let verified = if known {
        Some(true)
    } else {
        let address = address(public_url, &shared.secret, job, step);
        let pipeline = shared.pipeline();
        let job_text = job.to_string();
        tokio::time::timeout(
            VERIFY_TIMEOUT,
            pipeline.verify_callback(&job_text, step, &external_id, &address),
        )
        .await
        .ok()
        .flatten()
    };
    if verified == Some(false) {
        tracing::warn!(job = %job, step = %step, id = %external_id, "a callback's claim was refuted by the provider: ignored");
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "hook.unverified",
            "the provider does not confirm what this callback names",
        ));
    }
    let payload: Option<Value> = serde_json::from_slice(body).ok();
    let receipt = shared
        .store
        .record_callback(&NewCallback {
            job_id: job,
            step,
            external_id: external_id.clone(),
            kind: kind.clone(),
            payload,
            verified: verified == Some(true),
        })
        .await
        .map_err(|e| {
            if e.is_not_found() {
                unknown()
            } else {
                ApiError::store(&e)
            }
        })?;
    // Wake the job's step when this callback can end its wait (Suno's `text` and `first`
    // stages cannot, unless `first` is accepted), or when its answer is still unknown.
    let ends_wait = match step {
        StepName::SongSubmit => {
            matches!(kind.as_str(), "complete" | "error")
                || kind.starts_with("code-")
                || (kind == "first" && shared.pipeline.accept_first_success)
        }
        _ => true,
    };
    if ends_wait || !known {
        shared.hub.notify(job, step);
    }
    tracing::info!(
        job = %job, step = %step, kind = %kind, verified = ?verified,
        duplicate = receipt.duplicate, requeued = receipt.requeued, "callback received"
    );
    if receipt.requeued {
        shared.new_job.notify_waiters();
    }
    let answer = Json(json!({
        "received": true,
        "verified": verified == Some(true),
        "duplicate": receipt.duplicate,
    }));
    Ok((answer, verified == Some(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_leniently_and_refused_when_they_name_nothing() {
        let suno = br#"{"code":200,"msg":"ok","data":{"callbackType":"complete","task_id":"t-1","data":[]}}"#;
        assert_eq!(
            parse(StepName::SongSubmit, suno).unwrap(),
            ("t-1".into(), "complete".into())
        );
        let camel = br#"{"code":200,"data":{"callbackType":"first","taskId":"t-2"}}"#;
        assert_eq!(parse(StepName::SongSubmit, camel).unwrap().0, "t-2");
        let error = br#"{"code":501,"msg":"failed","data":{"task_id":"t-3"}}"#;
        assert_eq!(
            parse(StepName::SongSubmit, error).unwrap(),
            ("t-3".into(), "code-501".into())
        );
        let render = br#"{"id":"r-1","status":"succeeded","metadata":"encore job=x"}"#;
        assert_eq!(
            parse(StepName::VideoSubmit, render).unwrap(),
            ("r-1".into(), "succeeded".into())
        );
        for bad in [
            &b"not json"[..],
            b"{}",
            b"[]",
            br#"{"data":{"task_id":""}}"#,
            br#"{"data":{"task_id":42}}"#,
        ] {
            assert!(parse(StepName::SongSubmit, bad).is_err());
        }
        let long = format!(r#"{{"id":"{}"}}"#, "r".repeat(201));
        assert!(parse(StepName::VideoSubmit, long.as_bytes()).is_err());
        assert!(parse(StepName::VideoSubmit, br#"{"id":"a\nb"}"#).is_err());
    }
}
