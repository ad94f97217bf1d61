//! The retry policy: how many attempts, how long to wait between them, how long each may take.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::defaults::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BASE_DELAY, DEFAULT_DEADLINE, DEFAULT_JITTER,
    DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_AFTER, DEFAULT_MULTIPLIER,
    MAX_RETRIES_LIMIT,
};
use crate::{Backoff, Jitter, fmt_duration};

/// How a call is retried: the equivalent of the seed plan's `retry_async` arguments, plus a
/// per-attempt timeout, a total deadline and a ceiling on server-requested waits.
///
/// Durations are written in configuration files in humantime form (`"500ms"`, `"2s"`, `"1m 30s"`).
///
/// # Defaults
///
/// | field | default | meaning |
/// |---|---|---|
/// | `enabled` | `true` | `false` is the rollback switch: exactly one attempt, still bounded by its timeout |
/// | `max_retries` | `3` | retries **on top of** the first attempt (so 4 attempts in all) |
/// | `base_delay` | `1s` | wait before the first retry |
/// | `max_delay` | `30s` | cap on any one backoff wait |
/// | `multiplier` | `2.0` | growth of the wait per retry (`base · multiplier^k`) |
/// | `jitter` | `none` | `none`, `full`, `equal` or `decorrelated` (see [`Jitter`]) |
/// | `attempt_timeout` | `30s` | bound on one attempt (connect, write, read and pool wait together) |
/// | `deadline` | `2m` | bound on the whole call: every attempt and every wait |
/// | `max_retry_after` | `2m` | longest server-requested wait (`Retry-After`) that is honoured; longer stops |
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_max_retries(2)
///     .with_base_delay(Duration::from_secs(2));
/// policy.validate().unwrap();
/// assert_eq!(policy.max_attempts(), 3);
/// assert_eq!(policy.backoff().collect::<Vec<_>>(), [2, 4].map(Duration::from_secs));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Whether failed attempts are retried at all (the rollback switch).
    pub enabled: bool,
    /// Additional attempts after the first.
    pub max_retries: u32,
    /// The wait before the first retry.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// The cap on any one backoff wait.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// The growth factor of the wait per retry (at least 1).
    pub multiplier: f64,
    /// How the waits are randomised.
    pub jitter: Jitter,
    /// The bound on a single attempt.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// The bound on the whole call, attempts and waits included.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// The longest server-requested wait that is honoured.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The documented defaults (see the table above).
    pub const fn new() -> Self {
        Self {
            enabled: true,
            max_retries: DEFAULT_MAX_RETRIES,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            multiplier: DEFAULT_MULTIPLIER,
            jitter: DEFAULT_JITTER,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }

    /// Sets [`enabled`](Self::enabled).
    pub const fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
    /// Sets [`max_retries`](Self::max_retries).
    pub const fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }
    /// Sets [`base_delay`](Self::base_delay).
    pub const fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }
    /// Sets [`max_delay`](Self::max_delay).
    pub const fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }
    /// Sets [`multiplier`](Self::multiplier).
    pub const fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }
    /// Sets [`jitter`](Self::jitter).
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }
    /// Sets [`attempt_timeout`](Self::attempt_timeout).
    pub const fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }
    /// Sets [`deadline`](Self::deadline).
    pub const fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
    /// Sets [`max_retry_after`](Self::max_retry_after).
    pub const fn with_max_retry_after(mut self, limit: Duration) -> Self {
        self.max_retry_after = limit;
        self
    }

    /// The number of attempts this policy allows in all: `max_retries + 1`, or 1 when disabled.
    pub const fn max_attempts(&self) -> u32 {
        if self.enabled {
            self.max_retries.saturating_add(1)
        } else {
            1
        }
    }

    /// The waits before each retry, with jitter drawn from a random seed.
    pub fn backoff(&self) -> Backoff {
        self.backoff_seeded(rand::random())
    }

    /// The waits before each retry, with jitter drawn from `seed` (reproducible).
    pub fn backoff_seeded(&self, seed: u64) -> Backoff {
        let retries = if self.enabled { self.max_retries } else { 0 };
        Backoff::new(
            self.base_delay,
            self.max_delay,
            self.multiplier,
            self.jitter,
            retries,
            seed,
        )
    }

    /// The longest the waits alone can add up to (the nominal schedule, jitter at its maximum;
    /// for decorrelated jitter each wait is bounded by `max_delay`), saturating at
    /// [`Duration::MAX`] for absurd policies.
    pub fn worst_case_waits(&self) -> Duration {
        let b = self.backoff_seeded(0);
        (0..b.len() as u32)
            .map(|k| match self.jitter {
                Jitter::Decorrelated => self.max_delay,
                _ => b.nominal(k),
            })
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    /// Checks the invariants, naming the offending field.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] when `base_delay > max_delay`, `multiplier` is below 1 or not finite,
    /// `attempt_timeout` or `deadline` is zero, `attempt_timeout > deadline`, or `max_retries`
    /// is above [`MAX_RETRIES_LIMIT`](crate::defaults::MAX_RETRIES_LIMIT).
    pub fn validate(&self) -> Result<(), PolicyError> {
        let err = |field, reason: String| Err(PolicyError { field, reason });
        if self.base_delay > self.max_delay {
            return err(
                "base_delay",
                format!(
                    "{} is greater than max_delay ({})",
                    fmt_duration(self.base_delay),
                    fmt_duration(self.max_delay)
                ),
            );
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return err(
                "multiplier",
                format!("{} must be a finite number of at least 1", self.multiplier),
            );
        }
        if self.attempt_timeout.is_zero() {
            return err("attempt_timeout", "must be greater than zero".to_owned());
        }
        if self.deadline.is_zero() {
            return err("deadline", "must be greater than zero".to_owned());
        }
        if self.attempt_timeout > self.deadline {
            return err(
                "attempt_timeout",
                format!(
                    "{} is longer than the deadline ({})",
                    fmt_duration(self.attempt_timeout),
                    fmt_duration(self.deadline)
                ),
            );
        }
        if self.max_retries > MAX_RETRIES_LIMIT {
            return err(
                "max_retries",
                format!(
                    "{} is above the limit of {MAX_RETRIES_LIMIT}",
                    self.max_retries
                ),
            );
        }
        Ok(())
    }
}

