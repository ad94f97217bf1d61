//! Log capture, in its own test binary: tracing caches per-callsite interest process-wide, so
//! one global TRACE subscriber is installed once and the tests take turns (a mutex).

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use encore_clients::creatomate::{CreatomateClient, RenderRequest};
use encore_clients::openai::OpenAiClient;
use encore_clients::suno::{GenerateRequest, SunoClient};
use encore_clients::{ApiKey, Config, Error, Http};
use encore_sim::{DEMO_TEMPLATE_ID, Scenario, SimConfig, SimState};
use http_body_util::Full;

const KEY: &str = "sk-live-SENTINEL-c0ffee1234";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The global capture; the guard serializes the tests and starts each with an empty buffer.
async fn capture() -> (tokio::sync::MutexGuard<'static, ()>, Captured) {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    let guard = TURN.lock().await;
    let captured = CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(captured.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::TRACE)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            captured
        })
        .clone();
    captured.0.lock().unwrap().clear();
    (guard, captured)
}

fn text(captured: &Captured) -> String {
    String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
}

fn sim(scenario: &str) -> SimState {
    SimState::new(SimConfig {
        seed: 3,
        time_scale: 0.0,
        callbacks: false,
        scenario: Scenario::from_toml(scenario).unwrap(),
        ..SimConfig::default()
    })
}

fn config() -> Config {
    Config::default().with_base("http://sim.test")
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[expect(dead_code, reason = "only the schema of this type is used")]
struct Lyrics {
    title: String,
    lyrics: String,
}

#[tokio::test(start_paused = true)]
async fn every_retry_is_logged_with_attempt_delay_and_cause() {
    let (_turn, captured) = capture().await;
    let state = sim(
        "[routes.\"suno.record_info\"]\nsequence = [\"ok\", { kind = \"server_error\", status = 502 }, \"malformed_json\"]\n",
    );
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state));
    let suno = SunoClient::new(http, &config(), ApiKey::new(KEY).unwrap());
    let task = suno
        .generate(&GenerateRequest::simple("a song"))
        .await
        .unwrap();
    suno.task_status(&task).await.unwrap(); // "ok"
    suno.task_status(&task).await.unwrap(); // 502, malformed, then ok

    let text = text(&captured);
    let warns: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warns.len(), 2, "one WARN per retry:\n{text}");
    assert!(
        warns[0].contains("suno.status: attempt 1/3 failed, retrying in 1.0s: "),
        "{}",
        warns[0]
    );
    assert!(
        warns[0].contains("suno code 502 (server error)"),
        "the cause: {}",
        warns[0]
    );
    assert!(
        warns[1].contains("suno.status: attempt 2/3 failed, retrying in 2.0s: "),
        "{}",
        warns[1]
    );
    assert!(warns[1].contains("not a Suno envelope"), "{}", warns[1]);
    for field in [
        "attempt=1",
        "max_attempts=3",
        "delay_ms=1000",
        "server_requested=false",
    ] {
        assert!(warns[0].contains(field), "missing {field}: {}", warns[0]);
    }
    // The endpoint's span and the debug line with the full cause chain.
    assert!(
        warns[0].contains("encore_call{endpoint=\"suno.status\""),
        "{}",
        warns[0]
    );
    let scheduled: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("retry scheduled"))
        .collect();
    assert_eq!(scheduled.len(), 2, "{text}");
    assert!(scheduled[1].contains("cause_chain=["), "{}", scheduled[1]);
    assert!(!text.contains(" ERROR "), "nothing gave up:\n{text}");
}

