//! Simulator configuration.

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// Default seed: any fixed number makes runs reproducible.
pub const DEFAULT_SEED: u64 = 42;
/// Default time scale: 1.0 = real durations (Suno ≈ 2.5 min, Creatomate ≈ 40 s).
pub const DEFAULT_TIME_SCALE: f64 = 1.0;
/// Suno credits per API key at start: enough for ~800 generate calls.
pub const DEFAULT_SUNO_CREDITS: u64 = 10_000;
/// Creatomate credits per API key at start: enough for 1 000 renders.
pub const DEFAULT_CREATOMATE_CREDITS: u64 = 10_000;
/// Suno credits debited per generate call (third-party notes report 10–12).
pub const SUNO_CREDITS_PER_GENERATE: u64 = 12;
/// Creatomate credits debited per render created (real cost depends on resolution and length).
pub const CREATOMATE_CREDITS_PER_RENDER: u64 = 10;
/// Suno body code for the 20-per-10 s generate window: 430 ("call frequency too high");
/// the alternative the docs also list is 405 ("rate limit exceeded").
pub const DEFAULT_SUNO_RATE_LIMIT_CODE: u16 = 430;
/// HTTP status for an unknown Creatomate `template_id`: 404 (the docs leave 400/404 open).
pub const DEFAULT_CREATOMATE_UNKNOWN_TEMPLATE_STATUS: u16 = 404;
/// Suno body code for an unknown (or not yet visible) `taskId`: 400 "Invalid parameters"
/// (the docs leave it open; 404 is the alternative).
pub const DEFAULT_SUNO_UNKNOWN_TASK_CODE: u16 = 400;

