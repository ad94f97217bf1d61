//! Server-requested waits: `retry-after-ms` and `Retry-After` (seconds or HTTP-date).
//!
//! [`parse_retry_after`] reads both from a header map; the two value parsers are here for
//! callers that hold the values elsewhere.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use crate::defaults::MAX_SANE_RETRY_AFTER;

/// Reads the server's requested wait from response headers.
///
/// `retry-after-ms` is preferred when present and valid (as openai-python does); otherwise
/// `Retry-After` as delta seconds (integers or decimals) or as an HTTP-date relative to `now`.
/// Zero, negative, non-finite, absurd (above [`MAX_SANE_RETRY_AFTER`]) and unparseable values
/// are ignored: the result is `None` and the caller falls back to its backoff. Never panics.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use encore_resilience::parse_retry_after;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", "2".parse().unwrap());
/// assert_eq!(parse_retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(2)));
/// headers.insert("retry-after-ms", "750".parse().unwrap());
/// assert_eq!(parse_retry_after(&headers, SystemTime::now()), Some(Duration::from_millis(750)));
/// ```
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    text("retry-after-ms")
        .and_then(parse_retry_after_ms)
        .or_else(|| text("retry-after").and_then(|v| parse_retry_after_value(v, now)))
}

/// Parses a `retry-after-ms` value (milliseconds, decimals allowed).
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let ms: f64 = value.trim().parse().ok()?;
    sane(ms / 1000.0)
}

/// Parses a `Retry-After` value: delta seconds (decimals allowed) or an HTTP-date.
pub fn parse_retry_after_value(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return sane(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let wait = at.duration_since(now).ok()?;
    sane(wait.as_secs_f64())
}

fn sane(secs: f64) -> Option<Duration> {
    // Negative, non-finite and overflowing values do not convert; a positive value below a
    // nanosecond (`1e-10`) rounds to no wait at all: ignore it like `0`.
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|wait| !wait.is_zero() && *wait <= MAX_SANE_RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        // 2026-11-26T12:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_694_400)
    }

    fn header(pairs: &[(&'static str, &str)]) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        parse_retry_after(&headers, now())
    }

    #[test]
    fn delta_seconds_integers_and_decimals() {
        assert_eq!(
            header(&[("retry-after", "1")]),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            header(&[("retry-after", " 120 ")]),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            header(&[("retry-after", "0.5")]),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn milliseconds_are_preferred_when_valid() {
        assert_eq!(
            header(&[("retry-after", "5"), ("retry-after-ms", "644")]),
            Some(Duration::from_millis(644))
        );
        assert_eq!(
            header(&[("retry-after", "5"), ("retry-after-ms", "soon")]),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            header(&[("retry-after-ms", "1.5")]),
            Some(Duration::from_micros(1500))
        );
    }

    #[test]
    fn http_dates_in_the_future_and_past() {
        let future = httpdate::fmt_http_date(now() + Duration::from_secs(30));
        assert_eq!(
            header(&[("retry-after", &future)]),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now() - Duration::from_secs(30));
        assert_eq!(header(&[("retry-after", &past)]), None);
        assert_eq!(
            parse_retry_after_value("Thu, 26 Nov 2026 12:00:10 GMT", now()),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn zero_negative_non_finite_absurd_and_garbage_are_ignored() {
        for value in [
            "0",
            "-1",
            "-0.5",
            "-0",
            "inf",
            "-inf",
            "infinity",
            "nan",
            "NaN",
            "1e35",
            "99999999999999999999999",
            "86401",
            "",
            "   ",
            "soon",
            "1s",
            "Zun, 29 Sep 2023 16:26:27 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after_value(value, now()), None, "{value:?}");
            if value != "86401" {
                assert_eq!(parse_retry_after_ms(value), None, "{value:?} as ms");
            }
        }
        assert_eq!(parse_retry_after_ms("86400001"), None, "over a day in ms");
        assert_eq!(parse_retry_after_ms("1e-7"), None, "below a nanosecond");
        assert_eq!(
            parse_retry_after_value("86400", now()),
            Some(Duration::from_secs(86_400)),
            "a day is the longest wait believed"
        );
        assert_eq!(
            parse_retry_after_ms("86400000"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(header(&[]), None);
    }

    #[test]
    fn non_ascii_header_values_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(parse_retry_after(&headers, now()), None);
    }
}
