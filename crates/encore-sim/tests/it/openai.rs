//! OpenAI Responses: structured output validates against the sent schema; errors and headers.

use encore_sim::openai::types::{ErrorResponse, OutputContent, OutputItem, ResponseObject};
use encore_sim::{JobKind, Scenario, SimConfig, SimState, serve};
use serde_json::{Value, json};

use crate::support::{KEY, call, client, fast, sim};

fn request(schema: &Value, prompt: &str, seed_hint: u64) -> Value {
    json!({
        "model": "gpt-4o-2024-08-06",
        "input": [
            { "role": "system", "content": [ { "type": "input_text", "text": "You write song plans." } ] },
            { "role": "user", "content": [ { "type": "input_text", "text": format!("{prompt} #{seed_hint}") } ] }
        ],
        "text": { "format": { "type": "json_schema", "name": "song_plan", "strict": false, "schema": schema } }
    })
}

/// A schema shaped like schemars 1 output: `$defs`/`$ref`, nullable types, `anyOf`,
/// enums, bounded arrays and numbers, formats.
fn schemars_like() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "SongPlan",
        "type": "object",
        "properties": {
            "title": { "type": "string", "minLength": 1, "maxLength": 60 },
            "style": { "type": "string", "maxLength": 200 },
            "lyrics": { "type": "string", "minLength": 200, "maxLength": 1500 },
            "language": { "type": "string", "enum": ["en", "ko"] },
            "bpm": { "type": "integer", "format": "uint16", "minimum": 60, "maximum": 180 },
            "energy": { "type": "number", "minimum": 0.0, "maximum": 1.0 },
            "explicit": { "type": "boolean" },
            "subtitle": { "type": ["string", "null"] },
            "mood": { "$ref": "#/$defs/Mood" },
            "scenes": {
                "type": "array",
                "items": { "$ref": "#/$defs/Scene" },
                "minItems": 3,
                "maxItems": 5
            },
            "cover": { "anyOf": [ { "$ref": "#/$defs/Cover" }, { "type": "null" } ] },
            "release": { "type": "string", "format": "date" },
            "hashtags": { "type": "array", "items": { "type": "string", "maxLength": 20 }, "uniqueItems": true, "maxItems": 4 }
        },
        "required": ["title", "style", "lyrics", "language", "bpm", "energy", "explicit",
                     "subtitle", "mood", "scenes", "cover", "release", "hashtags"],
        "additionalProperties": false,
        "$defs": {
            "Mood": { "type": "string", "enum": ["happy", "calm", "epic"] },
            "Scene": {
                "type": "object",
                "properties": {
                    "caption": { "type": "string", "maxLength": 80 },
                    "start_s": { "type": "number", "exclusiveMinimum": 0, "maximum": 240 },
                    "index": { "type": "integer", "minimum": 0 }
                },
                "required": ["caption", "start_s", "index"],
                "additionalProperties": false
            },
            "Cover": {
                "oneOf": [
                    { "type": "string", "const": "photo", "description": "a photo" },
                    { "type": "string", "const": "illustration", "description": "drawn" }
                ]
            }
        }
    })
}

