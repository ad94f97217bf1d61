//! The ledger over HTTP and the Rust API; `/__sim` endpoints; serving and shutdown.

use encore_sim::{Ledger, RouteId, Scenario, SimConfig, SimState, serve};
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

/// Every rate-limit refusal is counted on its route, whoever answered it (the simulator's
/// own limiters or a scripted fault); 429s that are not rate limits are not.
#[tokio::test(start_paused = true)]
async fn rate_limit_refusals_are_counted_per_route() {
    let scenario = Scenario::from_toml(
        r#"
[routes."openai.responses"]
sequence = [{ kind = "openai_rate_limit", retry_after_ms = 10 }, "openai_insufficient_quota"]
[routes."suno.record_info"]
sequence = [{ kind = "suno_code", code = 405 }, { kind = "suno_code", code = 455 }]
[routes."creatomate.render_status"]
sequence = [{ kind = "status", status = 429 }]
"#,
    )
    .unwrap();
    let (state, router) = sim(SimConfig {
        scenario,
        suno_credits: 12 * 20,
        ..fast()
    });
    let generate = json!({ "customMode": false, "instrumental": true, "model": "V5", "callBackUrl": "https://x.test/cb", "prompt": "calm piano" });
    // Suno: 20 generates pass, the 21st is refused by the window (body code 430)
    for _ in 0..21 {
        call(
            &router,
            "POST",
            "/api/v1/generate",
            Some(KEY),
            Some(generate.clone()),
        )
        .await;
    }
    // the window frees up; now the credits are gone: body code 429 is no rate limit
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    call(
        &router,
        "POST",
        "/api/v1/generate",
        Some(KEY),
        Some(generate),
    )
    .await;
    // scripted: 405 counts, 455 (maintenance) does not
    for _ in 0..2 {
        call(
            &router,
            "GET",
            "/api/v1/generate/record-info?taskId=x",
            Some(KEY),
            None,
        )
        .await;
    }
    // OpenAI: a rate limit counts, insufficient_quota (also a 429) does not
    let body = json!({ "model": "gpt-4o", "input": "hi" });
    for _ in 0..2 {
        call(
            &router,
            "POST",
            "/v1/responses",
            Some(KEY),
            Some(body.clone()),
        )
        .await;
    }
    // Creatomate: a scripted 429 (never reaching the window), then 31 reads: the 31st is
    // refused by the 30 / 10 s window
    for _ in 0..32 {
        call(&router, "GET", "/v1/renders/nope", Some(KEY), None).await;
    }
    let ledger = state.ledger();
    assert_eq!(ledger.rate_limited(RouteId::SunoGenerate), 1);
    assert_eq!(ledger.rate_limited(RouteId::SunoRecordInfo), 1);
    assert_eq!(ledger.rate_limited(RouteId::OpenaiResponses), 1);
    assert_eq!(ledger.rate_limited(RouteId::CreatomateRenderStatus), 2);
    assert_eq!(ledger.rate_limited_total(), 5);
    let codes: Vec<(Option<u16>, bool)> = ledger
        .requests_for(RouteId::SunoGenerate)
        .skip(19)
        .map(|r| (r.body_code, r.rate_limited))
        .collect();
    assert_eq!(
        codes,
        [(Some(200), false), (Some(430), true), (Some(429), false)]
    );
    let refused: Vec<Option<&str>> = ledger
        .requests
        .iter()
        .filter(|r| r.rate_limited)
        .map(|r| r.fault.as_deref())
        .collect();
    assert_eq!(
        refused,
        [
            None,
            Some("suno_code:405"),
            Some("openai_rate_limit"),
            Some("status:429"),
            None
        ],
        "the fault label tells the limiters' refusals from scripted ones"
    );
}

#[tokio::test]
async fn insufficient_credits_mirrored_into_http_429_is_no_rate_limit() {
    let (state, router) = sim(SimConfig {
        suno_credits: 0,
        suno_errors_as_http_status: true,
        ..fast()
    });
    let generate = json!({ "customMode": false, "instrumental": true, "model": "V5", "callBackUrl": "https://x.test/cb", "prompt": "calm piano" });
    let r = call(
        &router,
        "POST",
        "/api/v1/generate",
        Some(KEY),
        Some(generate),
    )
    .await;
    assert_eq!(r.status, 429);
    let ledger = state.ledger();
    assert_eq!(ledger.rate_limited_total(), 0);
    assert_eq!(ledger.requests[0].status, Some(429));
}

/// A clean run proves from the server's side that no call was refused for rate limiting,
/// and the ledger JSON carries the new fields.
#[tokio::test]
async fn a_clean_run_has_no_refusals_and_exposes_ready_times() {
    let sim = serve(
        SimState::new(SimConfig {
            callbacks: false,
            ..fast()
        }),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = sim.base_url();
    let c = client();
    c.post(format!("{base}/v1/responses"))
        .bearer_auth(KEY)
        .json(
            &json!({ "model": "gpt-4o", "input": "hi", "store": false, "max_output_tokens": 500 }),
        )
        .send()
        .await
        .unwrap();
    c.post(format!("{base}/api/v1/generate"))
        .bearer_auth(KEY)
        .json(&json!({ "customMode": false, "instrumental": true, "model": "V5", "callBackUrl": "https://x.test/cb", "prompt": "calm piano" }))
        .send()
        .await
        .unwrap();
    c.post(format!("{base}/v1/renders"))
        .bearer_auth(KEY)
        .json(&json!({ "template_id": encore_sim::DEMO_TEMPLATE_ID }))
        .send()
        .await
        .unwrap();
    let json: Value = c
        .get(format!("{base}/__sim/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["rate_limited_per_route"], json!({}));
    assert!(
        json["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["rate_limited"] == false)
    );
    assert_eq!(json["requests"][1]["body_code"], 200);
    assert_eq!(json["callbacks"], json!([]));
    let jobs = json["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[0]["store"], false);
    assert_eq!(jobs[0]["max_output_tokens"], 500);
    assert_eq!(jobs[0]["ready_after_virtual_s"], 0.0);
    for job in jobs {
        let after = job["ready_after_virtual_s"].as_f64().unwrap();
        let created = job["created_virtual_s"].as_f64().unwrap();
        let ready = job["ready_virtual_s"].as_f64().unwrap();
        assert!((ready - created - after).abs() < 1e-6, "{job}");
        let at = job["at_ms"].as_u64().unwrap();
        let ready_ms = job["ready_at_ms"].as_u64().unwrap();
        assert!(
            ready_ms.abs_diff(at + (after * 0.001 * 1000.0) as u64) <= 1,
            "{job}"
        );
    }
    // an ideal makespan from the ledger alone: the last ready time
    let ideal = jobs
        .iter()
        .map(|j| j["ready_at_ms"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(ideal >= jobs[1]["at_ms"].as_u64().unwrap() + 150);
    let typed: Ledger = serde_json::from_value(json).unwrap();
    assert_eq!(typed.rate_limited_total(), 0);
    sim.shutdown().await;
}
