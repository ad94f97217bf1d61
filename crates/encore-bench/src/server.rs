//! The loopback server every contender calls: a minimal axum app, so the figures do not depend
//! on the simulator's internals.
//!
//! Everything lives under Creatomate's `GET /v1/renders/{id}`, so the generic contenders and
//! encore's real `CreatomateClient::render_status` hit the very same URLs. The id picks the
//! behaviour:
//!
//! | id | answer |
//! |---|---|
//! | `fast` | 200, a small render JSON, at once |
//! | `slow-{k}` | 200 after 2 s (requests counted per `k`) |
//! | `ra-{…}` | first request: 429 + `Retry-After: 1`; later ones: 200 (the wait between is recorded) |
//! | `out-{k}` | always 503 (requests counted per `k`): a full outage |
//! | `park` | always 503 (requests counted): the memory scenario's first attempts |
//!
//! Error answers have empty bodies, so a client that drops them unread still keeps its
//! connection (no connection churn in the outage and memory scenarios).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The body of a successful render status.
pub const FAST_BODY: &str = r#"{"id":"fast","status":"succeeded","url":"https://cdn.example/fast.mp4","template_id":"bench","output_format":"mp4"}"#;

/// How long `slow-*` takes to answer.
pub const SLOW: Duration = Duration::from_secs(2);

/// The `Retry-After` the `ra-*` ids demand.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How many per-contender counters exist.
pub const SLOTS: usize = 16;

/// The server's counters, shared with the bench.
#[derive(Debug)]
pub struct ServerState {
    outage: Vec<AtomicU64>,
    slow: Vec<AtomicU64>,
    parked: AtomicU64,
    rate_limited: Mutex<HashMap<String, Visit>>,
}

#[derive(Debug, Clone, Copy)]
struct Visit {
    limited_at: Instant,
    retried_after: Option<Duration>,
}

impl ServerState {
    fn new() -> Self {
        Self {
            outage: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            slow: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            parked: AtomicU64::new(0),
            rate_limited: Mutex::new(HashMap::new()),
        }
    }

    /// Requests `out-{slot}` has received.
    pub fn outage_requests(&self, slot: usize) -> u64 {
        self.outage[slot].load(Ordering::Relaxed)
    }

    /// Requests `slow-{slot}` has received.
    pub fn slow_requests(&self, slot: usize) -> u64 {
        self.slow[slot].load(Ordering::Relaxed)
    }

    /// Requests `park` has received.
    pub fn parked_requests(&self) -> u64 {
        self.parked.load(Ordering::Relaxed)
    }

    /// For `ra-{id}`: the time between the 429 and the next request, as the server saw it.
    pub fn retry_after_wait(&self, id: &str) -> Option<Duration> {
        self.visits().get(id).and_then(|v| v.retried_after)
    }

    fn visits(&self) -> std::sync::MutexGuard<'_, HashMap<String, Visit>> {
        self.rate_limited
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running server on `127.0.0.1`.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:{port}`.
    pub base: String,
    /// Its counters.
    pub state: Arc<ServerState>,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds a free loopback port and serves on the current runtime.
    pub async fn start() -> std::io::Result<Server> {
        let state = Arc::new(ServerState::new());
        let app = Router::new()
            .route("/v1/renders/{id}", get(render))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Server {
            base: format!("http://{addr}"),
            state,
            task,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn slot(suffix: &str) -> Option<usize> {
    suffix.parse().ok().filter(|k| *k < SLOTS)
}

async fn render(State(state): State<Arc<ServerState>>, Path(id): Path<String>) -> Response {
    if id == "fast" {
        return json_ok();
    }
    if let Some(k) = id.strip_prefix("out-").and_then(slot) {
        state.outage[k].fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if id == "park" {
        state.parked.fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(k) = id.strip_prefix("slow-").and_then(slot) {
        state.slow[k].fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(SLOW).await;
        return json_ok();
    }
    if id.starts_with("ra-") {
        let now = Instant::now();
        let mut visits = state.visits();
        return match visits.get_mut(&id) {
            None => {
                visits.insert(
                    id,
                    Visit {
                        limited_at: now,
                        retried_after: None,
                    },
                );
                let secs = RETRY_AFTER.as_secs().to_string();
                let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&secs).expect("digits"),
                );
                response
            }
            Some(visit) => {
                visit
                    .retried_after
                    .get_or_insert(now.duration_since(visit.limited_at));
                json_ok()
            }
        };
    }
    StatusCode::NOT_FOUND.into_response()
}

fn json_ok() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        FAST_BODY,
    )
        .into_response()
}
