//! Hostile input on every route: bodies, headers, path parameters and callback payloads. No
//! panic, no 5xx for a client's mistake, no state change from a forged callback, no secret in
//! any answer.

use std::time::Duration;

use encore_sim::JobKind;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Value, json};

use super::server::{Options, TOKEN, job_body, service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_token_guards_v1_but_not_hooks_or_health() {
    let service = service(Options {
        token: true,
        ..Options::default()
    })
    .await;
    let get = |auth: Option<&str>| {
        let mut r = service.request(reqwest::Method::GET, "/v1/jobs");
        if let Some(auth) = auth {
            r = r.header("authorization", auth);
        }
        r.send()
    };
    let missing: Value = get(None).await.unwrap().json().await.unwrap();
    assert_eq!(missing["error"]["code"], "auth.required");
    let wrong = get(Some("Bearer not-the-token")).await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(wrong["error"]["code"], "auth.invalid");
    assert_eq!(
        get(Some(&format!("Basic {TOKEN}")))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        get(Some(&format!("Bearer {TOKEN}")))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let events = service
        .request(
            reqwest::Method::GET,
            "/v1/jobs/01a22f59-adb9-74b6-8a43-15aa5fe70e02/events",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(events.status().as_u16(), 401);
    for open in ["/healthz", "/readyz", "/openapi.json"] {
        let r = service
            .request(reqwest::Method::GET, open)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{open}");
    }
    // Hooks carry their own credential (the URL's token): no bearer token needed, and a wrong
    // URL token is an unknown address.
    let hook = service
        .request(
            reqwest::Method::POST,
            "/hooks/suno/01a22f59-adb9-74b6-8a43-15aa5fe70e02/00",
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status().as_u16(), 404);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_malformed_oversized_and_stray_callbacks_change_nothing() {
    let service = service(Options {
        scenario: "[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n",
        sim_callbacks: false,
        reconcile_window: Duration::from_millis(600),
        ..Options::default()
    })
    .await;
    let (_, created) = service.submit(&job_body(), None).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let job = service
        .wait_for(&id, &["needs_attention", "succeeded", "failed"])
        .await;
    assert_eq!(job["status"], "needs_attention", "{job:#}");
    let before = service.job(&id).await;
    let task = service.billed(JobKind::SunoTask)[0].clone();
    let post = |path: String, body: Vec<u8>| {
        service
            .request(reqwest::Method::POST, &path)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let suno_body = |task: &str| {
        serde_json::to_vec(&json!({"code": 200, "msg": "ok", "data": {"callbackType": "complete", "task_id": task}}))
            .unwrap()
    };
    // A forged token for this job: an unknown address.
    let forged = post(
        format!("/hooks/suno/{id}/{}", "0".repeat(32)),
        suno_body(&task),
    )
    .await
    .unwrap();
    assert_eq!(forged.status().as_u16(), 404);
    // Another step's token (the render's) does not open Suno's hook.
    let secret_from_steps = before["steps"][6]["external_id"].clone();
    assert!(secret_from_steps.is_null());
    // Malformed bodies.
    let token = suno_token(&service, &id).await;
    for body in [&b"not json"[..], b"{}", br#"{"data":{"task_id":""}}"#] {
        let r = post(format!("/hooks/suno/{id}/{token}"), body.to_vec())
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
    }
    // Oversized.
    let huge = vec![b' '; 70 * 1024];
    let r = post(format!("/hooks/suno/{id}/{token}"), huge)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let refused: Value = r.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "body.too_large");
    // A well-formed callback naming a task that is not this job's (another key's task): the
    // provider refutes it, nothing moves.
    let stray = post(
        format!("/hooks/suno/{id}/{token}"),
        suno_body("no-such-task"),
    )
    .await
    .unwrap();
    assert!(
        matches!(stray.status().as_u16(), 422 | 200),
        "{}",
        stray.status()
    );
    let after = service.job(&id).await;
    assert_eq!(after["status"], "needs_attention");
    assert_eq!(after["steps"], before["steps"]);
    // The real callback, twice: adopted once, the job succeeds with one task.
    for _ in 0..2 {
        let ok = post(format!("/hooks/suno/{id}/{token}"), suno_body(&task))
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200);
    }
    let job = service.wait_for(&id, &["succeeded", "failed"]).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(service.billed(JobKind::SunoTask), [task]);
    service.stop().await;
}

/// The Suno callback token of a job, as the job sent it (the task's `callBackUrl`).
async fn suno_token(service: &super::server::Service, id: &str) -> String {
    let ledger = service.sim.ledger();
    let task = ledger.jobs_of(JobKind::SunoTask).next().unwrap().id.clone();
    let url = format!(
        "{}/api/v1/generate/record-info?taskId={task}",
        service.sim.base_url()
    );
    let record: Value = reqwest::Client::new()
        .get(url)
        .bearer_auth("suno-serve-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let param: Value = serde_json::from_str(record["data"]["param"].as_str().unwrap()).unwrap();
    let callback = param["callBackUrl"].as_str().unwrap();
    assert!(callback.contains(id), "{callback}");
    callback.rsplit('/').next().unwrap().to_owned()
}

/// A path parameter that is not UTF-8 once percent-decoded gets the API's JSON error on every
/// route that takes one (axum's own answer is plain text). Found by the property test below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_path_parameters_get_json_errors() {
    let service = service(Options {
        token: false,
        ..Options::default()
    })
    .await;
    for (method, path) in [
        (reqwest::Method::GET, "/v1/jobs/%aa"),
        (reqwest::Method::GET, "/v1/jobs/%ff%fe/events"),
        (reqwest::Method::POST, "/v1/jobs/%aa/cancel"),
        (reqwest::Method::POST, "/v1/jobs/%c3/resolve"),
        (reqwest::Method::POST, "/hooks/suno/%aa/token"),
        (reqwest::Method::POST, "/hooks/creatomate/job/%ff"),
    ] {
        let response = service
            .request(method.clone(), path)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "request.path",
            "{method} {path}: {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains("UTF-8"),
            "{method} {path}: {body}"
        );
    }
    service.stop().await;
}

/// A request a client might send by mistake or malice.
#[derive(Debug, Clone)]
struct Hostile {
    method: reqwest::Method,
    path: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let job = "01a22f59-adb9-74b6-8a43-15aa5fe70e02";
    let path = prop_oneof![
        Just("/v1/jobs".to_owned()),
        Just(format!("/v1/jobs/{job}")),
        Just(format!("/v1/jobs/{job}/cancel")),
        Just(format!("/v1/jobs/{job}/resolve")),
        Just(format!("/hooks/suno/{job}/{}", "a".repeat(32))),
        Just(format!("/hooks/creatomate/{job}/zz")),
        "[a-z0-9%._~-]{0,40}".prop_map(|s| format!("/v1/jobs/{s}")),
        "[a-z0-9%._~-]{0,40}".prop_map(|s| format!("/v1/jobs?status={s}&limit={s}")),
        "[a-z0-9%._~-]{0,40}".prop_map(|s| format!("/hooks/suno/{s}/{s}")),
        "[a-z0-9/%._~-]{0,60}".prop_map(|s| format!("/{s}")),
    ];
    let body = prop_oneof![
        Just(b"{\"business\":\"x\",\"name\":\"y\"}".to_vec()),
        Just(b"{\"business\":\"\",\"name\":\"y\",\"lang\":\"fr\"}".to_vec()),
        Just(b"{\"adopt\":\"t\",\"resubmit\":true}".to_vec()),
        Just(b"{\"code\":200,\"data\":{\"task_id\":\"t\"}}".to_vec()),
        Just(b"[1,2,3]".to_vec()),
        Just(b"null".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<String>().prop_map(String::into_bytes),
    ];
    let method = prop_oneof![
        Just(reqwest::Method::GET),
        Just(reqwest::Method::POST),
        Just(reqwest::Method::PUT),
        Just(reqwest::Method::DELETE),
    ];
    let header = (
        prop_oneof![
            Just("idempotency-key".to_owned()),
            Just("authorization".to_owned()),
            Just("content-type".to_owned()),
            Just("last-event-id".to_owned()),
            Just("x-forwarded-for".to_owned()),
        ],
        "[ -~]{0,300}",
    );
    (method, path, body, proptest::collection::vec(header, 0..3)).prop_map(
        |(method, path, body, headers)| Hostile {
            method,
            path,
            body,
            headers,
        },
    )
}

#[test]
fn hostile_requests_get_clear_answers_and_change_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let service = runtime.block_on(service(Options {
        token: false,
        ..Options::default()
    }));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 150,
        ..ProptestConfig::default()
    });
    runner
        .run(&hostile(), |request| {
            runtime.block_on(async {
                let mut r = service.request(request.method.clone(), &request.path);
                for (name, value) in &request.headers {
                    r = r.header(name, value);
                }
                // A stream stays open: read its head only.
                let response = tokio::time::timeout(
                    Duration::from_secs(5),
                    r.body(request.body.clone()).send(),
                )
                .await
                .expect("answered")
                .expect("a response");
                let status = response.status().as_u16();
                prop_assert!(status < 500 || status == 503, "{status} for {request:?}");
                let text = tokio::time::timeout(Duration::from_millis(300), response.text())
                    .await
                    .unwrap_or(Ok(String::new()))
                    .unwrap_or_default();
                prop_assert!(!text.contains(TOKEN));
                prop_assert!(!text.contains("serve-test"), "a key leaked: {text}");
                if status >= 400 && status != 405 && !text.is_empty() {
                    let body: Value = serde_json::from_str(&text).map_err(|e| {
                        TestCaseError::fail(format!("not JSON ({e}): {text} for {request:?}"))
                    })?;
                    prop_assert!(body["error"]["code"].is_string(), "{text}");
                }
                Ok(())
            })
        })
        .unwrap();
    // Still alive, and no billed job was started by garbage: only a valid submission could.
    runtime.block_on(async {
        let health = service
            .request(reqwest::Method::GET, "/healthz")
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
        service.stop().await;
    });
}

