//! An embedded simulator of the three paid APIs encore uses — the OpenAI Responses API,
//! Suno (via sunoapi.org) and Creatomate — with scripted, seeded faults.
//!
//! encore must run, be tested and be demonstrated with no API keys and no network, so it
//! carries this simulator: an axum server on loopback that speaks the services' wire
//! formats closely enough that a client written against the real docs works against it
//! unchanged, and that can be told to misbehave in every way the real services (and
//! networks) do. `encore demo` runs the whole pipeline against it; users can point their
//! own tools at it.
//!
//! All three services share one port:
//!
//! | service | base URL | endpoints |
//! |---|---|---|
//! | OpenAI | `{base}/v1` | `POST /v1/responses` |
//! | Suno | `{base}/api/v1` | `POST /generate`, `GET /generate/record-info?taskId=`, `POST /generate/get-timestamped-lyrics`, `GET /generate/credit` |
//! | Creatomate | `{base}/v1` | `POST /v1/renders`, `GET /v1/renders/{id}`, `GET /v1/templates`, `GET /v1/templates/{id}` |
//! | simulator | `{base}/__sim` | `GET /__sim/health`, `GET /__sim/ledger`, `GET`/`PUT /__sim/scenario`, `GET /__sim/files/…` |
//!
//! - [`app`] builds the [`axum::Router`]; tests can call it in memory as a tower service
//!   (with paused tokio time: every timeline uses `tokio::time`).
//! - [`serve`] binds `127.0.0.1:<port>` (0 = a free port) and returns a [`RunningSim`].
//! - [`Scenario`] says which [`Fault`]s each route ([`RouteId`]) suffers: a sequence
//!   ("the 1st and 2nd calls fail like X, then normal"), a seeded probability mix, an
//!   outage window; how the *n*th OpenAI response, Suno task or Creatomate render ends
//!   ([`OpenaiOutcome`], [`SunoOutcome`], [`RenderOutcome`]); how loose the *n*th
//!   timestamped-lyrics answer is ([`TimestampedLyricsOutcome`]); and how hostile callback
//!   delivery is ([`CallbackFaults`]: duplicate, out of order, late, dropped). `calm`,
//!   `flaky`, `outage` and `hostile` ship ([`Scenario::named`]).
//! - Suno callbacks (`callBackUrl`, stages `text`, `first`, `complete` or `error`) and
//!   Creatomate webhooks (`webhook_url`, once, on success or failure) are POSTed at the
//!   virtual instants their stages happen.
//! - The [`Ledger`] records every request (route, attempt, fault, rate-limit refusal), every
//!   billed job with its exact ready time, and every callback attempt, so tests can prove
//!   "no duplicate billed job", "no rate-limit refusal" or "every callback answered 200"
//!   from the server's side, and benchmarks can compute an ideal makespan.
//!
//! # Example
//!
//! ```
//! use encore_sim::{Scenario, SimConfig, SimState, serve};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> std::io::Result<()> {
//!     let config = SimConfig {
//!         time_scale: 0.01, // a 2.5-minute Suno generation takes 1.5 s
//!         scenario: Scenario::named("flaky").expect("shipped scenario"),
//!         ..SimConfig::default()
//!     };
//!     let sim = serve(SimState::new(config), "127.0.0.1:0".parse().unwrap()).await?;
//!     let base = sim.base_url(); // "http://127.0.0.1:PORT"
//!     assert!(base.starts_with("http://127.0.0.1:"));
//!     // point the OpenAI client at {base}/v1, Suno at {base}/api/v1, Creatomate at {base}/v1
//!     assert_eq!(sim.ledger().requests.len(), 0);
//!     sim.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! # Choices where the upstream docs are UNCONFIRMED
//!
//! The documented behaviour is the default; the alternative is a [`SimConfig`] switch:
//! Suno errors travel as HTTP 200 + body `code` (`suno_errors_as_http_status`), Suno's
//! generate rate limit answers body code 430 (`suno_rate_limit_code = 405`), Suno
//! `createTime` is a string (`suno_create_time_as_number`), `/generate` rejects V6 models
//! (`suno_accept_v6_models`), Creatomate 429s carry no `Retry-After`
//! (`creatomate_retry_after`), an unknown Creatomate template is a 404
//! (`creatomate_unknown_template_status = 400`), an unknown Suno task id is body code 400
//! "Invalid parameters" (`suno_unknown_task_code = 404`), a CALLBACK_EXCEPTION reported
//! before the audio exists stays the status (`suno_callback_exception_recovers`), and a
//! just-created task or render is visible at once (`suno_task_visible_after_s`,
//! `creatomate_render_visible_after_s`: for that long it answers exactly like an unknown
//! id — Suno's unknown-task envelope, Creatomate's HTTP 404 `{hint}`).
//!
//! Where no switch is worth having, the simulator picks one plausible behaviour: Suno
//! retries a failed callback [`SUNO_CALLBACK_RETRIES`] times,
//! [`CALLBACK_RETRY_DELAY_S`] virtual seconds apart, then stops sending that task's
//! callbacks (the docs: "if 3 consecutive retries fail, the system will stop sending
//! callbacks"; the delay is not documented); Creatomate tries a webhook once (no retry
//! policy is documented); the `first` callback lists the tracks as `record-info` does at
//! that moment (stream URLs, `audio_url: ""`); a modification that names no element, or
//! no property of the named element, is ignored (Creatomate v1) and listed in the
//! ledger's [`BilledJob::ignored_modifications`]; a text element's `transcript_source` set to
//! word-timing keyframes is rendered as subtitle lines, listed in [`BilledJob::subtitles`]
//! (any other `transcript_source` string is accepted, no transcription is simulated).

