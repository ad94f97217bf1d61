//! Every fault kind, observed by a plain reqwest client (or a raw socket) over real
//! loopback HTTP; plus their in-memory forms and seeded determinism.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use encore_sim::{
    Fault, FaultRule, MixEntry, OutageWindow, RouteId, RunningSim, Scenario, SimConfig, SimState,
    serve,
};
use serde_json::{Value, json};

use crate::support::{KEY, call, client, fast, sim};

async fn start(route: RouteId, rule: FaultRule, config: SimConfig) -> RunningSim {
    let config = SimConfig {
        scenario: Scenario::default().with_route(route, rule),
        ..config
    };
    serve(SimState::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn start_seq(route: RouteId, faults: Vec<Fault>) -> RunningSim {
    start(route, FaultRule::sequence(faults), fast()).await
}

fn generate_body() -> Value {
    json!({
        "customMode": true, "instrumental": false, "model": "V4_5",
        "callBackUrl": "https://example.test/cb", "prompt": "[Verse]\nla la la",
        "style": "pop", "title": "La"
    })
}

fn openai_body() -> Value {
    json!({ "model": "gpt-4o", "input": "a song for a bakery" })
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(" <- ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[tokio::test]
async fn status_with_chosen_headers_and_body() {
    let mut headers = BTreeMap::new();
    headers.insert("x-should-retry".to_owned(), "true".to_owned());
    headers.insert("retry-after".to_owned(), "2".to_owned());
    let sim = start_seq(
        RouteId::CreatomateTemplates,
        vec![
            Fault::Status {
                status: 503,
                headers,
                body: None,
                after_processing: false,
            },
            Fault::Status {
                status: 418,
                headers: BTreeMap::new(),
                body: Some(json!("<html>teapot</html>")),
                after_processing: false,
            },
        ],
    )
    .await;
    let url = format!("{}/v1/templates", sim.base_url());
    let c = client();
    let r = c.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-should-retry"], "true");
    assert_eq!(r.headers()["retry-after"], "2");
    let body: Value = r.json().await.unwrap();
    assert!(body["hint"].is_string(), "Creatomate format: {body}");
    let r = c.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 418);
    assert_eq!(r.text().await.unwrap(), "<html>teapot</html>");
    let r = c.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 200, "then normal");
    let ledger = sim.ledger();
    let faults = ledger.faults_for(RouteId::CreatomateTemplates);
    assert_eq!(
        faults,
        vec![Some("status:503".into()), Some("status:418".into()), None]
    );
    let attempts: Vec<u64> = ledger
        .requests_for(RouteId::CreatomateTemplates)
        .map(|r| r.attempt)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    sim.shutdown().await;
}

#[tokio::test]
async fn openai_rate_limits_and_quota() {
    let sim = start_seq(
        RouteId::OpenaiResponses,
        vec![
            Fault::openai_rate_limit_ms(250),
            Fault::openai_rate_limit_s(1),
            Fault::openai_insufficient_quota(),
            Fault::server_error_should_retry(503, false),
        ],
    )
    .await;
    let url = format!("{}/v1/responses", sim.base_url());
    let c = client();
    let send = || c.post(&url).bearer_auth(KEY).json(&openai_body()).send();

    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after-ms"], "250");
    assert!(r.headers().contains_key("x-request-id"));
    assert!(r.headers().contains_key("x-ratelimit-remaining-requests"));
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "rate_limit_exceeded");
    for k in ["message", "type", "param", "code"] {
        assert!(e["error"].get(k).is_some(), "missing {k}");
    }

    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");

    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    assert!(r.headers().get("retry-after-ms").is_none());
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "insufficient_quota");
    assert_eq!(e["error"]["code"], "insufficient_quota");

    let r = send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-should-retry"], "false");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "server_error");

    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(sim.ledger().openai_responses, 1, "rejections bill nothing");
    sim.shutdown().await;
}

#[tokio::test]
async fn suno_body_codes_respect_the_http_status_switch() {
    let sim = start_seq(
        RouteId::SunoGenerate,
        vec![Fault::suno_code(430), Fault::suno_code(455)],
    )
    .await;
    let url = format!("{}/api/v1/generate", sim.base_url());
    let c = client();
    let r = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&generate_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["code"].as_u64(), v["data"].is_null()), (Some(430), true));
    let v: Value = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&generate_body())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["code"], 455);
    assert_eq!(sim.ledger().suno_tasks, 0);
    sim.shutdown().await;

    let sim = start(
        RouteId::SunoGenerate,
        FaultRule::sequence([Fault::suno_code(430)]),
        SimConfig {
            suno_errors_as_http_status: true,
            ..fast()
        },
    )
    .await;
    let r = c
        .post(format!("{}/api/v1/generate", sim.base_url()))
        .bearer_auth(KEY)
        .json(&generate_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 430);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 430);
    sim.shutdown().await;
}

