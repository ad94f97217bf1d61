//! Configuration: base URLs, models, the timeout and retry policy of every endpoint, and the
//! protections shared by every call to a service (retry budget, circuit breaker, rate limit).
//!
//! Loaded in layers — the built-in defaults, then `encore.toml`, then `ENCORE_*` environment
//! variables — and validated once, with errors that name the offending key.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use encore_resilience::{Jitter, RetryPolicy};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::service_policy::{ServicePolicy, Services};

/// The prefix of configuration environment variables. Nested keys are separated by `__`:
/// `ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRIES=5` sets `endpoints.suno_generate.max_retries`.
pub const ENV_PREFIX: &str = "ENCORE_";
/// The file read by [`Config::load`] when no path is given (in the current directory only).
pub const DEFAULT_CONFIG_FILE: &str = "encore.toml";

/// Default for [`HttpConfig::connect_timeout`]: 10 s, the seed plan's `CONNECT_TIMEOUT`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`OpenAiConfig::base_url`] (the official SDK's default base).
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Default for [`OpenAiConfig::model`]: a small, cheap model that supports structured outputs.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
/// Default for [`SunoConfig::base_url`] (sunoapi.org; every path lives under `/api/v1`).
pub const DEFAULT_SUNO_BASE_URL: &str = "https://api.sunoapi.org/api/v1";
/// Default for [`SunoConfig::model`]: `V4_5`, the model in sunoapi.org's quick start.
pub const DEFAULT_SUNO_MODEL: &str = "V4_5";
/// Default for [`SunoConfig::callback_url`]. sunoapi.org refuses a generate request without a
/// callback URL, but encore polls instead; `.invalid` never resolves (RFC 2606), so nothing is
/// ever delivered anywhere. A failed delivery may end the task as `CALLBACK_EXCEPTION` with
/// usable tracks, which [`TaskRecord::has_audio`](crate::suno::TaskRecord::has_audio) detects.
pub const DEFAULT_SUNO_CALLBACK_URL: &str = "https://callback.invalid/encore/suno";
/// Default for [`CreatomateConfig::base_url`] (v1, as both official SDKs use).
pub const DEFAULT_CREATOMATE_BASE_URL: &str = "https://api.creatomate.com/v1";
/// Default for [`EndpointPolicy::max_delay`]: 30 s, the seed plan's cap on one wait.
pub const DEFAULT_MAX_DELAY: Duration = encore_resilience::DEFAULT_MAX_DELAY;
/// Default for [`EndpointPolicy::max_retry_after`]: 2 min, the ceiling openai-python applies.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = encore_resilience::DEFAULT_MAX_RETRY_AFTER;
/// Default deadlines are the worst case of the schedule, `attempts × attempt_timeout + waits`,
/// rounded up to a multiple of this (5 s), so the full schedule always fits.
pub const DEADLINE_ROUNDING: Duration = Duration::from_secs(5);

/// The top-level sections an `ENCORE_*` variable may address. Other `ENCORE_*` variables
/// (`ENCORE_LOG`, `ENCORE_CONFIG`, …) belong to other parts of encore and are ignored.
const SECTIONS: [&str; 7] = [
    "retries",
    "http",
    "openai",
    "suno",
    "creatomate",
    "endpoints",
    "services",
];

/// One of the three external services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// OpenAI (Responses API): lyrics.
    OpenAi,
    /// Suno via sunoapi.org: the song.
    Suno,
    /// Creatomate: the video.
    Creatomate,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 3] = [Service::OpenAi, Service::Suno, Service::Creatomate];

    /// `"openai"`, `"suno"` or `"creatomate"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Service::OpenAi => "openai",
            Service::Suno => "suno",
            Service::Creatomate => "creatomate",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One remote operation with its own timeout and retry policy (a row of the seed plan's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/responses` — structured lyrics. Billed (cheaply) and not idempotent.
    OpenAiResponses,
    /// `POST /api/v1/generate` — creates a billed Suno task. Not idempotent.
    SunoGenerate,
    /// `GET /api/v1/generate/record-info` — task status.
    SunoStatus,
    /// `POST /api/v1/generate/get-timestamped-lyrics` — a read despite the POST.
    SunoTimestamps,
    /// `GET /api/v1/generate/credit` — remaining credits.
    SunoCredits,
    /// `GET /v1/templates` and `GET /v1/templates/{id}`.
    CreatomateTemplates,
    /// `POST /v1/renders` — queues a billed render. Not idempotent.
    CreatomateRender,
    /// `GET /v1/renders/{id}` — render status.
    CreatomateStatus,
}

impl Endpoint {
    /// Every endpoint, in the order of the Defaults table.
    pub const ALL: [Endpoint; 8] = [
        Endpoint::OpenAiResponses,
        Endpoint::SunoGenerate,
        Endpoint::SunoStatus,
        Endpoint::SunoTimestamps,
        Endpoint::SunoCredits,
        Endpoint::CreatomateTemplates,
        Endpoint::CreatomateRender,
        Endpoint::CreatomateStatus,
    ];

    /// The service the endpoint belongs to.
    pub const fn service(self) -> Service {
        match self {
            Endpoint::OpenAiResponses => Service::OpenAi,
            Endpoint::SunoGenerate
            | Endpoint::SunoStatus
            | Endpoint::SunoTimestamps
            | Endpoint::SunoCredits => Service::Suno,
            Endpoint::CreatomateTemplates
            | Endpoint::CreatomateRender
            | Endpoint::CreatomateStatus => Service::Creatomate,
        }
    }

