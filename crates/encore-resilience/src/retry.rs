//! The retry loop: the seed plan's `retry_async`, owning the whole attempt — admission (circuit
//! breaker, rate-limit slot), the attempt under its timeout, classification, the decision, the
//! wait — inside one deadline.

use std::borrow::Cow;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{CircuitBreaker, CircuitOpen, Pass};
use crate::budget::RetryBudget;
use crate::fmt::GaveUp;
use crate::rate_limit::{NoSlot, RateLimiter};
use crate::step::{Facts, Step, next_step};
use crate::{
    AttemptTimedOut, ByErrorType, Classifier, Classify, Decision, Outcome, RetryError,
    RetryExhaustedError, RetryPolicy, StopReason, fmt_duration,
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
    /// It runs from the attempt's scheduled start (or from when its rate-limit slot came), so
    /// when the timer that started the attempt fired late, it is that much shorter.
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
    /// How long the failed attempt took.
    pub took: Duration,
}

/// Everything that happens in a call, as seen by an [`on_event`](Retry::on_event) hook: the
/// material for metrics and timelines.
///
/// Every attempt that is made ends in exactly one of [`Succeeded`](Event::Succeeded),
/// [`Retrying`](Event::Retrying) or [`Stopped`](Event::Stopped). Every attempt that a
/// protection does not let through (the breaker, the rate limiter, the retry budget) is one
/// [`Refused`](Event::Refused): nothing was sent for it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a, E> {
    /// Attempt `attempt` waited `waited` for a rate-limit slot before it was sent.
    SlotWaited {
        /// The attempt (1-based).
        attempt: u32,
        /// How long it queued.
        waited: Duration,
    },
    /// Attempt `attempt` was not made: a protection refused it (`reason` says which).
    Refused {
        /// The attempt that was not made (1-based).
        attempt: u32,
        /// [`StopReason::CircuitOpen`], [`StopReason::Throttled`] or
        /// [`StopReason::BudgetExhausted`].
        reason: &'a StopReason,
    },
    /// Attempt `attempt` succeeded after `took`.
    Succeeded {
        /// The attempt (1-based).
        attempt: u32,
        /// How long it took.
        took: Duration,
    },
    /// An attempt failed and is retried (what [`on_retry`](Retry::on_retry) hooks see).
    Retrying(&'a RetryEvent<'a, E>),
    /// Attempt `attempt` failed after `took` and the loop stops: `reason`
    /// ([`StopReason::Permanent`] for an error that is not retried).
    Stopped {
        /// The attempt (1-based).
        attempt: u32,
        /// How long it took.
        took: Duration,
        /// The failure.
        error: &'a E,
        /// Why there is no further attempt.
        reason: &'a StopReason,
    },
}

type OnEvent<'a, E> = Box<dyn FnMut(&Event<'_, E>) + Send + 'a>;
/// A breaker, and how its refusal becomes the operation's error.
type BreakerWith<'a, E> = (&'a CircuitBreaker, fn(CircuitOpen) -> E);
/// A rate limiter, and how its refusal becomes the operation's error.
type LimiterWith<'a, E> = (&'a dyn RateLimiter, fn(NoSlot) -> E);

/// A configured retry loop; run it with [`run`](Self::run) or [`run_with`](Self::run_with).
///
/// Per attempt, in this order, all inside the deadline:
///
/// 1. **admission** — the circuit breaker's permission, and a slot of the rate limit, waited for
///    if need be (a request still queued is not sent, so this wait is outside the attempt's
///    timeout; the breaker is asked again if it opens meanwhile);
/// 2. **the attempt**, bounded by `min(attempt_timeout, deadline left)`;
/// 3. **classification** by the [`Classifier`]; the outcome goes to the breaker, and a
///    rate-limit wait the server asked for holds every caller of the rate limit;
/// 4. **the decision** ([`step::next_step`](crate::step::next_step): attempts left,
///    `Retry-After` ceiling, the deadline, the breaker), then one token of the retry budget;
/// 5. **the wait**, then the next attempt.
///
/// Attempts and waits are scheduled on absolute instants, so timer lateness does not add up.
/// Everything is reported to an [`on_event`](Self::on_event) hook; every retry is logged at
/// `WARN` and giving up at `ERROR`.
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
    /// The hooks of `on_retry` and `on_event`, in one (one box, one word pair in the future).
    on_event: Option<OnEvent<'a, E>>,
    seed: Option<u64>,
    budget: Option<&'a RetryBudget>,
    breaker: Option<BreakerWith<'a, E>>,
    limiter: Option<LimiterWith<'a, E>>,
}

