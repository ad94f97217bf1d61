//! Rate limits shared by every worker of one job store: the providers' quotas are per account,
//! not per process, so N `encore serve` processes each with its own limiter would send N times
//! the quota. [`StoreRateLimiter`] keeps the limiter's state in the database
//! ([`Store::take_quota`], a GCRA taken in one atomic statement), and a 429's `Retry-After`
//! holds every worker ([`Store::hold_quota`]). [`share_quotas`] installs one for each service
//! whose `[services.*].rate_limit` is enabled; circuit breakers and retry budgets stay per
//! process.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use encore_clients::{Config, Protections, Service};
use encore_pipeline::Keys;
use encore_resilience::rate_limit::{BoxFuture, NoSlot, RateLimitConfig, RateLimiter};
use encore_store::{Admission, Quota, Store};
use tokio::time::Instant;

/// tokio's timers fire on millisecond ticks, rounding up: a slot is only taken when its wait
/// ends, tick included, before the deadline.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// How much longer than the configured window the shared quota counts: 2 % (200 ms of a 10 s
/// window). One process sends each request the moment its slot comes, but requests of several
/// processes (several machines) race on their way to the provider, which counts arrivals: the
/// margin absorbs that jitter for 2 % of the throughput. A slot that a process wakes up to
/// later than the margin (it was stopped, or starved of CPU) is given up, and a new one taken.
const ARRIVAL_MARGIN_DIVISOR: u32 = 50;

/// How far ahead a slot is reserved: a caller sleeps until its slot is at most this far away,
/// then reserves it (see [`StoreRateLimiter`]'s cancel safety).
const RESERVE_AHEAD: Duration = Duration::from_millis(20);

/// First wait before asking an unreachable database again (doubling, at most
/// [`STORE_RETRY_MAX`]).
const STORE_RETRY_FIRST: Duration = Duration::from_millis(25);
const STORE_RETRY_MAX: Duration = Duration::from_secs(1);

/// A [`RateLimiter`] whose state lives in the job store, shared by every process on it.
///
/// - [`acquire`](RateLimiter::acquire): the process's callers queue in arrival order, and the
///   head takes a slot of the quota in one statement that reserves it only when it is due
///   within 20 ms (and before the caller's deadline, minus one timer tick); otherwise the
///   database says when the next slot is, and the head sleeps until then and asks again
///   (another worker may have taken it: then it waits for the next). A next slot past the
///   deadline is [`NoSlot`] at once (exact: the database's answer), and nothing is taken.
/// - [`hold_until`](RateLimiter::hold_until) pushes the quota's next slot to the instant a
///   429's `Retry-After` names, for every worker.
/// - While the database cannot be reached, `acquire` asks again with backoff until the
///   deadline, then refuses ([`NoSlot`], not exact): nothing is sent unmetered, since other
///   workers may be using the quota meanwhile. A hold that cannot be stored is logged.
///
/// Cancel safety: a caller dropped while it waits gives up its place and takes no slot
/// (nothing is reserved more than 20 ms ahead; dropped within those 20 ms, or while the
/// statement is in flight, a slot may go unused: a little throughput, never a request over the
/// quota). A slot missed by more than the margin (a `SIGSTOP`ped worker waking up) is never
/// used late: a new one is taken.
///
/// Workers on several machines compare wall clocks through the database: keep them in sync
/// (NTP). The window counted is the configured one plus 2 % (see the module docs).
pub struct StoreRateLimiter {
    store: Store,
    name: String,
    upstream: Arc<str>,
    config: RateLimitConfig,
    quota: Quota,
    /// The window's margin: how late a request may go after its slot.
    margin: Duration,
    /// Whose turn it is to ask the database (tokio's mutex is fair: FIFO).
    turn: tokio::sync::Mutex<()>,
}

