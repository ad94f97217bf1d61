//! OpenAI Responses API: structured output into a Rust type.

mod schema;
mod types;

use std::fmt::{self, Write as _};
use std::sync::Arc;

use http::StatusCode;
pub use schema::{SchemaError, make_strict, strict_schema};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::class::Class;
use crate::classify::{
    body_snippet, clean_message, retry_hint, should_retry, status_class, status_detail, status_kind,
};
use crate::config::Config;
use crate::endpoint::{Endpoint, Service};
use crate::error::{Error, ErrorKind};
use crate::observer::CallObserver;
use crate::request::{Call, ServiceClient};
use crate::secret::ApiKey;
use crate::transport::{Http, RawResponse};

/// The OpenAI client. Cheap to clone.
///
/// ```no_run
/// use encore_clients::{ApiKey, Config, Http};
/// use encore_clients::openai::OpenAiClient;
///
/// #[derive(schemars::JsonSchema, serde::Deserialize)]
/// struct Lyrics { title: String, lines: Vec<String> }
///
/// # async fn run() -> Result<(), encore_clients::Error> {
/// let config = Config::load(None).expect("valid config");
/// let openai = OpenAiClient::new(Http::for_config(&config)?, &config, ApiKey::from_env("OPENAI_API_KEY")?);
/// let lyrics: Lyrics = openai
///     .structured("You write short song lyrics.", "A bakery that opens at dawn", "lyrics")
///     .await?;
/// println!("{}", lyrics.title);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenAiClient {
    core: ServiceClient,
    model: Arc<str>,
    max_output_tokens: u32,
}

impl fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("core", &self.core)
            .field("model", &self.model)
            .field("max_output_tokens", &self.max_output_tokens)
            .finish()
    }
}

impl OpenAiClient {
    /// A client for `config.openai`, with the policy of `endpoints.openai_responses`.
    pub fn new(http: Http, config: &Config, key: ApiKey) -> OpenAiClient {
        OpenAiClient {
            core: ServiceClient::new(http, Service::OpenAi, config, key),
            model: Arc::from(config.openai.model.as_str()),
            max_output_tokens: config.openai.max_output_tokens,
        }
    }

    /// Reports every call to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.core.set_observer(observer);
        self
    }

    /// Asks for a `T`: `instructions` (system-level; may be empty) and `input` (the user's
    /// text) are sent with `T`'s strict JSON Schema as `text.format` under `schema_name`
    /// (`[A-Za-z0-9_-]{1,64}`), and the answer's `output_text` is parsed into `T`. The request
    /// says `store: false` (nothing is kept server-side) and carries `openai.max_output_tokens`.
    ///
    /// # Errors
    ///
    /// Besides transport and status errors: [`ErrorKind::Refusal`] (permanent), [`ErrorKind::Incomplete`] (permanent; the error
    /// names the reason, `max_output_tokens` or `content_filter`),
    /// [`ErrorKind::ResponseFailed`] (`server_error` may have run and is replayed as the
    /// endpoint's `retry_ambiguous` says; other codes are permanent), [`ErrorKind::Decode`]
    /// when there is no `output_text` or it does not fit `T`, and [`ErrorKind::Config`] (before
    /// any request) when `T`'s schema cannot be expressed in strict mode or the name is
    /// invalid.
    pub async fn structured<T>(
        &self,
        instructions: &str,
        input: &str,
        schema_name: &str,
    ) -> Result<T, Error>
    where
        T: JsonSchema + DeserializeOwned,
    {
        let endpoint = Endpoint::OpenAiResponses;
        check_schema_name(schema_name).map_err(|e| self.core.early(e.for_endpoint(endpoint)))?;
        let schema = strict_schema::<T>().map_err(|e| {
            Error::local(
                ErrorKind::Config,
                format!("{}: {e}", std::any::type_name::<T>()),
            )
            .with_source(e)
            .for_endpoint(endpoint)
        })?;
        let body = types::CreateResponse {
            model: &self.model,
            instructions: Some(instructions).filter(|s| !s.trim().is_empty()),
            input: [types::InputMessage {
                role: "user",
                content: [types::InputText {
                    kind: "input_text",
                    text: input,
                }],
            }],
            text: types::TextConfig {
                format: types::JsonSchemaFormat {
                    kind: "json_schema",
                    name: schema_name,
                    schema: &schema,
                    strict: true,
                },
            },
            store: false,
            max_output_tokens: self.max_output_tokens,
        };
        let call = Call::post_json(endpoint, self.core.url("/responses", None), &body)
            .map_err(|e| self.core.early(e))?;
        self.core
            .call(call, |raw| {
                let text = classify(raw)?;
                parse_output::<T>(&text)
            })
            .await
    }
}

