//! The one request path every call of every service takes (the seed plan's Creatomate
//! `_request`): build the request, run the endpoint's policy through the resilience core,
//! classify each failure, decode the answer, and report to tracing and the observer.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use bytes::Bytes;
use encore_resilience::{Attempt, Retry, RetryError, RetryEvent};
use http::Method;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use tokio::time::Instant;
use tracing::Instrument;

use crate::classify::decide;
use crate::config::{Config, Endpoint, Endpoints, Service};
use crate::error::{Class, Error, ErrorKind};
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

/// What the three clients share: transport, base URL, key, policies and observer.
#[derive(Clone)]
pub(crate) struct ServiceClient {
    http: Http,
    service: Service,
    base_url: Arc<str>,
    key: ApiKey,
    retries: bool,
    endpoints: Arc<Endpoints>,
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
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl ServiceClient {
    pub(crate) fn new(http: Http, service: Service, config: &Config, key: ApiKey) -> Self {
        ServiceClient {
            http,
            service,
            base_url: Arc::from(config.base_url(service).trim_end_matches('/')),
            key,
            retries: config.retries,
            endpoints: Arc::new(config.endpoints.clone()),
            observer: None,
        }
    }

    pub(crate) fn set_observer(&mut self, observer: Arc<dyn CallObserver>) {
        self.observer = Some(observer);
    }

    /// Runs `call` under its endpoint's policy. `decode` is the service's pure classification
    /// and decoding of one complete response; transport failures are classified by [`Http`].
    pub(crate) async fn call<T, D>(&self, call: Call, decode: D) -> Result<T, Error>
    where
        D: Fn(&RawResponse) -> Result<T, Error> + Sync,
    {
        let endpoint = call.endpoint;
        let settings = self.endpoints.get(endpoint);
        let policy = settings.retry_policy(self.retries);
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
            let attempts = AtomicU32::new(0);
            let ambiguous_seen = AtomicBool::new(false);
            let (call, decode) = (&call, &decode);
            let result = Retry::new(&policy)
                .name(endpoint.name())
                .on_retry(|event| self.retrying(endpoint, event))
                .run_with(
                    |attempt| {
                        attempts.store(attempt.number, Ordering::Relaxed);
                        self.attempt(call, decode, attempt)
                    },
                    |error: &Error| {
                        let class = error.class();
                        if matches!(class, Class::MayHaveRun { .. }) {
                            ambiguous_seen.store(true, Ordering::Relaxed);
                        }
                        let decision = decide(class, replay_ambiguous);
                        tracing::trace!(?class, ?decision, "classified");
                        decision
                    },
                )
                .await;
            let elapsed = start.elapsed();
            let made = attempts.load(Ordering::Relaxed);
            let seen = ambiguous_seen.load(Ordering::Relaxed);
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
                    let (attempts, stop) = match &failure {
                        RetryError::Permanent(_) => (made.max(1), None),
                        RetryError::Exhausted(x) => (x.attempts(), Some(x.reason().clone())),
                    };
                    let last = failure.into_last_error();
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

    /// One attempt: build, send, decode. Every error is redacted before it leaves.
    async fn attempt<T, D>(&self, call: &Call, decode: &D, attempt: Attempt) -> Result<T, Error>
    where
        D: Fn(&RawResponse) -> Result<T, Error>,
    {
        tracing::debug!(
            attempt = attempt.number,
            max_attempts = attempt.max_attempts,
            timeout_ms = attempt.timeout.as_millis() as u64,
            "sending"
        );
        let request = self.build(call)?;
        let raw = self
            .http
            .send(request)
            .await
            .map_err(|e| e.redact(&self.key))?;
        tracing::debug!(
            attempt = attempt.number,
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
