//! A circuit breaker shared by every call to one upstream: stop calling it while it is down.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use crate::classify::Outcome;
use crate::defaults::{
    DEFAULT_BREAKER_CONSECUTIVE_FAILURES, DEFAULT_BREAKER_FAILURE_RATIO,
    DEFAULT_BREAKER_HALF_OPEN_PROBES, DEFAULT_BREAKER_MAX_OPEN_FOR, DEFAULT_BREAKER_MIN_CALLS,
    DEFAULT_BREAKER_OPEN_FOR, DEFAULT_BREAKER_WINDOW,
};
use crate::window::AtomicWindow;
use crate::{PolicyError, fmt_duration};

/// The shortest accepted [`CircuitBreakerConfig::window`].
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// When a circuit breaker opens, how long it stays open and how it closes again.
///
/// The breaker counts **attempts** (each retry is an attempt), as reported with an [`Outcome`]:
///
/// - [`Outcome::Failure`] (a transient failure: 5xx, timeout, connection error) counts toward
///   opening;
/// - [`Outcome::Success`] (a success, or a permanent error such as 400 or 404: the upstream
///   answered, the request was wrong) counts as the upstream being up and ends a run of failures;
/// - [`Outcome::RateLimited`] (a 429 or 503 carrying `Retry-After`) counts as neither: a
///   rate-limited upstream is alive and asking us to slow down, which `Retry-After` and the
///   [`RetryBudget`](crate::budget::RetryBudget) take care of. It neither opens the circuit nor hides
///   the failures around it.
///
/// **Closed → Open** when `consecutive_failures` attempts fail in a row within `window`, or when
/// at least `min_calls` attempts ended within `window` and `failure_ratio` of them failed.
/// **Open**: every call fails fast with [`CircuitOpen`], which says when the next probe is due.
/// **Open → HalfOpen** after `open_for`, at the first call (or [`state`](CircuitBreaker::state))
/// after it. **HalfOpen**: `half_open_probes` calls go through, the others fail fast; once that
/// many probes succeed it closes; a failed probe opens it again for twice as long as the last
/// time, up to `max_open_for`; a rate-limited probe settles nothing, and the next call probes
/// again.
///
/// # Defaults
///
/// | field | default | meaning |
/// |---|---|---|
/// | `enabled` | `true` | `false` switches the breaker off: every call goes through |
/// | `consecutive_failures` | `5` | failed attempts in a row (within `window`) that open it |
/// | `failure_ratio` | `0.5` | share of failed attempts in `window` that opens it… |
/// | `min_calls` | `10` | …once `window` holds at least this many attempts |
/// | `window` | `1m` | how far back failures count (at least 1 s) |
/// | `open_for` | `10s` | how long it stays open before the first probe |
/// | `max_open_for` | `2m` | cap on the open time, which doubles after each failed probe |
/// | `half_open_probes` | `1` | calls let through to test the upstream; all must succeed to close |
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::breaker::CircuitBreakerConfig;
///
/// let config: CircuitBreakerConfig =
///     toml::from_str("consecutive_failures = 3\nopen_for = \"30s\"\nmax_open_for = \"5m\"").unwrap();
/// config.validate().unwrap();
/// assert_eq!(config.open_for, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Whether the breaker acts at all.
    pub enabled: bool,
    /// Failed attempts in a row (within `window`) that open the circuit (at least 1).
    pub consecutive_failures: u32,
    /// Share of failed attempts within `window` that opens the circuit (above 0, at most 1).
    pub failure_ratio: f64,
    /// Attempts `window` must hold before `failure_ratio` is judged (at least 1).
    pub min_calls: u32,
    /// How far back outcomes count.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long the circuit stays open before the first probe.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
    /// The cap on the open time, which doubles after each failed probe (at least `open_for`;
    /// equal to it for a fixed wait).
    #[serde(with = "humantime_serde")]
    pub max_open_for: Duration,
    /// Calls let through while half-open; all must succeed to close (at least 1).
    pub half_open_probes: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl CircuitBreakerConfig {
    /// The documented defaults (see the table above).
    pub const fn new() -> Self {
        Self {
            enabled: true,
            consecutive_failures: DEFAULT_BREAKER_CONSECUTIVE_FAILURES,
            failure_ratio: DEFAULT_BREAKER_FAILURE_RATIO,
            min_calls: DEFAULT_BREAKER_MIN_CALLS,
            window: DEFAULT_BREAKER_WINDOW,
            open_for: DEFAULT_BREAKER_OPEN_FOR,
            max_open_for: DEFAULT_BREAKER_MAX_OPEN_FOR,
            half_open_probes: DEFAULT_BREAKER_HALF_OPEN_PROBES,
        }
    }

    /// Sets [`enabled`](Self::enabled).
    pub const fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
    /// Sets [`consecutive_failures`](Self::consecutive_failures).
    pub const fn with_consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = n;
        self
    }
    /// Sets [`failure_ratio`](Self::failure_ratio).
    pub const fn with_failure_ratio(mut self, ratio: f64) -> Self {
        self.failure_ratio = ratio;
        self
    }
    /// Sets [`min_calls`](Self::min_calls).
    pub const fn with_min_calls(mut self, n: u32) -> Self {
        self.min_calls = n;
        self
    }
    /// Sets [`window`](Self::window).
    pub const fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }
    /// Sets [`open_for`](Self::open_for).
    pub const fn with_open_for(mut self, open_for: Duration) -> Self {
        self.open_for = open_for;
        self
    }
    /// Sets [`max_open_for`](Self::max_open_for).
    pub const fn with_max_open_for(mut self, max_open_for: Duration) -> Self {
        self.max_open_for = max_open_for;
        self
    }
    /// Sets [`half_open_probes`](Self::half_open_probes).
    pub const fn with_half_open_probes(mut self, n: u32) -> Self {
        self.half_open_probes = n;
        self
    }

    /// Checks the invariants, naming the offending field.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] when `consecutive_failures`, `min_calls` or `half_open_probes` is 0,
    /// `failure_ratio` is not above 0 and at most 1, `window` is under 1 s, `open_for` is zero,
    /// or `max_open_for` is shorter than `open_for`.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let at_least_one = |field, value: u32| {
            if value == 0 {
                Err(PolicyError::new(field, "must be at least 1".to_owned()))
            } else {
                Ok(())
            }
        };
        at_least_one("consecutive_failures", self.consecutive_failures)?;
        at_least_one("min_calls", self.min_calls)?;
        at_least_one("half_open_probes", self.half_open_probes)?;
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(PolicyError::new(
                "failure_ratio",
                format!("{} must be above 0 and at most 1", self.failure_ratio),
            ));
        }
        if self.window < MIN_WINDOW {
            return Err(PolicyError::new(
                "window",
                format!(
                    "{} is shorter than {}",
                    fmt_duration(self.window),
                    fmt_duration(MIN_WINDOW)
                ),
            ));
        }
        if self.open_for.is_zero() {
            return Err(PolicyError::new(
                "open_for",
                "must be greater than zero".to_owned(),
            ));
        }
        if self.max_open_for < self.open_for {
            return Err(PolicyError::new(
                "max_open_for",
                format!(
                    "{} is shorter than open_for ({})",
                    fmt_duration(self.max_open_for),
                    fmt_duration(self.open_for)
                ),
            ));
        }
        Ok(())
    }
}

