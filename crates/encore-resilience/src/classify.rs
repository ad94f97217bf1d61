//! What a failure means for the retry loop: retry, retry after a server-given wait, or stop.

use std::borrow::Cow;
use std::time::Duration;

use crate::Outcome;

/// The answer a failure gives to "should this be tried again?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A transient failure: retry after the policy's backoff.
    Retry,
    /// A transient failure with a server-requested wait (`Retry-After`): retry after exactly
    /// this long, unless it exceeds the policy's `max_retry_after` or the deadline.
    RetryAfter(Duration),
    /// A permanent failure (or one that must not be replayed): stop now.
    Stop,
}

impl Decision {
    /// Whether this decision allows another attempt.
    pub const fn is_retry(self) -> bool {
        !matches!(self, Decision::Stop)
    }
}

/// Implemented by error types that know whether they are worth retrying.
///
/// There is deliberately no "retry every error" default: each error type decides, case by case.
///
/// ```
/// use encore_resilience::{Classify, Decision};
///
/// #[derive(Debug)]
/// enum ApiError { Busy, BadInput }
///
/// impl Classify for ApiError {
///     fn classify(&self) -> Decision {
///         match self {
///             ApiError::Busy => Decision::Retry,    // the server will recover
///             ApiError::BadInput => Decision::Stop, // sending it again changes nothing
///         }
///     }
/// }
/// assert!(ApiError::Busy.classify().is_retry());
/// ```
pub trait Classify {
    /// Retry, retry after a wait, or stop.
    fn classify(&self) -> Decision;

    /// A short name for the kind of failure, for log lines (the seed plan's
    /// `type(e).__name__`). Defaults to the type's name.
    fn kind(&self) -> Cow<'static, str> {
        let full = std::any::type_name::<Self>();
        Cow::Borrowed(full.rsplit("::").next().unwrap_or(full))
    }

    /// What this failure says about the upstream's health, for a
    /// [`CircuitBreaker`](crate::CircuitBreaker). Defaults to
    /// [`Outcome::from`]`(self.classify())`: `Retry` is a failure, `RetryAfter` is rate limiting
    /// (it does not count toward opening) and `Stop` counts as the upstream being up.
    ///
    /// Override it when the decision is not the whole story, e.g. a timed-out billed call that
    /// must not be replayed (`Stop`) still says the upstream is failing (`Outcome::Failure`).
    fn breaker_outcome(&self) -> Outcome {
        Outcome::from(self.classify())
    }
}

/// I/O errors: connection-level and timeout failures are transient, everything else is not.
impl Classify for std::io::Error {
    fn classify(&self) -> Decision {
        use std::io::ErrorKind as K;
        match self.kind() {
            K::TimedOut
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::Interrupted
            | K::WouldBlock
            | K::UnexpectedEof => Decision::Retry,
            _ => Decision::Stop,
        }
    }

    fn kind(&self) -> Cow<'static, str> {
        Cow::Owned(format!("io::Error({:?})", self.kind()))
    }
}
