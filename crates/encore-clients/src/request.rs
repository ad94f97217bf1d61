//! The one request path every call of every service takes (the seed plan's Creatomate
//! `_request`), read top to bottom in [`ServiceClient::call`]:
//!
//! 1. the endpoint's settings, precomputed when the client was built: its [`RetryPolicy`] and
//!    its [`EndpointRules`] (may a "may have run" failure be replayed?);
//! 2. the core's [`Retry`] loop runs the whole call with the service's shared
//!    [protections](crate::Protections): per attempt it takes the circuit breaker's permission
//!    and a rate-limit slot (inside the deadline, outside the attempt's timeout: a queued
//!    request was not sent), runs [`ServiceClient::attempt`] under the attempt's timeout,
//!    classifies a failure with the [`EndpointRules`], reports the outcome to the breaker,
//!    decides (attempts, `Retry-After` ceiling, deadline, breaker, budget), logs the retry at
//!    `WARN`, and waits;
//! 3. an attempt is one HTTP exchange in a `tracing` span named after OpenTelemetry's HTTP
//!    client conventions: build, send, read the whole body, decode with the service's pure
//!    `classify` function; every error is redacted before it leaves;
//! 4. every event of the loop reaches the [`CallObserver`] (the one place that reports:
//!    attempts, refusals, retries, the finished call), and the final error gets the call's
//!    context: endpoint, attempts, time, why it stopped, and — for a billed call — whether the
//!    job may exist.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use encore_resilience::{
    Attempt, Classifier, Decision, Event, Outcome, Retry, RetryError, RetryPolicy, StopReason,
};
use http::{HeaderValue, Method};
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

use crate::class::Class;
use crate::config::{Config, ConfigError};
use crate::endpoint::{Endpoint, Service};
use crate::error::{Error, ErrorKind};
use crate::observer::{
    AttemptOutcome, AttemptRecord, CallObserver, CallOutcome, CallRecord, Protection,
    RefusalNotice, RetryNotice,
};
use crate::protections::ServiceProtections;
use crate::redact::redact;
use crate::secret::ApiKey;
use crate::transport::{Http, RawResponse};

/// One logical call: what to send to which endpoint.
pub(crate) struct Call {
    pub(crate) endpoint: Endpoint,
    pub(crate) method: Method,
    /// The whole URL ([`ServiceClient::url`]), built once for every attempt.
    pub(crate) url: String,
    /// A JSON body.
    pub(crate) body: Option<Bytes>,
}

impl Call {
    pub(crate) fn get(endpoint: Endpoint, url: String) -> Call {
        Call {
            endpoint,
            method: Method::GET,
            url,
            body: None,
        }
    }

    pub(crate) fn post_json(
        endpoint: Endpoint,
        url: String,
        body: &impl serde::Serialize,
    ) -> Result<Call, Error> {
        let body = serde_json::to_vec(body).map_err(|e| {
            Error::local(ErrorKind::Config, "could not encode the request body")
                .with_source(e)
                .for_endpoint(endpoint)
        })?;
        Ok(Call {
            endpoint,
            method: Method::POST,
            url,
            body: Some(Bytes::from(body)),
        })
    }
}

/// What one endpoint decides about its failures: the classification the core's loop is given,
/// beside the operation. The error says what happened ([`Class`]); the endpoint says whether a
/// request that may have been processed may be sent again.
///
/// | class | decision | breaker outcome |
/// |---|---|---|
/// | transient | retry (after the server's wait, if it named one) | failure; rate limited when it is a rate limit or names a wait |
/// | may have run, replayed (reads; billed with `retry_ambiguous`) | retry (likewise) | failure; rate limited when it names a wait |
/// | may have run, billed | stop: the job may exist | failure (the service still failed); rate limited when it names a wait |
/// | permanent (a "not found" included) | stop | success: the service answered |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EndpointRules {
    /// Whether "may have run" failures are replayed: always for reads, for billed endpoints
    /// only with `retry_ambiguous`.
    pub(crate) replays_ambiguous: bool,
}

impl EndpointRules {
    pub(crate) fn for_endpoint(endpoint: Endpoint, retry_ambiguous: bool) -> Self {
        EndpointRules {
            replays_ambiguous: !endpoint.is_billed() || retry_ambiguous,
        }
    }
}

