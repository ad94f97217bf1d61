//! The fault kinds a scenario can inject, and their scenario-file representation.
//!
//! In a scenario file a fault is either a bare string naming a kind whose fields all have
//! defaults (`"ok"`, `"reset_before_request"`, `"malformed_json"`, …) or a table with a
//! `kind` key and that kind's fields (`{ kind = "latency", ms = 250 }`). Unknown kinds and
//! unknown fields are rejected with an error naming them.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Default `Retry-After` (seconds) of the OpenAI rate-limit helper when neither
/// `retry_after_s` nor `retry_after_ms` is given: short, so demos stay fast.
pub const DEFAULT_RETRY_AFTER_S: u64 = 1;
/// Default delay of [`Fault::StallBody`]: long enough to trip a sub-second read timeout.
pub const DEFAULT_STALL_MS: u64 = 1_000;
/// Default number of body bytes sent before a stall.
pub const DEFAULT_STALL_AFTER_BYTES: usize = 16;

/// One injected misbehaviour. See the module docs for the scenario-file syntax.
///
/// Faults that "answer instead of the handler" (`Status`, `OpenaiRateLimit`,
/// `OpenaiInsufficientQuota`, `SunoCode`, `CreatomateRateLimit`, `ServerError`, `Outage`,
/// `ResetBeforeRequest`) never run the handler, so no job is created and nothing is billed —
/// unless `after_processing = true` is set on `Status`/`ServerError`. Faults that
/// "damage the answer" (`ResetAfterProcessing`, `MalformedJson`, `TruncatedBody`,
/// `StallBody`, `Latency`) run the handler normally first: a billed route **does** create
/// and bill its job.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// No fault: handle the call normally (`"ok"`). Useful inside sequences.
    #[default]
    Ok,
    /// Answer with any status, headers and body.
    ///
    /// `body = None` produces an error body in the route's own service format; a JSON string
    /// is sent as raw text (`text/plain`, unless `headers` sets `content-type` — the way to
    /// send JSON containing `null`, which TOML cannot express), any other JSON value as
    /// `application/json`.
    Status {
        /// HTTP status (100–599).
        status: u16,
        /// Extra response headers.
        headers: BTreeMap<String, String>,
        /// Body override.
        body: Option<serde_json::Value>,
        /// Run the handler first (the job is created and billed), then answer with this.
        after_processing: bool,
    },
    /// OpenAI 429 `rate_limit_exceeded` with `retry-after` (seconds) and/or `retry-after-ms`.
    /// With neither given, `retry-after: 1` is sent.
    OpenaiRateLimit {
        /// `retry-after` header in whole seconds.
        retry_after_s: Option<u64>,
        /// `retry-after-ms` header.
        retry_after_ms: Option<u64>,
    },
    /// OpenAI 429 `insufficient_quota`, without any `Retry-After` (waiting does not help).
    OpenaiInsufficientQuota,
    /// A Suno envelope error `{code, msg, data: null}`: HTTP 200 by default, or HTTP `code`
    /// when [`SimConfig::suno_errors_as_http_status`](crate::SimConfig) is set.
    /// `msg = None` uses the documented meaning of the code.
    SunoCode {
        /// Envelope `code`, e.g. 430 (call frequency too high), 405 (rate limit), 455 (maintenance).
        code: u16,
        /// Envelope `msg` override.
        msg: Option<String>,
    },
    /// Creatomate 429 `{hint}` with a `Retry-After` header in seconds, or as an HTTP-date when
    /// `http_date` is set; `retry_after_s = None` (the default) sends no header, like the
    /// documented upstream.
    CreatomateRateLimit {
        /// Delay advertised in `Retry-After`.
        retry_after_s: Option<u64>,
        /// Send `Retry-After` as an HTTP-date instead of seconds.
        http_date: bool,
    },
    /// A 5xx (default 500) in the service's error format, optionally with `x-should-retry`.
    ServerError {
        /// HTTP status (default 500).
        status: u16,
        /// `x-should-retry: true|false` header.
        should_retry: Option<bool>,
        /// Run the handler first (the job is created and billed), then answer with the error.
        after_processing: bool,
    },
    /// Wait `ms` real milliseconds before the response head, then answer normally.
    Latency {
        /// Delay in milliseconds (real time, not scaled by `time_scale`).
        ms: u64,
    },
    /// Send the head and the first `after_bytes` of the body, stall `ms`, then send the rest.
    StallBody {
        /// Bytes sent before the stall.
        after_bytes: usize,
        /// Stall in milliseconds (real time).
        ms: u64,
    },
    /// Drop the connection without processing the request (nothing is billed).
    /// In memory the response body fails with `ConnectionReset`.
    ResetBeforeRequest,
    /// Process the request (the job is created and billed), then drop the connection without
    /// answering. In memory the response body fails with `ConnectionReset`.
    ResetAfterProcessing,
    /// Process normally, then answer the real status with a cut-off, invalid JSON body.
    MalformedJson,
    /// Process normally, declare the full `content-length`, send only part of the body
    /// (`after_bytes`, default half) and close the connection.
    TruncatedBody {
        /// Bytes sent before closing; `None` = half the body.
        after_bytes: Option<usize>,
    },
    /// The upstream is down: HTTP 503 in the service's format, nothing processed.
    Outage,
}

