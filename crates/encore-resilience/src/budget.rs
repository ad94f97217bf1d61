//! A retry budget shared by every call to one upstream: retries may add only a fraction of load.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::PolicyError;
use crate::defaults::{DEFAULT_BUDGET_MIN_PER_SEC, DEFAULT_BUDGET_RATIO, DEFAULT_BUDGET_WINDOW};
use crate::fmt_duration;
use crate::window::AtomicWindow;

/// The shortest accepted [`RetryBudgetConfig::window`] (finagle's and tower's bound).
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// The longest accepted [`RetryBudgetConfig::window`] (finagle's and tower's bound).
const MAX_WINDOW: Duration = Duration::from_secs(60);

/// One token, in the thousandths the bucket counts in (so a ratio of 0.2 is exactly 200).
const TOKEN: i64 = 1000;

/// How much retrying one upstream may add to its load.
///
/// Every first attempt deposits `ratio` tokens and every retry withdraws one, so in a full
/// outage the upstream sees at most `1 + ratio` times the calls instead of `1 + max_retries`
/// times. On top of that, `min_per_sec × window` retries per window are always allowed (10 with
/// the defaults): the floor that lets a client making few calls still retry. Deposits and
/// withdrawals both expire after `window` (to within a tenth of it), so the floor refills and
/// old traffic does not bank retries.
///
/// This is tower's `TpsBudget` (and so reqwest's) with encore's numbers: tower's floor of
/// 10 retries/s would let encore's few calls per second retry without limit.
///
/// # Defaults
///
/// | field | default | meaning |
/// |---|---|---|
/// | `enabled` | `true` | `false` switches the budget off: every retry the policy allows is made |
/// | `ratio` | `0.2` | tokens each first attempt deposits; a retry costs 1 (so retries ≤ 20 % of calls) |
/// | `min_per_sec` | `1.0` | retries per second allowed with no deposits (10 per 10 s window) |
/// | `window` | `10s` | how long a deposit or withdrawal counts (1 s to 60 s) |
///
/// ```
/// use encore_resilience::budget::{RetryBudget, RetryBudgetConfig};
///
/// let config: RetryBudgetConfig = toml::from_str("ratio = 0.1\nwindow = \"20s\"").unwrap();
/// let budget = RetryBudget::new("suno", config).unwrap();
/// assert_eq!(budget.available(), 20); // the floor: 1 retry/s for 20 s
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// Whether retries are limited at all.
    pub enabled: bool,
    /// Tokens deposited by each first attempt; each retry withdraws one (0 to 1).
    pub ratio: f64,
    /// Retries per second allowed even with no deposits (the floor).
    pub min_per_sec: f64,
    /// How long a deposit or withdrawal counts.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryBudgetConfig {
    /// The documented defaults (see the table above).
    pub const fn new() -> Self {
        Self {
            enabled: true,
            ratio: DEFAULT_BUDGET_RATIO,
            min_per_sec: DEFAULT_BUDGET_MIN_PER_SEC,
            window: DEFAULT_BUDGET_WINDOW,
        }
    }

    /// Sets [`enabled`](Self::enabled).
    pub const fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
    /// Sets [`ratio`](Self::ratio).
    pub const fn with_ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }
    /// Sets [`min_per_sec`](Self::min_per_sec).
    pub const fn with_min_per_sec(mut self, min_per_sec: f64) -> Self {
        self.min_per_sec = min_per_sec;
        self
    }
    /// Sets [`window`](Self::window).
    pub const fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Checks the invariants, naming the offending field.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] when `ratio` is not between 0 and 1, `min_per_sec` is negative or not
    /// finite, or `window` is outside 1 s to 60 s.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(0.0..=1.0).contains(&self.ratio) {
            return Err(PolicyError::new(
                "ratio",
                format!("{} must be between 0 and 1", self.ratio),
            ));
        }
        if !self.min_per_sec.is_finite() || self.min_per_sec < 0.0 {
            return Err(PolicyError::new(
                "min_per_sec",
                format!("{} must be a finite number of at least 0", self.min_per_sec),
            ));
        }
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&self.window) {
            return Err(PolicyError::new(
                "window",
                format!(
                    "{} must be between {} and {}",
                    fmt_duration(self.window),
                    fmt_duration(MIN_WINDOW),
                    fmt_duration(MAX_WINDOW)
                ),
            ));
        }
        Ok(())
    }
}