/// The state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls fail fast until the next probe is due.
    Open,
    /// A few probe calls go through; the others fail fast.
    HalfOpen,
}

impl CircuitState {
    /// The lowercase name for logs and displays: `closed`, `open`, `half-open`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of a [`CircuitBreaker`]'s state, as seen by an
/// [`on_state_change`](CircuitBreaker::on_state_change) hook.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateChange {
    /// The upstream's name.
    pub upstream: Arc<str>,
    /// The state before.
    pub from: CircuitState,
    /// The state now.
    pub to: CircuitState,
    /// When `to` is [`Open`](CircuitState::Open): how long until the next probe.
    pub open_for: Option<Duration>,
}

/// A call refused by an open circuit breaker: no request was sent.
///
/// Displays as `circuit open for suno, next probe in 4.2s` (or, while a half-open probe is in
/// flight, `circuit half-open for suno, waiting for a probe`). The retry loop turns it into the
/// operation's error type through `From` (see [`Retry::breaker`](crate::Retry::breaker)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe_open(upstream, *retry_in))]
pub struct CircuitOpen {
    /// The upstream's name.
    pub upstream: Arc<str>,
    /// How long until the breaker lets a probe through; zero while a probe is in flight.
    pub retry_in: Duration,
}

impl From<CircuitOpen> for std::io::Error {
    fn from(e: CircuitOpen) -> Self {
        std::io::Error::other(e)
    }
}

pub(crate) fn describe_open(upstream: &str, retry_in: Duration) -> String {
    if retry_in.is_zero() {
        format!("circuit half-open for {upstream}, waiting for a probe")
    } else {
        format!(
            "circuit open for {upstream}, next probe in {}",
            fmt_duration(retry_in)
        )
    }
}

type Hook = Arc<dyn Fn(&StateChange) + Send + Sync>;