impl Fault {
    /// `Status` with the service's default error body.
    pub fn status(status: u16) -> Self {
        Fault::Status {
            status,
            headers: BTreeMap::new(),
            body: None,
            after_processing: false,
        }
    }

    /// OpenAI 429 rate limit with `retry-after-ms`.
    pub fn openai_rate_limit_ms(ms: u64) -> Self {
        Fault::OpenaiRateLimit {
            retry_after_s: None,
            retry_after_ms: Some(ms),
        }
    }

    /// OpenAI 429 rate limit with `retry-after` in seconds.
    pub fn openai_rate_limit_s(secs: u64) -> Self {
        Fault::OpenaiRateLimit {
            retry_after_s: Some(secs),
            retry_after_ms: None,
        }
    }

    /// OpenAI 429 `insufficient_quota`.
    pub fn openai_insufficient_quota() -> Self {
        Fault::OpenaiInsufficientQuota
    }

    /// Suno envelope error with the documented message for `code`.
    pub fn suno_code(code: u16) -> Self {
        Fault::SunoCode { code, msg: None }
    }

    /// Creatomate 429 with `Retry-After: <secs>`.
    pub fn creatomate_rate_limit(secs: u64) -> Self {
        Fault::CreatomateRateLimit {
            retry_after_s: Some(secs),
            http_date: false,
        }
    }

    /// Creatomate 429 with `Retry-After` as an HTTP-date `secs` in the future.
    pub fn creatomate_rate_limit_http_date(secs: u64) -> Self {
        Fault::CreatomateRateLimit {
            retry_after_s: Some(secs),
            http_date: true,
        }
    }

    /// A 5xx in the service's format.
    pub fn server_error(status: u16) -> Self {
        Fault::ServerError {
            status,
            should_retry: None,
            after_processing: false,
        }
    }

    /// A 5xx in the service's format with `x-should-retry`.
    pub fn server_error_should_retry(status: u16, should_retry: bool) -> Self {
        Fault::ServerError {
            status,
            should_retry: Some(should_retry),
            after_processing: false,
        }
    }

    /// Added latency before the response head.
    pub fn latency(ms: u64) -> Self {
        Fault::Latency { ms }
    }

    /// Stall after part of the body.
    pub fn stall_body(after_bytes: usize, ms: u64) -> Self {
        Fault::StallBody { after_bytes, ms }
    }

    /// Truncated body (half of it).
    pub fn truncated_body() -> Self {
        Fault::TruncatedBody { after_bytes: None }
    }

