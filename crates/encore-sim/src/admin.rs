//! The simulator's own endpoints under `/__sim`, placeholder files, and the fallback.
//!
//! - `GET /__sim/health` → `{"status":"ok", "scenario", "seed", "time_scale", "uptime_ms", "virtual_s"}`
//! - `GET /__sim/ledger` → the [`Ledger`](crate::Ledger) as JSON
//! - `GET /__sim/scenario` → the live scenario as JSON; `PUT /__sim/scenario` with a TOML
//!   or JSON body replaces it (400 `{"error"}` naming the bad key otherwise)
//! - `GET /__sim/files/{audio|stream|images|renders}/{file}` → placeholder media: a valid
//!   MP3 of two seconds of silence for audio, tiny placeholder bytes for images and videos
//!   (not playable). Audio answers 404 until its downloadable file is ready, streams until
//!   they stream, renders until they succeeded.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri, header};
use serde_json::json;

use crate::creatomate;
use crate::openai;
use crate::scenario::Scenario;
use crate::state::SimState;
use crate::suno;

/// `GET /__sim/health`.
pub(crate) async fn health(State(state): State<SimState>) -> Response {
    let virtual_s = state.virtual_secs();
    axum::Json(json!({
        "status": "ok",
        "scenario": state.scenario().name,
        "seed": state.config().seed,
        "time_scale": state.config().time_scale,
        "uptime_ms": state.elapsed().as_millis() as u64,
        "virtual_s": if virtual_s.is_finite() { json!(virtual_s) } else { json!(null) },
    }))
    .into_response()
}

/// `GET /__sim/ledger`.
pub(crate) async fn ledger(State(state): State<SimState>) -> Response {
    axum::Json(state.ledger()).into_response()
}

/// `GET /__sim/scenario`.
pub(crate) async fn get_scenario(State(state): State<SimState>) -> Response {
    axum::Json(state.scenario()).into_response()
}

/// `PUT /__sim/scenario` (TOML, or JSON when the body starts with `{`).
pub(crate) async fn put_scenario(State(state): State<SimState>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let parsed = if text.trim_start().starts_with('{') {
        Scenario::from_json(&text)
    } else {
        Scenario::from_toml(&text)
    };
    match parsed.and_then(|s| state.set_scenario(s)) {
        Ok(()) => axum::Json(state.scenario()).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// Two seconds of silent MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, stereo).
fn silent_mp3() -> Vec<u8> {
    const FRAME_LEN: usize = 417;
    let mut out = Vec::with_capacity(FRAME_LEN * 77);
    for _ in 0..77 {
        out.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
        out.resize(out.len() + FRAME_LEN - 4, 0);
    }
    out
}

fn placeholder(kind: &[u8], len: usize) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend(std::iter::repeat_n(0u8, len.saturating_sub(out.len())));
    out
}

fn media(ext: &str) -> Option<(&'static str, Vec<u8>)> {
    Some(match ext {
        "mp3" => ("audio/mpeg", silent_mp3()),
        "jpeg" | "jpg" => (
            "image/jpeg",
            placeholder(
                &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0],
                512,
            ),
        ),
        "png" => (
            "image/png",
            placeholder(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A], 512),
        ),
        "gif" => ("image/gif", placeholder(b"GIF89a", 512)),
        "mp4" => (
            "video/mp4",
            placeholder(
                &[
                    0, 0, 0, 0x18, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm', 0, 0, 2, 0,
                    b'i', b's', b'o', b'm', b'm', b'p', b'4', b'1',
                ],
                4096,
            ),
        ),
        _ => return None,
    })
}

/// `GET /__sim/files/{kind}/{file}`.
pub(crate) async fn file(
    State(state): State<SimState>,
    Path((kind, file)): Path<(String, String)>,
) -> Response {
    let (id, ext) = file.rsplit_once('.').unwrap_or((file.as_str(), ""));
    let exists = match kind.as_str() {
        "audio" | "stream" | "images" => suno::media_ready(&state, &kind, id),
        "renders" => creatomate::render_ready(&state, id) == Some(true),
        _ => false,
    };
    match media(ext).filter(|_| exists) {
        Some((content_type, bytes)) => {
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Unknown paths, answered in the format of the service the path belongs to.
pub(crate) async fn fallback(
    State(state): State<SimState>,
    method: Method,
    uri: Uri,
    _headers: HeaderMap,
) -> Response {
    let path = uri.path();
    tracing::debug!(%method, path, "encore-sim: no such route");
    if path.starts_with("/api/") {
        suno::envelope::envelope_error(&state, 404, None)
    } else if path.starts_with("/v1/renders")
        || path.starts_with("/v1/templates")
        || path.starts_with("/v2/")
    {
        creatomate::error::hint(
            StatusCode::NOT_FOUND,
            format!(
                "The endpoint {method} {path} does not exist (encore-sim simulates Creatomate v1)."
            ),
        )
    } else if path.starts_with("/v1/") {
        openai::error::api_error(
            &state,
            StatusCode::NOT_FOUND,
            &format!("Invalid URL ({method} {path})"),
            "invalid_request_error",
            None,
            None,
        )
    } else {
        (StatusCode::NOT_FOUND, "not found").into_response()
    }
}
