//! The HTTP transport: one shared `reqwest` client in production, any `tower::Service` (such as
//! the simulator's router) in tests.

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use encore_resilience::breaker::{CircuitBreaker, CircuitState};
use encore_resilience::budget::RetryBudget;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method};

use crate::class::Class;
use crate::config::Config;
use crate::defaults::DEFAULT_CONNECT_TIMEOUT;
use crate::endpoint::Service;
use crate::error::{BoxError, Error, ErrorKind};
use crate::protections::Protections;

type InMemory = BoxCloneSyncService<
    http::Request<Bytes>,
    http::Response<UnsyncBoxBody<Bytes, BoxError>>,
    BoxError,
>;

/// How requests leave the process, and the protections every call to a service shares. Cheap to
/// clone (`Arc`s inside); clones share everything.
///
/// The attempt timeout of each endpoint is applied around [`Http`] as a whole — pool wait,
/// connect, sending the request and reading the entire body — so a transport needs no timeouts of
/// its own; the `reqwest` client only adds a connect timeout, so that an unreachable host fails
/// as "never sent" (safe to retry even for billed calls) rather than as an attempt timeout.
///
/// # Shared protections
///
/// An `Http` handle carries a [`Protections`] registry: per service, the retry budget, circuit
/// breaker and rate limiter that every client built on the handle (or on a clone) shares. The
/// clients are built per pipeline, but they all share the process's `Http`, so every call to
/// Suno in the process draws on one budget, trips one breaker and queues at one rate limit.
///
/// The registry is explicit: [`Http::for_config`] builds it from the configuration's
/// `[services.*]` tables, [`with_protections`](Self::with_protections) puts a given one in
/// place (e.g. with a rate limiter shared by several processes), and the other constructors
/// start with fresh protections at the shipped defaults. A client whose configuration's
/// `[services.*]` differ from the handle's refuses every call, naming the key, rather than run
/// with settings it was not given.
///
/// ```
/// use encore_clients::{ApiKey, Config, Http, Service, SunoClient};
/// use encore_resilience::breaker::CircuitState;
///
/// let http = Http::service(tower::service_fn(|_req: http::Request<http_body_util::Full<bytes::Bytes>>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// }));
/// let config = Config::default();
/// let a = SunoClient::new(http.clone(), &config, ApiKey::new("k").unwrap());
/// let b = SunoClient::new(http.clone(), &config, ApiKey::new("k").unwrap());
/// // `a` and `b` share one breaker (and one budget and one rate limit): the handle's.
/// assert_eq!(http.circuit_state(Service::Suno), Some(CircuitState::Closed));
/// ```
#[derive(Clone)]
pub struct Http {
    inner: Arc<Transport>,
    protections: Protections,
}

enum Transport {
    Reqwest(reqwest::Client),
    Service(InMemory),
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.inner {
            Transport::Reqwest(_) => "reqwest",
            Transport::Service(_) => "in-memory service",
        };
        f.debug_struct("Http")
            .field("transport", &kind)
            .finish_non_exhaustive()
    }
}

/// A response whose body has been read completely.
#[derive(Debug, Clone)]
pub(crate) struct RawResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl RawResponse {
    #[cfg(test)]
    pub(crate) fn new(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        RawResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.into(),
        }
    }
}

mod sealed {
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use http_body_util::combinators::UnsyncBoxBody;

    use crate::error::BoxError;

    /// An `http::Response` whose body yields `Bytes`: what [`Http::service`](super::Http::service)
    /// accepts from a service.
    pub trait HttpResponse: Send + 'static {
        /// Boxes the body.
        fn into_boxed(self) -> http::Response<UnsyncBoxBody<Bytes, BoxError>>;
    }

    impl<B> HttpResponse for http::Response<B>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        fn into_boxed(self) -> http::Response<UnsyncBoxBody<Bytes, BoxError>> {
            self.map(|body| body.map_err(Into::into).boxed_unsync())
        }
    }
}

static SHARED: OnceLock<Http> = OnceLock::new();

const JSON: &str = "application/json";
const USER_AGENT_VALUE: &str = concat!("encore/", env!("CARGO_PKG_VERSION"));

impl Http {
    /// The process-wide client (the seed plan's `get_shared_client()`): one connection pool,
    /// rustls with the `ring` provider, a 10 s connect timeout. Built on first use.
    ///
    /// A `reqwest` client's pooled connections belong to the Tokio runtime that opened them; use
    /// one runtime per process (as encore does), or [`Http::with_connect_timeout`] per runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the TLS backend cannot be initialised.
    pub fn shared() -> Result<Http, Error> {
        if let Some(http) = SHARED.get() {
            return Ok(http.clone());
        }
        let http = Http::with_connect_timeout(DEFAULT_CONNECT_TIMEOUT)?;
        Ok(SHARED.get_or_init(|| http).clone())
    }