    /// The scenario-file `kind` name, e.g. `"reset_after_processing"`.
    pub const fn kind_name(&self) -> &'static str {
        match self {
            Fault::Ok => "ok",
            Fault::Status { .. } => "status",
            Fault::OpenaiRateLimit { .. } => "openai_rate_limit",
            Fault::OpenaiInsufficientQuota => "openai_insufficient_quota",
            Fault::SunoCode { .. } => "suno_code",
            Fault::CreatomateRateLimit { .. } => "creatomate_rate_limit",
            Fault::ServerError { .. } => "server_error",
            Fault::Latency { .. } => "latency",
            Fault::StallBody { .. } => "stall_body",
            Fault::ResetBeforeRequest => "reset_before_request",
            Fault::ResetAfterProcessing => "reset_after_processing",
            Fault::MalformedJson => "malformed_json",
            Fault::TruncatedBody { .. } => "truncated_body",
            Fault::Outage => "outage",
        }
    }

    /// Every kind name, for documentation and coverage tests.
    pub const KIND_NAMES: &'static [&'static str] = &[
        "ok",
        "status",
        "openai_rate_limit",
        "openai_insufficient_quota",
        "suno_code",
        "creatomate_rate_limit",
        "server_error",
        "latency",
        "stall_body",
        "reset_before_request",
        "reset_after_processing",
        "malformed_json",
        "truncated_body",
        "outage",
    ];

    /// A short label for logs and the ledger, e.g. `"status:503"` or `"latency:250ms"`.
    pub fn label(&self) -> String {
        match self {
            Fault::Status { status, .. } => format!("status:{status}"),
            Fault::SunoCode { code, .. } => format!("suno_code:{code}"),
            Fault::ServerError { status, .. } => format!("server_error:{status}"),
            Fault::Latency { ms } => format!("latency:{ms}ms"),
            Fault::StallBody { after_bytes, ms } => format!("stall_body:{after_bytes}b/{ms}ms"),
            other => other.kind_name().to_owned(),
        }
    }

    /// Whether the handler runs (and a billed route creates its job) under this fault.
    pub const fn processes_request(&self) -> bool {
        match self {
            Fault::Ok
            | Fault::Latency { .. }
            | Fault::StallBody { .. }
            | Fault::ResetAfterProcessing
            | Fault::MalformedJson
            | Fault::TruncatedBody { .. } => true,
            Fault::Status {
                after_processing, ..
            }
            | Fault::ServerError {
                after_processing, ..
            } => *after_processing,
            Fault::OpenaiRateLimit { .. }
            | Fault::OpenaiInsufficientQuota
            | Fault::SunoCode { .. }
            | Fault::CreatomateRateLimit { .. }
            | Fault::ResetBeforeRequest
            | Fault::Outage => false,
        }
    }

    fn to_repr(&self) -> FaultRepr {
        match self.clone() {
            Fault::Ok => FaultRepr::Ok,
            Fault::Status {
                status,
                headers,
                body,
                after_processing,
            } => FaultRepr::Status {
                status,
                headers,
                body,
                after_processing,
            },
            Fault::OpenaiRateLimit {
                retry_after_s,
                retry_after_ms,
            } => FaultRepr::OpenaiRateLimit {
                retry_after_s,
                retry_after_ms,
            },
            Fault::OpenaiInsufficientQuota => FaultRepr::OpenaiInsufficientQuota,
            Fault::SunoCode { code, msg } => FaultRepr::SunoCode { code, msg },
            Fault::CreatomateRateLimit {
                retry_after_s,
                http_date,
            } => FaultRepr::CreatomateRateLimit {
                retry_after_s,
                http_date,
            },
            Fault::ServerError {
                status,
                should_retry,
                after_processing,
            } => FaultRepr::ServerError {
                status,
                should_retry,
                after_processing,
            },
            Fault::Latency { ms } => FaultRepr::Latency { ms },
            Fault::StallBody { after_bytes, ms } => FaultRepr::StallBody { after_bytes, ms },
            Fault::ResetBeforeRequest => FaultRepr::ResetBeforeRequest,
            Fault::ResetAfterProcessing => FaultRepr::ResetAfterProcessing,
            Fault::MalformedJson => FaultRepr::MalformedJson,
            Fault::TruncatedBody { after_bytes } => FaultRepr::TruncatedBody { after_bytes },
            Fault::Outage => FaultRepr::Outage,
        }
    }

    fn from_repr(repr: FaultRepr) -> Self {
        match repr {
            FaultRepr::Ok => Fault::Ok,
            FaultRepr::Status {
                status,
                headers,
                body,
                after_processing,
            } => Fault::Status {
                status,
                headers,
                body,
                after_processing,
            },
            FaultRepr::OpenaiRateLimit {
                retry_after_s,
                retry_after_ms,
            } => Fault::OpenaiRateLimit {
                retry_after_s,
                retry_after_ms,
            },
            FaultRepr::OpenaiInsufficientQuota => Fault::OpenaiInsufficientQuota,
            FaultRepr::SunoCode { code, msg } => Fault::SunoCode { code, msg },
            FaultRepr::CreatomateRateLimit {
                retry_after_s,
                http_date,
            } => Fault::CreatomateRateLimit {
                retry_after_s,
                http_date,
            },
            FaultRepr::ServerError {
                status,
                should_retry,
                after_processing,
            } => Fault::ServerError {
                status,
                should_retry,
                after_processing,
            },
            FaultRepr::Latency { ms } => Fault::Latency { ms },
            FaultRepr::StallBody { after_bytes, ms } => Fault::StallBody { after_bytes, ms },
            FaultRepr::ResetBeforeRequest => Fault::ResetBeforeRequest,
            FaultRepr::ResetAfterProcessing => Fault::ResetAfterProcessing,
            FaultRepr::MalformedJson => Fault::MalformedJson,
            FaultRepr::TruncatedBody { after_bytes } => Fault::TruncatedBody { after_bytes },
            FaultRepr::Outage => Fault::Outage,
        }
    }

    /// Checks field ranges; `Err` holds the reason.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Fault::Status {
                status, headers, ..
            } => {
                if !(100..=599).contains(status) {
                    return Err(format!("status {status} is not in 100..=599"));
                }
                for (name, value) in headers {
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(format!("invalid header name `{name}`"));
                    }
                    if http::HeaderValue::from_str(value).is_err() {
                        return Err(format!("invalid value for header `{name}`"));
                    }
                }
                Ok(())
            }
            Fault::ServerError { status, .. } if !(500..=599).contains(status) => {
                Err(format!("server_error status {status} is not in 500..=599"))
            }
            Fault::SunoCode { code, .. } if !(100..=999).contains(code) => {
                Err(format!("suno_code {code} is not in 100..=999"))
            }
            _ => Ok(()),
        }
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