/// A circuit breaker for one upstream, shared by every call to it.
///
/// Cheap to clone: clones share the same state (an [`Arc`] inside), so make one per upstream at
/// start-up and hand it to every [`Retry`](crate::Retry) with
/// [`breaker`](crate::Retry::breaker), which asks it before every attempt and reports every
/// outcome. See [`CircuitBreakerConfig`] for the rules and defaults.
///
/// While the circuit is closed, asking for permission and reporting a success or a rate limit
/// take no lock (an atomic read, and one atomic add into the window of successes); failures,
/// probes and state changes take the lock.
///
/// State changes are logged with `tracing` (warn when it opens, info when it goes half-open or
/// closes) and passed to [`on_state_change`](Self::on_state_change) hooks.
///
/// Used by hand, a call takes a [`BreakerPermit`] and reports how it went:
///
/// ```
/// use encore_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, CircuitState, Outcome};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let config = CircuitBreakerConfig::new().with_consecutive_failures(2);
/// let breaker = CircuitBreaker::new("suno", config).unwrap();
/// for _ in 0..2 {
///     let permit = breaker.try_acquire().unwrap();
///     permit.record(Outcome::Failure); // e.g. http 503
/// }
/// assert_eq!(breaker.state(), CircuitState::Open);
/// let refused = breaker.try_acquire().unwrap_err();
/// assert_eq!(refused.to_string(), "circuit open for suno, next probe in 10s");
/// # }
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Arc<str>,
    config: CircuitBreakerConfig,
    /// The phase (low 2 bits: [`CLOSED`], [`OPEN`], [`HALF_OPEN`]) and the generation (the rest),
    /// readable without the lock; written only with `state` locked.
    word: AtomicU64,
    /// Failed attempts in a row; successes reset it without the lock.
    streak: AtomicU32,
    /// Successful and failed attempts within the window, while closed.
    successes: AtomicWindow,
    failures: AtomicWindow,
    state: Mutex<State>,
    hooks: Mutex<Vec<Hook>>,
    /// Wakes the calls queued for a rate-limit slot when the circuit opens.
    opened: tokio::sync::Notify,
}

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;

const fn word(phase: &Phase, generation: u64) -> u64 {
    let bits = match phase {
        Phase::Closed => CLOSED,
        Phase::Open { .. } => OPEN,
        Phase::HalfOpen { .. } => HALF_OPEN,
    };
    (generation << 2) | bits
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Bumped on every transition; outcomes of permits from another generation are ignored.
    generation: u64,
    /// When the first failure of the current streak was recorded.
    streak_start: Instant,
    /// How long the circuit was open the last time (the base for doubling).
    last_open_for: Duration,
}

