//! The error of every client call: a small handle with a kind, context and predicates.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use encore_resilience::breaker::CircuitOpen;
use encore_resilience::fmt::GaveUp;
use encore_resilience::rate_limit::NoSlot;
use encore_resilience::{AttemptTimedOut, StopReason};
use http::StatusCode;

use crate::class::Class;
use crate::endpoint::{Endpoint, Service};

pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

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
    /// The request was refused as invalid (400, 413, 422, …); sending it again cannot help.
    InvalidRequest,
    /// The provider does not know what was asked for: HTTP 404 from any service, Suno's body
    /// code 404, and Suno's "task not found" answers to a task read (see
    /// [`Error::is_not_found`]). Permanent for the call: the same read a moment later gets the
    /// same answer from a store that has not caught up, so whether to look again later (a job
    /// created moments ago) is the caller's decision, not the retry loop's.
    NotFound,
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
    /// nothing was sent ([`RateLimitConfig`](encore_resilience::rate_limit::RateLimitConfig)).
    Throttled,
    /// No API key, or an empty one.
    MissingKey,
    /// Invalid configuration or request construction (no request was sent).
    Config,
}

impl ErrorKind {
    /// A short, stable name: `connect`, `timeout`, `transport`, `status`, `rate_limited`, …
    /// (for log lines and metrics labels).
    pub const fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transport => "transport",
            ErrorKind::Status { .. } => "status",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::InsufficientCredits => "insufficient_credits",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Decode => "decode",
            ErrorKind::Refusal => "refusal",
            ErrorKind::Incomplete => "incomplete",
            ErrorKind::ResponseFailed => "response_failed",
            ErrorKind::Ambiguous => "ambiguous",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::Throttled => "throttled",
            ErrorKind::MissingKey => "missing_key",
            ErrorKind::Config => "config",
        }
    }
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

    /// The texts an error carries besides its source (for redaction).
    pub(crate) fn texts_mut(&mut self) -> [Option<&mut String>; 3] {
        let inner = &mut *self.inner;
        [
            Some(&mut inner.detail),
            inner.server_message.as_mut(),
            inner.api_code.as_mut(),
        ]
    }

    /// The source, for redaction.
    pub(crate) fn source_mut(&mut self) -> &mut Option<BoxError> {
        &mut self.inner.source
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
        // Reads are always replayed; billed endpoints say otherwise with `replaying_ambiguous`.
        inner.replays_ambiguous = !endpoint.is_billed();
        self
    }

    /// Records whether the endpoint replays "may have run" failures (reads always do; billed
    /// endpoints when they set `retry_ambiguous`), for [`is_retryable`](Self::is_retryable).
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

    /// Whether the service's client-side rate limit had no slot before the deadline: refused
    /// outright ([`ErrorKind::Throttled`], nothing sent), or retries stopped because the next
    /// attempt could not get a slot.
    pub fn is_throttled(&self) -> bool {
        self.inner.kind == ErrorKind::Throttled
            || matches!(self.inner.stop, Some(StopReason::Throttled(_)))
    }

    /// What went wrong, as OpenTelemetry's `error.type` names it: the HTTP status code when the
    /// answer had an error status (`"503"`), otherwise [`ErrorKind::as_str`] (`"timeout"`).
    pub fn error_type(&self) -> std::borrow::Cow<'static, str> {
        let status = match &self.inner.kind {
            ErrorKind::Status { status } => Some(*status),
            _ => self.inner.status,
        };
        match status {
            Some(status) => std::borrow::Cow::Owned(status.as_u16().to_string()),
            None => std::borrow::Cow::Borrowed(self.inner.kind.as_str()),
        }
    }

    /// Whether the provider answered that it does not know what was asked for
    /// ([`ErrorKind::NotFound`]):
    ///
    /// - HTTP 404, from any service (Creatomate's answer for an unknown render or template);
    /// - Suno's envelope code 404, as HTTP 200 or mirrored into the status;
    /// - Suno's envelope code 400 on `record-info`, whose one parameter is the task id (checked
    ///   non-empty before sending, so "invalid parameters" can only be about the id: an unknown
    ///   task), and on `get-timestamped-lyrics` when the message says "not found" (there a 400
    ///   also means "the audio is not ready yet" or "audioId does not belong to this task").
    ///
    /// sunoapi.org documents no "unknown task" answer (`shared/reference/apis.md` 6: what
    /// `record-info` answers for an unknown or just-created task is unconfirmed); 400 and 404
    /// are the two its code table allows. A not-found answer is permanent for the call — one
    /// attempt, no retry budget spent, and it counts as the service being up for its circuit
    /// breaker — because the server answered. A job created moments ago may not be readable
    /// yet; looking again later is the caller's decision (the pipeline's `not_found_grace`).
    /// Refusals by encore's own protections (circuit open, no rate-limit slot) are never "not
    /// found": nothing was asked.
    pub fn is_not_found(&self) -> bool {
        self.inner.kind == ErrorKind::NotFound
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
    let billing = endpoint.and_then(Endpoint::billing);
    let may_exist = billing.map_or("the request may have been processed", |b| b.may_exist);
    let mut hint = format!("{may_exist} and billed, so it was not retried");
    match (endpoint, billing.and_then(|b| b.check)) {
        (Some(e), Some(check)) => hint.push_str(&format!(
            "; check {check} before running again, or set endpoints.{}.retry_ambiguous = true",
            e.config_key()
        )),
        (Some(e), None) => hint.push_str(&format!(
            "; set endpoints.{}.retry_ambiguous = true to replay such failures",
            e.config_key()
        )),
        (None, _) => {}
    }
    hint
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
            GaveUp {
                attempts: i.attempts,
                elapsed,
            }
            .fmt(f)?;
            match &i.stop {
                Some(StopReason::AttemptsExhausted) | None => {}
                Some(StopReason::Permanent) if i.kind == ErrorKind::Ambiguous => {}
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

/// A call refused by the service's client-side rate limit: nothing was sent. Calling again may
/// succeed when a slot is free (`next_in`).
impl From<NoSlot> for Error {
    fn from(refusal: NoSlot) -> Self {
        let mut error = Error::new(
            ErrorKind::Throttled,
            Class::Transient {
                after: Some(refusal.next_in),
            },
            refusal.to_string(),
        )
        .with_source(refusal);
        error.inner.attempts = 0;
        error
    }
}

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
            "suno.credits: gave up after 1 attempt in 0ms (retries disabled): x"
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
            "suno.status: gave up after 1 attempt in 0ms (retry budget for suno exhausted: \
             retries are limited to 20% of calls): http 503 Service Unavailable"
        );
        let open = stop(StopReason::CircuitOpen {
            upstream: "suno".into(),
            retry_in: Duration::from_secs(10),
        });
        assert!(open.is_circuit_open() && !open.is_budget_exhausted());
        assert_eq!(
            open.to_string(),
            "suno.status: gave up after 1 attempt in 0ms (circuit open for suno, next probe \
             in 10s): http 503 Service Unavailable"
        );
    }

    #[test]
    fn a_refusal_by_the_rate_limit_is_throttled_with_nothing_sent() {
        let refusal = NoSlot::new(
            "creatomate",
            (1, Duration::from_secs(60)),
            Duration::from_secs(60),
            true,
            Duration::from_secs(5),
        );
        let err = Error::from(refusal.clone()).finish(
            Endpoint::CreatomateStatus,
            0,
            Duration::ZERO,
            Some(StopReason::Throttled(refusal)),
            false,
        );
        assert_eq!(*err.kind(), ErrorKind::Throttled);
        assert!(err.is_throttled() && err.is_retryable() && err.is_exhausted());
        assert_eq!(err.attempts(), 0);
        assert_eq!(
            err.to_string(),
            "creatomate.status: client-side rate limit for creatomate (1 requests per 1m): no \
             slot before the deadline, the next is in 1m with 5s left; not sent"
        );
        assert_eq!(err.kind().as_str(), "throttled");
        assert_eq!(err.error_type(), "throttled");
        // With an error status, `error.type` is its code, as OpenTelemetry asks.
        assert_eq!(exhausted().error_type(), "503");
        assert_eq!(exhausted().kind().as_str(), "status");
    }

    #[test]
    fn errors_are_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
