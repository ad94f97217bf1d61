//! Shared helpers: simulator states, clients wired to them, small policies, an observer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_clients::creatomate::CreatomateClient;
use encore_clients::openai::OpenAiClient;
use encore_clients::suno::SunoClient;
use encore_clients::{
    ApiKey, AttemptRecord, BreakerNotice, CallObserver, CallRecord, Config, Endpoint, Http,
    Protections, RefusalNotice, RetryNotice,
};
use encore_sim::{Scenario, SimConfig, SimState};

/// A key that must never show up in any error or log line.
pub const KEY: &str = "sk-test-SENTINEL-7f3a9c51d2";

pub fn key() -> ApiKey {
    ApiKey::new(KEY).unwrap()
}

/// A simulator state: no callbacks (they would try to reach `callback.invalid`), instant Suno
/// tasks (time scale 0), fixed seed.
pub fn sim(scenario: &str) -> SimState {
    sim_with(scenario, |_| {})
}

pub fn sim_with(scenario: &str, tweak: impl FnOnce(&mut SimConfig)) -> SimState {
    let mut config = SimConfig {
        seed: 7,
        time_scale: 0.0,
        scenario: Scenario::from_toml(scenario).expect("valid scenario"),
        callbacks: false,
        ..SimConfig::default()
    };
    tweak(&mut config);
    SimState::new(config)
}

/// The simulator's router as an in-memory transport (use with paused time), with the default
/// protections.
pub fn in_memory(state: &SimState) -> Http {
    Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()))
}

/// The same, with the protections `config` asks for.
pub fn in_memory_for(state: &SimState, config: &Config) -> Http {
    in_memory(state).with_protections(Protections::from_config(config).unwrap())
}

/// The shipped defaults, pointed at the in-memory simulator.
pub fn defaults() -> Config {
    Config::default().with_base("http://sim.test")
}

/// Small policies for real-socket tests: 300 ms per attempt, waits of 10 → 20 → 40 ms.
pub fn fast(base: &str) -> Config {
    let mut config = Config::default().with_base(base);
    for endpoint in Endpoint::ALL {
        let p = config.endpoints.get_mut(endpoint);
        p.attempt_timeout = Duration::from_millis(300);
        p.base_delay = Duration::from_millis(10);
        p.max_delay = Duration::from_millis(100);
        p.deadline = Duration::from_secs(3);
    }
    config.validate().unwrap();
    config
}

#[derive(Default)]
pub struct Recorder {
    pub notices: Mutex<Vec<RetryNotice>>,
    pub records: Mutex<Vec<CallRecord>>,
    pub breakers: Mutex<Vec<BreakerNotice>>,
    pub attempts: Mutex<Vec<AttemptRecord>>,
    pub refusals: Mutex<Vec<RefusalNotice>>,
}

impl CallObserver for Recorder {
    fn attempt(&self, record: &AttemptRecord) {
        self.attempts.lock().unwrap().push(record.clone());
    }
    fn refused(&self, notice: &RefusalNotice) {
        self.refusals.lock().unwrap().push(notice.clone());
    }
    fn retrying(&self, notice: &RetryNotice) {
        self.notices.lock().unwrap().push(notice.clone());
    }
    fn finished(&self, record: &CallRecord) {
        self.records.lock().unwrap().push(record.clone());
    }
    fn breaker_changed(&self, notice: &BreakerNotice) {
        self.breakers.lock().unwrap().push(notice.clone());
    }
}

pub struct Clients {
    pub openai: OpenAiClient,
    pub suno: SunoClient,
    pub creatomate: CreatomateClient,
    pub recorder: Arc<Recorder>,
}

pub fn clients(http: &Http, config: &Config) -> Clients {
    let recorder = Arc::new(Recorder::default());
    Clients {
        openai: OpenAiClient::new(http.clone(), config, key()).with_observer(recorder.clone()),
        suno: SunoClient::new(http.clone(), config, key()).with_observer(recorder.clone()),
        creatomate: CreatomateClient::new(http.clone(), config, key())
            .with_observer(recorder.clone()),
        recorder,
    }
}

/// The structured output the OpenAI tests ask for.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
pub struct Lyrics {
    pub title: String,
    pub style: String,
    pub lyrics: String,
}

/// A scenario with one rule: `route` gets `faults` in sequence, then behaves.
pub fn sequence(route: &str, faults: &str) -> String {
    format!("[routes.\"{route}\"]\nsequence = [{faults}]\n")
}

/// A scenario where every call of `route` suffers `fault`.
pub fn always(route: &str, fault: &str) -> String {
    format!("[routes.\"{route}\"]\nmix = [{{ p = 1.0, fault = {fault} }}]\n")
}
