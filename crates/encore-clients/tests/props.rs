//! Hostile input (issue 6): property tests of the response decoders and classifiers of the three
//! clients, end to end through the public API with an in-memory transport, and of the config
//! loader. Every property states what the code promises for *any* input: no panic, and either a
//! typed error of one of the documented classes or a sane value.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use encore_clients::creatomate::{CreatomateClient, RenderRequest};
use encore_clients::openai::OpenAiClient;
use encore_clients::suno::{GenerateRequest, SunoClient};
use encore_clients::{ApiKey, Config, Endpoint, Error, ErrorKind, Http};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::Full;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The calls and the documented answers they are fed
// ---------------------------------------------------------------------------------------------

/// A key a hostile server may echo back; it must never show in an error.
const KEY: &str = "sk-test-SENTINEL-props-4d1e";

/// One attempt per call (the global switch), and billed OpenAI calls not replayed either, so a
/// "may have run" failure of every billed endpoint shows as [`ErrorKind::Ambiguous`].
static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::from_toml_str(
        "retries = false\n[endpoints.openai_responses]\nretry_ambiguous = false\n",
    )
    .expect("valid test config")
});

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    OpenAi,
    SunoGenerate,
    SunoStatus,
    SunoTimestamps,
    SunoCredits,
    Templates,
    Template,
    Render,
    RenderStatus,
}

const CALLS: [Call; 9] = [
    Call::OpenAi,
    Call::SunoGenerate,
    Call::SunoStatus,
    Call::SunoTimestamps,
    Call::SunoCredits,
    Call::Templates,
    Call::Template,
    Call::Render,
    Call::RenderStatus,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    OpenAi,
    Suno,
    Creatomate,
}

impl Call {
    fn endpoint(self) -> Endpoint {
        match self {
            Call::OpenAi => Endpoint::OpenAiResponses,
            Call::SunoGenerate => Endpoint::SunoGenerate,
            Call::SunoStatus => Endpoint::SunoStatus,
            Call::SunoTimestamps => Endpoint::SunoTimestamps,
            Call::SunoCredits => Endpoint::SunoCredits,
            Call::Templates | Call::Template => Endpoint::CreatomateTemplates,
            Call::Render => Endpoint::CreatomateRender,
            Call::RenderStatus => Endpoint::CreatomateStatus,
        }
    }

    fn api(self) -> Api {
        match self {
            Call::OpenAi => Api::OpenAi,
            Call::SunoGenerate | Call::SunoStatus | Call::SunoTimestamps | Call::SunoCredits => {
                Api::Suno
            }
            Call::Templates | Call::Template | Call::Render | Call::RenderStatus => Api::Creatomate,
        }
    }
}

/// What the OpenAI call asks for.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[expect(dead_code, reason = "only decoded")]
struct Song {
    title: String,
    style: String,
    lyrics: String,
}