const fn default_stall_ms() -> u64 {
    DEFAULT_STALL_MS
}

const fn default_stall_after() -> usize {
    DEFAULT_STALL_AFTER_BYTES
}

const fn default_server_status() -> u16 {
    500
}

/// The scenario-file form of [`Fault`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FaultRepr {
    Ok,
    Status {
        status: u16,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "is_false")]
        after_processing: bool,
    },
    OpenaiRateLimit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    OpenaiInsufficientQuota,
    SunoCode {
        code: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
    },
    CreatomateRateLimit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
        #[serde(default, skip_serializing_if = "is_false")]
        http_date: bool,
    },
    ServerError {
        #[serde(default = "default_server_status")]
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        should_retry: Option<bool>,
        #[serde(default, skip_serializing_if = "is_false")]
        after_processing: bool,
    },
    Latency {
        ms: u64,
    },
    StallBody {
        #[serde(default = "default_stall_after")]
        after_bytes: usize,
        #[serde(default = "default_stall_ms")]
        ms: u64,
    },
    ResetBeforeRequest,
    ResetAfterProcessing,
    MalformedJson,
    TruncatedBody {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_bytes: Option<usize>,
    },
    Outage,
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Fault::Ok
            | Fault::OpenaiInsufficientQuota
            | Fault::ResetBeforeRequest
            | Fault::ResetAfterProcessing
            | Fault::MalformedJson
            | Fault::TruncatedBody { after_bytes: None }
            | Fault::Outage => serializer.serialize_str(self.kind_name()),
            other => other.to_repr().serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FaultVisitor;

        impl<'de> Visitor<'de> for FaultVisitor {
            type Value = Fault;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a fault kind name or a table with a `kind` key")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Fault, E> {
                let table = serde_json::json!({ "kind": name });
                FaultRepr::deserialize(table)
                    .map(Fault::from_repr)
                    .map_err(|e| E::custom(format!("fault `{name}`: {e}")))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Fault, A::Error> {
                FaultRepr::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Fault::from_repr)
            }
        }

        deserializer.deserialize_any(FaultVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Serialize, Debug, PartialEq)]
    struct Holder {
        f: Vec<Fault>,
    }

    #[test]
    fn strings_and_tables_parse() {
        let h: Holder = toml::from_str(
            r#"f = ["ok", "reset_before_request", { kind = "latency", ms = 20 },
                    { kind = "status", status = 503, headers = { "x-should-retry" = "true" } },
                    "truncated_body", "creatomate_rate_limit"]"#,
        )
        .unwrap();
        assert_eq!(h.f[0], Fault::Ok);
        assert_eq!(h.f[1], Fault::ResetBeforeRequest);
        assert_eq!(h.f[2], Fault::Latency { ms: 20 });
        assert!(matches!(h.f[3], Fault::Status { status: 503, .. }));
        assert_eq!(h.f[4], Fault::TruncatedBody { after_bytes: None });
        assert_eq!(
            h.f[5],
            Fault::CreatomateRateLimit {
                retry_after_s: None,
                http_date: false
            }
        );
        let back = toml::to_string(&h).unwrap();
        let again: Holder = toml::from_str(&back).unwrap();
        assert_eq!(again, h);
    }

    #[test]
    fn unknown_kind_and_field_are_named() {
        let err = toml::from_str::<Holder>(r#"f = ["explode"]"#).unwrap_err();
        assert!(err.to_string().contains("explode"), "{err}");
        let err = toml::from_str::<Holder>(r#"f = [{ kind = "latency", ms = 1, bogus = 2 }]"#)
            .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = toml::from_str::<Holder>(r#"f = ["latency"]"#).unwrap_err();
        assert!(err.to_string().contains("ms"), "{err}");
    }

    #[test]
    fn json_round_trip() {
        let faults = vec![
            Fault::openai_rate_limit_ms(250),
            Fault::suno_code(430),
            Fault::server_error_should_retry(503, false),
            Fault::stall_body(10, 5),
            Fault::creatomate_rate_limit_http_date(2),
            Fault::MalformedJson,
        ];
        let json = serde_json::to_string(&faults).unwrap();
        let back: Vec<Fault> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, faults);
    }

    #[test]
    fn kind_names_are_complete() {
        let h: Holder = toml::from_str(
            r#"f = ["ok", { kind = "status", status = 400 }, "openai_rate_limit",
            "openai_insufficient_quota", { kind = "suno_code", code = 430 }, "creatomate_rate_limit",
            "server_error", { kind = "latency", ms = 1 }, "stall_body", "reset_before_request",
            "reset_after_processing", "malformed_json", "truncated_body", "outage"]"#,
        )
        .unwrap();
        let names: Vec<_> = h.f.iter().map(Fault::kind_name).collect();
        assert_eq!(names, Fault::KIND_NAMES);
    }
}