/// A [`RetryPolicy`] that breaks an invariant; names the field and says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retry policy: `{field}` {reason}")]
pub struct PolicyError {
    field: &'static str,
    reason: String,
}

impl PolicyError {
    /// A refusal of `field` for `reason`.
    pub fn new(field: &'static str, reason: String) -> Self {
        Self { field, reason }
    }
    /// The name of the offending field, as written in configuration files.
    pub fn field(&self) -> &'static str {
        self.field
    }
    /// Why the value was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_table_and_constants() {
        let p = RetryPolicy::default();
        assert_eq!(p, RetryPolicy::new());
        p.validate().unwrap();
        assert_eq!(
            (p.max_retries, p.base_delay, p.max_delay, p.jitter),
            (
                DEFAULT_MAX_RETRIES,
                DEFAULT_BASE_DELAY,
                DEFAULT_MAX_DELAY,
                DEFAULT_JITTER
            )
        );
        assert_eq!(
            (p.attempt_timeout, p.deadline, p.max_retry_after),
            (
                DEFAULT_ATTEMPT_TIMEOUT,
                DEFAULT_DEADLINE,
                DEFAULT_MAX_RETRY_AFTER
            )
        );
        assert!((p.multiplier - DEFAULT_MULTIPLIER).abs() < f64::EPSILON);
        // The rustdoc table says the same: its rows are generated from the values and looked up
        // among the doc-comment lines only.
        let doc = include_str!("policy.rs");
        for (key, value) in [
            ("enabled", p.enabled.to_string()),
            ("max_retries", p.max_retries.to_string()),
            ("base_delay", fmt_duration(p.base_delay)),
            ("max_delay", fmt_duration(p.max_delay)),
            ("multiplier", format!("{:?}", p.multiplier)),
            ("jitter", p.jitter.to_string()),
            ("attempt_timeout", fmt_duration(p.attempt_timeout)),
            ("deadline", fmt_duration(p.deadline)),
            ("max_retry_after", fmt_duration(p.max_retry_after)),
        ] {
            assert_eq!(
                crate::doc_table::cell(doc, key, 1),
                Some(value),
                "the rustdoc Defaults row of `{key}`"
            );
        }
    }

    #[test]
    fn an_empty_config_file_gives_the_defaults_and_durations_are_humantime() {
        let p: RetryPolicy = toml::from_str("").unwrap();
        assert_eq!(p, RetryPolicy::default());
        let p: RetryPolicy =
            toml::from_str("base_delay = \"2s\"\ndeadline = \"1m 30s\"\njitter = \"full\"")
                .unwrap();
        assert_eq!(p.base_delay, Duration::from_secs(2));
        assert_eq!(p.deadline, Duration::from_secs(90));
        assert_eq!(p.jitter, Jitter::Full);
        let round = toml::to_string(&p).unwrap();
        assert_eq!(toml::from_str::<RetryPolicy>(&round).unwrap(), p);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<RetryPolicy>("max_retry = 3").unwrap_err();
        assert!(err.to_string().contains("max_retry"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (
                RetryPolicy::new().with_base_delay(Duration::from_secs(60)),
                "base_delay",
            ),
            (RetryPolicy::new().with_multiplier(0.5), "multiplier"),
            (RetryPolicy::new().with_multiplier(f64::NAN), "multiplier"),
            (RetryPolicy::new().with_deadline(Duration::ZERO), "deadline"),
            (
                RetryPolicy::new().with_attempt_timeout(Duration::ZERO),
                "attempt_timeout",
            ),
            (
                RetryPolicy::new().with_attempt_timeout(Duration::from_secs(600)),
                "attempt_timeout",
            ),
            (RetryPolicy::new().with_max_retries(1000), "max_retries"),
        ];
        for (policy, field) in cases {
            let err = policy.validate().unwrap_err();
            assert_eq!(err.field(), field, "{err}");
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn disabled_means_one_attempt_and_no_waits() {
        let p = RetryPolicy::new().with_enabled(false);
        assert_eq!(p.max_attempts(), 1);
        assert_eq!(p.backoff().count(), 0);
        assert_eq!(p.worst_case_waits(), Duration::ZERO);
    }

    #[test]
    fn worst_case_waits_add_up_the_schedule() {
        assert_eq!(
            RetryPolicy::new().worst_case_waits(),
            Duration::from_secs(7)
        );
    }
}
