//! The retry loop's one decision, as a pure function: after a failed attempt, wait and retry, or
//! stop and say why. No clock, no I/O, no shared state: table tests drive it directly.

use std::time::Duration;

use crate::breaker::CircuitOpen;
use crate::{Decision, RetryPolicy, StopReason};

/// What is known when an attempt has failed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Facts<'a> {
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// What the classifier answered.
    pub decision: Decision,
    /// The policy's wait before this retry (jitter applied).
    pub backoff: Duration,
    /// What was left of the deadline when the attempt ended.
    pub left: Duration,
    /// The upstream's circuit breaker, when it is open: how long until its next probe.
    pub circuit: Option<&'a CircuitOpen>,
}

impl<'a> Facts<'a> {
    /// The facts of a failed `attempt`: `decision`, the policy's `backoff`, `left` of the
    /// deadline, and no open breaker.
    pub const fn new(attempt: u32, decision: Decision, backoff: Duration, left: Duration) -> Self {
        Facts {
            attempt,
            decision,
            backoff,
            left,
            circuit: None,
        }
    }

    /// The upstream's circuit breaker is open: `open`.
    pub const fn with_circuit(mut self, open: &'a CircuitOpen) -> Self {
        self.circuit = Some(open);
        self
    }
}

/// The decision after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Wait `wait`, then make the next attempt (if the retry budget, when there is one, pays
    /// for it).
    Retry {
        /// How long to wait.
        wait: Duration,
        /// Whether the server asked for `wait` (`Retry-After`) rather than the backoff.
        server_requested: bool,
    },
    /// Stop; the reason. [`StopReason::Permanent`] after the first attempt means the error is
    /// returned as itself.
    Stop(StopReason),
}

