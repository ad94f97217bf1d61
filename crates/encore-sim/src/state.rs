//! The shared simulator state behind every handler.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{ConfigError, SimConfig};
use crate::creatomate::store::Store as CreatomateStore;
use crate::fault_engine::FaultEngine;
use crate::ids;
use crate::ledger::{BilledJob, JobKind, Ledger, LedgerBook, SubtitleLine};
use crate::openai::store::Store as OpenaiStore;
use crate::scenario::{Scenario, ScenarioError};
use crate::suno::store::Store as SunoStore;

/// Base URL used for generated URLs when nothing better is known (in-memory use without a
/// `Host` header).
pub const FALLBACK_BASE_URL: &str = "http://127.0.0.1";

/// What a service reports about a billed job it has just created (see
/// [`BilledJob`] for the meaning of each field).
#[derive(Debug)]
pub(crate) struct NewJob {
    pub(crate) kind: JobKind,
    pub(crate) id: String,
    pub(crate) request_seq: u64,
    /// The instant the job's timeline starts.
    pub(crate) created: Instant,
    pub(crate) ready_after_virtual_s: Option<f64>,
    pub(crate) final_status: String,
    pub(crate) ignored_modifications: Vec<String>,
    pub(crate) subtitles: Vec<SubtitleLine>,
    pub(crate) store: Option<bool>,
    pub(crate) max_output_tokens: Option<u64>,
}

impl NewJob {
    /// A job with only the common fields set.
    pub(crate) fn new(kind: JobKind, id: String, request_seq: u64, created: Instant) -> Self {
        NewJob {
            kind,
            id,
            request_seq,
            created,
            ready_after_virtual_s: None,
            final_status: String::new(),
            ignored_modifications: Vec::new(),
            subtitles: Vec::new(),
            store: None,
            max_output_tokens: None,
        }
    }
}

/// The simulator: configuration, virtual clock, jobs, credits, rate windows, fault plan and
/// ledger. Cheap to clone (an `Arc` inside); all clones share one simulator.
#[derive(Clone)]
pub struct SimState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    pub(crate) start: Instant,
    pub(crate) faults: Mutex<FaultEngine>,
    pub(crate) ledger: Mutex<LedgerBook>,
    pub(crate) ids: Mutex<StdRng>,
    pub(crate) openai: Mutex<OpenaiStore>,
    pub(crate) suno: Mutex<SunoStore>,
    pub(crate) creatomate: Mutex<CreatomateStore>,
    pub(crate) bound_base: Mutex<Option<String>>,
    /// Set when the server stops: pending callbacks are not sent any more.
    pub(crate) callbacks_stopped: watch::Sender<bool>,
}

/// Locks a mutex, ignoring poisoning (a panicking handler must not wedge the simulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl fmt::Debug for SimState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimState")
            .field("seed", &self.inner.config.seed)
            .field("time_scale", &self.inner.config.time_scale)
            .field("scenario", &lock(&self.inner.faults).scenario().name)
            .finish_non_exhaustive()
    }
}

impl SimState {
    /// Creates a simulator. The virtual clock starts now (`tokio::time`, so paused test time
    /// applies).
    ///
    /// # Panics
    ///
    /// If the config is invalid (see [`SimConfig::validate`]); use [`SimState::try_new`] to
    /// get the error instead.
    pub fn new(config: SimConfig) -> Self {
        match Self::try_new(config) {
            Ok(state) => state,
            Err(e) => panic!("{e}"),
        }
    }

    /// Creates a simulator after validating the config.
    pub fn try_new(config: SimConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let seed = config.seed;
        let inner = Inner {
            faults: Mutex::new(FaultEngine::new(config.scenario.clone(), seed)),
            ledger: Mutex::new(LedgerBook::default()),
            ids: Mutex::new(ids::rng_for(seed, "ids")),
            openai: Mutex::new(OpenaiStore::default()),
            suno: Mutex::new(SunoStore::new(seed)),
            creatomate: Mutex::new(CreatomateStore::new(seed)),
            bound_base: Mutex::new(None),
            callbacks_stopped: watch::Sender::new(false),
            start: Instant::now(),
            config,
        };
        Ok(SimState {
            inner: Arc::new(inner),
        })
    }

    /// The configuration this simulator was created with (the live fault plan is
    /// [`SimState::scenario`]).
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// A snapshot of the ledger.
    pub fn ledger(&self) -> Ledger {
        lock(&self.inner.ledger).snapshot()
    }

    /// The live scenario.
    pub fn scenario(&self) -> Scenario {
        lock(&self.inner.faults).scenario().clone()
    }

