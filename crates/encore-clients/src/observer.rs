//! How the pipeline, the CLI and (later) metrics see every call: each attempt and how it ended,
//! each refusal by a protection, a notice before each retry wait, a record when the call is
//! over, and a notice when a service's circuit breaker changes state. This is the one place
//! the request path reports to; its log lines are the core's.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use encore_resilience::breaker::CircuitState;
use encore_resilience::fmt_duration;
use serde::{Serialize, Serializer};

use crate::endpoint::{Endpoint, Service};

/// Watches the calls of a client (progress bars, run reports, metrics, job timelines).
///
/// Every method has an empty default; they are called synchronously (from the calling task, or
/// for [`breaker_changed`](Self::breaker_changed) from whichever task changed the state), so
/// keep them cheap.
///
/// For one call, in order: per attempt, [`attempt`](Self::attempt) (and before a retry's wait,
/// [`retrying`](Self::retrying)); [`refused`](Self::refused) when a protection does not let an
/// attempt through; then [`finished`](Self::finished) once.
///
/// ```
/// use std::sync::Mutex;
/// use encore_clients::{CallObserver, CallRecord, RetryNotice};
///
/// #[derive(Default)]
/// struct Report(Mutex<Vec<String>>);
///
/// impl CallObserver for Report {
///     fn retrying(&self, notice: &RetryNotice) {
///         let line = format!("{} retry {}/{} in {:?}: {}", notice.endpoint, notice.attempt,
///             notice.max_attempts, notice.delay, notice.cause);
///         self.0.lock().unwrap().push(line);
///     }
///     fn finished(&self, record: &CallRecord) {
///         self.0.lock().unwrap().push(serde_json::to_string(record).unwrap());
///     }
/// }
/// ```
pub trait CallObserver: Send + Sync + 'static {
    /// Called when an attempt that was sent is over, with how it ended.
    fn attempt(&self, record: &AttemptRecord) {
        let _ = record;
    }

    /// Called when a protection (the circuit breaker, the rate limit, the retry budget) does not
    /// let an attempt through: nothing was sent for it.
    fn refused(&self, notice: &RefusalNotice) {
        let _ = notice;
    }

    /// Called before each wait between attempts.
    fn retrying(&self, notice: &RetryNotice) {
        let _ = notice;
    }

    /// Called once per logical call, when it succeeded or failed for good.
    fn finished(&self, record: &CallRecord) {
        let _ = record;
    }

    /// Called when the circuit breaker of a service this observer's clients call changes state.
    ///
    /// Breakers are shared by every client of a service on one [`Http`](crate::Http) handle, so
    /// a change caused by another client's call is reported too, once per observer (an observer
    /// given to several clients of the same service hears it once).
    fn breaker_changed(&self, notice: &BreakerNotice) {
        let _ = notice;
    }
}

/// A service's circuit breaker changed state.
///
/// Displays as `suno: circuit opened, failing fast; next probe in 10s`, `suno: circuit
/// half-open, probing` or `suno: circuit closed, calls go through again`; serializes as
/// `{"service":"suno","from":"closed","to":"open","open_for":"10s","open_for_ms":10000}`
/// (`null`s unless it opened).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerNotice {
    /// The service.
    pub service: Service,
    /// The state before.
    pub from: CircuitState,
    /// The state now.
    pub to: CircuitState,
    /// When it opened: how long until the next probe.
    pub open_for: Option<Duration>,
}

impl BreakerNotice {
    pub(crate) fn new(
        service: Service,
        from: CircuitState,
        to: CircuitState,
        open_for: Option<Duration>,
    ) -> Self {
        BreakerNotice {
            service,
            from,
            to,
            open_for,
        }
    }
}

impl fmt::Display for BreakerNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.to, self.open_for) {
            (CircuitState::Open, Some(open_for)) => write!(
                f,
                "{}: circuit opened, failing fast; next probe in {}",
                self.service,
                fmt_duration(open_for)
            ),
            (CircuitState::Open, None) => {
                write!(f, "{}: circuit opened, failing fast", self.service)
            }
            (CircuitState::HalfOpen, _) => {
                write!(f, "{}: circuit half-open, probing", self.service)
            }
            (CircuitState::Closed, _) => write!(
                f,
                "{}: circuit closed, calls go through again",
                self.service
            ),
        }
    }
}

