//! The one request path every call of every service takes (the seed plan's Creatomate
//! `_request`): build the request, run the endpoint's policy through the resilience core with
//! the service's shared retry budget and circuit breaker, take a slot of the service's rate
//! limit before each attempt, classify each failure, decode the answer, and report to tracing
//! and the observer.
//!
//! Per attempt the order is: the breaker's permission (the core) → a rate-limit slot, waited
//! for within the deadline, the breaker re-checked before the slot is taken → the request,
//! bounded by the endpoint's `attempt_timeout` → the outcome reported to the breaker (the core)
//! → before a retry, the deadline, the breaker and one budget token (the core) → the wait. The
//! wait for a slot is outside the attempt timeout (a request still queued was never sent, so it
//! must not fail as a "may have run" timeout) but inside the deadline.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use encore_resilience::{
    Attempt, AttemptTimedOut, BreakerPermit, CircuitOpen, CircuitState, Classify, Outcome, Retry,
    RetryError, RetryEvent, StopReason,
};
use http::Method;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::{Config, ConfigError, Endpoint, Endpoints, Service};
use crate::error::{Class, Error, ErrorKind};
use crate::guard::Guard;
use crate::limiter::NoSlot;
use crate::observer::{CallObserver, CallOutcome, CallRecord, RetryNotice};
use crate::secret::ApiKey;
use crate::transport::{Http, RawResponse};

/// One logical call: what to send to which endpoint.
pub(crate) struct Call {
    pub(crate) endpoint: Endpoint,
    pub(crate) method: Method,
    /// Appended to the service's base URL; already percent-encoded.
    pub(crate) path: String,
    /// A JSON body.
    pub(crate) body: Option<Bytes>,
}

impl Call {
    pub(crate) fn get(endpoint: Endpoint, path: String) -> Call {
        Call {
            endpoint,
            method: Method::GET,
            path,
            body: None,
        }
    }

    pub(crate) fn post_json(
        endpoint: Endpoint,
        path: String,
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
            path,
            body: Some(Bytes::from(body)),
        })
    }
}

/// What the three clients share: transport, base URL, key, policies, the service's shared
/// protections and the observer.
#[derive(Clone)]
pub(crate) struct ServiceClient {
    http: Http,
    service: Service,
    base_url: Arc<str>,
    key: ApiKey,
    retries: bool,
    endpoints: Arc<Endpoints>,
    /// The service's budget, breaker and rate limit (shared through `http`), or why the config
    /// could not make them (every call then fails before sending).
    guard: Result<Arc<Guard>, Arc<ConfigError>>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("service", &self.service)
            .field("base_url", &self.base_url)
            .field("key", &self.key)
            .field("retries", &self.retries)
            .field("http", &self.http)
            .field("guard", &self.guard)
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

/// What every attempt of one call needs to know.
struct CallCtx<'a> {
    endpoint: Endpoint,
    guard: &'a Guard,
    /// The call's deadline, as an instant.
    deadline: Instant,
    attempt_timeout: Duration,
    max_retry_after: Duration,
    replay_ambiguous: bool,
    attempts: AtomicU32,
    ambiguous_seen: AtomicBool,
}

impl ServiceClient {
    pub(crate) fn new(http: Http, service: Service, config: &Config, key: ApiKey) -> Self {
        let guard = http.guard(service, config.service(service)).map_err(|e| {
            tracing::error!(service = %service, error = %e, "every {service} call will fail");
            Arc::new(e)
        });
        ServiceClient {
            http,
            service,
            base_url: Arc::from(config.base_url(service).trim_end_matches('/')),
            key,
            retries: config.retries,
            endpoints: Arc::new(config.endpoints.clone()),
            guard,
            observer: None,
        }
    }

