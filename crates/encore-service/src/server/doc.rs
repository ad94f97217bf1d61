//! The JSON documents of the HTTP API (`/openapi.json` is generated from these types).

use encore_pipeline::StepName;
use encore_pipeline::job::Millis;
use encore_store::{JobDetail, JobEvent, Resolution};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A job: its status, its steps, and what it produced (the fields of `encore run --json`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobDocument {
    /// The job's id (a UUIDv7).
    pub id: String,
    /// `queued`, `running`, `succeeded`, `failed`, `needs_attention` or `cancelled`.
    pub status: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
    /// The business input, as submitted.
    #[schema(value_type = Object)]
    pub input: Value,
    /// Its steps, in order (steps not started yet are `pending`).
    pub steps: Vec<StepDocument>,
    /// The video, once it exists.
    pub video_url: Option<String>,
    /// The song, once it exists.
    pub audio_url: Option<String>,
    /// The lyrics (`title`, `lyrics`, `style`), once written.
    #[schema(value_type = Option<Object>)]
    pub lyrics: Option<Value>,
    /// Why it failed.
    pub error: Option<ErrorDocument>,
    /// Why it needs a person, and what resolves it.
    pub attention: Option<AttentionDocument>,
    /// Whether a cancel was asked for and not yet carried out.
    pub cancel_requested: bool,
}

/// One step of a job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepDocument {
    /// `template`, `credits`, `lyrics`, `song.submit`, `song.wait`, `song.timestamps`,
    /// `video.submit` or `video.wait`.
    pub name: String,
    /// `pending`, `in_flight`, `unknown`, `done` or `failed`.
    pub state: String,
    /// How many times it was started.
    pub attempts: u32,
    /// The provider's id (Suno task id, Creatomate render id).
    pub external_id: Option<String>,
    /// When it first started (RFC 3339).
    pub started_at: Option<String>,
    /// When it last finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Its last error.
    pub error: Option<String>,
}

/// Why a job failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDocument {
    /// A stable, machine-readable code (`song.insufficient_credits`, `video.render_failed`, …).
    pub code: String,
    /// What happened.
    pub message: String,
    /// `permanent`, `gave_up`, `bad_input`, `outcome_unknown` or `interrupted`.
    pub class: String,
}

/// Why a job needs a person.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttentionDocument {
    /// The step whose outcome is unknown.
    pub step: Option<String>,
    /// What is unknown and how to check it.
    pub reason: String,
    /// What resolves it (`POST /v1/jobs/{id}/resolve …`).
    pub resolution: String,
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobPageDocument {
    /// The jobs.
    pub jobs: Vec<JobDocument>,
    /// The cursor of the next page (`?before=`), if there is one.
    pub next: Option<String>,
}

/// How to resolve a billed step whose outcome is unknown: adopt what the provider created, or
/// resubmit it accepting that it may be paid for twice.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The step (`song.submit` or `video.submit`); by default the job's unknown step.
    #[serde(default)]
    pub step: Option<String>,
    /// The provider's id to adopt (a Suno task id or a Creatomate render id).
    #[serde(default)]
    pub adopt: Option<String>,
    /// Send the step's request again.
    #[serde(default)]
    pub resubmit: bool,
    /// Required with `resubmit`: the request may have run already, and may be paid twice.
    #[serde(default)]
    pub accept_paying_twice: bool,
}

impl ResolveRequest {
    /// The step this request names (`None`: the job's billed step whose outcome is unknown)
    /// and the resolution it asks for. The OpenAPI document's schema of the request says the
    /// same (`schema.rs`; the integration tests check they agree).
    ///
    /// # Errors
    ///
    /// Why the request cannot be carried out: neither or both of `adopt` and `resubmit`, a
    /// blank id to adopt, a resubmit without `accept_paying_twice`, a step that is not billed.
    pub fn resolution(&self) -> Result<(Option<StepName>, Resolution), String> {
        let step = self
            .step
            .as_deref()
            .map(str::parse::<StepName>)
            .transpose()
            .map_err(|e| e.to_string())?;
        if let Some(step) = step
            && !step.is_billed()
        {
            return Err(format!(
                "step {step} is not billed; only a billed step's outcome can be unknown"
            ));
        }
        let resolution = match (&self.adopt, self.resubmit) {
            (Some(external_id), false) if !external_id.trim().is_empty() => Resolution::Adopt {
                external_id: external_id.trim().to_owned(),
            },
            (None, true) if self.accept_paying_twice => Resolution::Resubmit {
                accept_paying_twice: true,
            },
            (None, true) => {
                return Err("resubmitting may pay twice if the lost request ran: confirm with `accept_paying_twice: true`".to_owned());
            }
            _ => {
                return Err("give either `adopt` (the provider's id) or `resubmit: true` with `accept_paying_twice: true`".to_owned());
            }
        };
        Ok((step, resolution))
    }
}

