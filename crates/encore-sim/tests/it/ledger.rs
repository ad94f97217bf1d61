//! The ledger over HTTP and the Rust API; `/__sim` endpoints; serving and shutdown.

use encore_sim::{Ledger, RouteId, SimConfig, SimState, serve};
use serde_json::{Value, json};

use crate::support::{KEY, call, client, fast, sim};

#[tokio::test]
async fn ledger_over_http_matches_the_rust_api() {
    // no callbacks: their records would race the two snapshots compared below
    let config = SimConfig {
        callbacks: false,
        ..fast()
    };
    let sim = serve(SimState::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = sim.base_url();
    assert_eq!(base, format!("http://127.0.0.1:{}", sim.addr().port()));
    assert_ne!(sim.addr().port(), 0);
    let c = client();
    c.get(format!("{base}/api/v1/generate/credit"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    c.get(format!("{base}/api/v1/generate/credit"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let body = json!({ "customMode": false, "instrumental": true, "model": "V5", "callBackUrl": "http://127.0.0.1:9/cb", "prompt": "calm piano" });
    let created: Value = c
        .post(format!("{base}/api/v1/generate"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task = created["data"]["taskId"].as_str().unwrap().to_owned();

    let over_http: Ledger = c
        .get(format!("{base}/__sim/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http, sim.ledger());
    assert_eq!(over_http.requests.len(), 3, "/__sim calls are not recorded");
    assert_eq!(
        over_http.requests_per_route["GET /api/v1/generate/credit"],
        2
    );
    assert_eq!(over_http.requests_per_route["POST /api/v1/generate"], 1);
    assert_eq!(over_http.count(RouteId::SunoCredit), 2);
    assert_eq!(over_http.suno_tasks, 1);
    assert_eq!(over_http.jobs[0].id, task);
    assert_eq!(over_http.jobs[0].request_seq, 3);
    let generate = &over_http.requests[2];
    assert_eq!(
        (
            generate.attempt,
            generate.status,
            generate.job_id.as_deref()
        ),
        (1, Some(200), Some(task.as_str()))
    );
    assert_eq!(over_http.requests[1].attempt, 2);

    // the track URLs point at this server
    let info: Value = c
        .get(format!("{base}/api/v1/generate/record-info"))
        .query(&[("taskId", &task)])
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["code"], 200);

    let health: Value = c
        .get(format!("{base}/__sim/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["seed"], 42);
    sim.shutdown().await;
    assert!(
        c.get(format!("{base}/__sim/health")).send().await.is_err(),
        "stopped"
    );
}

#[tokio::test]
async fn scenario_can_be_replaced_at_runtime() {
    let (state, router) = sim(fast());
    let toml = "name = \"live\"\n[routes.\"suno.credit\"]\nsequence = [\"outage\"]\n";
    let r = call(&router, "PUT", "/__sim/scenario", None, None).await;
    assert_eq!(r.status, 200, "an empty body is the calm scenario");
    let req = http::Request::put("/__sim/scenario")
        .body(axum::body::Body::from(toml))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(state.scenario().name.as_deref(), Some("live"));
    assert_eq!(
        call(&router, "GET", "/api/v1/generate/credit", Some(KEY), None)
            .await
            .status,
        503
    );
    let req = http::Request::put("/__sim/scenario")
        .body(axum::body::Body::from("bogus_key = 1"))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("bogus_key"));
    let current = call(&router, "GET", "/__sim/scenario", None, None)
        .await
        .json();
    assert_eq!(current["name"], "live");
}

#[tokio::test]
async fn fallback_answers_in_each_service_format() {
    let (_state, router) = sim(SimConfig::default());
    let r = call(&router, "GET", "/v1/models", Some(KEY), None).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"].is_string());
    let r = call(&router, "GET", "/v2/renders", Some(KEY), None).await;
    assert!(r.json()["hint"].is_string());
    let r = call(&router, "GET", "/v1/responses", Some(KEY), None).await;
    assert_eq!(r.status, 405);
}

#[test]
fn invalid_config_is_reported() {
    let err = SimState::try_new(SimConfig {
        time_scale: f64::NAN,
        ..SimConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.field(), "time_scale");
}
