//! encore's resilience core: bounded, classified, observable retries for calls to slow and flaky
//! services.
//!
//! Every external call in encore goes through [`Retry`], which owns the whole attempt: the
//! admission (the upstream's [circuit breaker](breaker) and [rate limit](rate_limit)), the
//! attempt bounded by a timeout, its classification (a [`Classifier`]: retry, retry after a
//! server-requested wait, or stop), the decision ([`step::next_step`], a pure function), and the
//! wait, which follows a capped exponential [`Backoff`] with optional [`Jitter`] or honours the
//! server's hint (`Retry-After`, `retry-after-ms`: [`parse_retry_after`]) up to a ceiling. A
//! total deadline bounds it all and is never overshot. When it gives up, the [`RetryError`]
//! says which operation, how many attempts, how long, why, and keeps the last error as its
//! source. Everything that happens reaches an [`on_event`](Retry::on_event) hook.
//!
//! Three protections are shared by every call to one upstream (make one of each per upstream
//! and hand them to each [`Retry`]): a [retry budget](budget) lets retries add at most a
//! fraction of the load (20 % by default, plus a small floor), so an outage is not amplified
//! fourfold by retries; a [circuit breaker](breaker) stops calling an upstream that keeps
//! failing, fails fast with "circuit open for suno, next probe in 4.2s", and probes it again
//! after a while; and a [rate limiter](rate_limit) keeps to the upstream's quota, queueing
//! callers within their deadlines. Rate limiting (`Retry-After`) does not open the breaker: the
//! upstream is alive, and the wait it asks for is honoured instead.
//!
//! ```
//! use encore_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig};
//! use encore_resilience::budget::{RetryBudget, RetryBudgetConfig};
//! use encore_resilience::{Retry, RetryPolicy};
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
//! assert!(err.to_string().starts_with("suno.status: gave up after 3 attempts in 3s"));
//! # }
//! ```
#![warn(missing_docs)]

mod backoff;
pub mod breaker;
pub mod budget;
mod classify;
pub mod decorator;
pub mod defaults;
#[cfg(test)]
mod doc_table;
mod error;
pub mod fmt;
mod jitter;
mod policy;
mod poll;
pub mod rate_limit;
mod retry;
pub mod retry_after;
pub mod step;
mod window;

pub use backoff::Backoff;
pub use classify::{ByErrorType, Classifier, Classify, Decision, Outcome};
pub use error::{AttemptTimedOut, RetryError, RetryExhaustedError, StopReason};
pub use fmt::fmt_duration;
pub use jitter::Jitter;
pub use policy::{PolicyError, RetryPolicy};
pub use poll::{PollError, PollPolicy, PollState, poll_until};
pub use retry::{Attempt, Event, Retry, RetryEvent};
pub use retry_after::parse_retry_after;
