//! The error of every client call: a small handle with a kind, context and predicates.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use encore_resilience::{AttemptTimedOut, CircuitOpen, Classify, Decision, Outcome, StopReason};
use http::StatusCode;

use crate::classify::decide;
use crate::config::{Endpoint, Service};
use crate::secret::ApiKey;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a failed attempt means for the retry loop, decided per service by its pure `classify`
/// function and turned into a [`Decision`](encore_resilience::Decision) by the request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Retrying is safe: the request provably was not processed (connect failure, 408, 429, a
    /// rate-limit body code), optionally after a server-requested wait.
    Transient { after: Option<Duration> },
    /// The request may have been processed (attempt timeout, reset after sending, 5xx, garbled
    /// success body). Replaying a read is free; replaying a billed call may pay twice.
    MayHaveRun { after: Option<Duration> },
    /// Sending the same request again cannot succeed.
    Permanent,
}

impl Class {
    /// The server-requested wait, if any.
    pub(crate) const fn after(self) -> Option<Duration> {
        match self {
            Class::Transient { after } | Class::MayHaveRun { after } => after,
            Class::Permanent => None,
        }
    }
}

/// What went wrong, for code that needs to branch on it. Most callers use the predicates on
/// [`Error`] instead.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No connection could be made (DNS, refused, connect timeout): the request was never sent.
    Connect,
    /// An attempt did not complete within its timeout (or what was left of the deadline).
    Timeout,
    /// The connection failed after the request may have been sent (reset, truncated body).
    Transport,
    /// An error status the other kinds do not cover (5xx, Suno 455 maintenance, …).
    Status {
        /// The HTTP status, or the Suno body code when the HTTP status was 200.
        status: StatusCode,
    },
    /// A rate limit (HTTP 429, Suno body codes 405 and 430).
    RateLimited,
    /// Out of credits or quota (Suno body code 429, Creatomate 402, OpenAI `insufficient_quota`).
    InsufficientCredits,
    /// The API key was refused (401, 403).
    Unauthorized,
    /// The request was refused as invalid (400, 404, 413, 422, …); sending it again cannot help.
    InvalidRequest,
    /// The response could not be decoded.
    Decode,
    /// The model refused to answer (OpenAI `refusal` content).
    Refusal,
    /// The response stopped early (OpenAI `status: incomplete`, e.g. `max_output_tokens`).
    Incomplete,
    /// The response failed on the server (OpenAI `status: failed`).
    ResponseFailed,
    /// A billed call failed after it may have been processed, and was not replayed because that
    /// could pay twice. The job may exist; see [`Error::may_have_run`].
    Ambiguous,
    /// The service's circuit breaker is open (it kept failing): the call failed fast and
    /// nothing was sent. See [`Error::is_circuit_open`]; the error says when the next probe is.
    CircuitOpen,
    /// The service's client-side rate limit had no free slot before the call's deadline, so
    /// nothing was sent ([`RateLimitConfig`](crate::RateLimitConfig)).
    Throttled,
    /// No API key, or an empty one.
    MissingKey,
    /// Invalid configuration or request construction (no request was sent).
    Config,
}

