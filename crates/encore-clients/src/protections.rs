//! The registry of protections: per service, the retry budget, circuit breaker and rate limiter
//! that every call to it shares, built explicitly and handed to an [`Http`](crate::Http) handle.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use encore_resilience::breaker::{CircuitBreaker, StateChange};
use encore_resilience::budget::RetryBudget;
use encore_resilience::rate_limit::{LocalRateLimiter, RateLimiter};

use crate::config::{Config, ConfigError, ServicePolicy};
use crate::endpoint::Service;
use crate::observer::{BreakerNotice, CallObserver};

type Observers = Mutex<Vec<Weak<dyn CallObserver>>>;

/// The protections of one service, shared by every call to it: a retry budget, a circuit
/// breaker and, when its `rate_limit` is enabled, a rate limiter.
///
/// Built from the service's [`ServicePolicy`]; the rate limiter is a [`LocalRateLimiter`]
/// (this process's calls only) unless another [`RateLimiter`] is given with
/// [`with_rate_limiter`](Self::with_rate_limiter) — for instance one whose state lives in a
/// database that several worker processes share, so that together they keep to the account's
/// quota.
#[derive(Clone)]
pub struct ServiceProtections {
    service: Service,
    policy: ServicePolicy,
    budget: RetryBudget,
    breaker: CircuitBreaker,
    limiter: Option<Arc<dyn RateLimiter>>,
    observers: Arc<Observers>,
}

impl fmt::Debug for ServiceProtections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceProtections")
            .field("service", &self.service)
            .field("budget", &self.budget)
            .field("breaker", &self.breaker)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl ServiceProtections {
    /// Fresh protections for `service`, following `policy`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key (`services.suno.breaker.failure_ratio`) when `policy`
    /// is invalid.
    pub fn new(service: Service, policy: &ServicePolicy) -> Result<Self, ConfigError> {
        policy.validate(service)?;
        let invalid = |part: &str, e: &encore_resilience::PolicyError| {
            ConfigError::new(
                format!("services.{service}.{part}.{}", e.field()),
                e.reason(),
            )
        };
        let budget = RetryBudget::new(service.as_str(), policy.budget.clone())
            .map_err(|e| invalid("budget", &e))?;
        let breaker = CircuitBreaker::new(service.as_str(), policy.breaker.clone())
            .map_err(|e| invalid("breaker", &e))?;
        let limiter = if policy.rate_limit.enabled {
            let local = LocalRateLimiter::new(service.as_str(), &policy.rate_limit)
                .map_err(|e| invalid("rate_limit", &e))?;
            Some(Arc::new(local) as Arc<dyn RateLimiter>)
        } else {
            None
        };
        let observers: Arc<Observers> = Arc::default();
        let listeners = Arc::downgrade(&observers);
        breaker.on_state_change(move |change| {
            if let Some(listeners) = listeners.upgrade() {
                notify(&listeners, service, change);
            }
        });
        Ok(ServiceProtections {
            service,
            policy: policy.clone(),
            budget,
            breaker,
            limiter,
            observers,
        })
    }

    /// The same protections with `limiter` in place of the in-process one (whether or not the
    /// policy enabled one).
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The service.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The settings these protections were built from.
    pub fn policy(&self) -> &ServicePolicy {
        &self.policy
    }

    /// The retry budget (a handle: clones share its bucket).
    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// The circuit breaker (a handle: clones share its state).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The rate limiter, when there is one.
    pub fn rate_limiter(&self) -> Option<&Arc<dyn RateLimiter>> {
        self.limiter.as_ref()
    }

    /// Reports this service's breaker changes to `observer` from now on (once, however many
    /// clients share it; dropped observers are forgotten).
    pub(crate) fn watch(&self, observer: &Arc<dyn CallObserver>) {
        let mut list = self
            .observers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        list.retain(|w| w.strong_count() > 0);
        let target = Arc::as_ptr(observer);
        if !list.iter().any(|w| std::ptr::addr_eq(w.as_ptr(), target)) {
            list.push(Arc::downgrade(observer));
        }
    }
}

fn notify(observers: &Observers, service: Service, change: &StateChange) {
    let notice = BreakerNotice::new(service, change.from, change.to, change.open_for);
    let live: Vec<Arc<dyn CallObserver>> = observers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    // Outside the lock: an observer may build clients (and so register observers) itself.
    for observer in live {
        observer.breaker_changed(&notice);
    }
}

/// The protections of every service: the registry an [`Http`](crate::Http) handle carries,
/// shared by every client built on it (and on its clones).
///
/// Build it from the configuration ([`from_config`](Self::from_config)), replace one
/// service's ([`with`](Self::with)) or just its rate limiter
/// ([`with_rate_limiter`](Self::with_rate_limiter)), and hand it to
/// [`Http::with_protections`](crate::Http::with_protections). A client refuses to run with a
/// registry built from other `[services.*]` settings than its own configuration's (every call
/// fails, naming the key): settings are never silently ignored.
///
/// ```
/// use encore_clients::{Config, Http, Protections, Service};
///
/// let config = Config::from_toml_str("[services.suno.budget]\nratio = 0.1").unwrap();
/// let protections = Protections::from_config(&config).unwrap();
/// assert!((protections.get(Service::Suno).budget().config().ratio - 0.1).abs() < 1e-9);
/// let http = Http::shared().unwrap().with_protections(protections);
/// // Every client built on `http` (or a clone) shares these.
/// # let _ = http;
/// ```
#[derive(Clone, Debug)]
pub struct Protections {
    services: [Arc<ServiceProtections>; 3],
}