/// What the loop does after a failed attempt, in this order:
///
/// 1. the classifier said stop → [`StopReason::Permanent`];
/// 2. every attempt the policy allows was made → [`StopReason::AttemptsExhausted`] (or
///    [`StopReason::RetriesDisabled`] when `enabled = false`);
/// 3. the server asked for a wait above `max_retry_after` → [`StopReason::RetryAfterTooLong`];
/// 4. the wait (the server's, else the backoff) does not end before the deadline →
///    [`StopReason::Deadline`];
/// 5. the circuit breaker is open and will still be open when the wait ends →
///    [`StopReason::CircuitOpen`] (give up now rather than wait for a refusal);
/// 6. otherwise retry after the wait.
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::step::{Facts, Step, next_step};
/// use encore_resilience::{Decision, RetryPolicy, StopReason};
///
/// let policy = RetryPolicy::default(); // 4 attempts, 2 min deadline
/// let s = Duration::from_secs;
/// assert_eq!(
///     next_step(&policy, &Facts::new(1, Decision::Retry, s(1), s(90))),
///     Step::Retry { wait: s(1), server_requested: false }
/// );
/// assert_eq!(
///     next_step(&policy, &Facts::new(4, Decision::Retry, s(8), s(60))),
///     Step::Stop(StopReason::AttemptsExhausted)
/// );
/// ```
pub fn next_step(policy: &RetryPolicy, facts: &Facts<'_>) -> Step {
    let (wait, server_requested) = match facts.decision {
        Decision::Stop => return Step::Stop(StopReason::Permanent),
        Decision::RetryAfter(requested) => (requested, true),
        Decision::Retry => (facts.backoff, false),
    };
    if facts.attempt >= policy.max_attempts() {
        return Step::Stop(if policy.enabled {
            StopReason::AttemptsExhausted
        } else {
            StopReason::RetriesDisabled
        });
    }
    if server_requested && wait > policy.max_retry_after {
        return Step::Stop(StopReason::RetryAfterTooLong {
            requested: wait,
            limit: policy.max_retry_after,
        });
    }
    if facts.left.is_zero() || wait >= facts.left {
        return Step::Stop(StopReason::Deadline {
            deadline: policy.deadline,
            next_wait: (!facts.left.is_zero()).then_some(wait),
            left: facts.left,
        });
    }
    if let Some(open) = facts.circuit.filter(|open| open.retry_in > wait) {
        return Step::Stop(StopReason::CircuitOpen {
            upstream: open.upstream.clone(),
            retry_in: open.retry_in,
        });
    }
    Step::Retry {
        wait,
        server_requested,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn retry(wait: u64, server_requested: bool) -> Step {
        Step::Retry {
            wait: s(wait),
            server_requested,
        }
    }

    #[test]
    fn the_decision_table() {
        let policy = RetryPolicy::default(); // 4 attempts, 2 min deadline, Retry-After ≤ 2 min
        let open = |retry_in| CircuitOpen {
            upstream: "suno".into(),
            retry_in: s(retry_in),
        };
        let (open_long, open_short) = (open(30), open(1));
        let deadline = |next_wait: Option<u64>, left: u64| {
            Step::Stop(StopReason::Deadline {
                deadline: s(120),
                next_wait: next_wait.map(s),
                left: s(left),
            })
        };
        let open_exact = open(2);
        let cases: [(&str, Facts<'_>, Step); 16] = [
            (
                "transient: the backoff",
                Facts::new(1, Decision::Retry, s(1), s(90)),
                retry(1, false),
            ),
            (
                "server hint: exactly",
                Facts::new(2, Decision::RetryAfter(s(5)), s(2), s(90)),
                retry(5, true),
            ),
            (
                "permanent, first attempt",
                Facts::new(1, Decision::Stop, s(1), s(90)),
                Step::Stop(StopReason::Permanent),
            ),
            (
                "permanent after retries",
                Facts::new(3, Decision::Stop, s(4), s(90)),
                Step::Stop(StopReason::Permanent),
            ),
            (
                "last attempt",
                Facts::new(4, Decision::Retry, s(8), s(90)),
                Step::Stop(StopReason::AttemptsExhausted),
            ),
            (
                "last attempt wins over a long hint",
                Facts::new(4, Decision::RetryAfter(s(3600)), s(8), s(90)),
                Step::Stop(StopReason::AttemptsExhausted),
            ),
            (
                "hint above the ceiling",
                Facts::new(1, Decision::RetryAfter(s(121)), s(1), s(110)),
                Step::Stop(StopReason::RetryAfterTooLong {
                    requested: s(121),
                    limit: s(120),
                }),
            ),
            (
                "wait does not fit",
                Facts::new(2, Decision::Retry, s(2), s(2)),
                deadline(Some(2), 2),
            ),
            (
                "deadline already reached",
                Facts::new(1, Decision::Retry, s(1), Duration::ZERO),
                deadline(None, 0),
            ),
            (
                "breaker open past the wait",
                Facts::new(1, Decision::Retry, s(1), s(90)).with_circuit(&open_long),
                Step::Stop(StopReason::CircuitOpen {
                    upstream: "suno".into(),
                    retry_in: s(30),
                }),
            ),
            (
                "breaker open, but probing before the wait ends",
                Facts::new(1, Decision::Retry, s(2), s(90)).with_circuit(&open_short),
                retry(2, false),
            ),
            (
                "hint exactly at the ceiling",
                Facts::new(1, Decision::RetryAfter(s(120)), s(1), s(121)),
                retry(120, true),
            ),
            (
                "the wait ends just before the deadline",
                Facts::new(3, Decision::Retry, s(4), s(4) + Duration::from_nanos(1)),
                retry(4, false),
            ),
            (
                "breaker probing exactly when the wait ends",
                Facts::new(1, Decision::Retry, s(2), s(90)).with_circuit(&open_exact),
                retry(2, false),
            ),
            (
                "the third attempt, one left: the hint",
                Facts::new(3, Decision::RetryAfter(s(1)), s(4), s(90)),
                retry(1, true),
            ),
            (
                "the deadline before the breaker",
                Facts::new(1, Decision::Retry, s(5), s(3)).with_circuit(&open_long),
                deadline(Some(5), 3),
            ),
        ];
        for (name, facts, want) in cases {
            assert_eq!(next_step(&policy, &facts), want, "{name}");
        }
    }

    #[test]
    fn retries_switched_off_stop_after_the_first_attempt_with_that_reason() {
        let policy = RetryPolicy::default().with_enabled(false);
        assert_eq!(
            next_step(&policy, &Facts::new(1, Decision::Retry, s(1), s(90))),
            Step::Stop(StopReason::RetriesDisabled)
        );
        // A permanent error is still permanent.
        assert_eq!(
            next_step(&policy, &Facts::new(1, Decision::Stop, s(1), s(90))),
            Step::Stop(StopReason::Permanent)
        );
    }
}