/// Everything that shapes a simulator instance.
///
/// # Defaults
///
/// | field | default | why |
/// |---|---|---|
/// | `seed` | [`DEFAULT_SEED`] (42) | reproducible ids, texts and fault mixes |
/// | `time_scale` | [`DEFAULT_TIME_SCALE`] (1.0) | real job durations; `encore demo` uses ~0.01 |
/// | `scenario` | `calm` | no faults |
/// | `suno_errors_as_http_status` | `false` | documented: HTTP 200 + body `code` |
/// | `suno_rate_limit_code` | [`DEFAULT_SUNO_RATE_LIMIT_CODE`] (430) | UNCONFIRMED upstream; 405 is the alternative |
/// | `suno_create_time_as_number` | `false` | documented: `"2025-01-01 00:00:00"` strings |
/// | `suno_accept_v6_models` | `false` | `/generate` documents V4…V5_5 only |
/// | `creatomate_retry_after` | `false` | undocumented upstream: 429s carry no `Retry-After` |
/// | `creatomate_unknown_template_status` | [`DEFAULT_CREATOMATE_UNKNOWN_TEMPLATE_STATUS`] (404) | UNCONFIRMED; 400 is the alternative |
/// | `suno_unknown_task_code` | [`DEFAULT_SUNO_UNKNOWN_TASK_CODE`] (400) | UNCONFIRMED; 404 is the alternative |
/// | `suno_callback_exception_recovers` | `false` | UNCONFIRMED: CALLBACK_EXCEPTION stays once reported |
/// | `suno_task_visible_after_s` | `0.0` | off: a task is visible to `record-info` at once |
/// | `creatomate_render_visible_after_s` | `0.0` | off: a render is visible to `GET` at once |
/// | `suno_credits` | [`DEFAULT_SUNO_CREDITS`] | generous, per key |
/// | `creatomate_credits` | [`DEFAULT_CREATOMATE_CREDITS`] | generous, per key |
/// | `api_keys` | `None` | any non-empty Bearer key is accepted |
/// | `rate_limits` | `true` | the documented windows, in real (unscaled) time |
/// | `callbacks` | `true` | POST Suno callbacks / Creatomate webhooks to `http://` URLs |
/// | `public_base_url` | `None` | URLs in answers use the request's `Host` or the bound address |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Drives ids, generated text and fault mixes.
    pub seed: u64,
    /// Virtual-time factor for job durations and outage windows: a job stage that takes `t`
    /// seconds upstream takes `t * time_scale` real seconds. Must be finite and `>= 0`
    /// (0 = jobs finish at once). Latency, stalls and rate-limit windows are not scaled.
    pub time_scale: f64,
    /// The fault plan.
    pub scenario: Scenario,
    /// Mirror Suno envelope error codes into the HTTP status (documented: HTTP 200).
    pub suno_errors_as_http_status: bool,
    /// Body code for Suno's generate rate limit: 430 (default) or 405.
    pub suno_rate_limit_code: u16,
    /// Send Suno `createTime` as epoch milliseconds instead of `"YYYY-MM-DD HH:MM:SS"`.
    pub suno_create_time_as_number: bool,
    /// Also accept `V6`, `V6_WILD`, `V6_MINI` on `/generate` (UNCONFIRMED upstream).
    pub suno_accept_v6_models: bool,
    /// Send `Retry-After` (seconds until the window frees a slot) on Creatomate's own 429s.
    pub creatomate_retry_after: bool,
    /// Status for an unknown Creatomate `template_id`: 404 (default) or 400.
    pub creatomate_unknown_template_status: u16,
    /// Suno envelope code for a `taskId` that does not exist (or is not visible yet) on
    /// `record-info` and `get-timestamped-lyrics`: 400 (default, "Invalid parameters") or
    /// 404. HTTP 200 unless `suno_errors_as_http_status`.
    pub suno_unknown_task_code: u16,
    /// Whether a task that reported CALLBACK_EXCEPTION before its audio existed
    /// ([`SunoOutcome::CallbackExceptionBeforeAudio`](crate::SunoOutcome)) moves on to
    /// SUCCESS once its last file is ready. Default `false`: the status stays
    /// CALLBACK_EXCEPTION while the tracks fill in (the docs say nothing; a client must
    /// read the tracks either way).
    pub suno_callback_exception_recovers: bool,
    /// Virtual seconds after creation during which `record-info` answers a new task as
    /// unknown (the `suno_unknown_task_code` envelope), like an eventually consistent
    /// gateway. 0 = off (default).
    pub suno_task_visible_after_s: f64,
    /// Virtual seconds after creation during which `GET /v1/renders/{id}` answers a new
    /// render with HTTP 404 `{hint}`, exactly like an unknown id. 0 = off (default).
    pub creatomate_render_visible_after_s: f64,
    /// Suno credits per API key at start.
    pub suno_credits: u64,
    /// Creatomate credits per API key at start.
    pub creatomate_credits: u64,
    /// Accepted API keys (all services); `None` = any non-empty Bearer key.
    pub api_keys: Option<Vec<String>>,
    /// Enforce the documented rate-limit windows (Suno 20 generate / 10 s, Creatomate
    /// 30 requests / 10 s, per key).
    pub rate_limits: bool,
    /// Deliver Suno callbacks and Creatomate webhooks to plain `http://` URLs
    /// (15 s timeout, failures ignored; `https://` URLs are skipped).
    pub callbacks: bool,
    /// Base URL used in generated audio/video/image URLs, e.g. `http://localhost:8080`.
    pub public_base_url: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: DEFAULT_SEED,
            time_scale: DEFAULT_TIME_SCALE,
            scenario: Scenario::default(),
            suno_errors_as_http_status: false,
            suno_rate_limit_code: DEFAULT_SUNO_RATE_LIMIT_CODE,
            suno_create_time_as_number: false,
            suno_accept_v6_models: false,
            creatomate_retry_after: false,
            creatomate_unknown_template_status: DEFAULT_CREATOMATE_UNKNOWN_TEMPLATE_STATUS,
            suno_unknown_task_code: DEFAULT_SUNO_UNKNOWN_TASK_CODE,
            suno_callback_exception_recovers: false,
            suno_task_visible_after_s: 0.0,
            creatomate_render_visible_after_s: 0.0,
            suno_credits: DEFAULT_SUNO_CREDITS,
            creatomate_credits: DEFAULT_CREATOMATE_CREDITS,
            api_keys: None,
            rate_limits: true,
            callbacks: true,
            public_base_url: None,
        }
    }
}