/// Characters on the edges of the input rules: letters, the whitespace `trim` removes, control
/// characters (some of them whitespace too), and look-alikes that are neither.
fn edge_text(max: usize) -> impl Strategy<Value = String> {
    let char = prop_oneof![
        Just('a'),
        Just('한'),
        Just(' '),
        Just('\n'),
        Just('\t'),
        Just('\r'),
        Just('\u{7}'),
        Just('\u{7f}'),
        Just('\u{85}'),
        Just('\u{9f}'),
        Just('\u{a0}'),
        Just('\u{1680}'),
        Just('\u{2028}'),
        Just('\u{3000}'),
        Just('\u{200b}'),
        Just('\u{feff}'),
    ];
    let padding = proptest::collection::vec(
        prop_oneof![Just(' '), Just('\t'), Just('\u{85}'), Just('\u{3000}')],
        0..3,
    )
    .prop_map(String::from_iter);
    prop_oneof![
        4 => proptest::collection::vec(char, 0..8).prop_map(String::from_iter),
        // Around the length limit, padded: the server counts the characters of the trimmed
        // text (schemathesis sent a region of 101 U+0085, blank once trimmed).
        1 => (padding.clone(), max - 1..=max + 1, padding.clone())
            .prop_map(|(before, n, after)| format!("{before}{}{after}", "a".repeat(n))),
        1 => (max - 1..=max + 1).prop_map(|n| "\u{85}".repeat(n)),
    ]
}

