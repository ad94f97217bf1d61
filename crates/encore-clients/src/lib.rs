//! Typed clients for the three paid, slow and flaky APIs encore uses — OpenAI (structured
//! lyrics), Suno via sunoapi.org (the song) and Creatomate (the video) — whose every call goes
//! through the resilience core with its endpoint's timeout and retry policy.
//!
//! - One request path shared by every call (`request.rs`): the resilience core's
//!   [`Retry`](encore_resilience::Retry) owns each attempt — admission by the service's
//!   breaker and rate limit, the attempt under its timeout, classification by the endpoint's
//!   rules, the decision and the wait — and the client builds, sends and decodes (one pure
//!   function per service), each attempt in a `tracing` span with OpenTelemetry's HTTP
//!   attribute names, and reports to a [`CallObserver`].
//! - One shared HTTP client per process ([`Http::shared`], [`Http::for_config`]); tests plug in
//!   any `tower` service, such as the simulator's router, with [`Http::service`].
//! - Protections shared by every call to a service through that [`Http`] handle's
//!   [`Protections`] registry, so an outage is not amplified by every pipeline retrying
//!   ([`ServicePolicy`](config::ServicePolicy)): a retry budget (retries add at most 20 % of the
//!   load), a circuit breaker (fail fast with "circuit open for suno, next probe in 8s" while a
//!   service keeps failing; changes reach [`CallObserver::breaker_changed`]) and a client-side
//!   rate limit at each service's documented quota, so concurrent pipelines queue instead of
//!   earning 429s. Each can be switched off, and the rate limiter can be replaced by one shared
//!   between processes.
//! - Policies are the seed plan's table by default and configurable without a rebuild
//!   ([`Config`]: `encore.toml` and `ENCORE_*` variables, read by a
//!   [`Loader`](config::Loader) that programs extend with tables of their own), with one
//!   switch to turn retries off.
//! - **Never pay twice**: a billed call (Suno generate, Creatomate render) is not replayed after
//!   a failure that may have created the job; the error says so ([`Error::may_have_run`]).
//! - Answers the providers really give are read for what they mean: a job that is "not found"
//!   is one permanent attempt that counts as the service being up ([`Error::is_not_found`]; the
//!   caller decides whether to look again), Suno words without times keep the rest of the
//!   timestamped lyrics, the older docs' `FAILED` ends a task, and an OpenAI answer that is
//!   HTTP 200 but refused, failed or cut off says which (the request asks for `store: false`
//!   and a bounded `max_output_tokens`).
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

mod class;
mod classify;
pub mod config;
pub mod creatomate;
pub mod defaults;
mod endpoint;
mod error;
mod observer;
pub mod openai;
mod protections;
mod redact;
mod request;
mod secret;
pub mod suno;
mod transport;
mod wire;

pub use config::{Config, ConfigError};
pub use creatomate::CreatomateClient;
pub use encore_resilience::breaker::CircuitState;
pub use endpoint::{Endpoint, Service};
pub use error::{Error, ErrorKind};
pub use observer::{
    AttemptOutcome, AttemptRecord, BreakerNotice, CallObserver, CallOutcome, CallRecord,
    Protection, RefusalNotice, RetryNotice,
};
pub use openai::OpenAiClient;
pub use protections::{Protections, ServiceProtections};
pub use secret::ApiKey;
pub use suno::SunoClient;
pub use transport::Http;