/// Leave for one attempt, as the breaker handed it out: its generation and whether it is a
/// half-open probe, in one word (the retry loop holds one across every attempt).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl Ticket {
    const fn new(generation: u64, probe: bool) -> Self {
        Ticket((generation << 1) | probe as u64)
    }
    const fn generation(self) -> u64 {
        self.0 >> 1
    }
    const fn probe(self) -> bool {
        self.0 & 1 == 1
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("upstream", &self.inner.upstream)
            .field("config", &self.inner.config)
            .field("state", &self.lock().phase)
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A closed breaker for the calls to `upstream` (a name for messages, e.g. `suno`).
    ///
    /// # Errors
    ///
    /// The [`PolicyError`] of [`CircuitBreakerConfig::validate`].
    pub fn new(
        upstream: impl Into<Arc<str>>,
        config: CircuitBreakerConfig,
    ) -> Result<Self, PolicyError> {
        config.validate()?;
        let now = Instant::now();
        Ok(Self {
            inner: Arc::new(Inner {
                upstream: upstream.into(),
                word: AtomicU64::new(word(&Phase::Closed, 0)),
                streak: AtomicU32::new(0),
                successes: AtomicWindow::new(config.window),
                failures: AtomicWindow::new(config.window),
                state: Mutex::new(State {
                    phase: Phase::Closed,
                    generation: 0,
                    streak_start: now,
                    last_open_for: Duration::ZERO,
                }),
                config,
                hooks: Mutex::default(),
                opened: tokio::sync::Notify::new(),
            }),
        })
    }

    /// The upstream's name.
    pub fn upstream(&self) -> &str {
        &self.inner.upstream
    }

    /// The configuration.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.inner.config
    }

    fn is_closed_fast(&self) -> bool {
        !self.inner.config.enabled || self.inner.word.load(Ordering::Acquire) & 3 == CLOSED
    }

    /// The current state (an open circuit whose `open_for` has passed turns half-open here).
    pub fn state(&self) -> CircuitState {
        if self.is_closed_fast() {
            return CircuitState::Closed;
        }
        let mut state = self.lock();
        let change = self.refresh(&mut state, Instant::now());
        let phase = state.phase;
        drop(state);
        self.emit(change);
        match phase {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Calls `hook` on every state change of this breaker (and of its clones), after the change
    /// and outside any lock. Hooks may run on any thread; keep them short.
    pub fn on_state_change(&self, hook: impl Fn(&StateChange) + Send + Sync + 'static) {
        self.inner
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(hook));
    }

    /// Asks to make a call: a [`BreakerPermit`] to report its outcome with, or [`CircuitOpen`]
    /// when the call must not be made. Always a permit when disabled.
    ///
    /// Dropping a permit without [`record`](BreakerPermit::record)ing (e.g. a cancelled call)
    /// reports nothing, and frees its half-open probe slot for another call.
    ///
    /// # Errors
    ///
    /// [`CircuitOpen`] while the circuit is open, or half-open with every probe slot taken.
    pub fn try_acquire(&self) -> Result<BreakerPermit, CircuitOpen> {
        let ticket = self.admit()?;
        Ok(BreakerPermit {
            breaker: self.clone(),
            ticket,
            recorded: false,
        })
    }

    /// [`try_acquire`](Self::try_acquire) for the retry loop: leave that borrows the breaker.
    pub(crate) fn pass(&self) -> Result<Pass<'_>, CircuitOpen> {
        let ticket = self.admit()?;
        Ok(Pass {
            breaker: self,
            ticket,
        })
    }

    fn admit(&self) -> Result<Ticket, CircuitOpen> {
        if !self.inner.config.enabled {
            return Ok(Ticket::new(0, false));
        }
        // The fast path: closed, no lock.
        let w = self.inner.word.load(Ordering::Acquire);
        if w & 3 == CLOSED {
            return Ok(Ticket::new(w >> 2, false));
        }
        let now = Instant::now();
        let mut state = self.lock();
        let change = self.refresh(&mut state, now);
        let generation = state.generation;
        let probes = self.inner.config.half_open_probes;
        let result = match &mut state.phase {
            Phase::Closed => Ok(Ticket::new(generation, false)),
            Phase::Open { until } => Err(self.refusal(until.saturating_duration_since(now))),
            Phase::HalfOpen {
                in_flight,
                successes,
            } => {
                if *in_flight + *successes < probes {
                    *in_flight += 1;
                    Ok(Ticket::new(generation, true))
                } else {
                    Err(self.refusal(Duration::ZERO))
                }
            }
        };
        drop(state);
        self.emit(change);
        result
    }

    /// Whether a call made now would be refused, without taking a probe slot (the retry loop
    /// asks before it queues for a rate-limit slot).
    pub(crate) fn check(&self) -> Result<(), CircuitOpen> {
        if self.is_closed_fast() {
            return Ok(());
        }
        let now = Instant::now();
        let mut state = self.lock();
        let change = self.refresh(&mut state, now);
        let result = match state.phase {
            Phase::Closed => Ok(()),
            Phase::Open { until } => Err(self.refusal(until.saturating_duration_since(now))),
            Phase::HalfOpen {
                in_flight,
                successes,
            } => {
                if in_flight + successes < self.inner.config.half_open_probes {
                    Ok(())
                } else {
                    Err(self.refusal(Duration::ZERO))
                }
            }
        };
        drop(state);
        self.emit(change);
        result
    }

    /// The refusal a retry that waits `wait` first would meet: the circuit is open and will
    /// still be open when the wait ends.
    pub(crate) fn refuses_after(&self, wait: Duration) -> Option<CircuitOpen> {
        if self.is_closed_fast() {
            return None;
        }
        let now = Instant::now();
        match self.lock().phase {
            Phase::Open { until } if until.saturating_duration_since(now) > wait => {
                Some(self.refusal(until.saturating_duration_since(now)))
            }
            _ => None,
        }
    }

    /// The refusal a call would meet now if the circuit is open (not half-open), with how long
    /// until its next probe.
    pub(crate) fn open_now(&self) -> Option<CircuitOpen> {
        self.refuses_after(Duration::ZERO)
    }

    /// Completes when the circuit opens (enable it before checking the state).
    pub(crate) fn opened(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.opened.notified()
    }

    fn refusal(&self, retry_in: Duration) -> CircuitOpen {
        CircuitOpen {
            upstream: self.inner.upstream.clone(),
            retry_in,
        }
    }

    /// Reports the outcome of the attempt `ticket` let through (`None`: abandoned).
    fn record(&self, ticket: Ticket, outcome: Option<Outcome>) {
        if !self.inner.config.enabled {
            return;
        }
        if !ticket.probe() {
            match outcome {
                // Abandoned, or rate limited: neither way.
                None | Some(Outcome::RateLimited) => return,
                // The fast path: a success while closed, no lock.
                Some(Outcome::Success) => {
                    let current = self.inner.word.load(Ordering::Acquire);
                    if current == (ticket.generation() << 2) | CLOSED {
                        if self.inner.streak.load(Ordering::Relaxed) != 0 {
                            self.inner.streak.store(0, Ordering::Relaxed);
                        }
                        self.inner.successes.add(Instant::now(), 1);
                    }
                    return;
                }
                Some(Outcome::Failure) => {}
            }
        }
        let now = Instant::now();
        let config = &self.inner.config;
        let mut state = self.lock();
        if state.generation != ticket.generation() {
            return; // the state changed while the call was running; its outcome is stale
        }
        let change = match (state.phase, outcome) {
            (Phase::Closed, Some(Outcome::Failure)) => {
                let streak = &self.inner.streak;
                if streak.load(Ordering::Relaxed) == 0
                    || now.duration_since(state.streak_start) > config.window
                {
                    streak.store(0, Ordering::Relaxed);
                    state.streak_start = now;
                }
                let in_a_row = streak.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                self.inner.failures.add(now, 1);
                let failures = self.inner.failures.sum(now).max(0);
                let calls = failures.saturating_add(self.inner.successes.sum(now).max(0));
                if in_a_row >= config.consecutive_failures {
                    let why = format!("{in_a_row} failed attempts in a row");
                    Some(self.open(&mut state, now, config.open_for, &why))
                } else if calls >= i64::from(config.min_calls)
                    && failures as f64 >= config.failure_ratio * calls as f64
                {
                    let why = format!(
                        "{failures} of the last {calls} attempts failed within {}",
                        fmt_duration(config.window)
                    );
                    Some(self.open(&mut state, now, config.open_for, &why))
                } else {
                    None
                }
            }
            // Only probes are handed out while half-open (an older ticket's outcome was dropped
            // above as stale).
            (
                Phase::HalfOpen {
                    in_flight,
                    successes,
                },
                outcome,
            ) => {
                let in_flight = in_flight.saturating_sub(1);
                match outcome {
                    Some(Outcome::Success) if successes + 1 >= config.half_open_probes => {
                        Some(self.close(&mut state, now))
                    }
                    Some(Outcome::Success) => {
                        state.phase = Phase::HalfOpen {
                            in_flight,
                            successes: successes + 1,
                        };
                        None
                    }
                    Some(Outcome::Failure) => {
                        let open_for = state
                            .last_open_for
                            .saturating_mul(2)
                            .clamp(config.open_for, config.max_open_for);
                        Some(self.open(&mut state, now, open_for, "a probe failed"))
                    }
                    // Rate limited or abandoned: settles nothing; the slot is free again.
                    Some(Outcome::RateLimited) | None => {
                        state.phase = Phase::HalfOpen {
                            in_flight,
                            successes,
                        };
                        None
                    }
                }
            }
            _ => None,
        };
        drop(state);
        self.emit(change);
    }

    /// Moves to `phase` with a new generation, visible to the lock-free readers.
    fn set_phase(&self, state: &mut State, phase: Phase) {
        state.phase = phase;
        state.generation += 1;
        self.inner
            .word
            .store(word(&phase, state.generation), Ordering::Release);
    }

    /// Turns an open circuit whose time is up half-open.
    fn refresh(&self, state: &mut State, now: Instant) -> Option<StateChange> {
        match state.phase {
            Phase::Open { until } if now >= until => {
                self.set_phase(
                    state,
                    Phase::HalfOpen {
                        in_flight: 0,
                        successes: 0,
                    },
                );
                let probes = self.inner.config.half_open_probes;
                tracing::info!(
                    upstream = %self.inner.upstream,
                    state = "half-open",
                    probes,
                    "{}: circuit half-open, letting {probes} probe{} through",
                    self.inner.upstream,
                    if probes == 1 { "" } else { "s" },
                );
                Some(self.change(CircuitState::Open, CircuitState::HalfOpen, None))
            }
            _ => None,
        }
    }

    fn forget_counts(&self, state: &mut State, now: Instant) {
        self.inner.streak.store(0, Ordering::Relaxed);
        state.streak_start = now;
        self.inner.successes.reset(now);
        self.inner.failures.reset(now);
    }

    fn open(&self, state: &mut State, now: Instant, open_for: Duration, why: &str) -> StateChange {
        let from = match state.phase {
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
            _ => CircuitState::Closed,
        };
        self.set_phase(
            state,
            Phase::Open {
                until: now + open_for,
            },
        );
        state.last_open_for = open_for;
        self.forget_counts(state, now);
        self.inner.opened.notify_waiters();
        tracing::warn!(
            upstream = %self.inner.upstream,
            state = "open",
            open_for_ms = open_for.as_millis() as u64,
            "{}: circuit opened ({why}), failing fast; next probe in {}",
            self.inner.upstream,
            fmt_duration(open_for),
        );
        self.change(from, CircuitState::Open, Some(open_for))
    }

    fn close(&self, state: &mut State, now: Instant) -> StateChange {
        self.set_phase(state, Phase::Closed);
        state.last_open_for = Duration::ZERO;
        self.forget_counts(state, now);
        tracing::info!(
            upstream = %self.inner.upstream,
            state = "closed",
            "{}: circuit closed, the upstream answered again",
            self.inner.upstream,
        );
        self.change(CircuitState::HalfOpen, CircuitState::Closed, None)
    }

    fn change(
        &self,
        from: CircuitState,
        to: CircuitState,
        open_for: Option<Duration>,
    ) -> StateChange {
        StateChange {
            upstream: self.inner.upstream.clone(),
            from,
            to,
            open_for,
        }
    }

    fn emit(&self, change: Option<StateChange>) {
        let Some(change) = change else { return };
        let hooks = self
            .inner
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for hook in hooks {
            hook(&change);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is updated in whole steps, so it stays valid even if a hook panicked.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Leave to make one call through a [`CircuitBreaker`]; report how it went with
/// [`record`](Self::record). Dropping it unrecorded reports nothing (a cancelled call).
#[must_use = "report the call's outcome with `record`"]
pub struct BreakerPermit {
    breaker: CircuitBreaker,
    ticket: Ticket,
    recorded: bool,
}

impl fmt::Debug for BreakerPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("upstream", &self.breaker.upstream())
            .field("probe", &self.ticket.probe())
            .finish_non_exhaustive()
    }
}