async fn generate(schema: &Value, prompt: &str, n: u64) -> (Value, ResponseObject) {
    let (_state, router) = sim(fast());
    let reply = call(
        &router,
        "POST",
        "/v1/responses",
        Some(KEY),
        Some(request(schema, prompt, n)),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let resp: ResponseObject = serde_json::from_value(reply.json()).unwrap();
    let out: Value = serde_json::from_str(&resp.output_text()).expect("output_text is JSON");
    (out, resp)
}

#[tokio::test]
async fn structured_output_validates_against_the_sent_schema() {
    let schemas = [
        schemars_like(),
        json!({
            "type": "object",
            "properties": {
                "title": { "type": "string" },
                "style": { "type": "string" },
                "lyrics": { "type": "string" }
            },
            "required": ["title", "style", "lyrics"],
            "additionalProperties": false
        }),
        json!({ "type": "array", "items": { "type": "integer", "multipleOf": 5, "minimum": 1, "maximum": 99 }, "minItems": 1 }),
        json!({ "type": "object", "properties": { "tags": { "type": "array", "items": { "type": "string", "enum": ["a", "b", "c"] }, "minItems": 2, "maxItems": 2 } }, "required": ["tags"] }),
    ];
    for (i, schema) in schemas.iter().enumerate() {
        let validator = jsonschema::validator_for(schema).expect("valid schema");
        for n in 0..12 {
            let (out, _) = generate(schema, "A song for Sunrise Bakery in Portland", n).await;
            let errors: Vec<String> = validator.iter_errors(&out).map(|e| e.to_string()).collect();
            assert!(
                errors.is_empty(),
                "schema {i}, run {n}: {errors:?}\n{out:#}"
            );
        }
    }
}

#[tokio::test]
async fn lyrics_look_like_lyrics_and_follow_the_prompt_language() {
    let schema = schemars_like();
    let (out, _) = generate(&schema, "A song for Sunrise Bakery in Portland", 1).await;
    let lyrics = out["lyrics"].as_str().unwrap();
    assert!(lyrics.starts_with("[Verse]\n"), "{lyrics}");
    assert!(lyrics.contains("[Chorus]"), "{lyrics}");
    assert!(lyrics.lines().count() > 5);
    let style = out["style"].as_str().unwrap();
    assert!(style.contains(", "), "{style}");

    let (ko, _) = generate(&schema, "서울 성수동의 작은 카페 모카하우스를 위한 노래", 1).await;
    let lyrics = ko["lyrics"].as_str().unwrap();
    assert!(
        lyrics
            .chars()
            .any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)),
        "{lyrics}"
    );
    assert!(lyrics.contains("[Verse]"));
}

#[tokio::test]
async fn output_is_deterministic_per_seed_and_content() {
    let schema = schemars_like();
    let body = request(&schema, "Sunrise Bakery", 0);
    let text = |seed| {
        let body = body.clone();
        async move {
            let (_s, router) = sim(SimConfig { seed, ..fast() });
            let r = call(&router, "POST", "/v1/responses", Some(KEY), Some(body)).await;
            serde_json::from_value::<ResponseObject>(r.json())
                .unwrap()
                .output_text()
        }
    };
    assert_eq!(text(7).await, text(7).await);
    assert_ne!(text(7).await, text(8).await);
}

