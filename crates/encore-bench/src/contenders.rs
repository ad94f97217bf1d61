//! The contenders: six ways to make the same call over one shared `reqwest::Client`.
//!
//! Every contender fetches `GET {base}/v1/renders/{id}`, checks the status, reads the body and
//! decodes the JSON, under the same [`Setup`] (retries, first wait, ×2 growth, no jitter,
//! per-attempt timeout, optional overall deadline), each with its library's own idiom:
//!
//! | contender | retry | per-attempt timeout | overall deadline |
//! |---|---|---|---|
//! | raw reqwest | none | — | `RequestBuilder::timeout` |
//! | reqwest-retry | `RetryTransientMiddleware` + `ExponentialBackoff` | `RequestBuilder::timeout` | `tokio::time::timeout` around the call |
//! | backon | `Retryable::retry(ExponentialBuilder)` + `when` + `adjust` (Retry-After) | `RequestBuilder::timeout` | `tokio::time::timeout` around the call |
//! | tower::retry | `Retry<Policy, Timeout<reqwest::Client>>`, a hand-written `Policy` (Retry-After) | `TimeoutLayer` | `tokio::time::timeout` around the call |
//! | encore | `Retry::new(&policy).run(…)` with a `Classify` error | the policy's | the policy's |
//! | encore client | `CreatomateClient::render_status` (config-driven policy) | the config's | the config's |
//!
//! encore's client also carries its per-service retry budget and circuit breaker in the happy
//! path and the outage (its defaults), and none elsewhere (see [`Setup::client_guards`]); its
//! client-side rate limit is off throughout.
//!
//! "encore +budget+breaker" is the encore row with a shared `RetryBudget` and `CircuitBreaker`, encore's
//! recommended set-up per upstream; the other libraries have no built-in equivalent (tower ships a
//! `TpsBudget` that a `Policy` can consult by hand; it is not wired here). Two controls sit
//! beside raw reqwest: the same raw path measured again (A/A, the noise floor) and raw reqwest
//! with `RequestBuilder::timeout` (the price of one tokio timer per call, which every contender
//! with a per-attempt timeout pays).
//!
//! Where a contender can honour `Retry-After` (backon through `adjust`, tower through its
//! `Policy`, encore), the same header parser is used, so only the honouring is compared.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use encore_clients::config::ServicePolicy;
use encore_clients::{ApiKey, Config, CreatomateClient, Endpoint, Http, Protections, Service};
use encore_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, CircuitOpen};
use encore_resilience::budget::{RetryBudget, RetryBudgetConfig};
use encore_resilience::{
    AttemptTimedOut, Classify, Decision, Jitter, Retry, RetryError, RetryPolicy, parse_retry_after,
};
use reqwest::StatusCode;
use reqwest_middleware::ClientWithMiddleware;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use serde::{Deserialize, Serialize};
use tower::retry::Policy;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, ServiceBuilder, ServiceExt};

/// One way of making the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Contender {
    /// `client.get(url).send()`, no retry.
    Raw,
    /// The same as `Raw`, measured as a separate row: an A/A control that shows the noise.
    RawAgain,
    /// `Raw` plus `RequestBuilder::timeout`: the price of one tokio timer per call.
    RawTimeout,
    /// reqwest-middleware + reqwest-retry.
    ReqwestRetry,
    /// backon.
    Backon,
    /// tower::retry.
    Tower,
    /// The resilience core's `Retry` loop.
    Encore,
    /// `Retry` with a shared `RetryBudget` and `CircuitBreaker`.
    EncoreGuarded,
    /// `Retry` with a shared `RetryBudget` only (amplification only).
    EncoreBudget,
    /// encore's real client path: `CreatomateClient::render_status`.
    EncoreClient,
}

impl Contender {
    /// Every contender, in table order (the controls included).
    pub const ALL: [Contender; 10] = [
        Contender::Raw,
        Contender::RawAgain,
        Contender::RawTimeout,
        Contender::ReqwestRetry,
        Contender::Backon,
        Contender::Tower,
        Contender::Encore,
        Contender::EncoreGuarded,
        Contender::EncoreBudget,
        Contender::EncoreClient,
    ];