/// A token bucket limiting the retries made to one upstream, shared by every call to it.
///
/// Cheap to clone: clones share the same bucket (an [`Arc`] inside), so make one per upstream at
/// start-up and hand it to every [`Retry`](crate::Retry) with
/// [`budget`](crate::Retry::budget). See [`RetryBudgetConfig`] for the rules and defaults.
///
/// When it runs dry the retry loop stops with
/// [`StopReason::BudgetExhausted`](crate::StopReason::BudgetExhausted): "retry budget for suno
/// exhausted: retries are limited to 20% of calls".
///
/// ```
/// use encore_resilience::budget::{RetryBudget, RetryBudgetConfig};
///
/// let config = RetryBudgetConfig::new().with_min_per_sec(0.0); // no floor
/// let budget = RetryBudget::new("suno", config).unwrap();
/// assert!(!budget.try_withdraw(), "no calls, no retries");
/// for _ in 0..5 {
///     budget.deposit(); // five first attempts…
/// }
/// assert!(budget.try_withdraw()); // …pay for one retry
/// assert!(!budget.try_withdraw());
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Arc<str>,
    config: RetryBudgetConfig,
    /// Thousandths of a token deposited per first attempt.
    deposit: i64,
    /// Thousandths of a token always available (the floor), before withdrawals.
    reserve: i64,
    /// Net deposits minus withdrawals, per slot of the window. Deposits (one per call) add to it
    /// without a lock; withdrawals (one per retry) take `withdrawing` so that two of them cannot
    /// both spend the last token.
    slots: AtomicWindow,
    withdrawing: Mutex<()>,
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("upstream", &self.inner.upstream)
            .field("config", &self.inner.config)
            .field("available", &self.available())
            .finish()
    }
}

impl RetryBudget {
    /// A budget for the calls to `upstream` (a name for messages, e.g. `suno`).
    ///
    /// # Errors
    ///
    /// The [`PolicyError`] of [`RetryBudgetConfig::validate`].
    pub fn new(
        upstream: impl Into<Arc<str>>,
        config: RetryBudgetConfig,
    ) -> Result<Self, PolicyError> {
        config.validate()?;
        let deposit = (config.ratio * TOKEN as f64).round() as i64;
        let reserve = (config.min_per_sec * config.window.as_secs_f64() * TOKEN as f64)
            .round()
            .min(i64::MAX as f64 / 2.0) as i64;
        Ok(Self {
            inner: Arc::new(Inner {
                upstream: upstream.into(),
                slots: AtomicWindow::new(config.window),
                withdrawing: Mutex::new(()),
                config,
                deposit,
                reserve,
            }),
        })
    }

    /// The upstream's name.
    pub fn upstream(&self) -> &str {
        &self.inner.upstream
    }

