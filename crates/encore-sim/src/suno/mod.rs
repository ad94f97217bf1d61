//! Suno via sunoapi.org under `/api/v1`: generate, record-info, timestamped lyrics, credit.
//!
//! Every answer is a `{code, msg, data}` envelope. Errors are HTTP 200 with the body code
//! (documented) unless [`SimConfig::suno_errors_as_http_status`](crate::SimConfig) mirrors
//! the code into the HTTP status. Body codes keep Suno's meanings: 405/430 = rate limited
//! (transient), 429 = insufficient credits (permanent), 413 = too long, 455 = maintenance.
//!
//! Tasks run PENDING → TEXT_SUCCESS (15–30 s) → FIRST_SUCCESS (~40 s) → SUCCESS (~150 s),
//! each virtual second taking `time_scale` real seconds; a scenario's `[suno] outcomes`
//! can end them in CREATE_TASK_FAILED, GENERATE_AUDIO_FAILED, SENSITIVE_WORD_ERROR or
//! CALLBACK_EXCEPTION (with complete tracks), or skip the intermediate stages.
//! Before TEXT_SUCCESS `response` is `null`; from TEXT_SUCCESS both tracks are listed with
//! `audioUrl: ""` until each is done.

mod align;
pub(crate) mod envelope;
pub(crate) mod store;
mod task;
pub mod types;

use std::collections::HashMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use http::HeaderMap;
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio::time::Instant;

use crate::auth::{self, AuthError};
use crate::callback;
use crate::config::SUNO_CREDITS_PER_GENERATE;
use crate::ids;
use crate::ledger::JobKind;
use crate::request_ctx::RequestCtx;
use crate::scenario::SunoOutcome;
use crate::state::{SimState, lock};
use crate::text::{self, TextCtx};

pub use self::store::{RATE_LIMIT, RATE_WINDOW};

use self::envelope::{envelope_error, ok};
use self::task::{Phase, Stages, Task, TrackSeed};
use self::types::{Callback, CallbackData, GenerateRequest, TaskCreated, TimestampedLyrics};
/// Models `/generate` accepts (documented list).
pub const MODELS: &[&str] = &["V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5"];
/// Extra models accepted with `suno_accept_v6_models` (UNCONFIRMED for `/generate`).
pub const V6_MODELS: &[&str] = &["V6", "V6_WILD", "V6_MINI"];

fn authenticate(state: &SimState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    auth::check(state.config(), headers).map_err(|e| {
        let msg = match e {
            AuthError::Missing => {
                "Unauthorized access: missing API key (Authorization: Bearer <key>)"
            }
            AuthError::Invalid => "Unauthorized access: invalid API key",
        };
        Box::new(envelope_error(state, 401, Some(msg)))
    })
}

fn limits(model: &str) -> (usize, usize, usize) {
    // (prompt, style, title) maximum characters in custom mode
    match model {
        "V4" => (3000, 200, 80),
        "V4_5ALL" => (5000, 1000, 80),
        _ => (5000, 1000, 100),
    }
}

/// Checks the required-field matrix and per-model limits: `Err((code, msg))`.
fn validate(state: &SimState, req: &GenerateRequest) -> Result<(), (u16, String)> {
    let bad = |msg: &str| Err((400, msg.to_owned()));
    let Some(custom) = req.custom_mode else {
        return bad("customMode is required");
    };
    let Some(instrumental) = req.instrumental else {
        return bad("instrumental is required");
    };
    let Some(model) = req.model.as_deref() else {
        return bad("model is required");
    };
    let known = MODELS.contains(&model)
        || (state.config().suno_accept_v6_models && V6_MODELS.contains(&model));
    if !known {
        return Err((
            400,
            format!(
                "Invalid model: {model}. Supported models: {}",
                MODELS.join(", ")
            ),
        ));
    }
    if req
        .call_back_url
        .as_deref()
        .is_none_or(|u| u.trim().is_empty())
    {
        return bad("Please enter callBackUrl.");
    }
    let len = |s: &Option<String>| s.as_deref().map_or(0, |s| s.trim().chars().count());
    let too_long = |field: &str, n: usize, max: usize| {
        Err((
            413,
            format!("{field} is too long: {n} characters (maximum {max} for model {model})"),
        ))
    };
    if custom {
        if len(&req.style) == 0 {
            return bad("style is required in custom mode");
        }
        if len(&req.title) == 0 {
            return bad("title is required in custom mode");
        }
        if !instrumental && len(&req.prompt) == 0 {
            return bad("prompt (lyrics) is required in custom mode when instrumental is false");
        }
        let (p, s, t) = limits(model);
        if len(&req.prompt) > p {
            return too_long("prompt", len(&req.prompt), p);
        }
        if len(&req.style) > s {
            return too_long("style", len(&req.style), s);
        }
        if len(&req.title) > t {
            return too_long("title", len(&req.title), t);
        }
    } else {
        if len(&req.prompt) == 0 {
            return bad("prompt is required");
        }
        if len(&req.prompt) > 500 {
            return too_long("prompt", len(&req.prompt), 500);
        }
    }
    if let Some(g) = req.vocal_gender.as_deref()
        && g != "m"
        && g != "f"
    {
        return bad("vocalGender must be \"m\" or \"f\"");
    }
    for (name, v) in [
        ("styleWeight", req.style_weight),
        ("weirdnessConstraint", req.weirdness_constraint),
        ("audioWeight", req.audio_weight),
    ] {
        if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            return Err((400, format!("{name} must be between 0 and 1")));
        }
    }
    Ok(())
}

