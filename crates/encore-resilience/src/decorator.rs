//! The seed plan's `@with_retry` decorator, as an extension trait on plain async functions.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use crate::breaker::{CircuitBreaker, CircuitOpen};
use crate::budget::RetryBudget;
use crate::{AttemptTimedOut, Classify, Retry, RetryError, RetryEvent, RetryPolicy};

/// Adds [`with_retry`](RetryableFn::with_retry) to every `FnMut() -> impl Future<Output = Result>`:
/// the seed plan's `@with_retry` decorator. It is [`Retry`] underneath.
///
/// ```
/// use encore_resilience::RetryPolicy;
/// use encore_resilience::decorator::RetryableFn;
///
/// async fn fetch_credits() -> Result<u64, std::io::Error> {
///     Ok(120)
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let policy = RetryPolicy::default();
/// let credits = fetch_credits.with_retry(&policy).name("suno.credits").await.unwrap();
/// assert_eq!(credits, 120);
/// # }
/// ```
pub trait RetryableFn<T, E, Fut>: FnMut() -> Fut + Sized
where
    Fut: Future<Output = Result<T, E>>,
{
    /// Wraps this function in a retry loop following `policy`; `.await` it to run.
    fn with_retry(self, policy: &RetryPolicy) -> WithRetry<'_, Self, E>;
}

impl<T, E, Fut, F> RetryableFn<T, E, Fut> for F
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    fn with_retry(self, policy: &RetryPolicy) -> WithRetry<'_, Self, E> {
        WithRetry {
            retry: Retry::new(policy),
            op: self,
        }
    }
}

/// A function wrapped in a retry loop, made by [`RetryableFn::with_retry`]. `.await` it, or call
/// [`call`](Self::call) where a boxed future is unwanted.
pub struct WithRetry<'a, F, E> {
    retry: Retry<'a, E>,
    op: F,
}

impl<F, E> fmt::Debug for WithRetry<'_, F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithRetry")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<'a, F, E> WithRetry<'a, F, E> {
    /// See [`Retry::name`].
    pub fn name(mut self, operation: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.retry = self.retry.name(operation);
        self
    }
    /// See [`Retry::on_retry`].
    pub fn on_retry(mut self, hook: impl FnMut(&RetryEvent<'_, E>) + Send + 'a) -> Self
    where
        E: 'a,
    {
        self.retry = self.retry.on_retry(hook);
        self
    }
    /// See [`Retry::jitter_seed`].
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.retry = self.retry.jitter_seed(seed);
        self
    }
    /// See [`Retry::budget`].
    pub fn budget(mut self, budget: &'a RetryBudget) -> Self {
        self.retry = self.retry.budget(budget);
        self
    }
    /// See [`Retry::breaker`].
    pub fn breaker(mut self, breaker: &'a CircuitBreaker) -> Self
    where
        E: From<CircuitOpen>,
    {
        self.retry = self.retry.breaker(breaker);
        self
    }

    /// Runs the wrapped function in the retry loop.
    ///
    /// # Errors
    ///
    /// See [`Retry::run`].
    pub fn call<T, Fut>(self) -> impl Future<Output = Result<T, RetryError<E>>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<AttemptTimedOut> + fmt::Display,
    {
        let mut op = self.op;
        self.retry.run(move |_| op())
    }
}

impl<'a, F, E, T, Fut> IntoFuture for WithRetry<'a, F, E>
where
    F: FnMut() -> Fut + Send + 'a,
    Fut: Future<Output = Result<T, E>> + Send + 'a,
    T: Send + 'a,
    E: Classify + From<AttemptTimedOut> + fmt::Display + Send + 'a,
{
    type Output = Result<T, RetryError<E>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.call())
    }
}