impl fmt::Debug for StoreRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreRateLimiter")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl StoreRateLimiter {
    /// A limiter for `upstream` (a name for messages, e.g. `suno`) taking slots of the quota
    /// `name` in `store` (one name per account and limit: every process that uses the same
    /// name shares the quota), at the rate of `config` (its window lengthened by 2 %).
    ///
    /// # Errors
    ///
    /// [`encore_store::ErrorKind::Invalid`] when `config` is not a valid quota.
    pub fn new(
        store: Store,
        upstream: impl Into<Arc<str>>,
        name: impl Into<String>,
        config: &RateLimitConfig,
    ) -> Result<StoreRateLimiter, encore_store::Error> {
        let margin = config.per / ARRIVAL_MARGIN_DIVISOR;
        let quota = Quota::new(config.requests, config.per + margin, config.burst)?;
        Ok(StoreRateLimiter {
            store,
            name: name.into(),
            upstream: upstream.into(),
            config: config.clone(),
            quota,
            margin,
            turn: tokio::sync::Mutex::new(()),
        })
    }

    /// The quota's name in the store.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time between two slots: the configured interval plus the 2 % margin.
    pub fn interval(&self) -> Duration {
        self.quota.interval()
    }

    async fn take(&self, deadline: Instant) -> Result<Duration, NoSlot> {
        let start = Instant::now();
        // This process's callers take turns in arrival order: only the head asks the database.
        let Ok(_turn) = tokio::time::timeout_at(
            deadline.checked_sub(TIMER_TICK).unwrap_or(deadline),
            self.turn.lock(),
        )
        .await
        else {
            let left = deadline.saturating_duration_since(Instant::now());
            return Err(self.no_slot(left, false, left));
        };
        let mut backoff = STORE_RETRY_FIRST;
        loop {
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            // Only a slot that is (almost) due is reserved: a caller dropped while it waits (its
            // breaker opened, a callback made its read needless) takes no slot from the others.
            // The database counts the wait from `now`; the timer needs a tick more.
            let max_wait = left.saturating_sub(TIMER_TICK).min(RESERVE_AHEAD);
            let taken = self
                .store
                .take_quota_at(&self.name, &self.quota, max_wait, SystemTime::now())
                .await;
            match taken {
                Ok(Admission::Granted { wait }) => {
                    let slot = (now + wait).max(Instant::now());
                    if !wait.is_zero() {
                        tracing::trace!(
                            upstream = %self.upstream,
                            wait_ms = wait.as_millis() as u64,
                            "waiting for a shared rate-limit slot"
                        );
                        tokio::time::sleep_until(slot).await;
                    }
                    // A slot woken up too late to (a stopped or starved process) would land
                    // among the slots other workers use now: give it up and take a new one.
                    let late = Instant::now().saturating_duration_since(slot);
                    if late > self.margin {
                        tracing::debug!(
                            upstream = %self.upstream,
                            late_ms = late.as_millis() as u64,
                            "a shared rate-limit slot was missed; taking another"
                        );
                        continue;
                    }
                    return Ok(start.elapsed());
                }
                // The next slot cannot come before the deadline: refused at once, nothing taken.
                Ok(Admission::Denied { next_available_in })
                    if next_available_in + TIMER_TICK > left =>
                {
                    return Err(self.no_slot(next_available_in, true, left));
                }
                // Come back when it is due (another worker may take it first: then again).
                Ok(Admission::Denied { next_available_in }) => {
                    tracing::trace!(
                        upstream = %self.upstream,
                        wait_ms = next_available_in.as_millis() as u64,
                        "waiting for a shared rate-limit slot"
                    );
                    tokio::time::sleep(next_available_in.max(TIMER_TICK)).await;
                }
                Err(e) if e.is_retryable() && backoff + TIMER_TICK < left => {
                    tracing::warn!(
                        upstream = %self.upstream,
                        error = %e,
                        retry_in_ms = backoff.as_millis() as u64,
                        "the shared rate limit cannot be read; asking again"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(STORE_RETRY_MAX);
                }
                Err(e) => {
                    tracing::warn!(
                        upstream = %self.upstream,
                        error = %e,
                        "the shared rate limit cannot be read; not sending"
                    );
                    let left = deadline.saturating_duration_since(Instant::now());
                    return Err(self.no_slot(backoff, false, left));
                }
            }
        }
    }

    async fn hold(&self, until: Instant) {
        let wait = until.saturating_duration_since(Instant::now());
        let until_wall = SystemTime::now() + wait;
        match self
            .store
            .hold_quota(&self.name, &self.quota, until_wall)
            .await
        {
            Ok(()) => tracing::warn!(
                upstream = %self.upstream,
                hold_ms = wait.as_millis() as u64,
                "{}: the server asked to slow down; holding new requests of every worker for {}",
                self.upstream,
                humantime::format_duration(Duration::from_millis(wait.as_millis() as u64)),
            ),
            Err(e) => tracing::warn!(
                upstream = %self.upstream,
                error = %e,
                hold_ms = wait.as_millis() as u64,
                "{}: the server asked to slow down, but the hold could not be stored",
                self.upstream
            ),
        }
    }

    fn no_slot(&self, next_in: Duration, exact: bool, left: Duration) -> NoSlot {
        let refusal = NoSlot::new(
            self.upstream.clone(),
            (self.config.requests, self.config.per),
            next_in,
            exact,
            left,
        );
        tracing::warn!(
            upstream = %self.upstream,
            next_in_ms = next_in.as_millis() as u64,
            left_ms = left.as_millis() as u64,
            "{refusal}"
        );
        refusal
    }
}

impl RateLimiter for StoreRateLimiter {
    fn acquire(&self, deadline: Instant) -> BoxFuture<'_, Result<Duration, NoSlot>> {
        Box::pin(self.take(deadline))
    }

    fn hold_until(&self, until: Instant) -> BoxFuture<'_, ()> {
        Box::pin(self.hold(until))
    }
}

/// The name of `service`'s quota for the account of `keys`: the service and a fingerprint of
/// its API key ([`ApiKey::fingerprint`](encore_clients::ApiKey::fingerprint)), never the key.
/// Workers with the same key share the quota; another key is another account.
pub fn quota_name(service: Service, keys: &Keys) -> String {
    let key = match service {
        Service::OpenAi => &keys.openai,
        Service::Suno => &keys.suno,
        Service::Creatomate => &keys.creatomate,
    };
    format!("{service}:{}", key.fingerprint())
}

/// `protections` with a [`StoreRateLimiter`] on `store` for each service of `config` whose
/// rate limit is enabled (a service without one keeps none). The breakers and retry budgets
/// of `protections` are kept: they stay per process.
///
/// # Errors
///
/// [`encore_store::ErrorKind::Invalid`] when an enabled rate limit is not a valid quota.
pub fn share_quotas(
    store: &Store,
    config: &Config,
    keys: &Keys,
    protections: Protections,
) -> Result<Protections, encore_store::Error> {
    let mut shared = protections;
    for service in Service::ALL {
        let limit = &config.service(service).rate_limit;
        if !limit.enabled {
            continue;
        }
        let limiter = StoreRateLimiter::new(
            store.clone(),
            service.as_str(),
            quota_name(service, keys),
            limit,
        )?;
        tracing::debug!(%service, quota = limiter.name(), "rate limit shared through the job store");
        shared = shared.with_rate_limiter(service, Arc::new(limiter));
    }
    Ok(shared)
}
