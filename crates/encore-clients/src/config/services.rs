//! The protections shared by every call to one service: a retry budget, a circuit breaker and a
//! client-side rate limit (`[services.<service>]` in `encore.toml`).

use encore_resilience::PolicyError;
use encore_resilience::breaker::CircuitBreakerConfig;
use encore_resilience::budget::RetryBudgetConfig;
use encore_resilience::rate_limit::RateLimitConfig;
use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use crate::defaults::{CREATOMATE_RATE_LIMIT, OPENAI_RATE_LIMIT, SUNO_RATE_LIMIT};
use crate::endpoint::Service;

/// The protections of one service, shared by every call to it in the process
/// (`[services.openai]`, `[services.suno]`, `[services.creatomate]`).
///
/// - `budget` ([`RetryBudgetConfig`]): retries may add at most `ratio` of the calls made
///   (plus a floor of `min_per_sec`), so an outage is not amplified by every call retrying;
///   when it is empty the call stops with "retry budget for suno exhausted".
/// - `breaker` ([`CircuitBreakerConfig`]): after a run or a share of failed attempts the service
///   is not called for a while; calls fail fast with "circuit open for suno, next probe in 8s"
///   until a probe succeeds. 429s and other rate limits count neither way; permanent errors
///   (400, 401, 404…) count as the service being up.
/// - `rate_limit` ([`RateLimitConfig`]): the documented request quota, so concurrent calls
///   queue instead of earning 429s. Each attempt (retries included) waits for its slot before
///   it is sent, and that wait counts against the call's `deadline` but not its
///   `attempt_timeout`; when the slot would come after the deadline, the call fails at once
///   ([`Error::is_throttled`](crate::Error::is_throttled)) and nothing is sent. A 429 carrying
///   `Retry-After` also holds every new request to the service until the instant the server
///   named (at most the endpoint's `max_retry_after`). What counts: every Creatomate request
///   (its limit includes polling), every OpenAI request, and Suno's `generate` only — see
///   [`Endpoint::counts_toward_rate_limit`](crate::Endpoint::counts_toward_rate_limit).
///
/// Each can be switched off with its `enabled = false`. The global `retries = false` rollback
/// switch makes one attempt per call (so the budget has nothing to limit), but leaves the
/// breaker and the rate limit active: switch those off here.
///
/// The shared state is built from these settings by
/// [`Protections::from_config`](crate::Protections::from_config) and handed to an
/// [`Http`](crate::Http) handle; every client built on that handle uses it.
///
/// # Defaults
///
/// | key | openai | suno | creatomate | meaning |
/// |---|---|---|---|---|
/// | `budget.enabled` | `true` | `true` | `true` | `false`: every retry the endpoint policy allows is made |
/// | `budget.ratio` | `0.2` | `0.2` | `0.2` | retries may add this share of the calls made… |
/// | `budget.min_per_sec` | `1.0` | `1.0` | `1.0` | …plus this many per second (the floor for a quiet client) |
/// | `budget.window` | `10s` | `10s` | `10s` | how long calls and retries count |
/// | `breaker.enabled` | `true` | `true` | `true` | `false`: never fail fast |
/// | `breaker.consecutive_failures` | `5` | `5` | `5` | failed attempts in a row that open it |
/// | `breaker.failure_ratio` | `0.5` | `0.5` | `0.5` | share of failed attempts in `window` that opens it… |
/// | `breaker.min_calls` | `10` | `10` | `10` | …once `window` holds this many |
/// | `breaker.window` | `1m` | `1m` | `1m` | how far back failures count |
/// | `breaker.open_for` | `10s` | `10s` | `10s` | time open before the first probe |
/// | `breaker.max_open_for` | `2m` | `2m` | `2m` | cap on the open time, which doubles per failed probe |
/// | `breaker.half_open_probes` | `1` | `1` | `1` | probes that must succeed to close it |
/// | `rate_limit.enabled` | `false` | `true` | `true` | `false`: no client-side limit |
/// | `rate_limit.requests` | `500` | `20` | `30` | requests allowed per `per` |
/// | `rate_limit.per` | `1m` | `10s` | `10s` | the quota's window |
/// | `rate_limit.burst` | `1` | `1` | `1` | requests that may go at once |
///
/// Environment variables address them like every other key:
/// `ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS=10`, `ENCORE_SERVICES__CREATOMATE__BREAKER__ENABLED=false`.
///
/// ```
/// use encore_clients::{Config, Service};
///
/// let config = Config::from_toml_str(r#"
///     [services.suno.breaker]
///     consecutive_failures = 3
///     [services.creatomate.rate_limit]
///     enabled = false
/// "#).unwrap();
/// assert_eq!(config.service(Service::Suno).breaker.consecutive_failures, 3);
/// assert!(!config.service(Service::Creatomate).rate_limit.enabled);
/// // Everything else keeps the service's defaults.
/// assert_eq!(config.service(Service::Suno).rate_limit.requests, 20);
///
/// let err = Config::from_toml_str("[services.suno.breaker]\nfailure_ratio = 2.0").unwrap_err();
/// assert_eq!(err.key(), "services.suno.breaker.failure_ratio");
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServicePolicy {
    /// The retry budget.
    pub budget: RetryBudgetConfig,
    /// The circuit breaker.
    pub breaker: CircuitBreakerConfig,
    /// The client-side rate limit.
    pub rate_limit: RateLimitConfig,
}

