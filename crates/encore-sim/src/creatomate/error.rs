//! Creatomate's `{hint}` error answers.

use std::time::{Duration, SystemTime};

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::types::ErrorBody;

/// A `{hint}` error.
pub(crate) fn hint(status: StatusCode, hint: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            hint: hint.into(),
            documentation_url: None,
        }),
    )
        .into_response()
}

/// The default hint for a status.
pub(crate) fn default_hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request is invalid.",
        401 => "The API key is invalid. Find your project API key under Project Settings.",
        402 => "You don't have enough credits. Please upgrade your plan or purchase credits.",
        404 => "The resource could not be found.",
        429 => "Too many requests. The limit is 30 requests per 10 seconds; please slow down.",
        503 => "The service is temporarily unavailable. Please try again later.",
        s if s >= 500 => "An internal error occurred. Please try again later.",
        _ => "The request failed.",
    }
}

/// 429 with `Retry-After` as seconds or an HTTP-date (`None` = no header).
pub(crate) fn rate_limited(retry_after_s: Option<u64>, http_date: bool) -> Response {
    let mut resp = hint(
        StatusCode::TOO_MANY_REQUESTS,
        default_hint(StatusCode::TOO_MANY_REQUESTS),
    );
    if let Some(secs) = retry_after_s {
        let value = if http_date {
            // HTTP-dates have 1 s resolution: round up so the wait is never shorter.
            let at = SystemTime::now() + Duration::from_secs(secs + 1);
            HeaderValue::from_str(&httpdate::fmt_http_date(at)).ok()
        } else {
            Some(HeaderValue::from(secs))
        };
        if let Some(v) = value {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}
