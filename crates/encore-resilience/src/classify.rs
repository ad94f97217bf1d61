//! What a failure means: for the retry loop (retry, retry after a server-given wait, or stop),
//! and for the upstream's circuit breaker (failing, up, or only asking us to slow down).
//!
//! The loop takes its classification as a policy object, a [`Classifier`], beside the operation
//! (as tower's `Policy` sits beside the request): the error says what happened, the classifier
//! decides what that means for this call. An error type that always means the same thing
//! implements [`Classify`], and [`ByErrorType`] turns that into a classifier.

use std::borrow::Cow;
use std::time::Duration;

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

/// What one attempt says about the upstream's health, as reported to a
/// [`CircuitBreaker`](crate::breaker::CircuitBreaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The upstream answered: a success, or a permanent error (400, 404, 422…). It is up.
    Success,
    /// A transient failure (5xx, timeout, connection refused or reset): counts toward opening.
    Failure,
    /// The upstream is alive but asks us to slow down (429, or 503 with `Retry-After`):
    /// counts neither way.
    RateLimited,
}

impl From<Decision> for Outcome {
    /// `Retry` is a [`Failure`](Outcome::Failure), `RetryAfter` (a server-requested wait) is
    /// [`RateLimited`](Outcome::RateLimited), and `Stop` (a permanent error) is a
    /// [`Success`](Outcome::Success) for the breaker: the upstream answered.
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Retry => Outcome::Failure,
            Decision::RetryAfter(_) => Outcome::RateLimited,
            Decision::Stop => Outcome::Success,
        }
    }
}

/// Implemented by error types that know whether they are worth retrying, whatever the call.
///
/// There is deliberately no "retry every error" default: each error type decides, case by case.
/// When the answer depends on the call (a billed request that must not be replayed after a
/// timeout, while a read may be), write a [`Classifier`] for the call instead.
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
        type_name_of::<Self>()
    }

    /// What this failure says about the upstream's health. Defaults to
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

/// The classification of one call's failures, handed to the retry loop beside the operation
/// ([`Retry::run_with`](crate::Retry::run_with)).
///
/// Any `Fn(&E) -> Decision` is a classifier; so is [`ByErrorType`] for every `E: Classify`.
///
/// ```
/// use encore_resilience::{Classifier, Decision, Outcome};
///
/// /// A billed call: a timeout may have created the job, so it is not replayed, yet it says
/// /// the upstream is failing.
/// struct Billed { replay_ambiguous: bool }
///
/// impl Classifier<std::io::Error> for Billed {
///     fn classify(&self, e: &std::io::Error) -> Decision {
///         match e.kind() {
///             std::io::ErrorKind::ConnectionRefused => Decision::Retry, // never sent
///             std::io::ErrorKind::TimedOut if self.replay_ambiguous => Decision::Retry,
///             _ => Decision::Stop,
///         }
///     }
///     fn breaker_outcome(&self, e: &std::io::Error, decision: Decision) -> Outcome {
///         match e.kind() {
///             std::io::ErrorKind::TimedOut => Outcome::Failure,
///             _ => Outcome::from(decision),
///         }
///     }
/// }
/// let timeout = std::io::Error::from(std::io::ErrorKind::TimedOut);
/// let billed = Billed { replay_ambiguous: false };
/// assert_eq!(billed.classify(&timeout), Decision::Stop);
/// assert_eq!(billed.breaker_outcome(&timeout, Decision::Stop), Outcome::Failure);
/// ```
pub trait Classifier<E> {
    /// Retry, retry after a wait, or stop.
    fn classify(&self, error: &E) -> Decision;

    /// What the failure says about the upstream's health; `decision` is what
    /// [`classify`](Self::classify) answered. Defaults to [`Outcome::from`]`(decision)`.
    fn breaker_outcome(&self, error: &E, decision: Decision) -> Outcome {
        let _ = error;
        Outcome::from(decision)
    }

    /// A short name for the kind of failure, for log lines. Defaults to the error type's name.
    fn kind(&self, error: &E) -> Cow<'static, str> {
        let _ = error;
        type_name_of::<E>()
    }
}

impl<E, F: Fn(&E) -> Decision> Classifier<E> for F {
    fn classify(&self, error: &E) -> Decision {
        self(error)
    }
}

/// The classifier that asks the error itself ([`Classify`]): what [`Retry::run`](crate::Retry::run)
/// uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByErrorType;

impl<E: Classify> Classifier<E> for ByErrorType {
    fn classify(&self, error: &E) -> Decision {
        error.classify()
    }
    fn breaker_outcome(&self, error: &E, _decision: Decision) -> Outcome {
        error.breaker_outcome()
    }
    fn kind(&self, error: &E) -> Cow<'static, str> {
        error.kind()
    }
}

/// The last segment of a type's name (`Error` for `encore_clients::Error`).
fn type_name_of<T: ?Sized>() -> Cow<'static, str> {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    Cow::Borrowed(base.rsplit("::").next().unwrap_or(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_map_to_outcomes() {
        assert_eq!(Outcome::from(Decision::Retry), Outcome::Failure);
        assert_eq!(
            Outcome::from(Decision::RetryAfter(Duration::from_secs(1))),
            Outcome::RateLimited
        );
        assert_eq!(Outcome::from(Decision::Stop), Outcome::Success);
    }

    #[test]
    fn classifiers_from_closures_and_from_the_error_type() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let never = |_: &std::io::Error| Decision::Stop;
        assert_eq!(never.classify(&refused), Decision::Stop);
        assert_eq!(
            never.breaker_outcome(&refused, Decision::Stop),
            Outcome::Success
        );
        assert_eq!(Classifier::kind(&never, &refused), "Error");
        assert_eq!(ByErrorType.classify(&refused), Decision::Retry);
        assert_eq!(
            Classifier::kind(&ByErrorType, &refused),
            "io::Error(ConnectionRefused)"
        );
    }
}