    /// The name used in logs and errors, e.g. `"suno.generate"`.
    pub const fn name(self) -> &'static str {
        match self {
            Endpoint::OpenAiResponses => "openai.responses",
            Endpoint::SunoGenerate => "suno.generate",
            Endpoint::SunoStatus => "suno.status",
            Endpoint::SunoTimestamps => "suno.timestamps",
            Endpoint::SunoCredits => "suno.credits",
            Endpoint::CreatomateTemplates => "creatomate.templates",
            Endpoint::CreatomateRender => "creatomate.render",
            Endpoint::CreatomateStatus => "creatomate.status",
        }
    }

    /// The key under `[endpoints]` in `encore.toml`, e.g. `"suno_generate"`.
    pub const fn config_key(self) -> &'static str {
        match self {
            Endpoint::OpenAiResponses => "openai_responses",
            Endpoint::SunoGenerate => "suno_generate",
            Endpoint::SunoStatus => "suno_status",
            Endpoint::SunoTimestamps => "suno_timestamps",
            Endpoint::SunoCredits => "suno_credits",
            Endpoint::CreatomateTemplates => "creatomate_templates",
            Endpoint::CreatomateRender => "creatomate_render",
            Endpoint::CreatomateStatus => "creatomate_status",
        }
    }

    /// Whether a processed call is billed and a replay would be billed again (a non-idempotent
    /// POST): OpenAI responses, Suno generate and Creatomate render. Failures after which such a
    /// call "may have run" are only retried when the endpoint's
    /// [`retry_ambiguous`](EndpointPolicy::retry_ambiguous) is set.
    pub const fn is_billed(self) -> bool {
        matches!(
            self,
            Endpoint::OpenAiResponses | Endpoint::SunoGenerate | Endpoint::CreatomateRender
        )
    }

    /// Whether a request to this endpoint takes a slot of its service's client-side rate limit
    /// ([`RateLimitConfig`](crate::RateLimitConfig)): every OpenAI and Creatomate request
    /// (Creatomate's quota counts polling too), and Suno's `generate` only, the one endpoint
    /// sunoapi.org documents a limit for.
    pub const fn counts_toward_rate_limit(self) -> bool {
        !matches!(
            self,
            Endpoint::SunoStatus | Endpoint::SunoTimestamps | Endpoint::SunoCredits
        )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The timeout and retry policy of one endpoint: the fields of
/// [`RetryPolicy`] plus [`retry_ambiguous`](Self::retry_ambiguous).
///
/// Durations are humantime strings in files and variables (`"500ms"`, `"2s"`, `"1m 30s"`).
/// The per-attempt timeout covers the whole attempt — pool wait, connect, sending the request
/// and reading the entire body — and sits inside the retry loop; the deadline sits outside it
/// and bounds every attempt and every wait together.
///
/// Every field is required when this type is deserialized on its own: load it through
/// [`Config::load`] or [`Config::from_toml_str`], which layer a partial table over the
/// endpoint's own defaults ([`EndpointPolicy::default_for`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointPolicy {
    /// `false` makes exactly one attempt (this endpoint's rollback switch).
    pub enabled: bool,
    /// Retries on top of the first attempt.
    pub max_retries: u32,
    /// The wait before the first retry.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// The cap on one backoff wait.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Growth of the wait per retry.
    pub multiplier: f64,
    /// `none`, `full`, `equal` or `decorrelated`.
    pub jitter: Jitter,
    /// The bound on one attempt (connect, write, read and pool wait together).
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// The bound on the whole call, attempts and waits included.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// The longest server-requested wait (`Retry-After`) honoured; a longer one gives up.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Billed endpoints only: also retry after a failure that happened after the request may
    /// have been processed (attempt timeout, connection reset after sending, 5xx, garbled 2xx).
    /// Such a retry can pay twice. Ignored by reads, which are always replayed.
    pub retry_ambiguous: bool,
}

impl EndpointPolicy {
    /// The shipped default of `endpoint` (see the Defaults table on [`Config`]).
    pub const fn default_for(endpoint: Endpoint) -> EndpointPolicy {
        match endpoint {
            // OpenAI bills cheaply and its SDK replays every failure; replaying a lost response
            // costs cents, while failing the whole video costs a run. Hence retry_ambiguous.
            Endpoint::OpenAiResponses => row(60, 3, 2, true),
            Endpoint::SunoGenerate => row(30, 3, 1, false),
            Endpoint::CreatomateRender => row(60, 3, 1, false),
            Endpoint::SunoStatus
            | Endpoint::SunoCredits
            | Endpoint::CreatomateTemplates
            | Endpoint::CreatomateStatus => row(30, 2, 1, false),
            Endpoint::SunoTimestamps => row(120, 2, 2, false),
        }
    }

    /// The [`RetryPolicy`] the resilience core runs; `global_retries = false` (the top-level
    /// `retries` switch) disables retries like `enabled = false` does.
    pub fn retry_policy(&self, global_retries: bool) -> RetryPolicy {
        RetryPolicy::new()
            .with_enabled(self.enabled && global_retries)
            .with_max_retries(self.max_retries)
            .with_base_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_multiplier(self.multiplier)
            .with_jitter(self.jitter)
            .with_attempt_timeout(self.attempt_timeout)
            .with_deadline(self.deadline)
            .with_max_retry_after(self.max_retry_after)
    }
}

