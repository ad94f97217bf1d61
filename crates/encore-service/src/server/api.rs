//! The `/v1` API: jobs, their events, cancel and resolve; and `/healthz`, `/readyz`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use encore_pipeline::{JobStatus, StepState};
use encore_store::{JobId, JobQuery, NewJob, Origin};
use futures_util::Stream;
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Shared;
use super::doc::{EventDocument, JobDocument, JobPageDocument, ResolveRequest};
use super::error::{ApiError, Body, PathParams};
use crate::JobInput;

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse::<JobId>().map_err(|_| ApiError::job_not_found(id))
}

fn input_error(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "input.invalid", message)
}

async fn document(shared: &Shared, id: JobId) -> Result<JobDocument, ApiError> {
    let detail = shared
        .store
        .get_job(id)
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(JobDocument::from(&detail))
}

/// Submits a job.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body = JobInput,
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
        description = "the same key and body give the same job; the same key with another body is refused (409); 1 to 255 printable ASCII characters")),
    responses(
        (status = 201, description = "the job was created", body = JobDocument),
        (status = 200, description = "the job this idempotency key created before", body = JobDocument),
        (status = 400, description = "the body is not JSON, or the key is unusable", body = super::doc::ErrorBody),
        (status = 409, description = "the key was used with another body", body = super::doc::ErrorBody),
        (status = 422, description = "a field is missing, unknown or invalid", body = super::doc::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create_job(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "body.malformed",
            "the body is not JSON",
        )
    })?;
    let input: JobInput =
        serde_json::from_value(value).map_err(|e| input_error(format!("the job's input: {e}")))?;
    input
        .to_business()
        .map_err(|e| input_error(e.to_string()))?;
    let stored = serde_json::to_value(&input).expect("an input serializes");
    let mut new = NewJob::new(Origin::Api, stored.clone());
    if let Some(key) = headers.get("idempotency-key") {
        let key = key
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
            .filter(|k| k.chars().all(|c| c.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency.invalid",
                    "Idempotency-Key must be 1 to 255 printable ASCII characters",
                )
            })?;
        let hash = Sha256::digest(serde_json::to_vec(&stored).expect("JSON"));
        let hash = hash.iter().fold(String::new(), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
        new = new.with_idempotency(key, hash);
    }
    let created = shared.store.create_job(&new).await.map_err(|e| {
        if e.is_conflict() {
            ApiError::new(
                StatusCode::CONFLICT,
                "idempotency.conflict",
                "this Idempotency-Key was used with another body",
            )
        } else {
            ApiError::store(&e)
        }
    })?;
    // The document is read before the worker is woken for it: the answer shows the job as it
    // was created (unless a worker's periodic claim came first: then it is already running).
    let doc = document(&shared, created.job.id).await;
    shared.new_job.notify_waiters();
    let doc = doc?;
    let status = if created.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let location = format!("/v1/jobs/{}", doc.id);
    Ok((status, [(header::LOCATION, location)], Json(doc)).into_response())
}

/// One job.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "the job's id")),
    responses(
        (status = 200, body = JobDocument),
        (status = 404, body = super::doc::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_job(
    State(shared): State<Arc<Shared>>,
    PathParams(id): PathParams<String>,
) -> Result<Json<JobDocument>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(document(&shared, id).await?))
}

/// The filters of `GET /v1/jobs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only jobs in this status.
    #[param(schema_with = job_status)]
    status: Option<String>,
    /// At most this many (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The previous page's `next` (a job's id).
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    before: Option<String>,
}

/// The schema of `?status=`: a job status (`schema_with` leaves the field's doc out).
fn job_status() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("Only jobs in this status."))
        .enum_values(Some(JobStatus::ALL.iter().map(|s| s.as_str())))
        .build()
}

/// 422 `query.invalid`: a query string that does not say what the route takes.
fn query_invalid(rejection: &axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "query.invalid",
        rejection.body_text(),
    )
}

/// Jobs, newest first.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, body = JobPageDocument),
        (status = 422, body = super::doc::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_jobs(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPageDocument>, ApiError> {
    let Query(query) = query.map_err(|e| query_invalid(&e))?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<JobStatus>)
        .transpose()
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "query.invalid",
                e.to_string(),
            )
        })?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "query.invalid",
            "limit must be between 1 and 100",
        ));
    }
    let before = query
        .before
        .as_deref()
        .map(str::parse::<JobId>)
        .transpose()
        .map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "query.invalid",
                "before is not a job id",
            )
        })?;
    let page = shared
        .store
        .list_jobs(&JobQuery {
            status,
            origin: None,
            before,
            limit,
        })
        .await
        .map_err(|e| ApiError::store(&e))?;
    let mut jobs = Vec::with_capacity(page.jobs.len());
    for job in &page.jobs {
        jobs.push(document(&shared, job.id).await?);
    }
    Ok(Json(JobPageDocument {
        jobs,
        next: page.next.map(|id| id.to_string()),
    }))
}