/// The OpenAPI document's schema of a job's input (what schemathesis generates requests from)
/// accepts exactly what the server accepts: found by schemathesis, which sent `"name": ""`, a
/// valid string by the document, and was refused (422).
#[test]
fn the_documented_job_input_is_exactly_what_the_server_accepts() {
    use encore_pipeline::BusinessInput;
    let api = super::server::ApiDocument::new(encore_service::server::openapi_json());
    let schema = api.component("JobInput");
    let input = (
        edge_text(BusinessInput::MAX_DESCRIPTION_CHARS),
        edge_text(BusinessInput::MAX_NAME_CHARS),
        proptest::option::of(edge_text(BusinessInput::MAX_REGION_CHARS)),
        proptest::option::of(edge_text(BusinessInput::MAX_MOOD_CHARS)),
        proptest::option::of(prop_oneof![Just("ko"), Just("en"), Just("fr"), Just("")]),
    )
        .prop_map(|(business, name, region, mood, lang)| {
            let mut body = json!({"business": business, "name": name});
            if let Some(region) = region {
                body["region"] = json!(region);
            }
            if let Some(mood) = mood {
                body["mood"] = json!(mood);
            }
            if let Some(lang) = lang {
                body["lang"] = json!(lang);
            }
            body
        });
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    });
    runner
        .run(&input, |body| {
            let accepted = serde_json::from_value::<encore_service::JobInput>(body.clone())
                .map_err(|e| e.to_string())
                .and_then(|input| input.to_business().map_err(|e| e.to_string()));
            prop_assert_eq!(
                schema.is_valid(&body),
                accepted.is_ok(),
                "{} ({:?})",
                body,
                accepted.err()
            );
            Ok(())
        })
        .unwrap();
}