/// A configuration value is out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid simulator config `{field}`: {reason}")]
pub struct ConfigError {
    field: &'static str,
    reason: String,
}

impl ConfigError {
    /// The offending field.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl SimConfig {
    /// A config with the given scenario and `time_scale`, everything else default.
    pub fn with_scenario(scenario: Scenario, time_scale: f64) -> Self {
        SimConfig {
            time_scale,
            scenario,
            ..SimConfig::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, reason: &str| ConfigError {
            field,
            reason: reason.to_owned(),
        };
        if !self.time_scale.is_finite() || self.time_scale < 0.0 {
            return Err(err("time_scale", "must be a finite number >= 0"));
        }
        if !matches!(self.suno_rate_limit_code, 405 | 430) {
            return Err(err("suno_rate_limit_code", "must be 405 or 430"));
        }
        if !matches!(self.creatomate_unknown_template_status, 400 | 404) {
            return Err(err(
                "creatomate_unknown_template_status",
                "must be 400 or 404",
            ));
        }
        if !matches!(self.suno_unknown_task_code, 400 | 404) {
            return Err(err("suno_unknown_task_code", "must be 400 or 404"));
        }
        for (field, value) in [
            ("suno_task_visible_after_s", self.suno_task_visible_after_s),
            (
                "creatomate_render_visible_after_s",
                self.creatomate_render_visible_after_s,
            ),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(err(field, "must be a finite number >= 0"));
            }
        }
        if let Some(keys) = &self.api_keys
            && keys.iter().any(String::is_empty)
        {
            return Err(err("api_keys", "keys must not be empty"));
        }
        if let Some(url) = &self.public_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(err(
                "public_base_url",
                "must start with http:// or https://",
            ));
        }
        self.scenario.validate().map_err(|e| ConfigError {
            field: "scenario",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_agree_with_constants() {
        let c = SimConfig::default();
        assert_eq!(c.seed, DEFAULT_SEED);
        assert!((c.time_scale - DEFAULT_TIME_SCALE).abs() < f64::EPSILON);
        assert_eq!(c.scenario, Scenario::default());
        assert!(c.scenario.routes.is_empty());
        assert!(!c.suno_errors_as_http_status);
        assert_eq!(c.suno_rate_limit_code, DEFAULT_SUNO_RATE_LIMIT_CODE);
        assert!(!c.creatomate_retry_after);
        assert_eq!(
            c.creatomate_unknown_template_status,
            DEFAULT_CREATOMATE_UNKNOWN_TEMPLATE_STATUS
        );
        assert_eq!(c.suno_unknown_task_code, DEFAULT_SUNO_UNKNOWN_TASK_CODE);
        assert!(!c.suno_callback_exception_recovers);
        assert!(c.suno_task_visible_after_s.abs() < f64::EPSILON);
        assert!(c.creatomate_render_visible_after_s.abs() < f64::EPSILON);
        assert_eq!(c.suno_credits, DEFAULT_SUNO_CREDITS);
        assert_eq!(c.creatomate_credits, DEFAULT_CREATOMATE_CREDITS);
        assert!(c.api_keys.is_none());
        assert!(c.rate_limits);
        c.validate().unwrap();
    }

    #[test]
    fn validation_names_the_field() {
        let c = SimConfig {
            time_scale: -1.0,
            ..SimConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field(), "time_scale");
        let c = SimConfig {
            suno_rate_limit_code: 429,
            ..SimConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field(), "suno_rate_limit_code");
        let c = SimConfig {
            suno_unknown_task_code: 422,
            ..SimConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field(), "suno_unknown_task_code");
        let c = SimConfig {
            creatomate_render_visible_after_s: -1.0,
            ..SimConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().field(),
            "creatomate_render_visible_after_s"
        );
    }

    #[test]
    fn deserializes_partial_toml() {
        let c: SimConfig = toml::from_str("seed = 7\ntime_scale = 0.01\n").unwrap();
        assert_eq!(c.seed, 7);
        assert!(c.rate_limits);
        assert!(toml::from_str::<SimConfig>("sede = 7").is_err());
    }
}
