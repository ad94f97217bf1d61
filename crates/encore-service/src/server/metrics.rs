//! `GET /metrics`: what the server's calls, breakers, rate limits, jobs and callbacks are doing,
//! in the OpenMetrics text format that Prometheus scrapes, through `prometheus-client` (the
//! Prometheus project's own Rust client).
//!
//! Names follow what operators know from resilience4j (`…_circuitbreaker_state{state}` as one
//! gauge per state, `…_circuitbreaker_not_permitted_calls`, `…_ratelimiter_…`), Envoy (attempts
//! and retries per upstream, `…_retry_budget_refusals` for Envoy's `upstream_rq_retry_overflow`)
//! and Polly (attempt outcomes, breaker transitions as events). Every label value comes from a
//! closed set (services, endpoints, outcomes, states, steps, reasons): never a job id or a URL.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `encore_client_attempts_total` | counter | service, endpoint, outcome (`ok`, `retried`, `gave_up`, `permanent`, `ambiguous`, `cancelled`) |
//! | `encore_client_retries_total` | counter | service, endpoint |
//! | `encore_circuitbreaker_state` | gauge (1 for the current state) | service, state |
//! | `encore_circuitbreaker_transitions_total` | counter | service, from, to |
//! | `encore_circuitbreaker_not_permitted_calls_total` | counter | service, endpoint |
//! | `encore_ratelimiter_wait_seconds` | histogram (per attempt sent) | service |
//! | `encore_ratelimiter_rejections_total` | counter | service, endpoint |
//! | `encore_retry_budget_refusals_total` | counter | service, endpoint |
//! | `encore_jobs` | gauge (read from the store per scrape) | state |
//! | `encore_unknown_billed_steps` | gauge (read from the store per scrape) | step |
//! | `encore_step_duration_seconds` | histogram | step, state (`done`, `failed`, `unknown`) |
//! | `encore_callbacks_received_total` | counter | provider |
//! | `encore_callbacks_verified_total` | counter | provider |
//! | `encore_callbacks_rejected_total` | counter | provider, reason |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use encore_clients::{
    AttemptOutcome, AttemptRecord, CallObserver, CircuitState, Endpoint, Http, Protection,
    RefusalNotice, RetryNotice, Service,
};
use encore_pipeline::{Event, StepName, StepState};
use encore_store::Census;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::time::Instant;

/// The content type of the OpenMetrics text format.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Services, in a fixed order.
const SERVICES: [Service; 3] = [Service::OpenAi, Service::Suno, Service::Creatomate];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    service: &'static str,
    endpoint: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    service: &'static str,
    endpoint: &'static str,
}

impl EndpointLabels {
    fn of(endpoint: Endpoint) -> Self {
        EndpointLabels {
            service: endpoint.service().as_str(),
            endpoint: endpoint.name(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerStateLabels {
    service: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    service: &'static str,
    from: &'static str,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepStateLabels {
    step: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    provider: &'static str,
    reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Why a callback was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallbackRejection {
    /// Its address is not one this server gave out (wrong token, unknown job, no public URL).
    UnknownAddress,
    /// Its body names no task or render.
    Malformed,
    /// The provider does not confirm what it names.
    Refuted,
}

impl CallbackRejection {
    const fn as_str(self) -> &'static str {
        match self {
            CallbackRejection::UnknownAddress => "unknown_address",
            CallbackRejection::Malformed => "malformed",
            CallbackRejection::Refuted => "refuted",
        }
    }
}

/// The server's metrics: a call observer for every pipeline the server makes, a hook on each
/// service's circuit breaker, counters for callbacks, and gauges filled from the store and
/// the breakers when scraped.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    attempts: Family<AttemptLabels, Counter>,
    retries: Family<EndpointLabels, Counter>,
    breaker_state: Family<BreakerStateLabels, Gauge>,
    breaker_transitions: Family<TransitionLabels, Counter>,
    not_permitted: Family<EndpointLabels, Counter>,
    slot_waits: HistogramFamily<ServiceLabels>,
    rate_rejections: Family<EndpointLabels, Counter>,
    budget_refusals: Family<EndpointLabels, Counter>,
    jobs: Family<StateLabels, Gauge>,
    unknown_steps: Family<StepLabels, Gauge>,
    step_durations: HistogramFamily<StepStateLabels>,
    callbacks_received: Family<ProviderLabels, Counter>,
    callbacks_verified: Family<ProviderLabels, Counter>,
    callbacks_rejected: Family<RejectionLabels, Counter>,
}

/// Rate-limit slot waits: 1 ms to about 33 s.
fn wait_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 16,
    ))
}

/// Step durations: 50 ms to about 27 min (a song or a render takes minutes).
fn step_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.05, 2.0, 16,
    ))
}