    pub(crate) fn set_observer(&mut self, observer: Arc<dyn CallObserver>) {
        if let Ok(guard) = &self.guard {
            guard.watch(&observer);
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
        let guard = match &self.guard {
            Ok(guard) => Arc::clone(guard),
            Err(e) => {
                let error = Error::local(ErrorKind::Config, e.to_string())
                    .with_source(Arc::clone(e))
                    .for_endpoint(endpoint);
                return Err(self.early(error));
            }
        };
        let settings = self.endpoints.get(endpoint);
        let policy = settings.retry_policy(self.retries);
        // The core bounds attempts and waits by the deadline; each attempt's own timeout is
        // applied in `attempt`, after its wait for a rate-limit slot.
        let outer = policy.clone().with_attempt_timeout(policy.deadline);
        // Reads are replayed freely; billed calls only when they opted in.
        let replay_ambiguous = !endpoint.is_billed() || settings.retry_ambiguous;
        let span = tracing::info_span!(
            "encore_call",
            endpoint = endpoint.name(),
            method = %call.method,
            path = %call.path,
        );
        async {
            let start = Instant::now();
            let ctx = CallCtx {
                endpoint,
                guard: &guard,
                deadline: start + policy.deadline,
                attempt_timeout: policy.attempt_timeout,
                max_retry_after: policy.max_retry_after,
                replay_ambiguous,
                attempts: AtomicU32::new(0),
                ambiguous_seen: AtomicBool::new(false),
            };
            let (call, decode, ctx) = (&call, &decode, &ctx);
            let result = Retry::new(&outer)
                .name(endpoint.name())
                .budget(&guard.budget)
                .breaker(&guard.breaker)
                .on_retry(|event| self.retrying(endpoint, event))
                .run(|attempt| {
                    ctx.attempts.store(attempt.number, Ordering::Relaxed);
                    // Boxed (one allocation per attempt, next to an HTTP exchange): the attempt
                    // holds the transport's future, a queue wait and two timers, and inline it
                    // would make every call's future, and every pipeline's, that much larger.
                    Box::pin(self.attempt(call, decode, attempt, ctx))
                })
                .await;
            let elapsed = start.elapsed();
            let made = ctx.attempts.load(Ordering::Relaxed);
            let seen = ctx.ambiguous_seen.load(Ordering::Relaxed);
            match result {
                Ok(value) => {
                    if seen && endpoint.is_billed() {
                        tracing::info!(
                            attempts = made,
                            "{endpoint}: succeeded after a failure that may have been processed; \
                             an earlier attempt may also have been billed"
                        );
                    }
                    tracing::debug!(
                        attempts = made,
                        elapsed_ms = elapsed.as_millis() as u64,
                        "call succeeded"
                    );
                    self.finished(endpoint, made, elapsed, None);
                    Ok(value)
                }
                Err(failure) => {
                    let (mut attempts, mut stop) = match &failure {
                        RetryError::Permanent(_) => (made.max(1), None),
                        RetryError::Exhausted(x) => (x.attempts(), Some(x.reason().clone())),
                    };
                    let last = failure.into_last_error();
                    // Refused by our own protections inside an attempt: that attempt was not
                    // made, and the refusal is why the call stopped.
                    if let Some(reason) = refusal(&last, policy.deadline) {
                        attempts = attempts.saturating_sub(1);
                        stop = Some(reason);
                    }
                    let last_may_have_run = matches!(last.class(), Class::MayHaveRun { .. });
                    let may_have_run = endpoint.is_billed() && (seen || last_may_have_run);
                    let mut error = last
                        .finish(endpoint, attempts, elapsed, stop, may_have_run)
                        .replaying_ambiguous(replay_ambiguous);
                    if endpoint.is_billed() && last_may_have_run && !settings.retry_ambiguous {
                        error = error.into_ambiguous();
                        tracing::warn!(attempts, error = %error, "billed call not replayed");
                    }
                    tracing::debug!(
                        attempts,
                        elapsed_ms = elapsed.as_millis() as u64,
                        error = %error,
                        "call failed"
                    );
                    self.finished(endpoint, attempts, elapsed, Some(&error));
                    Err(error)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One attempt: a rate-limit slot (re-checking the breaker while queued), then build, send
    /// and decode within the attempt timeout. Every error is redacted before it leaves, and
    /// marked with whether the endpoint replays "may have run" failures (for [`Classify`]).
    async fn attempt<T, D>(
        &self,
        call: &Call,
        decode: &D,
        attempt: Attempt,
        ctx: &CallCtx<'_>,
    ) -> Result<T, Error>
    where
        D: Fn(&RawResponse) -> Result<T, Error>,
    {
        let guard = ctx.guard;
        let limited = ctx.endpoint.counts_toward_rate_limit() && guard.limiter.is_enabled();
        // A permit of our own when the breaker changed state while we queued (ours from the
        // core then belongs to an older state, and its outcome would be ignored).
        let mut own_permit: Option<BreakerPermit> = None;
        if limited {
            let breaker = &guard.breaker;
            let before = breaker.state();
            let permit = &mut own_permit;
            let mut recheck = || -> Result<(), Error> {
                if permit.is_some() {
                    return Ok(());
                }
                let now = breaker.state();
                if now == before && now != CircuitState::Open {
                    return Ok(());
                }
                let fresh = breaker.try_acquire().map_err(Error::from)?;
                *permit = Some(fresh);
                Ok(())
            };
            let waited = guard
                .limiter
                .acquire(ctx.deadline, &mut recheck)
                .await
                .map_err(|e| e.replaying_ambiguous(ctx.replay_ambiguous))?;
            if !waited.is_zero() {
                tracing::debug!(
                    attempt = attempt.number,
                    waited_ms = waited.as_millis() as u64,
                    "rate-limit slot taken after a wait"
                );
            }
        }
        let limit = ctx
            .attempt_timeout
            .min(ctx.deadline.saturating_duration_since(Instant::now()));
        tracing::debug!(
            attempt = attempt.number,
            max_attempts = attempt.max_attempts,
            timeout_ms = limit.as_millis() as u64,
            "sending"
        );
        let result = match tokio::time::timeout(limit, self.exchange(call, decode)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Error::from(AttemptTimedOut { limit })),
        };
        if let Err(error) = &result {
            if matches!(error.class(), Class::MayHaveRun { .. }) {
                ctx.ambiguous_seen.store(true, Ordering::Relaxed);
            }
            // A 429 naming a wait: every caller of the service waits for it, not only this one.
            if limited
                && *error.kind() == ErrorKind::RateLimited
                && let Some(after) = error.class().after()
            {
                guard.limiter.hold_for(after.min(ctx.max_retry_after));
            }
        }
        if let Some(permit) = own_permit {
            permit.record(match &result {
                Ok(_) => Outcome::Success,
                Err(error) => error.breaker_outcome(),
            });
        }
        result.map_err(|e| e.replaying_ambiguous(ctx.replay_ambiguous))
    }

    /// Build, send, decode. Every error is redacted before it leaves.
    async fn exchange<T, D>(&self, call: &Call, decode: &D) -> Result<T, Error>
    where
        D: Fn(&RawResponse) -> Result<T, Error>,
    {
        let request = self.build(call)?;
        let raw = self
            .http
            .send(request)
            .await
            .map_err(|e| e.redact(&self.key))?;
        tracing::debug!(
            status = raw.status.as_u16(),
            bytes = raw.body.len(),
            "response received"
        );
        decode(&raw).map_err(|e| e.redact(&self.key))
    }

    fn build(&self, call: &Call) -> Result<http::Request<Bytes>, Error> {
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(format!("{}{}", self.base_url, call.path))
            .header(AUTHORIZATION, self.key.bearer())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("encore/", env!("CARGO_PKG_VERSION")));
        if call.body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        builder
            .body(call.body.clone().unwrap_or_default())
            .map_err(|e| {
                Error::new(ErrorKind::Config, Class::Permanent, "invalid request URL")
                    .with_source(e)
            })
    }

    /// Reports a call that failed before anything was sent (bad input) and returns its error.
    pub(crate) fn early(&self, error: Error) -> Error {
        if let Some(endpoint) = error.endpoint() {
            tracing::debug!(endpoint = endpoint.name(), error = %error, "call refused before sending");
            self.finished(endpoint, 0, std::time::Duration::ZERO, Some(&error));
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

    fn retrying(&self, endpoint: Endpoint, event: &RetryEvent<'_, Error>) {
        let cause = event.error.detail().to_owned();
        tracing::debug!(
            attempt = event.attempt,
            max_attempts = event.max_attempts,
            delay_ms = event.delay.as_millis() as u64,
            server_requested = event.server_requested,
            cause = %cause,
            cause_chain = ?source_chain(event.error),
            "retry scheduled"
        );
        if let Some(observer) = &self.observer {
            observer.retrying(&RetryNotice {
                endpoint,
                attempt: event.attempt,
                max_attempts: event.max_attempts,
                delay: event.delay,
                server_requested: event.server_requested,
                cause,
            });
        }
    }

    fn finished(
        &self,
        endpoint: Endpoint,
        attempts: u32,
        elapsed: std::time::Duration,
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

/// The stop reason of an attempt our own protections refused (nothing sent): the breaker,
/// re-checked while queued, or no rate-limit slot before the deadline.
fn refusal(error: &Error, deadline: Duration) -> Option<StopReason> {
    let source = std::error::Error::source(error);
    match error.kind() {
        ErrorKind::CircuitOpen => {
            let open = source?.downcast_ref::<CircuitOpen>()?;
            Some(StopReason::CircuitOpen {
                upstream: open.upstream.clone(),
                retry_in: open.retry_in,
            })
        }
        ErrorKind::Throttled => {
            let no_slot = source?.downcast_ref::<NoSlot>()?;
            Some(StopReason::Deadline {
                deadline,
                next_wait: Some(no_slot.next_in),
                left: no_slot.left,
            })
        }
        _ => None,
    }
}

/// The texts of an error's sources, for debug logs.
fn source_chain(error: &Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = std::error::Error::source(error);
    while let Some(e) = next {
        out.push(e.to_string());
        next = e.source();
    }
    out
}

/// Percent-encodes `value` for a path segment or query value (RFC 3986 unreserved kept).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(encode("abc-123_~.x"), "abc-123_~.x");
        assert_eq!(encode("a b/c?d&e"), "a%20b%2Fc%3Fd%26e");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
