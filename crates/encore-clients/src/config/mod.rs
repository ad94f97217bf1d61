//! Configuration: base URLs, models, the timeout and retry policy of every endpoint, and the
//! protections shared by every call to a service (retry budget, circuit breaker, rate limit).
//!
//! Loaded in layers — the built-in defaults, then `encore.toml`, then `ENCORE_*` environment
//! variables ([`Loader`]) — and validated once, with errors that name the offending key
//! ([`ConfigError`]).

mod endpoints;
mod error;
mod load;
mod services;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use endpoints::{EndpointPolicy, Endpoints};
pub use error::ConfigError;
pub use load::{Loaded, Loader};
pub use services::{ServicePolicy, Services};

use crate::defaults::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_CREATOMATE_BASE_URL, DEFAULT_OPENAI_BASE_URL,
    DEFAULT_OPENAI_MAX_OUTPUT_TOKENS, DEFAULT_OPENAI_MODEL, DEFAULT_SUNO_BASE_URL,
    DEFAULT_SUNO_CALLBACK_URL, DEFAULT_SUNO_MODEL, MIN_OPENAI_MAX_OUTPUT_TOKENS,
};
use crate::endpoint::{Endpoint, Service};
use encore_resilience::RetryPolicy;

/// The top-level tables and keys of [`Config`], as `ENCORE_*` variables address them.
pub(crate) const SECTIONS: [&str; 7] = [
    "retries",
    "http",
    "openai",
    "suno",
    "creatomate",
    "endpoints",
    "services",
];

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
    /// The ceiling on output tokens of one response, reasoning tokens included, sent as
    /// `max_output_tokens` (at least 16, the API's minimum). An answer that outgrows it ends
    /// `incomplete` and is not retried: raise it rather than pay again for the same cut-off.
    pub max_output_tokens: u32,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: DEFAULT_OPENAI_BASE_URL.to_owned(),
            model: DEFAULT_OPENAI_MODEL.to_owned(),
            max_output_tokens: DEFAULT_OPENAI_MAX_OUTPUT_TOKENS,
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
/// | `openai.max_output_tokens` | `8192` | ceiling on one response's output tokens, reasoning included (≥ 16): room for Suno's longest lyrics, style and title |
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
    /// Checks every value: base URLs are `http(s)` URLs without credentials, query or fragment;
    /// models are not empty; `openai.max_output_tokens` is at least 16; `http.connect_timeout`
    /// is positive; every endpoint's policy passes [`RetryPolicy::validate`]; every service's
    /// budget, breaker and rate limit pass [`ServicePolicy::validate`].
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
        if self.openai.max_output_tokens < MIN_OPENAI_MAX_OUTPUT_TOKENS {
            return Err(ConfigError::new(
                "openai.max_output_tokens",
                format!(
                    "{} is below {MIN_OPENAI_MAX_OUTPUT_TOKENS}, the smallest value the Responses \
                     API accepts",
                    self.openai.max_output_tokens
                ),
            ));
        }
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

/// The rows of the Defaults table for `config`'s endpoints, as they appear in the rustdoc.
#[cfg(test)]
fn endpoint_rows(config: &Config) -> Vec<String> {
    use encore_resilience::fmt_duration;
    Endpoint::ALL
        .into_iter()
        .map(|e| {
            let p = config.endpoint(e);
            let waits: Vec<String> = p
                .retry_policy(true)
                .backoff_seeded(0)
                .map(fmt_duration)
                .collect();
            format!(
                "| `{}` | `{}` | `{}` | `{}` | `{}` | `{}` |",
                e.config_key(),
                fmt_duration(p.attempt_timeout),
                p.max_retries,
                waits.join(" → "),
                fmt_duration(p.deadline),
                p.retry_ambiguous
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use encore_resilience::{Jitter, fmt_duration};

    use super::*;
    use crate::defaults::DEADLINE_ROUNDING;

    /// The doc-comment lines of a source file: where the Defaults tables live (the tests' own
    /// code is not documentation, so a row written in a test cannot match itself).
    fn doc_lines(source: &str) -> Vec<&str> {
        source
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("///") || l.starts_with("//!"))
            .collect()
    }

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
        let doc = doc_lines(include_str!("mod.rs"));
        let documented = |row: &str| doc.iter().any(|line| line.contains(row));
        for row in endpoint_rows(&config) {
            assert!(documented(&row), "the rustdoc Defaults table lacks {row}");
        }
        for row in [
            format!("| `retries` | `{}` |", config.retries),
            format!(
                "| `http.connect_timeout` | `{}` |",
                fmt_duration(config.http.connect_timeout)
            ),
            format!("| `openai.base_url` | `{}` |", config.openai.base_url),
            format!("| `openai.model` | `{}` |", config.openai.model),
            format!(
                "| `openai.max_output_tokens` | `{}` |",
                config.openai.max_output_tokens
            ),
            format!("| `suno.base_url` | `{}` |", config.suno.base_url),
            format!("| `suno.model` | `{}` |", config.suno.model),
            format!("| `suno.callback_url` | `{}` |", config.suno.callback_url),
            format!(
                "| `creatomate.base_url` | `{}` |",
                config.creatomate.base_url
            ),
        ] {
            assert!(documented(&row), "the rustdoc Defaults table lacks {row}");
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
        let text = include_str!("../../examples/encore.toml");
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
            (
                "[openai]\nmax_output_tokens = 15",
                "openai.max_output_tokens",
            ),
            (
                "[openai]\nmax_output_tokens = -1",
                "openai.max_output_tokens",
            ),
            (
                "[openai]\nmax_output_tokens = \"lots\"",
                "openai.max_output_tokens",
            ),
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
    fn with_base_points_every_service_at_one_host() {
        let c = Config::default().with_base("http://127.0.0.1:9/");
        assert_eq!(c.base_url(Service::OpenAi), "http://127.0.0.1:9/v1");
        assert_eq!(c.base_url(Service::Suno), "http://127.0.0.1:9/api/v1");
        assert_eq!(c.base_url(Service::Creatomate), "http://127.0.0.1:9/v1");
        c.validate().unwrap();
    }
}
