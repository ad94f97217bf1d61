//! The protections of one service — retry budget, circuit breaker, rate limit — and the observers
//! that hear about its breaker, shared by every client of the service on one [`Http`] handle.
//!
//! [`Http`]: crate::Http

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use encore_resilience::{CircuitBreaker, CircuitState, RetryBudget, StateChange};

use crate::config::{ConfigError, Service};
use crate::limiter::Limiter;
use crate::observer::{BreakerNotice, CallObserver};
use crate::service_policy::ServicePolicy;

type Observers = Mutex<Vec<Weak<dyn CallObserver>>>;

/// One service's shared protections.
pub(crate) struct Guard {
    service: Service,
    policy: ServicePolicy,
    pub(crate) budget: RetryBudget,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) limiter: Limiter,
    observers: Arc<Observers>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("service", &self.service)
            .field("budget", &self.budget)
            .field("breaker", &self.breaker)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl Guard {
    fn new(service: Service, policy: &ServicePolicy) -> Result<Guard, ConfigError> {
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
        let observers: Arc<Observers> = Arc::default();
        let listeners = Arc::downgrade(&observers);
        breaker.on_state_change(move |change| {
            if let Some(listeners) = listeners.upgrade() {
                notify(&listeners, service, change);
            }
        });
        Ok(Guard {
            service,
            policy: policy.clone(),
            budget,
            breaker,
            limiter: Limiter::new(service, &policy.rate_limit),
            observers,
        })
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

/// The guards of the three services, created on first use (the first config wins).
#[derive(Default)]
pub(crate) struct Guards {
    cells: [OnceLock<Arc<Guard>>; 3],
}

impl fmt::Debug for Guards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.cells.iter().filter_map(OnceLock::get))
            .finish()
    }
}

const fn index(service: Service) -> usize {
    match service {
        Service::OpenAi => 0,
        Service::Suno => 1,
        Service::Creatomate => 2,
    }
}

impl Guards {
    /// The guard of `service`, created from `policy` if there is none yet. A later, different
    /// `policy` is logged and ignored: the protections are shared, so the first one stays.
    pub(crate) fn get_or_init(
        &self,
        service: Service,
        policy: &ServicePolicy,
    ) -> Result<Arc<Guard>, ConfigError> {
        let cell = &self.cells[index(service)];
        let guard = if let Some(guard) = cell.get() {
            guard
        } else {
            let fresh = Arc::new(Guard::new(service, policy)?);
            // A racing client may have won; then its guard is the one.
            cell.get_or_init(|| fresh)
        };
        if guard.policy != *policy {
            tracing::warn!(
                service = %service,
                "a {service} client was built with other [services.{service}] settings than the \
                 first one on this Http handle; the first ones stay in force (the retry budget, \
                 circuit breaker and rate limit are shared)"
            );
        }
        Ok(Arc::clone(guard))
    }

    pub(crate) fn get(&self, service: Service) -> Option<&Arc<Guard>> {
        self.cells[index(service)].get()
    }

    pub(crate) fn circuit_state(&self, service: Service) -> Option<CircuitState> {
        self.get(service).map(|g| g.breaker.state())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use encore_resilience::Outcome;

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
    async fn the_first_policy_wins_and_observers_hear_each_change_once() {
        let guards = Guards::default();
        let suno = ServicePolicy::default_for(Service::Suno);
        let a = guards.get_or_init(Service::Suno, &suno).unwrap();
        let other = suno.clone().without_protections();
        let b = guards.get_or_init(Service::Suno, &other).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "shared");
        assert!(b.breaker.config().enabled, "the first config stays");

        let once = Arc::new(Count::default());
        let observer: Arc<dyn CallObserver> = once.clone();
        a.watch(&observer);
        b.watch(&observer); // the same observer through another client
        let gone: Arc<dyn CallObserver> = Arc::new(Count::default());
        a.watch(&gone);
        drop(gone);
        for _ in 0..5 {
            a.breaker.try_acquire().unwrap().record(Outcome::Failure);
        }
        assert_eq!(once.0.load(Ordering::Relaxed), 1);
        assert_eq!(
            once.1.lock().unwrap()[0],
            "suno: circuit opened, failing fast; next probe in 10s"
        );
        assert_eq!(
            guards.circuit_state(Service::Suno),
            Some(CircuitState::Open)
        );
        assert_eq!(guards.circuit_state(Service::OpenAi), None);
    }

    #[test]
    fn an_invalid_policy_names_the_key_and_creates_nothing() {
        let guards = Guards::default();
        let mut policy = ServicePolicy::default_for(Service::Creatomate);
        policy.rate_limit.burst = 0;
        let err = guards
            .get_or_init(Service::Creatomate, &policy)
            .unwrap_err();
        assert_eq!(err.key(), "services.creatomate.rate_limit.burst");
        assert!(guards.get(Service::Creatomate).is_none());
    }
}
