//! The retry loop: the seed plan's `retry_async`, bounded by a per-attempt timeout and a deadline.

use std::borrow::Cow;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use crate::policy::fmt_duration;
use crate::{
    AttemptTimedOut, BreakerPermit, CircuitBreaker, CircuitOpen, Classify, Decision, Outcome,
    RetryBudget, RetryError, RetryExhaustedError, RetryPolicy, StopReason,
};

/// What the operation is told about the attempt it is making.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// 1 for the first attempt, 2 for the first retry, …
    pub number: u32,
    /// The most attempts the policy allows.
    pub max_attempts: u32,
    /// How long this attempt may take: the policy's `attempt_timeout`, shrunk to what is left of
    /// the deadline. The loop enforces it; the operation may also pass it on (e.g. as a header).
    /// It runs from the attempt's scheduled start, so when the timer that started the attempt
    /// fired late, it is that much shorter.
    pub timeout: Duration,
}

impl Attempt {
    /// Whether this is a retry (not the first attempt).
    pub const fn is_retry(&self) -> bool {
        self.number > 1
    }
}

/// A retry that is about to happen, as seen by an [`on_retry`](Retry::on_retry) hook.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a, E> {
    /// The operation's name, when one was given.
    pub operation: Option<&'a str>,
    /// The attempt that just failed (1-based).
    pub attempt: u32,
    /// The most attempts the policy allows.
    pub max_attempts: u32,
    /// How long the loop will wait before the next attempt.
    pub delay: Duration,
    /// Whether `delay` was requested by the server (`Retry-After`) rather than computed.
    pub server_requested: bool,
    /// The failure.
    pub error: &'a E,
    /// Time since the first attempt started.
    pub elapsed: Duration,
}

type OnRetry<'a, E> = Box<dyn FnMut(&RetryEvent<'_, E>) + Send + 'a>;

/// A breaker, and how its refusal becomes the operation's error.
type BreakerWith<E> = (CircuitBreaker, fn(CircuitOpen) -> E);

/// A configured retry loop; run it with [`run`](Self::run) or [`run_with`](Self::run_with).
///
/// The per-attempt timeout sits inside the loop and the deadline outside it: each attempt gets
/// `min(attempt_timeout, deadline left)`, and no wait is started that would end past the deadline.
///
/// Two optional protections are shared by every call to one upstream: a [`RetryBudget`]
/// ([`budget`](Self::budget)) caps the extra load retries add, and a [`CircuitBreaker`]
/// ([`breaker`](Self::breaker)) stops calling an upstream that is down. Per attempt the order is:
/// breaker permission → attempt (with its timeout) → outcome reported to the breaker → before a
/// retry, the Retry-After ceiling, the deadline, the breaker again, then one budget token → wait.
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::{Retry, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let policy = RetryPolicy::default();
/// let mut calls = 0;
/// let value = Retry::new(&policy)
///     .name("demo.fetch")
///     .on_retry(|ev| println!("attempt {} failed, waiting {:?}", ev.attempt, ev.delay))
///     .run(|_attempt| {
///         calls += 1;
///         let fail = calls < 3;
///         async move {
///             if fail {
///                 Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
///             } else {
///                 Ok("done")
///             }
///         }
///     })
///     .await
///     .unwrap();
/// assert_eq!(value, "done");
/// # }
/// ```
pub struct Retry<'a, E> {
    policy: &'a RetryPolicy,
    operation: Option<Cow<'static, str>>,
    on_retry: Option<OnRetry<'a, E>>,
    seed: Option<u64>,
    budget: Option<RetryBudget>,
    breaker: Option<BreakerWith<E>>,
}

impl<E> fmt::Debug for Retry<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("policy", self.policy)
            .field("operation", &self.operation)
            .field("on_retry", &self.on_retry.is_some())
            .field("seed", &self.seed)
            .field("budget", &self.budget)
            .field("breaker", &self.breaker.as_ref().map(|(b, _)| b))
            .finish()
    }
}

impl<'a, E> Retry<'a, E> {
    /// A retry loop following `policy`.
    pub fn new(policy: &'a RetryPolicy) -> Self {
        Self {
            policy,
            operation: None,
            on_retry: None,
            seed: None,
            budget: None,
            breaker: None,
        }
    }

