//! Client-side rate limits: the quota an upstream documents, shared by every call to it, so that
//! concurrent callers queue instead of earning 429s.
//!
//! The retry loop asks a [`RateLimiter`] for a slot before each attempt (see
//! [`Retry::rate_limiter`](crate::Retry::rate_limiter)): inside the call's deadline, outside the
//! attempt's timeout, so a request still queued is never counted as sent. A limiter is anything
//! that can "take a slot before this deadline, or say when the next one is" and "hold everyone
//! until this instant" (a server's `Retry-After`): [`LocalRateLimiter`] keeps the state in the
//! process (a GCRA from the `governor` crate); a limiter shared by several processes (the state
//! in a database) implements the same trait.

mod local;
mod prepaid;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use local::LocalRateLimiter;
pub(crate) use prepaid::take_prepaid;
pub use prepaid::{PREPAID_SLOT_FRESHNESS, with_slot_taken};

use crate::defaults::{DEFAULT_RATE_LIMIT_BURST, MAX_RATE_LIMIT_PER};
use crate::{PolicyError, fmt_duration};

/// A boxed, sendable future: what [`RateLimiter`]'s methods return, so that a limiter can be
/// shared as `Arc<dyn RateLimiter>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A rate limit shared by every call to one upstream.
///
/// Implementations must be cancel-safe: the retry loop drops a pending
/// [`acquire`](Self::acquire) when the upstream's circuit breaker opens meanwhile, and that
/// must give up the caller's place without taking a slot.
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::rate_limit::{LocalRateLimiter, RateLimitConfig, RateLimiter};
/// use tokio::time::Instant;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let config = RateLimitConfig::new(2, Duration::from_secs(1)); // one request every 500 ms
/// let limiter = LocalRateLimiter::new("suno", &config).unwrap();
/// let deadline = Instant::now() + Duration::from_secs(5);
/// assert_eq!(limiter.acquire(deadline).await.unwrap(), Duration::ZERO);
/// assert_eq!(limiter.acquire(deadline).await.unwrap(), Duration::from_millis(500));
/// // A slot that cannot come before the deadline is refused at once, saying when it would.
/// let refused = limiter.acquire(Instant::now() + Duration::from_millis(100)).await.unwrap_err();
/// assert_eq!(refused.next_in, Duration::from_millis(500));
/// # }
/// ```
pub trait RateLimiter: fmt::Debug + Send + Sync {
    /// Takes a slot no later than `deadline`, waiting for it as needed (in arrival order), and
    /// returns how long it waited.
    ///
    /// # Errors
    ///
    /// [`NoSlot`], as early as it is known, when no slot can be had before `deadline` (minus
    /// one timer tick): it says when the next slot is. Nothing is taken.
    fn acquire(&self, deadline: Instant) -> BoxFuture<'_, Result<Duration, NoSlot>>;

    /// Holds every caller until `until`: the upstream asked to slow down (`Retry-After` on a
    /// 429). A hold shorter than the one in force changes nothing.
    fn hold_until(&self, until: Instant) -> BoxFuture<'_, ()>;
}

impl<T: RateLimiter + ?Sized> RateLimiter for Arc<T> {
    fn acquire(&self, deadline: Instant) -> BoxFuture<'_, Result<Duration, NoSlot>> {
        (**self).acquire(deadline)
    }
    fn hold_until(&self, until: Instant) -> BoxFuture<'_, ()> {
        (**self).hold_until(until)
    }
}

/// A rate limiter had no slot before the call's deadline, so nothing was sent.
///
/// Displays as `client-side rate limit for creatomate (30 requests per 10s): no slot before the
/// deadline, the next is in 333ms with 100ms left; not sent`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NoSlot {
    /// The upstream's name.
    pub upstream: Arc<str>,
    /// The quota: `requests` per `per`.
    pub requests: u32,
    /// The quota's window.
    pub per: Duration,
    /// How long until a slot is free (a lower bound unless `exact`).
    pub next_in: Duration,
    /// Whether `next_in` is exact (the limiter's own answer) or a lower bound (an estimate from
    /// the queue ahead).
    pub exact: bool,
    /// What was left of the call's deadline.
    pub left: Duration,
    /// Callers queued ahead, when that is why.
    pub queued: usize,
}

impl NoSlot {
    /// A refusal by the limit of `upstream` (`requests` per `per`): the next slot is
    /// `next_in` away (exactly, or at least), with `left` of the deadline to go.
    pub fn new(
        upstream: impl Into<Arc<str>>,
        (requests, per): (u32, Duration),
        next_in: Duration,
        exact: bool,
        left: Duration,
    ) -> NoSlot {
        NoSlot {
            upstream: upstream.into(),
            requests,
            per,
            next_in,
            exact,
            left,
            queued: 0,
        }
    }

    /// The same, naming the callers queued ahead.
    pub fn with_queued(mut self, queued: usize) -> NoSlot {
        self.queued = queued;
        self
    }
}

impl fmt::Display for NoSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client-side rate limit for {} ({} requests per {}): no slot before the deadline, ",
            self.upstream,
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