fn check_schema_name(name: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::local(
            ErrorKind::Config,
            format!("invalid schema name {name:?}: use 1 to 64 of [A-Za-z0-9_-]"),
        ))
    }
}

/// Classifies one complete Responses API answer and returns its `output_text`.
///
/// | answer | kind | class | why |
/// |---|---|---|---|
/// | 429 `insufficient_quota` (code or type) | InsufficientCredits | permanent | waiting does not add quota (the SDK retries it anyway) |
/// | 429 "Request too large" | InvalidRequest | permanent | the same request stays too large |
/// | 429 other (`rate_limit_exceeded`) | RateLimited | transient (`retry-after-ms` / `Retry-After`) | rejected before work |
/// | 408 | Status | transient | not received in time |
/// | 409 | Status | transient | OpenAI's lock timeout; the SDK retries it |
/// | 5xx | Status | may have run | tokens may have been billed; replayed by default (`retry_ambiguous`) |
/// | 401, 403 | Unauthorized | permanent | |
/// | 404 | NotFound | permanent | e.g. an unknown model |
/// | other 4xx | InvalidRequest | permanent | |
/// | `x-should-retry: true/false` | as told | as told | the server's word (never for quota or size) |
/// | 2xx, body not a response object | Decode | may have run | processed, answer garbled |
/// | `status: failed`, `server_error` / `rate_limit_exceeded` | ResponseFailed | may have run | a new call may succeed; it bills again, so the endpoint's `retry_ambiguous` decides (on by default) |
/// | `status: failed`, other codes (`invalid_prompt`, …) | ResponseFailed | permanent | input or policy problem |
/// | `status: incomplete`, `max_output_tokens` | Incomplete | permanent | same ceiling, same cut-off: the error names `openai.max_output_tokens` |
/// | `status: incomplete`, `content_filter` | Incomplete | permanent | the same input is filtered again |
/// | any other status but completed | Incomplete | permanent | not an answer (encore never asks for `background`) |
/// | a `refusal` part | Refusal | permanent | the model declines this input |
/// | a `reasoning` item (or any other item) before the message | — | ok | reasoning models answer so: the text is read from every `message` item, never `output[0]` |
/// | no `output_text` | Decode | may have run | |
///
/// The `status` is checked before the text: an `incomplete` answer carries cut-off JSON
/// (openai-python's `output_text` docs; `shared/reference/apis.md` 3.2).
pub(crate) fn classify(raw: &RawResponse) -> Result<String, Error> {
    if !raw.status.is_success() {
        return Err(status_error(raw));
    }
    let response: types::ResponseObject = serde_json::from_slice(&raw.body).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            Class::MayHaveRun { after: None },
            "the answer is not a response object",
        )
        .with_source(e)
    })?;
    tracing::debug!(
        response_id = response.id.as_deref().unwrap_or("?"),
        status = response.status.as_deref().unwrap_or("?"),
        "response object"
    );
    match response.status.as_deref() {
        None | Some("completed") => {}
        Some("failed") => {
            let code = response.error.as_ref().and_then(|e| e.code.clone());
            let message = response
                .error
                .as_ref()
                .and_then(|e| e.message.as_deref())
                .and_then(clean_message);
            let class = match code.as_deref() {
                Some("server_error" | "rate_limit_exceeded") => Class::MayHaveRun { after: None },
                _ => Class::Permanent,
            };
            let mut detail = format!(
                "the response failed ({})",
                code.as_deref().unwrap_or("no code")
            );
            if let Some(m) = &message {
                detail.push_str(": ");
                detail.push_str(m);
            }
            return Err(
                Error::new(ErrorKind::ResponseFailed, class, detail).with_api(code, message)
            );
        }
        Some(other) => {
            let reason = response
                .incomplete_details
                .as_ref()
                .and_then(|d| d.reason.clone());
            let detail = match (other, reason.as_deref()) {
                ("incomplete", Some("max_output_tokens")) => format!(
                    "the response is incomplete (max_output_tokens): the answer did not fit in \
                     {} output tokens; raise openai.max_output_tokens",
                    response
                        .max_output_tokens
                        .map_or_else(|| "the allowed".to_owned(), |n| n.to_string())
                ),
                ("incomplete", Some("content_filter")) => {
                    "the response is incomplete (content_filter): OpenAI's content filter \
                     stopped the answer"
                        .to_owned()
                }
                ("incomplete", Some(r)) => format!("the response is incomplete ({r})"),
                ("incomplete", None) => "the response is incomplete".to_owned(),
                (s, _) => format!("the response is {s}, not completed"),
            };
            return Err(Error::new(ErrorKind::Incomplete, Class::Permanent, detail)
                .with_api(reason.or_else(|| Some(other.to_owned())), None));
        }
    }
    if let Some(refusal) = response.refusal() {
        let message = clean_message(refusal);
        let detail = match &message {
            Some(m) => format!("the model refused: {m}"),
            None => "the model refused".to_owned(),
        };
        return Err(
            Error::new(ErrorKind::Refusal, Class::Permanent, detail).with_api(None, message)
        );
    }
    let text = response.output_text();
    if text.is_empty() {
        return Err(Error::new(
            ErrorKind::Decode,
            Class::MayHaveRun { after: None },
            "the response has no output_text",
        ));
    }
    Ok(text)
}