fn model_name(model: &str) -> String {
    format!("chirp-{}", model.to_lowercase().replace('_', "-"))
}

/// `POST /api/v1/generate`.
pub(crate) async fn generate(
    State(state): State<SimState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match authenticate(&state, &headers) {
        Ok(k) => k,
        Err(resp) => return *resp,
    };
    let config = state.config().clone();
    if config.rate_limits
        && lock(&state.inner.suno)
            .window
            .check(&key, Instant::now())
            .is_err()
    {
        tracing::warn!(key = %auth::key_tag(&key), "suno generate rate limit");
        return envelope_error(&state, config.suno_rate_limit_code, None);
    }
    let raw: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return envelope_error(
                &state,
                400,
                Some("Invalid parameters: the body must be a JSON object"),
            );
        }
    };
    let req: GenerateRequest = match serde_json::from_value(raw.clone()) {
        Ok(r) => r,
        Err(e) => return envelope_error(&state, 400, Some(&format!("Invalid parameters: {e}"))),
    };
    if let Err((code, msg)) = validate(&state, &req) {
        return envelope_error(&state, code, Some(&msg));
    }
    let outcomes = lock(&state.inner.faults).scenario().suno.outcomes.clone();
    let task_id = state.with_ids(|rng| ids::hex(rng, 32));
    let (task, callback_url, outcome) = {
        let mut store = lock(&state.inner.suno);
        let balance = store.credits(&key, config.suno_credits);
        if balance < SUNO_CREDITS_PER_GENERATE {
            drop(store);
            return envelope_error(&state, 429, None);
        }
        store
            .credits
            .insert(key.clone(), balance - SUNO_CREDITS_PER_GENERATE);
        let outcome = outcomes.get(store.created).copied().unwrap_or_default();
        store.created += 1;
        let task = build_task(
            &state,
            &mut store.rng,
            &req,
            &raw,
            task_id.clone(),
            outcome,
            &ctx,
        );
        store.tasks.insert(task_id.clone(), task.clone());
        (task, req.call_back_url.clone(), outcome)
    };
    state.bill(JobKind::SunoTask, &task_id, ctx.seq);
    tracing::debug!(key = %auth::key_tag(&key), task = %task_id, ?outcome, "suno task created");
    if config.callbacks
        && let Some(url) = callback_url
    {
        schedule_callbacks(&state, &task, &url);
    }
    ok(TaskCreated { task_id })
}

fn build_task(
    state: &SimState,
    rng: &mut StdRng,
    req: &GenerateRequest,
    raw: &Value,
    id: String,
    outcome: SunoOutcome,
    ctx: &RequestCtx,
) -> Task {
    let custom = req.custom_mode.unwrap_or(false);
    let instrumental = req.instrumental.unwrap_or(false);
    let prompt = req.prompt.clone().unwrap_or_default();
    let tctx = TextCtx::from_prompt(&prompt);
    let (lyrics, title, tags) = if custom {
        (
            if instrumental {
                String::new()
            } else {
                prompt.clone()
            },
            req.title.clone().unwrap_or_default(),
            req.style.clone().unwrap_or_default(),
        )
    } else {
        (
            if instrumental {
                String::new()
            } else {
                text::lyrics(&tctx, rng, 0, Some(3000))
            },
            text::title(&tctx, rng),
            text::style(&tctx, rng),
        )
    };
    let model = req.model.clone().unwrap_or_default();
    let max_duration = if model == "V4" { 240.0 } else { 300.0 };
    let tracks = (0..2)
        .map(|_| TrackSeed {
            id: ids::uuid(rng),
            prompt: lyrics.clone(),
            title: title.clone(),
            tags: tags.clone(),
            duration: (rng.random_range(150.0..max_duration) * 100.0_f64).round() / 100.0,
        })
        .collect();
    Task {
        id,
        created: Instant::now(),
        created_wall: SimState::wall_now(),
        param: raw.to_string(),
        model_name: model_name(&model),
        instrumental,
        outcome,
        stages: Stages::draw(rng),
        tracks,
        base_url: ctx.base_url.clone(),
        create_time_as_number: state.config().suno_create_time_as_number,
    }
}

