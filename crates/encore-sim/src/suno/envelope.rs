//! Suno's `{code, msg, data}` envelope answers: success, body-code errors (HTTP 200 by
//! default) and genuine HTTP failures.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::types::Envelope;
use crate::ledger::{EnvelopeCode, RateLimitMark};
use crate::state::SimState;

/// The documented meaning of an envelope code.
pub(crate) fn code_meaning(code: u16) -> &'static str {
    match code {
        200 => "success",
        400 => "Invalid parameters",
        401 => "Unauthorized access",
        404 => "Invalid request method or path",
        405 => "Rate limit exceeded",
        413 => "Theme or prompt too long",
        429 => "The current credits are insufficient. Please top up.",
        430 => "Your call frequency is too high. Please try again later.",
        455 => "System maintenance",
        500 => "Server error",
        _ => "Error",
    }
}

/// A success envelope `{code: 200, msg: "success", data}`.
pub(crate) fn ok<T: Serialize>(data: T) -> Response {
    let mut resp = axum::Json(Envelope {
        code: 200,
        msg: "success".to_owned(),
        data: Some(data),
    })
    .into_response();
    resp.extensions_mut().insert(EnvelopeCode(200));
    resp
}

/// An envelope error: HTTP 200 + body code, or HTTP `code` when the switch is on.
pub(crate) fn envelope_error(state: &SimState, code: u16, msg: Option<&str>) -> Response {
    let status = if state.config().suno_errors_as_http_status {
        StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
    } else {
        StatusCode::OK
    };
    let body = Envelope::<Value> {
        code,
        msg: msg.unwrap_or_else(|| code_meaning(code)).to_owned(),
        data: None,
    };
    let mut resp = (status, axum::Json(body)).into_response();
    resp.extensions_mut().insert(EnvelopeCode(code));
    // 405/430 refuse for rate limiting; 429 means insufficient credits, even as an HTTP 429.
    resp.extensions_mut()
        .insert(RateLimitMark(matches!(code, 405 | 430)));
    resp
}

/// A genuine HTTP failure (e.g. 500/503) with an envelope body.
pub(crate) fn http_error(status: StatusCode) -> Response {
    let code = status.as_u16();
    let body = Envelope::<Value> {
        code,
        msg: code_meaning(code).to_owned(),
        data: None,
    };
    let mut resp = (status, axum::Json(body)).into_response();
    resp.extensions_mut().insert(EnvelopeCode(code));
    resp
}
