//! Every default of the clients in one place, each with the reason for its value. The
//! `# Defaults` tables of [`Config`](crate::Config), [`EndpointPolicy`](crate::config::EndpointPolicy)
//! and [`ServicePolicy`](crate::config::ServicePolicy) show the same numbers (checked by tests).

use std::time::Duration;

use encore_resilience::rate_limit::RateLimitConfig;

/// The prefix of configuration environment variables. Nested keys are separated by `__`:
/// `ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRIES=5` sets `endpoints.suno_generate.max_retries`.
pub const ENV_PREFIX: &str = "ENCORE_";
/// The file read when no path is given (in the current directory only).
pub const DEFAULT_CONFIG_FILE: &str = "encore.toml";

/// Default for [`HttpConfig::connect_timeout`](crate::config::HttpConfig::connect_timeout):
/// 10 s, the seed plan's `CONNECT_TIMEOUT`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`OpenAiConfig::base_url`](crate::config::OpenAiConfig::base_url) (the official
/// SDK's default base).
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Default for [`OpenAiConfig::model`](crate::config::OpenAiConfig::model): a small, cheap model
/// that supports structured outputs.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
/// Default for [`OpenAiConfig::max_output_tokens`](crate::config::OpenAiConfig::max_output_tokens):
/// 8192, sized for the largest answer Suno can use. Its custom mode takes at most 5000
/// characters of lyrics, 1000 of style and 100 of title (V4_5 and newer; sunoapi.org
/// `generate-music`), about 6,100 characters of JSON; even at one token per character (Hangul
/// is rarely cheaper) that is ~6,300 tokens, and the rest leaves room for a reasoning model's
/// reasoning tokens, which count toward the same ceiling (openai-openapi `CreateResponse`).
/// Without a ceiling a runaway answer is billed up to the model's own output limit.
pub const DEFAULT_OPENAI_MAX_OUTPUT_TOKENS: u32 = 8192;
/// The smallest `max_output_tokens` the Responses API accepts (it refuses lower values with
/// `integer_below_min_value`).
pub const MIN_OPENAI_MAX_OUTPUT_TOKENS: u32 = 16;
/// Default for [`SunoConfig::base_url`](crate::config::SunoConfig::base_url) (sunoapi.org; every
/// path lives under `/api/v1`).
pub const DEFAULT_SUNO_BASE_URL: &str = "https://api.sunoapi.org/api/v1";
/// Default for [`SunoConfig::model`](crate::config::SunoConfig::model): `V4_5`, the model in
/// sunoapi.org's quick start.
pub const DEFAULT_SUNO_MODEL: &str = "V4_5";
/// Default for [`SunoConfig::callback_url`](crate::config::SunoConfig::callback_url).
/// sunoapi.org refuses a generate request without a callback URL, but encore polls instead;
/// `.invalid` never resolves (RFC 2606), so nothing is ever delivered anywhere. A failed
/// delivery may end the task as `CALLBACK_EXCEPTION` with usable tracks, which
/// [`TaskRecord::has_audio`](crate::suno::TaskRecord::has_audio) detects.
pub const DEFAULT_SUNO_CALLBACK_URL: &str = "https://callback.invalid/encore/suno";
/// Default for [`CreatomateConfig::base_url`](crate::config::CreatomateConfig::base_url) (v1, as
/// both official SDKs use).
pub const DEFAULT_CREATOMATE_BASE_URL: &str = "https://api.creatomate.com/v1";

/// Default for every endpoint's `max_delay`: 30 s, the seed plan's cap on one wait.
pub const DEFAULT_MAX_DELAY: Duration = encore_resilience::defaults::DEFAULT_MAX_DELAY;
/// Default for every endpoint's `max_retry_after`: 2 min, the ceiling openai-python applies.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = encore_resilience::defaults::DEFAULT_MAX_RETRY_AFTER;
/// Default deadlines are the worst case of the schedule, `attempts × attempt_timeout + waits`,
/// rounded up to a multiple of this (5 s), so the full schedule always fits.
pub const DEADLINE_ROUNDING: Duration = Duration::from_secs(5);

/// Default rate limit of Suno: sunoapi.org documents "20 requests every 10 seconds" on
/// `/generate`, and rejects more with a body code 405 or 430.
pub const SUNO_RATE_LIMIT: RateLimitConfig = RateLimitConfig::new(20, Duration::from_secs(10));
/// Default rate limit of Creatomate: 30 requests per 10 s per account, counting every request
/// (polling included); more are answered with 429.
pub const CREATOMATE_RATE_LIMIT: RateLimitConfig =
    RateLimitConfig::new(30, Duration::from_secs(10));
/// Default rate limit of OpenAI: **off**. OpenAI's limits depend on the account's tier and the
/// model (from a few to thousands of requests per minute) and are advertised in
/// `x-ratelimit-*` headers, so no number fits every key; each call still honours the
/// `Retry-After` of a 429. Switching it on without other changes gives 500 per minute, the
/// lowest paid tier's limit for `gpt-4o-mini`.
pub const OPENAI_RATE_LIMIT: RateLimitConfig =
    RateLimitConfig::new(500, Duration::from_secs(60)).with_enabled(false);