fn schedule_callbacks(state: &SimState, task: &Task, url: &str) {
    let s = task.stages;
    let at = |virtual_s: f64| task.created + state.scaled(virtual_s);
    let payload = |code: u16, msg: &str, kind: &str, data: Option<Vec<types::CallbackTrack>>| {
        serde_json::to_value(Callback {
            code,
            msg: msg.to_owned(),
            data: CallbackData {
                callback_type: kind.to_owned(),
                task_id: Some(task.id.clone()),
                task_id_camel: None,
                data,
            },
        })
        .unwrap_or(Value::Null)
    };
    let mut plan: Vec<(Instant, Value)> = Vec::new();
    match task.outcome {
        SunoOutcome::Success | SunoOutcome::CallbackException => {
            plan.push((
                at(s.text_s),
                payload(
                    200,
                    "Text generation completed successfully.",
                    "text",
                    Some(Vec::new()),
                ),
            ));
            plan.push((
                at(s.first_s),
                payload(
                    200,
                    "First track generated successfully.",
                    "first",
                    Some(task.callback_tracks(Phase::First)),
                ),
            ));
            plan.push((
                at(s.complete_s),
                payload(
                    200,
                    "All generated successfully.",
                    "complete",
                    Some(task.callback_tracks(Phase::Complete)),
                ),
            ));
        }
        SunoOutcome::SkipStages => {
            plan.push((
                at(s.complete_s),
                payload(
                    200,
                    "All generated successfully.",
                    "complete",
                    Some(task.callback_tracks(Phase::Complete)),
                ),
            ));
        }
        SunoOutcome::GenerateAudioFailed => {
            plan.push((
                at(s.text_s),
                payload(
                    200,
                    "Text generation completed successfully.",
                    "text",
                    Some(Vec::new()),
                ),
            ));
            plan.push((
                at(s.first_s),
                payload(501, "Audio generation failed", "error", None),
            ));
        }
        SunoOutcome::SensitiveWordError => {
            plan.push((
                at(s.text_s),
                payload(400, "The lyrics contain sensitive words", "error", None),
            ));
        }
        SunoOutcome::CreateTaskFailed => {
            plan.push((
                at(2.0),
                payload(500, "Failed to create the task", "error", None),
            ));
        }
    }
    for (when, body) in plan {
        callback::post_at(url.to_owned(), body, when);
    }
}

/// `GET /api/v1/generate/record-info?taskId=`.
pub(crate) async fn record_info(
    State(state): State<SimState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(resp) = authenticate(&state, &headers) {
        return *resp;
    }
    let Some(task_id) = query.get("taskId").filter(|t| !t.trim().is_empty()) else {
        return envelope_error(&state, 400, Some("Invalid parameters: taskId is required"));
    };
    let store = lock(&state.inner.suno);
    let Some(task) = store.tasks.get(task_id) else {
        drop(store);
        return envelope_error(&state, 400, Some("Invalid parameters: task not found"));
    };
    let phase = task.phase(virtual_since(&state, task.created));
    ok(task.record_info(phase))
}

fn virtual_since(state: &SimState, created: Instant) -> f64 {
    let scale = state.config().time_scale;
    if scale <= 0.0 {
        f64::INFINITY
    } else {
        created.elapsed().as_secs_f64() / scale
    }
}