impl Protections {
    /// Fresh protections for every service, following `config.services`.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of the first invalid service policy, naming its key.
    pub fn from_config(config: &Config) -> Result<Protections, ConfigError> {
        let [openai, suno, creatomate] = Service::ALL;
        Ok(Protections {
            services: [
                Arc::new(ServiceProtections::new(openai, config.service(openai))?),
                Arc::new(ServiceProtections::new(suno, config.service(suno))?),
                Arc::new(ServiceProtections::new(
                    creatomate,
                    config.service(creatomate),
                )?),
            ],
        })
    }

    /// The protections of `service`.
    pub fn get(&self, service: Service) -> &ServiceProtections {
        &self.services[service.index()]
    }

    pub(crate) fn shared(&self, service: Service) -> &Arc<ServiceProtections> {
        &self.services[service.index()]
    }

    /// The same registry with `protections` for their service.
    pub fn with(mut self, protections: ServiceProtections) -> Protections {
        let index = protections.service.index();
        self.services[index] = Arc::new(protections);
        self
    }

    /// The same registry with `limiter` as `service`'s rate limiter.
    pub fn with_rate_limiter(self, service: Service, limiter: Arc<dyn RateLimiter>) -> Protections {
        let protections = self.get(service).clone().with_rate_limiter(limiter);
        self.with(protections)
    }
}

impl Default for Protections {
    /// Fresh protections with the shipped defaults ([`ServicePolicy::default_for`]).
    fn default() -> Self {
        Protections::from_config(&Config::default()).expect("the shipped defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use encore_resilience::Outcome;
    use encore_resilience::breaker::CircuitState;
    use encore_resilience::rate_limit::{BoxFuture, NoSlot};
    use tokio::time::Instant;

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize, Mutex<Vec<String>>);

    impl CallObserver for Count {
        fn breaker_changed(&self, notice: &BreakerNotice) {
            self.0.fetch_add(1, Ordering::Relaxed);
            self.1.lock().unwrap().push(notice.to_string());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn observers_hear_each_change_once_and_clones_share_the_state() {
        let protections = Protections::default();
        let suno = protections.get(Service::Suno).clone();
        let once = Arc::new(Count::default());
        let observer: Arc<dyn CallObserver> = once.clone();
        protections.get(Service::Suno).watch(&observer);
        suno.watch(&observer); // the same observer through a clone
        let gone: Arc<dyn CallObserver> = Arc::new(Count::default());
        suno.watch(&gone);
        drop(gone);
        for _ in 0..5 {
            suno.breaker()
                .try_acquire()
                .unwrap()
                .record(Outcome::Failure);
        }
        assert_eq!(once.0.load(Ordering::Relaxed), 1);
        assert_eq!(
            once.1.lock().unwrap()[0],
            "suno: circuit opened, failing fast; next probe in 10s"
        );
        assert_eq!(
            protections.get(Service::Suno).breaker().state(),
            CircuitState::Open
        );
        assert_eq!(
            protections.get(Service::OpenAi).breaker().state(),
            CircuitState::Closed
        );
    }

    #[test]
    fn an_invalid_policy_names_the_key() {
        let mut config = Config::default();
        config.services.creatomate.rate_limit.burst = 0;
        let err = Protections::from_config(&config).unwrap_err();
        assert_eq!(err.key(), "services.creatomate.rate_limit.burst");
    }

    #[test]
    fn the_rate_limiter_follows_the_policy_and_can_be_replaced() {
        let protections = Protections::default();
        assert!(protections.get(Service::OpenAi).rate_limiter().is_none());
        assert!(protections.get(Service::Suno).rate_limiter().is_some());

        /// A limiter that refuses everything (as a shared one might while another worker holds
        /// the quota).
        #[derive(Debug)]
        struct Never;
        impl RateLimiter for Never {
            fn acquire(&self, _: Instant) -> BoxFuture<'_, Result<Duration, NoSlot>> {
                Box::pin(async {
                    Err(NoSlot::new(
                        "openai",
                        (1, Duration::from_secs(60)),
                        Duration::from_secs(60),
                        true,
                        Duration::ZERO,
                    ))
                })
            }
            fn hold_until(&self, _: Instant) -> BoxFuture<'_, ()> {
                Box::pin(async {})
            }
        }
        let replaced = protections.with_rate_limiter(Service::OpenAi, Arc::new(Never));
        let limiter = replaced.get(Service::OpenAi).rate_limiter().unwrap();
        assert!(format!("{limiter:?}").contains("Never"));
        assert_eq!(
            replaced.get(Service::OpenAi).policy(),
            &ServicePolicy::default_for(Service::OpenAi),
            "the settings it answers to are unchanged"
        );
    }
}
