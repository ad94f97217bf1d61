//! OpenAI's HTTP error answers `{"error": {message, type, param, code}}`, each with an
//! `x-request-id`.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};

use super::store::{RATELIMIT_REQUESTS, ratelimit_headers};
use super::types::{ApiError, ErrorResponse};
use crate::fault::DEFAULT_RETRY_AFTER_S;
use crate::ids;
use crate::ledger::RateLimitMark;
use crate::state::SimState;
use crate::timefmt;

pub(crate) fn request_id(state: &SimState) -> HeaderValue {
    let id = state.with_ids(|rng| ids::hex(rng, 32));
    HeaderValue::from_str(&format!("req_{id}")).expect("hex is a valid header value")
}

/// An error in OpenAI's format, with `x-request-id`.
pub(crate) fn api_error(
    state: &SimState,
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = ErrorResponse {
        error: ApiError {
            message: message.to_owned(),
            kind: kind.to_owned(),
            param: param.map(str::to_owned),
            code: code.map(str::to_owned),
        },
    };
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(HeaderName::from_static("x-request-id"), request_id(state));
    resp
}

pub(crate) fn invalid(
    state: &SimState,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    api_error(
        state,
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        code,
    )
}

/// The default OpenAI error body for a status.
pub(crate) fn default_error(state: &SimState, status: StatusCode) -> Response {
    let (message, kind, code) = match status.as_u16() {
        400 => ("Invalid request.", "invalid_request_error", None),
        401 => (
            "Incorrect API key provided.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        403 => (
            "Country, region, or territory not supported",
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
        ),
        404 => ("Not found.", "invalid_request_error", None),
        409 => ("Conflict: please retry.", "invalid_request_error", None),
        422 => ("Unprocessable entity.", "invalid_request_error", None),
        429 => (
            "Rate limit reached for requests. Please try again in 1s.",
            "requests",
            Some("rate_limit_exceeded"),
        ),
        500 => (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        502 => ("Bad gateway.", "server_error", None),
        503 => (
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
        ),
        504 => ("Gateway timeout.", "server_error", None),
        s if s >= 500 => ("Server error.", "server_error", None),
        _ => ("Request failed.", "invalid_request_error", None),
    };
    api_error(state, status, message, kind, None, code)
}

/// 429 `rate_limit_exceeded` with `retry-after` / `retry-after-ms` (default `retry-after: 1`).
pub(crate) fn rate_limit_error(
    state: &SimState,
    retry_after_s: Option<u64>,
    retry_after_ms: Option<u64>,
) -> Response {
    let wait_ms = retry_after_ms
        .or(retry_after_s.map(|s| s * 1000))
        .unwrap_or(DEFAULT_RETRY_AFTER_S * 1000);
    let message = format!(
        "Rate limit reached for requests in organization org-encoresim on requests per min (RPM): Limit {RATELIMIT_REQUESTS}, Used {RATELIMIT_REQUESTS}, Requested 1. Please try again in {}. Visit https://platform.openai.com/account/rate-limits to learn more.",
        timefmt::go_duration(Duration::from_millis(wait_ms))
    );
    let mut resp = api_error(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        &message,
        "requests",
        None,
        Some("rate_limit_exceeded"),
    );
    let headers = resp.headers_mut();
    ratelimit_headers(headers, RATELIMIT_REQUESTS, 0);
    let secs = match (retry_after_s, retry_after_ms) {
        (None, None) => Some(DEFAULT_RETRY_AFTER_S),
        (s, _) => s,
    };
    if let Some(s) = secs {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(s));
    }
    if let Some(ms) = retry_after_ms {
        headers.insert(
            HeaderName::from_static("retry-after-ms"),
            HeaderValue::from(ms),
        );
    }
    resp.extensions_mut().insert(RateLimitMark(true));
    resp
}

/// 429 `insufficient_quota`: no `Retry-After` (waiting does not help).
pub(crate) fn insufficient_quota(state: &SimState) -> Response {
    let mut resp = api_error(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        None,
        Some("insufficient_quota"),
    );
    // a 429, but not a rate limit: the account is out of money
    resp.extensions_mut().insert(RateLimitMark(false));
    resp
}