    /// The handle for `config`: the shared client when `http.connect_timeout` is the default
    /// (otherwise a new client with it), with fresh [`Protections`] built from its
    /// `[services.*]` tables.
    ///
    /// # Errors
    ///
    /// As [`Http::shared`]; [`ErrorKind::Config`] naming the key when a service policy is
    /// invalid.
    pub fn for_config(config: &Config) -> Result<Http, Error> {
        let protections = Protections::from_config(config)
            .map_err(|e| Error::local(ErrorKind::Config, e.to_string()).with_source(e))?;
        let http = if config.http.connect_timeout == DEFAULT_CONNECT_TIMEOUT {
            Http::shared()?
        } else {
            Http::with_connect_timeout(config.http.connect_timeout)?
        };
        Ok(http.with_protections(protections))
    }

    /// A new `reqwest` client (its own pool) with this connect timeout.
    ///
    /// # Errors
    ///
    /// As [`Http::shared`].
    pub fn with_connect_timeout(connect_timeout: Duration) -> Result<Http, Error> {
        // reqwest is built with `rustls-no-provider`: install ring as the process default unless
        // someone already installed a provider (the error only says one is installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .user_agent(USER_AGENT_VALUE)
            .build()
            .map_err(|e| {
                Error::local(ErrorKind::Config, "could not build the HTTP client")
                    .with_source(e.without_url())
            })?;
        Ok(Http::reqwest(client))
    }

    /// Uses this `reqwest` client (its timeouts, proxies and pool).
    pub fn reqwest(client: reqwest::Client) -> Http {
        Http::new(Transport::Reqwest(client))
    }

    /// An in-memory transport: any `tower` service from `http::Request<B>` to an
    /// `http::Response` with a `Bytes` body — the simulator's `axum::Router`, or a scripted
    /// `service_fn` in tests. Router-like services accept many body types, so name one:
    /// `Http::service::<_, axum::body::Body>(router)`.
    ///
    /// A service error counts as "never sent" when its source chain holds an I/O
    /// `ConnectionRefused`, `AddrNotAvailable` or `NotConnected` error, and as "may have run"
    /// otherwise; a failing response body always counts as "may have run".
    ///
    /// ```
    /// use bytes::Bytes;
    /// use encore_clients::Http;
    /// use http_body_util::Full;
    ///
    /// let http = Http::service(tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from("{}"))))
    /// }));
    /// assert_eq!(format!("{http:?}"), r#"Http { transport: "in-memory service", .. }"#);
    /// ```
    pub fn service<S, B>(service: S) -> Http
    where
        S: tower::Service<http::Request<B>> + Clone + Send + Sync + 'static,
        S::Response: sealed::HttpResponse,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: From<Bytes> + Send + 'static,
    {
        let service = service
            .map_request(|req: http::Request<Bytes>| req.map(B::from))
            .map_response(sealed::HttpResponse::into_boxed)
            .map_err(Into::into);
        Http::new(Transport::Service(BoxCloneSyncService::new(service)))
    }

    fn new(transport: Transport) -> Http {
        Http {
            inner: Arc::new(transport),
            protections: Protections::default(),
        }
    }

    /// The same transport with `protections` in place of the handle's: every client built on
    /// the result (and its clones) shares them.
    pub fn with_protections(mut self, protections: Protections) -> Http {
        self.protections = protections;
        self
    }

    /// The protections every client built on this handle shares.
    pub fn protections(&self) -> &Protections {
        &self.protections
    }

    /// The state of `service`'s circuit breaker (always `Some`; the `Option` is kept for
    /// callers written when breakers were created with the first client). An open circuit
    /// whose wait is over turns half-open here.
    pub fn circuit_state(&self, service: Service) -> Option<CircuitState> {
        Some(self.protections.get(service).breaker().state())
    }

    /// `service`'s circuit breaker (a handle: clones share its state), e.g. to add an
    /// [`on_state_change`](CircuitBreaker::on_state_change) hook.
    pub fn circuit_breaker(&self, service: Service) -> Option<CircuitBreaker> {
        Some(self.protections.get(service).breaker().clone())
    }

    /// `service`'s retry budget (a handle: clones share its bucket).
    pub fn retry_budget(&self, service: Service) -> Option<RetryBudget> {
        Some(self.protections.get(service).budget().clone())
    }

