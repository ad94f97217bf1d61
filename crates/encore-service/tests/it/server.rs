//! `encore serve` end to end over loopback: the API, callbacks from the simulator, the worker,
//! against a real SQLite store (real time, the simulator at a fast time scale).

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
