//! Typed clients for the three paid, slow and flaky APIs encore uses — OpenAI (structured
//! lyrics), Suno via sunoapi.org (the song) and Creatomate (the video) — whose every call goes
//! through the resilience core with its endpoint's timeout and retry policy.
//!
//! - One request path shared by every call: build, run the endpoint's policy with
//!   [`encore_resilience::Retry`], classify each failure (one pure function per service), decode,
//!   and report to `tracing` and to a [`CallObserver`].
//! - One shared HTTP client per process ([`Http::shared`]); tests plug in any `tower` service,
//!   such as the simulator's router, with [`Http::service`].
//! - Protections shared by every call to a service through that [`Http`] handle, so an outage
//!   is not amplified by every pipeline retrying ([`ServicePolicy`]): a retry budget (retries
//!   add at most 20 % of the load), a circuit breaker (fail fast with "circuit open for suno,
//!   next probe in 8s" while a service keeps failing; changes reach
//!   [`CallObserver::breaker_changed`]) and a client-side rate limit at each service's
//!   documented quota, so concurrent pipelines queue instead of earning 429s. Each can be
//!   switched off.
//! - Policies are the seed plan's table by default and configurable without a rebuild
//!   ([`Config`]: `encore.toml` and `ENCORE_*` variables), with one switch to turn retries off.
//! - **Never pay twice**: a billed call (Suno generate, Creatomate render) is not replayed after
//!   a failure that may have created the job; the error says so ([`Error::may_have_run`]).
//! - API keys ([`ApiKey`]) are only ever sent in a header; they never appear in logs, errors or
//!   `Debug` output.
//!
//! ```
//! use std::time::Duration;
//! use encore_clients::{Config, Endpoint};
//!
//! let config = Config::from_toml_str(r#"
//!     retries = true
//!     [endpoints.suno_status]
//!     max_retries = 4
//!     attempt_timeout = "10s"
//! "#).unwrap();
//! let policy = config.endpoint(Endpoint::SunoStatus).retry_policy(config.retries);
//! assert_eq!(policy.max_attempts(), 5);
//! assert_eq!(policy.attempt_timeout, Duration::from_secs(10));
//! // Suno generate keeps the seed plan's row: 30 s per attempt, waits of 1, 2 and 4 s,
//! // and it is never replayed after a failure that may have created the task.
//! let generate = config.endpoint(Endpoint::SunoGenerate);
//! assert_eq!(generate.attempt_timeout, Duration::from_secs(30));
//! assert!(Endpoint::SunoGenerate.is_billed() && !generate.retry_ambiguous);
//! ```
#![warn(missing_docs)]

mod classify;
mod config;
pub mod creatomate;
mod error;
mod guard;
mod limiter;
mod observer;
pub mod openai;
mod request;
mod secret;
mod service_policy;
pub mod suno;
mod transport;
mod wire;

pub use config::{
    Config, ConfigError, CreatomateConfig, DEADLINE_ROUNDING, DEFAULT_CONFIG_FILE,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_CREATOMATE_BASE_URL, DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRY_AFTER, DEFAULT_OPENAI_BASE_URL, DEFAULT_OPENAI_MODEL, DEFAULT_SUNO_BASE_URL,
    DEFAULT_SUNO_CALLBACK_URL, DEFAULT_SUNO_MODEL, ENV_PREFIX, Endpoint, EndpointPolicy, Endpoints,
    HttpConfig, OpenAiConfig, Service, SunoConfig,
};
pub use creatomate::CreatomateClient;
pub use encore_resilience::{CircuitBreakerConfig, CircuitState, RetryBudgetConfig};
pub use error::{Error, ErrorKind};
pub use observer::{BreakerNotice, CallObserver, CallOutcome, CallRecord, RetryNotice};
pub use openai::OpenAiClient;
pub use secret::ApiKey;
pub use service_policy::{
    CREATOMATE_RATE_LIMIT, DEFAULT_RATE_LIMIT_BURST, OPENAI_RATE_LIMIT, RateLimitConfig,
    SUNO_RATE_LIMIT, ServicePolicy, Services,
};
pub use suno::SunoClient;
pub use transport::Http;
