//! Every default and limit of the core in one place, each with the reason for its value.
//!
//! The `# Defaults` tables of [`RetryPolicy`](crate::RetryPolicy),
//! [`RetryBudgetConfig`](crate::budget::RetryBudgetConfig),
//! [`CircuitBreakerConfig`](crate::breaker::CircuitBreakerConfig),
//! [`RateLimitConfig`](crate::rate_limit::RateLimitConfig) and
//! [`PollPolicy`](crate::PollPolicy) show the same numbers; unit tests check that the tables,
//! these constants and each type's `new()` agree.

use std::time::Duration;

use crate::Jitter;

// The retry policy.

/// Default for [`RetryPolicy::max_retries`](crate::RetryPolicy::max_retries): 3 retries on top
/// of the first attempt (the seed plan's `max_retries=3`).
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default for [`RetryPolicy::base_delay`](crate::RetryPolicy::base_delay): 1 s, the seed plan's
/// first wait.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_secs(1);
/// Default for [`RetryPolicy::max_delay`](crate::RetryPolicy::max_delay): 30 s, the seed plan's
/// cap on one wait.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);
/// Default for [`RetryPolicy::multiplier`](crate::RetryPolicy::multiplier): each wait doubles
/// (the seed plan's `exponential_base`).
pub const DEFAULT_MULTIPLIER: f64 = 2.0;
/// Default for [`RetryPolicy::jitter`](crate::RetryPolicy::jitter): none, so the schedule is
/// exactly 1 → 2 → 4 s as planned.
pub const DEFAULT_JITTER: Jitter = Jitter::None;
/// Default for [`RetryPolicy::attempt_timeout`](crate::RetryPolicy::attempt_timeout): 30 s, the
/// seed plan's most common per-call timeout.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`RetryPolicy::deadline`](crate::RetryPolicy::deadline): 2 min, room for the
/// default schedule's waits (7 s) and several full attempts, yet far below the ~600 s the OpenAI
/// SDK would hang for.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
/// Default for [`RetryPolicy::max_retry_after`](crate::RetryPolicy::max_retry_after): 120 s, the
/// ceiling openai-python applies to a server-requested wait (longer waits give up instead of
/// sleeping).
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// The largest accepted [`RetryPolicy::max_retries`](crate::RetryPolicy::max_retries); more is
/// almost certainly a typo.
pub const MAX_RETRIES_LIMIT: u32 = 100;
/// Server-requested waits longer than this are treated as garbage (a broken or hostile server)
/// and ignored by [`parse_retry_after`](crate::parse_retry_after), so the caller falls back to
/// its own backoff. Waits between
/// [`RetryPolicy::max_retry_after`](crate::RetryPolicy::max_retry_after) and this stop the retry
/// loop with an error that names the wait.
pub const MAX_SANE_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

// The retry budget.

/// Default for [`RetryBudgetConfig::ratio`](crate::budget::RetryBudgetConfig::ratio): retries
/// may add 20 % to the calls made (tower's `TpsBudget`, reqwest's retry budget and Envoy all use
/// 20 %).
pub const DEFAULT_BUDGET_RATIO: f64 = 0.2;
/// Default for [`RetryBudgetConfig::min_per_sec`](crate::budget::RetryBudgetConfig::min_per_sec):
/// one retry per second is always allowed, so a quiet client (a call every few seconds) can
/// still retry every failure.
pub const DEFAULT_BUDGET_MIN_PER_SEC: f64 = 1.0;
/// Default for [`RetryBudgetConfig::window`](crate::budget::RetryBudgetConfig::window): deposits
/// and withdrawals count for 10 s (tower's and reqwest's TTL), so traffic from long ago does not
/// bank retries.
pub const DEFAULT_BUDGET_WINDOW: Duration = Duration::from_secs(10);

// The circuit breaker.

/// Default for
/// [`CircuitBreakerConfig::consecutive_failures`](crate::breaker::CircuitBreakerConfig::consecutive_failures):
/// 5 failed attempts in a row open the circuit (failsafe-rs's default).
pub const DEFAULT_BREAKER_CONSECUTIVE_FAILURES: u32 = 5;
/// Default for
/// [`CircuitBreakerConfig::failure_ratio`](crate::breaker::CircuitBreakerConfig::failure_ratio):
/// half the attempts failing opens the circuit (resilience4j's and tower-resilience's default).
pub const DEFAULT_BREAKER_FAILURE_RATIO: f64 = 0.5;
/// Default for [`CircuitBreakerConfig::min_calls`](crate::breaker::CircuitBreakerConfig::min_calls):
/// the ratio is judged on at least 10 attempts, so two unlucky calls do not open it.
pub const DEFAULT_BREAKER_MIN_CALLS: u32 = 10;
/// Default for [`CircuitBreakerConfig::window`](crate::breaker::CircuitBreakerConfig::window):
/// 60 s, twice the default attempt timeout, so a window can hold the outcome of attempts that
/// time out (M.E.H.R. checks the same rule).
pub const DEFAULT_BREAKER_WINDOW: Duration = Duration::from_secs(60);
/// Default for [`CircuitBreakerConfig::open_for`](crate::breaker::CircuitBreakerConfig::open_for):
/// 10 s before the first probe (failsafe-rs).
pub const DEFAULT_BREAKER_OPEN_FOR: Duration = Duration::from_secs(10);
/// Default for
/// [`CircuitBreakerConfig::max_open_for`](crate::breaker::CircuitBreakerConfig::max_open_for):
/// the wait doubles on each failed probe up to 2 min, so a long outage is probed rarely, yet
/// recovery is noticed within 2 min.
pub const DEFAULT_BREAKER_MAX_OPEN_FOR: Duration = Duration::from_secs(120);
/// Default for
/// [`CircuitBreakerConfig::half_open_probes`](crate::breaker::CircuitBreakerConfig::half_open_probes):
/// one call tests the water.
pub const DEFAULT_BREAKER_HALF_OPEN_PROBES: u32 = 1;

// The rate limit.

/// Default for [`RateLimitConfig::burst`](crate::rate_limit::RateLimitConfig::burst): 1,
/// requests evenly spaced (`per / requests` apart). A larger burst lets that many go at once
/// after a quiet spell, but then up to `burst - 1` more than `requests` can land in one window
/// of `per`, which a server counting a sliding window rejects.
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 1;
/// The longest accepted [`RateLimitConfig::per`](crate::rate_limit::RateLimitConfig::per).
pub const MAX_RATE_LIMIT_PER: Duration = Duration::from_secs(3600);

// Polling.

/// Default for [`PollPolicy::interval`](crate::PollPolicy::interval): 5 s before the second
/// check.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Default for [`PollPolicy::max_interval`](crate::PollPolicy::max_interval): 30 s, Suno's
/// suggested polling interval.
pub const DEFAULT_POLL_MAX_INTERVAL: Duration = Duration::from_secs(30);
/// Default for [`PollPolicy::multiplier`](crate::PollPolicy::multiplier): the wait grows by half
/// per check.
pub const DEFAULT_POLL_MULTIPLIER: f64 = 1.5;
/// Default for [`PollPolicy::deadline`](crate::PollPolicy::deadline): 10 min for a whole job.
pub const DEFAULT_POLL_DEADLINE: Duration = Duration::from_secs(600);
