//! OpenAI Responses: structured output validates against the sent schema; errors and headers.

use encore_sim::SimConfig;
use encore_sim::openai::types::{ErrorResponse, ResponseObject};
use serde_json::{Value, json};

use crate::support::{KEY, call, fast, sim};

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
    let (_s, router) = sim(fast());
    let mut body = request(&schemars_like(), "x", 0);
    body["max_output_tokens"] = json!(16);
    let v = call(&router, "POST", "/v1/responses", Some(KEY), Some(body))
        .await
        .json();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
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