fn status_error(raw: &RawResponse) -> Error {
    let status = raw.status;
    let api = serde_json::from_slice::<types::ErrorBody>(&raw.body)
        .ok()
        .map(|b| b.error);
    let message = match &api {
        Some(e) => e.message.as_deref().and_then(clean_message),
        None => body_snippet(&raw.body),
    };
    let code = api
        .as_ref()
        .and_then(|e| e.code.clone().or_else(|| e.kind.clone()));
    let is = |value: &str| {
        api.as_ref()
            .is_some_and(|e| e.code.as_deref() == Some(value) || e.kind.as_deref() == Some(value))
    };
    let (kind, class) = if status == StatusCode::TOO_MANY_REQUESTS && is("insufficient_quota") {
        (ErrorKind::InsufficientCredits, Class::Permanent)
    } else if status == StatusCode::TOO_MANY_REQUESTS
        && message
            .as_deref()
            .is_some_and(|m| m.starts_with("Request too large"))
    {
        (ErrorKind::InvalidRequest, Class::Permanent)
    } else if status == StatusCode::CONFLICT && should_retry(&raw.headers).is_none() {
        (
            ErrorKind::Status { status },
            Class::Transient {
                after: retry_hint(&raw.headers),
            },
        )
    } else {
        (status_kind(status), status_class(status, &raw.headers))
    };
    let mut detail = status_detail(status, message.as_deref());
    if let Some(code) = &code {
        let _ = write!(detail, " ({code})");
    }
    Error::new(kind, class, detail)
        .with_status(status)
        .with_api(code, message)
}

