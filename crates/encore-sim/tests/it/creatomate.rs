//! Creatomate: renders on virtual time, templates, auth, credits, rate limit, `{hint}` errors.

use std::time::Duration;

use axum::Router;
use encore_sim::creatomate::types::{ErrorBody, Render, Template, TemplateSummary};
use encore_sim::{DEMO_TEMPLATE_ID, RenderOutcome, Scenario, SimConfig};
use serde_json::{Value, json};

use crate::support::{KEY, Reply, call, sim};

fn render_body() -> Value {
    json!({
        "template_id": DEMO_TEMPLATE_ID,
        "modifications": {
            "Audio.source": "https://cdn.example.test/song.mp3",
            "Title": "Happy Paws",
            "Captions.text": "Waggin' tails down Maple Street\nEvery pup has a friend to meet",
            "Captions.time": 4,
            "Captions.duration": 120
        },
        "metadata": "job-1"
    })
}

async fn render(router: &Router, body: Value) -> Reply {
    call(router, "POST", "/v1/renders", Some(KEY), Some(body)).await
}

async fn status(router: &Router, id: &str) -> Render {
    let r = call(router, "GET", &format!("/v1/renders/{id}"), Some(KEY), None).await;
    assert_eq!(r.status, 200);
    serde_json::from_value(r.json()).unwrap()
}

fn hint_of(r: &Reply) -> String {
    serde_json::from_value::<ErrorBody>(r.json())
        .expect("{hint} body")
        .hint
}

#[tokio::test(start_paused = true)]
async fn render_lifecycle() {
    let (state, router) = sim(SimConfig::default());
    let r = render(&router, render_body()).await;
    assert_eq!(r.status, 202);
    let renders: Vec<Render> = serde_json::from_value(r.json()).expect("an array");
    assert_eq!(renders.len(), 1);
    let first = &renders[0];
    assert_eq!(first.status, "planned");
    assert!(
        first
            .url
            .ends_with(&format!("/__sim/files/renders/{}.mp4", first.id))
    );
    assert_eq!(first.template_id.as_deref(), Some(DEMO_TEMPLATE_ID));
    assert_eq!(first.template_name.as_deref(), Some("encore music video"));
    assert_eq!(first.metadata.as_deref(), Some("job-1"));
    assert!(first.width.is_none() && first.file_size.is_none());

    let mut seen = vec![first.status.clone()];
    let mut last = first.clone();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        last = status(&router, &first.id).await;
        if seen.last() != Some(&last.status) {
            seen.push(last.status.clone());
        }
        if last.status == "succeeded" {
            break;
        }
    }
    assert_eq!(seen, ["planned", "waiting", "rendering", "succeeded"]);
    assert_eq!((last.width, last.height), (Some(1280), Some(720)));
    assert!(last.duration.is_some() && last.frame_rate.is_some() && last.file_size.is_some());
    assert!(last.error_message.is_none());
    assert_eq!(state.ledger().creatomate_renders, 1);
    let path = last.url.split_once("/__sim").unwrap().1;
    let f = call(&router, "GET", &format!("/__sim{path}"), None, None).await;
    assert_eq!(
        (
            f.status.as_u16(),
            f.headers["content-type"].to_str().unwrap()
        ),
        (200, "video/mp4")
    );
}

#[tokio::test(start_paused = true)]
async fn video_length_follows_the_simulated_song() {
    let (_state, router) = sim(SimConfig {
        time_scale: 0.01,
        ..SimConfig::default()
    });
    let r = call(
        &router,
        "POST",
        "/api/v1/generate",
        Some(KEY),
        Some(json!({ "customMode": true, "instrumental": true, "model": "V5", "callBackUrl": "https://x.test/cb", "style": "lofi", "title": "T" })),
    )
    .await;
    let task = r.json()["data"]["taskId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let info = call(
        &router,
        "GET",
        &format!("/api/v1/generate/record-info?taskId={task}"),
        Some(KEY),
        None,
    )
    .await
    .json();
    let track = &info["data"]["response"]["sunoData"][0];
    let mut body = render_body();
    body["modifications"]["Audio.source"] = track["audioUrl"].clone();
    let id = render(&router, body).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let done = status(&router, &id).await;
    assert_eq!(done.status, "succeeded");
    let want = track["duration"].as_f64().unwrap();
    assert!((done.duration.unwrap() - want).abs() < 0.01);
}

#[tokio::test(start_paused = true)]
async fn failures_carry_error_message() {
    let scenario = Scenario {
        creatomate: encore_sim::CreatomateScenario {
            outcomes: vec![RenderOutcome::Failed],
            failure_message: Some("boom".into()),
            ..encore_sim::CreatomateScenario::default()
        },
        ..Scenario::default()
    };
    let (_state, router) = sim(SimConfig {
        scenario,
        time_scale: 0.01,
        ..SimConfig::default()
    });
    let a = render(&router, render_body()).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bad_audio = render_body();
    bad_audio["modifications"]["Audio.source"] = json!("not a url");
    let b = render(&router, bad_audio).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = render(&router, render_body()).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a = status(&router, &a).await;
    assert_eq!(
        (a.status.as_str(), a.error_message.as_deref()),
        ("failed", Some("boom"))
    );
    assert!(a.file_size.is_none());
    let b = status(&router, &b).await;
    assert_eq!(b.status, "failed");
    assert!(b.error_message.unwrap().contains("Audio.source"));
    assert_eq!(status(&router, &c).await.status, "succeeded");
}