impl BreakerPermit {
    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.ticket.probe()
    }

    /// Reports the call's outcome to the breaker.
    pub fn record(mut self, outcome: Outcome) {
        self.recorded = true;
        self.breaker.record(self.ticket, Some(outcome));
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        if !self.recorded && self.ticket.probe() {
            self.breaker.record(self.ticket, None);
        }
    }
}

/// A [`BreakerPermit`] that borrows its breaker (no reference count touched per attempt), two
/// words wide.
pub(crate) struct Pass<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Ticket,
}

impl Pass<'_> {
    pub(crate) fn record(self, outcome: Outcome) {
        self.breaker.record(self.ticket, Some(outcome));
        // Recorded: nothing left for `Drop` to release.
        std::mem::forget(self);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.ticket.probe() {
            self.breaker.record(self.ticket, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_table_and_constants() {
        let c = CircuitBreakerConfig::default();
        assert_eq!(c, CircuitBreakerConfig::new());
        c.validate().unwrap();
        assert_eq!(
            (c.consecutive_failures, c.min_calls, c.half_open_probes),
            (
                DEFAULT_BREAKER_CONSECUTIVE_FAILURES,
                DEFAULT_BREAKER_MIN_CALLS,
                DEFAULT_BREAKER_HALF_OPEN_PROBES
            )
        );
        assert_eq!(
            (c.window, c.open_for, c.max_open_for),
            (
                DEFAULT_BREAKER_WINDOW,
                DEFAULT_BREAKER_OPEN_FOR,
                DEFAULT_BREAKER_MAX_OPEN_FOR
            )
        );
        assert!((c.failure_ratio - DEFAULT_BREAKER_FAILURE_RATIO).abs() < f64::EPSILON);
        let doc = include_str!("breaker.rs");
        for (key, value) in [
            ("enabled", c.enabled.to_string()),
            ("consecutive_failures", c.consecutive_failures.to_string()),
            ("failure_ratio", format!("{:?}", c.failure_ratio)),
            ("min_calls", c.min_calls.to_string()),
            ("window", fmt_duration(c.window)),
            ("open_for", fmt_duration(c.open_for)),
            ("max_open_for", fmt_duration(c.max_open_for)),
            ("half_open_probes", c.half_open_probes.to_string()),
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
        let c: CircuitBreakerConfig = toml::from_str("").unwrap();
        assert_eq!(c, CircuitBreakerConfig::default());
        let c: CircuitBreakerConfig =
            toml::from_str("window = \"1m 30s\"\nopen_for = \"500ms\"\nhalf_open_probes = 2")
                .unwrap();
        assert_eq!(c.window, Duration::from_secs(90));
        assert_eq!(c.open_for, Duration::from_millis(500));
        assert_eq!(c.half_open_probes, 2);
        let round = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<CircuitBreakerConfig>(&round).unwrap(), c);
        let err = toml::from_str::<CircuitBreakerConfig>("threshold = 5").unwrap_err();
        assert!(err.to_string().contains("threshold"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let c = CircuitBreakerConfig::new;
        for (config, field) in [
            (c().with_consecutive_failures(0), "consecutive_failures"),
            (c().with_min_calls(0), "min_calls"),
            (c().with_half_open_probes(0), "half_open_probes"),
            (c().with_failure_ratio(0.0), "failure_ratio"),
            (c().with_failure_ratio(1.5), "failure_ratio"),
            (c().with_failure_ratio(f64::NAN), "failure_ratio"),
            (c().with_window(Duration::from_millis(10)), "window"),
            (c().with_open_for(Duration::ZERO), "open_for"),
            (
                c().with_max_open_for(Duration::from_secs(1)),
                "max_open_for",
            ),
        ] {
            let err = CircuitBreaker::new("x", config).unwrap_err();
            assert_eq!(err.field(), field, "{err}");
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn validation_accepts_its_bounds() {
        let c = CircuitBreakerConfig::new;
        for config in [
            c().with_window(MIN_WINDOW),
            c().with_failure_ratio(1.0),
            c().with_consecutive_failures(1)
                .with_min_calls(1)
                .with_half_open_probes(1),
            c().with_open_for(Duration::from_secs(30))
                .with_max_open_for(Duration::from_secs(30)),
        ] {
            assert!(
                CircuitBreaker::new("x", config.clone()).is_ok(),
                "{config:?}"
            );
        }
    }

    #[test]
    fn states_have_their_names() {
        for (state, name) in [
            (CircuitState::Closed, "closed"),
            (CircuitState::Open, "open"),
            (CircuitState::HalfOpen, "half-open"),
        ] {
            assert_eq!(state.as_str(), name);
            assert_eq!(state.to_string(), name);
        }
    }

    #[test]
    fn refusals_read_well() {
        let open = CircuitOpen {
            upstream: "suno".into(),
            retry_in: Duration::from_millis(4200),
        };
        assert_eq!(
            open.to_string(),
            "circuit open for suno, next probe in 4.2s"
        );
        let probing = CircuitOpen {
            upstream: "suno".into(),
            retry_in: Duration::ZERO,
        };
        assert_eq!(
            probing.to_string(),
            "circuit half-open for suno, waiting for a probe"
        );
        let io: std::io::Error = open.into();
        assert!(io.to_string().contains("circuit open"));
    }

    fn fail(breaker: &CircuitBreaker, n: u32) {
        for _ in 0..n {
            breaker.try_acquire().unwrap().record(Outcome::Failure);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_streak_older_than_the_window_starts_over() {
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        fail(&breaker, 4);
        tokio::time::advance(Duration::from_secs(61)).await;
        fail(&breaker, 4);
        assert_eq!(breaker.state(), CircuitState::Closed);
        fail(&breaker, 1);
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_unrecorded_frees_its_slot() {
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        let closed = breaker.try_acquire().unwrap();
        assert!(!closed.is_probe());
        drop(closed);
        fail(&breaker, 5);
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = breaker.try_acquire().unwrap();
        assert!(probe.is_probe());
        assert!(breaker.try_acquire().is_err(), "one probe at a time");
        drop(probe); // a cancelled call
        let again = breaker.try_acquire().unwrap();
        assert!(again.is_probe());
        again.record(Outcome::Success);
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_streak_exactly_a_window_long_still_counts() {
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        fail(&breaker, 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        fail(&breaker, 4);
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn the_open_time_doubles_per_failed_probe_up_to_the_cap_and_resets_on_close() {
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        fail(&breaker, 5);
        let mut waits = Vec::new();
        for _ in 0..6 {
            let retry_in = breaker.try_acquire().unwrap_err().retry_in;
            waits.push(retry_in.as_secs());
            tokio::time::advance(retry_in).await;
            fail(&breaker, 1); // the probe fails
        }
        assert_eq!(waits, [10, 20, 40, 80, 120, 120]);
        let wait = breaker.try_acquire().unwrap_err().retry_in;
        tokio::time::advance(wait).await;
        breaker.try_acquire().unwrap().record(Outcome::Success);
        assert_eq!(breaker.state(), CircuitState::Closed);
        fail(&breaker, 5);
        assert_eq!(
            breaker.try_acquire().unwrap_err().retry_in,
            Duration::from_secs(10)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stale_outcomes_are_ignored() {
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        let slow = breaker.try_acquire().unwrap(); // started while closed
        fail(&breaker, 5);
        slow.record(Outcome::Success); // arrives after the circuit opened
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_failure_arriving_while_probing_settles_nothing() {
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        let slow = breaker.try_acquire().unwrap(); // started while closed
        fail(&breaker, 5);
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = breaker.try_acquire().unwrap();
        slow.record(Outcome::Failure);
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        probe.record(Outcome::Success);
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn several_probes_must_all_succeed() {
        let config = CircuitBreakerConfig::new().with_half_open_probes(2);
        let breaker = CircuitBreaker::new("x", config).unwrap();
        fail(&breaker, 5);
        tokio::time::advance(Duration::from_secs(10)).await;
        let a = breaker.try_acquire().unwrap();
        let b = breaker.try_acquire().unwrap();
        assert!(a.is_probe() && b.is_probe());
        assert!(breaker.try_acquire().is_err(), "only two probes");
        a.record(Outcome::Success);
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        assert!(
            breaker.try_acquire().is_err(),
            "one probe succeeded, one is in flight: no third"
        );
        b.record(Outcome::Success);
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_takes_no_probe_slot_and_sees_when_none_is_left() {
        let config = CircuitBreakerConfig::new().with_half_open_probes(2);
        let breaker = CircuitBreaker::new("x", config.clone()).unwrap();
        assert_eq!(breaker.config(), &config);
        assert!(breaker.check().is_ok(), "closed");
        fail(&breaker, 5);
        assert_eq!(
            breaker.check().unwrap_err().retry_in,
            Duration::from_secs(10)
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        let mut seen = vec![breaker.check().is_ok()];
        let a = breaker.try_acquire().unwrap();
        seen.push(breaker.check().is_ok());
        let _b = breaker.try_acquire().unwrap();
        seen.push(breaker.check().is_ok());
        a.record(Outcome::Success);
        seen.push(breaker.check().is_ok());
        assert_eq!(seen, [true, true, false, false]);
        assert_eq!(breaker.check().unwrap_err().retry_in, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_ends_when_the_probe_is_due_is_not_refused() {
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        assert!(breaker.refuses_after(Duration::ZERO).is_none(), "closed");
        fail(&breaker, 5);
        let ten = Duration::from_secs(10);
        assert!(breaker.refuses_after(ten).is_none());
        let refused = breaker
            .refuses_after(Duration::from_nanos(9_999_999_999))
            .unwrap();
        assert_eq!(refused.retry_in, ten);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_cycle_a_success_still_ends_a_streak() {
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        fail(&breaker, 5);
        tokio::time::advance(Duration::from_secs(10)).await;
        breaker.try_acquire().unwrap().record(Outcome::Success);
        assert_eq!(breaker.state(), CircuitState::Closed);
        // 4 failures, a success, 4 failures: never 5 in a row, and 9 calls are under min_calls.
        fail(&breaker, 4);
        breaker.try_acquire().unwrap().record(Outcome::Success);
        fail(&breaker, 4);
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn after_one_open_and_close_failures_count_again() {
        // Three changes of state: the lock-free readers must see the generation they count in.
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        fail(&breaker, 5);
        tokio::time::advance(Duration::from_secs(10)).await;
        breaker.try_acquire().unwrap().record(Outcome::Success);
        assert_eq!(breaker.state(), CircuitState::Closed);
        fail(&breaker, 5);
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[test]
    fn a_closed_breaker_answers_without_its_lock() {
        // Every call asks the breaker: while it is closed that takes no lock. With the lock
        // held elsewhere, a closed breaker still admits, checks, reads and records successes.
        let breaker = CircuitBreaker::new("x", CircuitBreakerConfig::new()).unwrap();
        let held = breaker.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = breaker.clone();
        let thread = std::thread::spawn(move || {
            let state = reader.state();
            let checked = reader.check().is_ok();
            let open = reader.open_now().is_none();
            reader.try_acquire().unwrap().record(Outcome::Success);
            tx.send((state, checked, open)).unwrap();
        });
        let answer = rx.recv_timeout(Duration::from_secs(5));
        drop(held);
        thread.join().unwrap();
        assert_eq!(
            answer.expect("a closed breaker waited for its lock"),
            (CircuitState::Closed, true, true)
        );
    }

    #[test]
    fn disabled_lets_everything_through() {
        let config = CircuitBreakerConfig::new().with_enabled(false);
        let breaker = CircuitBreaker::new("x", config).unwrap();
        fail(&breaker, 100);
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert!(breaker.try_acquire().is_ok());
    }
}