    /// Replaces the scenario and restarts its per-route call counters and random streams
    /// (the ledger keeps its history).
    pub fn set_scenario(&self, scenario: Scenario) -> Result<(), ScenarioError> {
        scenario.validate()?;
        *lock(&self.inner.faults) = FaultEngine::new(scenario, self.inner.config.seed);
        Ok(())
    }

    /// Remaining Suno credits of a key.
    pub fn suno_credits(&self, key: &str) -> u64 {
        lock(&self.inner.suno).credits(key, self.inner.config.suno_credits)
    }

    /// Remaining Creatomate credits of a key.
    pub fn creatomate_credits(&self, key: &str) -> u64 {
        lock(&self.inner.creatomate).credits(key, self.inner.config.creatomate_credits)
    }

    /// Real time since the state was created.
    pub fn elapsed(&self) -> Duration {
        self.inner.start.elapsed()
    }

    /// Virtual seconds since start (`elapsed / time_scale`; infinite when `time_scale` is 0).
    pub fn virtual_secs(&self) -> f64 {
        let scale = self.inner.config.time_scale;
        if scale <= 0.0 {
            f64::INFINITY
        } else {
            self.elapsed().as_secs_f64() / scale
        }
    }

    /// Real duration of `virtual_s` virtual seconds.
    pub(crate) fn scaled(&self, virtual_s: f64) -> Duration {
        Duration::from_secs_f64((virtual_s * self.inner.config.time_scale).max(0.0))
    }

    pub(crate) fn at_ms(&self) -> u64 {
        self.elapsed().as_millis() as u64
    }

    /// Cancels every pending callback (called when the server stops).
    pub(crate) fn stop_callbacks(&self) {
        self.inner.callbacks_stopped.send_replace(true);
    }

    pub(crate) fn set_bound(&self, addr: SocketAddr) {
        *lock(&self.inner.bound_base) = Some(format!("http://{addr}"));
    }

    /// Base URL for URLs in answers: `public_base_url`, else the request's `Host`, else the
    /// bound address, else [`FALLBACK_BASE_URL`].
    pub(crate) fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.inner.config.public_base_url {
            return url.trim_end_matches('/').to_owned();
        }
        if let Some(host) = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        {
            return format!("http://{host}");
        }
        lock(&self.inner.bound_base)
            .clone()
            .unwrap_or_else(|| FALLBACK_BASE_URL.to_owned())
    }

    /// Virtual seconds since `instant` (infinite when `time_scale` is 0: every timeline is
    /// already over).
    pub(crate) fn virtual_since(&self, instant: Instant) -> f64 {
        let scale = self.inner.config.time_scale;
        if scale <= 0.0 {
            f64::INFINITY
        } else {
            instant.elapsed().as_secs_f64() / scale
        }
    }

    /// Real time from the start to `instant` (zero if before).
    fn offset(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.inner.start)
    }

    /// Virtual seconds from the start to `instant` (`None` when `time_scale` is 0).
    fn virtual_at(&self, instant: Instant) -> Option<f64> {
        let scale = self.inner.config.time_scale;
        (scale > 0.0).then(|| self.offset(instant).as_secs_f64() / scale)
    }

    /// Real milliseconds from the start to `instant`.
    pub(crate) fn ms_at(&self, instant: Instant) -> u64 {
        self.offset(instant).as_millis() as u64
    }

    /// Records a billed job created at `job.created` by request `job.request_seq`.
    pub(crate) fn bill(&self, job: NewJob) {
        let ready = job
            .ready_after_virtual_s
            .map(|v| job.created + self.scaled(v));
        let billed = BilledJob {
            kind: job.kind,
            id: job.id,
            request_seq: job.request_seq,
            attempt: 0,
            at_ms: self.ms_at(job.created),
            created_virtual_s: self.virtual_at(job.created),
            ready_after_virtual_s: job.ready_after_virtual_s,
            ready_at_ms: ready.map(|r| self.ms_at(r)),
            ready_virtual_s: ready.and_then(|r| self.virtual_at(r)),
            final_status: job.final_status,
            ignored_modifications: job.ignored_modifications,
            subtitles: job.subtitles,
            store: job.store,
            max_output_tokens: job.max_output_tokens,
        };
        lock(&self.inner.ledger).bill(billed);
    }

    pub(crate) fn with_ids<R>(&self, f: impl FnOnce(&mut StdRng) -> R) -> R {
        f(&mut lock(&self.inner.ids))
    }

    pub(crate) fn wall_now() -> SystemTime {
        SystemTime::now()
    }
}
