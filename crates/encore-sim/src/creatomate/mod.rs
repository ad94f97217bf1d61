//! Creatomate v1: `POST /v1/renders` (202, an array), `GET /v1/renders/{id}`,
//! `GET /v1/templates`, `GET /v1/templates/{id}` (with the RenderScript `source` and its
//! named elements, so a client can check its element names for free).
//!
//! Bearer auth (401), 30 requests per 10 s per key across all four endpoints (429, with
//! `Retry-After` only when [`SimConfig::creatomate_retry_after`](crate::SimConfig) is set),
//! credits per key (402), `{hint}` error bodies. An unknown `template_id` answers 404
//! (switch: [`SimConfig::creatomate_unknown_template_status`](crate::SimConfig)).
//! Renders run planned (1–3 s) → waiting (2–5 s) → rendering → succeeded (30–50 s
//! virtual), or failed with `error_message` (scenario `[creatomate] outcomes`, or an
//! `Audio.source` that is not an http(s) URL). Modifications that match no element (or no
//! property of the named element) are accepted and ignored, as by Creatomate v1; the
//! ledger lists them per render. A text element's `transcript_source` set to word-timing
//! keyframes is rendered as subtitle lines, which the ledger lists per render
//! ([`BilledJob::subtitles`](crate::BilledJob)); see `subtitles.rs`. A render's `webhook_url` gets the final render object
//! (with `metadata`) once, when it succeeds or fails. An unknown render id, and a render
//! younger than [`SimConfig::creatomate_render_visible_after_s`](crate::SimConfig), answer
//! HTTP 404 `{hint}`.

pub(crate) mod error;
mod render_job;
pub(crate) mod store;
mod subtitles;
pub mod templates;
pub mod types;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::auth::{self, AuthError};
use crate::callback::{self, JobCallbacks, Planned};
use crate::config::CREATOMATE_CREDITS_PER_RENDER;
use crate::ids;
use crate::ledger::JobKind;
use crate::outcome::RenderOutcome;
use crate::request_ctx::RequestCtx;
use crate::route::Upstream;
use crate::state::{NewJob, SimState, lock};
use crate::suno;

pub use self::store::{RATE_LIMIT, RATE_WINDOW};

use self::error::{default_hint, hint, rate_limited};
use self::render_job::{FinalFields, RenderJob};
use self::subtitles::TRANSCRIPT_PROPERTIES;
use self::templates::COMMON_PROPERTIES;
use self::types::{Render, RenderRequest, Template};
use crate::ledger::SubtitleLine;
/// Default `error_message` of renders a scenario makes fail.
pub const DEFAULT_FAILURE_MESSAGE: &str =
    "The render failed because one of the source files could not be loaded.";

const FORMATS: &[&str] = &["jpg", "png", "gif", "mp4"];

/// Auth then the per-key window: the key, or the error answer.
fn admit(state: &SimState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let key = auth::check(state.config(), headers).map_err(|e| {
        Box::new(hint(
            StatusCode::UNAUTHORIZED,
            match e {
                AuthError::Missing => {
                    "No API key was provided. Set the Authorization header to 'Bearer YOUR_API_KEY'."
                }
                AuthError::Invalid => default_hint(StatusCode::UNAUTHORIZED),
            },
        ))
    })?;
    if state.config().rate_limits
        && let Err(wait) = lock(&state.inner.creatomate)
            .window
            .check(&key, Instant::now())
    {
        tracing::warn!(key = %auth::key_tag(&key), "creatomate rate limit");
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let retry = state.config().creatomate_retry_after.then_some(secs);
        return Err(Box::new(rate_limited(retry, false)));
    }
    Ok(key)
}

fn bad(msg: impl Into<String>) -> Response {
    hint(StatusCode::BAD_REQUEST, msg)
}

/// What one render will be made from.
struct Target {
    template: Option<Template>,
    source: Value,
}

