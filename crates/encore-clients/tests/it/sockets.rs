//! Real sockets, real time, millisecond-scale policies: connection-level faults as a client
//! sees them over TCP, timeouts within generous bounds, connect failures.

use std::time::{Duration, Instant};

use encore_clients::suno::GenerateRequest;
use encore_clients::{Endpoint, ErrorKind, Http};
use encore_sim::{RouteId, SimState, serve};

use crate::billing::{billed_call, check};
use crate::support::{always, clients, fast, sequence, sim};

async fn start(state: SimState) -> (encore_sim::RunningSim, Http) {
    let running = serve(state, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    (running, client())
}

/// A client of the test's own: pooled connections belong to the runtime that opened them.
/// (Building one loads the platform's root certificates: do it once per test, not per task.)
fn client() -> Http {
    Http::with_connect_timeout(Duration::from_secs(1)).unwrap()
}

async fn serve_only(state: SimState) -> encore_sim::RunningSim {
    serve(state, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Connection-level faults, as TCP shows them (stalls far longer than any attempt timeout).
const CONNECTION_FAULTS: &[&str] = &[
    "\"reset_before_request\"",
    "\"reset_after_processing\"",
    "\"truncated_body\"",
    "{ kind = \"stall_body\", after_bytes = 4, ms = 30000 }",
    "{ kind = \"latency\", ms = 30000 }",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_faults_over_tcp_never_bill_twice() {
    let http = client();
    let mut cases = Vec::new();
    for route in ["suno.generate", "creatomate.render"] {
        for fault in CONNECTION_FAULTS {
            let http = http.clone();
            cases.push(tokio::spawn(async move {
                let running = serve_only(sim(&always(route, fault))).await;
                // A 1 s attempt timeout: long enough that, on a busy machine, the request has
                // certainly reached the simulator before a stalled attempt is abandoned.
                let mut config = fast(&running.base_url());
                for endpoint in [Endpoint::SunoGenerate, Endpoint::CreatomateRender] {
                    config.endpoints.get_mut(endpoint).attempt_timeout = Duration::from_secs(1);
                }
                let c = clients(&http, &config);
                let started = Instant::now();
                let result = billed_call(&c, route).await;
                let took = started.elapsed();
                check(route, fault, &result, &running.ledger());
                let err = result.expect_err("every call suffers the fault");
                // Not replayed: one attempt, bounded by the attempt timeout.
                assert_eq!(err.attempts(), 1, "{route} {fault}: {err}");
                assert_eq!(*err.kind(), ErrorKind::Ambiguous, "{route} {fault}: {err}");
                // Generous: a loaded 2-core CI machine has taken 3.0 s here.
                assert!(took < Duration::from_secs(10), "{route} {fault}: {took:?}");
                let served = running.ledger().count(route.parse::<RouteId>().unwrap());
                assert_eq!(served, 1, "{route} {fault}: {err:?}");
            }));
        }
    }
    for case in cases {
        case.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_recover_from_connection_faults_over_tcp() {
    let http = client();
    let mut cases = Vec::new();
    for fault in CONNECTION_FAULTS {
        let http = http.clone();
        cases.push(tokio::spawn(async move {
            let running = serve_only(sim(&sequence("suno.credit", fault))).await;
            let c = clients(&http, &fast(&running.base_url()));
            let credits = c
                .suno
                .credits()
                .await
                .unwrap_or_else(|e| panic!("{fault}: {e}"));
            assert!(credits > 0);
            assert_eq!(running.ledger().count(RouteId::SunoCredit), 2, "{fault}");
        }));
    }
    for case in cases {
        case.await.unwrap();
    }
}

#[tokio::test]
async fn a_timeout_over_tcp_raises_within_its_bound() {
    let (running, http) = start(sim(&always(
        "creatomate.render_status",
        "{ kind = \"latency\", ms = 5000 }",
    )))
    .await;
    let mut config = fast(&running.base_url());
    let p = &mut config.endpoints.creatomate_status;
    p.attempt_timeout = Duration::from_millis(100);
    p.max_retries = 2;
    let c = clients(&http, &config);
    let started = Instant::now();
    let err = c.creatomate.render_status("r-1").await.unwrap_err();
    let took = started.elapsed();
    // 3 × 100 ms + 10 + 20 ms of waits = 330 ms; generous upper bound for a busy machine.
    assert!(took >= Duration::from_millis(330), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(err.is_timeout() && err.is_exhausted(), "{err}");
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.endpoint(), Some(Endpoint::CreatomateStatus));
}

#[tokio::test]
async fn connect_failures_are_retried_even_for_billed_calls() {
    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let c = clients(&client(), &fast(&format!("http://127.0.0.1:{port}")));
    let err = c
        .suno
        .generate(&GenerateRequest::simple("a song"))
        .await
        .unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::Connect, "{err}");
    assert!(
        err.is_connect() && err.is_exhausted() && err.is_retryable(),
        "{err}"
    );
    assert!(!err.may_have_run(), "nothing was sent");
    assert_eq!(err.attempts(), 4);
    let text = err.to_string();
    assert!(
        text.starts_with("suno.generate: gave up after 4 attempts in "),
        "{text}"
    );
    assert!(text.contains("could not connect"), "{text}");
    assert!(
        !text.contains(&port.to_string()),
        "no URL in errors: {text}"
    );
}

#[tokio::test]
async fn the_shipped_flaky_scenario_is_survived_end_to_end() {
    let scenario = encore_sim::Scenario::named_source("flaky").unwrap();
    let (running, http) = start(sim(scenario)).await;
    let mut config = fast(&running.base_url());
    // flaky's waits are real: a 1 s Creatomate Retry-After and 300 ms stalls.
    for endpoint in Endpoint::ALL {
        config.endpoints.get_mut(endpoint).attempt_timeout = Duration::from_millis(250);
    }
    let c = clients(&http, &config);
    let lyrics: crate::support::Lyrics = c.openai.structured("", "a bakery", "song").await.unwrap();
    let task = c
        .suno
        .generate(&GenerateRequest::custom(
            &lyrics.lyrics,
            &lyrics.style,
            &lyrics.title,
        ))
        .await
        .unwrap();
    for _ in 0..3 {
        c.suno.task_status(&task).await.unwrap();
    }
    c.suno.credits().await.unwrap();
    let render = c
        .creatomate
        .render(&encore_clients::creatomate::RenderRequest::new(
            encore_sim::DEMO_TEMPLATE_ID,
        ))
        .await
        .unwrap();
    for _ in 0..3 {
        c.creatomate.render_status(&render.id).await.unwrap();
    }
    let ledger = running.ledger();
    assert_eq!(ledger.suno_tasks, 1);
    assert_eq!(ledger.creatomate_renders, 1);
}
