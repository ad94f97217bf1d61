//! `encore serve` end to end over loopback: the API, callbacks from the simulator, the worker,
//! against a real SQLite store (real time, the simulator at a fast time scale).

use std::cell::RefCell;
use std::time::Duration;

use encore_clients::{ApiKey, Config, Http};
use encore_pipeline::{Keys, PipelineConfig};
use encore_service::server::{self, RunningServer, SecretText, ServeConfig, ServerParts};
use encore_sim::{JobKind, RouteId, RunningSim, Scenario, SimConfig, SimState};
use encore_store::{Store, StoreOptions};
use serde_json::{Value, json};

pub const TIME_SCALE: f64 = 0.005;
pub const TOKEN: &str = "test-api-token-0123456789";

pub struct Service {
    pub sim: RunningSim,
    pub server: Option<RunningServer>,
    pub base: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub scenario: &'static str,
    pub sim_callbacks: bool,
    pub callbacks: bool,
    pub token: bool,
    pub reconcile_window: Duration,
    /// The job store (default: an SQLite file of the test's own).
    pub store: Option<String>,
    pub store_options: StoreOptions,
    pub lease_ttl: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scenario: "",
            sim_callbacks: true,
            callbacks: true,
            token: false,
            reconcile_window: Duration::from_secs(20),
            store: None,
            store_options: StoreOptions::default(),
            lease_ttl: Duration::from_secs(5),
        }
    }
}

pub fn pipeline_settings() -> PipelineConfig {
    let mut p = PipelineConfig {
        template_id: encore_sim::DEMO_TEMPLATE_ID.to_owned(),
        ..PipelineConfig::default()
    };
    p.song_poll = p.song_poll.for_time_scale(TIME_SCALE);
    p.video_poll = p.video_poll.for_time_scale(TIME_SCALE);
    p.callback_poll_interval = Duration::from_millis(300);
    p.not_found_grace = Duration::from_millis(500);
    p
}