    /// Sends one request — `method` to `url`, with the `Authorization` header `auth`, JSON
    /// headers, and `body` — and reads the whole response. Failures are classified here: "never
    /// sent" ([`ErrorKind::Connect`], transient) or "may have run" ([`ErrorKind::Transport`] /
    /// [`ErrorKind::Timeout`]).
    ///
    /// For `reqwest` the request is built directly (one URL parse, no intermediate
    /// `http::Request`), and the response's headers are moved out, not copied.
    pub(crate) async fn send(
        &self,
        method: &Method,
        url: &str,
        auth: &HeaderValue,
        body: Option<&Bytes>,
    ) -> Result<RawResponse, Error> {
        match &*self.inner {
            Transport::Reqwest(client) => {
                let url = reqwest::Url::parse(url).map_err(|e| {
                    Error::new(ErrorKind::Config, Class::Permanent, "invalid request URL")
                        .with_source(e)
                })?;
                let mut request = reqwest::Request::new(method.clone(), url);
                let headers = request.headers_mut();
                headers.insert(AUTHORIZATION, auth.clone());
                headers.insert(ACCEPT, HeaderValue::from_static(JSON));
                // No `User-Agent` here: encore's clients set theirs once (`with_connect_timeout`);
                // a caller's client (`Http::reqwest`) sends its own. Every header is copied
                // several times inside reqwest and parsed by the server.
                if let Some(body) = body {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
                    *request.body_mut() = Some(reqwest::Body::from(body.clone()));
                }
                let mut response = client
                    .execute(request)
                    .await
                    .map_err(|e| reqwest_send_error(e.without_url()))?;
                let status = response.status();
                let headers = std::mem::take(response.headers_mut());
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| body_error(e.without_url().into()))?;
                Ok(RawResponse {
                    status,
                    headers,
                    body,
                })
            }
            Transport::Service(service) => {
                let mut builder = http::Request::builder()
                    .method(method.clone())
                    .uri(url)
                    .header(AUTHORIZATION, auth.clone())
                    .header(ACCEPT, JSON)
                    .header(USER_AGENT, USER_AGENT_VALUE);
                if body.is_some() {
                    builder = builder.header(CONTENT_TYPE, JSON);
                }
                let request = builder
                    .body(body.cloned().unwrap_or_default())
                    .map_err(|e| {
                        Error::new(ErrorKind::Config, Class::Permanent, "invalid request URL")
                            .with_source(e)
                    })?;
                let response = service
                    .clone()
                    .oneshot(request)
                    .await
                    .map_err(service_error)?;
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map_err(body_error)?.to_bytes();
                Ok(RawResponse {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                })
            }
        }
    }
}