    /// Those that retry (every scenario about retries skips `Raw`).
    pub const RETRYING: [Contender; 5] = [
        Contender::ReqwestRetry,
        Contender::Backon,
        Contender::Tower,
        Contender::Encore,
        Contender::EncoreClient,
    ];

    /// The row label.
    pub const fn label(self) -> &'static str {
        match self {
            Contender::Raw => "raw reqwest",
            Contender::RawAgain => "raw reqwest (A/A)",
            Contender::RawTimeout => "raw + timeout",
            Contender::ReqwestRetry => "reqwest-retry",
            Contender::Backon => "backon",
            Contender::Tower => "tower::retry",
            Contender::Encore => "encore Retry",
            Contender::EncoreGuarded => "encore +budget+breaker",
            Contender::EncoreBudget => "encore +budget",
            Contender::EncoreClient => "encore client",
        }
    }

    /// The JSON / command-line key.
    pub const fn key(self) -> &'static str {
        match self {
            Contender::Raw => "raw",
            Contender::RawAgain => "raw_again",
            Contender::RawTimeout => "raw_timeout",
            Contender::ReqwestRetry => "reqwest_retry",
            Contender::Backon => "backon",
            Contender::Tower => "tower",
            Contender::Encore => "encore",
            Contender::EncoreGuarded => "encore_guarded",
            Contender::EncoreBudget => "encore_budget",
            Contender::EncoreClient => "encore_client",
        }
    }

    /// A small stable index (server counters, rotation).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether the overall deadline is applied from outside (`tokio::time::timeout`) because
    /// the library has no deadline of its own.
    pub const fn external_deadline(self) -> bool {
        matches!(
            self,
            Contender::ReqwestRetry | Contender::Backon | Contender::Tower
        )
    }
}

/// The policy every contender follows in one scenario.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Retries on top of the first attempt.
    pub max_retries: u32,
    /// The first wait; each next one doubles (no jitter).
    pub base_delay: Duration,
    /// Cap on one wait.
    pub max_delay: Duration,
    /// Bound on one attempt.
    pub attempt_timeout: Duration,
    /// Bound on the whole call, when the scenario has one.
    pub deadline: Option<Duration>,
    /// Whether encore's client keeps its per-service retry budget and circuit breaker (its
    /// defaults). Off where they would change what is measured: a breaker opened by the
    /// deadline scenario's timeouts would fail later calls fast, and the budget's floor would
    /// stop the 10,000 parked calls from retrying. The client-side rate limit (30 requests per
    /// 10 s for Creatomate) is always off: it is a quota, not a cost.
    pub client_guards: bool,
}

impl Setup {
    /// 3 retries waiting `base`, `2·base`, `4·base`; `attempt_timeout` per attempt.
    pub const fn new(base_delay: Duration, attempt_timeout: Duration) -> Setup {
        Setup {
            max_retries: 3,
            base_delay,
            max_delay: Duration::from_secs(30),
            attempt_timeout,
            deadline: None,
            client_guards: false,
        }
    }

    /// Keeps encore's client's budget and breaker on.
    pub const fn with_client_guards(mut self) -> Setup {
        self.client_guards = true;
        self
    }

    /// Adds an overall deadline.
    pub const fn with_deadline(mut self, deadline: Duration) -> Setup {
        self.deadline = Some(deadline);
        self
    }

    /// The waits before each retry.
    pub fn waits(&self) -> impl Iterator<Item = Duration> + '_ {
        (0..self.max_retries).map(|k| (self.base_delay * 2u32.pow(k)).min(self.max_delay))
    }
}

/// The decoded answer (the generic contenders; the client decodes its own richer type).
#[derive(Debug, Deserialize)]
pub struct Render {
    /// The render id.
    pub id: String,
    /// Its status.
    pub status: String,
}