impl Classifier<Error> for EndpointRules {
    fn classify(&self, error: &Error) -> Decision {
        let hinted = |after: Option<Duration>| after.map_or(Decision::Retry, Decision::RetryAfter);
        match error.class() {
            Class::Transient { after } => hinted(after),
            Class::MayHaveRun { after } if self.replays_ambiguous => hinted(after),
            Class::MayHaveRun { .. } | Class::Permanent => Decision::Stop,
        }
    }

    fn breaker_outcome(&self, error: &Error, _decision: Decision) -> Outcome {
        match (error.kind(), error.class()) {
            (ErrorKind::RateLimited, _)
            | (_, Class::Transient { after: Some(_) } | Class::MayHaveRun { after: Some(_) }) => {
                Outcome::RateLimited
            }
            (_, Class::Transient { after: None } | Class::MayHaveRun { after: None }) => {
                Outcome::Failure
            }
            (_, Class::Permanent) => Outcome::Success,
        }
    }

    fn kind(&self, error: &Error) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(error.kind().as_str())
    }
}

/// An endpoint's settings, computed once when the client is built.
#[derive(Clone, Debug)]
struct Settings {
    policy: RetryPolicy,
    rules: EndpointRules,
    retry_ambiguous: bool,
}

/// What the three clients share: transport, base URL, key, policies, the service's shared
/// protections and the observer.
#[derive(Clone)]
pub(crate) struct ServiceClient {
    http: Http,
    service: Service,
    base_url: Arc<str>,
    /// The base URL's host and port, for traces (`server.address`, `server.port`), and where
    /// its path starts.
    host: Arc<str>,
    port: u16,
    path_at: usize,
    /// `Authorization: Bearer …`, marked sensitive; built once.
    auth: HeaderValue,
    /// For redacting errors whose text echoes the key.
    key: ApiKey,
    settings: Arc<[Settings]>,
    /// The service's budget, breaker and rate limit (the `Http` handle's), or why they cannot be
    /// used with this client's configuration (every call then fails before sending).
    protections: Result<Arc<ServiceProtections>, Arc<ConfigError>>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("service", &self.service)
            .field("base_url", &self.base_url)
            .field("key", &self.key)
            .field("http", &self.http)
            .field("protections", &self.protections)
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl ServiceClient {
    pub(crate) fn new(http: Http, service: Service, config: &Config, key: ApiKey) -> Self {
        let protections = checked_protections(&http, service, config).map_err(|e| {
            tracing::error!(service = %service, error = %e, "every {service} call will fail");
            Arc::new(e)
        });
        let settings = Endpoint::ALL
            .iter()
            .map(|&endpoint| {
                let p = config.endpoint(endpoint);
                Settings {
                    policy: p.retry_policy(config.retries),
                    rules: EndpointRules::for_endpoint(endpoint, p.retry_ambiguous),
                    retry_ambiguous: p.retry_ambiguous,
                }
            })
            .collect();
        let base_url = config.base_url(service).trim_end_matches('/');
        let uri = base_url.parse::<http::Uri>().ok();
        let host = uri.as_ref().and_then(http::Uri::host).unwrap_or_default();
        let port = uri.as_ref().map_or(0, |u| {
            u.port_u16().unwrap_or(if u.scheme_str() == Some("http") {
                80
            } else {
                443
            })
        });
        // `scheme://authority` comes before the path.
        let path_at = uri
            .as_ref()
            .and_then(|u| Some(u.scheme_str()?.len() + 3 + u.authority()?.as_str().len()))
            .unwrap_or(0)
            .min(base_url.len());
        ServiceClient {
            http,
            service,
            base_url: Arc::from(base_url),
            host: Arc::from(host),
            port,
            path_at,
            auth: key.bearer(),
            key,
            settings,
            protections,
            observer: None,
        }
    }

    /// The URL of `path` on the service, `value` percent-encoded after it (a path segment or a
    /// query value): one allocation.
    pub(crate) fn url(&self, path: &str, value: Option<&str>) -> String {
        let mut url = String::with_capacity(
            self.base_url.len() + path.len() + value.map_or(0, |v| 3 * v.len()),
        );
        url.push_str(&self.base_url);
        url.push_str(path);
        if let Some(value) = value {
            push_encoded(&mut url, value);
        }
        url
    }

    pub(crate) fn set_observer(&mut self, observer: Arc<dyn CallObserver>) {
        if let Ok(protections) = &self.protections {
            protections.watch(&observer);
        }
        self.observer = Some(observer);
    }

    /// Runs `call` under its endpoint's policy and its service's protections. `decode` is the
    /// service's pure classification and decoding of one complete response; transport failures
    /// are classified by [`Http`].
    pub(crate) async fn call<T, D>(&self, call: Call, decode: D) -> Result<T, Error>
    where
        D: Fn(&RawResponse) -> Result<T, Error> + Sync,
    {
        let endpoint = call.endpoint;
        let protections = match &self.protections {
            Ok(protections) => &**protections,
            Err(e) => {
                let error = Error::local(ErrorKind::Config, e.to_string())
                    .with_source(Arc::clone(e))
                    .for_endpoint(endpoint);
                return Err(self.early(error));
            }
        };
        let settings = &self.settings[endpoint.index()];
        let start = Instant::now();
        // The status of the last answer, for the observer's attempt records.
        let status = AtomicU16::new(0);
        // The attempt in flight, reported as cancelled if this call is dropped during it.
        let in_flight = InFlight {
            client: self,
            endpoint,
            start,
            number: AtomicU32::new(0),
            began_nanos: AtomicU64::new(0),
        };
        let mut tally = Tally {
            client: self,
            endpoint,
            rules: settings.rules,
            attempts: 0,
            ambiguous_seen: false,
            slot_wait: Duration::ZERO,
            status: &status,
            in_flight: &in_flight,
        };
        let mut retry = Retry::new(&settings.policy)
            .name(endpoint.name())
            .budget(protections.budget())
            .breaker(protections.breaker());
        if endpoint.counts_toward_rate_limit()
            && let Some(limiter) = protections.rate_limiter()
        {
            retry = retry.rate_limiter(&**limiter);
        }
        // Someone is listening, or a billed call needs to know whether any attempt may have
        // created the job: follow the loop's events (one allocation per call).
        let follow = self.observer.is_some() || endpoint.is_billed();
        if follow {
            retry = retry.on_event(|event| tally.observe(event));
        }
        let result = retry
            .run_with(
                |attempt| {
                    in_flight.begin(attempt.number);
                    self.attempt(&call, &decode, attempt, &status)
                },
                settings.rules,
            )
            .await;

        let (attempts, ambiguous_seen) = (tally.attempts, tally.ambiguous_seen);
        match result {
            Ok(value) => {
                if ambiguous_seen && endpoint.is_billed() {
                    tracing::info!(
                        endpoint = endpoint.name(),
                        attempts,
                        "{endpoint}: succeeded after a failure that may have been processed; \
                         an earlier attempt may also have been billed"
                    );
                }
                self.finished(endpoint, attempts, start.elapsed(), None);
                Ok(value)
            }
            Err(failure) => {
                let error = Self::final_error(endpoint, settings, failure, ambiguous_seen, start);
                self.finished(
                    endpoint,
                    error.attempts(),
                    error.elapsed().unwrap_or_default(),
                    Some(&error),
                );
                Err(error)
            }
        }
    }

    /// One attempt: build, send, read and decode, in a span named after OpenTelemetry's HTTP
    /// client conventions. The core bounds it by its timeout (and drops it when that fires).
    async fn attempt<T, D>(
        &self,
        call: &Call,
        decode: &D,
        attempt: Attempt,
        status: &AtomicU16,
    ) -> Result<T, Error>
    where
        D: Fn(&RawResponse) -> Result<T, Error>,
    {
        let span = tracing::info_span!(
            "http_request",
            otel.name = %call.method,
            otel.kind = "client",
            http.request.method = %call.method,
            server.address = &*self.host,
            server.port = self.port,
            url.full = Empty,
            url.path = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
            http.request.resend_count = Empty,
            encore.endpoint = call.endpoint.name(),
        );
        if span.is_disabled() {
            return self.exchange(call, decode, status).await;
        }
        // Traced: boxed, so that an untraced attempt's future does not carry the span's state.
        Box::pin(self.traced(span, call, decode, attempt, status)).await
    }

    /// An attempt in its span: the path and resend count up front, the status code and error
    /// type when it ends (`timeout` or `cancelled` when the core drops it unfinished).
    async fn traced<T, D>(
        &self,
        span: tracing::Span,
        call: &Call,
        decode: &D,
        attempt: Attempt,
        status: &AtomicU16,
    ) -> Result<T, Error>
    where
        D: Fn(&RawResponse) -> Result<T, Error>,
    {
        let path = call.url.get(self.path_at..).unwrap_or_default();
        span.record("url.path", path.split('?').next().unwrap_or_default());
        span.record("url.full", &*url_full(&call.url));
        if attempt.is_retry() {
            span.record("http.request.resend_count", attempt.number - 1);
        }
        let mut unfinished = Unfinished {
            span: span.clone(),
            began: Instant::now(),
            timeout: attempt.timeout,
            done: false,
        };
        let result = self
            .exchange(call, decode, status)
            .instrument(span.clone())
            .await;
        unfinished.done = true;
        let code = status.load(Ordering::Relaxed);
        if code != 0 {
            span.record("http.response.status_code", code);
        }
        if let Err(error) = &result {
            span.record("error.type", &*error.error_type());
        }
        result
    }

    /// Build, send, decode. Every error is redacted before it leaves.
    async fn exchange<T, D>(&self, call: &Call, decode: &D, status: &AtomicU16) -> Result<T, Error>
    where
        D: Fn(&RawResponse) -> Result<T, Error>,
    {
        status.store(0, Ordering::Relaxed);
        // Boxed (one allocation per attempt, next to an HTTP exchange): the transport's future
        // is most of an attempt's state, and inline it would make every call's future, and
        // every pipeline's, that much larger.
        let raw = Box::pin(
            self.http
                .send(&call.method, &call.url, &self.auth, call.body.as_ref()),
        )
        .await
        .map_err(|e| redact(e, &self.key))?;
        status.store(raw.status.as_u16(), Ordering::Relaxed);
        tracing::trace!(
            status = raw.status.as_u16(),
            bytes = raw.body.len(),
            "response received"
        );
        decode(&raw).map_err(|e| redact(e, &self.key))
    }

    /// The error a failed call ends with: the last error with the call's context, made
    /// [`ErrorKind::Ambiguous`] when a billed call was not replayed because the job may exist.
    fn final_error(
        endpoint: Endpoint,
        settings: &Settings,
        failure: RetryError<Error>,
        ambiguous_seen: bool,
        start: Instant,
    ) -> Error {
        let (attempts, elapsed, stop) = match &failure {
            RetryError::Permanent(_) => (1, start.elapsed(), None),
            RetryError::Exhausted(x) => (x.attempts(), x.elapsed(), Some(x.reason().clone())),
        };
        let last = failure.into_last_error();
        // (A call refused before its first attempt ends with the protection's error, which is
        // transient: nothing was sent.)
        let last_may_have_run = matches!(last.class(), Class::MayHaveRun { .. });
        let may_have_run = endpoint.is_billed() && (ambiguous_seen || last_may_have_run);
        let mut error = last
            .finish(endpoint, attempts, elapsed, stop, may_have_run)
            .replaying_ambiguous(settings.rules.replays_ambiguous);
        if endpoint.is_billed() && last_may_have_run && !settings.retry_ambiguous {
            error = error.into_ambiguous();
            tracing::warn!(
                endpoint = endpoint.name(),
                attempts,
                error = %error,
                "billed call not replayed"
            );
        }
        error
    }

    /// Reports a call that failed before anything was sent (bad input) and returns its error.
    pub(crate) fn early(&self, error: Error) -> Error {
        if let Some(endpoint) = error.endpoint() {
            tracing::debug!(endpoint = endpoint.name(), error = %error, "call refused before sending");
            self.finished(endpoint, 0, Duration::ZERO, Some(&error));
        }
        error
    }

    /// Refuses an empty id before anything is sent.
    pub(crate) fn require_id(
        &self,
        endpoint: Endpoint,
        what: &str,
        value: &str,
    ) -> Result<(), Error> {
        if value.trim().is_empty() {
            let error = Error::local(ErrorKind::InvalidRequest, format!("{what} is empty"))
                .for_endpoint(endpoint);
            return Err(self.early(error));
        }
        Ok(())
    }

    fn finished(
        &self,
        endpoint: Endpoint,
        attempts: u32,
        elapsed: Duration,
        error: Option<&Error>,
    ) {
        if let Some(observer) = &self.observer {
            observer.finished(&CallRecord {
                service: endpoint.service(),
                endpoint,
                attempts,
                outcome: if error.is_some() {
                    CallOutcome::Failed
                } else {
                    CallOutcome::Ok
                },
                elapsed,
                error: error.map(ToString::to_string),
            });
        }
    }
}

/// The protections of `service` on `http`, if `config` asks for the same ones.
fn checked_protections(
    http: &Http,
    service: Service,
    config: &Config,
) -> Result<Arc<ServiceProtections>, ConfigError> {
    let wanted = config.service(service);
    wanted.validate(service)?;
    let shared = http.protections().shared(service);
    if shared.policy() != wanted {
        return Err(ConfigError::new(
            format!("services.{service}"),
            "differs from the protections of this Http handle, which were built from other \
             settings; build the handle with Http::for_config, or with_protections(\
             Protections::from_config(&config)?)",
        ));
    }
    Ok(Arc::clone(shared))
}

/// Marks an attempt's span when the attempt is dropped before it finished: its timeout fired
/// (`error.type = timeout`) or the call was abandoned (`cancelled`).
struct Unfinished {
    span: tracing::Span,
    began: Instant,
    timeout: Duration,
    done: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.done {
            let why = if self.began.elapsed() >= self.timeout {
                "timeout"
            } else {
                "cancelled"
            };
            self.span.record("error.type", why);
        }
    }
}