/// The documented examples (shared/reference/apis.md) of each service: successes for every
/// call and the error bodies, so that a mutation can turn one into the other.
fn documents(api: Api) -> Vec<Value> {
    match api {
        Api::OpenAi => vec![
            json!({
                "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
                "object": "response", "created_at": 1_741_476_542, "status": "completed",
                "completed_at": 1_741_476_543, "error": null, "incomplete_details": null,
                "instructions": null, "max_output_tokens": null, "model": "gpt-5.4",
                "output": [
                    {"type": "reasoning", "id": "rs_1", "summary": []},
                    {"type": "message", "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e6", "status": "completed",
                     "role": "assistant", "content": [{"type": "output_text",
                     "text": "{\"title\":\"Night City\",\"style\":\"synthwave\",\"lyrics\":\"[Verse]\\nNeon\"}",
                     "annotations": []}]}
                ],
                "parallel_tool_calls": true, "previous_response_id": null,
                "reasoning": {"effort": null, "summary": null}, "store": true, "temperature": 1.0,
                "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
                "truncation": "disabled",
                "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0},
                          "total_tokens": 123},
                "user": null, "metadata": {}
            }),
            json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
                   "output": [{"type": "message", "content": [{"type": "output_text", "text": "{\"title\":"}]}]}),
            json!({"status": "failed", "error": {"code": "server_error", "message": "boom"}, "output": []}),
            json!({"status": "completed", "output": [{"type": "message", "content": [
                   {"type": "refusal", "refusal": "I can't help with that."}]}]}),
            json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                   "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
            json!({"error": {"message": "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29937, Requested 385. Please try again in 644ms.",
                   "type": "tokens", "param": null, "code": "rate_limit_exceeded"}}),
            json!({"error": {"message": "Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 31538.",
                   "type": "tokens", "param": null, "code": "rate_limit_exceeded"}}),
        ],
        Api::Suno => vec![
            json!({"code": 200, "msg": "success", "data": {"taskId": "5c79****be8e"}}),
            json!({"code": 200, "msg": "success", "data": {
                "taskId": "5c79****be8e", "parentMusicId": "",
                "param": "{\"prompt\":\"A calm piano track\",\"style\":\"Classical\",\"title\":\"Peaceful Piano\",\"customMode\":true,\"instrumental\":true,\"model\":\"V4_5ALL\"}",
                "response": {"taskId": "5c79****be8e", "sunoData": [{
                    "id": "8551****662c", "audioUrl": "https://example.cn/****.mp3",
                    "streamAudioUrl": "https://example.cn/****", "imageUrl": "https://example.cn/****.jpeg",
                    "prompt": "[Verse] ...", "modelName": "chirp-v3-5", "title": "Peaceful Piano",
                    "tags": "electrifying, rock", "createTime": "2025-01-01 00:00:00", "duration": 198.44
                }]},
                "status": "SUCCESS", "type": "GENERATE", "errorCode": null, "errorMessage": null
            }}),
            json!({"code": 200, "msg": "success", "data": {
                "alignedWords": [{"word": "[Verse]\nWaggin'", "success": true, "startS": 1.36, "endS": 1.79, "palign": 0}],
                "waveformData": [0, 1, 0.5, 0.75], "hootCer": 0.380_319_148_936_170_2, "isStreamed": false
            }}),
            json!({"code": 200, "msg": "success", "data": 120}),
            json!({"code": 429, "msg": "Insufficient credits", "data": null}),
            json!({"code": 430, "msg": "Your call frequency is too high.", "data": null}),
        ],
        Api::Creatomate => vec![
            json!([{
                "id": "69ba407b-72a9-4050-a9fb-559827b9623d", "status": "planned",
                "url": "https://cdn.creatomate.com/renders/69ba407b-72a9-4050-a9fb-559827b9623d.mp4",
                "template_id": "9e90d011-52e6-49dc-8a7a-5f25058c2568", "template_name": "Your Template Name",
                "template_tags": [], "output_format": "mp4", "render_scale": 1,
                "modifications": {"Title": "Hello"}, "webhook_url": "https://example.test/hook",
                "metadata": "order-1234"
            }]),
            json!({
                "id": "69ba407b-72a9-4050-a9fb-559827b9623d", "status": "succeeded",
                "url": "https://cdn.creatomate.com/renders/69ba407b-72a9-4050-a9fb-559827b9623d.mp4",
                "snapshot_url": "https://cdn.creatomate.com/snapshots/69ba407b-72a9-4050-a9fb-559827b9623d.jpg",
                "template_id": "9e90d011-52e6-49dc-8a7a-5f25058c2568", "template_name": "Your Template Name",
                "template_tags": [], "output_format": "mp4", "render_scale": 1, "width": 720,
                "height": 900, "frame_rate": 60, "duration": 15.5, "file_size": 751_089
            }),
            json!([{"id": "c937d125-b99b-4690-96f0-6aa1f09438c9", "name": "My Template",
                    "tags": ["My", "Assigned", "Tags"], "created_at": "2026-01-01 12:00:00.000 +0200",
                    "updated_at": "2026-01-01 12:00:00.000 +0200"}]),
            json!({"id": "c937d125-b99b-4690-96f0-6aa1f09438c9", "name": "My Template", "tags": [],
                   "source": {"output_format": "mp4", "elements": [{"name": "Title", "type": "text"}]}}),
            json!({"hint": "Insufficient credits", "documentation_url": "https://creatomate.com/docs"}),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations of valid documents
// ---------------------------------------------------------------------------------------------

/// Raw JSON literals no `serde_json::Value` can hold: out-of-range and over-long numbers.
const RAW_NUMBERS: [&str; 8] = [
    "1e400",
    "-1e400",
    "123456789012345678901234567890",
    "-0",
    "18446744073709551616",
    "-9223372036854775809",
    "1e-400",
    "0.00000000000000000000000000000000000000000000001",
];
const RAW_MARK: &str = "\u{1}raw:";

/// Keys the decoders look for, to insert where they do not belong.
const KEYS: [&str; 30] = [
    "code",
    "msg",
    "data",
    "taskId",
    "status",
    "response",
    "sunoData",
    "id",
    "audioUrl",
    "duration",
    "alignedWords",
    "word",
    "startS",
    "output",
    "content",
    "type",
    "text",
    "refusal",
    "error",
    "message",
    "incomplete_details",
    "reason",
    "hint",
    "url",
    "file_size",
    "tags",
    "source",
    "param",
    "createTime",
    "errorCode",
];

/// A replacement value of any type: null, bools, extreme numbers (also as raw literals), short,
/// huge and number-like strings, the words the decoders branch on, the API key, containers.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just(0_i64),
            Just(200),
            Just(405),
            Just(429),
            Just(430),
            Just(455),
            Just(500)
        ]
        .prop_map(Value::from),
        select(&RAW_NUMBERS[..]).prop_map(|raw| Value::from(format!("{RAW_MARK}{raw}"))),
        any::<String>().prop_map(Value::from),
        select(&[300_usize, 5_000, 100_000][..]).prop_map(|n| Value::from("x".repeat(n))),
        select(
            &[
                "",
                " ",
                "inf",
                "-inf",
                "NaN",
                "1e999",
                "-1",
                "200",
                "12.5",
                "SUCCESS",
                "failed",
                "completed",
                "incomplete",
                "in_progress",
                "message",
                "output_text",
                "refusal",
                "reasoning",
                "succeeded",
                "cancelled",
                "[Verse]\n",
                "\u{202e}evil\u{0301}",
                KEY,
            ][..]
        )
        .prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!([null, 1, "a", {"id": 1}])),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Removes the node (a key of its object, an element of its array).
    Delete(usize),
    /// Replaces the node with a value of any type.
    Replace(usize, Value),
    /// Adds a key to the node (an object), an element (an array), or wraps it into an object.
    Insert(usize, String, Value),
    /// Wraps the node into `depth` arrays or single-key objects (past serde_json's limit of 128).
    Nest(usize, usize, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let key = prop_oneof![
        3 => select(&KEYS[..]).prop_map(str::to_owned),
        1 => any::<String>()
    ];
    prop_oneof![
        3 => any::<usize>().prop_map(Mutation::Delete),
        4 => (any::<usize>(), leaf()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        2 => (any::<usize>(), key, leaf()).prop_map(|(at, k, v)| Mutation::Insert(at, k, v)),
        1 => (any::<usize>(), prop_oneof![1..10_usize, 120..200_usize], any::<bool>())
            .prop_map(|(at, depth, arrays)| Mutation::Nest(at, depth, arrays)),
    ]
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every node of `value`, pre-order, as paths from the root.
fn paths(value: &Value) -> Vec<Vec<Seg>> {
    fn walk(value: &Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        out.push(path.clone());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    path.push(Seg::Key(k.clone()));
                    walk(v, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    walk(v, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a>(mut value: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    for seg in path {
        value = match (seg, value) {
            (Seg::Key(k), Value::Object(map)) => map.get_mut(k).expect("path exists"),
            (Seg::Index(i), Value::Array(items)) => &mut items[*i],
            _ => unreachable!("paths come from the same value"),
        };
    }
    value
}

fn mutate(doc: &mut Value, m: Mutation) {
    let all = paths(doc);
    let pick = |at: usize| all[at % all.len()].clone();
    match m {
        Mutation::Delete(at) => {
            let path = pick(at);
            let Some((last, parent)) = path.split_last() else {
                *doc = Value::Null;
                return;
            };
            match (last, node_mut(doc, parent)) {
                (Seg::Key(k), Value::Object(map)) => {
                    map.remove(k);
                }
                (Seg::Index(i), Value::Array(items)) => {
                    items.remove(*i);
                }
                _ => unreachable!(),
            }
        }
        Mutation::Replace(at, with) => *node_mut(doc, &pick(at)) = with,
        Mutation::Insert(at, key, with) => match node_mut(doc, &pick(at)) {
            Value::Object(map) => {
                map.insert(key, with);
            }
            Value::Array(items) => items.push(with),
            other => *other = json!({ key: with }),
        },
        Mutation::Nest(at, depth, arrays) => {
            let node = node_mut(doc, &pick(at));
            let mut inner = node.take();
            for _ in 0..depth {
                inner = if arrays {
                    json!([inner])
                } else {
                    json!({ "data": inner })
                };
            }
            *node = inner;
        }
    }
}

#[derive(Debug, Clone)]
enum TextMutation {
    Truncate(usize),
    Garbage(usize, Vec<u8>),
    FlipByte(usize, u8),
}

fn text_mutation() -> impl Strategy<Value = TextMutation> {
    let garbage = prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..8),
        select(
            &[
                "\"",
                "{",
                "]",
                ",",
                "\\u",
                "\u{0}",
                "null",
                "\"code\":429,",
                KEY
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    prop_oneof![
        any::<usize>().prop_map(TextMutation::Truncate),
        (any::<usize>(), garbage).prop_map(|(at, g)| TextMutation::Garbage(at, g)),
        (any::<usize>(), 1..=255_u8).prop_map(|(at, x)| TextMutation::FlipByte(at, x)),
    ]
}

fn serialize(doc: &Value) -> Vec<u8> {
    let mut text = serde_json::to_string(doc).expect("a Value serializes");
    for raw in RAW_NUMBERS {
        text = text.replace(&format!("\"\\u0001raw:{raw}\""), raw);
    }
    text.into_bytes()
}

fn mutate_text(bytes: &mut Vec<u8>, m: TextMutation) {
    let len = bytes.len();
    match m {
        TextMutation::Truncate(at) => bytes.truncate(at % (len + 1)),
        TextMutation::Garbage(at, g) => {
            let at = at % (len + 1);
            bytes.splice(at..at, g);
        }
        TextMutation::FlipByte(at, x) if len > 0 => bytes[at % len] ^= x,
        TextMutation::FlipByte(..) => {}
    }
}

/// A body for `api`: arbitrary bytes or text, an untouched documented example, or one mutated
/// structurally and then textually.
/// A word the decoders branch on, or any value.
fn word(words: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![3 => select(words).prop_map(Value::from), 1 => leaf()]
}

/// The shape every answer of `api` has, with the fields the classification reads set to the
/// values its table lists (or anything): Suno envelopes with every documented body code, OpenAI
/// error bodies and response states, Creatomate hints.
fn shaped(api: Api) -> BoxedStrategy<Value> {
    match api {
        Api::Suno => (
            prop_oneof![
                3 => select(&[200_i64, 400, 401, 404, 405, 408, 409, 413, 429, 430, 451, 455, 500, 501, 503, 531][..]),
                1 => any::<i64>(),
            ],
            word(&["Invalid parameters", "Invalid parameters: task not found", "Task Not Found",
                   "The audio is not ready yet, please try again later"]),
            leaf(),
        )
            .prop_map(|(code, msg, data)| json!({"code": code, "msg": msg, "data": data}))
            .boxed(),
        Api::OpenAi => prop_oneof![
            (
                word(&["Request too large for gpt-4o", "You exceeded your current quota", "Rate limit reached"]),
                word(&["insufficient_quota", "tokens", "invalid_request_error", "server_error"]),
                word(&["insufficient_quota", "rate_limit_exceeded", "invalid_api_key"]),
            )
                .prop_map(|(message, kind, code)| {
                    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
                }),
            (
                word(&["completed", "failed", "incomplete", "in_progress", "cancelled", "queued"]),
                word(&["server_error", "rate_limit_exceeded", "invalid_prompt"]),
                word(&["output_text", "refusal", "reasoning"]),
                word(&["{\"title\":\"t\",\"style\":\"s\",\"lyrics\":\"l\"}", "{\"title\":", "{\"name\":1}", ""]),
            )
                .prop_map(|(status, code, part, text)| {
                    json!({"status": status, "error": {"code": code, "message": "m"},
                           "incomplete_details": {"reason": "max_output_tokens"},
                           "output": [{"type": "message", "content": [{"type": part, "text": text, "refusal": text}]}]})
                }),
        ]
        .boxed(),
        Api::Creatomate => leaf().prop_map(|hint| json!({"hint": hint})).boxed(),
    }
}

fn body(api: Api) -> impl Strategy<Value = Vec<u8>> {
    let docs = documents(api);
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..512),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => select(docs.clone()).prop_map(|d| serialize(&d)),
        2 => shaped(api).prop_map(|d| serialize(&d)),
        6 => (
            select(docs),
            proptest::collection::vec(mutation(), 1..6),
            proptest::collection::vec(text_mutation(), 0..2),
        )
            .prop_map(|(mut doc, ms, ts)| {
                for m in ms {
                    mutate(&mut doc, m);
                }
                let mut bytes = serialize(&doc);
                for t in ts {
                    mutate_text(&mut bytes, t);
                }
                bytes
            }),
    ]
}

fn status() -> impl Strategy<Value = StatusCode> {
    prop_oneof![
        4 => select(&[200_u16, 201, 202][..]),
        4 => select(&[400_u16, 401, 402, 403, 404, 405, 408, 409, 413, 422, 429, 430, 455, 500, 502, 503, 504][..]),
        1 => 100..1000_u16,
    ]
    .prop_map(|s| StatusCode::from_u16(s).expect("100..=999"))
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let should_retry = proptest::option::weighted(
        0.3,
        prop_oneof![
            select(&["true", "false", "TRUE", " true", "no"][..]).prop_map(str::to_owned),
            any::<String>()
        ],
    );
    let after = proptest::option::weighted(
        0.2,
        prop_oneof![
            select(&["0", "1", "2.5", "-1", "86401", "1e-10", "inf", "soon"][..])
                .prop_map(str::to_owned),
            any::<String>()
        ],
    );
    let after_ms = proptest::option::weighted(0.2, any::<String>());
    (should_retry, after, after_ms).prop_map(|(should_retry, after, after_ms)| {
        let mut map = HeaderMap::new();
        for (name, value) in [
            ("x-should-retry", should_retry),
            ("retry-after", after),
            ("retry-after-ms", after_ms),
        ] {
            if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                map.insert(name, value);
            }
        }
        map
    })
}

// ---------------------------------------------------------------------------------------------
// Running one call against one canned answer
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

fn transport(answer: Arc<Answer>) -> Http {
    Http::service(tower::service_fn(
        move |_req: http::Request<Full<Bytes>>| {
            let answer = answer.clone();
            async move {
                let mut response = http::Response::new(Full::new(answer.body.clone()));
                *response.status_mut() = answer.status;
                *response.headers_mut() = answer.headers.clone();
                Ok::<_, Infallible>(response)
            }
        },
    ))
}

/// Runs `call` against `answer` on a fresh current-thread runtime; `Ok` carries a check of the
/// decoded value (`false` when it breaks a documented guarantee).
fn run(call: Call, answer: Answer) -> Result<bool, Error> {
    let http = transport(Arc::new(answer));
    let key = || ApiKey::new(KEY).expect("valid key");
    let config = &*CONFIG;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let openai = OpenAiClient::new(http.clone(), config, key());
        let suno = SunoClient::new(http.clone(), config, key());
        let creatomate = CreatomateClient::new(http, config, key());
        Ok(match call {
            Call::OpenAi => {
                let _: Song = openai
                    .structured("Write a song.", "A bakery", "song")
                    .await?;
                true
            }
            // `generate` refuses an answer without a task id.
            Call::SunoGenerate => !suno
                .generate(&GenerateRequest::custom("[Verse]\nla", "pop", "Song"))
                .await?
                .trim()
                .is_empty(),
            Call::SunoStatus => {
                suno.task_status("task-1").await?;
                true
            }
            Call::SunoTimestamps => {
                suno.timestamped_lyrics("task-1", "audio-1").await?;
                true
            }
            Call::SunoCredits => {
                suno.credits().await?;
                true
            }
            Call::Templates => {
                creatomate.templates().await?;
                true
            }
            Call::Template => {
                creatomate.template("tpl-1").await?;
                true
            }
            // `render` refuses an answer whose render has no id.
            Call::Render => !creatomate
                .render(&RenderRequest::new("tpl-1"))
                .await?
                .id
                .is_empty(),
            Call::RenderStatus => {
                creatomate.render_status("render-1").await?;
                true
            }
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The documented classes, as seen through the public API
// ---------------------------------------------------------------------------------------------

/// The three classes of a failure (`crate::classify` in the clients). Reads replay "may have
/// run" failures like transient ones, so through the public API they are one class there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Permanent,
    Transient,
    MayHaveRun,
}

/// The class of a finished error, checking that its predicates agree with each other.
fn observe(e: &Error, billed: bool) -> Class {
    if *e.kind() == ErrorKind::Ambiguous {
        assert!(billed, "only billed calls are ambiguous: {e}");
        assert!(e.may_have_run() && !e.is_retryable() && !e.is_permanent() && !e.is_exhausted());
        return Class::MayHaveRun;
    }
    assert!(!e.may_have_run(), "may_have_run without Ambiguous: {e}");
    if e.is_permanent() {
        assert!(!e.is_retryable() && !e.is_exhausted(), "{e}");
        Class::Permanent
    } else {
        // With retries switched off, a retryable failure ends the call as "retries disabled".
        assert!(e.is_retryable() && e.is_exhausted(), "{e}");
        Class::Transient
    }
}

/// The class of an HTTP error status by plain HTTP rules, `x-should-retry` first.
fn http_class(status: StatusCode, headers: &HeaderMap) -> Class {
    let server = status.is_server_error();
    match headers.get("x-should-retry").map(HeaderValue::as_bytes) {
        Some(b"false") => Class::Permanent,
        Some(b"true") if server => Class::MayHaveRun,
        Some(b"true") => Class::Transient,
        _ if matches!(status.as_u16(), 408 | 429) => Class::Transient,
        _ if server => Class::MayHaveRun,
        _ => Class::Permanent,
    }
}

/// The kind of an HTTP error status.
fn http_kind(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        401 | 403 => ErrorKind::Unauthorized,
        429 => ErrorKind::RateLimited,
        404 => ErrorKind::NotFound,
        408 | 409 => ErrorKind::Status { status },
        400..=499 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Status { status },
    }
}

/// How the Suno client reads a body: an envelope (a JSON object with an integer `code`), or not.
enum SunoBody {
    Envelope(i64),
    NotEnvelope,
    /// JSON but not an object (serde may read an array as a positional envelope): unchecked.
    Other,
}

/// Whether the top-level JSON object repeats a key. Such a document has no defined meaning
/// (RFC 8259: names SHOULD be unique; parsers differ on which one wins), so it is not checked.
fn has_duplicate_keys(body: &[u8]) -> bool {
    struct Keys(bool);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Keys, A::Error> {
                    let mut seen = BTreeSet::new();
                    let mut duplicate = false;
                    while let Some(key) = map.next_key::<String>()? {
                        duplicate |= !seen.insert(key);
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                    Ok(Keys(duplicate))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    serde_json::from_slice::<Keys>(body).is_ok_and(|k| k.0)
}

fn suno_body(body: &[u8]) -> SunoBody {
    if has_duplicate_keys(body) {
        return SunoBody::Other;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map
            .get("code")
            .and_then(Value::as_i64)
            .map_or(SunoBody::NotEnvelope, SunoBody::Envelope),
        Ok(_) => SunoBody::Other,
        Err(_) => SunoBody::NotEnvelope,
    }
}

/// Whether a Suno envelope code 400 means "no such task": always on a status read (its one
/// parameter is the task id), on timestamped lyrics only when its `msg` says "not found".
fn unknown_task(call: Call, body: &[u8]) -> bool {
    match call {
        Call::SunoStatus => true,
        // The client keeps a `msg` that is not a string as its JSON text.
        Call::SunoTimestamps => serde_json::from_slice::<Value>(body).is_ok_and(|v| {
            let msg = match &v["msg"] {
                Value::String(m) => m.clone(),
                other => other.to_string(),
            };
            msg.to_lowercase().contains("not found")
        }),
        _ => false,
    }
}

/// What the module tables of `openai`, `suno` and `creatomate` say an error answer is: the
/// allowed classes and, where the table fixes it, the kind. `None`: no rule to check.
fn expected(call: Call, answer: &Answer) -> Option<(BTreeSet<Class>, Option<ErrorKind>)> {
    let one = |c: Class, k: Option<ErrorKind>| Some((BTreeSet::from([c]), k));
    let (status, headers) = (answer.status, &answer.headers);
    let ok = status.is_success();
    match call.api() {
        Api::Creatomate if ok => one(Class::MayHaveRun, Some(ErrorKind::Decode)),
        Api::Creatomate if status == StatusCode::PAYMENT_REQUIRED => {
            one(Class::Permanent, Some(ErrorKind::InsufficientCredits))
        }
        Api::Creatomate => one(http_class(status, headers), Some(http_kind(status))),
        Api::Suno => match suno_body(&answer.body) {
            SunoBody::Other => None,
            // Not an envelope, or one claiming success: a 2xx failed to decode, an error status
            // is judged by plain HTTP rules.
            SunoBody::NotEnvelope | SunoBody::Envelope(200) if ok => {
                one(Class::MayHaveRun, Some(ErrorKind::Decode))
            }
            SunoBody::NotEnvelope | SunoBody::Envelope(200) => {
                one(http_class(status, headers), Some(http_kind(status)))
            }
            SunoBody::Envelope(code) => {
                let as_status = u16::try_from(code)
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .unwrap_or(status);
                match code {
                    405 | 430 => one(Class::Transient, Some(ErrorKind::RateLimited)),
                    455 => one(Class::Transient, None),
                    429 => one(Class::Permanent, Some(ErrorKind::InsufficientCredits)),
                    401 => one(Class::Permanent, Some(ErrorKind::Unauthorized)),
                    404 => one(Class::Permanent, Some(ErrorKind::NotFound)),
                    400 if unknown_task(call, &answer.body) => {
                        one(Class::Permanent, Some(ErrorKind::NotFound))
                    }
                    400 | 413 => one(Class::Permanent, Some(ErrorKind::InvalidRequest)),
                    500..=599 => one(Class::MayHaveRun, None),
                    _ => one(http_class(as_status, headers), Some(http_kind(as_status))),
                }
            }
        },
        // A 2xx answer fails as garbled or refused content: permanent or may have run, by kind.
        Api::OpenAi if ok => Some((BTreeSet::from([Class::Permanent, Class::MayHaveRun]), None)),
        // Error statuses: the HTTP rules, except that a 429 may be permanent (quota, size) and a
        // 409 is transient (OpenAI's lock timeout) unless the server says otherwise.
        Api::OpenAi => {
            let class = http_class(status, headers);
            let says = headers.get("x-should-retry").map(HeaderValue::as_bytes);
            let quota = serde_json::from_slice::<Value>(&answer.body).is_ok_and(|v| {
                ["code", "type"]
                    .iter()
                    .any(|k| v["error"][k] == "insufficient_quota")
            });
            match status.as_u16() {
                429 if quota => one(Class::Permanent, Some(ErrorKind::InsufficientCredits)),
                429 => Some((BTreeSet::from([Class::Transient, Class::Permanent]), None)),
                409 if !matches!(says, Some(b"true" | b"false")) => one(Class::Transient, None),
                _ => one(class, None),
            }
        }
    }
}

/// The kinds a 2xx OpenAI answer may fail with, and the class each one allows.
fn openai_content_class(kind: &ErrorKind) -> BTreeSet<Class> {
    match kind {
        ErrorKind::Decode | ErrorKind::ResponseFailed => {
            BTreeSet::from([Class::Permanent, Class::MayHaveRun])
        }
        ErrorKind::Incomplete | ErrorKind::Refusal => BTreeSet::from([Class::Permanent]),
        other => panic!("a 2xx OpenAI answer failed as {other:?}"),
    }
}

fn check_call(call: Call, status: StatusCode, headers: HeaderMap, body: Vec<u8>) {
    let answer = Answer {
        status,
        headers,
        body: Bytes::from(body),
    };
    let expectation = expected(call, &answer);
    let billed = call.endpoint().is_billed();
    let shown = format!(
        "{call:?} answered {status} {:?} {:?}",
        answer.headers,
        String::from_utf8_lossy(&answer.body[..answer.body.len().min(400)])
    );
    match run(call, answer) {
        Ok(sane) => {
            assert!(sane, "a value breaks its guarantee: {shown}");
            assert!(status.is_success(), "an error status succeeded: {shown}");
        }
        Err(e) => {
            // The key never shows: not in the message, the server message, the code or the
            // `Debug` form.
            let text = format!("{e} {e:?} {:?} {:?}", e.server_message(), e.api_code());
            assert!(!text.contains(KEY), "the key leaked: {text}");
            assert_eq!(e.endpoint(), Some(call.endpoint()), "{e}");
            assert_eq!(e.attempts(), 1, "{e}");
            assert!(e.to_string().starts_with(call.endpoint().name()), "{e}");
            let class = observe(&e, billed);
            let normalize = |c: Class| {
                if !billed && c == Class::MayHaveRun {
                    Class::Transient
                } else {
                    c
                }
            };
            if !status.is_success() {
                // Every error status is reported; a Suno body code over HTTP 200 has none.
                assert_eq!(e.status(), Some(status), "{e}");
            }
            // An ambiguous error wraps the error it was given, with its kind.
            let inner = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<Error>());
            let kind = match inner {
                Some(inner) if *e.kind() == ErrorKind::Ambiguous => inner.kind(),
                _ => e.kind(),
            };
            if call.api() == Api::OpenAi && status.is_success() {
                let allowed: BTreeSet<_> = openai_content_class(kind)
                    .into_iter()
                    .map(normalize)
                    .collect();
                assert!(allowed.contains(&class), "{class:?} for {e}: {shown}");
            }
            if let Some((classes, expected_kind)) = expectation {
                let allowed: BTreeSet<_> = classes.into_iter().map(normalize).collect();
                assert!(
                    allowed.contains(&class),
                    "{class:?} (expected one of {allowed:?}) for {e}: {shown}"
                );
                if let Some(expected) = expected_kind {
                    assert_eq!(*kind, expected, "{e}: {shown}");
                }
            }
        }
    }
}

fn case() -> impl Strategy<Value = (Call, StatusCode, HeaderMap, Vec<u8>)> {
    select(&CALLS[..]).prop_flat_map(|call| (Just(call), status(), headers(), body(call.api())))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any answer — arbitrary bytes, or a documented example with keys deleted, types changed,
    /// keys inserted, values made huge, nested past the parser's depth limit, truncated or
    /// garbled — to any call of any client, with any status and any `x-should-retry` /
    /// `Retry-After` headers: the call never panics; it returns a value that keeps its
    /// guarantees, or an error of exactly one of the documented classes (permanent, transient,
    /// may have run) whose predicates agree, that names its endpoint, counts its one attempt,
    /// reports the HTTP status, never shows the API key, and has the class and kind the
    /// service's table gives that answer.
    #[test]
    fn any_answer_decodes_to_a_value_or_a_classified_error(
        (call, status, headers, body) in case()
    ) {
        check_call(call, status, headers, body);
    }
}

/// An error status the tables list for `api`, or a success.
fn table_status(api: Api) -> impl Strategy<Value = StatusCode> {
    let statuses: &'static [u16] = match api {
        Api::OpenAi => &[200, 429, 429, 429, 409, 408, 400, 401, 403, 404, 500, 503],
        Api::Suno => &[200, 200, 200, 400, 401, 405, 429, 430, 455, 500, 502],
        Api::Creatomate => &[200, 400, 401, 402, 403, 404, 408, 429, 500, 503],
    };
    select(statuses).prop_map(|s| StatusCode::from_u16(s).expect("a status"))
}

fn table_case() -> impl Strategy<Value = (Call, StatusCode, HeaderMap, Vec<u8>)> {
    select(&CALLS[..]).prop_flat_map(|call| {
        (
            Just(call),
            table_status(call.api()),
            headers(),
            shaped(call.api()).prop_map(|d| serialize(&d)),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The answers the classification tables are about — every Suno body code over HTTP 200 or
    /// an error status, OpenAI error bodies (quota, size, rate limit) and response states,
    /// Creatomate hints — with the statuses the tables list, checked as above: the rarer rows
    /// (Suno 455, OpenAI `insufficient_quota`) come up here every run.
    #[test]
    fn table_answers_get_their_documented_class(
        (call, status, headers, body) in table_case()
    ) {
        check_call(call, status, headers, body);
    }
}

/// The anchor of the mutations: every documented success example decodes.
#[test]
fn the_documented_examples_decode() {
    let ok = StatusCode::OK;
    for (call, doc) in [
        (Call::OpenAi, 0),
        (Call::SunoGenerate, 0),
        (Call::SunoStatus, 1),
        (Call::SunoTimestamps, 2),
        (Call::SunoCredits, 3),
        (Call::Render, 0),
        (Call::RenderStatus, 1),
        (Call::Templates, 2),
        (Call::Template, 3),
    ] {
        let body = serialize(&documents(call.api())[doc]);
        let answer = Answer {
            status: ok,
            headers: HeaderMap::new(),
            body: Bytes::from(body),
        };
        assert!(run(call, answer).unwrap(), "{call:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The config loader
// ---------------------------------------------------------------------------------------------

const EXAMPLE: &str = include_str!("../examples/encore.toml");

/// Every table, value and array-element path of a TOML document, dotted as figment names them
/// (`endpoints.suno_status.0` is the first element of an array given for a section, which serde
/// reads positionally).
fn toml_paths(table: &toml::Table) -> BTreeSet<String> {
    fn walk(value: &toml::Value, path: &str, out: &mut BTreeSet<String>) {
        out.insert(path.to_owned());
        match value {
            toml::Value::Table(sub) => {
                for (key, value) in sub {
                    walk(value, &format!("{path}.{key}"), out);
                }
            }
            toml::Value::Array(items) => {
                for (i, value) in items.iter().enumerate() {
                    walk(value, &format!("{path}.{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for (key, value) in table {
        walk(value, key, &mut out);
    }
    out
}

/// What `Config::from_toml_str` promises of an error: `invalid config: <key>: <reason>`, where
/// the key is empty for a document that is not TOML, and otherwise names a key of the input —
/// or, for the two cross-field rules, the field they name (`base_delay`, `attempt_timeout`)
/// beside the one the input set (`max_delay`, `deadline`).
fn check_config_error(input: &str, key: &str, shown: &str) {
    assert!(shown.starts_with("invalid config: "), "{shown}");
    if key.is_empty() {
        return;
    }
    assert!(shown.contains(key), "{shown}");
    let table: toml::Table = toml::from_str(input)
        .unwrap_or_else(|e| panic!("key {key:?} for a document that is not TOML ({e}): {input}"));
    let present = toml_paths(&table);
    if present.contains(key) {
        return;
    }
    let sibling = [("base_delay", "max_delay"), ("attempt_timeout", "deadline")]
        .into_iter()
        .find_map(|(named, set)| {
            let table = key.strip_suffix(named)?.strip_prefix("endpoints.")?;
            Some(format!("endpoints.{table}{set}"))
        });
    assert!(
        sibling.is_some_and(|s| present.contains(&s)),
        "{shown}: the key is not in the input\n{input}"
    );
}

/// Known keys and sections, to write TOML-looking text with.
const CONFIG_KEYS: [&str; 16] = [
    "retries",
    "connect_timeout",
    "base_url",
    "model",
    "callback_url",
    "enabled",
    "max_retries",
    "base_delay",
    "max_delay",
    "multiplier",
    "jitter",
    "attempt_timeout",
    "deadline",
    "max_retry_after",
    "retry_ambiguous",
    "bogus",
];
const SECTIONS: [&str; 9] = [
    "http",
    "openai",
    "suno",
    "creatomate",
    "endpoints",
    "endpoints.suno_status",
    "endpoints.creatomate_render",
    "endpoints.nope",
    "http.deeper",
];

/// Text that looks like a config: sections and `key = value` lines with literals of any type,
/// sometimes broken.
fn config_like_text() -> impl Strategy<Value = String> {
    let literal = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| toml::Value::Float(f).to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "\"[0-9]{1,20}(ns|ms|s|m|h|d|y)\"",
        "\"(https?|ftp)://[a-z@:.]{0,12}(/[a-z?=]{0,6})?\"",
        any::<String>().prop_map(|s| toml::Value::String(s).to_string()),
        // No datetimes: see `a_datetime_where_a_table_or_enum_belongs_names_its_key`.
        select(
            &[
                "\"\"",
                "nan",
                "-inf",
                "[1, \"a\"]",
                "{ x = 1 }",
                "\"unterminated",
                "= ="
            ][..]
        )
        .prop_map(str::to_owned),
    ];
    let line = prop_oneof![
        1 => select(&SECTIONS[..]).prop_map(|s| format!("[{s}]")),
        4 => (select(&CONFIG_KEYS[..]), literal).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "[^\n]{0,20}",
    ];
    proptest::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
}

/// A TOML value of any type for a config key — but a datetime: datetimes where a section or
/// `jitter` belongs hit the known bug of `a_datetime_where_a_table_or_enum_belongs_names_its_key`.
fn toml_value() -> impl Strategy<Value = toml::Value> {
    use toml::Value as T;
    let printable = "[ -~\u{a0}-\u{2fff}]{0,30}";
    prop_oneof![
        any::<bool>().prop_map(T::Boolean),
        any::<i64>().prop_map(T::Integer),
        (0..200_i64).prop_map(T::Integer),
        any::<f64>().prop_map(T::Float),
        "[0-9]{1,21}(ns|us|ms|s|m|h|d|w|y)".prop_map(T::String),
        "(https?|ftp|file)://[a-z0-9@:._-]{0,20}(/[a-z0-9?#=&]{0,10})?".prop_map(T::String),
        select(&["none", "full", "equal", "decorrelated", "", " "][..])
            .prop_map(|s| T::String(s.to_owned())),
        printable.prop_map(T::String),
        Just(T::Array(vec![T::Integer(1), T::String("a".into())])),
        Just(T::Table(toml::Table::from_iter([(
            "x".to_owned(),
            T::Integer(1)
        )]))),
    ]
}

#[derive(Debug, Clone)]
enum ConfigMutation {
    /// Replaces a value (or a whole table) with a value of any type.
    Replace(usize, toml::Value),
    /// Removes a key.
    Delete(usize),
    /// Adds a key (known names in the wrong place, or anything) to a table.
    Add(usize, String, toml::Value),
}

fn config_mutation() -> impl Strategy<Value = ConfigMutation> {
    let key = prop_oneof![
        select(&CONFIG_KEYS[..]).prop_map(str::to_owned),
        "[a-z_.]{1,12}",
    ];
    prop_oneof![
        5 => (any::<usize>(), toml_value()).prop_map(|(at, v)| ConfigMutation::Replace(at, v)),
        1 => any::<usize>().prop_map(ConfigMutation::Delete),
        2 => (any::<usize>(), key, toml_value()).prop_map(|(at, k, v)| ConfigMutation::Add(at, k, v)),
    ]
}

/// Every key path of `table` (tables included), as segments.
fn key_paths(table: &toml::Table) -> Vec<Vec<String>> {
    fn walk(table: &toml::Table, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for (key, value) in table {
            path.push(key.clone());
            out.push(path.clone());
            if let toml::Value::Table(sub) = value {
                walk(sub, path, out);
            }
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(table, &mut Vec::new(), &mut out);
    out
}

fn table_mut<'a>(mut table: &'a mut toml::Table, path: &[String]) -> Option<&'a mut toml::Table> {
    for key in path {
        table = table.get_mut(key)?.as_table_mut()?;
    }
    Some(table)
}

fn mutate_config(doc: &mut toml::Table, m: ConfigMutation) {
    let all = key_paths(doc);
    if all.is_empty() {
        if let ConfigMutation::Add(_, key, value) = m {
            doc.insert(key, value);
        }
        return;
    }
    match m {
        ConfigMutation::Replace(at, value) => {
            let path = &all[at % all.len()];
            let (last, parent) = path.split_last().expect("non-empty path");
            if let Some(t) = table_mut(doc, parent) {
                t.insert(last.clone(), value);
            }
        }
        ConfigMutation::Delete(at) => {
            let path = &all[at % all.len()];
            let (last, parent) = path.split_last().expect("non-empty path");
            if let Some(t) = table_mut(doc, parent) {
                t.remove(last);
            }
        }
        ConfigMutation::Add(at, key, value) => {
            // Into the table at that path, or its parent when it is a value.
            let path = &all[at % all.len()];
            if let Some(t) = table_mut(doc, path) {
                t.insert(key, value);
            } else if let Some(t) = table_mut(doc, &path[..path.len() - 1]) {
                t.insert(key, value);
            }
        }
    }
}

static EXAMPLE_TABLE: LazyLock<toml::Table> =
    LazyLock::new(|| toml::from_str(EXAMPLE).expect("the example parses"));

/// Keeps the values of `table` whose bit in `keep` is set (in the order of a walk), and the
/// tables that still hold something.
fn subset(table: &toml::Table, keep: &mut impl Iterator<Item = bool>) -> toml::Table {
    let mut out = toml::Table::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(sub) => {
                let sub = subset(sub, keep);
                if !sub.is_empty() {
                    out.insert(key.clone(), toml::Value::Table(sub));
                }
            }
            value => {
                if keep.next().unwrap_or(false) {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
    }
    out
}

/// A valid document — a random part of the documented example, so that each case stays cheap —
/// with values replaced by values of any type, keys deleted and keys added.
fn mutated_example() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(proptest::bool::weighted(0.15), 200),
        proptest::collection::vec(config_mutation(), 1..5),
    )
        .prop_map(|(keep, ms)| {
            let mut doc = subset(&EXAMPLE_TABLE, &mut keep.into_iter());
            for m in ms {
                mutate_config(&mut doc, m);
            }
            toml::to_string(&doc).expect("a table serializes")
        })
}

proptest! {
    // figment is slow in debug builds (a few ms per document): keep the count modest.
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any text as a config file: never panics; an error is `invalid config: …` and its key is
    /// empty (not TOML) or names a key of the input (see `check_config_error`); a config that
    /// loads passes `validate`.
    #[test]
    fn any_text_loads_or_names_the_offending_key(
        text in prop_oneof![any::<String>(), config_like_text()]
    ) {
        match Config::from_toml_str(&text) {
            Ok(config) => prop_assert!(config.validate().is_ok()),
            Err(e) => check_config_error(&text, e.key(), &e.to_string()),
        }
    }

    /// Parts of the documented example with values replaced by values of any type, keys deleted
    /// and keys added: never panics; an error names a key of the input (never empty: the document is
    /// TOML); a config that loads is valid and reads back unchanged from its own serialization.
    #[test]
    fn mutated_examples_load_or_name_the_offending_key(text in mutated_example()) {
        match Config::from_toml_str(&text) {
            Ok(config) => {
                prop_assert!(config.validate().is_ok());
                let again = toml::to_string(&config).expect("a config serializes");
                prop_assert_eq!(Config::from_toml_str(&again).expect("reads back"), config);
            }
            Err(e) => {
                prop_assert!(!e.key().is_empty(), "{}\n{}", e, text);
                check_config_error(&text, e.key(), &e.to_string());
            }
        }
    }
}

/// Regression (found by `table_answers_get_their_documented_class`, fixed): an API key the server echoes in an error
/// *code* (OpenAI `error.code` / `error.type`, a failed response's `error.code`, an incomplete
/// response's `reason`) is redacted from the message (`… (***)`) but kept as it is in
/// `Error::api_code()` and so in the `Debug` form. `Error::redact`
/// (crates/encore-clients/src/error.rs) redacts `detail`, `server_message` and the source, not
/// `api_code`.
#[test]
fn an_echoed_key_is_redacted_everywhere() {
    for (status, body) in [
        (
            429,
            json!({"error": {"message": "m", "type": "tokens", "code": KEY}}),
        ),
        (
            400,
            json!({"error": {"message": "m", "type": KEY, "code": null}}),
        ),
        (
            200,
            json!({"status": "failed", "error": {"code": KEY, "message": "m"}}),
        ),
        (
            200,
            json!({"status": "incomplete", "incomplete_details": {"reason": KEY}}),
        ),
    ] {
        let answer = Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from(serialize(&body)),
        };
        let err = run(Call::OpenAi, answer).unwrap_err();
        assert!(!err.to_string().contains(KEY), "{err}");
        assert!(!err.api_code().unwrap_or_default().contains(KEY), "{err:?}");
        assert!(!format!("{err:?}").contains(KEY), "{err:?}");
    }
}

/// Regression (found by `mutated_examples_load_or_name_the_offending_key`, fixed): a TOML datetime where a section
/// or an enum (`jitter`) belongs is reported against a key that is not in the input:
/// `invalid config: creatomate.$__toml_private_datetime: unknown key (expected one of:
/// base_url)`, `endpoints.suno_status.jitter.$__toml_private_datetime: unknown variant …`.
/// figment represents a TOML datetime as a one-key map, and `ConfigError::from_figment`
/// (crates/encore-clients/src/config.rs) passes that private key through. A datetime for a plain
/// value (`retries = 1979-05-27T07:32:00Z`) does name `retries` ("found map, expected a boolean").
#[test]
fn a_datetime_where_a_table_or_enum_belongs_names_its_key() {
    for (doc, key) in [
        ("creatomate = 1979-05-27T07:32:00Z", "creatomate"),
        ("endpoints = 1979-05-27T07:32:00Z", "endpoints"),
        (
            "[endpoints]\nsuno_status = 1979-05-27",
            "endpoints.suno_status",
        ),
        (
            "[endpoints.suno_status]\njitter = 07:32:00",
            "endpoints.suno_status.jitter",
        ),
    ] {
        let err = Config::from_toml_str(doc).unwrap_err();
        assert_eq!(err.key(), key, "{err}");
        assert!(!err.to_string().contains("$__toml_private"), "{err}");
    }
}
