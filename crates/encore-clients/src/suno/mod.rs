//! Suno music generation through sunoapi.org: create a task, poll it, fetch timestamped lyrics,
//! read the credit balance.
//!
//! Every answer is an envelope `{code, msg, data}`, and application errors usually arrive as
//! HTTP 200 with an error `code` whose numbers reuse HTTP's with other meanings (429 means
//! *insufficient credits*, 405 *rate limited*). So the client always reads the envelope first
//! and falls back to the HTTP status only when the body is not an envelope.

mod types;

use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use types::{
    AlignedWord, CreateTime, GenerateRequest, TaskRecord, TaskStatus, TimestampedLyrics, Track,
};

use crate::class::Class;
use crate::classify::{
    body_snippet, clean_message, retry_hint, status_class, status_detail, status_kind,
};
use crate::config::Config;
use crate::endpoint::{Endpoint, Service};
use crate::error::{Error, ErrorKind};
use crate::observer::CallObserver;
use crate::request::{Call, ServiceClient};
use crate::secret::ApiKey;
use crate::transport::{Http, RawResponse};

/// The Suno client. Cheap to clone.
///
/// ```no_run
/// use encore_clients::{ApiKey, Config, Http};
/// use encore_clients::suno::{GenerateRequest, SunoClient};
///
/// # async fn run() -> Result<(), encore_clients::Error> {
/// let config = Config::load(None).expect("valid config");
/// let suno = SunoClient::new(Http::for_config(&config)?, &config, ApiKey::from_env("SUNO_API_KEY")?);
/// let task_id = suno
///     .generate(&GenerateRequest::custom("[Verse]\nNeon nights", "synthwave", "Night City"))
///     .await?;
/// let record = suno.task_status(&task_id).await?;
/// println!("{}: {}", task_id, record.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SunoClient {
    core: ServiceClient,
    model: Arc<str>,
    callback_url: Arc<str>,
}

impl fmt::Debug for SunoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SunoClient")
            .field("core", &self.core)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl SunoClient {
    /// A client for `config.suno`, with the policies of `config.endpoints`.
    pub fn new(http: Http, config: &Config, key: ApiKey) -> SunoClient {
        SunoClient {
            core: ServiceClient::new(http, Service::Suno, config, key),
            model: Arc::from(config.suno.model.as_str()),
            callback_url: Arc::from(config.suno.callback_url.as_str()),
        }
    }

    /// Reports every call to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.core.set_observer(observer);
        self
    }

    /// `POST /generate`: creates a billed task (two tracks) and returns its `taskId`. An empty
    /// `model` or `call_back_url` is filled from the config.
    ///
    /// Never replayed after a failure that may have created the task (unless
    /// `endpoints.suno_generate.retry_ambiguous` is set): such a failure is
    /// [`ErrorKind::Ambiguous`] and [`Error::may_have_run`] is true.
    pub async fn generate(&self, request: &GenerateRequest) -> Result<String, Error> {
        let endpoint = Endpoint::SunoGenerate;
        let mut body = request.clone();
        if body.model.trim().is_empty() {
            body.model = self.model.to_string();
        }
        if body.call_back_url.trim().is_empty() {
            body.call_back_url = self.callback_url.to_string();
        }
        let call = Call::post_json(endpoint, self.core.url("/generate", None), &body)
            .map_err(|e| self.core.early(e))?;
        self.core
            .call(call, |raw| {
                let created: types::Created = decode_data(classify(raw, endpoint)?)?;
                if created.task_id.trim().is_empty() {
                    return Err(garbled("the answer has no taskId", None));
                }
                Ok(created.task_id)
            })
            .await
    }

    /// `GET /generate/record-info?taskId=…`: the task's status and tracks.
    pub async fn task_status(&self, task_id: &str) -> Result<TaskRecord, Error> {
        let endpoint = Endpoint::SunoStatus;
        self.core.require_id(endpoint, "task id", task_id)?;
        let call = Call::get(
            endpoint,
            self.core
                .url("/generate/record-info?taskId=", Some(task_id)),
        );
        self.core
            .call(call, |raw| decode_data(classify(raw, endpoint)?))
            .await
    }

    /// `POST /generate/get-timestamped-lyrics`: word timings of one track (`audio_id` is
    /// [`Track::id`]). A read despite the POST, so it is always safe to replay.
    pub async fn timestamped_lyrics(
        &self,
        task_id: &str,
        audio_id: &str,
    ) -> Result<TimestampedLyrics, Error> {
        let endpoint = Endpoint::SunoTimestamps;
        self.core.require_id(endpoint, "task id", task_id)?;
        self.core.require_id(endpoint, "audio id", audio_id)?;
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            task_id: &'a str,
            audio_id: &'a str,
        }
        let call = Call::post_json(
            endpoint,
            self.core.url("/generate/get-timestamped-lyrics", None),
            &Body { task_id, audio_id },
        )
        .map_err(|e| self.core.early(e))?;
        self.core
            .call(call, |raw| {
                // Instrumentals may answer with no data at all.
                match classify(raw, endpoint)? {
                    Value::Null => Ok(TimestampedLyrics::default()),
                    data => decode_data(data),
                }
            })
            .await
    }

    /// `GET /generate/credit`: the remaining credits.
    pub async fn credits(&self) -> Result<u64, Error> {
        let endpoint = Endpoint::SunoCredits;
        let call = Call::get(endpoint, self.core.url("/generate/credit", None));
        self.core
            .call(call, |raw| {
                let data = classify(raw, endpoint)?;
                data.as_u64()
                    .or_else(|| {
                        data.as_f64()
                            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                            .map(|f| f as u64)
                    })
                    .ok_or_else(|| garbled("the credit balance is not a number", None))
            })
            .await
    }
}