impl Serialize for BreakerNotice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("BreakerNotice", 5)?;
        s.serialize_field("service", &self.service)?;
        s.serialize_field("from", self.from.as_str())?;
        s.serialize_field("to", self.to.as_str())?;
        s.serialize_field("open_for", &self.open_for.map(fmt_duration))?;
        s.serialize_field("open_for_ms", &self.open_for.map(|d| d.as_millis() as u64))?;
        s.end()
    }
}

/// A retry about to happen.
#[derive(Clone, Debug, Serialize)]
pub struct RetryNotice {
    /// The endpoint (serialized as its name, e.g. `"suno.status"`).
    pub endpoint: Endpoint,
    /// The attempt that just failed (1-based).
    pub attempt: u32,
    /// The most attempts the policy allows.
    pub max_attempts: u32,
    /// The wait before the next attempt (serialized as `delay_ms`).
    #[serde(rename = "delay_ms", serialize_with = "millis")]
    pub delay: Duration,
    /// Whether the wait was requested by the server (`Retry-After`).
    pub server_requested: bool,
    /// What went wrong, e.g. `http 503 Service Unavailable: upstream down`. Never contains a key.
    pub cause: String,
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// It returned a value.
    Ok,
    /// It failed, and another attempt follows.
    Retried,
    /// It failed with a retryable error, but the call stopped: attempts used up, the deadline,
    /// a too-long `Retry-After`, or a protection refused the retry.
    GaveUp,
    /// It failed with an error that no retry can fix.
    Permanent,
    /// A billed call failed after the request may have been processed, and was not replayed:
    /// the job may exist.
    Ambiguous,
    /// The caller stopped waiting while it was in flight (its future was dropped: a callback
    /// answered first, a job was cancelled): it was sent, or about to be, and nobody read the
    /// answer.
    Cancelled,
}

/// One attempt that was sent, and how it ended.
///
/// Serializes as `{"endpoint":"suno.status","attempt":2,"outcome":"retried","took_ms":31,
/// "slot_wait_ms":0,"status":503,"error_type":"503"}`.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// The service.
    pub service: Service,
    /// The endpoint (serialized as its name).
    pub endpoint: Endpoint,
    /// The attempt (1-based).
    pub attempt: u32,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// How long it took, from when it was sent (serialized as `took_ms`).
    #[serde(rename = "took_ms", serialize_with = "millis")]
    pub took: Duration,
    /// How long it first waited for a slot of its service's rate limit (serialized as
    /// `slot_wait_ms`).
    #[serde(rename = "slot_wait_ms", serialize_with = "millis")]
    pub slot_wait: Duration,
    /// The HTTP status of the answer, when one came.
    pub status: Option<u16>,
    /// What went wrong, as a short stable name (OpenTelemetry's `error.type`: `timeout`,
    /// `connect`, `503`, …); `None` for a success.
    pub error_type: Option<Cow<'static, str>>,
}

/// Which protection refused an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Protection {
    /// The service's circuit breaker is open.
    Breaker,
    /// The service's rate limit had no slot before the deadline.
    RateLimit,
    /// The service's retry budget had no token for a retry.
    Budget,
}

/// A protection did not let an attempt through: nothing was sent for it.
///
/// Serializes as `{"endpoint":"suno.generate","attempt":1,"by":"breaker","detail":"circuit
/// open for suno, next probe in 8.5s"}`.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RefusalNotice {
    /// The service.
    pub service: Service,
    /// The endpoint (serialized as its name).
    pub endpoint: Endpoint,
    /// The attempt that was not made (1-based).
    pub attempt: u32,
    /// Which protection.
    pub by: Protection,
    /// Why, in words.
    pub detail: String,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallOutcome {
    /// It returned a value.
    Ok,
    /// It returned an error.
    Failed,
}