#[tokio::test]
async fn creatomate_retry_after_seconds_and_http_date() {
    let sim = start_seq(
        RouteId::CreatomateRender,
        vec![
            Fault::creatomate_rate_limit(1),
            Fault::creatomate_rate_limit_http_date(3),
        ],
    )
    .await;
    let url = format!("{}/v1/renders", sim.base_url());
    let c = client();
    let body = json!({ "template_id": encore_sim::DEMO_TEMPLATE_ID });
    let r = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.json::<Value>().await.unwrap()["hint"].is_string());
    let r = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let date = httpdate::parse_http_date(r.headers()["retry-after"].to_str().unwrap()).unwrap();
    let ahead = date
        .duration_since(SystemTime::now())
        .unwrap()
        .as_secs_f64();
    assert!((2.0..=5.0).contains(&ahead), "{ahead}");
    let r = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(sim.ledger().creatomate_renders, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn server_error_in_suno_format() {
    let sim = start_seq(
        RouteId::SunoCredit,
        vec![Fault::server_error_should_retry(500, true)],
    )
    .await;
    let c = client();
    let r = c
        .get(format!("{}/api/v1/generate/credit", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["x-should-retry"], "true");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 500);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_the_response_head() {
    let sim = start_seq(RouteId::SunoCredit, vec![Fault::latency(150)]).await;
    let c = client();
    let url = format!("{}/api/v1/generate/credit", sim.base_url());
    let t = Instant::now();
    let r = c.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 200);
    c.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(
        sim.ledger().faults_for(RouteId::SunoCredit),
        vec![Some("latency:150ms".into()), None]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn stall_after_part_of_the_body() {
    let sim = start_seq(
        RouteId::SunoCredit,
        vec![Fault::stall_body(10, 400), Fault::stall_body(10, 300)],
    )
    .await;
    let url = format!("{}/api/v1/generate/credit", sim.base_url());
    let _ = client();
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .read_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let r = impatient.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 200, "the head arrives");
    let err = r.bytes().await.unwrap_err();
    assert!(err.is_timeout(), "{}", chain(&err));
    let t = Instant::now();
    let r = client().get(&url).bearer_auth(KEY).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    sim.shutdown().await;
}

/// Sends a raw HTTP/1.1 request and reads until EOF or error: (bytes, error kind).
async fn raw(addr: SocketAddr, request: String) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e.kind())),
            }
        }
    })
    .await
    .unwrap()
}

