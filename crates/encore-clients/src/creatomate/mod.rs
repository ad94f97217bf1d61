//! Creatomate video rendering (v1 API): list and read templates, queue a render, poll it.

mod types;

use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use types::{Render, RenderRequest, RenderStatus, Template};

use crate::class::Class;
use crate::classify::{body_snippet, clean_message, status_class, status_detail, status_kind};
use crate::config::Config;
use crate::endpoint::{Endpoint, Service};
use crate::error::{Error, ErrorKind};
use crate::observer::CallObserver;
use crate::request::{Call, ServiceClient};
use crate::secret::ApiKey;
use crate::transport::{Http, RawResponse};

/// The Creatomate client. Cheap to clone.
///
/// ```no_run
/// use encore_clients::{ApiKey, Config, Http};
/// use encore_clients::creatomate::{CreatomateClient, RenderRequest};
///
/// # async fn run() -> Result<(), encore_clients::Error> {
/// let config = Config::load(None).expect("valid config");
/// let key = ApiKey::from_env("CREATOMATE_API_KEY")?;
/// let creatomate = CreatomateClient::new(Http::for_config(&config)?, &config, key);
/// let render = creatomate
///     .render(&RenderRequest::new("9e90d011-52e6-49dc-8a7a-5f25058c2568").modify("Title", "Hi"))
///     .await?;
/// let now = creatomate.render_status(&render.id).await?;
/// println!("{} is {}", now.id, now.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CreatomateClient {
    core: ServiceClient,
}

impl fmt::Debug for CreatomateClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatomateClient")
            .field("core", &self.core)
            .finish()
    }
}

impl CreatomateClient {
    /// A client for `config.creatomate`, with the policies of `config.endpoints`.
    pub fn new(http: Http, config: &Config, key: ApiKey) -> CreatomateClient {
        CreatomateClient {
            core: ServiceClient::new(http, Service::Creatomate, config, key),
        }
    }

    /// Reports every call to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.core.set_observer(observer);
        self
    }

    /// `GET /templates`: every template of the project (without `source`).
    pub async fn templates(&self) -> Result<Vec<Template>, Error> {
        let call = Call::get(
            Endpoint::CreatomateTemplates,
            self.core.url("/templates", None),
        );
        self.core.call(call, |raw| decode(classify(raw)?)).await
    }

    /// `GET /templates/{id}`: one template with its `source`.
    pub async fn template(&self, id: &str) -> Result<Template, Error> {
        let endpoint = Endpoint::CreatomateTemplates;
        self.core.require_id(endpoint, "template id", id)?;
        let call = Call::get(endpoint, self.core.url("/templates/", Some(id)));
        self.core.call(call, |raw| decode(classify(raw)?)).await
    }

    /// `POST /renders`: queues a billed render and returns it (v1 answers with an array; its
    /// first render is returned).
    ///
    /// Never replayed after a failure that may have queued the render (unless
    /// `endpoints.creatomate_render.retry_ambiguous` is set): such a failure is
    /// [`ErrorKind::Ambiguous`] and [`Error::may_have_run`] is true.
    pub async fn render(&self, request: &RenderRequest) -> Result<Render, Error> {
        let endpoint = Endpoint::CreatomateRender;
        self.core
            .require_id(endpoint, "template id", &request.template_id)?;
        let call = Call::post_json(endpoint, self.core.url("/renders", None), request)
            .map_err(|e| self.core.early(e))?;
        self.core
            .call(call, |raw| {
                let value: Value = decode(classify(raw)?)?;
                let render = match value {
                    Value::Array(items) => items
                        .into_iter()
                        .next()
                        .ok_or_else(|| garbled("the answer lists no render", None))?,
                    // v2 answers with one object; accept it too.
                    other => other,
                };
                let render: Render = decode_value(render)?;
                if render.id.is_empty() {
                    return Err(garbled("the render in the answer has no id", None));
                }
                Ok(render)
            })
            .await
    }

    /// `GET /renders/{id}`: the render's current state.
    pub async fn render_status(&self, id: &str) -> Result<Render, Error> {
        let endpoint = Endpoint::CreatomateStatus;
        self.core.require_id(endpoint, "render id", id)?;
        let call = Call::get(endpoint, self.core.url("/renders/", Some(id)));
        self.core.call(call, |raw| decode(classify(raw)?)).await
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default, deserialize_with = "crate::wire::opt_string")]
    hint: Option<String>,
}