#[tokio::test]
async fn response_object_and_headers() {
    let (state, router) = sim(fast());
    let r = call(
        &router,
        "POST",
        "/v1/responses",
        Some(KEY),
        Some(request(&schemars_like(), "x", 0)),
    )
    .await;
    let v = r.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(
        r.headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    for h in [
        "x-ratelimit-limit-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-requests",
        "x-ratelimit-reset-tokens",
    ] {
        assert!(r.headers.contains_key(h), "missing {h}");
    }
    assert_eq!(state.ledger().openai_responses, 1);
}

#[tokio::test]
async fn small_max_output_tokens_gives_incomplete() {
    let (state, router) = sim(fast());
    let mut body = request(&schemars_like(), "x", 0);
    body["max_output_tokens"] = json!(16);
    body["store"] = json!(false);
    let v = call(&router, "POST", "/v1/responses", Some(KEY), Some(body))
        .await
        .json();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(v["store"], false);
    assert_eq!(v["max_output_tokens"], 16);
    assert_eq!(v["usage"]["output_tokens"], 16);
    let resp: ResponseObject = serde_json::from_value(v).unwrap();
    assert!(
        serde_json::from_str::<Value>(&resp.output_text()).is_err(),
        "cut-off JSON"
    );
    let ledger = state.ledger();
    let job = &ledger.jobs[0];
    assert_eq!(job.final_status, "incomplete");
    assert_eq!((job.store, job.max_output_tokens), (Some(false), Some(16)));
    assert_eq!(job.ready_after_virtual_s, None, "no usable result");
}

/// Each scripted outcome, in order, over real loopback; then normal answers again.
#[tokio::test]
async fn scripted_outcomes_shape_the_response() {
    let scenario = Scenario::from_toml(
        r#"
[openai]
outcomes = ["reasoning", "refusal", "failed_server_error", "failed_invalid_prompt",
            "incomplete_max_output_tokens", "incomplete_content_filter"]
"#,
    )
    .unwrap();
    let sim = serve(
        SimState::new(SimConfig { scenario, ..fast() }),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let c = client();
    let mut answers = Vec::new();
    for n in 0..7 {
        let mut body = request(&schemars_like(), "a bakery", n);
        body["store"] = json!(false);
        body["max_output_tokens"] = json!(4000);
        let r = c
            .post(format!("{}/v1/responses", sim.base_url()))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "every outcome is an HTTP 200");
        let v: Value = r.json().await.unwrap();
        let typed: ResponseObject = serde_json::from_value(v.clone()).unwrap();
        answers.push((v, typed));
    }
    // reasoning: a reasoning item before the message, reasoning tokens counted
    let (v, r) = &answers[0];
    assert_eq!(r.status, "completed");
    assert_eq!(v["output"][0]["type"], "reasoning");
    assert!(v["output"][0]["id"].as_str().unwrap().starts_with("rs_"));
    assert_eq!(v["output"][1]["type"], "message");
    assert!(
        v["usage"]["output_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    serde_json::from_str::<Value>(&r.output_text()).expect("the message is still valid JSON");
    // refusal: completed, one refusal part, no output_text
    let (v, r) = &answers[1];
    assert_eq!(r.status, "completed");
    assert_eq!(v["output"][0]["content"][0]["type"], "refusal");
    assert_eq!(
        v["output"][0]["content"][0]["refusal"],
        encore_sim::openai::REFUSAL_TEXT
    );
    assert_eq!(r.output_text(), "");
    // failed: transient server_error, then permanent invalid_prompt; no output
    for (i, code) in [(2, "server_error"), (3, "invalid_prompt")] {
        let (v, r) = &answers[i];
        assert_eq!(r.status, "failed");
        assert_eq!(r.error.as_ref().unwrap().code, code);
        assert!(v["error"]["message"].is_string());
        assert!(r.output.is_empty() && v["completed_at"].is_null());
    }
    // incomplete with each reason; the text is cut off
    for (i, reason) in [(4, "max_output_tokens"), (5, "content_filter")] {
        let (v, r) = &answers[i];
        assert_eq!(r.status, "incomplete");
        assert_eq!(v["incomplete_details"]["reason"], reason);
        assert!(matches!(&r.output[0], OutputItem::Message(m) if m.status == "incomplete"));
        assert!(serde_json::from_str::<Value>(&r.output_text()).is_err());
    }
    // then normal again
    let (_, r) = &answers[6];
    assert_eq!(r.status, "completed");
    assert!(matches!(&r.output[0], OutputItem::Message(m)
        if matches!(m.content[0], OutputContent::OutputText { .. })));
    let ledger = sim.ledger();
    let statuses: Vec<&str> = ledger
        .jobs_of(JobKind::OpenaiResponse)
        .map(|j| j.final_status.as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "completed",
            "completed",
            "failed",
            "failed",
            "incomplete",
            "incomplete",
            "completed"
        ],
        "every created response is billed"
    );
    for job in ledger.jobs_of(JobKind::OpenaiResponse) {
        assert_eq!(
            (job.store, job.max_output_tokens),
            (Some(false), Some(4000))
        );
        assert_eq!(
            job.ready_after_virtual_s.is_some(),
            job.final_status == "completed"
        );
        assert_eq!(job.ready_at_ms.is_some(), job.final_status == "completed");
    }
    sim.shutdown().await;
}

async fn error_of(body: Value, key: Option<&str>, config: SimConfig) -> (u16, ErrorResponse) {
    let (state, router) = sim(config);
    let r = call(&router, "POST", "/v1/responses", key, Some(body)).await;
    assert!(r.headers.contains_key("x-request-id"));
    assert_eq!(state.ledger().openai_responses, 0, "errors bill nothing");
    (
        r.status.as_u16(),
        serde_json::from_value(r.json()).expect("OpenAI error shape"),
    )
}

#[tokio::test]
async fn validation_and_auth_errors_use_openai_format() {
    let good = request(&schemars_like(), "x", 0);
    let mut no_model = good.clone();
    no_model.as_object_mut().unwrap().remove("model");
    let (s, e) = error_of(no_model, Some(KEY), fast()).await;
    assert_eq!((s, e.error.param.as_deref()), (400, Some("model")));
    assert_eq!(e.error.kind, "invalid_request_error");
    assert_eq!(e.error.code.as_deref(), Some("missing_required_parameter"));

    let mut no_input = good.clone();
    no_input.as_object_mut().unwrap().remove("input");
    let (s, e) = error_of(no_input, Some(KEY), fast()).await;
    assert_eq!((s, e.error.param.as_deref()), (400, Some("input")));

    let mut bad_role = good.clone();
    bad_role["input"][0]["role"] = json!("robot");
    let (_, e) = error_of(bad_role, Some(KEY), fast()).await;
    assert_eq!(e.error.param.as_deref(), Some("input[0].role"));

    let mut bad_type = good.clone();
    bad_type["text"]["format"]["type"] = json!("yaml");
    let (_, e) = error_of(bad_type, Some(KEY), fast()).await;
    assert_eq!(e.error.param.as_deref(), Some("text.format.type"));

    let mut no_name = good.clone();
    no_name["text"]["format"]
        .as_object_mut()
        .unwrap()
        .remove("name");
    let (_, e) = error_of(no_name, Some(KEY), fast()).await;
    assert_eq!(e.error.param.as_deref(), Some("text.format.name"));

    let mut bad_name = good.clone();
    bad_name["text"]["format"]["name"] = json!("song plan!");
    let (_, e) = error_of(bad_name, Some(KEY), fast()).await;
    assert_eq!(e.error.param.as_deref(), Some("text.format.name"));

    let mut no_schema = good.clone();
    no_schema["text"]["format"]
        .as_object_mut()
        .unwrap()
        .remove("schema");
    let (_, e) = error_of(no_schema, Some(KEY), fast()).await;
    assert_eq!(e.error.param.as_deref(), Some("text.format.schema"));

    let mut loose_strict = good.clone();
    loose_strict["text"]["format"]["strict"] = json!(true);
    loose_strict["text"]["format"]["schema"] =
        json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let (s, e) = error_of(loose_strict, Some(KEY), fast()).await;
    assert_eq!(
        (s, e.error.code.as_deref()),
        (400, Some("invalid_json_schema"))
    );
    assert!(
        e.error.message.contains("additionalProperties"),
        "{}",
        e.error.message
    );

    let (s, e) = error_of(good.clone(), None, fast()).await;
    assert_eq!(s, 401);
    assert!(e.error.message.contains("API key"));
    let closed = SimConfig {
        api_keys: Some(vec!["sk-right-key-000000".into()]),
        ..fast()
    };
    let (s, e) = error_of(good.clone(), Some("sk-wrong-key-999999"), closed).await;
    assert_eq!((s, e.error.code.as_deref()), (401, Some("invalid_api_key")));
    assert!(
        !e.error.message.contains("sk-wrong-key-999999"),
        "key must be masked"
    );

    let (_state, router) = sim(fast());
    let r = call(&router, "POST", "/v1/responses", Some(KEY), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}
