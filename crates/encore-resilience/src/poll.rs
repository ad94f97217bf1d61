//! Waiting for a long-running job: poll its status with a growing interval, server pacing and a
//! deadline. The job is submitted once, elsewhere; this only reads.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::defaults::{
    DEFAULT_POLL_DEADLINE, DEFAULT_POLL_INTERVAL, DEFAULT_POLL_MAX_INTERVAL,
    DEFAULT_POLL_MULTIPLIER,
};
use crate::{PolicyError, fmt_duration};

/// How a job's status is polled.
///
/// The first check happens at once; then the wait between checks starts at `interval`, grows by
/// `multiplier` up to `max_interval`, and is replaced by the server's hint when it gives one
/// (e.g. `Retry-After` on a status response). No check starts after `deadline`, and no wait
/// ends past it.
///
/// Build one with [`PollPolicy::new`] (which validates it), or from a configuration file and
/// then [`validate`](Self::validate) it. [`poll_until`] never panics, whatever the fields hold:
/// an invalid multiplier only stops the interval from growing.
///
/// # Defaults
///
/// | field | default | meaning |
/// |---|---|---|
/// | `interval` | `5s` | wait before the second check |
/// | `max_interval` | `30s` | cap on the wait (Suno's docs suggest polling every 30 s) |
/// | `multiplier` | `1.5` | growth of the wait per check |
/// | `deadline` | `10m` | bound on the whole wait |
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::{poll_until, PollPolicy, PollState};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let policy = PollPolicy::default();
/// let mut checks = 0;
/// let url = poll_until(&policy, |_| {
///     checks += 1;
///     let done = checks == 3;
///     async move {
///         Ok::<_, std::io::Error>(if done {
///             PollState::Ready("https://cdn.example/video.mp4")
///         } else {
///             PollState::pending("rendering")
///         })
///     }
/// })
/// .await
/// .unwrap();
/// assert_eq!(url, "https://cdn.example/video.mp4");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollPolicy {
    /// The wait before the second check.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The cap on the wait between checks.
    #[serde(with = "humantime_serde")]
    pub max_interval: Duration,
    /// The growth of the wait per check (at least 1).
    pub multiplier: f64,
    /// The bound on the whole wait.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            interval: DEFAULT_POLL_INTERVAL,
            max_interval: DEFAULT_POLL_MAX_INTERVAL,
            multiplier: DEFAULT_POLL_MULTIPLIER,
            deadline: DEFAULT_POLL_DEADLINE,
        }
    }
}

/// The floors of [`PollPolicy::for_time_scale`]: a simulator's scaled jobs are not polled in a
/// busy loop, and a run is not judged late before two minutes.
const SCALED_MIN_INTERVAL: Duration = Duration::from_millis(50);
const SCALED_MIN_MAX_INTERVAL: Duration = Duration::from_millis(250);
const SCALED_MIN_DEADLINE: Duration = Duration::from_secs(120);