/// What one call's events add up to, forwarded to the observer as they happen.
struct Tally<'a> {
    client: &'a ServiceClient,
    endpoint: Endpoint,
    rules: EndpointRules,
    /// Attempts made so far.
    attempts: u32,
    /// Whether any failed attempt may have been processed.
    ambiguous_seen: bool,
    /// How long the coming attempt waited for its rate-limit slot.
    slot_wait: Duration,
    status: &'a AtomicU16,
    in_flight: &'a InFlight<'a>,
}

/// The attempt a call has in flight (0: none). When the call is dropped during one (its caller
/// stopped waiting), the observer hears of it as [`AttemptOutcome::Cancelled`]: it was sent,
/// or about to be, and counting it keeps the observer's attempts equal to the requests the
/// service received.
struct InFlight<'a> {
    client: &'a ServiceClient,
    endpoint: Endpoint,
    /// When the call started.
    start: Instant,
    /// The attempt in flight (1-based), 0 when none is.
    number: AtomicU32,
    /// When it began, in nanoseconds after `start`.
    began_nanos: AtomicU64,
}

impl InFlight<'_> {
    fn begin(&self, number: u32) {
        let began = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.began_nanos.store(began, Ordering::Relaxed);
        self.number.store(number, Ordering::Relaxed);
    }

    /// The attempt ended and was reported.
    fn end(&self) {
        self.number.store(0, Ordering::Relaxed);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let number = *self.number.get_mut();
        let Some(observer) = self.client.observer.as_deref() else {
            return;
        };
        if number == 0 {
            return;
        }
        let began = Duration::from_nanos(*self.began_nanos.get_mut());
        observer.attempt(&AttemptRecord {
            service: self.endpoint.service(),
            endpoint: self.endpoint,
            attempt: number,
            outcome: AttemptOutcome::Cancelled,
            took: self.start.elapsed().saturating_sub(began),
            slot_wait: Duration::ZERO,
            status: None,
            error_type: Some(std::borrow::Cow::Borrowed("cancelled")),
        });
    }
}