impl From<NoSlot> for std::io::Error {
    fn from(e: NoSlot) -> Self {
        std::io::Error::new(std::io::ErrorKind::WouldBlock, e)
    }
}

/// A client-side rate limit: at most `requests` per `per`, with up to `burst` at once.
///
/// It is a GCRA: one request every `per / requests` ([`interval`](Self::interval)), with up to
/// `burst` at once after a quiet spell.
///
/// # Defaults
///
/// | field | default | meaning |
/// |---|---|---|
/// | `enabled` | `true` | `false`: no waiting, and `Retry-After` holds nothing |
/// | `burst` | `1` | requests that may go at once (1 to `requests`); 1 spaces them evenly |
///
/// `requests` and `per` have no default: they are the upstream's documented quota
/// ([`RateLimitConfig::new`]).
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::rate_limit::RateLimitConfig;
///
/// let suno = RateLimitConfig::new(20, Duration::from_secs(10));
/// suno.validate().unwrap();
/// assert_eq!(suno.interval(), Duration::from_millis(500));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether requests are limited at all (`false`: no waiting, and 429 hints hold nothing).
    pub enabled: bool,
    /// Requests allowed per `per` (at least 1).
    pub requests: u32,
    /// The window the quota is counted over (above 0, at most 1 h).
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    /// Requests that may go at once after a quiet spell (1 to `requests`).
    pub burst: u32,
}

impl RateLimitConfig {
    /// `requests` per `per`, enabled, evenly spaced (a burst of 1).
    pub const fn new(requests: u32, per: Duration) -> Self {
        Self {
            enabled: true,
            requests,
            per,
            burst: DEFAULT_RATE_LIMIT_BURST,
        }
    }

    /// Sets [`enabled`](Self::enabled).
    pub const fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets [`burst`](Self::burst).
    pub const fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// The time between two requests at the full rate: `per / requests`, rounded up to the
    /// nanosecond so that `requests` intervals never add up to less than `per`.
    pub fn interval(&self) -> Duration {
        let nanos = self
            .per
            .as_nanos()
            .div_ceil(u128::from(self.requests.max(1)));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Checks the invariants, naming the offending field. A disabled limit is checked too, so
    /// that switching it on cannot reveal a bad value.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] when `requests` or `burst` is 0, `burst` exceeds `requests`, or `per`
    /// is zero or longer than 1 h.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.requests == 0 {
            return Err(PolicyError::new(
                "requests",
                "must be at least 1".to_owned(),
            ));
        }
        if self.per.is_zero() || self.per > MAX_RATE_LIMIT_PER {
            return Err(PolicyError::new(
                "per",
                format!(
                    "{} must be above 0 and at most {}",
                    fmt_duration(self.per),
                    fmt_duration(MAX_RATE_LIMIT_PER)
                ),
            ));
        }
        if self.burst == 0 || self.burst > self.requests {
            return Err(PolicyError::new(
                "burst",
                format!(
                    "{} must be between 1 and requests ({})",
                    self.burst, self.requests
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_table() {
        let c = RateLimitConfig::new(20, Duration::from_secs(10));
        assert_eq!(c.burst, DEFAULT_RATE_LIMIT_BURST);
        let doc = include_str!("mod.rs");
        for (key, value) in [
            ("enabled", c.enabled.to_string()),
            ("burst", c.burst.to_string()),
        ] {
            assert_eq!(
                crate::doc_table::cell(doc, key, 1),
                Some(value),
                "the rustdoc Defaults row of `{key}`"
            );
        }
    }

    #[test]
    fn validation_names_the_field() {
        let base = RateLimitConfig::new(20, Duration::from_secs(10));
        for (config, field) in [
            (RateLimitConfig::new(0, Duration::from_secs(10)), "requests"),
            (RateLimitConfig::new(20, Duration::ZERO), "per"),
            (RateLimitConfig::new(20, Duration::from_secs(7200)), "per"),
            (base.clone().with_burst(0), "burst"),
            (base.clone().with_burst(21), "burst"),
        ] {
            let err = config.validate().unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        }
        let off = RateLimitConfig::new(0, Duration::from_secs(10)).with_enabled(false);
        assert!(off.validate().is_err(), "a disabled limit is still checked");
    }

    #[test]
    fn refusals_read_well() {
        let refusal = NoSlot::new(
            "creatomate",
            (30, Duration::from_secs(10)),
            Duration::from_millis(333),
            true,
            Duration::from_millis(100),
        );
        assert_eq!(
            refusal.to_string(),
            "client-side rate limit for creatomate (30 requests per 10s): no slot before the \
             deadline, the next is in 333ms with 100ms left; not sent"
        );
        let queued = NoSlot::new(
            "suno",
            (20, Duration::from_secs(10)),
            Duration::from_millis(1500),
            false,
            Duration::from_secs(1),
        )
        .with_queued(3);
        assert!(
            queued
                .to_string()
                .contains("the next is at least 1.5s away with 1s left and 3 calls queued ahead"),
            "{queued}"
        );
    }
}