fn element_names(source: &Value) -> Vec<(String, Map<String, Value>)> {
    source
        .get("elements")
        .and_then(Value::as_array)
        .map(|els| {
            els.iter()
                .filter_map(|e| {
                    let obj = e.as_object()?;
                    Some((obj.get("name")?.as_str()?.to_owned(), obj.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a render's `modifications` did: the keys Creatomate v1 ignores (no such element, no
/// such property on it, or a `transcript_source` that cannot be used: see `subtitles.rs`) and
/// warnings to log (never fatal).
#[derive(Debug, Default, PartialEq)]
struct ModificationCheck {
    ignored: Vec<String>,
    warnings: Vec<String>,
}

fn check_modifications(source: &Value, mods: &Map<String, Value>) -> ModificationCheck {
    let elements = element_names(source);
    let mut check = ModificationCheck::default();
    for (key, value) in mods {
        let (element, property) = key.split_once('.').unwrap_or((key.as_str(), ""));
        match elements.iter().find(|(name, _)| name == element) {
            None => {
                check.ignored.push(key.clone());
                check
                    .warnings
                    .push(format!("modification '{key}' does not match any element"));
            }
            Some((_, props)) => {
                let is_text = props.get("type").and_then(Value::as_str) == Some("text");
                let known = property.is_empty()
                    || props.contains_key(property)
                    || COMMON_PROPERTIES.contains(&property)
                    || (is_text && TRANSCRIPT_PROPERTIES.contains(&property));
                if !known {
                    check.ignored.push(key.clone());
                    check.warnings.push(format!(
                        "modification '{key}': element '{element}' has no property '{property}'"
                    ));
                } else if property == "transcript_source"
                    && let Err(why) = subtitles::parse(value)
                {
                    check.ignored.push(key.clone());
                    check.warnings.push(format!("modification '{key}': {why}"));
                }
            }
        }
        if (value.is_array() || value.is_object()) && property != "transcript_source" {
            check
                .warnings
                .push(format!("modification '{key}' has a non-scalar value"));
        }
    }
    check
}

/// The subtitle lines of every text element whose (applied) `transcript_source` is a keyframe
/// array, each placed at its element's `time` (modified or the template's).
fn render_subtitles(source: &Value, mods: &Map<String, Value>) -> Vec<SubtitleLine> {
    let mut lines = Vec::new();
    for (name, props) in element_names(source) {
        let Some(Ok(Some(keyframes))) = mods
            .get(&format!("{name}.transcript_source"))
            .map(subtitles::parse)
        else {
            continue;
        };
        let time = mods
            .get(&format!("{name}.time"))
            .or_else(|| props.get("time"))
            .and_then(subtitles::seconds)
            .unwrap_or(0.0);
        lines.extend(subtitles::render(&name, time, &keyframes));
    }
    lines
}

fn modification<'m>(
    mods: &'m Map<String, Value>,
    element: &str,
    property: &str,
) -> Option<&'m Value> {
    mods.get(&format!("{element}.{property}")).or_else(|| {
        (property == "text" || property == "source")
            .then(|| mods.get(element))
            .flatten()
    })
}

/// Validates everything but credits; returns the targets.
fn plan(state: &SimState, req: &RenderRequest) -> Result<Vec<Target>, Box<Response>> {
    let unknown_template_status =
        StatusCode::from_u16(state.config().creatomate_unknown_template_status)
            .unwrap_or(StatusCode::NOT_FOUND);
    let targets: Vec<Target> = if let Some(id) = &req.template_id {
        let Some(t) = templates::find(id) else {
            return Err(Box::new(hint(
                unknown_template_status,
                format!("The template with ID '{id}' could not be found."),
            )));
        };
        vec![Target {
            source: t.source.clone(),
            template: Some(t),
        }]
    } else if let Some(tags) = &req.tags {
        let found: Vec<Target> = templates::all()
            .into_iter()
            .filter(|t| !tags.is_empty() && tags.iter().all(|tag| t.tags.contains(tag)))
            .map(|t| Target {
                source: t.source.clone(),
                template: Some(t),
            })
            .collect();
        if found.is_empty() {
            return Err(Box::new(bad(
                "No templates were found with the provided tags.",
            )));
        }
        found
    } else if let Some(source) = &req.source {
        if !source.is_object() {
            return Err(Box::new(bad(
                "The 'source' parameter must be a RenderScript object.",
            )));
        }
        vec![Target {
            template: None,
            source: source.clone(),
        }]
    } else {
        return Err(Box::new(bad(
            "Provide a 'template_id', 'tags' or 'source' to create a render.",
        )));
    };
    if let Some(f) = &req.output_format
        && !FORMATS.contains(&f.as_str())
    {
        return Err(Box::new(bad(format!(
            "Invalid output_format '{f}'. Use jpg, png, gif or mp4."
        ))));
    }
    if let Some(scale) = req.render_scale
        && !(0.1..=10.0).contains(&scale)
    {
        return Err(Box::new(bad("render_scale must be between 0.1 and 10.")));
    }
    if req.max_width == Some(0) || req.max_height == Some(0) {
        return Err(Box::new(bad("max_width and max_height must be positive.")));
    }
    if let Some(fps) = req.frame_rate {
        let format = req.output_format.clone().unwrap_or_else(|| "mp4".into());
        let ok = match format.as_str() {
            "mp4" => (1.0..=60.0).contains(&fps),
            "gif" => (1.0..=15.0).contains(&fps),
            _ => false,
        };
        if !ok {
            return Err(Box::new(bad(format!(
                "frame_rate {fps} is not allowed for output_format '{format}' (mp4: 1–60, gif: 1–15, not for images)."
            ))));
        }
    }
    Ok(targets)
}

fn audio_duration(state: &SimState, url: &str) -> Option<f64> {
    let file = url.split("/__sim/files/audio/").nth(1)?;
    let id = file.split('.').next()?;
    suno::track_duration(state, id)
}

/// Identity and fate of a render being created.
struct NewRender<'a> {
    id: String,
    outcome: RenderOutcome,
    failure_message: &'a str,
    base_url: &'a str,
}

fn build_job(
    state: &SimState,
    rng: &mut StdRng,
    req: &RenderRequest,
    target: &Target,
    new: NewRender<'_>,
) -> RenderJob {
    let NewRender {
        id,
        outcome,
        failure_message,
        base_url,
    } = new;
    let src = &target.source;
    let mut mods = req.modifications.clone().unwrap_or_default();
    let check = check_modifications(src, &mods);
    for warning in &check.warnings {
        tracing::warn!(render = %id, "{warning}");
    }
    // Creatomate v1 ignores what matches nothing: so does the rest of the render.
    mods.retain(|key, _| !check.ignored.contains(key));
    let subtitles = render_subtitles(src, &mods);
    let format = req
        .output_format
        .clone()
        .or_else(|| {
            src.get("output_format")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "mp4".into());
    let scale = req.render_scale.unwrap_or(1.0);
    let w0 = src.get("width").and_then(Value::as_f64).unwrap_or(1280.0);
    let h0 = src.get("height").and_then(Value::as_f64).unwrap_or(720.0);
    let fit = match (req.max_width, req.max_height) {
        (None, None) => scale,
        (mw, mh) => {
            let fw = mw.map_or(f64::INFINITY, |m| f64::from(m) / w0);
            let fh = mh.map_or(f64::INFINITY, |m| f64::from(m) / h0);
            fw.min(fh).min(1.0)
        }
    };
    let (width, height) = (
        (w0 * fit).round().max(1.0) as u32,
        (h0 * fit).round().max(1.0) as u32,
    );
    let video = format == "mp4" || format == "gif";
    let audio_url = modification(&mods, "Audio", "source").and_then(Value::as_str);
    let failure = match (outcome, audio_url) {
        (RenderOutcome::Failed, _) => Some(failure_message.to_owned()),
        (_, Some(url))
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) =>
        {
            Some(format!(
                "The file at Audio.source could not be downloaded: '{url}' is not a valid URL."
            ))
        }
        _ => None,
    };
    let duration = video.then(|| {
        audio_url
            .and_then(|u| audio_duration(state, u))
            .or_else(|| modification(&mods, "Audio", "duration").and_then(Value::as_f64))
            .or_else(|| src.get("duration").and_then(Value::as_f64))
            .unwrap_or(30.0)
    });
    let frame_rate = video.then(|| {
        req.frame_rate
            .or_else(|| src.get("frame_rate").and_then(Value::as_f64))
            .unwrap_or(if format == "gif" { 15.0 } else { 30.0 })
    });
    let pixels = f64::from(width) * f64::from(height);
    let file_size = match duration {
        Some(d) => (d * pixels * 0.55 * rng.random_range(0.9..1.1)) as u64,
        None => (pixels * 0.25 * rng.random_range(0.8..1.2)) as u64,
    };
    let planned_s = rng.random_range(1.0..3.0);
    let waiting_s = planned_s + rng.random_range(2.0..5.0);
    let done_s = rng.random_range(30.0..50.0f64).max(waiting_s + 1.0);
    let template = target.template.as_ref();
    RenderJob {
        base: Render {
            id: id.clone(),
            status: "planned".into(),
            error_message: None,
            url: format!("{base_url}/__sim/files/renders/{id}.{format}"),
            snapshot_url: None,
            template_id: template.map(|t| t.id.clone()),
            template_name: template.map(|t| t.name.clone()),
            template_tags: template.map(|t| t.tags.clone()),
            output_format: Some(format),
            render_scale: Some(scale),
            width: None,
            height: None,
            frame_rate: None,
            duration: None,
            file_size: None,
            modifications: req.modifications.clone(),
            webhook_url: req.webhook_url.clone(),
            metadata: req.metadata.clone(),
            extra: Map::new(),
        },
        created: Instant::now(),
        planned_s,
        waiting_s,
        done_s,
        failure,
        ignored_modifications: check.ignored,
        subtitles,
        final_fields: FinalFields {
            width,
            height,
            frame_rate,
            duration: duration.map(|d| (d * 100.0).round() / 100.0),
            file_size,
        },
    }
}

/// `POST /v1/renders`.
pub(crate) async fn create_render(
    State(state): State<SimState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match admit(&state, &headers) {
        Ok(k) => k,
        Err(resp) => return *resp,
    };
    let raw: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad("The request body must be a JSON object."),
    };
    if let Some(m) = raw.get("metadata")
        && !m.is_string()
        && !m.is_null()
    {
        return bad("The 'metadata' parameter must be a string.");
    }
    if let Some(m) = raw.get("modifications")
        && !m.is_object()
        && !m.is_null()
    {
        return bad("The 'modifications' parameter must be an object.");
    }
    let req: RenderRequest = match serde_json::from_value(raw) {
        Ok(r) => r,
        Err(e) => return bad(format!("The request is invalid: {e}")),
    };
    let targets = match plan(&state, &req) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    let (outcomes, failure_message, webhook_faults) = {
        let faults = lock(&state.inner.faults);
        let c = &faults.scenario().creatomate;
        (
            c.outcomes.clone(),
            c.failure_message
                .clone()
                .unwrap_or_else(|| DEFAULT_FAILURE_MESSAGE.to_owned()),
            c.callbacks.clone(),
        )
    };
    let ids: Vec<String> = state.with_ids(|rng| targets.iter().map(|_| ids::uuid(rng)).collect());
    let jobs: Vec<RenderJob> = {
        let mut store = lock(&state.inner.creatomate);
        let cost = CREATOMATE_CREDITS_PER_RENDER * targets.len() as u64;
        let balance = store.credits(&key, state.config().creatomate_credits);
        if balance < cost {
            drop(store);
            return hint(
                StatusCode::PAYMENT_REQUIRED,
                default_hint(StatusCode::PAYMENT_REQUIRED),
            );
        }
        store.credits.insert(key.clone(), balance - cost);
        let mut jobs = Vec::new();
        for (target, id) in targets.iter().zip(ids) {
            let outcome = outcomes.get(store.created).copied().unwrap_or_default();
            store.created += 1;
            let job = build_job(
                &state,
                &mut store.rng,
                &req,
                target,
                NewRender {
                    id: id.clone(),
                    outcome,
                    failure_message: &failure_message,
                    base_url: &ctx.base_url,
                },
            );
            store.renders.insert(id, job.clone());
            jobs.push(job);
        }
        jobs
    };
    let mut out = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let done = job.final_render();
        state.bill(NewJob {
            ready_after_virtual_s: job.failure.is_none().then_some(job.done_s),
            final_status: done.status.clone(),
            ignored_modifications: job.ignored_modifications.clone(),
            subtitles: job.subtitles.clone(),
            ..NewJob::new(
                JobKind::CreatomateRender,
                job.base.id.clone(),
                ctx.seq,
                job.created,
            )
        });
        if state.config().callbacks
            && let Some(url) = &job.base.webhook_url
        {
            callback::deliver(
                &state,
                JobCallbacks {
                    service: Upstream::Creatomate,
                    job_id: job.base.id.clone(),
                    url: url.clone(),
                    created: job.created,
                    planned: vec![Planned {
                        stage: done.status.clone(),
                        stage_virtual_s: job.done_s,
                        body: serde_json::to_value(&done).unwrap_or(Value::Null),
                    }],
                    faults: webhook_faults.clone(),
                },
            );
        }
        out.push(job.at(0.0));
    }
    tracing::debug!(key = %auth::key_tag(&key), renders = out.len(), "creatomate renders created");
    (StatusCode::ACCEPTED, axum::Json(out)).into_response()
}

/// `GET /v1/renders/{id}`.
pub(crate) async fn get_render(
    State(state): State<SimState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(resp) = admit(&state, &headers) {
        return *resp;
    }
    let visible_after = state.config().creatomate_render_visible_after_s;
    let render = {
        let store = lock(&state.inner.creatomate);
        store.renders.get(&id).and_then(|job| {
            let elapsed = state.virtual_since(job.created);
            (elapsed >= visible_after).then(|| job.at(elapsed))
        })
    };
    if let Some(render) = render {
        axum::Json(render).into_response()
    } else {
        hint(
            StatusCode::NOT_FOUND,
            format!("The render with ID '{id}' could not be found."),
        )
    }
}

/// `GET /v1/templates`.
pub(crate) async fn list_templates(State(state): State<SimState>, headers: HeaderMap) -> Response {
    if let Err(resp) = admit(&state, &headers) {
        return *resp;
    }
    axum::Json(templates::summaries()).into_response()
}

/// `GET /v1/templates/{id}`.
pub(crate) async fn get_template(
    State(state): State<SimState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(resp) = admit(&state, &headers) {
        return *resp;
    }
    match templates::find(&id) {
        Some(t) => axum::Json(t).into_response(),
        None => hint(
            StatusCode::NOT_FOUND,
            format!("The template with ID '{id}' could not be found."),
        ),
    }
}

/// Status of a render for file serving: `Some(true)` once succeeded.
pub(crate) fn render_ready(state: &SimState, id: &str) -> Option<bool> {
    let store = lock(&state.inner.creatomate);
    let job = store.renders.get(id)?;
    Some(job.at(state.virtual_since(job.created)).status == "succeeded")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn warnings_for_unknown_keys_only() {
        let src = templates::find(templates::DEMO_TEMPLATE_ID).unwrap().source;
        let mods: Map<String, Value> = serde_json::from_value(json!({
            "Audio.source": "https://x/a.mp3", "Title": "Hi", "Title.text": "Hi",
            "Captions.text": "a\nb", "Captions.time": 4, "Captions.duration": 100,
            "Background.fill_color": "#000000"
        }))
        .unwrap();
        assert_eq!(
            check_modifications(&src, &mods),
            ModificationCheck::default()
        );
        let mods: Map<String, Value> =
            serde_json::from_value(json!({"Nope.text": "x", "Title.sparkle": 1})).unwrap();
        let check = check_modifications(&src, &mods);
        assert_eq!(check.ignored, ["Nope.text", "Title.sparkle"]);
        assert_eq!(check.warnings.len(), 2);
    }

    #[test]
    fn transcript_keyframes_are_checked_and_rendered_on_text_elements_only() {
        let src = templates::find(templates::DEMO_TEMPLATE_ID).unwrap().source;
        let frames = json!([
            { "time": 10.5, "duration": 0.5, "value": "Morning", "sentence": 1 },
            { "time": 11.0, "duration": 0.75, "value": "bread", "sentence": 1 },
            { "time": 13.0, "duration": 1.0, "value": "Haneul!", "sentence": 2 },
        ]);
        let mods: Map<String, Value> = serde_json::from_value(json!({
            "Captions.transcript_source": frames,
            "Captions.transcript_effect": "highlight",
            "Captions.time": 0,
            "Audio.transcript_source": "Captions",
            "Title.transcript_source": [{ "time": 1, "value": "x" }, { "value": "no time" }],
        }))
        .unwrap();
        let check = check_modifications(&src, &mods);
        assert_eq!(
            check.ignored,
            ["Audio.transcript_source", "Title.transcript_source"]
        );
        assert!(
            check
                .warnings
                .iter()
                .any(|w| w.contains("keyframe 1: has no time")),
            "{:?}",
            check.warnings
        );
        let lines = render_subtitles(&src, &mods);
        let shown: Vec<(&str, f64, f64)> = lines
            .iter()
            .map(|l| (l.text.as_str(), l.time, l.duration))
            .collect();
        assert_eq!(
            shown,
            [("Morning bread", 10.5, 1.25), ("Haneul!", 13.0, 1.0)]
        );
        // Without `Captions.time` the template's own start (4 s) comes first.
        let mut mods = mods;
        mods.remove("Captions.time");
        assert!((render_subtitles(&src, &mods)[0].time - 14.5).abs() < 1e-9);
    }
}