impl<E> fmt::Debug for Retry<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("policy", self.policy)
            .field("operation", &self.operation)
            .field("hooks", &self.on_event.is_some())
            .field("seed", &self.seed)
            .field("budget", &self.budget)
            .field("breaker", &self.breaker.map(|(b, _)| b))
            .field("limiter", &self.limiter.map(|(l, _)| l))
            .finish()
    }
}

impl<'a, E> Retry<'a, E> {
    /// A retry loop following `policy`.
    pub fn new(policy: &'a RetryPolicy) -> Self {
        Self {
            policy,
            operation: None,
            on_event: None,
            seed: None,
            budget: None,
            breaker: None,
            limiter: None,
        }
    }

    /// Names the operation (e.g. `suno.generate`) in log lines and in the final error.
    pub fn name(mut self, operation: impl Into<Cow<'static, str>>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// Calls `hook` before every wait (the seed plan's `on_retry(attempt, exception)`).
    pub fn on_retry(self, mut hook: impl FnMut(&RetryEvent<'_, E>) + Send + 'a) -> Self
    where
        E: 'a,
    {
        self.on_event(move |event| {
            if let Event::Retrying(retry) = event {
                hook(retry);
            }
        })
    }

    /// Calls `hook` with every [`Event`] of the call: each attempt's outcome, each wait for a
    /// rate-limit slot, each refusal by a protection. Hooks added earlier (and `on_retry`'s)
    /// are called first.
    pub fn on_event(mut self, hook: impl FnMut(&Event<'_, E>) + Send + 'a) -> Self
    where
        E: 'a,
    {
        self.on_event = Some(match self.on_event.take() {
            None => Box::new(hook),
            Some(mut earlier) => {
                let mut hook = hook;
                Box::new(move |event: &Event<'_, E>| {
                    earlier(event);
                    hook(event);
                })
            }
        });
        self
    }

    /// Draws jitter from `seed`, so the waits are reproducible.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Shares `budget` with every other call to the same upstream: the first attempt deposits
    /// (once it is admitted: a call a protection refuses deposits nothing), each retry
    /// withdraws one token, and when none is left the loop stops with
    /// [`StopReason::BudgetExhausted`] instead of retrying. A token taken for a retry that a
    /// protection then refuses is given back. Deposits take no lock.
    pub fn budget(mut self, budget: &'a RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Shares `breaker` with every other call to the same upstream: every attempt first asks
    /// it for permission and then reports its outcome (through
    /// [`Classifier::breaker_outcome`]).
    ///
    /// While the circuit is open no attempt is made and the loop stops with
    /// [`StopReason::CircuitOpen`]: after earlier attempts, with the last real error; before the
    /// first, with `attempts() == 0`, the operation not called, and the operation's error made
    /// from [`CircuitOpen`] (hence the bound). It displays as `suno.generate: circuit open for
    /// suno, next probe in 4.2s`.
    pub fn breaker(mut self, breaker: &'a CircuitBreaker) -> Self
    where
        E: From<CircuitOpen>,
    {
        self.breaker = Some((breaker, <E as From<CircuitOpen>>::from));
        self
    }

    /// Takes a slot of `limiter` before every attempt, waiting for it within the deadline (the
    /// wait is not part of the attempt's timeout: the request was not sent yet). When no slot
    /// comes before the deadline, the loop stops with [`StopReason::Throttled`]: before the
    /// first attempt with `attempts() == 0` and the operation's error made from [`NoSlot`]
    /// (hence the bound), after earlier attempts with the last real error. A failure the
    /// classifier calls rate limiting, with a server-requested wait, holds every caller of the
    /// limiter until that wait (at most `max_retry_after`) is over.
    pub fn rate_limiter(mut self, limiter: &'a dyn RateLimiter) -> Self
    where
        E: From<NoSlot>,
    {
        self.limiter = Some((limiter, <E as From<NoSlot>>::from));
        self
    }

    /// Runs `op` until it succeeds, fails permanently, or the policy gives up; failures are
    /// classified by the error's [`Classify`] implementation ([`ByErrorType`]).
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
        self.run_with(op, ByErrorType)
    }

    /// Like [`run`](Self::run), with failures classified by `classifier`: a [`Classifier`]
    /// object that belongs to the call (e.g. "this endpoint may not be replayed after a
    /// timeout"), or any `Fn(&E) -> Decision`.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub fn run_with<T, F, Fut, C>(
        self,
        op: F,
        classifier: C,
    ) -> impl Future<Output = Result<T, RetryError<E>>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classifier<E>,
        E: From<AttemptTimedOut> + fmt::Display,
    {
        // A plain `fn` returning the loop's future (no `async` layer of its own, which would hold
        // `self` and `op` next to the loop's copy of them): nothing runs until it is polled.
        self.drive(op, classifier)
    }

    /// The loop. It schedules on absolute instants, so that timers firing a tick late do not add
    /// up: an attempt is bounded by `timeout_at(min(nominal start + attempt_timeout, deadline))`;
    /// one that timed out nominally ended at that bound (not when its timer fired), one that
    /// failed ended when it failed, and the next attempt nominally starts at that end plus the
    /// wait (`sleep_until`), or when its rate-limit slot came if it had to queue. On paused time
    /// timers fire exactly, so nominal and actual agree.
    fn drive<T, F, Fut, C>(
        self,
        mut op: F,
        classifier: C,
    ) -> impl Future<Output = Result<T, RetryError<E>>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classifier<E>,
        E: From<AttemptTimedOut> + fmt::Display,
    {
        // Destructured here, outside the `async` block, so that the future holds each field once.
        // Only the jitter seed lives in the future (not a `Backoff`): the nth wait is recomputed
        // from it, drawn at the first retry when none was given.
        let Retry {
            policy,
            operation,
            mut on_event,
            mut seed,
            budget,
            breaker,
            limiter,
        } = self;
        async move {
            // What the awaits below hold is kept small (it is the bulk of the future): each
            // step's temporaries live in a block that ends before the next await, the last
            // error lives only while the next attempt is waited for and admitted, and values
            // that are cheap to recompute (the deadline instant, the name) are.
            let start = Instant::now();
            let max_attempts = policy.max_attempts();
            let mut number = 1;
            // When the current attempt nominally starts.
            let mut attempt_start = start;

            // 1. Admission of the first attempt: nothing was made if it is refused.
            let mut pass = match admit(breaker, limiter, start, policy).await {
                Ok((pass, waited)) => {
                    if !waited.is_zero() {
                        attempt_start = Instant::now();
                        emit(&mut on_event, &Event::SlotWaited { attempt: 1, waited });
                    }
                    pass
                }
                Err(refusal) => {
                    let reason = refusal.reason();
                    emit(
                        &mut on_event,
                        &Event::Refused {
                            attempt: 1,
                            reason: &reason,
                        },
                    );
                    let error = refusal.into_error(breaker, limiter);
                    return Err(give_up(
                        operation,
                        &classifier,
                        error,
                        0,
                        start.elapsed(),
                        reason,
                    ));
                }
            };
            if let Some(budget) = budget {
                budget.deposit_at(start);
            }

            loop {
                // (In a block, so that only the error is held across the wait below.)
                let (error, resume_at) = {
                    // 2. The attempt, bounded by its timeout and the deadline, and 3. its
                    // classification, with the outcome to the breaker.
                    let (error, ended, decision) = {
                        let bound = add_capped(attempt_start, policy.attempt_timeout)
                            .min(add_capped(start, policy.deadline));
                        let attempt = {
                            let timeout = bound.saturating_duration_since(Instant::now());
                            tracing::trace!(
                                operation = name_of(operation.as_deref()),
                                attempt = number,
                                max_attempts,
                                timeout_ms = timeout.as_millis() as u64,
                                "attempt starts"
                            );
                            Attempt {
                                number,
                                max_attempts,
                                timeout,
                            }
                        };
                        let (error, ended) = match tokio::time::timeout_at(bound, op(attempt)).await
                        {
                            Ok(Ok(value)) => {
                                if let Some(pass) = pass.take() {
                                    pass.record(Outcome::Success);
                                }
                                emit(
                                    &mut on_event,
                                    &Event::Succeeded {
                                        attempt: number,
                                        took: attempt_start.elapsed(),
                                    },
                                );
                                return Ok(value);
                            }
                            // An attempt cannot end, for the schedule, after its bound: an
                            // operation that enforces the bound itself fails a tick late, and that
                            // lateness must not add up either.
                            Ok(Err(error)) => (error, Instant::now().min(bound)),
                            // Nominally over at its bound, however late the timer fired.
                            Err(_elapsed) => (
                                E::from(AttemptTimedOut {
                                    limit: bound.saturating_duration_since(attempt_start),
                                }),
                                bound,
                            ),
                        };
                        let decision = classifier.classify(&error);
                        if let Some(pass) = pass.take() {
                            pass.record(classifier.breaker_outcome(&error, decision));
                        }
                        (error, ended, decision)
                    };

                    // 4. The decision, then the budget.
                    let resume_at = {
                        // The upstream asked to slow down and said until when: every caller of the
                        // limiter waits.
                        tracing::trace!(operation = name_of(operation.as_deref()), attempt = number, ?decision, error = %error, "attempt failed");
                        if let Some((limiter, _)) = limiter
                            && let Decision::RetryAfter(wait) = decision
                            && classifier.breaker_outcome(&error, decision) == Outcome::RateLimited
                        {
                            limiter
                                .hold_until(Instant::now() + wait.min(policy.max_retry_after))
                                .await;
                        }
                        let took = ended.saturating_duration_since(attempt_start);
                        // (After the last attempt there is none: `nth` runs off the schedule,
                        // and `next_step` stops before it looks at the wait.)
                        let backoff = if decision == Decision::Retry {
                            let seed = *seed.get_or_insert_with(rand::random);
                            policy
                                .backoff_seeded(seed)
                                .nth((number - 1) as usize)
                                .unwrap_or(policy.max_delay)
                        } else {
                            Duration::ZERO
                        };
                        // (A permanent error stops before `next_step` looks at the breaker.)
                        let open = breaker.and_then(|(breaker, _)| breaker.open_now());
                        let left =
                            add_capped(start, policy.deadline).saturating_duration_since(ended);
                        let mut facts = Facts::new(number, decision, backoff, left);
                        if let Some(open) = &open {
                            facts = facts.with_circuit(open);
                        }
                        let step = match next_step(policy, &facts) {
                            Step::Retry {
                                wait,
                                server_requested,
                            } => match budget.filter(|b| !b.try_withdraw()) {
                                Some(budget) => Step::Stop(StopReason::BudgetExhausted {
                                    upstream: budget.upstream_arc(),
                                    per_mille: budget.per_mille(),
                                }),
                                None => Step::Retry {
                                    wait,
                                    server_requested,
                                },
                            },
                            stop @ Step::Stop(_) => stop,
                        };
                        match step {
                            Step::Stop(reason) => {
                                emit(
                                    &mut on_event,
                                    &Event::Stopped {
                                        attempt: number,
                                        took,
                                        error: &error,
                                        reason: &reason,
                                    },
                                );
                                if reason == StopReason::Permanent && number == 1 {
                                    let op_name = name_of(operation.as_deref());
                                    tracing::debug!(operation = op_name, error_kind = %classifier.kind(&error), error = %error, "permanent error, not retried");
                                    return Err(RetryError::Permanent(error));
                                }
                                if reason.is_refusal() {
                                    emit(
                                        &mut on_event,
                                        &Event::Refused {
                                            attempt: number + 1,
                                            reason: &reason,
                                        },
                                    );
                                }
                                return Err(give_up(
                                    operation,
                                    &classifier,
                                    error,
                                    number,
                                    start.elapsed(),
                                    reason,
                                ));
                            }
                            Step::Retry {
                                wait,
                                server_requested,
                            } => {
                                let op_name = name_of(operation.as_deref());
                                let error_kind = classifier.kind(&error);
                                tracing::warn!(
                                    operation = op_name,
                                    attempt = number,
                                    max_attempts,
                                    delay_ms = wait.as_millis() as u64,
                                    server_requested,
                                    error_kind = %error_kind,
                                    error = %error,
                                    "{op_name}: attempt {number}/{max_attempts} failed, retrying in {}: {error_kind}: {error}",
                                    fmt_duration(wait),
                                );
                                let event = RetryEvent {
                                    operation: operation.as_deref(),
                                    attempt: number,
                                    max_attempts,
                                    delay: wait,
                                    server_requested,
                                    error: &error,
                                    elapsed: ended.saturating_duration_since(start),
                                    took,
                                };
                                emit(&mut on_event, &Event::Retrying(&event));
                                // `wait < left`: the next start is before the deadline.
                                ended + wait
                            }
                        }
                    };
                    (error, resume_at)
                };

                // 5. The wait, then the next attempt's admission; refused, the call stops with
                // this attempt's error and the retry's budget token goes back.
                attempt_start = resume_at;
                tokio::time::sleep_until(resume_at).await;
                number += 1;
                pass = match admit(breaker, limiter, start, policy).await {
                    Ok((pass, waited)) => {
                        if !waited.is_zero() {
                            attempt_start = Instant::now();
                            emit(
                                &mut on_event,
                                &Event::SlotWaited {
                                    attempt: number,
                                    waited,
                                },
                            );
                        }
                        pass
                    }
                    Err(refusal) => {
                        let reason = refusal.reason();
                        emit(
                            &mut on_event,
                            &Event::Refused {
                                attempt: number,
                                reason: &reason,
                            },
                        );
                        if let Some(budget) = budget {
                            budget.refund();
                        }
                        return Err(give_up(
                            operation,
                            &classifier,
                            error,
                            number - 1,
                            start.elapsed(),
                            reason,
                        ));
                    }
                };
            }
        }
    }
}

/// The admission of one attempt: a slot of the rate limit (boxed: only rate-limited calls pay
/// for the queue's state), then the breaker's permission. Returns the breaker's pass, to report
/// the outcome with, and how long the slot took.
async fn admit<'b, E>(
    breaker: Option<BreakerWith<'b, E>>,
    limiter: Option<LimiterWith<'b, E>>,
    start: Instant,
    policy: &RetryPolicy,
) -> Result<(Option<Pass<'b>>, Duration), Refusal> {
    let breaker = breaker.map(|(b, _)| b);
    let waited = match limiter {
        None => Duration::ZERO,
        Some((limiter, _)) => {
            let deadline = add_capped(start, policy.deadline);
            Box::pin(queue(limiter, breaker, deadline)).await?
        }
    };
    let pass = match breaker {
        None => None,
        Some(breaker) => Some(breaker.pass().map_err(Refusal::Open)?),
    };
    Ok((pass, waited))
}

fn emit<E>(hook: &mut Option<OnEvent<'_, E>>, event: &Event<'_, E>) {
    if let Some(hook) = hook.as_mut() {
        hook(event);
    }
}

/// Why admission failed.
enum Refusal {
    Open(CircuitOpen),
    NoSlot(NoSlot),
}

impl Refusal {
    fn reason(&self) -> StopReason {
        match self {
            Refusal::Open(open) => StopReason::CircuitOpen {
                upstream: open.upstream.clone(),
                retry_in: open.retry_in,
            },
            Refusal::NoSlot(no_slot) => StopReason::Throttled(no_slot.clone()),
        }
    }

