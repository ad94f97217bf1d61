//! Classification shared by the three services: HTTP statuses, server hints and the decision
//! the retry loop gets. Each service's own rules live in its `classify` function
//! ([`crate::openai`], [`crate::suno`], [`crate::creatomate`]); transport failures are
//! classified where they happen ([`crate::Http`]).
//!
//! | failure | class | why |
//! |---|---|---|
//! | connect error, DNS, connect timeout | transient | the request never left the process |
//! | attempt timeout, reset after sending, truncated or unreadable body | may have run | the server may have processed it |
//! | garbled or unexpected 2xx body | may have run | the server did process it; only the answer is lost |
//! | 408 | transient | the server gave up waiting for the request, so it did not process it |
//! | 429 | transient (honouring `Retry-After` / `retry-after-ms`) | a rate limit rejects before processing |
//! | 5xx | may have run (honouring `Retry-After`) | the server may have done the work before failing |
//! | 404 | permanent (kind `NotFound`) | the same read is answered the same way; whether to look again later is the caller's call |
//! | other 4xx | permanent | the same request will be refused again |
//! | `x-should-retry: false` | permanent | the server says so |
//! | `x-should-retry: true` | transient for 4xx, may have run for 5xx | the server asks for a retry, but a 5xx may still have done the work |
//!
//! "May have run" is retried for reads (replaying a read is free) and, for billed calls, only
//! when the endpoint sets `retry_ambiguous` (the request path's
//! [`EndpointRules`](crate::request::EndpointRules)).

use std::time::{Duration, SystemTime};

use encore_resilience::parse_retry_after;
use http::{HeaderMap, StatusCode};

use crate::class::Class;
use crate::error::ErrorKind;

/// The server's requested wait: `retry-after-ms`, else `Retry-After` (seconds or HTTP-date).
pub(crate) fn retry_hint(headers: &HeaderMap) -> Option<Duration> {
    parse_retry_after(headers, SystemTime::now())
}

/// The non-standard `x-should-retry: true|false` header (exact lowercase, as openai-python).
pub(crate) fn should_retry(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The class of an HTTP error status by plain HTTP semantics (see the module table).
pub(crate) fn status_class(status: StatusCode, headers: &HeaderMap) -> Class {
    let after = retry_hint(headers);
    match should_retry(headers) {
        Some(false) => return Class::Permanent,
        Some(true) if status.is_server_error() => return Class::MayHaveRun { after },
        Some(true) => return Class::Transient { after },
        None => {}
    }
    match status.as_u16() {
        // 408: the server timed out waiting for the request; 429: rate limited before work.
        408 | 429 => Class::Transient { after },
        // 5xx: the work may have been done before the failure.
        500..=599 => Class::MayHaveRun { after },
        // Everything else (other 4xx, odd 1xx/3xx) will be answered the same way again.
        _ => Class::Permanent,
    }
}

/// The kind of an HTTP error status.
pub(crate) fn status_kind(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        401 | 403 => ErrorKind::Unauthorized,
        429 => ErrorKind::RateLimited,
        // Its own kind so that callers can tell "no such job" from "bad request"
        // (`Error::is_not_found`); still permanent by `status_class`.
        404 => ErrorKind::NotFound,
        400..=499 if status != StatusCode::REQUEST_TIMEOUT && status != StatusCode::CONFLICT => {
            ErrorKind::InvalidRequest
        }
        _ => ErrorKind::Status { status },
    }
}

/// `http 503 Service Unavailable`, plus `: message` when there is one.
pub(crate) fn status_detail(status: StatusCode, message: Option<&str>) -> String {
    let mut text = match status.canonical_reason() {
        Some(reason) => format!("http {} {reason}", status.as_u16()),
        None => format!("http {}", status.as_u16()),
    };
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

/// The longest server message kept in an error.
const MAX_MESSAGE: usize = 300;

/// A server message made fit for one line: whitespace collapsed, cut at [`MAX_MESSAGE`] chars.
pub(crate) fn clean_message(text: &str) -> Option<String> {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return None;
    }
    if collapsed.chars().count() <= MAX_MESSAGE {
        return Some(collapsed);
    }
    let cut: String = collapsed.chars().take(MAX_MESSAGE).collect();
    Some(format!("{cut}…"))
}

/// The start of a body that is not the JSON we expected (an HTML error page, plain text).
pub(crate) fn body_snippet(body: &[u8]) -> Option<String> {
    clean_message(&String::from_utf8_lossy(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    fn class(status: u16, pairs: &[(&'static str, &str)]) -> Class {
        status_class(StatusCode::from_u16(status).unwrap(), &headers(pairs))
    }

    const NO_HINT: Option<Duration> = None;

    #[test]
    fn http_statuses_case_by_case() {
        assert_eq!(class(408, &[]), Class::Transient { after: NO_HINT });
        assert_eq!(class(429, &[]), Class::Transient { after: NO_HINT });
        assert_eq!(
            class(429, &[("retry-after", "3")]),
            Class::Transient {
                after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            class(429, &[("retry-after", "3"), ("retry-after-ms", "250")]),
            Class::Transient {
                after: Some(Duration::from_millis(250))
            }
        );
        for s in [500, 502, 503, 504] {
            assert_eq!(class(s, &[]), Class::MayHaveRun { after: NO_HINT }, "{s}");
        }
        assert_eq!(
            class(503, &[("retry-after", "2")]),
            Class::MayHaveRun {
                after: Some(Duration::from_secs(2))
            }
        );
        for s in [400, 401, 402, 403, 404, 409, 413, 422, 301] {
            assert_eq!(class(s, &[]), Class::Permanent, "{s}");
        }
    }

    #[test]
    fn x_should_retry_overrides() {
        assert_eq!(class(503, &[("x-should-retry", "false")]), Class::Permanent);
        assert_eq!(class(429, &[("x-should-retry", "false")]), Class::Permanent);
        assert_eq!(
            class(400, &[("x-should-retry", "true")]),
            Class::Transient { after: NO_HINT }
        );
        assert_eq!(
            class(500, &[("x-should-retry", "true")]),
            Class::MayHaveRun { after: NO_HINT }
        );
        // Only the exact lowercase words count.
        assert_eq!(class(400, &[("x-should-retry", "TRUE")]), Class::Permanent);
    }

    #[test]
    fn kinds_and_details() {
        assert_eq!(
            status_kind(StatusCode::UNAUTHORIZED),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            status_kind(StatusCode::TOO_MANY_REQUESTS),
            ErrorKind::RateLimited
        );
        assert_eq!(status_kind(StatusCode::NOT_FOUND), ErrorKind::NotFound);
        assert_eq!(
            status_kind(StatusCode::UNPROCESSABLE_ENTITY),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            status_kind(StatusCode::BAD_GATEWAY),
            ErrorKind::Status {
                status: StatusCode::BAD_GATEWAY
            }
        );
        assert_eq!(
            status_detail(StatusCode::SERVICE_UNAVAILABLE, Some("down")),
            "http 503 Service Unavailable: down"
        );
        assert_eq!(
            status_detail(StatusCode::from_u16(430).unwrap(), None),
            "http 430"
        );
        assert_eq!(
            body_snippet(b"<html>\n  <h1>502</h1>\n</html>").unwrap(),
            "<html> <h1>502</h1> </html>"
        );
        assert!(body_snippet(b"  ").is_none());
        assert_eq!(
            clean_message(&"x".repeat(400)).unwrap().chars().count(),
            301
        );
    }
}
