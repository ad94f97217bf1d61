//! `encore serve`: the pipeline as an HTTP service (`shared/design/service.md`, "The HTTP API").
//!
//! One process serves the API and runs a worker over the job store: `POST /v1/jobs` stores a
//! job, the worker claims it and runs it under a lease (several processes can share one
//! PostgreSQL store), and provider callbacks (`/hooks/…`) resolve lost answers and wake waiting
//! steps. On shutdown the worker stops claiming, running jobs stop at their next safe point
//! (their steps are stored; the jobs are queued again), and the process exits within the grace
//! period.

mod api;
mod callbacks;
mod config;
pub mod doc;
mod error;
mod hooks;
mod metrics;
mod openapi;
mod page;
mod schema;
mod token;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use encore_clients::{Config, Http};
use encore_pipeline::{Keys, PipelineConfig, TemplateChecks};
use encore_store::Store;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use config::{SecretText, ServeConfig, ServeConfigError};
pub use openapi::openapi_json;
pub use token::CallbackSecret;

use error::ApiError;

/// The name of the shared setting that holds the callback secret.
const CALLBACK_SECRET_SETTING: &str = "callback_secret";

/// What every request handler and the worker share.
pub(crate) struct Shared {
    store: Store,
    config: ServeConfig,
    clients: Config,
    http: Http,
    keys: Keys,
    pipeline: PipelineConfig,
    /// The template checks every job's pipeline shares (`pipeline.template_check_ttl`).
    template_checks: TemplateChecks,
    public_url: Option<String>,
    secret: CallbackSecret,
    hub: callbacks::Hub,
    metrics: Arc<metrics::Metrics>,
    owner: String,
    /// Whether the last store operation worked (readiness).
    store_ok: AtomicBool,
    /// A job was created or requeued: an idle worker looks at once.
    new_job: Notify,
    /// Shutdown: the worker stops claiming; event streams end.
    shutdown: watch::Sender<bool>,
    /// Stops the running jobs at their next safe point.
    stop_jobs: watch::Sender<bool>,
}

/// Everything `encore serve` needs.
#[derive(Debug)]
pub struct ServerParts {
    /// The job store (SQLite: the caller holds its worker lock).
    pub store: Store,
    /// `[serve]`.
    pub config: ServeConfig,
    /// The clients' configuration.
    pub clients: Config,
    /// The HTTP client, with the protections of `clients`.
    pub http: Http,
    /// The API keys.
    pub keys: Keys,
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// The name this worker claims jobs under (e.g. `serve:host:pid`).
    pub owner: String,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A `[serve]` value is unusable.
    #[error(transparent)]
    Config(#[from] ServeConfigError),
    /// The store could not give the callback secret.
    #[error("cannot read the callback secret from the job store: {0}")]
    Store(#[source] encore_store::Error),
    /// The listener failed.
    #[error("the server failed: {0}")]
    Io(#[source] std::io::Error),
}

/// A running server; [`shutdown`](Self::shutdown) stops it gracefully.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    http: JoinHandle<std::io::Result<()>>,
    worker: JoinHandle<()>,
    follower: JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store)
            .field("owner", &self.owner)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// A pipeline for one job run or one callback check, its calls counted by the metrics, and
    /// its template check shared with the worker's other jobs.
    fn pipeline(&self) -> encore_pipeline::Pipeline {
        encore_pipeline::Pipeline::new(
            &self.http,
            &self.clients,
            self.keys.clone(),
            self.pipeline.clone(),
        )
        .with_template_checks(self.template_checks.clone())
        .observe_calls(Arc::clone(&self.metrics) as Arc<dyn encore_clients::CallObserver>)
    }
}

impl RunningServer {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops claiming jobs, stops running ones at their next safe point (within the grace
    /// period; they are queued again), ends event streams, and returns when the server and the
    /// worker have stopped.
    ///
    /// # Errors
    ///
    /// When the HTTP server failed.
    pub async fn shutdown(self) -> std::io::Result<()> {
        tracing::info!("shutting down");
        self.shared.shutdown.send_replace(true);
        self.shared.stop_jobs.send_replace(true);
        let _ = self.worker.await;
        self.follower.abort();
        match self.http.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Starts serving on `listener`. Callbacks go to `config.public_url` when one is set (else
/// jobs poll only). The callback secret is `config.callback_secret`, or one shared by every
/// worker of the store (made by the first).
///
/// # Errors
///
/// A [`ServeError`] for an unusable `[serve]` value or an unreadable store.
pub async fn start(listener: TcpListener, parts: ServerParts) -> Result<RunningServer, ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Io)?;
    let mut config = parts.config;
    config.listen = addr;
    config.validate()?;
    let secret = match &config.callback_secret {
        Some(secret) => secret.expose().to_owned(),
        None => parts
            .store
            .setting_or_insert(CALLBACK_SECRET_SETTING, &CallbackSecret::generate())
            .await
            .map_err(ServeError::Store)?,
    };
    let secret = CallbackSecret::new(&secret).map_err(|reason| ServeConfigError {
        key: "callback_secret",
        reason: reason.to_owned(),
    })?;
    let (shutdown, _) = watch::channel(false);
    let (stop_jobs, _) = watch::channel(false);
    let metrics = Arc::new(metrics::Metrics::new());
    metrics.watch_breakers(&parts.http);
    let shared = Arc::new(Shared {
        public_url: config
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_owned()),
        store: parts.store,
        clients: parts.clients,
        http: parts.http,
        keys: parts.keys,
        pipeline: parts.pipeline,
        template_checks: TemplateChecks::new(),
        secret,
        hub: callbacks::Hub::default(),
        metrics,
        owner: parts.owner,
        store_ok: AtomicBool::new(true),
        new_job: Notify::new(),
        shutdown,
        stop_jobs,
        config,
    });
    let app = router(Arc::clone(&shared));
    let mut stopping = shared.shutdown.subscribe();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|s| *s).await;
            })
            .await
    });
    let worker = tokio::spawn(worker::run(Arc::clone(&shared)));
    if let Some(retention) = shared.config.retention {
        tokio::spawn(retain(Arc::clone(&shared), retention));
    }
    let follower = tokio::spawn(callbacks::follow_callbacks(
        shared.store.clone(),
        shared.hub.clone(),
        Duration::from_secs(1),
    ));
    tracing::info!(%addr, callbacks = shared.public_url.is_some(), "encore serve listening");
    Ok(RunningServer {
        addr,
        shared,
        http,
        worker,
        follower,
    })
}

