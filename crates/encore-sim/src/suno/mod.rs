//! Suno via sunoapi.org under `/api/v1`: generate, record-info, timestamped lyrics, credit.
//!
//! Every answer is a `{code, msg, data}` envelope. Errors are HTTP 200 with the body code
//! (documented) unless [`SimConfig::suno_errors_as_http_status`](crate::SimConfig) mirrors
//! the code into the HTTP status. Body codes keep Suno's meanings: 405/430 = rate limited
//! (transient), 429 = insufficient credits (permanent), 413 = too long, 455 = maintenance.
//!
//! Tasks run PENDING → TEXT_SUCCESS (15–30 s) → FIRST_SUCCESS (30–40 s, stream URLs) →
//! SUCCESS (150–180 s, when the second downloadable file is ready; the first file comes at
//! 120–135 s), each virtual second taking `time_scale` real seconds. Before TEXT_SUCCESS
//! `response` is `null`; from TEXT_SUCCESS both tracks are listed with `streamAudioUrl` and
//! `audioUrl` `""` until each exists. A scenario's `[suno] outcomes` can end tasks in
//! CREATE_TASK_FAILED, GENERATE_AUDIO_FAILED, SENSITIVE_WORD_ERROR, the older `FAILED`, or
//! CALLBACK_EXCEPTION (after the tracks are complete, or before they have audio), or skip
//! the intermediate stages; `[suno] timestamped_lyrics` loosens the lyrics answers.
//!
//! A task id that does not exist answers the envelope code
//! [`SimConfig::suno_unknown_task_code`](crate::SimConfig) (400 by default); so does a task
//! younger than [`SimConfig::suno_task_visible_after_s`](crate::SimConfig) on `record-info`.
//! Callbacks go to `callBackUrl` at each stage (see [`crate::CallbackRecord`]).

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
use crate::callback::{self, JobCallbacks, Planned};
use crate::config::SUNO_CREDITS_PER_GENERATE;
use crate::ids;
use crate::ledger::JobKind;
use crate::outcome::{SunoOutcome, TimestampedLyricsOutcome};
use crate::request_ctx::RequestCtx;
use crate::route::Upstream;
use crate::state::{NewJob, SimState, lock};
use crate::text::{self, TextCtx};

pub use self::store::{RATE_LIMIT, RATE_WINDOW};

use self::envelope::{envelope_error, ok};
use self::task::{Stages, Task, TrackSeed};
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
    let (outcomes, callback_faults) = {
        let faults = lock(&state.inner.faults);
        let suno = &faults.scenario().suno;
        (suno.outcomes.clone(), suno.callbacks.clone())
    };
    let task_id = state.with_ids(|rng| ids::hex(rng, 32));
    let (task, outcome) = {
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
        (task, outcome)
    };
    state.bill(NewJob {
        ready_after_virtual_s: task.ready_after_s(),
        final_status: task.final_status().to_owned(),
        ..NewJob::new(JobKind::SunoTask, task_id.clone(), ctx.seq, task.created)
    });
    tracing::debug!(key = %auth::key_tag(&key), task = %task_id, ?outcome, "suno task created");
    if config.callbacks
        && let Some(url) = req.call_back_url
    {
        callback::deliver(
            &state,
            JobCallbacks {
                service: Upstream::Suno,
                job_id: task_id.clone(),
                url,
                created: task.created,
                planned: planned_callbacks(&task),
                faults: callback_faults,
            },
        );
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
        callback_exception_recovers: state.config().suno_callback_exception_recovers,
        stages: Stages::draw(rng),
        tracks,
        base_url: ctx.base_url.clone(),
        create_time_as_number: state.config().suno_create_time_as_number,
    }
}

/// The task's callbacks as documented payloads (snake_case, `task_id`).
fn planned_callbacks(task: &Task) -> Vec<Planned> {
    task.callback_plan()
        .into_iter()
        .map(|c| Planned {
            stage: c.stage.to_owned(),
            stage_virtual_s: c.at_s,
            body: serde_json::to_value(Callback {
                code: c.code,
                msg: c.msg.to_owned(),
                data: CallbackData {
                    callback_type: c.stage.to_owned(),
                    task_id: Some(task.id.clone()),
                    task_id_camel: None,
                    data: c.tracks,
                },
            })
            .unwrap_or(Value::Null),
        })
        .collect()
}