/// The generic contenders' error: small, classified, with its cause kept.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A non-2xx answer.
    #[error("http {status}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The server's requested wait, if any.
        retry_after: Option<Duration>,
    },
    /// Nothing was sent.
    #[error("could not connect")]
    Connect(#[source] reqwest::Error),
    /// The exchange failed after sending (or reqwest's own timeout fired).
    #[error("transport failure")]
    Transport(#[source] reqwest::Error),
    /// The retry loop's per-attempt timeout.
    #[error(transparent)]
    AttemptTimedOut(#[from] AttemptTimedOut),
    /// An overall deadline applied from outside the library.
    #[error("deadline exceeded")]
    Deadline,
    /// The body is not the JSON expected.
    #[error("invalid JSON")]
    Decode(#[source] serde_json::Error),
    /// The circuit breaker refused the call.
    #[error(transparent)]
    CircuitOpen(#[from] CircuitOpen),
    /// reqwest-middleware's error.
    #[error("middleware failure")]
    Middleware(#[source] reqwest_middleware::Error),
    /// tower's boxed error.
    #[error("service failure")]
    Service(#[source] BoxError),
}

impl BenchError {
    fn reqwest(error: reqwest::Error) -> BenchError {
        if error.is_connect() {
            BenchError::Connect(error)
        } else {
            BenchError::Transport(error)
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            BenchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// 408, 429 and 5xx say "not now"; other statuses are the request's fault.
fn is_transient_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

impl Classify for BenchError {
    fn classify(&self) -> Decision {
        match self {
            // Rate limited or overloaded: retry, after the server's wait when it gave one.
            BenchError::Status {
                status,
                retry_after,
            } if is_transient_status(*status) => {
                retry_after.map_or(Decision::Retry, Decision::RetryAfter)
            }
            // Connect failures never sent anything; the rest is a GET, safe to replay.
            BenchError::Connect(_) | BenchError::Transport(_) | BenchError::AttemptTimedOut(_) => {
                Decision::Retry
            }
            // The request is wrong, the answer is garbled, or we were told to stop.
            BenchError::Status { .. }
            | BenchError::Deadline
            | BenchError::Decode(_)
            | BenchError::CircuitOpen(_)
            | BenchError::Middleware(_)
            | BenchError::Service(_) => Decision::Stop,
        }
    }
}

/// Checks the status, reads the body, decodes it. Error answers are read too (they are empty),
/// so their connection goes back to the pool.
async fn finish(response: reqwest::Response) -> Result<Render, BenchError> {
    let status = response.status();
    if !status.is_success() {
        let retry_after = parse_retry_after(response.headers(), SystemTime::now());
        let _ = response.bytes().await;
        return Err(BenchError::Status {
            status,
            retry_after,
        });
    }
    let body = response.bytes().await.map_err(BenchError::reqwest)?;
    serde_json::from_slice(&body).map_err(BenchError::Decode)
}

/// One plain attempt (raw reqwest without its own timeout; encore's loop bounds it).
async fn fetch(client: &reqwest::Client, url: &str) -> Result<Render, BenchError> {
    let response = client.get(url).send().await.map_err(BenchError::reqwest)?;
    finish(response).await
}

/// tower's retry policy, as a tower user writes it: `retries` more tries, doubling waits,
/// honouring `Retry-After` on 429/503.
#[derive(Clone, Debug)]
pub struct TowerPolicy {
    retries_left: u32,
    next_delay: Duration,
    max_delay: Duration,
}

impl Policy<reqwest::Request, reqwest::Response, BoxError> for TowerPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut reqwest::Request,
        result: &mut Result<reqwest::Response, BoxError>,
    ) -> Option<Self::Future> {
        let server_wait = match result {
            Ok(response) if is_transient_status(response.status()) => {
                parse_retry_after(response.headers(), SystemTime::now())
            }
            Err(error) if is_transient_box(error.as_ref()) => None,
            Ok(_) | Err(_) => return None,
        };
        if self.retries_left == 0 {
            return None;
        }
        self.retries_left -= 1;
        let wait = server_wait.unwrap_or(self.next_delay);
        self.next_delay = (self.next_delay * 2).min(self.max_delay);
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &reqwest::Request) -> Option<reqwest::Request> {
        request.try_clone()
    }
}

fn is_transient_box(error: &(dyn StdError + Send + Sync + 'static)) -> bool {
    if error.is::<tower::timeout::error::Elapsed>() {
        return true;
    }
    error
        .downcast_ref::<reqwest::Error>()
        .is_some_and(|e| e.is_connect() || e.is_timeout() || e.is_request())
}

type TowerService = tower::retry::Retry<TowerPolicy, tower::timeout::Timeout<reqwest::Client>>;

/// A URL and the id in it.
#[derive(Clone, Debug)]
pub struct Target {
    /// The render id (what the client is given).
    pub id: Arc<str>,
    /// `{base}/v1/renders/{id}` (what the generic contenders are given).
    pub url: Arc<str>,
}

/// Every contender, built for one [`Setup`] around one shared `reqwest::Client`.
#[derive(Debug)]
pub struct Stack {
    setup: Setup,
    base: String,
    client: reqwest::Client,
    middleware: ClientWithMiddleware,
    backoff: ExponentialBuilder,
    tower: TowerService,
    policy: RetryPolicy,
    budget: RetryBudget,
    breaker: CircuitBreaker,
    creatomate: CreatomateClient,
}

/// Receives a contender's call as an owned future (spawned, or measured).
pub trait Sink {
    /// What taking the future yields.
    type Out;
    /// Takes the future.
    fn take<F: Future<Output = bool> + Send + 'static>(self, future: F) -> Self::Out;
}

/// Spawns the future on the runtime.
#[derive(Debug)]
pub struct Spawn;

impl Sink for Spawn {
    type Out = tokio::task::JoinHandle<bool>;
    fn take<F: Future<Output = bool> + Send + 'static>(self, future: F) -> Self::Out {
        tokio::spawn(future)
    }
}

impl Stack {
    /// Builds every contender for `setup`, sharing `client`.
    pub fn new(client: &reqwest::Client, base: &str, setup: Setup) -> anyhow::Result<Stack> {
        let retry_policy = ExponentialBackoff::builder()
            .retry_bounds(setup.base_delay, setup.max_delay)
            .jitter(reqwest_retry::Jitter::None)
            .base(2)
            .build_with_max_retries(setup.max_retries);
        let middleware = reqwest_middleware::ClientBuilder::new(client.clone())
            .with(RetryTransientMiddleware::new_with_policy(retry_policy))
            .build();

        let backoff = ExponentialBuilder::new()
            .with_min_delay(setup.base_delay)
            .with_max_delay(setup.max_delay)
            .with_factor(2.0)
            .with_max_times(setup.max_retries as usize);

        let tower = ServiceBuilder::new()
            .layer(tower::retry::RetryLayer::new(TowerPolicy {
                retries_left: setup.max_retries,
                next_delay: setup.base_delay,
                max_delay: setup.max_delay,
            }))
            .layer(TimeoutLayer::new(setup.attempt_timeout))
            .service(client.clone());

        let deadline = setup
            .deadline
            .unwrap_or(encore_resilience::defaults::DEFAULT_DEADLINE);
        let policy = RetryPolicy::new()
            .with_max_retries(setup.max_retries)
            .with_base_delay(setup.base_delay)
            .with_max_delay(setup.max_delay)
            .with_multiplier(2.0)
            .with_jitter(Jitter::None)
            .with_attempt_timeout(setup.attempt_timeout.min(deadline))
            .with_deadline(deadline);
        policy.validate()?;
        let budget = RetryBudget::new("bench", RetryBudgetConfig::default())?;
        let breaker = CircuitBreaker::new("bench", CircuitBreakerConfig::default())?;

        let mut config = Config::default().with_base(base);
        let endpoint = config.endpoints.get_mut(Endpoint::CreatomateStatus);
        endpoint.enabled = true;
        endpoint.max_retries = setup.max_retries;
        endpoint.base_delay = setup.base_delay;
        endpoint.max_delay = setup.max_delay;
        endpoint.multiplier = 2.0;
        endpoint.jitter = Jitter::None;
        endpoint.attempt_timeout = policy.attempt_timeout;
        endpoint.deadline = deadline;
        let mut protections = ServicePolicy::default_for(Service::Creatomate);
        if !setup.client_guards {
            protections = protections.without_protections();
        }
        protections.rate_limit.enabled = false;
        config.services.creatomate = protections;
        config.validate()?;
        let http =
            Http::reqwest(client.clone()).with_protections(Protections::from_config(&config)?);
        let creatomate = CreatomateClient::new(http, &config, ApiKey::new("bench-key")?);

        Ok(Stack {
            setup,
            base: base.to_owned(),
            client: client.clone(),
            middleware,
            backoff,
            tower,
            policy,
            budget,
            breaker,
            creatomate,
        })
    }

    /// The setup.
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The target for render `id`.
    pub fn target(&self, id: &str) -> Target {
        Target {
            id: Arc::from(id),
            url: Arc::from(format!("{}/v1/renders/{id}", self.base)),
        }
    }

    /// raw reqwest: one request; the overall deadline, if any, as reqwest's own timeout.
    pub async fn raw(&self, url: &str) -> Result<Render, BenchError> {
        let mut request = self.client.get(url);
        if let Some(deadline) = self.setup.deadline {
            request = request.timeout(deadline);
        }
        let response = request.send().await.map_err(BenchError::reqwest)?;
        finish(response).await
    }

    /// raw reqwest with the per-attempt timeout as reqwest's own timeout (one timer per call).
    pub async fn raw_timeout(&self, url: &str) -> Result<Render, BenchError> {
        let response = self
            .client
            .get(url)
            .timeout(self.setup.attempt_timeout)
            .send()
            .await
            .map_err(BenchError::reqwest)?;
        finish(response).await
    }

    /// reqwest-middleware + reqwest-retry (its default transient classification).
    pub async fn reqwest_retry(&self, url: &str) -> Result<Render, BenchError> {
        let response = self
            .middleware
            .get(url)
            .timeout(self.setup.attempt_timeout)
            .send()
            .await
            .map_err(BenchError::Middleware)?;
        finish(response).await
    }

    /// backon, honouring `Retry-After` through `adjust`.
    pub async fn backon(&self, url: &str) -> Result<Render, BenchError> {
        let timeout = self.setup.attempt_timeout;
        (|| async move {
            let response = self
                .client
                .get(url)
                .timeout(timeout)
                .send()
                .await
                .map_err(BenchError::reqwest)?;
            finish(response).await
        })
        .retry(self.backoff)
        .when(|e: &BenchError| e.classify().is_retry())
        .adjust(|e: &BenchError, next| next.map(|d| e.retry_after().unwrap_or(d)))
        .await
    }

    /// tower::retry around `reqwest::Client` as a `Service`.
    pub async fn tower(&self, url: &str) -> Result<Render, BenchError> {
        let request = self.client.get(url).build().map_err(BenchError::reqwest)?;
        let response = self
            .tower
            .clone()
            .oneshot(request)
            .await
            .map_err(BenchError::Service)?;
        finish(response).await
    }

    /// The resilience core's loop.
    pub async fn encore(&self, url: &str) -> Result<Render, RetryError<BenchError>> {
        Retry::new(&self.policy)
            .name("bench.fetch")
            .run(|_| fetch(&self.client, url))
            .await
    }

    /// The core's loop with the upstream's shared budget and breaker.
    pub async fn encore_guarded(&self, url: &str) -> Result<Render, RetryError<BenchError>> {
        Retry::new(&self.policy)
            .name("bench.fetch")
            .budget(&self.budget)
            .breaker(&self.breaker)
            .run(|_| fetch(&self.client, url))
            .await
    }

    /// The core's loop with the upstream's shared budget (no breaker).
    pub async fn encore_budget(&self, url: &str) -> Result<Render, RetryError<BenchError>> {
        Retry::new(&self.policy)
            .name("bench.fetch")
            .budget(&self.budget)
            .run(|_| fetch(&self.client, url))
            .await
    }

    /// encore's real client.
    pub async fn client(
        &self,
        id: &str,
    ) -> Result<encore_clients::creatomate::Render, encore_clients::Error> {
        self.creatomate.render_status(id).await
    }

    /// Makes one call with `contender`; the error as text.
    pub async fn call(&self, contender: Contender, target: &Target) -> Result<(), String> {
        match contender {
            Contender::Raw | Contender::RawAgain => {
                self.raw(&target.url).await.map(drop).map_err(text)
            }
            Contender::RawTimeout => self.raw_timeout(&target.url).await.map(drop).map_err(text),
            Contender::ReqwestRetry => self
                .reqwest_retry(&target.url)
                .await
                .map(drop)
                .map_err(text),
            Contender::Backon => self.backon(&target.url).await.map(drop).map_err(text),
            Contender::Tower => self.tower(&target.url).await.map(drop).map_err(text),
            Contender::Encore => self.encore(&target.url).await.map(drop).map_err(text),
            Contender::EncoreGuarded => self
                .encore_guarded(&target.url)
                .await
                .map(drop)
                .map_err(text),
            Contender::EncoreBudget => self
                .encore_budget(&target.url)
                .await
                .map(drop)
                .map_err(text),
            Contender::EncoreClient => self.client(&target.id).await.map(drop).map_err(text),
        }
    }

    /// Like [`call`](Self::call), with the setup's overall deadline applied from outside for
    /// the libraries that have none of their own.
    pub async fn call_bounded(&self, contender: Contender, target: &Target) -> Result<(), String> {
        match self.setup.deadline {
            Some(deadline) if contender.external_deadline() => {
                tokio::time::timeout(deadline, self.call(contender, target))
                    .await
                    .unwrap_or_else(|_| Err(BenchError::Deadline.to_string()))
            }
            _ => self.call(contender, target).await,
        }
    }

    /// `std::mem::size_of_val` of one call's future, as returned by the contender (not polled).
    pub fn future_size(&self, contender: Contender, target: &Target) -> usize {
        let (url, id) = (&*target.url, &*target.id);
        match contender {
            Contender::Raw | Contender::RawAgain => size_of_val(&self.raw(url)),
            Contender::RawTimeout => size_of_val(&self.raw_timeout(url)),
            Contender::ReqwestRetry => size_of_val(&self.reqwest_retry(url)),
            Contender::Backon => size_of_val(&self.backon(url)),
            Contender::Tower => size_of_val(&self.tower(url)),
            Contender::Encore => size_of_val(&self.encore(url)),
            Contender::EncoreGuarded => size_of_val(&self.encore_guarded(url)),
            Contender::EncoreBudget => size_of_val(&self.encore_budget(url)),
            Contender::EncoreClient => size_of_val(&self.client(id)),
        }
    }

    /// Hands one call of `contender` to `sink` as an owned `'static` future (true on success).
    pub fn owned<S: Sink>(
        self: &Arc<Self>,
        contender: Contender,
        target: &Target,
        sink: S,
    ) -> S::Out {
        let (stack, target) = (Arc::clone(self), target.clone());
        match contender {
            Contender::Raw | Contender::RawAgain => {
                sink.take(async move { stack.raw(&target.url).await.is_ok() })
            }
            Contender::RawTimeout => {
                sink.take(async move { stack.raw_timeout(&target.url).await.is_ok() })
            }
            Contender::ReqwestRetry => {
                sink.take(async move { stack.reqwest_retry(&target.url).await.is_ok() })
            }
            Contender::Backon => sink.take(async move { stack.backon(&target.url).await.is_ok() }),
            Contender::Tower => sink.take(async move { stack.tower(&target.url).await.is_ok() }),
            Contender::Encore => sink.take(async move { stack.encore(&target.url).await.is_ok() }),
            Contender::EncoreGuarded => {
                sink.take(async move { stack.encore_guarded(&target.url).await.is_ok() })
            }
            Contender::EncoreBudget => {
                sink.take(async move { stack.encore_budget(&target.url).await.is_ok() })
            }
            Contender::EncoreClient => {
                sink.take(async move { stack.client(&target.id).await.is_ok() })
            }
        }
    }
}

/// An error and its causes on one line.
pub fn text(error: impl StdError) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