/// The OpenAPI document's schema of a resolution accepts exactly the requests the server can
/// carry out (`ResolveRequest::resolution`), over every combination of values near its rules:
/// found by schemathesis, which sent `{"resubmit": false}`, valid by the document, and was
/// refused (422).
#[test]
fn the_documented_resolution_is_exactly_what_the_server_accepts() {
    use encore_service::server::doc::ResolveRequest;
    let api = super::server::ApiDocument::new(encore_service::server::openapi_json());
    let schema = api.component("ResolveRequest");
    let absent = Value::String("<absent>".into());
    let steps = [
        json!(null),
        json!("song.submit"),
        json!("video.submit"),
        json!("lyrics"),
        json!("x"),
        json!(1),
    ];
    let adopts = [
        json!(null),
        json!(""),
        json!(" \t"),
        json!("\u{3000}"),
        json!("task-1"),
        json!(" t "),
        json!(5),
    ];
    let flags = [json!(true), json!(false), json!(null), json!("true")];
    let mut checked = 0;
    for step in steps.iter().chain([&absent]) {
        for adopt in adopts.iter().chain([&absent]) {
            for resubmit in flags.iter().chain([&absent]) {
                for accept in flags.iter().chain([&absent]) {
                    let mut body = serde_json::Map::new();
                    for (key, value) in [
                        ("step", step),
                        ("adopt", adopt),
                        ("resubmit", resubmit),
                        ("accept_paying_twice", accept),
                    ] {
                        if *value != absent {
                            body.insert(key.to_owned(), value.clone());
                        }
                    }
                    let body = Value::Object(body);
                    let accepted = serde_json::from_value::<ResolveRequest>(body.clone())
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.resolution());
                    assert_eq!(
                        schema.is_valid(&body),
                        accepted.is_ok(),
                        "{body} ({:?})",
                        accepted.err()
                    );
                    checked += 1;
                }
            }
        }
    }
    let mut unknown = json!({"adopt": "task-1", "colour": "red"});
    assert!(!schema.is_valid(&unknown));
    unknown["colour"] = json!(null);
    assert!(serde_json::from_value::<ResolveRequest>(unknown).is_err());
    assert_eq!(checked, 7 * 8 * 5 * 5);
}