    /// The operation's error for a call refused before its first attempt, made by the
    /// conversion the refusing protection was registered with.
    fn into_error<E>(
        self,
        breaker: Option<BreakerWith<'_, E>>,
        limiter: Option<LimiterWith<'_, E>>,
    ) -> E {
        match (self, breaker, limiter) {
            (Refusal::Open(open), Some((_, into)), _) => into(open),
            (Refusal::NoSlot(no_slot), _, Some((_, into))) => into(no_slot),
            _ => unreachable!("only a registered protection refuses"),
        }
    }
}

/// Waits for a slot of `limiter`, leaving the queue when `breaker` opens meanwhile.
///
/// With a breaker, it is asked first without taking a probe slot (an open circuit fails fast
/// instead of queueing), and again whenever it opens while the call waits; the probe slot
/// itself is taken once the rate-limit slot is there.
async fn queue(
    limiter: &dyn RateLimiter,
    breaker: Option<&CircuitBreaker>,
    deadline: Instant,
) -> Result<Duration, Refusal> {
    // A slot the caller took ahead of the call (`with_slot_taken`): the breaker is asked by
    // the admission all the same.
    if crate::rate_limit::take_prepaid(limiter) {
        return Ok(Duration::ZERO);
    }
    let Some(breaker) = breaker else {
        return limiter.acquire(deadline).await.map_err(Refusal::NoSlot);
    };
    let mut acquire = limiter.acquire(deadline);
    loop {
        let mut opened = pin!(breaker.opened());
        opened.as_mut().enable();
        breaker.check().map_err(Refusal::Open)?;
        let slot = poll_fn(|cx| {
            if let Poll::Ready(slot) = acquire.as_mut().poll(cx) {
                return Poll::Ready(Some(slot));
            }
            opened.as_mut().poll(cx).map(|()| None)
        })
        .await;
        if let Some(slot) = slot {
            return slot.map_err(Refusal::NoSlot);
        }
    }
}

/// The error the loop gives up with, logged at `ERROR`.
fn give_up<E: fmt::Display, C: Classifier<E>>(
    operation: Option<Cow<'static, str>>,
    classifier: &C,
    last_error: E,
    attempts: u32,
    elapsed: Duration,
    reason: StopReason,
) -> RetryError<E> {
    let op_name = name_of(operation.as_deref());
    if attempts == 0 {
        tracing::debug!(operation = op_name, reason = %reason, "{op_name}: not called: {reason}");
    } else {
        tracing::error!(
            operation = op_name,
            attempts,
            elapsed_ms = elapsed.as_millis() as u64,
            reason = %reason,
            error_kind = %classifier.kind(&last_error),
            error = %last_error,
            "{op_name}: {}: {reason}",
            GaveUp { attempts, elapsed },
        );
    }
    RetryError::Exhausted(RetryExhaustedError {
        last_error,
        attempts,
        elapsed,
        operation,
        reason,
    })
}

fn name_of(operation: Option<&str>) -> &str {
    operation.unwrap_or("call")
}

/// `at + d`, or about 30 years after `at` when that overflows (as tokio does for far timeouts).
fn add_capped(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(86_400 * 365 * 30))
}