/// The answer for a task id that does not exist (or is not visible yet).
fn unknown_task(state: &SimState) -> Response {
    match state.config().suno_unknown_task_code {
        404 => envelope_error(state, 404, Some("Task not found")),
        code => envelope_error(state, code, Some("Invalid parameters: task not found")),
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
    let info = {
        let store = lock(&state.inner.suno);
        store.tasks.get(task_id).and_then(|task| {
            let elapsed = state.virtual_since(task.created);
            (elapsed >= state.config().suno_task_visible_after_s).then(|| task.record_info(elapsed))
        })
    };
    match info {
        Some(info) => ok(info),
        None => unknown_task(&state),
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
    let shapes = lock(&state.inner.faults)
        .scenario()
        .suno
        .timestamped_lyrics
        .clone();
    let (lyrics, duration, instrumental, shape) = {
        let mut store = lock(&state.inner.suno);
        let Some(task) = store.tasks.get(&task_id) else {
            drop(store);
            return unknown_task(&state);
        };
        let Some(index) = task.tracks.iter().position(|t| t.id == audio_id) else {
            drop(store);
            return envelope_error(
                &state,
                400,
                Some("Invalid parameters: audioId does not belong to this task"),
            );
        };
        if !task.file_ready(index, state.virtual_since(task.created)) {
            drop(store);
            return envelope_error(
                &state,
                400,
                Some("The audio is not ready yet, please try again later"),
            );
        }
        let t = &task.tracks[index];
        let (lyrics, duration, instrumental) = (t.prompt.clone(), t.duration, task.instrumental);
        let shape = shapes
            .get(store.lyrics_answered)
            .copied()
            .unwrap_or_default();
        store.lyrics_answered += 1;
        (lyrics, duration, instrumental, shape)
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
    let data = TimestampedLyrics {
        aligned_words,
        waveform_data,
        hoot_cer: rng.random_range(0.1..0.45),
        is_streamed: false,
    };
    ok(loosen(&data, shape))
}

/// The lyrics answer in the shape a scenario asked for.
fn loosen(data: &TimestampedLyrics, shape: TimestampedLyricsOutcome) -> Value {
    let mut value = serde_json::to_value(data).unwrap_or(Value::Null);
    let (null_every, missing_every, drop_waveform) = match shape {
        TimestampedLyricsOutcome::Normal => (None, None, false),
        TimestampedLyricsOutcome::NullTimings => (Some((4, 3)), None, false),
        TimestampedLyricsOutcome::MissingTimings => (None, Some((4, 3)), false),
        TimestampedLyricsOutcome::NoWaveform => (None, None, true),
        TimestampedLyricsOutcome::Loose => (Some((4, 1)), Some((4, 3)), true),
    };
    if let Some(words) = value.get_mut("alignedWords").and_then(Value::as_array_mut) {
        for (i, word) in words.iter_mut().enumerate() {
            let Some(word) = word.as_object_mut() else {
                continue;
            };
            if null_every.is_some_and(|(n, r)| i % n == r) {
                word.insert("startS".into(), Value::Null);
                word.insert("endS".into(), Value::Null);
                word.insert("success".into(), Value::Bool(false));
            }
            if missing_every.is_some_and(|(n, r)| i % n == r) {
                word.remove("startS");
                word.remove("endS");
                word.insert("success".into(), Value::Bool(false));
            }
        }
    }
    if drop_waveform && let Some(obj) = value.as_object_mut() {
        obj.remove("waveformData");
        obj.remove("isStreamed");
    }
    value
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

/// Whether a track's media file exists yet, for file serving: `audio` once its
/// downloadable file is ready, `stream` once it streams, `images` from creation.
pub(crate) fn media_ready(state: &SimState, kind: &str, audio_id: &str) -> bool {
    let store = lock(&state.inner.suno);
    store.tasks.values().any(|task| {
        let elapsed = state.virtual_since(task.created);
        task.tracks.iter().enumerate().any(|(i, t)| {
            t.id == audio_id
                && match kind {
                    "audio" => task.file_ready(i, elapsed),
                    "stream" => task.stream_ready(i, elapsed),
                    _ => true,
                }
        })
    })
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
