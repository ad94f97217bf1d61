//! The in-process rate limiter: governor's GCRA read on tokio's clock, a FIFO queue in front of
//! it, and a hold that a server's `Retry-After` puts on every caller.
//!
//! governor decides (`check()` takes a slot or says when the next one is free); the waiting is
//! `tokio::time::sleep` on the time it names, and its clock is tokio's, so paused-time tests are
//! exact and deterministic. Callers take turns in arrival order (a fair `tokio::sync::Mutex`):
//! only the head of the queue sleeps until the next slot, so there is no thundering herd at each
//! slot and nobody is overtaken until their deadline runs out.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Gcra};
use tokio::time::Instant;

use super::{BoxFuture, NoSlot, RateLimitConfig, RateLimiter};
use crate::{PolicyError, fmt_duration};

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

type Cell = Gcra<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// A [`RateLimiter`] whose state lives in this process: every call to the upstream in the
/// process shares it (make one per upstream at start-up). A disabled config admits everything at
/// once and holds nothing.
pub struct LocalRateLimiter {
    upstream: Arc<str>,
    config: RateLimitConfig,
    gcra: Option<Cell>,
    clock: TokioClock,
    /// Whose turn it is to wait for the next slot (tokio's mutex is fair: FIFO).
    turn: tokio::sync::Mutex<()>,
    /// Callers waiting or holding the turn.
    queued: AtomicUsize,
    /// No request before this instant: the latest `Retry-After` a 429 named.
    hold: Mutex<Option<Instant>>,
}

impl fmt::Debug for LocalRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRateLimiter")
            .field("upstream", &self.upstream)
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