impl ServicePolicy {
    /// The shipped default of `service` (see the Defaults table above).
    pub const fn default_for(service: Service) -> ServicePolicy {
        ServicePolicy {
            budget: RetryBudgetConfig::new(),
            breaker: CircuitBreakerConfig::new(),
            rate_limit: match service {
                Service::OpenAi => OPENAI_RATE_LIMIT,
                Service::Suno => SUNO_RATE_LIMIT,
                Service::Creatomate => CREATOMATE_RATE_LIMIT,
            },
        }
    }

    /// Switches the budget, the breaker and the rate limit off: the behaviour before they
    /// existed (every retry the endpoint allows, no failing fast, no waiting).
    pub const fn without_protections(mut self) -> ServicePolicy {
        self.budget.enabled = false;
        self.breaker.enabled = false;
        self.rate_limit.enabled = false;
        self
    }

    /// Checks the three parts, naming the full key (`services.suno.breaker.failure_ratio`).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] from the first part that is invalid.
    pub fn validate(&self, service: Service) -> Result<(), ConfigError> {
        let key = |part: &str, e: &PolicyError| format!("services.{service}.{part}.{}", e.field());
        if let Err(e) = self.budget.validate() {
            return Err(ConfigError::new(key("budget", &e), e.reason()));
        }
        if let Err(e) = self.breaker.validate() {
            return Err(ConfigError::new(key("breaker", &e), e.reason()));
        }
        if let Err(e) = self.rate_limit.validate() {
            return Err(ConfigError::new(key("rate_limit", &e), e.reason()));
        }
        Ok(())
    }
}

/// The [`ServicePolicy`] of every service, keyed as in `[services.<service>]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Services {
    /// OpenAI.
    pub openai: ServicePolicy,
    /// Suno.
    pub suno: ServicePolicy,
    /// Creatomate.
    pub creatomate: ServicePolicy,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            openai: ServicePolicy::default_for(Service::OpenAi),
            suno: ServicePolicy::default_for(Service::Suno),
            creatomate: ServicePolicy::default_for(Service::Creatomate),
        }
    }
}

impl Services {
    /// The policy of `service`.
    pub fn get(&self, service: Service) -> &ServicePolicy {
        match service {
            Service::OpenAi => &self.openai,
            Service::Suno => &self.suno,
            Service::Creatomate => &self.creatomate,
        }
    }

