//! The shipped scenarios, driven by a careful client in memory on paused time: `flaky` is
//! survivable without duplicate billed jobs, `hostile` resets a billed POST after
//! processing, `outage` keeps Creatomate down.

use std::time::Duration;

use axum::Router;
use encore_sim::{DEMO_TEMPLATE_ID, JobKind, Scenario, SimConfig};
use serde_json::{Value, json};

use crate::support::{KEY, Reply, call, sim};

fn config(name: &str) -> SimConfig {
    SimConfig {
        scenario: Scenario::named(name).unwrap(),
        time_scale: 0.01,
        ..SimConfig::default()
    }
}

/// An idempotent call retried on anything but a clean 2xx JSON answer.
async fn read(router: &Router, method: &str, uri: &str, body: Option<Value>) -> Value {
    for _ in 0..8 {
        let r = call(router, method, uri, Some(KEY), body.clone()).await;
        if r.status.is_success()
            && let Ok(bytes) = &r.body
            && let Ok(v) = serde_json::from_slice::<Value>(bytes)
            && v.get("code").is_none_or(|c| c == 200)
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{method} {uri} kept failing");
}

/// A billed POST retried only when the answer proves nothing was processed.
async fn billed(router: &Router, uri: &str, body: Value) -> Result<Reply, Reply> {
    for _ in 0..5 {
        let r = call(router, "POST", uri, Some(KEY), Some(body.clone())).await;
        let Ok(bytes) = &r.body else { return Err(r) };
        let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let suno_rejected = matches!(v.get("code").and_then(Value::as_u64), Some(405 | 430));
        if r.status == 429 || suno_rejected {
            let wait = r
                .headers
                .get("retry-after")
                .and_then(|h| h.to_str().ok()?.parse().ok())
                .unwrap_or(10);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        return if r.status.is_success() { Ok(r) } else { Err(r) };
    }
    panic!("{uri}: still rejected");
}

#[tokio::test(start_paused = true)]
async fn flaky_is_survivable_without_duplicate_jobs() {
    let (state, router) = sim(config("flaky"));
    let schema = json!({ "type": "object", "properties": { "title": { "type": "string" }, "style": { "type": "string" }, "lyrics": { "type": "string" } }, "required": ["title", "style", "lyrics"], "additionalProperties": false });
    let plan = read(
        &router,
        "POST",
        "/v1/responses",
        Some(json!({ "model": "gpt-4o", "input": "A song for Sunrise Bakery", "text": { "format": { "type": "json_schema", "name": "plan", "strict": true, "schema": schema } } })),
    )
    .await;
    let plan: Value =
        serde_json::from_str(plan["output"][0]["content"][0]["text"].as_str().unwrap()).unwrap();

    let created = billed(
        &router,
        "/api/v1/generate",
        json!({ "customMode": true, "instrumental": false, "model": "V4_5", "callBackUrl": "https://example.test/cb",
                "prompt": plan["lyrics"], "style": plan["style"], "title": plan["title"] }),
    )
    .await
    .unwrap();
    let task = created.json()["data"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let tracks = loop {
        let info = read(
            &router,
            "GET",
            &format!("/api/v1/generate/record-info?taskId={task}"),
            None,
        )
        .await;
        if info["data"]["status"] == "SUCCESS" {
            break info["data"]["response"]["sunoData"].clone();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let words = read(
        &router,
        "POST",
        "/api/v1/generate/get-timestamped-lyrics",
        Some(json!({ "taskId": task, "audioId": tracks[0]["id"] })),
    )
    .await;
    assert!(!words["data"]["alignedWords"].as_array().unwrap().is_empty());

    let rendered = billed(
        &router,
        "/v1/renders",
        json!({ "template_id": DEMO_TEMPLATE_ID, "modifications": { "Audio.source": tracks[0]["audioUrl"], "Title": plan["title"], "Captions.text": plan["lyrics"] } }),
    )
    .await
    .unwrap();
    let id = rendered.json()[0]["id"].as_str().unwrap().to_owned();
    loop {
        let r = read(&router, "GET", &format!("/v1/renders/{id}"), None).await;
        if r["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let ledger = state.ledger();
    assert_eq!(ledger.openai_responses, 1);
    assert_eq!(ledger.suno_tasks, 1);
    assert_eq!(ledger.creatomate_renders, 1);
    let injected = ledger.requests.iter().filter(|r| r.fault.is_some()).count();
    assert!(injected >= 6, "flaky injected only {injected} faults");
    assert!(
        state.elapsed() < Duration::from_secs(30),
        "demo-fast: {:?}",
        state.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn hostile_resets_the_first_generate_after_processing() {
    let (state, router) = sim(config("hostile"));
    let err = billed(
        &router,
        "/api/v1/generate",
        json!({ "customMode": false, "instrumental": false, "model": "V5", "callBackUrl": "https://example.test/cb", "prompt": "a song" }),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.dropped,
        Some(encore_sim::ConnectionDropped { processed: true })
    );
    let ledger = state.ledger();
    assert_eq!(
        ledger.jobs_of(JobKind::SunoTask).count(),
        1,
        "the task may exist: it does"
    );
    assert_eq!(
        ledger.requests[0].fault.as_deref(),
        Some("reset_after_processing")
    );
}

#[tokio::test(start_paused = true)]
async fn outage_keeps_creatomate_down() {
    let (state, router) = sim(config("outage"));
    for _ in 0..3 {
        let r = call(
            &router,
            "POST",
            "/v1/renders",
            Some(KEY),
            Some(json!({ "template_id": DEMO_TEMPLATE_ID })),
        )
        .await;
        assert_eq!(r.status, 503);
        assert!(r.json()["hint"].is_string());
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let r = call(&router, "GET", "/api/v1/generate/credit", Some(KEY), None).await;
    assert_eq!(r.json()["code"], 200, "Suno is fine");
    assert_eq!(state.ledger().creatomate_renders, 0);
}