impl PollPolicy {
    /// A policy that starts at `interval`, grows by `multiplier` up to `max_interval`, and gives
    /// up after `deadline`.
    ///
    /// # Errors
    ///
    /// The [`PolicyError`] of [`validate`](Self::validate).
    ///
    /// ```
    /// use std::time::Duration;
    /// use encore_resilience::PollPolicy;
    ///
    /// let s = Duration::from_secs;
    /// assert!(PollPolicy::new(s(5), s(30), 1.5, s(600)).is_ok());
    /// let err = PollPolicy::new(s(5), s(30), -1.0, s(600)).unwrap_err();
    /// assert_eq!(err.field(), "multiplier");
    /// ```
    pub fn new(
        interval: Duration,
        max_interval: Duration,
        multiplier: f64,
        deadline: Duration,
    ) -> Result<Self, PolicyError> {
        let policy = Self {
            interval,
            max_interval,
            multiplier,
            deadline,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// A policy with a fixed `interval` and the given `deadline`.
    pub const fn fixed(interval: Duration, deadline: Duration) -> Self {
        Self {
            interval,
            max_interval: interval,
            multiplier: 1.0,
            deadline,
        }
    }

    /// Every duration scaled by `factor` (e.g. for a simulator whose jobs run 100× faster);
    /// a negative or non-finite factor gives zero durations.
    pub fn scaled(&self, factor: f64) -> Self {
        let scale = |d: Duration| {
            Duration::try_from_secs_f64((d.as_secs_f64() * factor).max(0.0)).unwrap_or_default()
        };
        Self {
            interval: scale(self.interval),
            max_interval: scale(self.max_interval),
            multiplier: self.multiplier,
            deadline: scale(self.deadline),
        }
    }

    /// The timings for jobs that run `time_scale` times as long as the real ones (the
    /// simulator's `--time-scale`): every duration scaled, with floors so that the scaled jobs
    /// are not polled in a busy loop (`interval` ≥ 50 ms, `max_interval` ≥ 250 ms) and a run is
    /// not judged late too early (`deadline` ≥ 2 min). `encore demo` polls this way.
    ///
    /// ```
    /// use std::time::Duration;
    /// use encore_resilience::PollPolicy;
    ///
    /// let demo = PollPolicy::default().for_time_scale(0.01);
    /// assert_eq!(demo.interval, Duration::from_millis(50));
    /// assert_eq!(demo.max_interval, Duration::from_millis(300));
    /// assert_eq!(demo.deadline, Duration::from_secs(120));
    /// ```
    pub fn for_time_scale(&self, time_scale: f64) -> Self {
        let scaled = self.scaled(time_scale);
        Self {
            interval: scaled.interval.max(SCALED_MIN_INTERVAL),
            max_interval: scaled.max_interval.max(SCALED_MIN_MAX_INTERVAL),
            multiplier: self.multiplier,
            deadline: scaled.deadline.max(SCALED_MIN_DEADLINE),
        }
    }

    /// The wait after `interval`: grown by `multiplier`, capped at `max_interval`. Never
    /// panics: a multiplier that is not a finite number of at least 1 leaves it as it is.
    fn grow(&self, interval: Duration) -> Duration {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return interval;
        }
        let grown = interval.as_secs_f64() * self.multiplier;
        if grown >= self.max_interval.as_secs_f64() {
            self.max_interval.max(interval)
        } else {
            Duration::try_from_secs_f64(grown).unwrap_or(interval)
        }
    }

    /// Checks the invariants, naming the offending field.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] when `interval > max_interval`, `multiplier < 1` or `deadline` is zero.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.interval > self.max_interval {
            return Err(PolicyError::new(
                "interval",
                format!(
                    "{} is greater than max_interval ({})",
                    fmt_duration(self.interval),
                    fmt_duration(self.max_interval)
                ),
            ));
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(PolicyError::new(
                "multiplier",
                format!("{} must be a finite number of at least 1", self.multiplier),
            ));
        }
        if self.deadline.is_zero() {
            return Err(PolicyError::new(
                "deadline",
                "must be greater than zero".to_owned(),
            ));
        }
        Ok(())
    }
}

/// What one status check found.
#[derive(Debug, Clone, PartialEq)]
pub enum PollState<T> {
    /// The job is finished (successfully or not: the caller decides what `T` means).
    Ready(T),
    /// The job is still running.
    Pending {
        /// The job's status as the service names it (for messages: "still rendering").
        status: String,
        /// A wait the server asked for before the next check, if any.
        wait_hint: Option<Duration>,
    },
}

impl<T> PollState<T> {
    /// Still running, in `status`, with no server hint.
    pub fn pending(status: impl Into<String>) -> Self {
        PollState::Pending {
            status: status.into(),
            wait_hint: None,
        }
    }
}

/// Why polling stopped without a result.
#[derive(Debug)]
pub enum PollError<E> {
    /// A status check failed (after its own retries, if it has any).
    Check(E),
    /// The deadline passed while the job was still pending.
    Deadline {
        /// The configured deadline.
        deadline: Duration,
        /// How many checks were made.
        checks: u32,
        /// The last status seen.
        last_status: String,
    },
}