impl Tally<'_> {
    fn observe(&mut self, event: &Event<'_, Error>) {
        let observer = self.client.observer.as_deref();
        let endpoint = self.endpoint;
        match event {
            Event::SlotWaited { waited, .. } => self.slot_wait = *waited,
            Event::Refused { attempt, reason } => {
                if let Some(observer) = observer {
                    observer.refused(&RefusalNotice {
                        service: endpoint.service(),
                        endpoint,
                        attempt: *attempt,
                        by: match reason {
                            StopReason::Throttled(_) => Protection::RateLimit,
                            StopReason::BudgetExhausted { .. } => Protection::Budget,
                            _ => Protection::Breaker,
                        },
                        detail: reason.to_string(),
                    });
                }
            }
            Event::Succeeded { attempt, took } => {
                self.attempts = *attempt;
                self.record(*attempt, AttemptOutcome::Ok, *took, None);
            }
            Event::Retrying(retry) => {
                self.attempts = retry.attempt;
                self.ambiguous_seen |= may_have_run(retry.error);
                self.record(
                    retry.attempt,
                    AttemptOutcome::Retried,
                    retry.took,
                    Some(retry.error),
                );
                if let Some(observer) = observer {
                    observer.retrying(&RetryNotice {
                        endpoint,
                        attempt: retry.attempt,
                        max_attempts: retry.max_attempts,
                        delay: retry.delay,
                        server_requested: retry.server_requested,
                        cause: retry.error.detail().to_owned(),
                    });
                }
            }
            Event::Stopped {
                attempt,
                took,
                error,
                reason,
            } => {
                self.attempts = *attempt;
                self.ambiguous_seen |= may_have_run(error);
                let outcome = match reason {
                    StopReason::Permanent
                        if endpoint.is_billed()
                            && !self.rules.replays_ambiguous
                            && may_have_run(error) =>
                    {
                        AttemptOutcome::Ambiguous
                    }
                    StopReason::Permanent => AttemptOutcome::Permanent,
                    _ => AttemptOutcome::GaveUp,
                };
                self.record(*attempt, outcome, *took, Some(error));
            }
            _ => {}
        }
    }

    fn record(
        &mut self,
        attempt: u32,
        outcome: AttemptOutcome,
        took: Duration,
        error: Option<&Error>,
    ) {
        self.in_flight.end();
        let slot_wait = std::mem::take(&mut self.slot_wait);
        let Some(observer) = self.client.observer.as_deref() else {
            return;
        };
        let status = match self.status.load(Ordering::Relaxed) {
            0 => None,
            code => Some(code),
        };
        observer.attempt(&AttemptRecord {
            service: self.endpoint.service(),
            endpoint: self.endpoint,
            attempt,
            outcome,
            took,
            slot_wait,
            status,
            error_type: error.map(Error::error_type),
        });
    }
}