/// The error of a client call.
///
/// Displays as `suno.generate: gave up after 4 attempts in 7.1s: http 503 Service Unavailable:
/// <server message>` — the endpoint, the retry context when there was any, and what went wrong.
/// The cause (a `reqwest`, I/O or JSON error) is kept intact as [`source`](StdError::source), and
/// the predicates walk that chain. API keys never appear in it: server messages that echo a key
/// are redacted.
///
/// ```
/// use encore_clients::{ApiKey, ErrorKind};
///
/// let err = ApiKey::from_env("ENCORE_DOCTEST_UNSET_KEY").unwrap_err();
/// assert_eq!(*err.kind(), ErrorKind::MissingKey);
/// assert!(err.is_permanent() && !err.is_retryable() && !err.may_have_run());
/// assert_eq!(err.attempts(), 0);
/// ```
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    class: Class,
    detail: String,
    endpoint: Option<Endpoint>,
    status: Option<StatusCode>,
    api_code: Option<String>,
    server_message: Option<String>,
    attempts: u32,
    elapsed: Option<Duration>,
    stop: Option<StopReason>,
    may_have_run: bool,
    /// Whether "may have run" failures of this call are replayed (reads, or `retry_ambiguous`).
    replays_ambiguous: bool,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, class: Class, detail: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                class,
                detail: detail.into(),
                endpoint: None,
                status: None,
                api_code: None,
                server_message: None,
                attempts: 1,
                elapsed: None,
                stop: None,
                may_have_run: false,
                replays_ambiguous: false,
                source: None,
            }),
        }
    }

    /// An error found before any request was sent (missing key, bad input): permanent, zero
    /// attempts.
    pub(crate) fn local(kind: ErrorKind, detail: impl Into<String>) -> Error {
        let mut e = Error::new(kind, Class::Permanent, detail);
        e.inner.attempts = 0;
        e
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Error {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_api(mut self, code: Option<String>, message: Option<String>) -> Error {
        self.inner.api_code = code;
        self.inner.server_message = message;
        self
    }

    pub(crate) fn for_endpoint(mut self, endpoint: Endpoint) -> Error {
        self.inner.endpoint = Some(endpoint);
        self
    }

    pub(crate) fn class(&self) -> Class {
        self.inner.class
    }

    /// The attempt-level message, without the endpoint and retry context.
    pub(crate) fn detail(&self) -> &str {
        &self.inner.detail
    }

    /// Removes `key` from every text this error carries; a source whose text contains it is
    /// replaced by its redacted text (the only case where a cause is turned into a string).
    pub(crate) fn redact(mut self, key: &ApiKey) -> Error {
        let inner = &mut *self.inner;
        if key.is_in(&inner.detail) {
            inner.detail = key.redact(&inner.detail);
        }
        if let Some(msg) = &inner.server_message
            && key.is_in(msg)
        {
            inner.server_message = Some(key.redact(msg));
        }
        // A hostile or broken server can echo the key anywhere, the error code included.
        if let Some(code) = &inner.api_code
            && key.is_in(code)
        {
            inner.api_code = Some(key.redact(code));
        }
        if let Some(source) = &inner.source {
            let mut text = String::new();
            let mut next: Option<&(dyn StdError + 'static)> = Some(source.as_ref());
            while let Some(e) = next {
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&e.to_string());
                next = e.source();
            }
            if key.is_in(&text) || key.is_in(&format!("{source:?}")) {
                inner.source = Some(Box::new(Redacted(key.redact(&text))));
            }
        }
        self
    }

    /// Adds the retry context of the finished call.
    pub(crate) fn finish(
        mut self,
        endpoint: Endpoint,
        attempts: u32,
        elapsed: Duration,
        stop: Option<StopReason>,
        may_have_run: bool,
    ) -> Error {
        let inner = &mut *self.inner;
        inner.endpoint = Some(endpoint);
        inner.attempts = attempts;
        inner.elapsed = Some(elapsed);
        inner.stop = stop;
        inner.may_have_run = may_have_run;
        inner.replays_ambiguous = !endpoint.is_billed();
        self
    }

    /// Records that the endpoint opted in to replaying "may have run" failures.
    pub(crate) fn replaying_ambiguous(mut self, replays: bool) -> Error {
        self.inner.replays_ambiguous = replays;
        self
    }

    /// Wraps a finished error whose call may have created a billed job that was not replayed.
    pub(crate) fn into_ambiguous(self) -> Error {
        let inner = &self.inner;
        let mut outer = Error::new(ErrorKind::Ambiguous, inner.class, inner.detail.clone());
        let o = &mut *outer.inner;
        o.endpoint = inner.endpoint;
        o.status = inner.status;
        o.api_code.clone_from(&inner.api_code);
        o.server_message.clone_from(&inner.server_message);
        o.attempts = inner.attempts;
        o.elapsed = inner.elapsed;
        o.stop.clone_from(&inner.stop);
        o.may_have_run = true;
        outer.with_source(self)
    }

    /// The endpoint the call was for (`None` for errors raised before any call, such as a
    /// missing key).
    pub fn endpoint(&self) -> Option<Endpoint> {
        self.inner.endpoint
    }

    /// The service the call was for.
    pub fn service(&self) -> Option<Service> {
        self.inner.endpoint.map(Endpoint::service)
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The HTTP status of the last response, when it was an error status. A Suno error that
    /// arrived as HTTP 200 with a body code has no status; see [`api_code`](Self::api_code).
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The service's own error code: the Suno body code (`"430"`), the OpenAI `error.code` or
    /// `error.type` (`"insufficient_quota"`) or `error.code` of a failed response.
    pub fn api_code(&self) -> Option<&str> {
        self.inner.api_code.as_deref()
    }

    /// The server's message (Suno `msg`, Creatomate `hint`, OpenAI `error.message`, or the start
    /// of a non-JSON body), with any API key redacted.
    pub fn server_message(&self) -> Option<&str> {
        self.inner.server_message.as_deref()
    }

    /// How many attempts were made (0 when the error arose before the first one).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Time from the first attempt to giving up, waits included.
    pub fn elapsed(&self) -> Option<Duration> {
        self.inner.elapsed
    }

    /// Why the retry loop stopped, when it made more than one attempt or gave up on a
    /// retryable failure.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.inner.stop.as_ref()
    }

    /// Whether an attempt timed out (anywhere in the source chain: the attempt timeout, an I/O
    /// `TimedOut`, a reqwest or tokio timeout).
    pub fn is_timeout(&self) -> bool {
        self.chain().any(|e| {
            if let Some(e) = e.downcast_ref::<Error>() {
                e.inner.kind == ErrorKind::Timeout
            } else if let Some(e) = e.downcast_ref::<reqwest::Error>() {
                e.is_timeout()
            } else if let Some(e) = e.downcast_ref::<std::io::Error>() {
                e.kind() == std::io::ErrorKind::TimedOut
            } else {
                e.is::<AttemptTimedOut>() || e.is::<tokio::time::error::Elapsed>()
            }
        })
    }

    /// Whether no connection could be made, so the request was never sent.
    pub fn is_connect(&self) -> bool {
        self.chain().any(|e| {
            if let Some(e) = e.downcast_ref::<Error>() {
                e.inner.kind == ErrorKind::Connect
            } else if let Some(e) = e.downcast_ref::<reqwest::Error>() {
                e.is_connect()
            } else if let Some(e) = e.downcast_ref::<std::io::Error>() {
                e.kind() == std::io::ErrorKind::ConnectionRefused
            } else {
                false
            }
        })
    }

    /// Whether calling again later may succeed and is allowed by the endpoint's policy:
    /// transient failures, and "may have run" failures of reads or of billed endpoints that set
    /// `retry_ambiguous`. `false` for permanent errors and for [`ErrorKind::Ambiguous`].
    pub fn is_retryable(&self) -> bool {
        if self.inner.kind == ErrorKind::Ambiguous {
            return false;
        }
        match self.inner.class {
            Class::Transient { .. } => true,
            Class::MayHaveRun { .. } => self.inner.replays_ambiguous,
            Class::Permanent => false,
        }
    }

    /// Whether a billed job (a Suno task, a Creatomate render, an OpenAI response) may have been
    /// created by this call although it failed: check before running it again.
    pub fn may_have_run(&self) -> bool {
        self.inner.may_have_run
    }

    /// Whether the call gave up on a retryable failure: attempts used up, the deadline, a
    /// too-long `Retry-After`, or retries switched off.
    pub fn is_exhausted(&self) -> bool {
        self.inner.kind != ErrorKind::Ambiguous
            && self
                .inner
                .stop
                .as_ref()
                .is_some_and(|s| *s != StopReason::Permanent)
    }

    /// Whether the call failed because the service's circuit breaker is open: refused outright
    /// ([`ErrorKind::CircuitOpen`], nothing sent, [`attempts`](Self::attempts) `== 0`), or
    /// retries stopped because it opened meanwhile. [`stop_reason`](Self::stop_reason) says when
    /// the next probe is due.
    pub fn is_circuit_open(&self) -> bool {
        self.inner.kind == ErrorKind::CircuitOpen
            || matches!(self.inner.stop, Some(StopReason::CircuitOpen { .. }))
    }

    /// Whether retrying stopped because the service's retry budget was empty (retries were
    /// already adding the configured share of load).
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self.inner.stop, Some(StopReason::BudgetExhausted { .. }))
    }

    /// Whether the service's client-side rate limit had no slot before the deadline
    /// ([`ErrorKind::Throttled`]; the last attempt was not sent).
    pub fn is_throttled(&self) -> bool {
        self.inner.kind == ErrorKind::Throttled
    }

    /// Whether the same request can never succeed (bad input, bad key, no credits, a refusal).
    pub fn is_permanent(&self) -> bool {
        self.inner.kind != ErrorKind::Ambiguous && self.inner.class == Class::Permanent
    }

    /// This error and its sources, outermost first.
    fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        let mut next: Option<&(dyn StdError + 'static)> = Some(self);
        std::iter::from_fn(move || {
            let current = next?;
            next = current.source();
            Some(current)
        })
    }
}