/// Asks a job to stop: at once when no worker runs it, else at its next safe point (a billed
/// request in flight is awaited and stored first).
#[utoipa::path(
    post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "the job's id")),
    responses(
        (status = 202, body = JobDocument),
        (status = 404, body = super::doc::ErrorBody),
        (status = 409, description = "the job has ended", body = super::doc::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn cancel_job(
    State(shared): State<Arc<Shared>>,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<JobDocument>), ApiError> {
    let id = parse_id(&id)?;
    shared
        .store
        .request_cancel(id)
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok((StatusCode::ACCEPTED, Json(document(&shared, id).await?)))
}

/// Resolves a billed step whose outcome is unknown: adopt what the provider created (nothing
/// is paid again), or resubmit accepting that it may be paid twice.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/resolve", tag = "jobs",
    params(("id" = String, Path, description = "the job's id")),
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "the job is queued again", body = JobDocument),
        (status = 404, body = super::doc::ErrorBody),
        (status = 409, description = "the step's outcome is not unknown", body = super::doc::ErrorBody),
        (status = 422, body = super::doc::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn resolve_job(
    State(shared): State<Arc<Shared>>,
    PathParams(id): PathParams<String>,
    Body(body): Body,
) -> Result<Json<JobDocument>, ApiError> {
    let id = parse_id(&id)?;
    let invalid = |message: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "resolve.invalid", message)
    };
    let request: ResolveRequest =
        serde_json::from_slice(&body).map_err(|e| invalid(e.to_string()))?;
    let (step, resolution) = request.resolution().map_err(invalid)?;
    let detail = shared
        .store
        .get_job(id)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let step = match step {
        Some(step) => step,
        None => detail
            .steps
            .iter()
            .find(|s| {
                s.name.is_billed() && matches!(s.state, StepState::Unknown | StepState::InFlight)
            })
            .map(|s| s.name)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "resolve.refused",
                    "no billed step of this job has an unknown outcome",
                )
            })?,
    };
    let resolved = shared
        .store
        .resolve(id, step, &resolution)
        .await
        .map_err(|e| match e.kind() {
            encore_store::ErrorKind::Conflict => {
                ApiError::new(StatusCode::CONFLICT, "resolve.refused", e.to_string())
            }
            encore_store::ErrorKind::Invalid => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "resolve.invalid",
                e.to_string(),
            ),
            _ => ApiError::store(&e),
        })?;
    shared.new_job.notify_waiters();
    Ok(Json(JobDocument::from(&resolved)))
}

/// Follows a job: its timeline as server-sent events (`id` = the event's number, `event` = its
/// kind, `data` = an [`EventDocument`]), from `Last-Event-ID` (or `?after=`) on; the stream
/// ends with an `end` event once the job has succeeded, failed or been cancelled.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(
        ("id" = String, Path, description = "the job's id"),
        ("Last-Event-ID" = Option<i64>, Header, nullable = false, description = "resume after this event (wins over `?after=`)"),
        AfterQuery,
    ),
    responses(
        (status = 200, description = "the job's events, then `end`; the schema is that of each frame", body = super::schema::EventFrame, content_type = "text/event-stream"),
        (status = 400, description = "`Last-Event-ID` is not an event's number (`last_event_id.invalid`)", body = super::doc::ErrorBody),
        (status = 404, body = super::doc::ErrorBody),
        (status = 422, description = "the query string is not `?after=` an event's number (`query.invalid`)", body = super::doc::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn job_events(
    State(shared): State<Arc<Shared>>,
    PathParams(id): PathParams<String>,
    after: Result<Query<AfterQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Query(after) = after.map_err(|e| query_invalid(&e))?;
    let id = parse_id(&id)?;
    let from_header = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "last_event_id.invalid",
                        "Last-Event-ID must be the number of an event",
                    )
                })
        })
        .transpose()?;
    shared
        .store
        .get_job(id)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let after = from_header.or(after.after).unwrap_or(0).max(0);
    let follow = Follow {
        shared: Arc::clone(&shared),
        id,
        after,
        buffer: VecDeque::new(),
        done: false,
        shutdown: shared.shutdown.subscribe(),
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        let event = f.next().await?;
        Some((Ok(event), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `?after=` for the event stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AfterQuery {
    /// Resume after this event (as `Last-Event-ID`, for clients that cannot set headers).
    after: Option<i64>,
}

/// The state of one event stream.
struct Follow {
    shared: Arc<Shared>,
    id: JobId,
    after: i64,
    buffer: VecDeque<SseEvent>,
    done: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Follow {
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some(event);
            }
            if self.done || *self.shutdown.borrow() {
                return None;
            }
            match self
                .shared
                .store
                .events_after(self.id, self.after, 100)
                .await
            {
                Ok(events) if !events.is_empty() => {
                    for event in &events {
                        self.after = event.seq;
                        let doc = EventDocument::from(event);
                        let sse = SseEvent::default()
                            .id(event.seq.to_string())
                            .event(event.kind.clone())
                            .json_data(&doc)
                            .unwrap_or_default();
                        self.buffer.push_back(sse);
                    }
                    continue;
                }
                Ok(_) => {
                    if let Ok(detail) = self.shared.store.get_job(self.id).await
                        && detail.job.status.is_final()
                    {
                        self.done = true;
                        self.buffer.push_back(
                            SseEvent::default()
                                .event("end")
                                .data(detail.job.status.as_str()),
                        );
                        continue;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "event stream: store unavailable"),
            }
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "alive")))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the job store answers and the server is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "ready"),
    (status = 503, description = "not ready: the store is unreachable or the server is stopping", body = super::doc::ErrorBody),
))]
pub(crate) async fn readyz(State(shared): State<Arc<Shared>>) -> Result<&'static str, ApiError> {
    if *shared.shutdown.borrow() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server.stopping",
            "shutting down",
        ));
    }
    let ping = tokio::time::timeout(Duration::from_secs(2), shared.store.ping()).await;
    let ok = matches!(ping, Ok(Ok(())));
    shared.store_ok.store(ok, Ordering::Relaxed);
    if !ok {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store.unavailable",
            "the job store does not answer",
        ));
    }
    Ok("ready")
}