#![warn(missing_docs)]

mod admin;
mod auth;
mod callback;
mod config;
pub mod creatomate;
mod fault;
mod fault_engine;
mod ids;
mod inject;
mod ledger;
pub mod openai;
mod outcome;
mod ratelimit;
mod request_ctx;
mod route;
mod scenario;
mod schema_gen;
mod server;
mod state;
pub mod suno;
mod text;
mod timefmt;

use axum::Router;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};

pub use crate::callback::{CALLBACK_RETRY_DELAY_S, CALLBACK_TIMEOUT, SUNO_CALLBACK_RETRIES};
pub use crate::config::{
    CREATOMATE_CREDITS_PER_RENDER, ConfigError, DEFAULT_CREATOMATE_CREDITS,
    DEFAULT_CREATOMATE_UNKNOWN_TEMPLATE_STATUS, DEFAULT_SEED, DEFAULT_SUNO_CREDITS,
    DEFAULT_SUNO_RATE_LIMIT_CODE, DEFAULT_SUNO_UNKNOWN_TASK_CODE, DEFAULT_TIME_SCALE,
    SUNO_CREDITS_PER_GENERATE, SimConfig,
};
pub use crate::creatomate::templates::{DEMO_TEMPLATE_ID, VERTICAL_TEMPLATE_ID};
pub use crate::fault::{DEFAULT_RETRY_AFTER_S, DEFAULT_STALL_AFTER_BYTES, DEFAULT_STALL_MS, Fault};
pub use crate::inject::ConnectionDropped;
pub use crate::ledger::{BilledJob, CallbackRecord, JobKind, Ledger, RequestRecord, SubtitleLine};
pub use crate::outcome::{
    CallbackFaults, CreatomateScenario, DEFAULT_CALLBACK_LATE_BY_S, OpenaiOutcome, OpenaiScenario,
    RenderOutcome, SunoOutcome, SunoScenario, TimestampedLyricsOutcome,
};
pub use crate::route::{RouteId, UnknownRoute, Upstream};
pub use crate::scenario::{FaultRule, MixEntry, OutageWindow, Scenario, ScenarioError};
pub use crate::server::{RunningSim, SHUTDOWN_GRACE, serve};
pub use crate::state::{FALLBACK_BASE_URL, SimState};

/// The simulator's router: all three services, `/__sim/*`, and a fallback that answers
/// unknown paths in the format of the service the path belongs to.
///
/// Serve it with [`serve`] for real sockets, or call it in memory as a tower service; in
/// memory, connection-level faults surface as body errors (see [`ConnectionDropped`]).
pub fn app(state: SimState) -> Router {
    let faulty = |route: RouteId, method_router: MethodRouter<SimState>| {
        method_router.route_layer(middleware::from_fn_with_state(
            (state.clone(), route),
            inject::middleware,
        ))
    };
    Router::new()
        .route(
            "/v1/responses",
            faulty(RouteId::OpenaiResponses, post(openai::create_response)),
        )
        .route(
            "/api/v1/generate",
            faulty(RouteId::SunoGenerate, post(suno::generate)),
        )
        .route(
            "/api/v1/generate/record-info",
            faulty(RouteId::SunoRecordInfo, get(suno::record_info)),
        )
        .route(
            "/api/v1/generate/get-timestamped-lyrics",
            faulty(
                RouteId::SunoTimestampedLyrics,
                post(suno::timestamped_lyrics),
            ),
        )
        .route(
            "/api/v1/generate/credit",
            faulty(RouteId::SunoCredit, get(suno::credit)),
        )
        .route(
            "/v1/renders",
            faulty(RouteId::CreatomateRender, post(creatomate::create_render)),
        )
        .route(
            "/v1/renders/{id}",
            faulty(RouteId::CreatomateRenderStatus, get(creatomate::get_render)),
        )
        .route(
            "/v1/templates",
            faulty(
                RouteId::CreatomateTemplates,
                get(creatomate::list_templates),
            ),
        )
        .route(
            "/v1/templates/{id}",
            faulty(RouteId::CreatomateTemplate, get(creatomate::get_template)),
        )
        .route("/__sim/health", get(admin::health))
        .route("/__sim/ledger", get(admin::ledger))
        .route(
            "/__sim/scenario",
            get(admin::get_scenario).put(admin::put_scenario),
        )
        .route("/__sim/files/{kind}/{file}", get(admin::file))
        .fallback(admin::fallback)
        .with_state(state)
}