impl<E: fmt::Display> fmt::Display for PollError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::Check(e) => e.fmt(f),
            PollError::Deadline {
                deadline,
                checks,
                last_status,
            } => write!(
                f,
                "still {last_status} after the {} deadline ({checks} status checks)",
                fmt_duration(*deadline)
            ),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for PollError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PollError::Check(e) => Some(e),
            PollError::Deadline { .. } => None,
        }
    }
}

/// Calls `check` (with the 1-based check number) until it reports [`PollState::Ready`], a check
/// fails, or `policy.deadline` passes. A check still running at the deadline is dropped.
///
/// # Errors
///
/// [`PollError::Check`] with the first failed check's error, or [`PollError::Deadline`].
pub async fn poll_until<T, E, F, Fut>(policy: &PollPolicy, mut check: F) -> Result<T, PollError<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<PollState<T>, E>>,
{
    let start = Instant::now();
    let deadline_at = start
        .checked_add(policy.deadline)
        .unwrap_or_else(|| start + Duration::from_secs(86_400 * 365 * 30));
    let mut interval = policy.interval;
    let mut checks = 0;
    let mut last_status = String::from("pending");
    loop {
        checks += 1;
        let state = match tokio::time::timeout_at(deadline_at, check(checks)).await {
            Ok(Ok(state)) => state,
            Ok(Err(e)) => return Err(PollError::Check(e)),
            Err(_) => break,
        };
        let wait = match state {
            PollState::Ready(value) => return Ok(value),
            PollState::Pending { status, wait_hint } => {
                last_status = status;
                let wait = wait_hint.unwrap_or(interval);
                interval = policy.grow(interval);
                wait
            }
        };
        let now = Instant::now();
        if now.checked_add(wait).is_none_or(|end| end >= deadline_at) {
            // One last look exactly at the deadline is pointless: the job is judged late now.
            tracing::debug!(checks, status = %last_status, "poll deadline reached");
            break;
        }
        tracing::trace!(checks, status = %last_status, wait_ms = wait.as_millis() as u64, "still pending");
        tokio::time::sleep(wait).await;
    }
    Err(PollError::Deadline {
        deadline: policy.deadline,
        checks,
        last_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_table() {
        let p = PollPolicy::default();
        p.validate().unwrap();
        let doc = include_str!("poll.rs");
        for (key, value) in [
            ("interval", fmt_duration(p.interval)),
            ("max_interval", fmt_duration(p.max_interval)),
            ("multiplier", format!("{:?}", p.multiplier)),
            ("deadline", fmt_duration(p.deadline)),
        ] {
            assert_eq!(
                crate::doc_table::cell(doc, key, 1),
                Some(value),
                "the rustdoc Defaults row of `{key}`"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unvalidated_policy_never_panics() {
        // Built field by field, as a deserializer would: a negative multiplier, a zero
        // interval, an interval above its cap. `new` refuses each; `poll_until` copes.
        for multiplier in [-1.0, 0.5, f64::NAN, f64::INFINITY, 1e300] {
            let policy = PollPolicy {
                interval: Duration::from_secs(1),
                max_interval: Duration::from_millis(500),
                multiplier,
                deadline: Duration::from_secs(10),
            };
            assert!(policy.validate().is_err());
            let err = poll_until(&policy, |_| async {
                Ok::<PollState<()>, std::io::Error>(PollState::pending("PENDING"))
            })
            .await
            .unwrap_err();
            assert!(matches!(err, PollError::Deadline { .. }), "{multiplier}");
        }
        assert!(
            PollPolicy::new(
                Duration::from_secs(1),
                Duration::from_secs(5),
                -1.0,
                Duration::MAX
            )
            .is_err()
        );
    }

    #[test]
    fn validation_names_the_field() {
        let p = PollPolicy {
            interval: Duration::from_secs(60),
            ..PollPolicy::default()
        };
        assert_eq!(p.validate().unwrap_err().field(), "interval");
        let p = PollPolicy {
            multiplier: 0.0,
            ..PollPolicy::default()
        };
        assert_eq!(p.validate().unwrap_err().field(), "multiplier");
        let p = PollPolicy {
            deadline: Duration::ZERO,
            ..PollPolicy::default()
        };
        assert_eq!(p.validate().unwrap_err().field(), "deadline");
    }

    #[test]
    fn scaling_scales_every_duration() {
        let p = PollPolicy::default().scaled(0.01);
        assert_eq!(p.interval, Duration::from_millis(50));
        assert_eq!(p.max_interval, Duration::from_millis(300));
        assert_eq!(p.deadline, Duration::from_secs(6));
    }

    fn at(v: &[f64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_interval_grows_to_its_cap_and_hints_override_it() {
        let policy = PollPolicy {
            interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(5),
            multiplier: 2.0,
            deadline: Duration::from_secs(60),
        };
        let start = Instant::now();
        let mut seen = Vec::new();
        let result = poll_until(&policy, |n| {
            seen.push(start.elapsed());
            async move {
                Ok::<_, std::io::Error>(match n {
                    3 => PollState::Pending {
                        status: "rendering".into(),
                        wait_hint: Some(Duration::from_millis(500)),
                    },
                    6 => PollState::Ready(n),
                    _ => PollState::pending("planned"),
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(result, 6);
        // waits: 2, 4, 0.5 (server hint; the interval still grows), 5, 5
        assert_eq!(seen, at(&[0.0, 2.0, 6.0, 6.5, 11.5, 16.5]));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_never_overshot() {
        let policy = PollPolicy::fixed(Duration::from_secs(4), Duration::from_secs(10));
        let start = Instant::now();
        let err = poll_until(&policy, |_| async {
            Ok::<PollState<()>, std::io::Error>(PollState::pending("PENDING"))
        })
        .await
        .unwrap_err();
        assert!(start.elapsed() <= Duration::from_secs(10));
        assert_eq!(
            err.to_string(),
            "still PENDING after the 10s deadline (3 status checks)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_is_cut_at_the_deadline() {
        let policy = PollPolicy::fixed(Duration::from_secs(1), Duration::from_secs(10));
        let start = Instant::now();
        let err = poll_until(&policy, |_| {
            std::future::pending::<Result<PollState<()>, std::io::Error>>()
        })
        .await
        .unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert!(matches!(err, PollError::Deadline { checks: 1, .. }));
    }

    #[test]
    fn validation_boundaries() {
        let s = Duration::from_secs;
        // (interval, max_interval, multiplier, deadline, the offending field)
        let cases: [(Duration, Duration, f64, Duration, Option<&str>); 8] = [
            (s(5), s(5), 1.0, s(1), None),
            (s(5), s(30), 1.5, s(600), None),
            (s(6), s(5), 1.5, s(600), Some("interval")),
            (s(5), s(30), 0.999, s(600), Some("multiplier")),
            (s(5), s(30), f64::NAN, s(600), Some("multiplier")),
            (s(5), s(30), f64::INFINITY, s(600), Some("multiplier")),
            (s(5), s(30), 1.5, Duration::ZERO, Some("deadline")),
            (s(5), s(30), 1.5, Duration::from_nanos(1), None),
        ];
        for (interval, max_interval, multiplier, deadline, field) in cases {
            let got = PollPolicy::new(interval, max_interval, multiplier, deadline);
            assert_eq!(
                got.as_ref().err().map(PolicyError::field),
                field,
                "{interval:?} {max_interval:?} {multiplier} {deadline:?}"
            );
            if let Ok(policy) = got {
                assert_eq!(
                    policy,
                    PollPolicy {
                        interval,
                        max_interval,
                        multiplier,
                        deadline
                    }
                );
            }
        }
    }

    #[test]
    fn the_interval_grows_by_multiplication_up_to_its_cap() {
        let ms = Duration::from_millis;
        let policy = PollPolicy::new(ms(250), ms(2000), 3.0, ms(60_000)).unwrap();
        let mut interval = policy.interval;
        let mut seen = Vec::new();
        for _ in 0..4 {
            interval = policy.grow(interval);
            seen.push(interval);
        }
        assert_eq!(seen, [ms(750), ms(2000), ms(2000), ms(2000)]);
        // Exactly at the cap, and an interval already above it (an unvalidated policy) stays.
        let exact = PollPolicy::new(ms(500), ms(1000), 2.0, ms(60_000)).unwrap();
        assert_eq!(exact.grow(ms(500)), ms(1000));
        assert_eq!(exact.grow(ms(1500)), ms(1500));
        // A multiplier of exactly 1 is valid and keeps the interval.
        let fixed = PollPolicy::fixed(ms(700), ms(60_000));
        assert_eq!(fixed.grow(ms(700)), ms(700));
        // Below 1 the interval is left as it is (no shrinking to zero).
        let shrinking = PollPolicy {
            multiplier: 0.5,
            ..fixed
        };
        assert_eq!(shrinking.grow(ms(700)), ms(700));
    }

    #[test]
    fn for_time_scale_keeps_the_multiplier_and_scaled_values_above_the_floors() {
        let s = Duration::from_secs;
        let p = PollPolicy::new(s(10), s(100), 1.25, s(1000))
            .unwrap()
            .for_time_scale(0.5);
        assert_eq!(p, PollPolicy::new(s(5), s(50), 1.25, s(500)).unwrap());
        // A negative scale gives zero durations, then the floors.
        let zero = PollPolicy::default().scaled(-2.0);
        assert_eq!(
            (zero.interval, zero.deadline),
            (Duration::ZERO, Duration::ZERO)
        );
        assert!((zero.multiplier - DEFAULT_POLL_MULTIPLIER).abs() < f64::EPSILON);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_too_far_to_add_polls_until_ready() {
        // `Instant + Duration::MAX` overflows: the deadline is capped at about 30 years, so
        // checks a year apart go on.
        let year = Duration::from_secs(86_400 * 365);
        let policy = PollPolicy::fixed(year, Duration::MAX);
        let start = Instant::now();
        let value = poll_until(&policy, |n| async move {
            Ok::<_, std::io::Error>(if n == 3 {
                PollState::Ready(n)
            } else {
                PollState::pending("queued")
            })
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
        assert_eq!(start.elapsed(), year * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ending_exactly_at_the_deadline_is_not_made() {
        // Checks at 0 s and 5 s; the next wait would end at 10 s, the deadline: no third check.
        let policy = PollPolicy::fixed(Duration::from_secs(5), Duration::from_secs(10));
        let start = Instant::now();
        let err = poll_until(&policy, |_| async {
            Ok::<PollState<()>, std::io::Error>(PollState::pending("rendering"))
        })
        .await
        .unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(
            matches!(err, PollError::Deadline { checks: 2, .. }),
            "{err}"
        );
        // One nanosecond more of deadline and the third check is made, at 10 s.
        let policy = PollPolicy::fixed(
            Duration::from_secs(5),
            Duration::from_secs(10) + Duration::from_nanos(1),
        );
        let err = poll_until(&policy, |_| async {
            Ok::<PollState<()>, std::io::Error>(PollState::pending("rendering"))
        })
        .await
        .unwrap_err();
        assert!(
            matches!(err, PollError::Deadline { checks: 3, .. }),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_check_is_the_source_and_a_deadline_has_none() {
        use std::error::Error as _;
        let policy = PollPolicy::default();
        let err = poll_until(&policy, |_| async {
            Err::<PollState<()>, _>(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "401 unauthorized",
            ))
        })
        .await
        .unwrap_err();
        let source = err.source().expect("the check's error is the source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
        let late: PollError<std::io::Error> = PollError::Deadline {
            deadline: Duration::from_secs(1),
            checks: 1,
            last_status: "pending".into(),
        };
        assert!(late.source().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_check_stops_polling_with_its_error() {
        let policy = PollPolicy::default();
        let mut calls = 0;
        let err = poll_until(&policy, |_| {
            calls += 1;
            async { Err::<PollState<()>, _>(std::io::Error::other("401 unauthorized")) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(err.to_string(), "401 unauthorized");
    }
}