    /// Names the operation (e.g. `suno.generate`) in log lines and in the final error.
    pub fn name(mut self, operation: impl Into<Cow<'static, str>>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// Calls `hook` before every wait (the seed plan's `on_retry(attempt, exception)`).
    pub fn on_retry(mut self, hook: impl FnMut(&RetryEvent<'_, E>) + Send + 'a) -> Self {
        self.on_retry = Some(Box::new(hook));
        self
    }

    /// Draws jitter from `seed`, so the waits are reproducible.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Shares `budget` (a handle; clones share one bucket) with every other call to the same
    /// upstream: the first attempt deposits (once it is made: a call an open breaker refuses
    /// deposits nothing), each retry withdraws one token, and when none is left the loop stops
    /// with [`StopReason::BudgetExhausted`] instead of retrying. A token taken for a retry that
    /// the breaker then refuses is given back.
    pub fn budget(mut self, budget: &RetryBudget) -> Self {
        self.budget = Some(budget.clone());
        self
    }

    /// Shares `breaker` (a handle; clones share one state) with every other call to the same
    /// upstream: every attempt first asks it for permission and then reports its outcome
    /// (through [`Classify::breaker_outcome`], or [`Outcome::from`] the decision with
    /// [`run_with`](Self::run_with)).
    ///
    /// While the circuit is open no attempt is made and the loop stops with
    /// [`StopReason::CircuitOpen`]: after earlier attempts, with the last real error; before the
    /// first, with `attempts() == 0`, the operation not called, and the operation's error made
    /// from [`CircuitOpen`] (hence the bound). It displays as `suno.generate: circuit open for
    /// suno, next probe in 4.2s`.
    pub fn breaker(mut self, breaker: &CircuitBreaker) -> Self
    where
        E: From<CircuitOpen>,
    {
        self.breaker = Some((breaker.clone(), <E as From<CircuitOpen>>::from));
        self
    }

    /// Runs `op` until it succeeds, fails permanently, or the policy gives up; failures are
    /// classified by the error's [`Classify`] implementation.
    ///
    /// # Errors
    ///
    /// [`RetryError::Permanent`] when the first attempt fails permanently, otherwise
    /// [`RetryError::Exhausted`] with the last error, the attempt count, the elapsed time and why
    /// the loop stopped.
    pub fn run<T, F, Fut>(self, op: F) -> impl Future<Output = Result<T, RetryError<E>>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<AttemptTimedOut> + fmt::Display,
    {
        // A plain `fn` returning the loop's future (no `async` layer of its own, which would hold
        // `self` and `op` next to the loop's copy of them): nothing runs until it is polled.
        self.drive(
            op,
            E::classify,
            |e: &E| e.kind(),
            |e: &E, _| e.breaker_outcome(),
        )
    }

    /// Like [`run`](Self::run), with failures classified by `classify` instead of a trait.
    pub fn run_with<T, F, Fut, C>(
        self,
        op: F,
        classify: C,
    ) -> impl Future<Output = Result<T, RetryError<E>>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnMut(&E) -> Decision,
        E: From<AttemptTimedOut> + fmt::Display,
    {
        self.drive(
            op,
            classify,
            |_: &E| type_name_of::<E>(),
            |_: &E, decision| Outcome::from(decision),
        )
    }

    /// The loop. It schedules on absolute instants, so that timers firing a tick late do not add
    /// up: an attempt is bounded by `timeout_at(min(nominal start + attempt_timeout, deadline))`;
    /// one that timed out nominally ended at that bound (not when its timer fired), one that
    /// failed ended when it failed, and the next attempt nominally starts at that end plus the
    /// wait (`sleep_until`). On paused time timers fire exactly, so nominal and actual agree.
    fn drive<T, F, Fut, C, K, O>(
        self,
        mut op: F,
        mut classify: C,
        kind: K,
        outcome: O,
    ) -> impl Future<Output = Result<T, RetryError<E>>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnMut(&E) -> Decision,
        K: Fn(&E) -> Cow<'static, str>,
        O: Fn(&E, Decision) -> Outcome,
        E: From<AttemptTimedOut> + fmt::Display,
    {
        // Destructured here, outside the `async` block, so that the future holds each field once
        // (as it captured it) rather than `self` plus a moved-out copy. Only the jitter seed lives
        // in the future (not a `Backoff`): the nth wait is recomputed from it, drawn at the first
        // retry when none was given.
        let Retry {
            policy,
            operation,
            mut on_retry,
            mut seed,
            budget,
            breaker,
        } = self;
        async move {
            // What the attempts await next to is kept small (it is the bulk of the future): values
            // that are cheap to recompute (the deadline instant, the bound, the name) are, rather
            // than being held across the await.
            let start = Instant::now();
            let mut permit: Option<BreakerPermit> = match &breaker {
                None => None,
                Some((breaker, into_error)) => match breaker.try_acquire() {
                    Ok(permit) => Some(permit),
                    Err(open) => {
                        let reason = StopReason::CircuitOpen {
                            upstream: open.upstream.clone(),
                            retry_in: open.retry_in,
                        };
                        let op_name = name_of(operation.as_deref());
                        tracing::debug!(
                            operation = op_name,
                            reason = %reason,
                            "{op_name}: not called: {reason}"
                        );
                        return Err(RetryError::Exhausted(RetryExhaustedError {
                            last_error: into_error(open),
                            attempts: 0,
                            elapsed: start.elapsed(),
                            operation,
                            reason,
                        }));
                    }
                },
            };
            if let Some(budget) = &budget {
                budget.deposit();
            }
            let mut number = 0;
            // When the current attempt nominally starts.
            let mut attempt_start = start;
            loop {
                number += 1;
                let attempt = {
                    let bound = attempt_bound(policy, start, attempt_start);
                    let timeout = bound.saturating_duration_since(Instant::now());
                    tracing::trace!(
                        operation = name_of(operation.as_deref()),
                        attempt = number,
                        max_attempts = policy.max_attempts(),
                        timeout_ms = timeout.as_millis() as u64,
                        "attempt starts"
                    );
                    let attempt = Attempt {
                        number,
                        max_attempts: policy.max_attempts(),
                        timeout,
                    };
                    tokio::time::timeout_at(bound, op(attempt))
                };
                let (error, ended) = match attempt.await {
                    Ok(Ok(value)) => {
                        if let Some(permit) = permit.take() {
                            permit.record(Outcome::Success);
                        }
                        return Ok(value);
                    }
                    // An attempt cannot end, for the schedule, after its bound: an operation
                    // that enforces the bound itself (a client's own timeout) fails a tick
                    // late, and that lateness must not add up either.
                    Ok(Err(error)) => (
                        error,
                        Instant::now().min(attempt_bound(policy, start, attempt_start)),
                    ),
                    Err(_elapsed) => {
                        // Nominally over at its bound, however late the timer fired.
                        let bound = attempt_bound(policy, start, attempt_start);
                        let limit = bound.saturating_duration_since(attempt_start);
                        (E::from(AttemptTimedOut { limit }), bound)
                    }
                };
                let max_attempts = policy.max_attempts();
                let op_name = name_of(operation.as_deref());
                let decision = classify(&error);
                if let Some(permit) = permit.take() {
                    permit.record(outcome(&error, decision));
                }
                let mut elapsed = start.elapsed();
                tracing::trace!(operation = op_name, attempt = number, ?decision, error = %error, "attempt failed");
                let reason = match decision {
                    Decision::Stop if number == 1 => {
                        tracing::debug!(operation = op_name, error_kind = %kind(&error), error = %error, "permanent error, not retried");
                        return Err(RetryError::Permanent(error));
                    }
                    Decision::Stop => StopReason::Permanent,
                    _ if number >= max_attempts => {
                        if policy.enabled {
                            StopReason::AttemptsExhausted
                        } else {
                            StopReason::RetriesDisabled
                        }
                    }
                    _ => {
                        let seed = *seed.get_or_insert_with(rand::random);
                        let computed = policy
                            .backoff_seeded(seed)
                            .nth((number - 1) as usize)
                            .unwrap_or(policy.max_delay);
                        let (wait, server_requested) = match decision {
                            Decision::RetryAfter(requested) => (requested, true),
                            _ => (computed, false),
                        };
                        let left =
                            add_capped(start, policy.deadline).saturating_duration_since(ended);
                        if server_requested && wait > policy.max_retry_after {
                            StopReason::RetryAfterTooLong {
                                requested: wait,
                                limit: policy.max_retry_after,
                            }
                        } else if left.is_zero() || wait >= left {
                            StopReason::Deadline {
                                deadline: policy.deadline,
                                next_wait: (!left.is_zero()).then_some(wait),
                                left,
                            }
                        } else if let Some(open) = breaker
                            .as_ref()
                            .and_then(|(breaker, _)| breaker.refuses_after(wait))
                        {
                            // Still open when the wait would end: give up now instead of waiting.
                            StopReason::CircuitOpen {
                                upstream: open.upstream,
                                retry_in: open.retry_in,
                            }
                        } else if let Some(budget) = budget.as_ref().filter(|b| !b.try_withdraw()) {
                            StopReason::BudgetExhausted {
                                upstream: budget.upstream_arc(),
                                per_mille: budget.per_mille(),
                            }
                        } else {
                            let error_kind = kind(&error);
                            tracing::warn!(
                                operation = op_name,
                                attempt = number,
                                max_attempts,
                                delay_ms = wait.as_millis() as u64,
                                server_requested,
                                error_kind = %error_kind,
                                error = %error,
                                "{op_name}: attempt {number}/{max_attempts} failed, retrying in {:.1}s: {error_kind}: {error}",
                                wait.as_secs_f64(),
                            );
                            if let Some(hook) = on_retry.as_mut() {
                                hook(&RetryEvent {
                                    operation: operation.as_deref(),
                                    attempt: number,
                                    max_attempts,
                                    delay: wait,
                                    server_requested,
                                    error: &error,
                                    elapsed,
                                });
                            }
                            // `wait < left`: the next start is before the deadline.
                            attempt_start = ended + wait;
                            tokio::time::sleep_until(attempt_start).await;
                            match breaker.as_ref().map(|(breaker, _)| breaker.try_acquire()) {
                                None => continue,
                                Some(Ok(next)) => {
                                    permit = Some(next);
                                    continue;
                                }
                                Some(Err(open)) => {
                                    // The retry is not made after all: its token goes back.
                                    if let Some(budget) = &budget {
                                        budget.refund();
                                    }
                                    elapsed = start.elapsed();
                                    StopReason::CircuitOpen {
                                        upstream: open.upstream,
                                        retry_in: open.retry_in,
                                    }
                                }
                            }
                        }
                    }
                };
                let exhausted = RetryExhaustedError {
                    last_error: error,
                    attempts: number,
                    elapsed,
                    operation: operation.clone(),
                    reason,
                };
                tracing::error!(
                    operation = op_name,
                    attempts = number,
                    elapsed_ms = elapsed.as_millis() as u64,
                    reason = %exhausted.reason,
                    error_kind = %kind(&exhausted.last_error),
                    error = %exhausted.last_error,
                    "{op_name}: gave up after {number} attempts in {}: {}",
                    fmt_duration(elapsed),
                    exhausted.reason,
                );
                return Err(RetryError::Exhausted(exhausted));
            }
        }
    }
}

/// When the attempt that nominally starts at `attempt_start` must be over: `attempt_timeout`
/// after it, or the deadline if that comes first.
fn attempt_bound(policy: &RetryPolicy, start: Instant, attempt_start: Instant) -> Instant {
    add_capped(attempt_start, policy.attempt_timeout).min(add_capped(start, policy.deadline))
}

fn name_of(operation: Option<&str>) -> &str {
    operation.unwrap_or("call")
}

/// `at + d`, or about 30 years after `at` when that overflows (as tokio does for far timeouts).
fn add_capped(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(86_400 * 365 * 30))
}