/// A server that echoes the `Authorization` header back in every error format and, for Suno
/// record-info, inside a success body that does not decode (so the key lands in a serde error).
fn echo_server() -> Http {
    Http::service(tower::service_fn(
        |req: http::Request<Full<Bytes>>| async move {
            let auth = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let (status, body) = if req.uri().path().ends_with("record-info") {
                (
                    200,
                    serde_json::json!({"code": 200, "msg": "success", "data": auth}),
                )
            } else {
                let msg = format!("Incorrect API key provided: {auth}");
                (
                    401,
                    serde_json::json!({"code": 401, "msg": msg, "hint": msg, "error": {"message": msg, "type": "invalid_request_error", "code": "invalid_api_key"}}),
                )
            };
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .unwrap(),
            )
        },
    ))
}

fn assert_clean(err: &Error) {
    let mut all = format!("{err}\n{err:?}\n{:?}\n", err.server_message());
    let mut next = std::error::Error::source(err);
    while let Some(e) = next {
        let _ = write!(all, "{e}\n{e:?}\n");
        next = e.source();
    }
    assert!(!all.contains(KEY), "the key leaked:\n{all}");
    assert!(!all.contains("SENTINEL"), "part of the key leaked:\n{all}");
}

#[tokio::test(start_paused = true)]
async fn the_key_never_reaches_logs_or_errors_even_when_the_server_echoes_it() {
    let (_turn, captured) = capture().await;
    let key = ApiKey::new(KEY).unwrap();
    let mut errors = Vec::new();

    // 1. A server echoing the key.
    let http = echo_server();
    let openai = OpenAiClient::new(http.clone(), &config(), key.clone());
    let suno = SunoClient::new(http.clone(), &config(), key.clone());
    let creatomate = CreatomateClient::new(http.clone(), &config(), key.clone());
    errors.push(
        openai
            .structured::<Lyrics>("", "x", "song")
            .await
            .unwrap_err(),
    );
    errors.push(
        suno.generate(&GenerateRequest::simple("x"))
            .await
            .unwrap_err(),
    );
    errors.push(suno.task_status("t").await.unwrap_err());
    errors.push(creatomate.templates().await.unwrap_err());
    assert!(
        errors[0].server_message().unwrap().contains("***"),
        "the echo is redacted, not dropped"
    );

    // 2. Every endpoint against the hostile scenario.
    let state = sim(Scenario::named_source("hostile").unwrap());
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state));
    let openai = OpenAiClient::new(http.clone(), &config(), key.clone());
    let suno = SunoClient::new(http.clone(), &config(), key.clone());
    let creatomate = CreatomateClient::new(http, &config(), key.clone());
    let _ = openai
        .structured::<Lyrics>("", "x", "song")
        .await
        .map_err(|e| errors.push(e));
    let _ = suno
        .generate(&GenerateRequest::simple("x"))
        .await
        .map_err(|e| errors.push(e));
    let _ = suno.task_status("t").await.map_err(|e| errors.push(e));
    let _ = suno
        .timestamped_lyrics("t", "a")
        .await
        .map_err(|e| errors.push(e));
    let _ = suno.credits().await.map_err(|e| errors.push(e));
    let _ = creatomate.templates().await.map_err(|e| errors.push(e));
    let _ = creatomate
        .template(DEMO_TEMPLATE_ID)
        .await
        .map_err(|e| errors.push(e));
    let _ = creatomate
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
        .await
        .map_err(|e| errors.push(e));
    let _ = creatomate
        .render_status("r")
        .await
        .map_err(|e| errors.push(e));

    assert!(errors.len() >= 8, "{errors:?}");
    for err in &errors {
        assert_clean(err);
    }
    // Clients and keys print redacted, too.
    let debug = format!("{openai:?} {suno:?} {creatomate:?} {key:?} {key}");
    assert!(!debug.contains(KEY), "{debug}");

    let text = text(&captured);
    assert!(text.contains("TRACE"), "trace level was captured");
    assert!(text.contains("attempt starts"), "{text}");
    assert!(!text.contains(KEY), "the key leaked into the logs");
    assert!(
        !text.contains("SENTINEL"),
        "part of the key leaked into the logs"
    );
}