/// The innermost cause's text, e.g. `Connection refused (os error 111)`.
fn root_text(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Whether a TLS failure (a bad certificate, no common protocol) is in the chain: the handshake
/// will fail the same way again, so it is not worth retrying.
fn is_tls_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(err) = current {
        if err.is::<rustls::Error>() {
            return true;
        }
        // io::Error's source() skips the error it wraps; look inside.
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some()
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// `reqwest` failed before a response head arrived.
fn reqwest_send_error(e: reqwest::Error) -> Error {
    if e.is_connect() && is_tls_failure(&e) {
        // Never sent, but the same handshake fails again: permanent.
        let detail = format!("TLS handshake failed: {}", root_text(&e));
        Error::new(ErrorKind::Connect, Class::Permanent, detail).with_source(e)
    } else if e.is_connect() {
        // DNS failure, refused, TLS handshake failure or connect timeout: nothing was sent.
        let detail = format!("could not connect: {}", root_text(&e));
        Error::new(ErrorKind::Connect, Class::Transient { after: None }, detail).with_source(e)
    } else if e.is_builder() {
        Error::new(ErrorKind::Config, Class::Permanent, "invalid request").with_source(e)
    } else if e.is_timeout() {
        // Only a caller-supplied reqwest client has its own timeouts.
        let detail = format!("request timed out: {}", root_text(&e));
        Error::new(
            ErrorKind::Timeout,
            Class::MayHaveRun { after: None },
            detail,
        )
        .with_source(e)
    } else {
        // The connection broke while sending or waiting for the answer: the server may have
        // received and processed the request.
        let detail = format!(
            "the connection failed after the request was sent: {}",
            root_text(&e)
        );
        Error::new(
            ErrorKind::Transport,
            Class::MayHaveRun { after: None },
            detail,
        )
        .with_source(e)
    }
}

/// The response head arrived but the body could not be read (reset, truncated, stalled stream).
fn body_error(e: BoxError) -> Error {
    let detail = format!("the response body could not be read: {}", root_text(&*e));
    Error::new(
        ErrorKind::Transport,
        Class::MayHaveRun { after: None },
        detail,
    )
    .with_source(e)
}

/// An in-memory service failed before answering.
fn service_error(e: BoxError) -> Error {
    let mut current: Option<&(dyn StdError + 'static)> = Some(&*e);
    let mut never_sent = false;
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            never_sent |= matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::NotConnected
            );
        }
        current = err.source();
    }
    if never_sent {
        let detail = format!("could not connect: {}", root_text(&*e));
        Error::new(ErrorKind::Connect, Class::Transient { after: None }, detail).with_source(e)
    } else {
        let detail = format!(
            "the connection failed after the request was sent: {}",
            root_text(&*e)
        );
        Error::new(
            ErrorKind::Transport,
            Class::MayHaveRun { after: None },
            detail,
        )
        .with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::io;

    use http_body_util::Full;

    use super::*;

    const URL: &str = "http://sim.test/v1/x";

    fn auth() -> HeaderValue {
        HeaderValue::from_static("Bearer k")
    }

    async fn send(http: &Http, url: &str) -> Result<RawResponse, Error> {
        http.send(
            &Method::POST,
            url,
            &auth(),
            Some(&Bytes::from_static(b"{}")),
        )
        .await
    }

    #[tokio::test]
    async fn in_memory_round_trip() {
        let http = Http::service(tower::service_fn(
            |req: http::Request<Full<Bytes>>| async move {
                assert_eq!(req.method(), Method::POST);
                assert_eq!(req.headers()[AUTHORIZATION], "Bearer k");
                assert_eq!(req.headers()[CONTENT_TYPE], JSON);
                assert_eq!(req.headers()[ACCEPT], JSON);
                let body = req.into_body().collect().await.unwrap().to_bytes();
                Ok::<_, Infallible>(
                    http::Response::builder()
                        .status(201)
                        .header("x-echo", "1")
                        .body(Full::new(body))
                        .unwrap(),
                )
            },
        ));
        let raw = send(&http, URL).await.unwrap();
        assert_eq!(raw.status, StatusCode::CREATED);
        assert_eq!(raw.headers["x-echo"], "1");
        assert_eq!(&raw.body[..], b"{}");
    }

    #[tokio::test]
    async fn refused_is_never_sent_and_other_service_errors_may_have_run() {
        let refused = Http::service(tower::service_fn(|_: http::Request<Full<Bytes>>| async {
            Err::<http::Response<Full<Bytes>>, _>(io::Error::from(io::ErrorKind::ConnectionRefused))
        }));
        let err = send(&refused, URL).await.unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Connect);
        assert_eq!(err.class(), Class::Transient { after: None });
        assert!(err.is_connect());

        let reset = Http::service(tower::service_fn(|_: http::Request<Full<Bytes>>| async {
            Err::<http::Response<Full<Bytes>>, _>(io::Error::from(io::ErrorKind::ConnectionReset))
        }));
        let err = send(&reset, URL).await.unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Transport);
        assert_eq!(err.class(), Class::MayHaveRun { after: None });
    }

    /// One chunk of body, then a connection reset.
    struct FailingBody(u8);

    impl http_body::Body for FailingBody {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
            self.0 += 1;
            std::task::Poll::Ready(match self.0 {
                1 => Some(Ok(http_body::Frame::data(Bytes::from_static(b"{\"id\":")))),
                2 => Some(Err(io::ErrorKind::ConnectionReset.into())),
                _ => None,
            })
        }
    }

    #[tokio::test]
    async fn a_failing_body_may_have_run() {
        let http = Http::service(tower::service_fn(|_: http::Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(http::Response::new(FailingBody(0)))
        }));
        let err = send(&http, URL).await.unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Transport);
        assert_eq!(err.class(), Class::MayHaveRun { after: None });
        assert!(err.to_string().contains("body could not be read"), "{err}");
        assert!(err.source().is_some());
    }

    #[test]
    fn tls_failures_are_found_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let io = io::Error::new(io::ErrorKind::InvalidData, tls);
        assert!(is_tls_failure(&io));
        let wrapped =
            Error::new(ErrorKind::Connect, Class::Transient { after: None }, "x").with_source(io);
        assert!(is_tls_failure(&wrapped));
        assert!(!is_tls_failure(&io::Error::from(
            io::ErrorKind::ConnectionRefused
        )));
    }

    #[test]
    fn the_shared_client_is_shared() {
        let a = Http::shared().unwrap();
        let b = Http::shared().unwrap();
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
        assert_eq!(format!("{a:?}"), r#"Http { transport: "reqwest", .. }"#);
    }

    #[tokio::test]
    async fn a_refused_socket_is_a_connect_error() {
        // Bind and drop a listener to find a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let http = Http::with_connect_timeout(Duration::from_secs(2)).unwrap();
        let err = send(&http, &format!("http://127.0.0.1:{port}/v1/x"))
            .await
            .unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Connect, "{err}");
        assert!(err.is_connect());
        assert!(
            !err.to_string().contains("127.0.0.1"),
            "no URL in errors: {err}"
        );
    }
}
