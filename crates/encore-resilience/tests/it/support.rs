//! What the budget, breaker and overload tests share: an error type and a counting operation.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use encore_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, CircuitOpen};
use encore_resilience::budget::{RetryBudget, RetryBudgetConfig};
use encore_resilience::rate_limit::NoSlot;
use encore_resilience::{Attempt, AttemptTimedOut, Classify, Decision, Outcome};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TestError {
    #[error("http 503")]
    Transient,
    #[error("http 400")]
    Permanent,
    #[error("http 429")]
    RateLimited(Duration),
    /// A billed call that timed out: must not be replayed, yet the upstream is failing.
    #[error("billed call timed out")]
    BilledTimeout,
    #[error(transparent)]
    Timeout(#[from] AttemptTimedOut),
    #[error(transparent)]
    Open(#[from] CircuitOpen),
    #[error(transparent)]
    Throttled(#[from] NoSlot),
}

impl Classify for TestError {
    fn classify(&self) -> Decision {
        match self {
            TestError::Transient | TestError::Timeout(_) => Decision::Retry,
            TestError::RateLimited(wait) => Decision::RetryAfter(*wait),
            TestError::Permanent
            | TestError::BilledTimeout
            | TestError::Open(_)
            | TestError::Throttled(_) => Decision::Stop,
        }
    }
    fn kind(&self) -> Cow<'static, str> {
        Cow::Borrowed("TestError")
    }
    fn breaker_outcome(&self) -> Outcome {
        match self {
            TestError::BilledTimeout => Outcome::Failure,
            other => Outcome::from(other.classify()),
        }
    }
}

pub type BoxFuture = Pin<Box<dyn Future<Output = Result<&'static str, TestError>> + Send>>;

/// An operation that counts its calls and answers with `answer()` each time.
pub fn counting(
    calls: &Arc<AtomicU32>,
    answer: impl Fn() -> Result<&'static str, TestError> + Send + 'static,
) -> impl FnMut(Attempt) -> BoxFuture + Send + 'static {
    let calls = calls.clone();
    move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        let result = answer();
        Box::pin(async move { result })
    }
}

pub fn always(error: TestError) -> impl Fn() -> Result<&'static str, TestError> + Send + 'static {
    move || Err(error.clone())
}

pub fn count(calls: &AtomicU32) -> u32 {
    calls.load(Ordering::SeqCst)
}

pub fn budget(config: RetryBudgetConfig) -> RetryBudget {
    RetryBudget::new("suno", config).unwrap()
}

pub fn breaker(config: CircuitBreakerConfig) -> CircuitBreaker {
    CircuitBreaker::new("suno", config).unwrap()
}
