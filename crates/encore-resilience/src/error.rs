//! The errors of the retry loop: a single attempt's timeout, and the error it gives up with.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::breaker::describe_open;
use crate::fmt::GaveUp;
use crate::fmt_duration;
use crate::rate_limit::NoSlot;

/// One attempt took longer than it was allowed to (its timeout, or what was left of the deadline).
///
/// The retry loop turns this into the operation's own error type through `From`, so the
/// classifier decides whether a timed-out attempt may be replayed (a billed call that may have
/// run must not be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("attempt timed out after {}", fmt_duration(*.limit))]
pub struct AttemptTimedOut {
    /// The bound that was hit.
    pub limit: Duration,
}

impl From<AttemptTimedOut> for std::io::Error {
    fn from(e: AttemptTimedOut) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Why the retry loop stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// Every allowed attempt was made.
    AttemptsExhausted,
    /// Retries are switched off (`enabled = false`): one attempt was made.
    RetriesDisabled,
    /// The total deadline was reached, or the next wait would not fit in what was left of it.
    Deadline {
        /// The configured deadline.
        deadline: Duration,
        /// The wait that did not fit, if a retry was still allowed.
        next_wait: Option<Duration>,
        /// What was left of the deadline when the loop stopped.
        left: Duration,
    },
    /// The server asked for a wait longer than `max_retry_after`.
    RetryAfterTooLong {
        /// The wait the server asked for.
        requested: Duration,
        /// The configured ceiling.
        limit: Duration,
    },
    /// The last failure was permanent (it came after transient ones).
    Permanent,
    /// The upstream's [`CircuitBreaker`](crate::breaker::CircuitBreaker) is open: the next
    /// attempt was not made (with no attempt made at all, the call was refused outright).
    CircuitOpen {
        /// The upstream's name.
        upstream: Arc<str>,
        /// How long until the breaker lets a probe through; zero while a probe is in flight.
        retry_in: Duration,
    },
    /// The upstream's [`RetryBudget`](crate::budget::RetryBudget) has no token left for a retry.
    BudgetExhausted {
        /// The upstream's name.
        upstream: Arc<str>,
        /// The budget's ratio in thousandths (`200`: retries are limited to 20 % of calls).
        per_mille: u32,
    },
    /// The upstream's [`RateLimiter`](crate::rate_limit::RateLimiter) had no slot for the next
    /// attempt before the deadline: it was not sent.
    Throttled(NoSlot),
}

impl StopReason {
    /// Whether a protection refused the next attempt: the circuit breaker, the rate limiter or
    /// the retry budget (nothing was sent for it).
    pub const fn is_refusal(&self) -> bool {
        matches!(
            self,
            StopReason::CircuitOpen { .. }
                | StopReason::Throttled(_)
                | StopReason::BudgetExhausted { .. }
        )
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::AttemptsExhausted => f.write_str("attempts used up"),
            StopReason::RetriesDisabled => f.write_str("retries disabled"),
            StopReason::Deadline {
                deadline,
                next_wait: Some(wait),
                left,
            } => write!(
                f,
                "the next wait of {} does not fit in the {} left of the {} deadline",
                fmt_duration(*wait),
                fmt_duration(*left),
                fmt_duration(*deadline)
            ),
            StopReason::Deadline { deadline, .. } => {
                write!(f, "deadline of {} reached", fmt_duration(*deadline))
            }
            StopReason::RetryAfterTooLong { requested, limit } => write!(
                f,
                "server asked to wait {}, more than the {} limit",
                fmt_duration(*requested),
                fmt_duration(*limit)
            ),
            StopReason::Permanent => f.write_str("permanent error"),
            StopReason::CircuitOpen { upstream, retry_in } => {
                f.write_str(&describe_open(upstream, *retry_in))
            }
            StopReason::BudgetExhausted {
                upstream,
                per_mille,
            } => {
                write!(
                    f,
                    "retry budget for {upstream} exhausted: retries are limited to {}",
                    per_mille / 10
                )?;
                if per_mille % 10 != 0 {
                    write!(f, ".{}", per_mille % 10)?;
                }
                f.write_str("% of calls")
            }
            StopReason::Throttled(refusal) => refusal.fmt(f),
        }
    }
}