    /// The policy of `service`, mutably.
    pub fn get_mut(&mut self, service: Service) -> &mut ServicePolicy {
        match service {
            Service::OpenAi => &mut self.openai,
            Service::Suno => &mut self.suno,
            Service::Creatomate => &mut self.creatomate,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use encore_resilience::fmt_duration;

    use super::*;
    use crate::config::Config;

    const ALL: [Service; 3] = Service::ALL;

    /// Renders one cell of the Defaults table from a service's policy.
    type Cell<'a> = &'a dyn Fn(&ServicePolicy) -> String;

    /// The Defaults table rows, computed from the defaults.
    fn rows(services: &Services) -> Vec<String> {
        let cell = |f: Cell<'_>| {
            ALL.iter()
                .map(|s| format!("`{}`", f(services.get(*s))))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        let d = |d: Duration| fmt_duration(d);
        let table: [(&str, Cell<'_>); 16] = [
            ("budget.enabled", &|p| p.budget.enabled.to_string()),
            ("budget.ratio", &|p| format!("{:?}", p.budget.ratio)),
            ("budget.min_per_sec", &|p| {
                format!("{:?}", p.budget.min_per_sec)
            }),
            ("budget.window", &|p| d(p.budget.window)),
            ("breaker.enabled", &|p| p.breaker.enabled.to_string()),
            ("breaker.consecutive_failures", &|p| {
                p.breaker.consecutive_failures.to_string()
            }),
            ("breaker.failure_ratio", &|p| {
                format!("{:?}", p.breaker.failure_ratio)
            }),
            ("breaker.min_calls", &|p| p.breaker.min_calls.to_string()),
            ("breaker.window", &|p| d(p.breaker.window)),
            ("breaker.open_for", &|p| d(p.breaker.open_for)),
            ("breaker.max_open_for", &|p| d(p.breaker.max_open_for)),
            ("breaker.half_open_probes", &|p| {
                p.breaker.half_open_probes.to_string()
            }),
            ("rate_limit.enabled", &|p| p.rate_limit.enabled.to_string()),
            ("rate_limit.requests", &|p| {
                p.rate_limit.requests.to_string()
            }),
            ("rate_limit.per", &|p| d(p.rate_limit.per)),
            ("rate_limit.burst", &|p| p.rate_limit.burst.to_string()),
        ];
        table
            .iter()
            .map(|(key, f)| format!("/// | `{key}` | {} |", cell(*f)))
            .collect()
    }

    #[test]
    fn defaults_match_the_documented_table_and_the_quotas() {
        let services = Services::default();
        for service in ALL {
            services.get(service).validate(service).unwrap();
            assert_eq!(*services.get(service), ServicePolicy::default_for(service));
        }
        let doc = include_str!("services.rs");
        for row in rows(&services) {
            assert!(
                doc.lines().any(|l| l.starts_with(&row)),
                "the rustdoc Defaults table lacks {row}"
            );
        }
        // The documented quotas (reference §1.8 and §2.7), evenly spaced.
        assert_eq!(
            services.suno.rate_limit.interval(),
            Duration::from_millis(500)
        );
        assert!(services.suno.rate_limit.enabled);
        assert_eq!(
            services.creatomate.rate_limit.interval(),
            Duration::from_nanos(333_333_334)
        );
        assert!(services.creatomate.rate_limit.interval() * 30 >= Duration::from_secs(10));
        assert!(services.creatomate.rate_limit.enabled);
        assert!(!services.openai.rate_limit.enabled);
        // The budget stays in the 10–20 % range with a floor.
        for service in ALL {
            let b = &services.get(service).budget;
            assert!((0.1..=0.2).contains(&b.ratio) && b.min_per_sec > 0.0);
        }
    }

    #[test]
    fn without_protections_switches_all_three_off() {
        let p = ServicePolicy::default_for(Service::Suno).without_protections();
        assert!(!p.budget.enabled && !p.breaker.enabled && !p.rate_limit.enabled);
        p.validate(Service::Suno).unwrap();
    }

    #[test]
    fn invalid_service_values_name_the_full_key() {
        for (toml, key) in [
            (
                "[services.suno.breaker]\nfailure_ratio = 1.5",
                "services.suno.breaker.failure_ratio",
            ),
            (
                "[services.openai.budget]\nratio = 2.0",
                "services.openai.budget.ratio",
            ),
            (
                "[services.creatomate.budget]\nwindow = \"0s\"",
                "services.creatomate.budget.window",
            ),
            (
                "[services.creatomate.rate_limit]\nburst = 31",
                "services.creatomate.rate_limit.burst",
            ),
            (
                "[services.suno.rate_limit]\nrequests = 0",
                "services.suno.rate_limit.requests",
            ),
            (
                "[services.suno.rate_limit]\nper = \"soon\"",
                "services.suno.rate_limit.per",
            ),
            (
                "[services.suno.breaker]\nopen_for = \"0s\"",
                "services.suno.breaker.open_for",
            ),
            (
                "[services.suno.rate_limit]\nrequests = -3",
                "services.suno.rate_limit.requests",
            ),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err();
            assert_eq!(err.key(), key, "{toml}: {err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid config: {key}: ")),
                "{err}"
            );
        }
        for (toml, key) in [
            (
                "[services.suno.breakr]\nenabled = false",
                "services.suno.breakr",
            ),
            (
                "[services.suno.rate_limit]\nrps = 3",
                "services.suno.rate_limit.rps",
            ),
            ("[services.elevenlabs]\nbudget = {}", "services.elevenlabs"),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err();
            assert_eq!(err.key(), key, "{toml}: {err}");
            assert!(err.to_string().contains("unknown key"), "{err}");
        }
    }

    #[test]
    fn partial_tables_keep_each_services_own_defaults() {
        let c = Config::from_toml_str(
            "[services.suno.rate_limit]\nrequests = 10\n[services.openai.rate_limit]\nenabled = true\n",
        )
        .unwrap();
        assert_eq!(c.services.suno.rate_limit.requests, 10);
        assert_eq!(c.services.suno.rate_limit.per, Duration::from_secs(10));
        assert!(c.services.openai.rate_limit.enabled);
        assert_eq!(c.services.openai.rate_limit.requests, 500);
        assert_eq!(
            c.services.creatomate,
            ServicePolicy::default_for(Service::Creatomate)
        );
    }
}