    pub(crate) fn upstream_arc(&self) -> Arc<str> {
        self.inner.upstream.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &RetryBudgetConfig {
        &self.inner.config
    }

    /// The ratio actually applied, in thousandths (`200` for 20 %).
    pub(crate) fn per_mille(&self) -> u32 {
        u32::try_from(self.inner.deposit).unwrap_or(0)
    }

    /// Records a first attempt: adds `ratio` tokens. A no-op when disabled. Lock-free.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// [`deposit`](Self::deposit) with the caller's clock reading.
    pub(crate) fn deposit_at(&self, now: Instant) {
        if self.inner.config.enabled {
            self.inner.slots.add(now, self.inner.deposit);
        }
    }

    /// Takes one token for a retry; `false` (and nothing taken) when the bucket holds less than
    /// one. Always `true` when disabled.
    pub fn try_withdraw(&self) -> bool {
        if !self.inner.config.enabled {
            return true;
        }
        // Deposits only ever add, so a balance read under this lock cannot be overdrawn by
        // anything but another withdrawal, which waits for it.
        let _one_at_a_time = self
            .inner
            .withdrawing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if self.balance(now) < TOKEN {
            return false;
        }
        self.inner.slots.add(now, -TOKEN);
        true
    }

    /// Gives back a token taken for a retry that was not made after all.
    pub(crate) fn refund(&self) {
        if self.inner.config.enabled {
            self.inner.slots.add(Instant::now(), TOKEN);
        }
    }

    /// How many retries the bucket would allow right now; `u32::MAX` when disabled.
    pub fn available(&self) -> u32 {
        if !self.inner.config.enabled {
            return u32::MAX;
        }
        let tokens = self.balance(Instant::now()).max(0) / TOKEN;
        u32::try_from(tokens).unwrap_or(u32::MAX)
    }

    fn balance(&self, now: Instant) -> i64 {
        self.inner.reserve.saturating_add(self.inner.slots.sum(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_table_and_constants() {
        let c = RetryBudgetConfig::default();
        assert_eq!(c, RetryBudgetConfig::new());
        c.validate().unwrap();
        assert!((c.ratio - DEFAULT_BUDGET_RATIO).abs() < f64::EPSILON);
        assert!((c.min_per_sec - DEFAULT_BUDGET_MIN_PER_SEC).abs() < f64::EPSILON);
        assert_eq!(c.window, DEFAULT_BUDGET_WINDOW);
        let doc = include_str!("budget.rs");
        for (key, value) in [
            ("enabled", c.enabled.to_string()),
            ("ratio", format!("{:?}", c.ratio)),
            ("min_per_sec", format!("{:?}", c.min_per_sec)),
            ("window", fmt_duration(c.window)),
        ] {
            assert_eq!(
                crate::doc_table::cell(doc, key, 1),
                Some(value),
                "the rustdoc Defaults row of `{key}`"
            );
        }
    }

    #[test]
    fn an_empty_config_gives_the_defaults_and_durations_are_humantime() {
        let c: RetryBudgetConfig = toml::from_str("").unwrap();
        assert_eq!(c, RetryBudgetConfig::default());
        let c: RetryBudgetConfig =
            toml::from_str("ratio = 0.1\nmin_per_sec = 2\nwindow = \"30s\"").unwrap();
        assert!((c.min_per_sec - 2.0).abs() < f64::EPSILON);
        assert_eq!(c.window, Duration::from_secs(30));
        let round = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<RetryBudgetConfig>(&round).unwrap(), c);
        let err = toml::from_str::<RetryBudgetConfig>("percent = 20").unwrap_err();
        assert!(err.to_string().contains("percent"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let c = RetryBudgetConfig::new;
        for (config, field) in [
            (c().with_ratio(1.5), "ratio"),
            (c().with_ratio(-0.1), "ratio"),
            (c().with_ratio(f64::NAN), "ratio"),
            (c().with_min_per_sec(-1.0), "min_per_sec"),
            (c().with_min_per_sec(f64::INFINITY), "min_per_sec"),
            (c().with_window(Duration::ZERO), "window"),
            (c().with_window(Duration::from_secs(600)), "window"),
        ] {
            let err = RetryBudget::new("x", config).unwrap_err();
            assert_eq!(err.field(), field, "{err}");
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_min_per_sec_times_window_and_refills() {
        let budget = RetryBudget::new("x", RetryBudgetConfig::new()).unwrap();
        assert_eq!(budget.available(), 10);
        for _ in 0..10 {
            assert!(budget.try_withdraw());
        }
        assert!(!budget.try_withdraw());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(budget.available(), 10, "the withdrawals expired");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refund_gives_the_token_back() {
        let budget = RetryBudget::new("x", RetryBudgetConfig::new()).unwrap();
        assert!(budget.try_withdraw());
        assert_eq!(budget.available(), 9);
        budget.refund();
        assert_eq!(budget.available(), 10);
    }

    #[test]
    fn disabled_never_refuses() {
        let config = RetryBudgetConfig::new()
            .with_enabled(false)
            .with_min_per_sec(0.0);
        let budget = RetryBudget::new("x", config).unwrap();
        for _ in 0..1000 {
            assert!(budget.try_withdraw());
        }
        assert_eq!(budget.available(), u32::MAX);
    }

    #[test]
    fn the_ratio_is_kept_in_thousandths() {
        let config = RetryBudgetConfig::new().with_ratio(0.125);
        let budget = RetryBudget::new("x", config.clone()).unwrap();
        assert_eq!(budget.per_mille(), 125);
        assert_eq!(budget.config(), &config);
    }
}