/// The error a retried call ends with (the seed plan's `RetryExhaustedError`).
///
/// A permanent failure on the very first attempt is returned as itself
/// ([`RetryError::Permanent`]); everything else is [`RetryError::Exhausted`], which keeps the last
/// error intact as its [`source`](StdError::source) together with the attempt count, the elapsed
/// time, the operation's name and why the loop stopped.
#[derive(Debug)]
pub enum RetryError<E> {
    /// The first attempt failed permanently; no retry was made. Displays as the error itself.
    Permanent(E),
    /// The loop gave up after one or more attempts.
    Exhausted(RetryExhaustedError<E>),
}

impl<E> RetryError<E> {
    /// The last error seen.
    pub fn last_error(&self) -> &E {
        match self {
            RetryError::Permanent(e) => e,
            RetryError::Exhausted(x) => &x.last_error,
        }
    }

    /// The last error seen, by value.
    pub fn into_last_error(self) -> E {
        match self {
            RetryError::Permanent(e) => e,
            RetryError::Exhausted(x) => x.last_error,
        }
    }

    /// How many attempts were made: 0 when an open circuit breaker refused the call.
    pub fn attempts(&self) -> u32 {
        match self {
            RetryError::Permanent(_) => 1,
            RetryError::Exhausted(x) => x.attempts,
        }
    }

    /// Whether the loop gave up (as opposed to a first-attempt permanent failure).
    pub fn is_exhausted(&self) -> bool {
        matches!(self, RetryError::Exhausted(_))
    }

    /// Whether the loop stopped because the upstream's circuit breaker is open. With
    /// [`attempts`](Self::attempts) `== 0` the operation was not called at all.
    pub fn is_circuit_open(&self) -> bool {
        matches!(self.stop_reason(), Some(StopReason::CircuitOpen { .. }))
    }

    /// Whether the loop stopped because the upstream's retry budget ran dry.
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self.stop_reason(), Some(StopReason::BudgetExhausted { .. }))
    }

    /// Whether the loop stopped because the upstream's rate limiter had no slot before the
    /// deadline. With [`attempts`](Self::attempts) `== 0` the operation was not called at all.
    pub fn is_throttled(&self) -> bool {
        matches!(self.stop_reason(), Some(StopReason::Throttled(_)))
    }

    /// Why the loop stopped, when it gave up.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        match self {
            RetryError::Permanent(_) => None,
            RetryError::Exhausted(x) => Some(&x.reason),
        }
    }

    /// The exhaustion details, when the loop gave up.
    pub fn as_exhausted(&self) -> Option<&RetryExhaustedError<E>> {
        match self {
            RetryError::Permanent(_) => None,
            RetryError::Exhausted(x) => Some(x),
        }
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryError::Permanent(e) => e.fmt(f),
            RetryError::Exhausted(x) => x.fmt(f),
        }
    }
}

impl<E: StdError + 'static> StdError for RetryError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            RetryError::Permanent(e) => e.source(),
            RetryError::Exhausted(x) => Some(&x.last_error),
        }
    }
}

/// The details of a retry loop that gave up.
///
/// Displays as `suno.generate: gave up after 4 attempts in 7.1s: <last error>`, with the reason in
/// parentheses when it was not simply running out of attempts. A call a protection refused
/// outright (no attempt made) displays as the refusal: `suno.generate: circuit open for suno,
/// next probe in 4.2s`; its last error is the operation's error made from the refusal
/// ([`CircuitOpen`](crate::breaker::CircuitOpen) or [`NoSlot`]).
#[derive(Debug)]
pub struct RetryExhaustedError<E> {
    pub(crate) last_error: E,
    pub(crate) attempts: u32,
    pub(crate) elapsed: Duration,
    pub(crate) operation: Option<Cow<'static, str>>,
    pub(crate) reason: StopReason,
}

impl<E> RetryExhaustedError<E> {
    /// The last error seen (also the [`source`](StdError::source)).
    pub fn last_error(&self) -> &E {
        &self.last_error
    }
    /// How many attempts were made (0 when an open circuit breaker refused the call).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    /// Time from the first attempt to giving up, waits included.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
    /// The operation's name (e.g. `suno.generate`), when one was given.
    pub fn operation(&self) -> Option<&str> {
        self.operation.as_deref()
    }
    /// Why the loop stopped.
    pub fn reason(&self) -> &StopReason {
        &self.reason
    }
}