/// Parses `output_text` into `T`. Text that is not JSON at all (cut off, garbled) may have run
/// and is replayable; valid JSON that does not fit `T` means the schema and the type disagree,
/// which a retry does not fix.
fn parse_output<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        let (class, what) = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => (
                Class::MayHaveRun { after: None },
                "output_text is not valid JSON".to_owned(),
            ),
            Category::Data => (
                Class::Permanent,
                format!("output_text does not fit {}", std::any::type_name::<T>()),
            ),
        };
        Error::new(ErrorKind::Decode, class, what).with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;

    const NO_HINT: Option<Duration> = None;

    fn error_body(message: &str, kind: &str, code: Option<&str>) -> String {
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            .to_string()
    }

    fn ok(body: Value) -> RawResponse {
        RawResponse::new(200, &[], body.to_string())
    }

    fn completed(text: &str) -> Value {
        json!({"id": "resp_1", "object": "response", "status": "completed", "output": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
        ]})
    }

    #[test]
    fn statuses_case_by_case() {
        let quota = error_body(
            "You exceeded your current quota",
            "insufficient_quota",
            Some("insufficient_quota"),
        );
        let e = classify(&RawResponse::new(429, &[("x-should-retry", "true")], quota)).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::InsufficientCredits);
        assert_eq!(e.class(), Class::Permanent);
        assert_eq!(e.api_code(), Some("insufficient_quota"));
        assert!(
            e.detail().ends_with("(insufficient_quota)"),
            "{}",
            e.detail()
        );

        let too_large = error_body(
            "Request too large for gpt-4o in organization org-x on tokens per min (TPM)",
            "tokens",
            Some("rate_limit_exceeded"),
        );
        let e = classify(&RawResponse::new(429, &[], too_large)).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::InvalidRequest);
        assert_eq!(e.class(), Class::Permanent);

        let limited = error_body(
            "Rate limit reached ... Please try again in 644ms.",
            "tokens",
            Some("rate_limit_exceeded"),
        );
        let e = classify(&RawResponse::new(
            429,
            &[("retry-after-ms", "644"), ("retry-after", "1")],
            limited.clone(),
        ))
        .unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::RateLimited);
        assert_eq!(
            e.class(),
            Class::Transient {
                after: Some(Duration::from_millis(644))
            }
        );
        let e = classify(&RawResponse::new(
            429,
            &[("x-should-retry", "false")],
            limited,
        ))
        .unwrap_err();
        assert_eq!(e.class(), Class::Permanent);

        for s in [500, 502, 503, 504] {
            let e = classify(&RawResponse::new(
                s,
                &[],
                error_body("overloaded", "server_error", None),
            ))
            .unwrap_err();
            assert_eq!(e.class(), Class::MayHaveRun { after: NO_HINT }, "{s}");
        }
        assert_eq!(
            classify(&RawResponse::new(408, &[], ""))
                .unwrap_err()
                .class(),
            Class::Transient { after: NO_HINT }
        );
        assert_eq!(
            classify(&RawResponse::new(409, &[], ""))
                .unwrap_err()
                .class(),
            Class::Transient { after: NO_HINT }
        );
        let e = classify(&RawResponse::new(
            401,
            &[],
            error_body(
                "Incorrect API key provided: sk-ab***yz",
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
        ))
        .unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.class(), Class::Permanent);
        for s in [400, 403, 404, 422] {
            assert_eq!(
                classify(&RawResponse::new(s, &[], "{}"))
                    .unwrap_err()
                    .class(),
                Class::Permanent,
                "{s}"
            );
        }
        let e = classify(&RawResponse::new(400, &[("x-should-retry", "true")], "{}")).unwrap_err();
        assert_eq!(e.class(), Class::Transient { after: NO_HINT });
    }

    #[test]
    fn response_states_case_by_case() {
        assert_eq!(classify(&ok(completed("{\"a\":1}"))).unwrap(), "{\"a\":1}");

        let failed = |code: &str| json!({"status": "failed", "error": {"code": code, "message": "boom"}, "output": []});
        let e = classify(&ok(failed("server_error"))).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::ResponseFailed);
        assert_eq!(e.class(), Class::MayHaveRun { after: NO_HINT });
        assert_eq!(e.detail(), "the response failed (server_error): boom");
        assert_eq!(
            classify(&ok(failed("rate_limit_exceeded")))
                .unwrap_err()
                .class(),
            Class::MayHaveRun { after: NO_HINT }
        );
        assert_eq!(
            classify(&ok(failed("invalid_prompt"))).unwrap_err().class(),
            Class::Permanent
        );

        let incomplete = json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "{\"a\":"}]}]});
        let e = classify(&ok(incomplete)).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::Incomplete);
        assert_eq!(e.class(), Class::Permanent);
        assert_eq!(
            e.detail(),
            "the response is incomplete (max_output_tokens): the answer did not fit in the \
             allowed output tokens; raise openai.max_output_tokens"
        );
        assert_eq!(e.api_code(), Some("max_output_tokens"));
        let filtered = json!({"status": "incomplete", "incomplete_details": {"reason": "content_filter"},
            "max_output_tokens": 512, "output": []});
        let e = classify(&ok(filtered)).unwrap_err();
        assert_eq!(
            (e.kind(), e.class()),
            (&ErrorKind::Incomplete, Class::Permanent)
        );
        assert_eq!(
            e.detail(),
            "the response is incomplete (content_filter): OpenAI's content filter stopped the answer"
        );
        let capped = json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
            "max_output_tokens": 512, "output": []});
        assert!(
            classify(&ok(capped))
                .unwrap_err()
                .detail()
                .contains("did not fit in 512 output tokens")
        );
        let e = classify(&ok(json!({"status": "in_progress", "output": []}))).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::Incomplete);

        let refusal = json!({"status": "completed", "output": [{"type": "message", "content": [{"type": "refusal", "refusal": "I can't help with that."}]}]});
        let e = classify(&ok(refusal)).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::Refusal);
        assert_eq!(e.class(), Class::Permanent);
        assert_eq!(e.detail(), "the model refused: I can't help with that.");

        // A reasoning item before the message is how reasoning models answer.
        let reasoned = json!({"status": "completed", "output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "{}"}]}
        ]});
        assert_eq!(classify(&ok(reasoned)).unwrap(), "{}");
        let e = classify(&ok(
            json!({"status": "completed", "output": [{"type": "reasoning"}]}),
        ))
        .unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::Decode);
        assert_eq!(e.class(), Class::MayHaveRun { after: NO_HINT });
        assert_eq!(e.detail(), "the response has no output_text");

        let e = classify(&RawResponse::new(200, &[], "{\"id\":\"resp_1\",\"out")).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::Decode);
        assert_eq!(e.class(), Class::MayHaveRun { after: NO_HINT });
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Song {
        title: String,
    }

    #[test]
    fn output_parsing_tells_garbled_from_mismatched() {
        assert_eq!(
            parse_output::<Song>("{\"title\":\"x\"}").unwrap(),
            Song { title: "x".into() }
        );
        let e = parse_output::<Song>("{\"title\":").unwrap_err();
        assert_eq!(e.class(), Class::MayHaveRun { after: NO_HINT });
        let e = parse_output::<Song>("{\"name\":\"x\"}").unwrap_err();
        assert_eq!(e.class(), Class::Permanent);
        assert!(e.detail().contains("does not fit"), "{}", e.detail());
    }

    #[test]
    fn schema_names_are_checked() {
        check_schema_name("song_plan-2").unwrap();
        for bad in ["", "has space", "ünï", &"x".repeat(65)] {
            assert_eq!(
                *check_schema_name(bad).unwrap_err().kind(),
                ErrorKind::Config,
                "{bad}"
            );
        }
    }
}