/// `POST /api/v1/generate/get-timestamped-lyrics`.
pub(crate) async fn timestamped_lyrics(
    State(state): State<SimState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = authenticate(&state, &headers) {
        return *resp;
    }
    let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |k: &str| {
        raw.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    let (Some(task_id), Some(audio_id)) = (field("taskId"), field("audioId")) else {
        return envelope_error(
            &state,
            400,
            Some("Invalid parameters: taskId and audioId are required"),
        );
    };
    let (lyrics, duration, instrumental) = {
        let store = lock(&state.inner.suno);
        let Some(task) = store.tasks.get(&task_id) else {
            drop(store);
            return envelope_error(&state, 400, Some("Invalid parameters: task not found"));
        };
        let Some(index) = task.tracks.iter().position(|t| t.id == audio_id) else {
            drop(store);
            return envelope_error(
                &state,
                400,
                Some("Invalid parameters: audioId does not belong to this task"),
            );
        };
        let phase = task.phase(virtual_since(&state, task.created));
        if index >= phase.ready_tracks() {
            drop(store);
            return envelope_error(
                &state,
                400,
                Some("The audio is not ready yet, please try again later"),
            );
        }
        let t = &task.tracks[index];
        (t.prompt.clone(), t.duration, task.instrumental)
    };
    let mut rng = ids::rng_for_content(state.config().seed, "suno.align", audio_id.as_bytes());
    let aligned_words = if instrumental {
        Vec::new()
    } else {
        align::align(&lyrics, duration, &mut rng)
    };
    let waveform_data = (0..120)
        .map(|_| (rng.random_range(0.0..1.0f64) * 1000.0).round() / 1000.0)
        .collect();
    ok(TimestampedLyrics {
        aligned_words,
        waveform_data,
        hoot_cer: rng.random_range(0.1..0.45),
        is_streamed: false,
    })
}

/// `GET /api/v1/generate/credit`.
pub(crate) async fn credit(State(state): State<SimState>, headers: HeaderMap) -> Response {
    let key = match authenticate(&state, &headers) {
        Ok(k) => k,
        Err(resp) => return *resp,
    };
    let balance = state.suno_credits(&key);
    ok(balance)
}

/// Whether a track (audio id) exists, for file serving.
pub(crate) fn track_exists(state: &SimState, audio_id: &str) -> bool {
    lock(&state.inner.suno).track_duration(audio_id).is_some()
}

/// Duration of a simulated track, for renders that use its audio URL.
pub(crate) fn track_duration(state: &SimState, audio_id: &str) -> Option<f64> {
    lock(&state.inner.suno).track_duration(audio_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    fn req(custom: bool, instrumental: bool, model: &str) -> GenerateRequest {
        GenerateRequest {
            custom_mode: Some(custom),
            instrumental: Some(instrumental),
            model: Some(model.into()),
            call_back_url: Some("https://example.test/cb".into()),
            prompt: Some("[Verse]\nhello".into()),
            style: Some("pop".into()),
            title: Some("Hi".into()),
            ..GenerateRequest::default()
        }
    }

    #[tokio::test]
    async fn matrix_and_limits() {
        let state = SimState::new(SimConfig::default());
        assert!(validate(&state, &req(true, false, "V4_5")).is_ok());
        assert_eq!(
            validate(&state, &req(true, false, "V3_5")).unwrap_err().0,
            400
        );
        assert_eq!(
            validate(&state, &req(true, false, "V6")).unwrap_err().0,
            400
        );
        let mut r = req(true, false, "V4");
        r.title = Some("x".repeat(81));
        assert_eq!(validate(&state, &r).unwrap_err().0, 413);
        let mut r = req(true, false, "V5");
        r.title = Some("x".repeat(100));
        assert!(validate(&state, &r).is_ok());
        r.style = Some("s".repeat(1001));
        assert_eq!(validate(&state, &r).unwrap_err().0, 413);
        let mut r = req(true, true, "V5");
        r.prompt = None;
        assert!(validate(&state, &r).is_ok());
        r.instrumental = Some(false);
        assert_eq!(validate(&state, &r).unwrap_err().0, 400);
        let mut r = req(false, false, "V4");
        r.prompt = Some("p".repeat(501));
        assert_eq!(validate(&state, &r).unwrap_err().0, 413);
        let mut r = req(true, false, "V4");
        r.call_back_url = None;
        assert_eq!(
            validate(&state, &r).unwrap_err(),
            (400, "Please enter callBackUrl.".to_owned())
        );
        let v6 = SimState::new(SimConfig {
            suno_accept_v6_models: true,
            ..SimConfig::default()
        });
        assert!(validate(&v6, &req(true, false, "V6")).is_ok());
        assert_eq!(model_name("V4_5PLUS"), "chirp-v4-5plus");
    }
}