fn ambiguous_hint(endpoint: Option<Endpoint>) -> String {
    match endpoint {
        Some(Endpoint::SunoGenerate) => {
            "the task may have been created and billed, so it was not retried; \
             check the Suno dashboard before running again, \
             or set endpoints.suno_generate.retry_ambiguous = true"
                .to_owned()
        }
        Some(Endpoint::CreatomateRender) => {
            "the render may have been queued and billed, so it was not retried; \
             check the Creatomate dashboard before running again, \
             or set endpoints.creatomate_render.retry_ambiguous = true"
                .to_owned()
        }
        Some(e) => format!(
            "the request may have been processed and billed, so it was not retried; \
             set endpoints.{}.retry_ambiguous = true to replay such failures",
            e.config_key()
        ),
        None => "the request may have been processed and billed, so it was not retried".to_owned(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        if let Some(endpoint) = i.endpoint {
            write!(f, "{endpoint}: ")?;
        }
        // No attempt made (refused by the breaker or the rate limit): the detail says it all.
        let gave_up = i.attempts > 1
            || (i.attempts == 1 && i.stop.as_ref().is_some_and(|s| *s != StopReason::Permanent));
        if let (Some(elapsed), true) = (i.elapsed, gave_up) {
            let plural = if i.attempts == 1 { "" } else { "s" };
            write!(
                f,
                "gave up after {} attempt{plural} in {:.1}s",
                i.attempts,
                elapsed.as_secs_f64()
            )?;
            match &i.stop {
                Some(StopReason::AttemptsExhausted) | None => {}
                Some(StopReason::Permanent) if i.kind == ErrorKind::Ambiguous => {}
                // The detail already says why: the breaker or the rate limit refused the retry.
                Some(StopReason::CircuitOpen { .. }) if i.kind == ErrorKind::CircuitOpen => {}
                Some(StopReason::Deadline { .. }) if i.kind == ErrorKind::Throttled => {}
                Some(reason) => write!(f, " ({reason})")?,
            }
            f.write_str(": ")?;
        }
        f.write_str(&i.detail)?;
        if i.kind == ErrorKind::Ambiguous {
            write!(f, "; {}", ambiguous_hint(i.endpoint))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// The per-attempt timeout of the resilience core: the request may have been processed.
impl From<AttemptTimedOut> for Error {
    fn from(e: AttemptTimedOut) -> Self {
        Error::new(
            ErrorKind::Timeout,
            Class::MayHaveRun { after: None },
            e.to_string(),
        )
    }
}

/// A call refused by the service's open circuit breaker: nothing was sent. Calling again may
/// succeed once the breaker lets a probe through (`retry_in`).
impl From<CircuitOpen> for Error {
    fn from(open: CircuitOpen) -> Self {
        let after = (!open.retry_in.is_zero()).then_some(open.retry_in);
        let mut error = Error::new(
            ErrorKind::CircuitOpen,
            Class::Transient { after },
            open.to_string(),
        )
        .with_source(open);
        error.inner.attempts = 0;
        error
    }
}

/// How the resilience core treats an attempt's error. The request path marks each attempt's
/// error with whether its endpoint replays "may have run" failures before handing it over.
impl Classify for Error {
    fn classify(&self) -> Decision {
        match self.inner.kind {
            // Refused before sending; retrying inside the same call cannot fit either.
            ErrorKind::CircuitOpen | ErrorKind::Throttled => Decision::Stop,
            _ => decide(self.inner.class, self.inner.replays_ambiguous),
        }
    }

    /// What the failure says about the service, which is not always what the decision says: a
    /// billed call that may have run is not replayed (`Stop`) but the service still failed.
    ///
    /// | failure | outcome |
    /// |---|---|
    /// | refused locally (circuit open, no rate-limit slot) | neither way (nothing was sent) |
    /// | rate limited (429, Suno 405/430), or any failure with `Retry-After` | neither way: the service is alive and asks us to slow down |
    /// | connect error, timeout, reset, 5xx, Suno 455/500, garbled answer | failure |
    /// | permanent (400, 401, 404, no credits, …) | success: the service answered |
    fn breaker_outcome(&self) -> Outcome {
        match (&self.inner.kind, self.inner.class) {
            (ErrorKind::CircuitOpen | ErrorKind::Throttled | ErrorKind::RateLimited, _)
            | (_, Class::Transient { after: Some(_) } | Class::MayHaveRun { after: Some(_) }) => {
                Outcome::RateLimited
            }
            (_, Class::Transient { after: None } | Class::MayHaveRun { after: None }) => {
                Outcome::Failure
            }
            (_, Class::Permanent) => Outcome::Success,
        }
    }
}

/// A cause whose text contained an API key, kept as its redacted text.
#[derive(Debug)]
struct Redacted(String);

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Redacted {}

#[cfg(test)]
mod tests {
    use super::*;

    fn exhausted() -> Error {
        Error::new(
            ErrorKind::Status {
                status: StatusCode::SERVICE_UNAVAILABLE,
            },
            Class::MayHaveRun { after: None },
            "http 503 Service Unavailable: upstream down",
        )
        .with_status(StatusCode::SERVICE_UNAVAILABLE)
        .with_source(std::io::Error::other("inner"))
        .finish(
            Endpoint::SunoStatus,
            3,
            Duration::from_millis(3100),
            Some(StopReason::AttemptsExhausted),
            false,
        )
    }

    #[test]
    fn display_reads_like_the_issue_says() {
        assert_eq!(
            exhausted().to_string(),
            "suno.status: gave up after 3 attempts in 3.1s: http 503 Service Unavailable: upstream down"
        );
        let first = Error::new(
            ErrorKind::InvalidRequest,
            Class::Permanent,
            "http 400 Bad Request",
        )
        .finish(Endpoint::CreatomateRender, 1, Duration::ZERO, None, false);
        assert_eq!(first.to_string(), "creatomate.render: http 400 Bad Request");
        let disabled = Error::new(ErrorKind::Connect, Class::Transient { after: None }, "x")
            .finish(
                Endpoint::SunoCredits,
                1,
                Duration::ZERO,
                Some(StopReason::RetriesDisabled),
                false,
            );
        assert_eq!(
            disabled.to_string(),
            "suno.credits: gave up after 1 attempt in 0.0s (retries disabled): x"
        );
    }

    #[test]
    fn ambiguous_says_the_job_may_exist_and_how_to_check() {
        let err = Error::from(AttemptTimedOut {
            limit: Duration::from_secs(30),
        })
        .finish(
            Endpoint::SunoGenerate,
            1,
            Duration::from_secs(30),
            None,
            true,
        )
        .into_ambiguous();
        assert_eq!(*err.kind(), ErrorKind::Ambiguous);
        assert!(err.may_have_run() && !err.is_retryable() && !err.is_permanent());
        assert!(!err.is_exhausted());
        assert!(err.is_timeout(), "walks the source chain");
        let text = err.to_string();
        assert!(text.starts_with("suno.generate: attempt timed out after 30s; the task may have been created and billed"), "{text}");
        assert!(text.contains("check the Suno dashboard"), "{text}");
        assert!(
            text.contains("endpoints.suno_generate.retry_ambiguous = true"),
            "{text}"
        );
        let source = err.source().unwrap().downcast_ref::<Error>().unwrap();
        assert_eq!(*source.kind(), ErrorKind::Timeout);
    }

    #[test]
    fn the_source_chain_is_intact_and_predicates_walk_it() {
        let err = exhausted();
        assert_eq!(err.source().unwrap().to_string(), "inner");
        assert!(err.is_exhausted() && err.is_retryable() && !err.is_permanent());
        assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(err.service(), Some(Service::Suno));
        let nested =
            Error::new(ErrorKind::Transport, Class::MayHaveRun { after: None }, "t").with_source(
                std::io::Error::new(std::io::ErrorKind::TimedOut, std::io::Error::other("deep")),
            );
        assert!(nested.is_timeout());
        assert!(!nested.is_connect());
        let refused = Error::new(ErrorKind::Transport, Class::Transient { after: None }, "c")
            .with_source(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(refused.is_connect());
    }

    #[test]
    fn redaction_reaches_messages_and_sources() {
        let key = ApiKey::new("sk-SENTINEL-42").unwrap();
        let err = Error::new(
            ErrorKind::Unauthorized,
            Class::Permanent,
            "http 401 Unauthorized: bad key sk-SENTINEL-42",
        )
        .with_api(None, Some("bad key sk-SENTINEL-42".into()))
        .with_source(std::io::Error::other("echo sk-SENTINEL-42"))
        .redact(&key);
        let all = format!("{err} {err:?} {}", err.source().unwrap());
        assert!(!all.contains("SENTINEL"), "{all}");
        assert!(all.contains("bad key ***"), "{all}");
    }

    #[test]
    fn a_refusal_by_the_breaker_names_the_service_and_the_next_probe() {
        let open = CircuitOpen {
            upstream: "suno".into(),
            retry_in: Duration::from_millis(8500),
        };
        let refused = Error::from(open.clone()).finish(
            Endpoint::SunoGenerate,
            0,
            Duration::ZERO,
            Some(StopReason::CircuitOpen {
                upstream: "suno".into(),
                retry_in: open.retry_in,
            }),
            false,
        );
        assert_eq!(
            refused.to_string(),
            "suno.generate: circuit open for suno, next probe in 8.5s"
        );
        assert_eq!(*refused.kind(), ErrorKind::CircuitOpen);
        assert!(refused.is_circuit_open() && refused.is_exhausted());
        assert!(refused.is_retryable() && !refused.is_permanent() && !refused.may_have_run());
        assert!(!refused.is_budget_exhausted() && !refused.is_throttled());
        assert_eq!(refused.attempts(), 0);
        let source = refused.source().unwrap().downcast_ref::<CircuitOpen>();
        assert_eq!(source, Some(&open), "the core's refusal is the source");
        // After real attempts the reason is not repeated.
        let later = Error::from(open).finish(
            Endpoint::SunoStatus,
            2,
            Duration::from_secs(3),
            Some(StopReason::CircuitOpen {
                upstream: "suno".into(),
                retry_in: Duration::from_millis(8500),
            }),
            false,
        );
        assert_eq!(
            later.to_string(),
            "suno.status: gave up after 2 attempts in 3.0s: circuit open for suno, next probe in 8.5s"
        );
    }

    #[test]
    fn budget_and_breaker_stops_are_predicates_on_the_last_error() {
        let stop = |reason| {
            Error::new(
                ErrorKind::Status {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                },
                Class::MayHaveRun { after: None },
                "http 503 Service Unavailable",
            )
            .finish(Endpoint::SunoStatus, 1, Duration::ZERO, Some(reason), false)
        };
        let dry = stop(StopReason::BudgetExhausted {
            upstream: "suno".into(),
            per_mille: 200,
        });
        assert!(dry.is_budget_exhausted() && dry.is_exhausted() && !dry.is_circuit_open());
        assert_eq!(
            dry.to_string(),
            "suno.status: gave up after 1 attempt in 0.0s (retry budget for suno exhausted: \
             retries are limited to 20% of calls): http 503 Service Unavailable"
        );
        let open = stop(StopReason::CircuitOpen {
            upstream: "suno".into(),
            retry_in: Duration::from_secs(10),
        });
        assert!(open.is_circuit_open() && !open.is_budget_exhausted());
        assert_eq!(
            open.to_string(),
            "suno.status: gave up after 1 attempt in 0.0s (circuit open for suno, next probe \
             in 10s): http 503 Service Unavailable"
        );
    }

    #[test]
    fn decisions_and_breaker_outcomes_case_by_case() {
        let e = |kind, class| Error::new(kind, class, "x");
        let secs = |s| Some(Duration::from_secs(s));
        let status = ErrorKind::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
        };
        let may = |after| Class::MayHaveRun { after };
        let transient = |after| Class::Transient { after };
        for (error, replays, decision, outcome) in [
            // A billed call's 5xx is not replayed, yet the service failed.
            (
                e(status.clone(), may(None)),
                false,
                Decision::Stop,
                Outcome::Failure,
            ),
            (
                e(status.clone(), may(None)),
                true,
                Decision::Retry,
                Outcome::Failure,
            ),
            (
                e(ErrorKind::Timeout, may(None)),
                false,
                Decision::Stop,
                Outcome::Failure,
            ),
            (
                e(ErrorKind::Connect, transient(None)),
                false,
                Decision::Retry,
                Outcome::Failure,
            ),
            // Suno maintenance (455): a hard failure.
            (
                e(status.clone(), transient(None)),
                false,
                Decision::Retry,
                Outcome::Failure,
            ),
            // Rate limits count neither way, with or without a hint.
            (
                e(ErrorKind::RateLimited, transient(secs(3))),
                false,
                Decision::RetryAfter(Duration::from_secs(3)),
                Outcome::RateLimited,
            ),
            (
                e(ErrorKind::RateLimited, transient(None)),
                false,
                Decision::Retry,
                Outcome::RateLimited,
            ),
            // A 503 with Retry-After asks us to slow down.
            (
                e(status.clone(), may(secs(2))),
                true,
                Decision::RetryAfter(Duration::from_secs(2)),
                Outcome::RateLimited,
            ),
            // The service answered: it is up.
            (
                e(ErrorKind::InvalidRequest, Class::Permanent),
                true,
                Decision::Stop,
                Outcome::Success,
            ),
            (
                e(ErrorKind::Unauthorized, Class::Permanent),
                true,
                Decision::Stop,
                Outcome::Success,
            ),
            // Refused before sending: stop, and say nothing about the service.
            (
                e(ErrorKind::Throttled, transient(secs(5))),
                true,
                Decision::Stop,
                Outcome::RateLimited,
            ),
        ] {
            let error = error.replaying_ambiguous(replays);
            assert_eq!(error.classify(), decision, "{:?}", error.kind());
            assert_eq!(error.breaker_outcome(), outcome, "{:?}", error.kind());
        }
        let open = Error::from(CircuitOpen {
            upstream: "x".into(),
            retry_in: Duration::ZERO,
        });
        assert_eq!(open.classify(), Decision::Stop);
        assert_eq!(open.breaker_outcome(), Outcome::RateLimited);
        assert_eq!(
            open.to_string(),
            "circuit half-open for x, waiting for a probe"
        );
    }

    #[test]
    fn errors_are_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