/// A default row: `timeout_s` per attempt, `retries` retries waiting `base_s · 2^k`, and a
/// deadline of `attempts × timeout + waits` rounded up to [`DEADLINE_ROUNDING`].
const fn row(timeout_s: u64, retries: u32, base_s: u64, retry_ambiguous: bool) -> EndpointPolicy {
    let attempts = retries as u64 + 1;
    let waits = base_s * ((1 << retries) - 1);
    let worst = attempts * timeout_s + waits;
    let step = DEADLINE_ROUNDING.as_secs();
    let deadline = worst.div_ceil(step) * step;
    EndpointPolicy {
        enabled: true,
        max_retries: retries,
        base_delay: Duration::from_secs(base_s),
        max_delay: DEFAULT_MAX_DELAY,
        multiplier: 2.0,
        jitter: Jitter::None,
        attempt_timeout: Duration::from_secs(timeout_s),
        deadline: Duration::from_secs(deadline),
        max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        retry_ambiguous,
    }
}

/// The policies of every endpoint, keyed as in `[endpoints.<key>]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoints {
    /// `openai.responses`.
    pub openai_responses: EndpointPolicy,
    /// `suno.generate`.
    pub suno_generate: EndpointPolicy,
    /// `suno.status` (record-info).
    pub suno_status: EndpointPolicy,
    /// `suno.timestamps` (timestamped lyrics).
    pub suno_timestamps: EndpointPolicy,
    /// `suno.credits`.
    pub suno_credits: EndpointPolicy,
    /// `creatomate.templates` (list and single template).
    pub creatomate_templates: EndpointPolicy,
    /// `creatomate.render`.
    pub creatomate_render: EndpointPolicy,
    /// `creatomate.status`.
    pub creatomate_status: EndpointPolicy,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            openai_responses: EndpointPolicy::default_for(Endpoint::OpenAiResponses),
            suno_generate: EndpointPolicy::default_for(Endpoint::SunoGenerate),
            suno_status: EndpointPolicy::default_for(Endpoint::SunoStatus),
            suno_timestamps: EndpointPolicy::default_for(Endpoint::SunoTimestamps),
            suno_credits: EndpointPolicy::default_for(Endpoint::SunoCredits),
            creatomate_templates: EndpointPolicy::default_for(Endpoint::CreatomateTemplates),
            creatomate_render: EndpointPolicy::default_for(Endpoint::CreatomateRender),
            creatomate_status: EndpointPolicy::default_for(Endpoint::CreatomateStatus),
        }
    }
}

impl Endpoints {
    /// The policy of `endpoint`.
    pub fn get(&self, endpoint: Endpoint) -> &EndpointPolicy {
        match endpoint {
            Endpoint::OpenAiResponses => &self.openai_responses,
            Endpoint::SunoGenerate => &self.suno_generate,
            Endpoint::SunoStatus => &self.suno_status,
            Endpoint::SunoTimestamps => &self.suno_timestamps,
            Endpoint::SunoCredits => &self.suno_credits,
            Endpoint::CreatomateTemplates => &self.creatomate_templates,
            Endpoint::CreatomateRender => &self.creatomate_render,
            Endpoint::CreatomateStatus => &self.creatomate_status,
        }
    }

    /// The policy of `endpoint`, mutably.
    pub fn get_mut(&mut self, endpoint: Endpoint) -> &mut EndpointPolicy {
        match endpoint {
            Endpoint::OpenAiResponses => &mut self.openai_responses,
            Endpoint::SunoGenerate => &mut self.suno_generate,
            Endpoint::SunoStatus => &mut self.suno_status,
            Endpoint::SunoTimestamps => &mut self.suno_timestamps,
            Endpoint::SunoCredits => &mut self.suno_credits,
            Endpoint::CreatomateTemplates => &mut self.creatomate_templates,
            Endpoint::CreatomateRender => &mut self.creatomate_render,
            Endpoint::CreatomateStatus => &mut self.creatomate_status,
        }
    }
}

/// Settings of the shared HTTP client.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Bound on establishing a connection (TCP and TLS). Each attempt is also bounded as a whole
    /// by its endpoint's `attempt_timeout`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// OpenAI settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiConfig {
    /// API base; `/responses` is appended.
    pub base_url: String,
    /// The model for structured lyrics.
    pub model: String,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: DEFAULT_OPENAI_BASE_URL.to_owned(),
            model: DEFAULT_OPENAI_MODEL.to_owned(),
        }
    }
}

/// Suno (sunoapi.org) settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SunoConfig {
    /// API base; `/generate`, `/generate/record-info`, … are appended.
    pub base_url: String,
    /// The model used when a request leaves it empty (`V4_5`, `V5`, …).
    pub model: String,
    /// The `callBackUrl` used when a request leaves it empty.
    pub callback_url: String,
}

impl Default for SunoConfig {
    fn default() -> Self {
        SunoConfig {
            base_url: DEFAULT_SUNO_BASE_URL.to_owned(),
            model: DEFAULT_SUNO_MODEL.to_owned(),
            callback_url: DEFAULT_SUNO_CALLBACK_URL.to_owned(),
        }
    }
}

/// Creatomate settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CreatomateConfig {
    /// API base; `/renders`, `/templates` are appended.
    pub base_url: String,
}

impl Default for CreatomateConfig {
    fn default() -> Self {
        CreatomateConfig {
            base_url: DEFAULT_CREATOMATE_BASE_URL.to_owned(),
        }
    }
}