impl Metrics {
    /// The metrics, registered, with every service's breaker state at 0 until scraped.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("encore");
        let metrics = Metrics {
            attempts: Family::default(),
            retries: Family::default(),
            breaker_state: Family::default(),
            breaker_transitions: Family::default(),
            not_permitted: Family::default(),
            slot_waits: Family::new_with_constructor(wait_buckets),
            rate_rejections: Family::default(),
            budget_refusals: Family::default(),
            jobs: Family::default(),
            unknown_steps: Family::default(),
            step_durations: Family::new_with_constructor(step_buckets),
            callbacks_received: Family::default(),
            callbacks_verified: Family::default(),
            callbacks_rejected: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "client_attempts",
            "HTTP attempts sent to a provider, by how each ended",
            metrics.attempts.clone(),
        );
        registry.register(
            "client_retries",
            "Retries scheduled after a failed attempt",
            metrics.retries.clone(),
        );
        registry.register(
            "circuitbreaker_state",
            "The state of each service's circuit breaker (1 for the current state)",
            metrics.breaker_state.clone(),
        );
        registry.register(
            "circuitbreaker_transitions",
            "Circuit breaker state changes",
            metrics.breaker_transitions.clone(),
        );
        registry.register(
            "circuitbreaker_not_permitted_calls",
            "Attempts refused because the circuit was open",
            metrics.not_permitted.clone(),
        );
        registry.register_with_unit(
            "ratelimiter_wait",
            "Time an attempt waited for a slot of its service's rate limit",
            Unit::Seconds,
            metrics.slot_waits.clone(),
        );
        registry.register(
            "ratelimiter_rejections",
            "Attempts refused because no rate-limit slot came before the deadline",
            metrics.rate_rejections.clone(),
        );
        registry.register(
            "retry_budget_refusals",
            "Retries refused because the service's retry budget was spent",
            metrics.budget_refusals.clone(),
        );
        registry.register("jobs", "Jobs in the store by state", metrics.jobs.clone());
        registry.register(
            "unknown_billed_steps",
            "Billed steps whose outcome is unknown (they may have been paid): each needs a resolution",
            metrics.unknown_steps.clone(),
        );
        registry.register_with_unit(
            "step_duration",
            "How long a pipeline step took, by how it ended",
            Unit::Seconds,
            metrics.step_durations.clone(),
        );
        registry.register(
            "callbacks_received",
            "Provider callbacks received",
            metrics.callbacks_received.clone(),
        );
        registry.register(
            "callbacks_verified",
            "Provider callbacks whose claim a free read from the provider confirmed",
            metrics.callbacks_verified.clone(),
        );
        registry.register(
            "callbacks_rejected",
            "Provider callbacks refused, by why",
            metrics.callbacks_rejected.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts the transitions of every service's circuit breaker on `http` (the breakers
    /// outlive pipelines, so each change is counted once).
    pub(crate) fn watch_breakers(self: &Arc<Self>, http: &Http) {
        for service in SERVICES {
            if let Some(breaker) = http.circuit_breaker(service) {
                let metrics = Arc::downgrade(self);
                breaker.on_state_change(move |change| {
                    if let Some(metrics) = metrics.upgrade() {
                        metrics
                            .breaker_transitions
                            .get_or_create(&TransitionLabels {
                                service: service.as_str(),
                                from: state_label(change.from),
                                to: state_label(change.to),
                            })
                            .inc();
                    }
                });
            }
        }
    }

    /// A callback arrived at a hook of `provider` (`suno`, `creatomate`).
    pub(crate) fn callback_received(&self, provider: &'static str) {
        self.callbacks_received
            .get_or_create(&ProviderLabels { provider })
            .inc();
    }

    /// A callback's claim was confirmed by the provider.
    pub(crate) fn callback_verified(&self, provider: &'static str) {
        self.callbacks_verified
            .get_or_create(&ProviderLabels { provider })
            .inc();
    }

    /// A callback was refused.
    pub(crate) fn callback_rejected(&self, provider: &'static str, why: CallbackRejection) {
        self.callbacks_rejected
            .get_or_create(&RejectionLabels {
                provider,
                reason: why.as_str(),
            })
            .inc();
    }

    /// A sink for one job run's pipeline events: times its steps from `in_flight` to `done`,
    /// `failed` or `unknown`.
    pub(crate) fn step_timer(self: &Arc<Self>) -> impl Fn(&Event) + Send + Sync + 'static {
        let metrics = Arc::clone(self);
        let started: Mutex<HashMap<StepName, Instant>> = Mutex::default();
        move |event| {
            let Event::StepChanged { step, state, .. } = event else {
                return;
            };
            let mut started = started.lock().expect("step timer lock");
            match state {
                StepState::InFlight => {
                    started.insert(*step, Instant::now());
                }
                StepState::Done | StepState::Failed | StepState::Unknown => {
                    if let Some(at) = started.remove(step) {
                        metrics
                            .step_durations
                            .get_or_create(&StepStateLabels {
                                step: step.as_str(),
                                state: state.as_str(),
                            })
                            .observe(at.elapsed().as_secs_f64());
                    }
                }
                StepState::Pending => {
                    started.remove(step);
                }
            }
        }
    }