/// Classifies one complete Creatomate response; returns the body of a success.
///
/// | answer | kind | class | why |
/// |---|---|---|---|
/// | 2xx | — | ok | |
/// | 402 | InsufficientCredits | permanent | waiting does not add credits |
/// | 429 | RateLimited | transient (honouring `Retry-After`) | 30 requests / 10 s per account; rejected before work |
/// | 408 | Status | transient | the request was not received in time, so not processed |
/// | 5xx | Status | may have run | a render may have been queued; reads replay, render does not |
/// | 401, 403 | Unauthorized | permanent | |
/// | 404 | NotFound | permanent | an unknown render or template; a render created a moment ago that is not readable yet is the caller's to wait for (Creatomate documents neither way: `shared/reference/apis.md` 5.2) |
/// | other 4xx (400 `hint`, 422, …) | InvalidRequest | permanent | |
///
/// `x-should-retry` overrides as for every service (see [`crate::classify`]), except that a 402
/// stays permanent. The message is the body's `hint`, or the start of a non-JSON body.
pub(crate) fn classify(raw: &RawResponse) -> Result<&[u8], Error> {
    if raw.status.is_success() {
        return Ok(&raw.body);
    }
    let message = match serde_json::from_slice::<ErrorBody>(&raw.body) {
        Ok(ErrorBody { hint: Some(hint) }) => clean_message(&hint),
        _ => body_snippet(&raw.body),
    };
    let (kind, class) = if raw.status == StatusCode::PAYMENT_REQUIRED {
        (ErrorKind::InsufficientCredits, Class::Permanent)
    } else {
        (
            status_kind(raw.status),
            status_class(raw.status, &raw.headers),
        )
    };
    Err(
        Error::new(kind, class, status_detail(raw.status, message.as_deref()))
            .with_status(raw.status)
            .with_api(None, message),
    )
}

/// A 2xx answer that cannot be used: processed, but the answer is lost.
fn garbled(what: &str, cause: Option<serde_json::Error>) -> Error {
    let error = Error::new(ErrorKind::Decode, Class::MayHaveRun { after: None }, what);
    match cause {
        Some(e) => error.with_source(e),
        None => error,
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body)
        .map_err(|e| garbled("the answer is not the JSON expected", Some(e)))
}

fn decode_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value)
        .map_err(|e| garbled("the answer is not the JSON expected", Some(e)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NO_HINT: Option<Duration> = None;

    fn err(status: u16, headers: &[(&str, &str)], body: &str) -> Error {
        classify(&RawResponse::new(status, headers, body.to_owned())).unwrap_err()
    }

    #[test]
    fn statuses_case_by_case() {
        let e = err(402, &[], r#"{"hint":"Insufficient credits"}"#);
        assert_eq!(*e.kind(), ErrorKind::InsufficientCredits);
        assert_eq!(e.class(), Class::Permanent);
        assert_eq!(e.server_message(), Some("Insufficient credits"));
        assert_eq!(
            e.detail(),
            "http 402 Payment Required: Insufficient credits"
        );
        let e = err(402, &[("x-should-retry", "true")], "{}");
        assert_eq!(e.class(), Class::Permanent, "402 stays permanent");

        let e = err(429, &[("retry-after", "2")], r#"{"hint":"Rate limit"}"#);
        assert_eq!(*e.kind(), ErrorKind::RateLimited);
        assert_eq!(
            e.class(),
            Class::Transient {
                after: Some(Duration::from_secs(2))
            }
        );
        let e = err(429, &[], r#"{"hint":"Rate limit"}"#);
        assert_eq!(e.class(), Class::Transient { after: NO_HINT });

        for s in [500, 502, 503, 504] {
            let e = err(s, &[], r#"{"hint":"down"}"#);
            assert_eq!(e.class(), Class::MayHaveRun { after: NO_HINT }, "{s}");
        }
        assert_eq!(
            err(408, &[], "").class(),
            Class::Transient { after: NO_HINT }
        );
        assert_eq!(
            *err(401, &[], r#"{"hint":"bad key"}"#).kind(),
            ErrorKind::Unauthorized
        );
        for s in [400, 422] {
            let e = err(s, &[], r#"{"hint":"The template was not found"}"#);
            assert_eq!(*e.kind(), ErrorKind::InvalidRequest, "{s}");
            assert_eq!(e.class(), Class::Permanent, "{s}");
        }
        // An unknown render or template: permanent, and its own kind.
        let e = err(404, &[], r#"{"hint":"The render was not found."}"#);
        assert_eq!(*e.kind(), ErrorKind::NotFound);
        assert_eq!(e.class(), Class::Permanent);
        assert!(e.is_not_found() && e.is_permanent());
        assert_eq!(e.detail(), "http 404 Not Found: The render was not found.");
        let e = err(503, &[("x-should-retry", "false")], "");
        assert_eq!(e.class(), Class::Permanent);
    }

    #[test]
    fn http_date_retry_after_is_read() {
        let at = httpdate_in(3);
        let e = err(429, &[("retry-after", &at)], "{}");
        match e.class() {
            Class::Transient { after: Some(d) } => assert!(d <= Duration::from_secs(3), "{d:?}"),
            other => panic!("{other:?}"),
        }
    }

    fn httpdate_in(secs: u64) -> String {
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(secs))
    }

    #[test]
    fn non_json_error_bodies_keep_their_text() {
        let e = err(
            502,
            &[("content-type", "text/html")],
            "<html>Bad Gateway</html>",
        );
        assert_eq!(e.server_message(), Some("<html>Bad Gateway</html>"));
    }

    #[test]
    fn garbled_success_may_have_run() {
        let e = decode::<Vec<Template>>(b"[{\"id\":").unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::Decode);
        assert_eq!(e.class(), Class::MayHaveRun { after: NO_HINT });
    }
}