/// Everything the clients need besides API keys, loadable without a rebuild.
///
/// [`Config::load`] layers, later winning: the defaults below ← `encore.toml` ← `ENCORE_*`
/// environment variables. Nested keys in variables are joined with `__`, e.g.
/// `ENCORE_RETRIES=false`, `ENCORE_HTTP__CONNECT_TIMEOUT=5s`,
/// `ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRIES=5`, `ENCORE_SUNO__MODEL=V5`,
/// `ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS=10`. Unknown keys
/// are refused, naming the key (and the variable or file it came from); values are validated
/// ([`Config::validate`]). `examples/encore.toml` lists every key with its default.
///
/// # Defaults
///
/// | key | default | meaning |
/// |---|---|---|
/// | `retries` | `true` | `false` turns retries off everywhere (the seed plan's rollback): one attempt per call, still bounded by its timeout |
/// | `http.connect_timeout` | `10s` | bound on establishing a connection |
/// | `openai.base_url` | `https://api.openai.com/v1` | |
/// | `openai.model` | `gpt-4o-mini` | |
/// | `suno.base_url` | `https://api.sunoapi.org/api/v1` | |
/// | `suno.model` | `V4_5` | used when a request leaves `model` empty |
/// | `suno.callback_url` | `https://callback.invalid/encore/suno` | encore polls; `.invalid` never resolves |
/// | `creatomate.base_url` | `https://api.creatomate.com/v1` | |
/// | `services.<service>.*` | see [`ServicePolicy`] | retry budget, circuit breaker, rate limit |
///
/// Per endpoint (`[endpoints.<key>]`; the seed plan's table, plus `suno_credits` and a deadline).
/// Every endpoint also defaults to `enabled = true`, `max_delay = "30s"`, `multiplier = 2.0`,
/// `jitter = "none"` and `max_retry_after = "2m"`. The deadline is the worst case of the
/// schedule — attempts × `attempt_timeout` + waits — rounded up to 5 s, so the full schedule
/// always fits and nothing runs longer.
///
/// | key | attempt_timeout | max_retries | waits (base_delay ×2) | deadline | retry_ambiguous |
/// |---|---|---|---|---|---|
/// | `openai_responses` | `1m` | `3` | `2s → 4s → 8s` | `4m 15s` | `true` |
/// | `suno_generate` | `30s` | `3` | `1s → 2s → 4s` | `2m 10s` | `false` |
/// | `suno_status` | `30s` | `2` | `1s → 2s` | `1m 35s` | `false` |
/// | `suno_timestamps` | `2m` | `2` | `2s → 4s` | `6m 10s` | `false` |
/// | `suno_credits` | `30s` | `2` | `1s → 2s` | `1m 35s` | `false` |
/// | `creatomate_templates` | `30s` | `2` | `1s → 2s` | `1m 35s` | `false` |
/// | `creatomate_render` | `1m` | `3` | `1s → 2s → 4s` | `4m 10s` | `false` |
/// | `creatomate_status` | `30s` | `2` | `1s → 2s` | `1m 35s` | `false` |
///
/// `retry_ambiguous` only matters for the billed endpoints (OpenAI responses, Suno generate,
/// Creatomate render): when `false`, a failure after which the job may exist (attempt timeout,
/// connection reset after sending, 5xx, garbled success body) is not replayed and the error
/// says so; rejections that provably happened before processing (connect failures, 408, 429,
/// Suno 405/430/455) are still retried. OpenAI defaults to `true` because a duplicate response
/// costs cents and its official SDK replays the same way; `true` on Suno or Creatomate
/// reproduces the seed plan literally and can pay twice.
///
/// Per service (`[services.openai]`, `[services.suno]`, `[services.creatomate]`; a
/// [`ServicePolicy`], whose rustdoc has the Defaults table): the protections shared by every
/// call to the service in the process — a retry budget (retries add at most 20 % of the calls,
/// plus 1 per second), a circuit breaker (opens after 5 failed attempts in a row or half of at
/// least 10 within a minute, probes after 10 s) and a client-side rate limit at the documented
/// quota (Suno `generate`: 20 per 10 s; Creatomate: 30 per 10 s, polling included; OpenAI: off,
/// its limits depend on the account). Each has its own `enabled` switch. `retries = false`
/// makes one attempt per call, so the budget has nothing left to limit, but it leaves the
/// breakers and rate limits on.
///
/// ```
/// use std::time::Duration;
/// use encore_clients::{Config, Endpoint};
///
/// let config = Config::from_toml_str(r#"
///     [endpoints.suno_generate]
///     max_retries = 5
/// "#).unwrap();
/// assert_eq!(config.endpoint(Endpoint::SunoGenerate).max_retries, 5);
/// // Everything else keeps its default.
/// assert_eq!(config.endpoint(Endpoint::SunoGenerate).attempt_timeout, Duration::from_secs(30));
///
/// let err = Config::from_toml_str("[endpoints.suno_generate]\nbase_delay = \"45s\"").unwrap_err();
/// assert_eq!(err.key(), "endpoints.suno_generate.base_delay");
/// assert_eq!(
///     err.to_string(),
///     "invalid config: endpoints.suno_generate.base_delay: 45s is greater than max_delay (30s)"
/// );
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The global retry switch (the rollback plan): `false` makes one attempt per call.
    pub retries: bool,
    /// The shared HTTP client.
    pub http: HttpConfig,
    /// OpenAI.
    pub openai: OpenAiConfig,
    /// Suno.
    pub suno: SunoConfig,
    /// Creatomate.
    pub creatomate: CreatomateConfig,
    /// Per-endpoint timeouts and retries.
    pub endpoints: Endpoints,
    /// Per-service retry budget, circuit breaker and rate limit.
    pub services: Services,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            retries: true,
            http: HttpConfig::default(),
            openai: OpenAiConfig::default(),
            suno: SunoConfig::default(),
            creatomate: CreatomateConfig::default(),
            endpoints: Endpoints::default(),
            services: Services::default(),
        }
    }
}