    /// The text of a scrape: the gauges are set from `census` and the breakers first.
    pub(crate) fn render(&self, census: Option<&Census>, http: &Http) -> String {
        for service in SERVICES {
            let current = http.circuit_state(service);
            for state in [
                CircuitState::Closed,
                CircuitState::Open,
                CircuitState::HalfOpen,
            ] {
                self.breaker_state
                    .get_or_create(&BreakerStateLabels {
                        service: service.as_str(),
                        state: state_label(state),
                    })
                    .set(i64::from(current == Some(state)));
            }
        }
        if let Some(census) = census {
            for (status, count) in &census.jobs {
                self.jobs
                    .get_or_create(&StateLabels {
                        state: status.as_str(),
                    })
                    .set(i64::try_from(*count).unwrap_or(i64::MAX));
            }
            for step in StepName::ALL.into_iter().filter(|s| s.is_billed()) {
                let count = census
                    .unknown_steps
                    .iter()
                    .find(|(s, _)| *s == step)
                    .map_or(0, |(_, n)| *n);
                self.unknown_steps
                    .get_or_create(&StepLabels {
                        step: step.as_str(),
                    })
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

fn outcome_name(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Ok => "ok",
        AttemptOutcome::Retried => "retried",
        AttemptOutcome::GaveUp => "gave_up",
        AttemptOutcome::Permanent => "permanent",
        AttemptOutcome::Ambiguous => "ambiguous",
        AttemptOutcome::Cancelled => "cancelled",
        _ => "other",
    }
}

/// Breaker changes are not taken from here: pipelines do not forward them to the observers
/// they are given, and the hook on each breaker ([`Metrics::watch_breakers`]) counts each once.
impl CallObserver for Metrics {
    fn attempt(&self, record: &AttemptRecord) {
        self.attempts
            .get_or_create(&AttemptLabels {
                service: record.service.as_str(),
                endpoint: record.endpoint.name(),
                outcome: outcome_name(record.outcome),
            })
            .inc();
        if record.endpoint.counts_toward_rate_limit() {
            self.slot_waits
                .get_or_create(&ServiceLabels {
                    service: record.service.as_str(),
                })
                .observe(record.slot_wait.as_secs_f64());
        }
    }

    fn refused(&self, notice: &RefusalNotice) {
        let family = match notice.by {
            Protection::Breaker => &self.not_permitted,
            Protection::RateLimit => &self.rate_rejections,
            Protection::Budget => &self.budget_refusals,
            _ => return,
        };
        family
            .get_or_create(&EndpointLabels::of(notice.endpoint))
            .inc();
    }

    fn retrying(&self, notice: &RetryNotice) {
        self.retries
            .get_or_create(&EndpointLabels::of(notice.endpoint))
            .inc();
    }
}

/// A breaker state as a label value, snake_case as resilience4j's `state` label writes it
/// (`half_open`; the breaker's own messages say "half-open").
const fn state_label(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half_open",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_scrape_names_every_family_with_bounded_labels() {
        let metrics = Arc::new(Metrics::new());
        // Attempts are counted against the simulator's ledger in the CLI's process tests.
        metrics.retrying(&RetryNotice {
            endpoint: Endpoint::SunoStatus,
            attempt: 1,
            max_attempts: 3,
            delay: Duration::from_millis(5),
            server_requested: false,
            cause: "http 503".into(),
        });
        metrics.callback_received("suno");
        metrics.callback_rejected("suno", CallbackRejection::Refuted);
        let timer = metrics.step_timer();
        let changed = |state| Event::StepChanged {
            step: StepName::SongSubmit,
            state,
            attempt: 1,
            external_id: None,
            error: None,
        };
        timer(&changed(StepState::InFlight));
        timer(&changed(StepState::Unknown));
        let census = Census {
            jobs: vec![(encore_pipeline::JobStatus::NeedsAttention, 2)],
            unknown_steps: vec![(StepName::SongSubmit, 1)],
        };
        let http = Http::with_connect_timeout(Duration::from_secs(1)).unwrap();
        let text = metrics.render(Some(&census), &http);
        for line in [
            "encore_client_retries_total{service=\"suno\",endpoint=\"suno.status\"} 1",
            "encore_circuitbreaker_state{service=\"suno\",state=\"closed\"} 1",
            "encore_circuitbreaker_state{service=\"suno\",state=\"open\"} 0",
            "encore_jobs{state=\"needs_attention\"} 2",
            "encore_unknown_billed_steps{step=\"song.submit\"} 1",
            "encore_unknown_billed_steps{step=\"video.submit\"} 0",
            "encore_callbacks_received_total{provider=\"suno\"} 1",
            "encore_callbacks_rejected_total{provider=\"suno\",reason=\"refuted\"} 1",
            "encore_step_duration_seconds_count{step=\"song.submit\",state=\"unknown\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }
}