/// The sunoapi.org envelope.
#[derive(Deserialize)]
struct Envelope {
    code: i64,
    #[serde(default, deserialize_with = "crate::wire::opt_string")]
    msg: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

/// Classifies one complete Suno response to a call of `endpoint` and returns its `data`
/// (`null` when absent).
///
/// | answer | kind | class | why |
/// |---|---|---|---|
/// | envelope `code` 200 (HTTP 2xx) | — | ok | |
/// | `code` 405 (rate limit exceeded), 430 (call frequency too high) | RateLimited | transient | rejected before any task is created; safe even for generate |
/// | `code` 455 (system maintenance) | Status | transient | nothing is processed during maintenance |
/// | `code` 429 (**insufficient credits**) | InsufficientCredits | permanent | waiting does not add credits, despite the number |
/// | `code` 401 | Unauthorized | permanent | a bad key stays bad |
/// | `code` 404 | NotFound | permanent | documented as "invalid method or path"; for a task read, no such task (yet) |
/// | `code` 400 to `record-info` | NotFound | permanent | its one parameter is the task id (checked non-empty before sending): an unknown task |
/// | `code` 400 to `get-timestamped-lyrics` whose `msg` says "not found" | NotFound | permanent | an unknown task; other 400s there mean "audio not ready yet" or a wrong audio id |
/// | other `code` 400, 413 | InvalidRequest | permanent | the same input is refused again |
/// | `code` 500 and other 5xx | Status | may have run | a task may exist; reads replay, generate does not |
/// | other codes | by the number as an HTTP status | by the number | undocumented: plain HTTP rules (408 transient, 5xx may have run, 4xx permanent) |
/// | not an envelope, HTTP 2xx | Decode | may have run | the server processed it, the answer is garbled |
/// | not an envelope, HTTP error | by status | by status | a gateway's page: plain HTTP rules |
///
/// The envelope wins over the HTTP status, so the same rules hold whether the error arrives as
/// HTTP 200 with a body code (documented) or with the code mirrored into the HTTP status.
/// HTTP 404 without an envelope (a gateway's answer) is NotFound by the plain HTTP rules.
///
/// sunoapi.org documents no answer for an unknown task; what a live `record-info` returns for
/// one, or for a task created a moment ago, is unconfirmed (`shared/reference/apis.md` 6), so
/// both codes its table allows are read as "not found" on the reads that name a task.
pub(crate) fn classify(raw: &RawResponse, endpoint: Endpoint) -> Result<Value, Error> {
    match serde_json::from_slice::<Envelope>(&raw.body) {
        Ok(envelope) if envelope.code != 200 => Err(code_error(&envelope, raw, endpoint)),
        // No envelope on an HTTP error (a gateway's page), or an envelope claiming success on
        // one: plain HTTP rules.
        _ if !raw.status.is_success() => Err(http_error(raw)),
        Ok(envelope) => Ok(envelope.data.unwrap_or(Value::Null)),
        Err(e) => Err(garbled("the answer is not a Suno envelope", Some(e))),
    }
}

fn code_error(envelope: &Envelope, raw: &RawResponse, endpoint: Endpoint) -> Error {
    let after = retry_hint(&raw.headers);
    let code = envelope.code;
    let says_not_found = envelope
        .msg
        .as_deref()
        .is_some_and(|m| m.to_ascii_lowercase().contains("not found"));
    let unknown_task = code == 400
        && match endpoint {
            Endpoint::SunoStatus => true,
            Endpoint::SunoTimestamps => says_not_found,
            _ => false,
        };
    let as_status = u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(raw.status);
    let (kind, class, meaning) = match code {
        405 => (
            ErrorKind::RateLimited,
            Class::Transient { after },
            "rate limit exceeded",
        ),
        430 => (
            ErrorKind::RateLimited,
            Class::Transient { after },
            "call frequency too high",
        ),
        455 => (
            ErrorKind::Status { status: as_status },
            Class::Transient { after },
            "system maintenance",
        ),
        429 => (
            ErrorKind::InsufficientCredits,
            Class::Permanent,
            "insufficient credits",
        ),
        401 => (ErrorKind::Unauthorized, Class::Permanent, "unauthorized"),
        400 if unknown_task => (ErrorKind::NotFound, Class::Permanent, "task not found"),
        400 => (
            ErrorKind::InvalidRequest,
            Class::Permanent,
            "invalid parameters",
        ),
        404 => (ErrorKind::NotFound, Class::Permanent, "not found"),
        413 => (
            ErrorKind::InvalidRequest,
            Class::Permanent,
            "prompt or style too long",
        ),
        500..=599 => (
            ErrorKind::Status { status: as_status },
            Class::MayHaveRun { after },
            "server error",
        ),
        // Undocumented codes: read the number as an HTTP status (408 transient, 5xx may have
        // run, other 4xx permanent).
        _ => (
            status_kind(as_status),
            status_class(as_status, &raw.headers),
            "undocumented code",
        ),
    };
    let message = envelope.msg.as_deref().and_then(clean_message);
    let mut detail = format!("suno code {code} ({meaning})");
    if let Some(m) = &message {
        detail.push_str(": ");
        detail.push_str(m);
    }
    let mut error = Error::new(kind, class, detail).with_api(Some(code.to_string()), message);
    if !raw.status.is_success() {
        error = error.with_status(raw.status);
    }
    error
}

fn http_error(raw: &RawResponse) -> Error {
    let message = body_snippet(&raw.body);
    Error::new(
        status_kind(raw.status),
        status_class(raw.status, &raw.headers),
        status_detail(raw.status, message.as_deref()),
    )
    .with_status(raw.status)
    .with_api(None, message)
}

/// A 2xx answer that cannot be used: the request was processed, only the answer is lost.
fn garbled(what: &str, cause: Option<serde_json::Error>) -> Error {
    let error = Error::new(ErrorKind::Decode, Class::MayHaveRun { after: None }, what);
    match cause {
        Some(e) => error.with_source(e),
        None => error,
    }
}

fn decode_data<T: DeserializeOwned>(data: Value) -> Result<T, Error> {
    serde_json::from_value(data).map_err(|e| garbled("unexpected data in the answer", Some(e)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn envelope(http: u16, code: i64, msg: &str) -> RawResponse {
        let body = serde_json::json!({"code": code, "msg": msg, "data": null}).to_string();
        RawResponse::new(http, &[("content-type", "application/json")], body)
    }

    const NO_HINT: Option<Duration> = None;

    /// The rules every endpoint shares, seen from `generate`.
    fn on_generate(raw: &RawResponse) -> Result<Value, Error> {
        classify(raw, Endpoint::SunoGenerate)
    }

    #[test]
    fn success_returns_data() {
        let raw = RawResponse::new(
            200,
            &[],
            r#"{"code":200,"msg":"success","data":{"taskId":"t1"}}"#,
        );
        assert_eq!(on_generate(&raw).unwrap()["taskId"], "t1");
        let raw = RawResponse::new(200, &[], r#"{"code":200,"msg":"success","data":120}"#);
        assert_eq!(on_generate(&raw).unwrap(), 120);
        let raw = RawResponse::new(200, &[], r#"{"code":200,"msg":"success"}"#);
        assert_eq!(on_generate(&raw).unwrap(), Value::Null);
    }

    #[test]
    fn body_codes_case_by_case_as_http_200_and_as_mirrored_status() {
        let cases: [(i64, ErrorKind, Class); 12] = [
            (
                405,
                ErrorKind::RateLimited,
                Class::Transient { after: NO_HINT },
            ),
            (
                430,
                ErrorKind::RateLimited,
                Class::Transient { after: NO_HINT },
            ),
            (
                455,
                ErrorKind::Status {
                    status: StatusCode::from_u16(455).unwrap(),
                },
                Class::Transient { after: NO_HINT },
            ),
            (429, ErrorKind::InsufficientCredits, Class::Permanent),
            (401, ErrorKind::Unauthorized, Class::Permanent),
            (400, ErrorKind::InvalidRequest, Class::Permanent),
            (404, ErrorKind::NotFound, Class::Permanent),
            (413, ErrorKind::InvalidRequest, Class::Permanent),
            (
                500,
                ErrorKind::Status {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                },
                Class::MayHaveRun { after: NO_HINT },
            ),
            (
                503,
                ErrorKind::Status {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                },
                Class::MayHaveRun { after: NO_HINT },
            ),
            (451, ErrorKind::InvalidRequest, Class::Permanent),
            (
                408,
                ErrorKind::Status {
                    status: StatusCode::REQUEST_TIMEOUT,
                },
                Class::Transient { after: NO_HINT },
            ),
        ];
        for (code, kind, class) in cases {
            for http in [200, u16::try_from(code).unwrap()] {
                let err = on_generate(&envelope(http, code, "why")).unwrap_err();
                assert_eq!(*err.kind(), kind, "code {code} over http {http}");
                assert_eq!(err.class(), class, "code {code} over http {http}");
                assert_eq!(err.api_code(), Some(code.to_string().as_str()));
                assert_eq!(err.server_message(), Some("why"));
                assert!(
                    err.detail().starts_with(&format!("suno code {code} (")),
                    "{}",
                    err.detail()
                );
                assert_eq!(err.status().is_some(), http != 200);
            }
        }
    }

    #[test]
    fn an_unknown_task_is_not_found_on_the_reads_that_name_it() {
        let kind = |endpoint, code, msg: &str| {
            let mut kinds = [200, u16::try_from(code).unwrap()]
                .map(|http| classify(&envelope(http, code, msg), endpoint).unwrap_err());
            let [over_200, mirrored] = &mut kinds;
            assert_eq!(over_200.kind(), mirrored.kind(), "{endpoint} {code} {msg}");
            assert!(over_200.is_permanent(), "{endpoint} {code} {msg}");
            over_200.kind().clone()
        };
        // record-info's one parameter is the task id: any 400 is about it.
        for msg in [
            "Invalid parameters",
            "Invalid parameters: task not found",
            "",
        ] {
            assert_eq!(
                kind(Endpoint::SunoStatus, 400, msg),
                ErrorKind::NotFound,
                "{msg}"
            );
        }
        // Timestamped lyrics: only when Suno says so; its other 400s are about the audio.
        assert_eq!(
            kind(
                Endpoint::SunoTimestamps,
                400,
                "Invalid parameters: task Not Found"
            ),
            ErrorKind::NotFound
        );
        for msg in [
            "The audio is not ready yet, please try again later",
            "Invalid parameters: audioId does not belong to this task",
        ] {
            assert_eq!(
                kind(Endpoint::SunoTimestamps, 400, msg),
                ErrorKind::InvalidRequest,
                "{msg}"
            );
        }
        // A 400 to generate or credits is bad input, whatever the message.
        for endpoint in [Endpoint::SunoGenerate, Endpoint::SunoCredits] {
            assert_eq!(
                kind(endpoint, 400, "task not found"),
                ErrorKind::InvalidRequest
            );
        }
        // 404 is "not found" everywhere; the detail names what Suno said.
        for endpoint in [Endpoint::SunoStatus, Endpoint::SunoTimestamps] {
            assert_eq!(kind(endpoint, 404, "Task not found"), ErrorKind::NotFound);
        }
        let err = classify(
            &envelope(200, 400, "Invalid parameters"),
            Endpoint::SunoStatus,
        )
        .unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(
            err.detail(),
            "suno code 400 (task not found): Invalid parameters"
        );
        // A gateway's 404 page without an envelope: plain HTTP rules.
        let page = RawResponse::new(404, &[], "<html>Not Found</html>");
        assert!(
            classify(&page, Endpoint::SunoStatus)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn insufficient_credits_is_permanent_even_as_http_429() {
        let err = on_generate(&envelope(429, 429, "Insufficient credits")).unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::InsufficientCredits);
        assert!(err.is_permanent());
    }

    #[test]
    fn not_an_envelope_falls_back_to_http() {
        let html = RawResponse::new(
            502,
            &[("content-type", "text/html")],
            "<html><h1>502 Bad Gateway</h1></html>",
        );
        let err = on_generate(&html).unwrap_err();
        assert_eq!(err.class(), Class::MayHaveRun { after: NO_HINT });
        assert_eq!(err.status(), Some(StatusCode::BAD_GATEWAY));
        assert!(
            err.detail().starts_with("http 502 Bad Gateway: <html>"),
            "{}",
            err.detail()
        );
        let limited = RawResponse::new(429, &[("retry-after", "2")], "slow down");
        assert_eq!(
            on_generate(&limited).unwrap_err().class(),
            Class::Transient {
                after: Some(Duration::from_secs(2))
            },
            "a gateway 429 without an envelope is a plain rate limit"
        );
        let empty = RawResponse::new(401, &[], "");
        assert_eq!(
            *on_generate(&empty).unwrap_err().kind(),
            ErrorKind::Unauthorized
        );
        // An envelope claiming success on an HTTP error is judged by the HTTP status.
        let odd = RawResponse::new(503, &[], r#"{"code":200,"msg":"success","data":null}"#);
        assert_eq!(
            on_generate(&odd).unwrap_err().class(),
            Class::MayHaveRun { after: NO_HINT }
        );
    }

    #[test]
    fn garbled_success_may_have_run() {
        for body in [
            r#"{"code":200,"msg":"succ"#,
            "",
            "<html>",
            r#"{"code":"200"}"#,
        ] {
            let err = on_generate(&RawResponse::new(200, &[], body)).unwrap_err();
            assert_eq!(*err.kind(), ErrorKind::Decode, "{body}");
            assert_eq!(err.class(), Class::MayHaveRun { after: NO_HINT }, "{body}");
        }
        let err = decode_data::<types::Created>(serde_json::json!({"nope": 1}))
            .err()
            .unwrap();
        assert_eq!(err.class(), Class::MayHaveRun { after: NO_HINT });
    }

    #[test]
    fn retry_after_on_a_rate_limit_code_is_honoured() {
        let body = r#"{"code":430,"msg":"Your call frequency is too high.","data":null}"#;
        let raw = RawResponse::new(200, &[("retry-after", "3")], body);
        assert_eq!(
            on_generate(&raw).unwrap_err().class(),
            Class::Transient {
                after: Some(Duration::from_secs(3))
            }
        );
    }
}