/// How often a worker with `serve.retention` removes the jobs that have aged past it.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Removes the succeeded and cancelled jobs older than `retention`, at start and every
/// [`RETENTION_INTERVAL`], until shutdown. Every worker does: their purges skip each other's
/// rows, and a failed purge is tried again at the next round.
async fn retain(shared: Arc<Shared>, retention: Duration) {
    let mut stopping = shared.shutdown.subscribe();
    loop {
        let purge = encore_store::Purge::older_than(retention, false);
        match shared.store.purge(&purge).await {
            Ok(purged) if purged.total() > 0 => tracing::info!(
                jobs = purged.total(),
                retention = %humantime::format_duration(retention),
                "finished jobs past serve.retention removed"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(
                %error,
                "removing finished jobs past serve.retention failed; trying again in an hour"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(RETENTION_INTERVAL) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// The routes: `/v1` and `/metrics` (bearer token when configured, request timeout), the
/// status page (`/`, `/jobs/{id}` and its event stream: the same token, or the page's
/// sign-in cookie), `/hooks` (the URL's token is the credential), `/healthz`, `/readyz`,
/// `/openapi.json`.
fn router(shared: Arc<Shared>) -> Router {
    let limit = DefaultBodyLimit::max(shared.config.body_limit);
    let api = Router::new()
        .route("/v1/jobs", post(api::create_job).get(api::list_jobs))
        .route("/v1/jobs/{id}", get(api::get_job))
        .route("/v1/jobs/{id}/cancel", post(api::cancel_job))
        .route("/v1/jobs/{id}/resolve", post(api::resolve_job))
        .route("/metrics", get(scrape))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), timeout));
    let events = Router::new().route("/v1/jobs/{id}/events", get(api::job_events));
    let protected = api
        .merge(events)
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), auth));
    let pages = Router::new()
        .route("/", get(page::index))
        .route("/jobs/{id}", get(page::job))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), timeout))
        .route("/jobs/{id}/events", get(api::job_events))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            page::guard,
        ))
        .route("/signin", post(page::sign_in));
    let hooks = Router::new()
        .route("/hooks/suno/{job}/{token}", post(hooks::suno))
        .route("/hooks/creatomate/{job}/{token}", post(hooks::creatomate))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), timeout));
    Router::new()
        .merge(protected)
        .merge(pages)
        .merge(hooks)
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/openapi.json", get(openapi::serve))
        .fallback(not_found)
        .layer(limit)
        .with_state(shared)
}

/// Prometheus metrics in the OpenMetrics text format (see the README's table); the job counts
/// are read from the store when scraped (left out when it does not answer).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "the metrics", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn scrape(State(shared): State<Arc<Shared>>) -> Response {
    let census = match shared.store.census().await {
        Ok(census) => Some(census),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the store's job counts could not be read");
            None
        }
    };
    let text = shared.metrics.render(census.as_ref(), &shared.http);
    ([(http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route.not_found", "no such route")
}

/// The bearer token, when one is configured (compared in constant time).
async fn auth(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if let Some(token) = &shared.config.api_token {
        let given = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(given) = given else {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.required",
                "this API needs `Authorization: Bearer <token>`",
            )
            .into_response();
        };
        if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "auth.invalid", "wrong token")
                .into_response();
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Bounds one request's time on the server side.
async fn timeout(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(shared.config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request.timeout",
            "the request took too long",
        )
        .into_response(),
    }
}