/// One finished logical call (all its attempts).
///
/// Serializes as `{"service":"suno","endpoint":"suno.status","attempts":2,"outcome":"ok",
/// "elapsed":"1.2s","elapsed_ms":1204,"error":null}`.
#[derive(Clone, Debug)]
pub struct CallRecord {
    /// The service.
    pub service: Service,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Attempts made (0 when the call failed before sending anything).
    pub attempts: u32,
    /// Success or failure.
    pub outcome: CallOutcome,
    /// Time from the first attempt to the end, waits included.
    pub elapsed: Duration,
    /// The error's `Display`, when it failed.
    pub error: Option<String>,
}

impl Serialize for CallRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("CallRecord", 7)?;
        s.serialize_field("service", &self.service)?;
        s.serialize_field("endpoint", &self.endpoint)?;
        s.serialize_field("attempts", &self.attempts)?;
        s.serialize_field("outcome", &self.outcome)?;
        s.serialize_field("elapsed", &fmt_duration(self.elapsed))?;
        s.serialize_field("elapsed_ms", &(self.elapsed.as_millis() as u64))?;
        s.serialize_field("error", &self.error)?;
        s.end()
    }
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_records_and_refusals_serialize_for_metrics() {
        let record = AttemptRecord {
            service: Service::Suno,
            endpoint: Endpoint::SunoStatus,
            attempt: 2,
            outcome: AttemptOutcome::Retried,
            took: Duration::from_millis(31),
            slot_wait: Duration::ZERO,
            status: Some(503),
            error_type: Some("503".into()),
        };
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            serde_json::json!({"service":"suno","endpoint":"suno.status","attempt":2,
                "outcome":"retried","took_ms":31,"slot_wait_ms":0,"status":503,
                "error_type":"503"})
        );
        let refusal = RefusalNotice {
            service: Service::Suno,
            endpoint: Endpoint::SunoGenerate,
            attempt: 1,
            by: Protection::Breaker,
            detail: "circuit open for suno, next probe in 8.5s".into(),
        };
        assert_eq!(
            serde_json::to_value(&refusal).unwrap()["by"],
            serde_json::json!("breaker")
        );
    }

    #[test]
    fn records_and_notices_serialize_for_reports() {
        let record = CallRecord {
            service: Service::Suno,
            endpoint: Endpoint::SunoStatus,
            attempts: 2,
            outcome: CallOutcome::Ok,
            elapsed: Duration::from_millis(1204),
            error: None,
        };
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            serde_json::json!({"service":"suno","endpoint":"suno.status","attempts":2,
                "outcome":"ok","elapsed":"1.2s","elapsed_ms":1204,"error":null})
        );
        let notice = RetryNotice {
            endpoint: Endpoint::CreatomateRender,
            attempt: 1,
            max_attempts: 4,
            delay: Duration::from_secs(2),
            server_requested: true,
            cause: "http 429 Too Many Requests".into(),
        };
        assert_eq!(
            serde_json::to_value(&notice).unwrap(),
            serde_json::json!({"endpoint":"creatomate.render","attempt":1,"max_attempts":4,
                "delay_ms":2000,"server_requested":true,"cause":"http 429 Too Many Requests"})
        );
    }

    #[test]
    fn breaker_notices_read_and_serialize_for_the_cli() {
        let opened = BreakerNotice::new(
            Service::Suno,
            CircuitState::Closed,
            CircuitState::Open,
            Some(Duration::from_secs(10)),
        );
        assert_eq!(
            opened.to_string(),
            "suno: circuit opened, failing fast; next probe in 10s"
        );
        assert_eq!(
            serde_json::to_value(&opened).unwrap(),
            serde_json::json!({"service":"suno","from":"closed","to":"open","open_for":"10s",
                "open_for_ms":10000})
        );
        let probing = BreakerNotice::new(
            Service::Creatomate,
            CircuitState::Open,
            CircuitState::HalfOpen,
            None,
        );
        assert_eq!(
            probing.to_string(),
            "creatomate: circuit half-open, probing"
        );
        assert_eq!(
            serde_json::to_value(&probing).unwrap()["open_for"],
            serde_json::Value::Null
        );
        let closed = BreakerNotice::new(
            Service::OpenAi,
            CircuitState::HalfOpen,
            CircuitState::Closed,
            None,
        );
        assert_eq!(
            closed.to_string(),
            "openai: circuit closed, calls go through again"
        );
    }
}