impl Config {
    /// Loads the defaults, then the file at `path` (or `./encore.toml` when `path` is `None` and
    /// that file exists), then `ENCORE_*` environment variables, and validates the result.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key: a missing file given explicitly, a syntax error, an
    /// unknown key, a value of the wrong type, or a value [`validate`](Self::validate) refuses.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Self::defaults();
        if let Some(path) = path {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "",
                    format!("config file {} does not exist", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        } else if Path::new(DEFAULT_CONFIG_FILE).is_file() {
            figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
        }
        check_env_names(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()))?;
        Self::extract(figment.merge(env_provider()))
    }

    /// Parses a TOML document over the defaults (no file, no environment) and validates it.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn from_toml_str(toml: &str) -> Result<Config, ConfigError> {
        Self::extract(Self::defaults().merge(Toml::string(toml)))
    }

    fn defaults() -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
    }

    fn extract(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(ConfigError::from_figment)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value: base URLs are `http(s)` URLs without credentials, query or fragment;
    /// models are not empty; `http.connect_timeout` is positive; every endpoint's policy passes
    /// [`RetryPolicy::validate`]; every service's budget, breaker and rate limit pass
    /// [`ServicePolicy::validate`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose [`key`](ConfigError::key) is the full dotted key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.http.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "http.connect_timeout",
                "must be greater than zero",
            ));
        }
        check_url("openai.base_url", &self.openai.base_url)?;
        check_url("suno.base_url", &self.suno.base_url)?;
        check_url("suno.callback_url", &self.suno.callback_url)?;
        check_url("creatomate.base_url", &self.creatomate.base_url)?;
        for (key, value) in [
            ("openai.model", &self.openai.model),
            ("suno.model", &self.suno.model),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::new(key, "must not be empty"));
            }
        }
        for endpoint in Endpoint::ALL {
            if let Err(e) = self.endpoint(endpoint).retry_policy(true).validate() {
                return Err(ConfigError::new(
                    format!("endpoints.{}.{}", endpoint.config_key(), e.field()),
                    e.reason(),
                ));
            }
        }
        for service in Service::ALL {
            self.service(service).validate(service)?;
        }
        Ok(())
    }

    /// The policy of `endpoint`.
    pub fn endpoint(&self, endpoint: Endpoint) -> &EndpointPolicy {
        self.endpoints.get(endpoint)
    }

    /// The retry budget, circuit breaker and rate limit of `service`.
    pub fn service(&self, service: Service) -> &ServicePolicy {
        self.services.get(service)
    }

    /// Every endpoint with the [`RetryPolicy`] it runs (the global switch applied) and its
    /// `retry_ambiguous`, for `encore config show`.
    pub fn policy_table(&self) -> Vec<(Endpoint, RetryPolicy, bool)> {
        Endpoint::ALL
            .into_iter()
            .map(|e| {
                let p = self.endpoint(e);
                (e, p.retry_policy(self.retries), p.retry_ambiguous)
            })
            .collect()
    }

    /// The base URL of `service`.
    pub fn base_url(&self, service: Service) -> &str {
        match service {
            Service::OpenAi => &self.openai.base_url,
            Service::Suno => &self.suno.base_url,
            Service::Creatomate => &self.creatomate.base_url,
        }
    }

    /// Points every service at one simulator base (e.g. `http://127.0.0.1:4000`), using the
    /// paths the real services use: `{base}/v1` (OpenAI), `{base}/api/v1` (Suno) and
    /// `{base}/v1` (Creatomate).
    pub fn with_base(mut self, base: &str) -> Config {
        let base = base.trim_end_matches('/');
        self.openai.base_url = format!("{base}/v1");
        self.suno.base_url = format!("{base}/api/v1");
        self.creatomate.base_url = format!("{base}/v1");
        self
    }
}

fn env_provider() -> Env {
    // The filter sees the key before figment lowercases it.
    Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
        let section = key.as_str().split('.').next().unwrap_or_default();
        SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(section))
    })
}

/// Refuses `ENCORE_*` variables that look meant for the config but use a single `_` where `__`
/// separates sections (`ENCORE_OPENAI_BASE_URL`): silently ignoring them would be worse.
fn check_env_names(names: impl Iterator<Item = String>) -> Result<(), ConfigError> {
    for name in names {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let section = lower.split("__").next().unwrap_or_default();
        if SECTIONS.contains(&section) {
            continue;
        }
        if let Some(known) = SECTIONS
            .iter()
            .find(|s| section.starts_with(&format!("{s}_")))
        {
            let suggestion = format!(
                "{ENV_PREFIX}{}__{}",
                known.to_ascii_uppercase(),
                &rest[known.len() + 1..]
            );
            return Err(ConfigError::new(
                lower.replace("__", "."),
                format!("nested keys are separated by `__`: did you mean {suggestion}?"),
            )
            .with_origin(format!("environment variable {name}")));
        }
    }
    Ok(())
}

fn check_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| Err(ConfigError::new(key, reason));
    let Ok(uri) = value.parse::<http::Uri>() else {
        return bad("is not a valid URL");
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return bad("must start with http:// or https://");
    }
    let Some(authority) = uri.authority() else {
        return bad("has no host");
    };
    if authority.as_str().contains('@') {
        return bad("must not contain credentials (API keys are configured separately)");
    }
    if uri.query().is_some() {
        return bad("must not have a query string");
    }
    Ok(())
}

