//! The client-side rate limit of one service: governor's GCRA read on tokio's clock, a FIFO
//! queue in front of it, and a hold that a server's `Retry-After` puts on every caller.
//!
//! governor decides (`check()` takes a slot or says when the next one is free); the waiting is
//! `tokio::time::sleep` on the time it names, and its clock is tokio's, so paused-time tests are
//! exact and deterministic. Callers take turns in arrival order (a fair `tokio::sync::Mutex`):
//! only the head of the queue sleeps until the next slot, so there is no thundering herd at each
//! slot and nobody is overtaken until their deadline runs out.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use encore_resilience::fmt_duration;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use crate::config::Service;
use crate::error::{Class, Error, ErrorKind};
use crate::service_policy::RateLimitConfig;

/// tokio's timers fire on millisecond ticks, rounding up: a wait is only started when it ends,
/// tick included, before the deadline.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// governor's time source, read from tokio's clock (which tests pause and advance).
#[derive(Clone, Debug)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// One service's rate limit, shared by every call to it (see
/// [`RateLimitConfig`](crate::RateLimitConfig)). A disabled limit admits everything at once.
pub(crate) struct Limiter {
    service: Service,
    config: RateLimitConfig,
    gcra: Option<Gcra>,
    clock: TokioClock,
    /// Whose turn it is to wait for the next slot (tokio's mutex is fair: FIFO).
    turn: tokio::sync::Mutex<()>,
    /// Callers waiting or holding the turn.
    queued: AtomicUsize,
    /// No request before this instant: the latest `Retry-After` a 429 named.
    hold: Mutex<Option<Instant>>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("service", &self.service)
            .field("config", &self.config)
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Decrements the queue length when a caller leaves it, however it leaves.
struct InQueue<'a>(&'a AtomicUsize);

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Limiter {
    /// A limiter for `service`; `config` must be valid (see
    /// [`RateLimitConfig::validate`](crate::RateLimitConfig::validate)).
    pub(crate) fn new(service: Service, config: &RateLimitConfig) -> Limiter {
        let clock = TokioClock {
            origin: Instant::now(),
        };
        let gcra = config
            .enabled
            .then(|| {
                let burst = std::num::NonZeroU32::new(config.burst)?;
                let quota = Quota::with_period(config.interval())?.allow_burst(burst);
                Some(RateLimiter::direct_with_clock(quota, clock.clone()))
            })
            .flatten();
        Limiter {
            service,
            config: config.clone(),
            gcra,
            clock,
            turn: tokio::sync::Mutex::new(()),
            queued: AtomicUsize::new(0),
            hold: Mutex::new(None),
        }
    }

    /// Whether requests are limited at all.
    pub(crate) fn is_enabled(&self) -> bool {
        self.gcra.is_some()
    }

    /// Holds every caller until `wait` from now (a server asked for it with `Retry-After`). A
    /// shorter hold than the one in force changes nothing. A no-op when disabled.
    pub(crate) fn hold_for(&self, wait: Duration) {
        if !self.is_enabled() || wait.is_zero() {
            return;
        }
        let until = Instant::now() + wait;
        let mut hold = self.hold.lock().unwrap_or_else(PoisonError::into_inner);
        if hold.is_none_or(|h| h < until) {
            *hold = Some(until);
            drop(hold);
            tracing::warn!(
                service = %self.service,
                hold_ms = wait.as_millis() as u64,
                "{}: the server asked to slow down; holding new requests for {}",
                self.service,
                fmt_duration(wait)
            );
        }
    }

    fn held_until(&self, now: Instant) -> Option<Instant> {
        self.hold
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .filter(|until| *until > now)
    }

    /// Waits for a request slot, never past `deadline`; returns how long it waited.
    ///
    /// `before_slot` runs right before each attempt to take a slot (the request path re-checks
    /// the circuit breaker there, so a call that queued while the circuit opened does not spend
    /// a slot); its error is returned as is.
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::Throttled`] error when no slot is free before the deadline (found out as
    /// early as possible: at once when even the queue ahead cannot be served in time), or the
    /// error of `before_slot`.
    pub(crate) async fn acquire(
        &self,
        deadline: Instant,
        before_slot: &mut (dyn FnMut() -> Result<(), Error> + Send),
    ) -> Result<Duration, Error> {
        let Some(gcra) = &self.gcra else {
            return Ok(Duration::ZERO);
        };
        let start = Instant::now();
        let ahead = self.queued.fetch_add(1, Ordering::Relaxed);
        let _in_queue = InQueue(&self.queued);
        // A lower bound of the wait: the hold, then every caller ahead of us beyond the burst.
        let beyond_burst = (ahead + 1).saturating_sub(self.config.burst as usize);
        let at_least = self
            .held_until(start)
            .map_or(Duration::ZERO, |until| until - start)
            + self.config.interval() * u32::try_from(beyond_burst).unwrap_or(u32::MAX);
        let left = deadline.saturating_duration_since(start);
        if !at_least.is_zero() && at_least + TIMER_TICK > left {
            return Err(self.no_slot(at_least, false, left, ahead));
        }
        let Ok(_turn) = tokio::time::timeout_at(
            deadline.checked_sub(TIMER_TICK).unwrap_or(deadline),
            self.turn.lock(),
        )
        .await
        else {
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            let queued = self.queued.load(Ordering::Relaxed).saturating_sub(1);
            return Err(self.no_slot(left, false, left, queued));
        };
        loop {
            before_slot()?;
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            let wait = match self.held_until(now) {
                Some(until) => until - now,
                None if left.is_zero() => TIMER_TICK,
                None => match gcra.check() {
                    Ok(()) => return Ok(now - start),
                    Err(not_until) => not_until.wait_time_from(self.clock.now()),
                },
            };
            let wait = wait.max(TIMER_TICK);
            if wait + TIMER_TICK > left {
                return Err(self.no_slot(wait, true, left, 0));
            }
            tracing::trace!(
                service = %self.service,
                wait_ms = wait.as_millis() as u64,
                "waiting for a rate-limit slot"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn no_slot(&self, next_in: Duration, exact: bool, left: Duration, queued: usize) -> Error {
        let reason = NoSlot {
            service: self.service,
            requests: self.config.requests,
            per: self.config.per,
            next_in,
            exact,
            left,
            queued,
        };
        tracing::warn!(
            service = %self.service,
            next_in_ms = next_in.as_millis() as u64,
            left_ms = left.as_millis() as u64,
            queued,
            "{reason}"
        );
        Error::new(
            ErrorKind::Throttled,
            Class::Transient {
                after: Some(next_in),
            },
            reason.to_string(),
        )
        .with_source(reason)
    }
}

/// Why the rate limit refused a call: the source of an [`ErrorKind::Throttled`] error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoSlot {
    pub(crate) service: Service,
    pub(crate) requests: u32,
    pub(crate) per: Duration,
    /// How long until a slot is free (a lower bound unless `exact`).
    pub(crate) next_in: Duration,
    pub(crate) exact: bool,
    /// What was left of the call's deadline.
    pub(crate) left: Duration,
    /// Callers queued ahead, when that is why.
    pub(crate) queued: usize,
}

impl fmt::Display for NoSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client-side rate limit for {} ({} requests per {}): no slot before the deadline, ",
            self.service,
            self.requests,
            fmt_duration(self.per)
        )?;
        if self.exact {
            write!(f, "the next is in {}", fmt_duration(self.next_in))?;
        } else {
            write!(
                f,
                "the next is at least {} away",
                fmt_duration(self.next_in)
            )?;
        }
        write!(f, " with {} left", fmt_duration(self.left))?;
        if self.queued > 0 {
            write!(f, " and {} calls queued ahead", self.queued)?;
        }
        f.write_str("; not sent")
    }
}

impl std::error::Error for NoSlot {}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::service_policy::{CREATOMATE_RATE_LIMIT, SUNO_RATE_LIMIT};

    fn ok() -> impl FnMut() -> Result<(), Error> + Send {
        || Ok(())
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_evenly_spaced_in_arrival_order() {
        let limiter = Arc::new(Limiter::new(Service::Suno, &SUNO_RATE_LIMIT));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..5u64 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(i)).await; // arrive in order
                limiter.acquire(far(), &mut ok()).await.unwrap();
                (i, start.elapsed())
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        let want: Vec<(u64, Duration)> = (0..5)
            .map(|i| (i, Duration::from_millis(500 * i)))
            .collect();
        // The first goes at once (the sleep above rounds up to the first 1 ms tick).
        for ((i, at), (_, expect)) in got.iter().zip(&want) {
            assert!(
                at.abs_diff(*expect) <= Duration::from_millis(1),
                "caller {i} at {at:?}, expected {expect:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_past_the_deadline_fails_at_once_naming_the_limit() {
        let limiter = Limiter::new(Service::Creatomate, &CREATOMATE_RATE_LIMIT);
        let deadline = Instant::now() + Duration::from_millis(100);
        limiter.acquire(deadline, &mut ok()).await.unwrap();
        let start = Instant::now();
        let err = limiter.acquire(deadline, &mut ok()).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO, "no waiting for nothing");
        assert_eq!(*err.kind(), ErrorKind::Throttled);
        assert_eq!(
            err.to_string(),
            "client-side rate limit for creatomate (30 requests per 10s): no slot before the \
             deadline, the next is in 333ms with 100ms left; not sent"
        );
        assert!(err.is_retryable() && !err.is_permanent());
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_queue_is_refused_before_waiting() {
        let limiter = Arc::new(Limiter::new(Service::Suno, &SUNO_RATE_LIMIT));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                limiter.acquire(far(), &mut ok()).await.unwrap();
            }));
        }
        tokio::task::yield_now().await;
        // The first went at once; three wait: at least 1.5 s before our slot, 1 s left.
        let start = Instant::now();
        let err = limiter
            .acquire(start + Duration::from_secs(1), &mut ok())
            .await
            .unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(
            err.to_string()
                .contains("the next is at least 1.5s away with 1s left and 3 calls queued ahead"),
            "{err}"
        );
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_delays_every_caller_and_disabled_limits_wait_for_nothing() {
        let limiter = Limiter::new(Service::Creatomate, &CREATOMATE_RATE_LIMIT);
        limiter.hold_for(Duration::from_secs(5));
        limiter.hold_for(Duration::from_secs(1)); // shorter: changes nothing
        let start = Instant::now();
        limiter.acquire(far(), &mut ok()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        let err = limiter
            .acquire(Instant::now() + Duration::from_millis(200), &mut ok())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the next is in 333ms"), "{err}");

        let off = Limiter::new(
            Service::Creatomate,
            &RateLimitConfig {
                enabled: false,
                ..CREATOMATE_RATE_LIMIT
            },
        );
        off.hold_for(Duration::from_secs(5));
        let start = Instant::now();
        for _ in 0..100 {
            off.acquire(start, &mut ok()).await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn before_slot_can_refuse_the_call() {
        let limiter = Limiter::new(Service::Suno, &SUNO_RATE_LIMIT);
        let mut calls = 0;
        let mut refuse = || {
            calls += 1;
            Err(Error::new(ErrorKind::Config, Class::Permanent, "no"))
        };
        let err = limiter.acquire(far(), &mut refuse).await.unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Config);
        assert_eq!(calls, 1);
        // The refused call took no slot.
        let start = Instant::now();
        limiter.acquire(far(), &mut ok()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