fn may_have_run(error: &Error) -> bool {
    matches!(error.class(), Class::MayHaveRun { .. })
}

/// Appends `value` percent-encoded for a path segment or query value (RFC 3986 unreserved
/// kept).
fn push_encoded(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// Query parameters whose values are never put in a trace: OpenTelemetry's list (signed URLs)
/// and anything named like a credential.
fn is_sensitive_query_key(key: &str) -> bool {
    const SIGNED: [&str; 4] = ["awsaccesskeyid", "signature", "sig", "x-goog-signature"];
    const NAMED: [&str; 5] = ["key", "token", "secret", "password", "auth"];
    let key = key.to_ascii_lowercase();
    SIGNED.contains(&key.as_str()) || NAMED.iter().any(|n| key.contains(n))
}

/// `url` for `url.full`: without user information, and with the value of every sensitive query
/// parameter replaced by `REDACTED` (OpenTelemetry's HTTP conventions). encore's keys travel in
/// headers only; this keeps a URL that carries one by mistake out of traces too.
fn url_full(url: &str) -> std::borrow::Cow<'_, str> {
    let (before, query) = url.split_once('?').unwrap_or((url, ""));
    let userinfo = before.find("://").map(|at| at + 3).and_then(|start| {
        let authority_end = before[start..]
            .find('/')
            .map_or(before.len(), |i| start + i);
        before[start..authority_end]
            .rfind('@')
            .map(|i| (start, start + i + 1))
    });
    let sensitive = query
        .split('&')
        .any(|pair| is_sensitive_query_key(pair.split('=').next().unwrap_or_default()));
    if userinfo.is_none() && !sensitive {
        return std::borrow::Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len());
    match userinfo {
        Some((start, end)) => {
            out.push_str(&before[..start]);
            out.push_str(&before[end..]);
        }
        None => out.push_str(before),
    }
    if url.contains('?') {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((key, _)) if is_sensitive_query_key(key) => {
                    out.push_str(key);
                    out.push_str("=REDACTED");
                }
                _ => out.push_str(pair),
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[test]
    fn url_full_keeps_no_credentials() {
        let plain = "https://api.sunoapi.org/api/v1/generate/record-info?taskId=t-1";
        assert!(matches!(url_full(plain), std::borrow::Cow::Borrowed(u) if u == plain));
        assert_eq!(
            url_full("https://user:pw@host.test:8443/v1/x?api_key=sk-1&taskId=t&sig=abc"),
            "https://host.test:8443/v1/x?api_key=REDACTED&taskId=t&sig=REDACTED"
        );
        assert_eq!(
            url_full("http://host.test/a?X-Goog-Signature=s&Token=t&b"),
            "http://host.test/a?X-Goog-Signature=REDACTED&Token=REDACTED&b"
        );
        // An `@` in the path is not user information.
        assert_eq!(
            url_full("http://host.test/a@b?key=1"),
            "http://host.test/a@b?key=REDACTED"
        );
    }

    #[test]
    fn encoding() {
        let encode = |value| {
            let mut out = String::new();
            push_encoded(&mut out, value);
            out
        };
        assert_eq!(encode("abc-123_~.x"), "abc-123_~.x");
        assert_eq!(encode("a b/c?d&e"), "a%20b%2Fc%3Fd%26e");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn the_endpoint_decides_replays_and_the_breaker_hears_the_service() {
        let e = |kind, class| Error::new(kind, class, "x");
        let secs = |s| Some(Duration::from_secs(s));
        let status = ErrorKind::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
        };
        let may = |after| Class::MayHaveRun { after };
        let transient = |after| Class::Transient { after };
        let billed = EndpointRules::for_endpoint(Endpoint::SunoGenerate, false);
        let opted_in = EndpointRules::for_endpoint(Endpoint::SunoGenerate, true);
        let read = EndpointRules::for_endpoint(Endpoint::SunoStatus, false);
        assert!(!billed.replays_ambiguous && opted_in.replays_ambiguous);
        assert!(read.replays_ambiguous, "reads are always replayed");
        for (rules, error, decision, outcome) in [
            // A billed call's 5xx is not replayed, yet the service failed.
            (
                billed,
                e(status.clone(), may(None)),
                Decision::Stop,
                Outcome::Failure,
            ),
            (
                opted_in,
                e(status.clone(), may(None)),
                Decision::Retry,
                Outcome::Failure,
            ),
            (
                read,
                e(status.clone(), may(None)),
                Decision::Retry,
                Outcome::Failure,
            ),
            (
                billed,
                e(ErrorKind::Timeout, may(None)),
                Decision::Stop,
                Outcome::Failure,
            ),
            (
                billed,
                e(ErrorKind::Connect, transient(None)),
                Decision::Retry,
                Outcome::Failure,
            ),
            // Suno maintenance (455): a hard failure, never processed.
            (
                billed,
                e(status.clone(), transient(None)),
                Decision::Retry,
                Outcome::Failure,
            ),
            // Rate limits count neither way, with or without a hint.
            (
                billed,
                e(ErrorKind::RateLimited, transient(secs(3))),
                Decision::RetryAfter(Duration::from_secs(3)),
                Outcome::RateLimited,
            ),
            (
                billed,
                e(ErrorKind::RateLimited, transient(None)),
                Decision::Retry,
                Outcome::RateLimited,
            ),
            // A 503 with Retry-After asks us to slow down.
            (
                read,
                e(status.clone(), may(secs(2))),
                Decision::RetryAfter(Duration::from_secs(2)),
                Outcome::RateLimited,
            ),
            // The service answered: it is up.
            (
                read,
                e(ErrorKind::InvalidRequest, Class::Permanent),
                Decision::Stop,
                Outcome::Success,
            ),
            (
                read,
                e(ErrorKind::Unauthorized, Class::Permanent),
                Decision::Stop,
                Outcome::Success,
            ),
            // A job not visible yet: one attempt, and the service is up (waiting for it is the
            // caller's decision, not a reason to fail fast).
            (
                read,
                e(ErrorKind::NotFound, Class::Permanent),
                Decision::Stop,
                Outcome::Success,
            ),
        ] {
            let got = rules.classify(&error);
            assert_eq!(got, decision, "{:?} {rules:?}", error.kind());
            assert_eq!(
                rules.breaker_outcome(&error, got),
                outcome,
                "{:?} {rules:?}",
                error.kind()
            );
        }
        assert_eq!(Classifier::kind(&read, &e(status, may(None))), "status");
    }
}
