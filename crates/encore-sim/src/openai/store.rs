//! OpenAI's server-side state: per-key usage behind the `x-ratelimit-*` headers
//! (advertised, not enforced) and the count of responses created.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::timefmt;

/// Requests per minute advertised in `x-ratelimit-limit-requests`.
pub const RATELIMIT_REQUESTS: u64 = 5_000;
/// Tokens per minute advertised in `x-ratelimit-limit-tokens`.
pub const RATELIMIT_TOKENS: u64 = 2_000_000;
const WINDOW: Duration = Duration::from_secs(60);

/// Per-key usage and the responses created so far.
#[derive(Debug, Default)]
pub(crate) struct Store {
    usage: HashMap<String, VecDeque<(Instant, u64)>>,
    /// Responses created so far (indexes `[openai] outcomes`).
    pub(crate) created: usize,
}

impl Store {
    /// Records a response's tokens: (requests, tokens) used in the last minute.
    pub(crate) fn record(&mut self, key: &str, tokens: u64, now: Instant) -> (u64, u64) {
        let q = self.usage.entry(key.to_owned()).or_default();
        while q
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= WINDOW)
        {
            q.pop_front();
        }
        q.push_back((now, tokens));
        (q.len() as u64, q.iter().map(|(_, t)| t).sum())
    }
}

pub(crate) fn ratelimit_headers(headers: &mut HeaderMap, used_requests: u64, used_tokens: u64) {
    let per_request = WINDOW.as_secs_f64() / RATELIMIT_REQUESTS as f64;
    let per_token = WINDOW.as_secs_f64() / RATELIMIT_TOKENS as f64;
    let pairs = [
        ("x-ratelimit-limit-requests", RATELIMIT_REQUESTS.to_string()),
        ("x-ratelimit-limit-tokens", RATELIMIT_TOKENS.to_string()),
        (
            "x-ratelimit-remaining-requests",
            RATELIMIT_REQUESTS.saturating_sub(used_requests).to_string(),
        ),
        (
            "x-ratelimit-remaining-tokens",
            RATELIMIT_TOKENS.saturating_sub(used_tokens).to_string(),
        ),
        (
            "x-ratelimit-reset-requests",
            timefmt::go_duration(Duration::from_secs_f64(per_request * used_requests as f64)),
        ),
        (
            "x-ratelimit-reset-tokens",
            timefmt::go_duration(Duration::from_secs_f64(per_token * used_tokens as f64)),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratelimit_header_values() {
        let mut h = HeaderMap::new();
        ratelimit_headers(&mut h, 1, 100);
        assert_eq!(h["x-ratelimit-remaining-requests"], "4999");
        assert_eq!(h["x-ratelimit-reset-requests"], "12ms");
        assert_eq!(h.len(), 6);
    }
}
