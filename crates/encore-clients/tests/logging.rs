//! Log and span capture, in its own test binary: tracing caches per-callsite interest
//! process-wide, so one global TRACE subscriber is installed once and the tests take turns (a
//! mutex).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

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

/// A span's name and fields (as recorded, later values included).
type SpanFields = (String, BTreeMap<String, String>);

/// Every span opened.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanFields>>>);

/// Where a span's fields are kept, in its extensions.
struct SpanIndex(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> tracing_subscriber::Layer<S> for Spans
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.0.lock().unwrap();
        spans.push((attrs.metadata().name().to_owned(), fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanIndex(spans.len() - 1));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(SpanIndex(index)) = span.extensions().get::<SpanIndex>().map(|i| SpanIndex(i.0))
        else {
            return;
        };
        values.record(&mut Fields(&mut self.0.lock().unwrap()[index].1));
    }
}

/// The global capture; the guard serializes the tests and starts each with empty buffers.
async fn capture() -> (tokio::sync::MutexGuard<'static, ()>, Captured) {
    let (guard, captured, _) = capture_spans().await;
    (guard, captured)
}

async fn capture_spans() -> (tokio::sync::MutexGuard<'static, ()>, Captured, Spans) {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    static CAPTURED: OnceLock<(Captured, Spans)> = OnceLock::new();
    let guard = TURN.lock().await;
    let (captured, spans) = CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let spans = Spans::default();
            let subscriber = tracing_subscriber::registry()
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(captured.clone())
                        .with_ansi(false),
                )
                .with(spans.clone())
                .with(tracing_subscriber::filter::LevelFilter::TRACE);
            tracing::subscriber::set_global_default(subscriber).unwrap();
            (captured, spans)
        })
        .clone();
    captured.0.lock().unwrap().clear();
    spans.0.lock().unwrap().clear();
    (guard, captured, spans)
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
        warns[0].contains("suno.status: attempt 1/3 failed, retrying in 1s: "),
        "{}",
        warns[0]
    );
    assert!(
        warns[0].contains("suno code 502 (server error)"),
        "the cause: {}",
        warns[0]
    );
    assert!(
        warns[1].contains("suno.status: attempt 2/3 failed, retrying in 2s: "),
        "{}",
        warns[1]
    );
    assert!(warns[1].contains("not a Suno envelope"), "{}", warns[1]);
    for field in [
        "operation=\"suno.status\"",
        "attempt=1",
        "max_attempts=3",
        "delay_ms=1000",
        "server_requested=false",
        "error_kind=status",
    ] {
        assert!(warns[0].contains(field), "missing {field}: {}", warns[0]);
    }
    // That WARN is the one report of each retry: the client does not log it again (its
    // observer hears it, see the clients' observer tests).
    let retry_lines = text
        .lines()
        .filter(|l| l.contains("retry") && !l.contains(" TRACE "))
        .count();
    assert_eq!(retry_lines, 2, "one line per retry:\n{text}");
    assert!(!text.contains(" ERROR "), "nothing gave up:\n{text}");
}

#[tokio::test(start_paused = true)]
async fn only_a_billed_success_after_a_lost_answer_says_an_earlier_attempt_may_be_billed() {
    const NOTE: &str = "an earlier attempt may also have been billed";
    let (_turn, captured) = capture().await;
    let scenario = "[routes.\"suno.generate\"]\nsequence = [\"ok\", \"reset_after_processing\"]\n\
                    [routes.\"suno.record_info\"]\nsequence = [{ kind = \"server_error\", status = 502 }]\n";
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(sim(scenario)));
    let mut config = config();
    config.endpoints.suno_generate.retry_ambiguous = true;
    let suno = SunoClient::new(http, &config, ApiKey::new(KEY).unwrap());
    let song = GenerateRequest::simple("a song");
    // A billed call that worked at once, and a read retried after a 502: nothing to say.
    let task = suno.generate(&song).await.unwrap();
    suno.task_status(&task).await.unwrap();
    assert!(!text(&captured).contains(NOTE), "{}", text(&captured));
    // A billed call replayed after its answer was lost (opted in): said once.
    suno.generate(&song).await.unwrap();
    let text = text(&captured);
    let notes: Vec<&str> = text.lines().filter(|l| l.contains(NOTE)).collect();
    assert_eq!(notes.len(), 1, "{text}");
    assert!(notes[0].contains(" INFO "), "{text}");
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

/// Issue 15 builds metrics and traces on this: each attempt is a span with OpenTelemetry's HTTP
/// client attribute names.
#[tokio::test(start_paused = true)]
async fn each_attempt_is_a_span_with_opentelemetry_http_attributes() {
    let (_turn, _captured, spans) = capture_spans().await;
    let state = sim(
        "[routes.\"creatomate.render_status\"]\nsequence = [{ kind = \"server_error\", status = 503 }, { kind = \"latency\", ms = 100000000 }]\n",
    );
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state));
    let creatomate = CreatomateClient::new(http, &config(), ApiKey::new(KEY).unwrap());
    let render = creatomate
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
        .await
        .unwrap();
    // 503, then a hang cut by the 30 s attempt timeout, then the answer.
    creatomate.render_status(&render.id).await.unwrap();

    let spans = spans.0.lock().unwrap().clone();
    let attempts: Vec<&BTreeMap<String, String>> = spans
        .iter()
        .filter(|(name, _)| name == "http_request")
        .map(|(_, fields)| fields)
        .collect();
    assert_eq!(
        attempts.len(),
        4,
        "the render and three status attempts: {spans:?}"
    );
    let field = |i: usize, name: &str| attempts[i].get(name).map(String::as_str);
    // The render: a POST, sent once.
    assert_eq!(field(0, "http.request.method"), Some("POST"));
    assert_eq!(field(0, "http.response.status_code"), Some("202"));
    assert_eq!(field(0, "http.request.resend_count"), None);
    for i in 1..4 {
        assert_eq!(field(i, "http.request.method"), Some("GET"));
        assert_eq!(field(i, "server.address"), Some("sim.test"));
        assert_eq!(field(i, "server.port"), Some("80"));
        assert!(
            field(i, "url.full")
                .unwrap()
                .starts_with("http://sim.test/v1/renders/"),
            "{:?}",
            field(i, "url.full")
        );
        assert_eq!(field(i, "otel.kind"), Some("client"));
        assert_eq!(field(i, "encore.endpoint"), Some("creatomate.status"));
        assert!(field(i, "url.path").unwrap().starts_with("/v1/renders/"));
    }
    // First status attempt: a 503.
    assert_eq!(field(1, "http.response.status_code"), Some("503"));
    assert_eq!(field(1, "error.type"), Some("503"));
    assert_eq!(field(1, "http.request.resend_count"), None);
    // Second: no answer before its timeout.
    assert_eq!(field(2, "http.request.resend_count"), Some("1"));
    assert_eq!(field(2, "error.type"), Some("timeout"));
    assert_eq!(field(2, "http.response.status_code"), None);
    // Third: the answer.
    assert_eq!(field(3, "http.request.resend_count"), Some("2"));
    assert_eq!(field(3, "http.response.status_code"), Some("200"));
    assert_eq!(field(3, "error.type"), None);
}