fn post_request(path: &str, body: &Value) -> String {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_before_request_bills_nothing() {
    let sim = start_seq(
        RouteId::SunoGenerate,
        vec![Fault::ResetBeforeRequest, Fault::ResetBeforeRequest],
    )
    .await;
    let (bytes, err) = raw(
        sim.addr(),
        post_request("/api/v1/generate", &generate_body()),
    )
    .await;
    assert!(
        bytes.is_empty(),
        "no answer at all: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        err,
        Some(std::io::ErrorKind::ConnectionReset),
        "a TCP reset"
    );
    let url = format!("{}/api/v1/generate", sim.base_url());
    let err = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&generate_body())
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status() && !err.is_connect(), "{}", chain(&err));
    let ledger = sim.ledger();
    assert_eq!(ledger.suno_tasks, 0);
    assert!(
        ledger
            .requests
            .iter()
            .all(|r| r.status.is_none() && r.job_id.is_none())
    );
    let r = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&generate_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 200);
    assert_eq!(sim.ledger().suno_tasks, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_processing_creates_the_job_but_never_answers() {
    let sim = start_seq(
        RouteId::SunoGenerate,
        vec![Fault::ResetAfterProcessing, Fault::ResetAfterProcessing],
    )
    .await;
    let (bytes, err) = raw(
        sim.addr(),
        post_request("/api/v1/generate", &generate_body()),
    )
    .await;
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(err, Some(std::io::ErrorKind::ConnectionReset));
    let url = format!("{}/api/v1/generate", sim.base_url());
    let err = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&generate_body())
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status(), "{}", chain(&err));
    let ledger = sim.ledger();
    assert_eq!(ledger.suno_tasks, 2, "both jobs exist and are billed");
    for r in &ledger.requests {
        assert_eq!(r.fault.as_deref(), Some("reset_after_processing"));
        assert!(r.status.is_none() && r.job_id.is_some());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_json_is_a_200_with_broken_json() {
    let sim = start_seq(RouteId::SunoCredit, vec![Fault::MalformedJson]).await;
    let r = client()
        .get(format!("{}/api/v1/generate/credit", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_closes_early() {
    let sim = start_seq(
        RouteId::SunoCredit,
        vec![Fault::truncated_body(), Fault::truncated_body()],
    )
    .await;
    let request = format!(
        "GET /api/v1/generate/credit HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    );
    let (bytes, _err) = raw(sim.addr(), request).await;
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head arrived");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let declared: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length declared");
    assert!(
        !body.is_empty() && body.len() < declared,
        "{} of {declared}",
        body.len()
    );
    let r = client()
        .get(format!("{}/api/v1/generate/credit", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let err = r.bytes().await.unwrap_err();
    assert!(err.is_body() || err.is_decode(), "{}", chain(&err));
    sim.shutdown().await;
}

#[tokio::test]
async fn outage_window_fails_every_call() {
    let rule = FaultRule::outage(OutageWindow::forever());
    let sim = start(RouteId::CreatomateRender, rule, fast()).await;
    let c = client();
    for _ in 0..3 {
        let r = c
            .post(format!("{}/v1/renders", sim.base_url()))
            .bearer_auth(KEY)
            .json(&json!({ "template_id": encore_sim::DEMO_TEMPLATE_ID }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.json::<Value>().await.unwrap()["hint"].is_string());
    }
    assert_eq!(sim.ledger().creatomate_renders, 0);
    assert!(
        sim.ledger()
            .requests
            .iter()
            .all(|r| r.fault.as_deref() == Some("window:outage"))
    );
    sim.shutdown().await;

    // a window in virtual seconds: time_scale 0.002 makes [0, 250) last 500 ms
    let rule = FaultRule::outage(OutageWindow {
        from_s: 0.0,
        to_s: Some(250.0),
        fault: Fault::Outage,
    });
    let config = SimConfig {
        time_scale: 0.002,
        ..fast()
    };
    let sim = start(RouteId::SunoCredit, rule, config).await;
    let url = format!("{}/api/v1/generate/credit", sim.base_url());
    assert_eq!(
        c.get(&url).bearer_auth(KEY).send().await.unwrap().status(),
        503
    );
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_eq!(
        c.get(&url).bearer_auth(KEY).send().await.unwrap().status(),
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn same_seed_same_fault_sequence() {
    let rule = FaultRule {
        mix: vec![
            MixEntry {
                p: 0.3,
                fault: Fault::server_error(500),
            },
            MixEntry {
                p: 0.2,
                fault: Fault::MalformedJson,
            },
        ],
        ..FaultRule::default()
    };
    let run = |seed: u64| {
        let rule = rule.clone();
        async move {
            let sim = start(RouteId::SunoCredit, rule, SimConfig { seed, ..fast() }).await;
            let c = client();
            let url = format!("{}/api/v1/generate/credit", sim.base_url());
            let mut statuses = Vec::new();
            for _ in 0..30 {
                let r = c.get(&url).bearer_auth(KEY).send().await.unwrap();
                statuses.push(r.status().as_u16());
            }
            let faults = sim.ledger().faults_for(RouteId::SunoCredit);
            sim.shutdown().await;
            (statuses, faults)
        }
    };
    let a = run(11).await;
    assert_eq!(a, run(11).await);
    assert_ne!(a.1, run(12).await.1);
    let injected = a.1.iter().filter(|f| f.is_some()).count();
    assert!((5..=25).contains(&injected), "{injected}");
}

#[tokio::test(start_paused = true)]
async fn in_memory_connection_faults_are_body_errors() {
    let scenario = Scenario::default()
        .with_route(
            RouteId::SunoGenerate,
            FaultRule::sequence([Fault::ResetBeforeRequest, Fault::ResetAfterProcessing]),
        )
        .with_route(
            RouteId::SunoCredit,
            FaultRule::sequence([Fault::truncated_body(), Fault::stall_body(5, 60_000)]),
        );
    let (state, router) = sim(SimConfig { scenario, ..fast() });
    let r = call(
        &router,
        "POST",
        "/api/v1/generate",
        Some(KEY),
        Some(generate_body()),
    )
    .await;
    assert!(
        r.body.as_ref().unwrap_err().contains("ConnectionReset"),
        "{:?}",
        r.body
    );
    assert_eq!(
        r.dropped,
        Some(encore_sim::ConnectionDropped { processed: false })
    );
    assert_eq!(state.ledger().suno_tasks, 0);
    let r = call(
        &router,
        "POST",
        "/api/v1/generate",
        Some(KEY),
        Some(generate_body()),
    )
    .await;
    assert!(r.body.is_err());
    assert_eq!(
        r.dropped,
        Some(encore_sim::ConnectionDropped { processed: true })
    );
    assert_eq!(state.ledger().suno_tasks, 1);
    let r = call(&router, "GET", "/api/v1/generate/credit", Some(KEY), None).await;
    assert!(
        r.body.as_ref().unwrap_err().contains("UnexpectedEof"),
        "{:?}",
        r.body
    );
    let t = tokio::time::Instant::now();
    let r = call(&router, "GET", "/api/v1/generate/credit", Some(KEY), None).await;
    assert_eq!(r.json()["code"], 200);
    assert!(t.elapsed() >= Duration::from_secs(60), "virtual stall");
}