pub async fn service(options: Options) -> Service {
    let sim = encore_sim::serve(
        SimState::new(SimConfig {
            time_scale: TIME_SCALE,
            scenario: Scenario::from_toml(options.scenario).unwrap(),
            callbacks: options.sim_callbacks,
            ..SimConfig::default()
        }),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = options
        .store
        .clone()
        .unwrap_or_else(|| dir.path().join("jobs.db").to_str().unwrap().to_owned());
    let store = Store::open_with(&target, options.store_options.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config::default().with_base(&sim.base_url());
    let serve = ServeConfig {
        public_url: options.callbacks.then(|| format!("http://{addr}")),
        api_token: options.token.then(|| SecretText::new(TOKEN)),
        lease_ttl: options.lease_ttl,
        claim_interval: Duration::from_millis(100),
        reconcile_window: options.reconcile_window,
        shutdown_grace: Duration::from_secs(5),
        ..ServeConfig::default()
    };
    let server = server::start(
        listener,
        ServerParts {
            store,
            config: serve,
            http: Http::for_config(&config).unwrap(),
            clients: config,
            keys: Keys {
                openai: ApiKey::new("sk-serve-test").unwrap(),
                suno: ApiKey::new("suno-serve-test").unwrap(),
                creatomate: ApiKey::new("creatomate-serve-test").unwrap(),
            },
            pipeline: pipeline_settings(),
            owner: "test-worker".into(),
        },
    )
    .await
    .unwrap();
    Service {
        sim,
        server: Some(server),
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

pub fn job_body() -> Value {
    json!({"business": "a bakery in Mangwon-dong", "name": "Haneul", "lang": "en"})
}

impl Service {
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub async fn submit(&self, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut request = self.request(reqwest::Method::POST, "/v1/jobs").json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn job(&self, id: &str) -> Value {
        self.request(reqwest::Method::GET, &format!("/v1/jobs/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the job's status is one of `statuses`.
    pub async fn wait_for(&self, id: &str, statuses: &[&str]) -> Value {
        for _ in 0..400 {
            let job = self.job(id).await;
            if statuses.contains(&job["status"].as_str().unwrap_or_default()) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "job {id} never reached {statuses:?}: {:#}",
            self.job(id).await
        );
    }

    pub fn billed(&self, kind: JobKind) -> Vec<String> {
        self.sim
            .ledger()
            .jobs_of(kind)
            .map(|j| j.id.clone())
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
        self.sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_submitted_followed_and_finished_once_per_idempotency_key() {
    let service = service(Options::default()).await;
    let (status, created) = service.submit(&job_body(), Some("order-1")).await;
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap().to_owned();
    // Queued, or already claimed by the worker's periodic look for work.
    assert!(
        created["status"] == "queued" || created["status"] == "running",
        "{created:#}"
    );
    assert_eq!(created["steps"].as_array().unwrap().len(), 8);

    // Follow the job's events until the stream ends.
    let mut events = service
        .request(reqwest::Method::GET, &format!("/v1/jobs/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = events.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: end") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the stream ends with the job: {text}");
    assert!(text.contains("event: step_changed"), "{text}");
    assert!(text.contains("event: callback"), "{text}");
    assert!(text.contains("event: end\ndata: succeeded"), "{text}");

    let job = service.job(&id).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert!(job["video_url"].as_str().unwrap().contains("/renders/"));
    assert!(job["audio_url"].as_str().unwrap().contains("/audio/"));
    assert!(job["lyrics"]["title"].is_string());
    assert!(job["error"].is_null());
    assert!(
        job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "done")
    );

    // The same key and body: the same job, not a new one.
    let (status, again) = service.submit(&job_body(), Some("order-1")).await;
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())));
    // The same key with another body: refused.
    let mut other = job_body();
    other["name"] = json!("Someone Else");
    let (status, refused) = service.submit(&other, Some("order-1")).await;
    assert_eq!(status, 409);
    assert_eq!(refused["error"]["code"], "idempotency.conflict");

    let list: Value = service
        .request(reqwest::Method::GET, "/v1/jobs?status=succeeded")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(service.billed(JobKind::SunoTask).len(), 1);
    assert_eq!(service.billed(JobKind::CreatomateRender).len(), 1);
    // Callbacks replaced most polling: a handful of status reads, not one every interval.
    let ledger = service.sim.ledger();
    let callbacks: Vec<_> = ledger
        .callbacks
        .iter()
        .filter(|c| c.is_delivered())
        .collect();
    assert!(callbacks.len() >= 2, "{callbacks:?}");
    assert!(
        callbacks.iter().all(|c| c.status == Some(200)),
        "{callbacks:?}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_of_both_billed_calls_are_resolved_by_callbacks() {
    let service = service(Options {
        scenario: "[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n\
                   [routes.\"creatomate.render\"]\nsequence = [\"reset_after_processing\"]\n",
        ..Options::default()
    })
    .await;
    let (_, created) = service.submit(&job_body(), None).await;
    let id = created["id"].as_str().unwrap();
    let job = service
        .wait_for(id, &["succeeded", "failed", "needs_attention"])
        .await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    // Exactly one of each billed job, though both answers were lost.
    assert_eq!(service.billed(JobKind::SunoTask).len(), 1);
    assert_eq!(service.billed(JobKind::CreatomateRender).len(), 1);
    let ledger = service.sim.ledger();
    assert_eq!(ledger.count(RouteId::SunoGenerate), 1);
    assert_eq!(ledger.count(RouteId::CreatomateRender), 1);
    let steps = job["steps"].as_array().unwrap();
    let submit = steps.iter().find(|s| s["name"] == "song.submit").unwrap();
    assert_eq!(
        submit["external_id"].as_str(),
        Some(service.billed(JobKind::SunoTask)[0].as_str())
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_callback_the_job_needs_attention_and_the_api_resolves_it() {
    let service = service(Options {
        scenario: "[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n",
        sim_callbacks: false,
        reconcile_window: Duration::from_millis(800),
        ..Options::default()
    })
    .await;
    let (_, created) = service.submit(&job_body(), None).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let job = service
        .wait_for(&id, &["needs_attention", "succeeded", "failed"])
        .await;
    assert_eq!(job["status"], "needs_attention", "{job:#}");
    assert_eq!(job["attention"]["step"], "song.submit");
    assert!(
        job["attention"]["resolution"]
            .as_str()
            .unwrap()
            .contains(&format!("POST /v1/jobs/{id}/resolve")),
        "{job:#}"
    );
    let resolve = |body: Value| {
        service
            .request(reqwest::Method::POST, &format!("/v1/jobs/{id}/resolve"))
            .json(&body)
            .send()
    };
    // Resubmitting without accepting to pay twice is refused; a malformed request too.
    let refused = resolve(json!({"resubmit": true})).await.unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    let refused = resolve(json!({"adopt": "x", "resubmit": true}))
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    let task = service.billed(JobKind::SunoTask)[0].clone();
    let adopted = resolve(json!({"adopt": task})).await.unwrap();
    assert_eq!(adopted.status().as_u16(), 200);
    let job = service
        .wait_for(&id, &["succeeded", "failed", "needs_attention"])
        .await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(service.billed(JobKind::SunoTask), [task]);
    // Nothing left to resolve.
    let refused = resolve(json!({"adopt": "y"})).await.unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    service.stop().await;
}

/// The served OpenAPI document, and what checks an exchange against it.
pub struct ApiDocument {
    doc: Value,
}

impl ApiDocument {
    pub fn new(doc: Value) -> ApiDocument {
        ApiDocument { doc }
    }

    /// A validator for a schema of the document (its `$ref`s resolve against the document's
    /// components).
    pub fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root["components"] = self.doc["components"].clone();
        jsonschema::draft202012::new(&root).unwrap_or_else(|e| {
            panic!("a schema of the document does not compile: {e}\n{schema:#}")
        })
    }

    /// The schema `name` of the document's components.
    pub fn component(&self, name: &str) -> jsonschema::Validator {
        self.validator(&json!({"$ref": format!("#/components/schemas/{name}")}))
    }

    fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        let operation = &self.doc["paths"][template][method.to_ascii_lowercase()];
        operation.is_object().then_some(operation)
    }

    /// Problems of the document on its own: every path parameter is in its path and every
    /// placeholder of a path is a parameter; every operation behind the bearer token documents
    /// the answer without it (401).
    pub fn structure_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (template, item) in self.doc["paths"].as_object().unwrap() {
            let placeholders: Vec<&str> = template
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, operation) in item.as_object().unwrap() {
                let empty = vec![];
                let params = operation["parameters"].as_array().unwrap_or(&empty);
                let in_path: Vec<&str> = params
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                for name in &in_path {
                    if !placeholders.contains(name) {
                        problems.push(format!(
                            "{method} {template}: parameter {name:?} is `in: path` but the path has no {{{name}}}"
                        ));
                    }
                }
                for name in &placeholders {
                    if !in_path.contains(name) {
                        problems.push(format!(
                            "{method} {template}: {{{name}}} is not a documented path parameter"
                        ));
                    }
                }
                let protected = operation["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
                if protected && operation["responses"].get("401").is_none() {
                    problems.push(format!(
                        "{method} {template}: behind the bearer token, but 401 is not documented"
                    ));
                }
            }
        }
        problems
    }

    /// Whether `body` is a valid request body of the operation (None: it documents none).
    pub fn accepts_body(&self, method: &str, template: &str, body: &Value) -> Option<bool> {
        let schema = &self.operation(method, template)?["requestBody"]["content"]["application/json"]
            ["schema"];
        (!schema.is_null()).then(|| self.validator(schema).is_valid(body))
    }

    /// Problems of one answer: its status is documented for the operation, its content type
    /// is the documented one, its body matches the documented schema (every frame of an event
    /// stream, and each frame's JSON `data`), and an error answer is JSON.
    pub fn answer_problems(
        &self,
        method: &str,
        template: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) -> Vec<String> {
        let at = format!("{method} {template} → {status}");
        let Some(operation) = self.operation(method, template) else {
            return vec![format!("{at}: the operation is not documented")];
        };
        let essence = |t: &str| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        };
        let mut problems = Vec::new();
        if status >= 400 && essence(content_type) != "application/json" {
            problems.push(format!("{at}: an error answer as {content_type:?}: {body}"));
        }
        let Some(response) = operation["responses"].get(status.to_string()) else {
            problems.push(format!("{at}: the status is not documented: {body}"));
            return problems;
        };
        let Some(content) = response["content"].as_object() else {
            return problems;
        };
        let Some((documented, media)) = content
            .iter()
            .find(|(documented, _)| essence(documented) == essence(content_type))
        else {
            problems.push(format!(
                "{at}: answered as {content_type:?}, documented as {:?}",
                content.keys().collect::<Vec<_>>()
            ));
            return problems;
        };
        let schema = &media["schema"];
        if schema.is_null() {
            return problems;
        }
        if essence(documented) == "text/event-stream" {
            let frames = sse_frames(body);
            let unmatched: Vec<&Value> = frames
                .iter()
                .filter(|frame| !self.frame_matches(schema, frame))
                .collect();
            if let Some(first) = unmatched.first() {
                problems.push(format!(
                    "{at}: {} of {} frames match no documented frame, first {first}",
                    unmatched.len(),
                    frames.len()
                ));
            }
            return problems;
        }
        let value = if essence(documented) == "application/json" {
            match serde_json::from_str(body) {
                Ok(value) => value,
                Err(e) => {
                    problems.push(format!("{at}: not JSON ({e}): {body}"));
                    return problems;
                }
            }
        } else {
            Value::String(body.to_owned())
        };
        for error in self.validator(schema).iter_errors(&value) {
            problems.push(format!("{at}: {error} in {value}"));
        }
        problems
    }

    /// Whether an event-stream frame matches one of the frames `schema` documents (`anyOf`
    /// alternatives, `$ref`s followed), a frame's `data` read as JSON against the branch's
    /// `contentSchema` where it names one (validators treat it as an annotation only).
    fn frame_matches(&self, schema: &Value, frame: &Value) -> bool {
        let resolve = |s: &Value| match s["$ref"].as_str() {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .cloned()
                .unwrap_or_default(),
            None => s.clone(),
        };
        let schema = resolve(schema);
        let branches = schema["anyOf"]
            .as_array()
            .map_or_else(|| vec![schema.clone()], |b| b.iter().map(resolve).collect());
        branches.iter().any(|branch| {
            if !self.validator(branch).is_valid(frame) {
                return false;
            }
            let content = &branch["properties"]["data"]["contentSchema"];
            content.is_null()
                || frame["data"]
                    .as_str()
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .is_some_and(|data| self.validator(content).is_valid(&data))
        })
    }
}

/// The frames of a server-sent event stream, as `{"id", "event", "data"}` objects (the
/// fields of the WHATWG parser; comments and frames without data left out).
pub fn sse_frames(text: &str) -> Vec<Value> {
    let mut frames = Vec::new();
    for block in text.split("\n\n") {
        let mut frame = serde_json::Map::new();
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines().filter(|l| !l.starts_with(':')) {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "data" => data.push(value),
                "id" | "event" => {
                    frame.insert(field.to_owned(), json!(value));
                }
                _ => {}
            }
        }
        if !data.is_empty() {
            frame.entry("event").or_insert(json!("message"));
            frame.insert("data".to_owned(), json!(data.join("\n")));
            frames.push(Value::Object(frame));
        }
    }
    frames
}

/// Every answer of the API, good and bad, is one its OpenAPI document describes: the status,
/// the content type, the body (each frame of an event stream); and a body the server refuses
/// as invalid is one the document's schema refuses too (what schemathesis checked, kept as a
/// test: README "Tests").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_answer() {
    let service = service(Options {
        token: true,
        ..Options::default()
    })
    .await;
    let doc: Value = service
        .request(reqwest::Method::GET, "/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/metrics"]["get"].is_object(), "{doc:#}");
    let api = ApiDocument::new(doc);
    let problems = RefCell::new(api.structure_problems());
    // Asks for an exchange without the bearer token.
    const NO_TOKEN: (&str, &str) = ("", "");

    // One exchange: (method, the path's template, the path, headers, body) → its status, and
    // the problems of its answer.
    let exchange = async |method: reqwest::Method,
                          template: &str,
                          path: &str,
                          headers: &[(&str, &str)],
                          body: Option<Vec<u8>>|
           -> (u16, String, Vec<String>) {
        let mut request = service
            .request(method.clone(), path)
            .header("content-type", "application/json");
        if !headers.contains(&NO_TOKEN) {
            request = request.bearer_auth(TOKEN);
        }
        for (name, value) in headers.iter().filter(|h| **h != NO_TOKEN) {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = tokio::time::timeout(Duration::from_secs(20), response.text())
            .await
            .expect("the answer ends")
            .unwrap();
        let problems = api.answer_problems(method.as_str(), template, status, &content_type, &text);
        (status, text, problems)
    };
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    // Checks a request body the server answered with `status` against the documented schema:
    // accepted bodies are valid, bodies refused as invalid (422) are not.
    let body_agrees = |template: &str, body: &Value, status: u16| -> Option<String> {
        let valid = api.accepts_body("POST", template, body)?;
        match (status, valid) {
            (200..=299 | 404 | 409, false) => Some(format!(
                "POST {template}: {body} is accepted ({status}) but the documented schema refuses it"
            )),
            (422, true) => Some(format!(
                "POST {template}: {body} is refused (422) but the documented schema accepts it"
            )),
            _ => None,
        }
    };

    let jobs = "/v1/jobs";
    let body = |v: &Value| Some(serde_json::to_vec(v).unwrap());
    let check = |(status, text, found): (u16, String, Vec<String>), expected: u16| {
        let mut problems = problems.borrow_mut();
        if status != expected {
            let head: String = text.chars().take(200).collect();
            problems.push(format!("{expected} expected, {status} answered: {head}"));
        }
        problems.extend(found);
        text
    };
    // Without the token.
    check(
        exchange(get.clone(), jobs, jobs, &[NO_TOKEN], None).await,
        401,
    );
    // Submissions: created, replayed, conflicting, unusable key, not JSON, invalid, too big.
    let created = check(
        exchange(
            post.clone(),
            jobs,
            jobs,
            &[("idempotency-key", "doc-1")],
            body(&job_body()),
        )
        .await,
        201,
    );
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    check(
        exchange(
            post.clone(),
            jobs,
            jobs,
            &[("idempotency-key", "doc-1")],
            body(&job_body()),
        )
        .await,
        200,
    );
    let mut other = job_body();
    other["name"] = json!("Someone Else");
    check(
        exchange(
            post.clone(),
            jobs,
            jobs,
            &[("idempotency-key", "doc-1")],
            body(&other),
        )
        .await,
        409,
    );
    check(
        exchange(
            post.clone(),
            jobs,
            jobs,
            &[("idempotency-key", "a key")],
            body(&job_body()),
        )
        .await,
        400,
    );
    check(
        exchange(post.clone(), jobs, jobs, &[], Some(b"{".to_vec())).await,
        400,
    );
    for invalid in [
        json!({"business": "", "name": "Haneul"}),
        json!({"business": "a bakery", "name": "Ha\u{7}neul"}),
        json!({"business": "a bakery", "name": "Haneul", "lang": "fr"}),
    ] {
        check(
            exchange(post.clone(), jobs, jobs, &[], body(&invalid)).await,
            422,
        );
        problems
            .borrow_mut()
            .extend(body_agrees(jobs, &invalid, 422));
    }
    problems
        .borrow_mut()
        .extend(body_agrees(jobs, &job_body(), 201));
    check(
        exchange(post.clone(), jobs, jobs, &[], Some(vec![b' '; 70 * 1024])).await,
        413,
    );

    // Lists.
    check(
        exchange(
            get.clone(),
            jobs,
            "/v1/jobs?limit=1&status=queued",
            &[],
            None,
        )
        .await,
        200,
    );
    check(
        exchange(get.clone(), jobs, "/v1/jobs?limit=0", &[], None).await,
        422,
    );
    check(
        exchange(get.clone(), jobs, "/v1/jobs?status=done", &[], None).await,
        422,
    );

    // One job, and the answers for ids that name none.
    let one = "/v1/jobs/{id}";
    let mut job = Value::Null;
    for _ in 0..400 {
        let (_, text, found) =
            exchange(get.clone(), one, &format!("/v1/jobs/{id}"), &[], None).await;
        problems.borrow_mut().extend(found);
        job = serde_json::from_str(&text).unwrap();
        if job["status"] == "succeeded" || job["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let nobody = "01a22f59-adb9-74b6-8a43-15aa5fe70e02";
    check(
        exchange(get.clone(), one, &format!("/v1/jobs/{nobody}"), &[], None).await,
        404,
    );
    check(
        exchange(get.clone(), one, "/v1/jobs/%aa", &[], None).await,
        400,
    );

    // The finished job's event stream, whole; and a start that is not an event's number.
    let events = "/v1/jobs/{id}/events";
    let stream = check(
        exchange(
            get.clone(),
            events,
            &format!("/v1/jobs/{id}/events"),
            &[],
            None,
        )
        .await,
        200,
    );
    assert!(stream.contains("event: end\ndata: succeeded"), "{stream}");
    check(
        exchange(
            get.clone(),
            events,
            &format!("/v1/jobs/{id}/events?after=3"),
            &[],
            None,
        )
        .await,
        200,
    );
    check(
        exchange(
            get.clone(),
            events,
            &format!("/v1/jobs/{id}/events?after=x"),
            &[],
            None,
        )
        .await,
        422,
    );
    check(
        exchange(
            get.clone(),
            events,
            &format!("/v1/jobs/{id}/events"),
            &[("last-event-id", "x")],
            None,
        )
        .await,
        400,
    );

    // Cancel: a new job (accepted), the finished one (refused), and nobody's.
    let cancel = "/v1/jobs/{id}/cancel";
    let fresh = check(
        exchange(post.clone(), jobs, jobs, &[], body(&other)).await,
        201,
    );
    let fresh = serde_json::from_str::<Value>(&fresh).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    check(
        exchange(
            post.clone(),
            cancel,
            &format!("/v1/jobs/{fresh}/cancel"),
            &[],
            None,
        )
        .await,
        202,
    );
    check(
        exchange(
            post.clone(),
            cancel,
            &format!("/v1/jobs/{id}/cancel"),
            &[],
            None,
        )
        .await,
        409,
    );
    check(
        exchange(
            post.clone(),
            cancel,
            &format!("/v1/jobs/{nobody}/cancel"),
            &[],
            None,
        )
        .await,
        404,
    );

    // Resolve: nothing to resolve in a finished job; bodies that say neither adopt nor
    // resubmit-and-pay-twice; too big.
    let resolve = "/v1/jobs/{id}/resolve";
    let path = format!("/v1/jobs/{id}/resolve");
    let adopt = json!({"adopt": "task-1"});
    check(
        exchange(post.clone(), resolve, &path, &[], body(&adopt)).await,
        409,
    );
    problems
        .borrow_mut()
        .extend(body_agrees(resolve, &adopt, 409));
    for invalid in [
        json!({}),
        json!({"resubmit": false}),
        json!({"resubmit": true}),
        json!({"adopt": " ", "accept_paying_twice": true}),
        json!({"adopt": "task-1", "resubmit": true, "accept_paying_twice": true}),
        json!({"adopt": "task-1", "step": "lyrics"}),
    ] {
        check(
            exchange(post.clone(), resolve, &path, &[], body(&invalid)).await,
            422,
        );
        problems
            .borrow_mut()
            .extend(body_agrees(resolve, &invalid, 422));
    }
    check(
        exchange(
            post.clone(),
            resolve,
            &path,
            &[],
            Some(vec![b' '; 70 * 1024]),
        )
        .await,
        413,
    );

    // Operations.
    check(
        exchange(get.clone(), "/metrics", "/metrics", &[], None).await,
        200,
    );
    check(
        exchange(get.clone(), "/healthz", "/healthz", &[], None).await,
        200,
    );
    check(
        exchange(get.clone(), "/readyz", "/readyz", &[], None).await,
        200,
    );

    let problems = problems.into_inner();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    service.stop().await;
}
