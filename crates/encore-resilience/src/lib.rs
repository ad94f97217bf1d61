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
mod classify;
mod error;
mod jitter;
mod policy;
mod poll;
mod retry;
mod retry_after;

pub use backoff::Backoff;
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
