//! encore's resilience core: bounded, classified, observable retries for calls to slow and flaky
//! services.
//!
//! Every external call in encore goes through [`Retry`]: each attempt is bounded by a timeout,
//! failures are classified ([`Classify`]: retry, retry after a server-requested wait, or stop),
//! waits follow a capped exponential [`Backoff`] with optional [`Jitter`], server hints
//! (`Retry-After`, `retry-after-ms`) are honoured up to a ceiling ([`parse_retry_after`]), and a
//! total deadline is never overshot. When it gives up, the [`RetryError`] says which operation,
//! how many attempts, how long, why, and keeps the last error as its source.
//!
//! Two protections are shared by every call to one upstream (make one of each per upstream and
//! hand them to each [`Retry`]): a [`RetryBudget`] lets retries add at most a fraction of the
//! load (20 % by default, plus a small floor), so an outage is not amplified fourfold by
//! retries; and a [`CircuitBreaker`] stops calling an upstream that keeps failing, fails fast
//! with "circuit open for suno, next probe in 4.2s", and probes it again after a while. Rate
//! limiting (`Retry-After`) does not open the breaker: the upstream is alive, and the wait it
//! asks for is honoured instead.
//!
//! ```
//! use encore_resilience::{
//!     CircuitBreaker, CircuitBreakerConfig, Retry, RetryBudget, RetryBudgetConfig, RetryPolicy,
//! };
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // Once per upstream, at start-up; clones share the same state.
//! let budget = RetryBudget::new("suno", RetryBudgetConfig::default()).unwrap();
//! let breaker = CircuitBreaker::new("suno", CircuitBreakerConfig::default()).unwrap();
//!
//! let policy = RetryPolicy::default();
//! let mut errors = Vec::new();
//! for _ in 0..3 {
//!     let result: Result<(), _> = Retry::new(&policy)
//!         .name("suno.generate")
//!         .budget(&budget)
//!         .breaker(&breaker)
//!         .run(|_| async { Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)) })
//!         .await;
//!     errors.push(result.unwrap_err());
//! }
//! // 4 failed attempts, then the 5th failure in a row opens the circuit, then no call at all.
//! assert_eq!(errors.iter().map(|e| e.attempts()).collect::<Vec<_>>(), [4, 1, 0]);
//! assert_eq!(
//!     errors[2].to_string(),
//!     "suno.generate: circuit open for suno, next probe in 10s"
//! );
//! # }
//! ```
//!
//! ```
//! use std::time::Duration;
//! use encore_resilience::{Retry, RetryError, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let policy = RetryPolicy::default().with_max_retries(2); // waits 1 s, then 2 s
//! let result: Result<(), RetryError<std::io::Error>> = Retry::new(&policy)
//!     .name("suno.status")
//!     .run(|_| async { Err(std::io::ErrorKind::ConnectionRefused.into()) })
//!     .await;
//! let err = result.unwrap_err();
//! assert_eq!(err.attempts(), 3);
//! assert!(err.to_string().starts_with("suno.status: gave up after 3 attempts in 3.0s"));
//! # }
//! ```
#![warn(missing_docs)]

mod backoff;
mod breaker;
mod budget;
mod classify;
mod error;
mod jitter;
mod policy;
mod poll;
mod retry;
mod retry_after;
mod window;

pub use backoff::Backoff;
pub use breaker::{
    BreakerPermit, CircuitBreaker, CircuitBreakerConfig, CircuitOpen, CircuitState,
    DEFAULT_BREAKER_CONSECUTIVE_FAILURES, DEFAULT_BREAKER_FAILURE_RATIO,
    DEFAULT_BREAKER_HALF_OPEN_PROBES, DEFAULT_BREAKER_MAX_OPEN_FOR, DEFAULT_BREAKER_MIN_CALLS,
    DEFAULT_BREAKER_OPEN_FOR, DEFAULT_BREAKER_WINDOW, Outcome, StateChange,
};
pub use budget::{
    DEFAULT_BUDGET_MIN_PER_SEC, DEFAULT_BUDGET_RATIO, DEFAULT_BUDGET_WINDOW, RetryBudget,
    RetryBudgetConfig,
};
pub use classify::{Classify, Decision};
pub use error::{AttemptTimedOut, RetryError, RetryExhaustedError, StopReason};
pub use jitter::Jitter;
pub use policy::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BASE_DELAY, DEFAULT_DEADLINE, DEFAULT_JITTER,
    DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_AFTER, DEFAULT_MULTIPLIER,
    MAX_RETRIES_LIMIT, PolicyError, RetryPolicy, fmt_duration,
};
pub use poll::{PollError, PollPolicy, PollState, poll_until};
pub use retry::{Attempt, Retry, RetryEvent, RetryableFn, WithRetry, retry};
pub use retry_after::{
    MAX_SANE_RETRY_AFTER, parse_retry_after, parse_retry_after_ms, parse_retry_after_value,
};