impl<E: fmt::Display> fmt::Display for RetryExhaustedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(op) = &self.operation {
            write!(f, "{op}: ")?;
        }
        if self.attempts == 0 {
            // Refused before any attempt: the reason is the whole story.
            return self.reason.fmt(f);
        }
        GaveUp {
            attempts: self.attempts,
            elapsed: self.elapsed,
        }
        .fmt(f)?;
        if self.reason != StopReason::AttemptsExhausted {
            write!(f, " ({})", self.reason)?;
        }
        write!(f, ": {}", self.last_error)
    }
}

impl<E: StdError + 'static> StdError for RetryExhaustedError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.last_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("http 503")]
    struct Inner(#[source] std::io::Error);

    fn exhausted() -> RetryError<Inner> {
        RetryError::Exhausted(RetryExhaustedError {
            last_error: Inner(std::io::Error::other("upstream down")),
            attempts: 4,
            elapsed: Duration::from_millis(7100),
            operation: Some("suno.generate".into()),
            reason: StopReason::AttemptsExhausted,
        })
    }

    #[test]
    fn display_reads_like_the_issue_says() {
        assert_eq!(
            exhausted().to_string(),
            "suno.generate: gave up after 4 attempts in 7.1s: http 503"
        );
        let once = RetryError::Exhausted(RetryExhaustedError {
            last_error: Inner(std::io::Error::other("x")),
            attempts: 1,
            elapsed: Duration::from_millis(250),
            operation: None,
            reason: StopReason::RetriesDisabled,
        });
        assert_eq!(
            once.to_string(),
            "gave up after 1 attempt in 250ms (retries disabled): http 503"
        );
    }

    #[test]
    fn the_source_chain_is_intact() {
        let err = exhausted();
        let source = err.source().unwrap();
        assert_eq!(source.to_string(), "http 503");
        assert_eq!(source.source().unwrap().to_string(), "upstream down");
    }

    #[test]
    fn permanent_is_transparent() {
        let err = RetryError::Permanent(Inner(std::io::Error::other("bad key")));
        assert_eq!(err.to_string(), "http 503");
        assert_eq!(err.source().unwrap().to_string(), "bad key");
        assert_eq!(err.attempts(), 1);
        assert!(!err.is_exhausted());
    }

    #[test]
    fn reasons_are_spelled_out() {
        let deadline = StopReason::Deadline {
            deadline: Duration::from_secs(10),
            next_wait: Some(Duration::from_secs(8)),
            left: Duration::from_millis(2500),
        };
        assert_eq!(
            deadline.to_string(),
            "the next wait of 8s does not fit in the 2.5s left of the 10s deadline"
        );
        let long = StopReason::RetryAfterTooLong {
            requested: Duration::from_secs(3600),
            limit: Duration::from_secs(120),
        };
        assert_eq!(
            long.to_string(),
            "server asked to wait 60m, more than the 2m limit"
        );
    }

    #[test]
    fn overload_reasons_are_spelled_out() {
        let open = StopReason::CircuitOpen {
            upstream: "suno".into(),
            retry_in: Duration::from_millis(4200),
        };
        assert_eq!(
            open.to_string(),
            "circuit open for suno, next probe in 4.2s"
        );
        let budget = |per_mille| StopReason::BudgetExhausted {
            upstream: "suno".into(),
            per_mille,
        };
        assert_eq!(
            budget(200).to_string(),
            "retry budget for suno exhausted: retries are limited to 20% of calls"
        );
        assert!(
            budget(125)
                .to_string()
                .contains("limited to 12.5% of calls")
        );
        assert!(budget(5).to_string().contains("limited to 0.5% of calls"));
    }

    #[test]
    fn a_refused_call_displays_as_the_refusal() {
        let err = RetryError::Exhausted(RetryExhaustedError {
            last_error: Inner(std::io::Error::other("circuit open")),
            attempts: 0,
            elapsed: Duration::ZERO,
            operation: Some("suno.generate".into()),
            reason: StopReason::CircuitOpen {
                upstream: "suno".into(),
                retry_in: Duration::from_millis(4200),
            },
        });
        assert_eq!(
            err.to_string(),
            "suno.generate: circuit open for suno, next probe in 4.2s"
        );
        assert_eq!(err.attempts(), 0);
        assert!(err.is_circuit_open() && !err.is_budget_exhausted());
        assert!(err.source().is_some(), "the last error is still the source");
    }

    #[test]
    fn errors_are_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<RetryError<std::io::Error>>();
        assert_send_sync::<AttemptTimedOut>();
        let io: std::io::Error = AttemptTimedOut {
            limit: Duration::from_secs(1),
        }
        .into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    }
}