fn type_name_of<E>() -> Cow<'static, str> {
    let full = std::any::type_name::<E>();
    Cow::Borrowed(full.rsplit("::").next().unwrap_or(full))
}

/// Runs `op` under `policy`, classifying failures with [`Classify`]: the seed plan's
/// `retry_async(func, …)`.
///
/// ```
/// use encore_resilience::{retry, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let policy = RetryPolicy::default();
/// let answer: Result<u32, _> = retry(&policy, |_| async { Ok::<_, std::io::Error>(42) }).await;
/// assert_eq!(answer.unwrap(), 42);
/// # }
/// ```
///
/// # Errors
///
/// See [`Retry::run`].
pub fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    op: F,
) -> impl Future<Output = Result<T, RetryError<E>>>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify + From<AttemptTimedOut> + fmt::Display,
{
    Retry::new(policy).run(op)
}

/// Adds [`with_retry`](RetryableFn::with_retry) to every `FnMut() -> impl Future<Output = Result>`:
/// the seed plan's `@with_retry` decorator, as an extension trait.
///
/// ```
/// use encore_resilience::{RetryPolicy, RetryableFn};
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
    pub fn name(mut self, operation: impl Into<Cow<'static, str>>) -> Self {
        self.retry = self.retry.name(operation);
        self
    }
    /// See [`Retry::on_retry`].
    pub fn on_retry(mut self, hook: impl FnMut(&RetryEvent<'_, E>) + Send + 'a) -> Self {
        self.retry = self.retry.on_retry(hook);
        self
    }
    /// See [`Retry::jitter_seed`].
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.retry = self.retry.jitter_seed(seed);
        self
    }
    /// See [`Retry::budget`].
    pub fn budget(mut self, budget: &RetryBudget) -> Self {
        self.retry = self.retry.budget(budget);
        self
    }
    /// See [`Retry::breaker`].
    pub fn breaker(mut self, breaker: &CircuitBreaker) -> Self
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