/// An error answer: a stable code and a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorBodyInner,
}

/// The error of an [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBodyInner {
    /// A stable, machine-readable code (`job.not_found`, `input.invalid`, `auth.required`, …).
    pub code: String,
    /// What was wrong.
    pub message: String,
}

/// One event of a job's timeline (the `data` of a server-sent event).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventDocument {
    /// Its number in the job's timeline (the SSE `id`).
    pub seq: i64,
    /// When it happened (RFC 3339).
    pub at: String,
    /// Its kind (the SSE `event`): `status`, `step_changed`, `retrying`, `status_changed`,
    /// `callback`, …
    pub kind: String,
    /// What happened.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// `Millis` as RFC 3339 with milliseconds.
pub fn rfc3339(at: Millis) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

impl From<&JobDetail> for JobDocument {
    fn from(detail: &JobDetail) -> JobDocument {
        let job = &detail.job;
        let result = job.result.as_ref();
        let text = |key: &str| {
            result
                .and_then(|r| r.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        // A job's lyrics are its result's, or the lyrics step's while it runs.
        let lyrics = result
            .and_then(|r| r.get("lyrics"))
            .filter(|l| !l.is_null())
            .cloned()
            .or_else(|| {
                detail
                    .steps
                    .iter()
                    .find(|s| s.name == encore_pipeline::StepName::Lyrics)
                    .and_then(|s| s.result.clone())
            });
        let audio_url = text("audio_url").or_else(|| {
            detail
                .steps
                .iter()
                .find(|s| s.name == encore_pipeline::StepName::SongWait)
                .and_then(|s| s.result.as_ref())
                .and_then(|r| r.get("audio_url"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let steps = encore_pipeline::StepName::ALL
            .iter()
            .map(|name| {
                let stored = detail.steps.iter().find(|s| s.name == *name);
                StepDocument {
                    name: name.as_str().to_owned(),
                    state: stored.map_or("pending", |s| s.state.as_str()).to_owned(),
                    attempts: stored.map_or(0, |s| s.attempts),
                    external_id: stored.and_then(|s| s.external_id.clone()),
                    started_at: stored.and_then(|s| s.started_at).map(rfc3339),
                    finished_at: stored.and_then(|s| s.finished_at).map(rfc3339),
                    error: stored.and_then(|s| s.error.clone()),
                }
            })
            .collect();
        JobDocument {
            id: job.id.to_string(),
            status: job.status.as_str().to_owned(),
            created_at: rfc3339(job.created_at),
            updated_at: rfc3339(job.updated_at),
            input: job.input.clone(),
            steps,
            video_url: text("video_url"),
            audio_url,
            lyrics,
            error: job.error.as_ref().map(|e| ErrorDocument {
                code: e.code.clone(),
                message: e.message.clone(),
                class: e.class.clone(),
            }),
            attention: job.attention.as_ref().map(|a| AttentionDocument {
                step: a.step.map(|s| s.as_str().to_owned()),
                reason: a.reason.clone(),
                resolution: a.resolution.clone(),
            }),
            cancel_requested: job.cancel_requested,
        }
    }
}

impl From<&JobEvent> for EventDocument {
    fn from(event: &JobEvent) -> EventDocument {
        EventDocument {
            seq: event.seq,
            at: rfc3339(event.at),
            kind: event.kind.clone(),
            data: event.data.clone(),
        }
    }
}