#[tokio::test]
async fn templates() {
    let (_state, router) = sim(SimConfig::default());
    let r = call(&router, "GET", "/v1/templates", Some(KEY), None).await;
    let list: Vec<TemplateSummary> = serde_json::from_value(r.json()).unwrap();
    assert!(
        list.iter()
            .any(|t| t.id == DEMO_TEMPLATE_ID && t.name == "encore music video")
    );
    assert!(
        r.json()[0].get("source").is_none(),
        "the list carries no source"
    );
    // the source names the elements a client configures (a free check before paying)
    for id in [DEMO_TEMPLATE_ID, encore_sim::VERTICAL_TEMPLATE_ID] {
        let r = call(
            &router,
            "GET",
            &format!("/v1/templates/{id}"),
            Some(KEY),
            None,
        )
        .await;
        let t: Template = serde_json::from_value(r.json()).unwrap();
        let names: Vec<(&str, &str)> = t.source["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap(), e["type"].as_str().unwrap()))
            .collect();
        for n in [("Audio", "audio"), ("Title", "text"), ("Captions", "text")] {
            assert!(names.contains(&n), "{names:?}");
        }
    }
    let r = call(
        &router,
        "GET",
        "/v1/templates/00000000-0000-0000-0000-000000000000",
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    hint_of(&r);
}

#[tokio::test]
async fn validation_errors_are_hints() {
    let (state, router) = sim(SimConfig::default());
    let r = render(
        &router,
        json!({ "template_id": "00000000-0000-0000-0000-000000000000" }),
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(hint_of(&r).contains("could not be found"));
    for body in [
        json!({}),
        json!({ "template_id": DEMO_TEMPLATE_ID, "output_format": "avi" }),
        json!({ "template_id": DEMO_TEMPLATE_ID, "render_scale": 50 }),
        json!({ "template_id": DEMO_TEMPLATE_ID, "output_format": "jpg", "frame_rate": 30 }),
        json!({ "template_id": DEMO_TEMPLATE_ID, "metadata": { "not": "a string" } }),
        json!({ "template_id": DEMO_TEMPLATE_ID, "modifications": ["x"] }),
        json!({ "tags": ["no-such-tag"] }),
    ] {
        let r = render(&router, body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        hint_of(&r);
    }
    let r = call(&router, "POST", "/v1/renders", Some(KEY), None).await;
    assert_eq!(r.status, 400);
    // unknown modification keys only warn
    let r = render(
        &router,
        json!({ "template_id": DEMO_TEMPLATE_ID, "modifications": { "Nope": "x" } }),
    )
    .await;
    assert_eq!(r.status, 202);
    // tags render every matching template
    let r = render(&router, json!({ "tags": ["encore"] })).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert_eq!(state.ledger().creatomate_renders, 3);

    let (_state, router) = sim(SimConfig {
        creatomate_unknown_template_status: 400,
        ..SimConfig::default()
    });
    let r = render(&router, json!({ "template_id": "x" })).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn auth_and_credits() {
    let (state, router) = sim(SimConfig {
        creatomate_credits: 15,
        api_keys: Some(vec![KEY.into()]),
        ..SimConfig::default()
    });
    let r = call(&router, "POST", "/v1/renders", None, Some(render_body())).await;
    assert_eq!(r.status, 401);
    hint_of(&r);
    let r = call(&router, "GET", "/v1/templates", Some("wrong"), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(render(&router, render_body()).await.status, 202);
    let r = render(&router, render_body()).await;
    assert_eq!(r.status, 402);
    hint_of(&r);
    assert_eq!(state.creatomate_credits(KEY), 5);
    assert_eq!(state.ledger().creatomate_renders, 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_counts_every_request() {
    let (_state, router) = sim(SimConfig::default());
    let id = render(&router, render_body()).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..29 {
        status(&router, &id).await;
    }
    let r = call(&router, "GET", "/v1/templates", Some(KEY), None).await;
    assert_eq!(r.status, 429);
    hint_of(&r);
    assert!(
        r.headers.get("retry-after").is_none(),
        "default: no Retry-After"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        call(&router, "GET", "/v1/templates", Some(KEY), None)
            .await
            .status,
        200
    );

    let (_state, router) = sim(SimConfig {
        creatomate_retry_after: true,
        ..SimConfig::default()
    });
    for _ in 0..30 {
        call(&router, "GET", "/v1/templates", Some(KEY), None).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = call(&router, "GET", "/v1/templates", Some(KEY), None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "8");
}

/// Modifications that name no element (or no property of one) are accepted and ignored, as
/// by Creatomate v1; the ledger lists them.
#[tokio::test(start_paused = true)]
async fn modifications_matching_nothing_are_ignored_and_recorded() {
    let (state, router) = sim(SimConfig {
        time_scale: 0.01,
        ..SimConfig::default()
    });
    let mut body = render_body();
    body["modifications"]["Subtitles.text"] = json!("no such element");
    body["modifications"]["Audio.sparkle"] = json!(3);
    body["modifications"]["Lyrics"] = json!("no such element either");
    let r = render(&router, body).await;
    assert_eq!(
        r.status, 202,
        "accepted: v1 does not validate element names"
    );
    let id = r.json()[0]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let done = status(&router, &id).await;
    assert_eq!(done.status, "succeeded", "and rendered");
    let ledger = state.ledger();
    let job = ledger.job(&id).unwrap();
    assert_eq!(
        job.ignored_modifications,
        ["Audio.sparkle", "Lyrics", "Subtitles.text"]
    );
    assert_eq!(job.final_status, "succeeded");
    // a render whose modifications all match records nothing ignored
    let r = render(&router, render_body()).await;
    let id = r.json()[0]["id"].as_str().unwrap().to_owned();
    assert!(
        state
            .ledger()
            .job(&id)
            .unwrap()
            .ignored_modifications
            .is_empty()
    );
    let json = call(&router, "GET", "/__sim/ledger", None, None)
        .await
        .json();
    assert_eq!(
        json["jobs"][0]["ignored_modifications"],
        json!(["Audio.sparkle", "Lyrics", "Subtitles.text"])
    );
}

/// A custom RenderScript without an `Audio` element ignores `Audio.source`: the video keeps
/// the source's own duration.
#[tokio::test(start_paused = true)]
async fn an_ignored_audio_source_does_not_set_the_length() {
    let (state, router) = sim(SimConfig {
        time_scale: 0.01,
        ..SimConfig::default()
    });
    let body = json!({
        "source": { "output_format": "mp4", "width": 640, "height": 360, "duration": 12,
                    "elements": [ { "name": "Title", "type": "text", "text": "x" } ] },
        "modifications": { "Audio.source": "https://cdn.example.test/long.mp3", "Audio.duration": 300 }
    });
    let id = render(&router, body).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let done = status(&router, &id).await;
    assert!((done.duration.unwrap() - 12.0).abs() < 1e-9, "{done:?}");
    assert_eq!(
        state.ledger().job(&id).unwrap().ignored_modifications,
        ["Audio.duration", "Audio.source"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_render_can_be_invisible_for_a_while() {
    let (state, router) = sim(SimConfig {
        creatomate_render_visible_after_s: 3.0,
        ..SimConfig::default()
    });
    let r = render(&router, render_body()).await;
    assert_eq!(r.status, 202);
    let id = r.json()[0]["id"].as_str().unwrap().to_owned();
    let get = |id: String| {
        let router = router.clone();
        async move {
            call(
                &router,
                "GET",
                &format!("/v1/renders/{id}"),
                Some(KEY),
                None,
            )
            .await
        }
    };
    let hidden = get(id.clone()).await;
    assert_eq!(hidden.status, 404);
    let unknown = get("00000000-0000-4000-8000-000000000000".into()).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        hint_of(&hidden).replace(&id, "ID"),
        hint_of(&unknown).replace("00000000-0000-4000-8000-000000000000", "ID"),
        "the same answer as an unknown id"
    );
    tokio::time::sleep(Duration::from_millis(2900)).await;
    assert_eq!(get(id.clone()).await.status, 404);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(id.clone()).await.status, 200);
    assert_eq!(state.ledger().creatomate_renders, 1);
}

#[tokio::test(start_paused = true)]
async fn the_ledger_knows_when_each_render_is_ready() {
    let (state, router) = sim(SimConfig {
        time_scale: 0.01,
        scenario: Scenario::from_toml("[creatomate]\noutcomes = [\"succeeded\", \"failed\"]")
            .unwrap(),
        ..SimConfig::default()
    });
    let a = render(&router, render_body()).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = render(&router, render_body()).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ledger = state.ledger();
    let job = ledger.job(&a).unwrap().clone();
    let ready_ms = job.ready_at_ms.unwrap();
    assert_eq!(job.final_status, "succeeded");
    assert_eq!(
        ledger.job(&b).unwrap().ready_after_virtual_s,
        None,
        "a failed render is never ready"
    );
    assert_eq!(ledger.job(&b).unwrap().final_status, "failed");
    // just before the ready time it is rendering; at it, succeeded
    let start = tokio::time::Instant::now() - state.elapsed();
    tokio::time::sleep_until(start + Duration::from_millis(ready_ms - 1)).await;
    assert_eq!(status(&router, &a).await.status, "rendering");
    tokio::time::sleep_until(start + Duration::from_millis(ready_ms + 1)).await;
    assert_eq!(status(&router, &a).await.status, "succeeded");
}