/// An invalid configuration: names the key (`endpoints.suno_generate.base_delay`) and why.
///
/// Displays as `invalid config: <key>: <reason>`, followed by where the value came from when
/// known (`(in environment variable ENCORE_…)`, `(in file encore.toml)`).
#[derive(Debug)]
pub struct ConfigError {
    key: String,
    reason: String,
    origin: Option<String>,
    source: Option<Box<figment::Error>>,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
            origin: None,
            source: None,
        }
    }

    fn with_origin(mut self, origin: String) -> ConfigError {
        self.origin = Some(origin);
        self
    }

    fn from_figment(error: figment::Error) -> ConfigError {
        use figment::error::Kind;
        // TOML datetimes travel through serde as a private one-key table; name the user's key.
        let mut path: Vec<String> = error
            .path
            .iter()
            .filter(|segment| !segment.starts_with("$__toml_private"))
            .cloned()
            .collect();
        let reason = match &error.kind {
            Kind::UnknownField(field, _) | Kind::UnknownVariant(field, _)
                if field.starts_with("$__toml_private") =>
            {
                "a date-time is not a valid value here".to_owned()
            }
            Kind::UnknownField(field, expected) => {
                if path.last() != Some(field) {
                    path.push(field.clone());
                }
                format!("unknown key (expected one of: {})", expected.join(", "))
            }
            Kind::MissingField(field) => {
                if path.last().map(String::as_str) != Some(field.as_ref()) {
                    path.push(field.to_string());
                }
                "missing key".to_owned()
            }
            other => other.to_string(),
        };
        let key = path.join(".");
        let origin = error.metadata.as_ref().map(|md| {
            if md.name.contains("environment") {
                format!(
                    "environment variable {ENV_PREFIX}{}",
                    key.to_ascii_uppercase().replace('.', "__")
                )
            } else if let Some(figment::Source::File(file)) = &md.source {
                format!("file {}", file.display())
            } else {
                md.name.to_string()
            }
        });
        ConfigError {
            key,
            reason,
            origin,
            source: Some(Box::new(error)),
        }
    }

    /// The dotted key, e.g. `endpoints.suno_generate.base_delay` (empty for a missing file).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Why the value was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Where the value came from (a file or an environment variable), when known.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid config: ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.reason)?;
        // Defaults are not an origin worth naming.
        match &self.origin {
            Some(origin) if !origin.contains("Serialized") => write!(f, " (in {origin})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The rows of the Defaults table for `config`'s endpoints, as they appear in the rustdoc.
#[cfg(test)]
fn endpoint_rows(config: &Config) -> Vec<String> {
    Endpoint::ALL
        .into_iter()
        .map(|e| {
            let p = config.endpoint(e);
            let waits: Vec<String> = p
                .retry_policy(true)
                .backoff_seeded(0)
                .map(encore_resilience::fmt_duration)
                .collect();
            format!(
                "| `{}` | `{}` | `{}` | `{}` | `{}` | `{}` |",
                e.config_key(),
                encore_resilience::fmt_duration(p.attempt_timeout),
                p.max_retries,
                waits.join(" → "),
                encore_resilience::fmt_duration(p.deadline),
                p.retry_ambiguous
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use encore_resilience::fmt_duration;

    use super::*;

    #[test]
    fn defaults_match_the_seed_table_and_the_rustdoc() {
        let config = Config::default();
        config.validate().unwrap();
        let expect = [
            (Endpoint::OpenAiResponses, 60, 3, vec![2, 4, 8]),
            (Endpoint::SunoGenerate, 30, 3, vec![1, 2, 4]),
            (Endpoint::SunoStatus, 30, 2, vec![1, 2]),
            (Endpoint::SunoTimestamps, 120, 2, vec![2, 4]),
            (Endpoint::SunoCredits, 30, 2, vec![1, 2]),
            (Endpoint::CreatomateTemplates, 30, 2, vec![1, 2]),
            (Endpoint::CreatomateRender, 60, 3, vec![1, 2, 4]),
            (Endpoint::CreatomateStatus, 30, 2, vec![1, 2]),
        ];
        for (endpoint, timeout, retries, waits) in expect {
            let p = config.endpoint(endpoint);
            let policy = p.retry_policy(true);
            assert_eq!(
                p.attempt_timeout,
                Duration::from_secs(timeout),
                "{endpoint}"
            );
            assert_eq!(p.max_retries, retries, "{endpoint}");
            let got: Vec<u64> = policy.backoff_seeded(0).map(|d| d.as_secs()).collect();
            assert_eq!(got, waits, "{endpoint}");
            // The deadline rule: the whole schedule fits, rounded up to 5 s.
            let worst = p.attempt_timeout * policy.max_attempts() + policy.worst_case_waits();
            assert!(p.deadline >= worst, "{endpoint}");
            assert!(
                p.deadline.checked_sub(worst).unwrap() < DEADLINE_ROUNDING,
                "{endpoint}"
            );
            assert_eq!(p.deadline.as_secs() % 5, 0, "{endpoint}");
            assert_eq!(p.retry_ambiguous, endpoint == Endpoint::OpenAiResponses);
            assert!(p.enabled);
            assert_eq!(p.jitter, Jitter::None);
            assert_eq!(p.max_delay, Duration::from_secs(30));
            assert_eq!(p.max_retry_after, Duration::from_secs(120));
            assert!((p.multiplier - 2.0).abs() < f64::EPSILON);
        }
        let doc = include_str!("config.rs");
        for row in endpoint_rows(&config) {
            assert!(doc.contains(&row), "the rustdoc Defaults table lacks {row}");
        }
        for row in [
            format!("| `retries` | `{}` |", config.retries),
            format!(
                "| `http.connect_timeout` | `{}` |",
                fmt_duration(config.http.connect_timeout)
            ),
            format!("| `openai.base_url` | `{}` |", config.openai.base_url),
            format!("| `openai.model` | `{}` |", config.openai.model),
            format!("| `suno.base_url` | `{}` |", config.suno.base_url),
            format!("| `suno.model` | `{}` |", config.suno.model),
            format!("| `suno.callback_url` | `{}` |", config.suno.callback_url),
            format!(
                "| `creatomate.base_url` | `{}` |",
                config.creatomate.base_url
            ),
        ] {
            assert!(doc.contains(&row), "the rustdoc Defaults table lacks {row}");
        }
    }

    fn key_paths(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (key, value) in table {
            let path = format!("{prefix}{key}");
            match value {
                toml::Value::Table(sub) => key_paths(sub, &format!("{path}."), out),
                _ => out.push(path),
            }
        }
    }

    #[test]
    fn the_example_file_documents_every_key_with_its_default() {
        let text = include_str!("../examples/encore.toml");
        assert_eq!(Config::from_toml_str(text).unwrap(), Config::default());
        let example: toml::Table = toml::from_str(text).unwrap();
        let defaults: toml::Table =
            toml::from_str(&toml::to_string(&Config::default()).unwrap()).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        key_paths(&example, "", &mut a);
        key_paths(&defaults, "", &mut b);
        a.sort();
        b.sort();
        assert_eq!(a, b, "examples/encore.toml must list every key");
    }

    #[test]
    fn endpoint_names_and_keys() {
        for e in Endpoint::ALL {
            assert_eq!(e.name().replace('.', "_"), e.config_key());
            assert_eq!(e.to_string(), e.name());
            assert!(e.name().starts_with(e.service().as_str()));
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::json!(e.name())
            );
        }
        let billed: Vec<_> = Endpoint::ALL
            .into_iter()
            .filter(|e| e.is_billed())
            .collect();
        assert_eq!(
            billed,
            [
                Endpoint::OpenAiResponses,
                Endpoint::SunoGenerate,
                Endpoint::CreatomateRender
            ]
        );
        assert_eq!(serde_json::to_value(Service::OpenAi).unwrap(), "openai");
        // Suno documents a quota on generate only; Creatomate's counts every request.
        let unlimited: Vec<_> = Endpoint::ALL
            .into_iter()
            .filter(|e| !e.counts_toward_rate_limit())
            .collect();
        assert_eq!(
            unlimited,
            [
                Endpoint::SunoStatus,
                Endpoint::SunoTimestamps,
                Endpoint::SunoCredits
            ]
        );
        assert_eq!(
            Service::ALL.map(Service::as_str),
            ["openai", "suno", "creatomate"]
        );
    }

    #[test]
    fn an_empty_file_gives_the_defaults_and_partial_tables_keep_the_rest() {
        assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
        let c = Config::from_toml_str(
            "retries = false\n[endpoints.suno_timestamps]\nattempt_timeout = \"90s\"\n",
        )
        .unwrap();
        assert!(!c.retries);
        let p = c.endpoint(Endpoint::SunoTimestamps);
        assert_eq!(p.attempt_timeout, Duration::from_secs(90));
        assert_eq!(
            p.base_delay,
            Duration::from_secs(2),
            "kept the endpoint's own default"
        );
        // The global switch turns every endpoint into one attempt.
        for (_, policy, _) in c.policy_table() {
            assert_eq!(policy.max_attempts(), 1);
        }
    }

    #[test]
    fn unknown_keys_are_refused_naming_the_key() {
        for (toml, key) in [
            ("retry = false", "retry"),
            (
                "[endpoints.suno_generate]\nmax_retry = 3",
                "endpoints.suno_generate.max_retry",
            ),
            (
                "[endpoints.suno_generat]\nmax_retries = 3",
                "endpoints.suno_generat",
            ),
            ("[openai]\napi_key = \"sk\"", "openai.api_key"),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err();
            assert_eq!(err.key(), key, "{err}");
            assert!(err.to_string().contains(key), "{err}");
            assert!(err.to_string().contains("unknown key"), "{err}");
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        for (toml, key) in [
            (
                "[endpoints.suno_generate]\nbase_delay = \"60s\"",
                "endpoints.suno_generate.base_delay",
            ),
            (
                "[endpoints.openai_responses]\nmultiplier = 0.5",
                "endpoints.openai_responses.multiplier",
            ),
            (
                "[endpoints.suno_status]\nattempt_timeout = \"10m\"",
                "endpoints.suno_status.attempt_timeout",
            ),
            (
                "[endpoints.suno_status]\nattempt_timeout = \"ten\"",
                "endpoints.suno_status.attempt_timeout",
            ),
            (
                "[endpoints.suno_status]\nmax_retries = -1",
                "endpoints.suno_status.max_retries",
            ),
            (
                "[endpoints.suno_status]\njitter = \"lots\"",
                "endpoints.suno_status.jitter",
            ),
            ("[http]\nconnect_timeout = \"0s\"", "http.connect_timeout"),
            ("[openai]\nbase_url = \"ftp://x\"", "openai.base_url"),
            (
                "[suno]\nbase_url = \"https://user:sk-1@api.sunoapi.org\"",
                "suno.base_url",
            ),
            (
                "[creatomate]\nbase_url = \"https://x/v1?key=1\"",
                "creatomate.base_url",
            ),
            ("[openai]\nmodel = \"\"", "openai.model"),
            ("retries = \"maybe\"", "retries"),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err();
            assert_eq!(err.key(), key, "{toml}: {err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid config: {key}: ")),
                "{err}"
            );
        }
        let err = Config::from_toml_str("[suno]\nbase_url = \"https://user:sk-1@x\"").unwrap_err();
        assert!(!err.to_string().contains("sk-1"), "{err}");
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns its own error"
    )]
    fn load_layers_file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "encore.toml",
                "[endpoints.suno_generate]\nmax_retries = 4\nbase_delay = \"2s\"\n",
            )?;
            // The file alone.
            let c = Config::load(None).unwrap();
            assert_eq!(c.endpoints.suno_generate.max_retries, 4);
            // Variables win over the file.
            jail.set_env("ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRIES", "5");
            jail.set_env("ENCORE_RETRIES", "false");
            jail.set_env("ENCORE_HTTP__CONNECT_TIMEOUT", "3s");
            jail.set_env("ENCORE_SUNO__MODEL", "V5");
            jail.set_env("ENCORE_LOG", "debug"); // not ours: ignored
            jail.set_env("ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS", "10");
            jail.set_env("ENCORE_SERVICES__SUNO__BUDGET__RATIO", "0.1");
            jail.set_env("ENCORE_SERVICES__SUNO__BREAKER__OPEN_FOR", "30s");
            jail.set_env("ENCORE_SERVICES__CREATOMATE__BREAKER__ENABLED", "false");
            let c = Config::load(None).unwrap();
            assert_eq!(c.services.suno.rate_limit.requests, 10);
            assert_eq!(c.services.suno.rate_limit.per, Duration::from_secs(10));
            assert!((c.services.suno.budget.ratio - 0.1).abs() < f64::EPSILON);
            assert_eq!(c.services.suno.breaker.open_for, Duration::from_secs(30));
            assert!(!c.services.creatomate.breaker.enabled);
            assert!(c.services.creatomate.rate_limit.enabled);
            assert_eq!(c.endpoints.suno_generate.max_retries, 5);
            assert_eq!(c.endpoints.suno_generate.base_delay, Duration::from_secs(2));
            assert!(!c.retries);
            assert_eq!(c.http.connect_timeout, Duration::from_secs(3));
            assert_eq!(c.suno.model, "V5");
            // An explicit path that does not exist is an error; so is a bad variable.
            let err = Config::load(Some(Path::new("nope.toml"))).unwrap_err();
            assert!(err.to_string().contains("nope.toml"), "{err}");
            jail.set_env("ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRY", "5");
            let err = Config::load(None).unwrap_err();
            assert_eq!(err.key(), "endpoints.suno_generate.max_retry");
            assert!(
                err.to_string()
                    .contains("ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRY"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns its own error"
    )]
    fn invalid_values_from_the_environment_and_files_name_their_origin() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "[endpoints.creatomate_render]\nbase_delay = \"45s\"\n",
            )?;
            let err = Config::load(Some(Path::new("custom.toml"))).unwrap_err();
            assert_eq!(err.key(), "endpoints.creatomate_render.base_delay");
            jail.create_file(
                "typo.toml",
                "[endpoints.creatomate_render]\nmax_retries = \"x\"\n",
            )?;
            let err = Config::load(Some(Path::new("typo.toml"))).unwrap_err();
            assert_eq!(err.key(), "endpoints.creatomate_render.max_retries");
            assert!(err.to_string().contains("typo.toml"), "{err}");
            jail.set_env("ENCORE_SERVICES__SUNO__RATE_LIMIT__PER", "soon");
            let err = Config::load(None).unwrap_err();
            assert_eq!(err.key(), "services.suno.rate_limit.per");
            assert!(
                err.to_string()
                    .contains("ENCORE_SERVICES__SUNO__RATE_LIMIT__PER"),
                "{err}"
            );
            jail.set_env("ENCORE_SERVICES__SUNO__RATE_LIMIT__PER", "10s");
            jail.set_env("ENCORE_SERVICES__SUNO__BREAKER__FAILURE_RATIO", "2");
            let err = Config::load(None).unwrap_err();
            assert_eq!(err.key(), "services.suno.breaker.failure_ratio");
            jail.set_env("ENCORE_SERVICES__SUNO__BREAKER__FAILURE_RATIO", "0.5");
            jail.set_env("ENCORE_ENDPOINTS__SUNO_STATUS__DEADLINE", "soon");
            let err = Config::load(None).unwrap_err();
            assert_eq!(err.key(), "endpoints.suno_status.deadline");
            assert!(
                err.to_string()
                    .contains("ENCORE_ENDPOINTS__SUNO_STATUS__DEADLINE"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn single_underscore_variables_are_refused_with_a_suggestion() {
        let names = [
            "ENCORE_LOG",
            "PATH",
            "ENCORE_SUNO__MODEL",
            "ENCORE_OPENAI_BASE_URL",
        ];
        let err = check_env_names(names.iter().map(|s| (*s).to_owned())).unwrap_err();
        assert!(
            err.to_string()
                .contains("did you mean ENCORE_OPENAI__BASE_URL?"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("environment variable ENCORE_OPENAI_BASE_URL")
        );
        let err = check_env_names(std::iter::once(
            "ENCORE_SERVICES_SUNO__RATE_LIMIT__REQUESTS".to_owned(),
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("did you mean ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS?"),
            "{err}"
        );
        check_env_names(
            [
                "ENCORE_LOG",
                "ENCORE_RETRIES",
                "ENCORE_SERVICES__SUNO__BUDGET__ENABLED",
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        )
        .unwrap();
    }

    #[test]
    fn with_base_points_every_service_at_one_host() {
        let c = Config::default().with_base("http://127.0.0.1:9/");
        assert_eq!(c.base_url(Service::OpenAi), "http://127.0.0.1:9/v1");
        assert_eq!(c.base_url(Service::Suno), "http://127.0.0.1:9/api/v1");
        assert_eq!(c.base_url(Service::Creatomate), "http://127.0.0.1:9/v1");
        c.validate().unwrap();
    }
}