impl LocalRateLimiter {
    /// A limiter for `upstream` (a name for messages, e.g. `suno`).
    ///
    /// # Errors
    ///
    /// The [`PolicyError`] of [`RateLimitConfig::validate`].
    pub fn new(
        upstream: impl Into<Arc<str>>,
        config: &RateLimitConfig,
    ) -> Result<LocalRateLimiter, PolicyError> {
        config.validate()?;
        let clock = TokioClock {
            origin: Instant::now(),
        };
        let gcra = config
            .enabled
            .then(|| {
                let burst = NonZeroU32::new(config.burst)?;
                let quota = Quota::with_period(config.interval())?.allow_burst(burst);
                Some(Gcra::direct_with_clock(quota, clock.clone()))
            })
            .flatten();
        Ok(LocalRateLimiter {
            upstream: upstream.into(),
            config: config.clone(),
            gcra,
            clock,
            turn: tokio::sync::Mutex::new(()),
            queued: AtomicUsize::new(0),
            hold: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    fn held_until(&self, now: Instant) -> Option<Instant> {
        self.hold
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .filter(|until| *until > now)
    }

    fn hold(&self, until: Instant) {
        if self.gcra.is_none() {
            return;
        }
        let mut hold = self.hold.lock().unwrap_or_else(PoisonError::into_inner);
        if hold.is_none_or(|h| h < until) {
            *hold = Some(until);
            drop(hold);
            let wait = until.saturating_duration_since(Instant::now());
            tracing::warn!(
                upstream = %self.upstream,
                hold_ms = wait.as_millis() as u64,
                "{}: the server asked to slow down; holding new requests for {}",
                self.upstream,
                fmt_duration(wait)
            );
        }
    }

    async fn take(&self, deadline: Instant) -> Result<Duration, NoSlot> {
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
                upstream = %self.upstream,
                wait_ms = wait.as_millis() as u64,
                "waiting for a rate-limit slot"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn no_slot(&self, next_in: Duration, exact: bool, left: Duration, queued: usize) -> NoSlot {
        let refusal = NoSlot::new(
            self.upstream.clone(),
            (self.config.requests, self.config.per),
            next_in,
            exact,
            left,
        )
        .with_queued(queued);
        tracing::warn!(
            upstream = %self.upstream,
            next_in_ms = next_in.as_millis() as u64,
            left_ms = left.as_millis() as u64,
            queued,
            "{refusal}"
        );
        refusal
    }
}

impl RateLimiter for LocalRateLimiter {
    fn acquire(&self, deadline: Instant) -> BoxFuture<'_, Result<Duration, NoSlot>> {
        Box::pin(self.take(deadline))
    }

    fn hold_until(&self, until: Instant) -> BoxFuture<'_, ()> {
        self.hold(until);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suno() -> RateLimitConfig {
        RateLimitConfig::new(20, Duration::from_secs(10))
    }

    fn creatomate() -> RateLimitConfig {
        RateLimitConfig::new(30, Duration::from_secs(10))
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_evenly_spaced_in_arrival_order() {
        let limiter = Arc::new(LocalRateLimiter::new("suno", &suno()).unwrap());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..5u64 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(i)).await; // arrive in order
                limiter.acquire(far()).await.unwrap();
                (i, start.elapsed())
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let (_, at) = t.await.unwrap();
            let expect = Duration::from_millis(500 * i as u64);
            // The first goes at once (the sleep above rounds up to the first 1 ms tick).
            assert!(
                at.abs_diff(expect) <= Duration::from_millis(1),
                "caller {i} at {at:?}, expected {expect:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_past_the_deadline_fails_at_once_naming_the_limit() {
        let limiter = LocalRateLimiter::new("creatomate", &creatomate()).unwrap();
        let deadline = Instant::now() + Duration::from_millis(100);
        limiter.acquire(deadline).await.unwrap();
        let start = Instant::now();
        let err = limiter.acquire(deadline).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO, "no waiting for nothing");
        assert_eq!(
            err.to_string(),
            "client-side rate limit for creatomate (30 requests per 10s): no slot before the \
             deadline, the next is in 333ms with 100ms left; not sent"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_queue_is_refused_before_waiting() {
        let limiter = Arc::new(LocalRateLimiter::new("suno", &suno()).unwrap());
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                limiter.acquire(far()).await.unwrap();
            }));
        }
        tokio::task::yield_now().await;
        // The first went at once; three wait: at least 1.5 s before our slot, 1 s left.
        let start = Instant::now();
        let err = limiter
            .acquire(start + Duration::from_secs(1))
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
        let limiter = LocalRateLimiter::new("creatomate", &creatomate()).unwrap();
        let now = Instant::now();
        limiter.hold_until(now + Duration::from_secs(5)).await;
        limiter.hold_until(now + Duration::from_secs(1)).await; // shorter: changes nothing
        let start = Instant::now();
        limiter.acquire(far()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        let err = limiter
            .acquire(Instant::now() + Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the next is in 333ms"), "{err}");

        let off = LocalRateLimiter::new("creatomate", &creatomate().with_enabled(false)).unwrap();
        off.hold_until(Instant::now() + Duration::from_secs(5))
            .await;
        let start = Instant::now();
        for _ in 0..100 {
            off.acquire(start).await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_wait_gives_up_its_place_without_taking_a_slot() {
        let limiter = LocalRateLimiter::new("suno", &suno()).unwrap();
        limiter.acquire(far()).await.unwrap(); // the first slot
        // The next waits 500 ms; abandon it halfway.
        let waiting = limiter.acquire(far());
        assert!(
            tokio::time::timeout(Duration::from_millis(250), waiting)
                .await
                .is_err()
        );
        // The slot it would have taken is still there.
        let start = Instant::now();
        limiter.acquire(far()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn no_slot_is_taken_at_the_deadline() {
        let limiter = LocalRateLimiter::new("suno", &suno()).unwrap();
        assert!(limiter.acquire(Instant::now()).await.is_err());
        // The refusal took nothing: the first slot is still there.
        assert_eq!(limiter.acquire(far()).await.unwrap(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_is_waited_for_only_when_it_comes_a_tick_before_the_deadline() {
        let ms = Duration::from_millis;
        let limiter = LocalRateLimiter::new("suno", &suno()).unwrap();
        let start = Instant::now();
        limiter.acquire(far()).await.unwrap(); // the next slot is at 500 ms
        for deadline in [ms(500), Duration::from_nanos(500_999_999)] {
            let refused = tokio::time::timeout(ms(1000), limiter.acquire(start + deadline))
                .await
                .expect("refused at once, not after a wait");
            assert!(refused.is_err(), "{deadline:?}");
            assert_eq!(start.elapsed(), Duration::ZERO);
        }
        assert_eq!(limiter.acquire(start + ms(501)).await.unwrap(), ms(500));
    }

    #[tokio::test(start_paused = true)]
    async fn under_a_hold_the_estimate_refuses_only_what_cannot_fit() {
        let ms = Duration::from_millis;
        let limiter = LocalRateLimiter::new("suno", &suno()).unwrap();
        let start = Instant::now();
        limiter.hold_until(start + ms(2000)).await;
        let err = limiter.acquire(start + ms(2000)).await.unwrap_err();
        assert!(
            !err.exact,
            "refused on the estimate, before queueing: {err}"
        );
        assert!(
            err.to_string()
                .contains("the next is at least 2s away with 2s left"),
            "{err}"
        );
        assert_eq!(limiter.acquire(start + ms(2001)).await.unwrap(), ms(2000));
    }

    #[test]
    fn an_invalid_config_is_refused() {
        let err = LocalRateLimiter::new("suno", &suno().with_burst(0)).unwrap_err();
        assert_eq!(err.field(), "burst");
    }
}
