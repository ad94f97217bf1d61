//! Backoff schedules as plain iterators of [`Duration`].

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::Jitter;

/// The waits before each retry: an [`Iterator`] of [`Duration`]s, one per retry.
///
/// Built from a [`RetryPolicy`](crate::RetryPolicy) with
/// [`backoff`](crate::RetryPolicy::backoff) or [`backoff_seeded`](crate::RetryPolicy::backoff_seeded);
/// it yields exactly `max_retries` delays (none when the policy is disabled).
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::RetryPolicy;
///
/// let policy = RetryPolicy::default(); // 3 retries, 1 s base, ×2, no jitter
/// let delays: Vec<Duration> = policy.backoff().collect();
/// assert_eq!(delays, [1, 2, 4].map(Duration::from_secs));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    multiplier: f64,
    jitter: Jitter,
    rng: SmallRng,
    retry: u32,
    remaining: u32,
    previous: Duration,
}

impl Backoff {
    /// A schedule of `retries` delays: `min(base · multiplier^k, max)` for `k = 0, 1, …`,
    /// randomised by `jitter` with a generator seeded from `seed`.
    pub fn new(
        base: Duration,
        max: Duration,
        multiplier: f64,
        jitter: Jitter,
        retries: u32,
        seed: u64,
    ) -> Self {
        Self {
            base,
            max,
            multiplier,
            jitter,
            rng: SmallRng::seed_from_u64(seed),
            retry: 0,
            remaining: retries,
            previous: base,
        }
    }

    /// The nominal (un-jittered) delay before retry `k` (0-based), capped at `max`.
    pub fn nominal(&self, k: u32) -> Duration {
        let factor = self.multiplier.powi(i32::try_from(k).unwrap_or(i32::MAX));
        scale_capped(self.base, factor, self.max)
    }
}

/// `base × factor`, never above `max` and never panicking on overflow or NaN.
fn scale_capped(base: Duration, factor: f64, max: Duration) -> Duration {
    let secs = base.as_secs_f64() * factor;
    if !secs.is_finite() || secs >= max.as_secs_f64() {
        max
    } else if secs <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(secs)
    }
}

fn uniform(rng: &mut SmallRng, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let (low, high) = (low.as_secs_f64(), high.as_secs_f64());
    Duration::from_secs_f64(rng.random_range(low..=high))
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let nominal = self.nominal(self.retry);
        self.retry = self.retry.saturating_add(1);
        let delay = match self.jitter {
            Jitter::None => nominal,
            Jitter::Full => uniform(&mut self.rng, Duration::ZERO, nominal),
            Jitter::Equal => uniform(&mut self.rng, nominal / 2, nominal),
            Jitter::Decorrelated => {
                let high = scale_capped(self.previous, 3.0, self.max);
                let next = uniform(&mut self.rng, self.base.min(self.max), high);
                self.previous = next;
                next
            }
        };
        Some(delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl ExactSizeIterator for Backoff {}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: &[f64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
    }

    fn schedule(base: f64, max: f64, retries: u32, jitter: Jitter, seed: u64) -> Vec<Duration> {
        Backoff::new(
            Duration::from_secs_f64(base),
            Duration::from_secs_f64(max),
            2.0,
            jitter,
            retries,
            seed,
        )
        // One more than it should yield: a schedule that never ends fails here, not by hanging.
        .take(retries as usize + 1)
        .collect()
    }

    #[test]
    fn seed_plan_schedules_exactly() {
        assert_eq!(
            schedule(1.0, 30.0, 3, Jitter::None, 0),
            secs(&[1.0, 2.0, 4.0])
        );
        assert_eq!(
            schedule(2.0, 30.0, 3, Jitter::None, 0),
            secs(&[2.0, 4.0, 8.0])
        );
        assert_eq!(schedule(1.0, 30.0, 2, Jitter::None, 0), secs(&[1.0, 2.0]));
        assert_eq!(schedule(2.0, 30.0, 2, Jitter::None, 0), secs(&[2.0, 4.0]));
    }

    #[test]
    fn caps_at_max_delay() {
        assert_eq!(
            schedule(1.0, 5.0, 6, Jitter::None, 0),
            secs(&[1.0, 2.0, 4.0, 5.0, 5.0, 5.0])
        );
    }

    #[test]
    fn huge_exponents_saturate_instead_of_panicking() {
        let b = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            10.0,
            Jitter::Full,
            2000,
            1,
        );
        assert_eq!(b.nominal(1999), Duration::from_secs(60));
        let delays: Vec<Duration> = b.take(2001).collect();
        assert_eq!(delays.len(), 2000);
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(60)));
    }

    #[test]
    fn jitter_kinds_stay_within_bounds() {
        for seed in 0..200 {
            let nominal = schedule(1.0, 8.0, 6, Jitter::None, seed);
            let full = schedule(1.0, 8.0, 6, Jitter::Full, seed);
            let equal = schedule(1.0, 8.0, 6, Jitter::Equal, seed);
            for ((n, f), e) in nominal.iter().zip(&full).zip(&equal) {
                assert!(*f <= *n, "full {f:?} > nominal {n:?}");
                assert!(
                    *e >= *n / 2 && *e <= *n,
                    "equal {e:?} outside [{:?}, {n:?}]",
                    *n / 2
                );
            }
            let mut previous = Duration::from_secs(1);
            for d in schedule(1.0, 8.0, 6, Jitter::Decorrelated, seed) {
                assert!(d >= Duration::from_secs(1), "decorrelated {d:?} below base");
                assert!(
                    d <= (previous * 3).min(Duration::from_secs(8)),
                    "decorrelated {d:?}"
                );
                previous = d;
            }
        }
    }

    #[test]
    fn jitter_is_reproducible_with_a_seed_and_varies_without_one() {
        for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
            assert_eq!(
                schedule(1.0, 8.0, 5, jitter, 7),
                schedule(1.0, 8.0, 5, jitter, 7)
            );
            assert_ne!(
                schedule(1.0, 8.0, 5, jitter, 7),
                schedule(1.0, 8.0, 5, jitter, 8)
            );
        }
    }

    #[test]
    fn yields_exactly_the_number_of_retries() {
        let b = Backoff::new(Duration::ZERO, Duration::ZERO, 2.0, Jitter::Full, 4, 0);
        assert_eq!(b.len(), 4);
        assert_eq!(b.size_hint(), (4, Some(4)));
        assert_eq!(b.take(5).collect::<Vec<_>>(), vec![Duration::ZERO; 4]);
    }
}
