//! Suno callbacks and Creatomate webhooks POSTed to a plain-http receiver over real loopback
//! on the virtual timeline (tiny time scale): stage payloads and times, hostile delivery
//! (duplicate, out of order, late, dropped), Suno's retries, the lost-answer case, and the
//! ledger's record of every attempt.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::post;
use encore_sim::suno::types::Callback;
use encore_sim::{
    CallbackRecord, DEMO_TEMPLATE_ID, Fault, FaultRule, JobKind, Ledger, RouteId, RunningSim,
    SUNO_CALLBACK_RETRIES, Scenario, SimConfig, SimState, serve,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{KEY, client};

/// A POST the receiver got.
#[derive(Debug)]
struct Hit {
    path: String,
    query: Option<String>,
    body: Value,
    at: Instant,
}

/// Statuses to answer, per stage (Suno `callbackType` or Creatomate render `status`).
type Script = Arc<Mutex<HashMap<String, VecDeque<u16>>>>;

/// A loopback HTTP server recording every POST; answers scripted statuses per stage, then
/// 200.
struct Receiver {
    base: String,
    rx: mpsc::UnboundedReceiver<Hit>,
    script: Script,
    task: tokio::task::JoinHandle<()>,
}

type Shared = (mpsc::UnboundedSender<Hit>, Script);

/// The stage a callback body is about.
fn stage_of(body: &Value) -> String {
    body["data"]["callbackType"]
        .as_str()
        .or_else(|| body["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

impl Receiver {
    async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let script: Script = Arc::default();
        let app = axum::Router::new()
            .route(
                "/{*rest}",
                post(
                    |State((tx, script)): State<Shared>, uri: Uri, Json(body): Json<Value>| async move {
                        let status = script
                            .lock()
                            .unwrap()
                            .get_mut(&stage_of(&body))
                            .and_then(VecDeque::pop_front)
                            .unwrap_or(200);
                        let _ = tx.send(Hit {
                            path: uri.path().to_owned(),
                            query: uri.query().map(str::to_owned),
                            body,
                            at: Instant::now(),
                        });
                        StatusCode::from_u16(status).unwrap()
                    },
                ),
            )
            .with_state((tx, script.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            base,
            rx,
            script,
            task,
        }
    }

    /// Answers these statuses to the next POSTs about `stage`.
    fn answer(&self, stage: &str, statuses: &[u16]) {
        self.script
            .lock()
            .unwrap()
            .entry(stage.to_owned())
            .or_default()
            .extend(statuses);
    }

    async fn next(&mut self) -> Hit {
        tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("a callback arrives")
            .unwrap()
    }

    async fn take(&mut self, n: usize) -> Vec<Hit> {
        let mut hits = Vec::with_capacity(n);
        for _ in 0..n {
            hits.push(self.next().await);
        }
        hits
    }

    /// Asserts nothing else arrives within `wait`.
    async fn quiet(&mut self, wait: Duration) {
        if let Ok(Some(hit)) = tokio::time::timeout(wait, self.rx.recv()).await {
            panic!("unexpected callback: {hit:?}");
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const SCALE: f64 = 0.002;

async fn start(scenario: &str) -> RunningSim {
    let config = SimConfig {
        time_scale: SCALE,
        scenario: Scenario::from_toml(scenario).unwrap(),
        ..SimConfig::default()
    };
    serve(SimState::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn generate(sim: &RunningSim, callback_url: &str) -> String {
    let created: Value = client()
        .post(format!("{}/api/v1/generate", sim.base_url()))
        .bearer_auth(KEY)
        .json(&json!({ "customMode": false, "instrumental": false, "model": "V5", "callBackUrl": callback_url, "prompt": "a song about tea" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["data"]["taskId"].as_str().unwrap().to_owned()
}

async fn render(sim: &RunningSim, webhook_url: &str) -> Value {
    let renders: Value = client()
        .post(format!("{}/v1/renders", sim.base_url()))
        .bearer_auth(KEY)
        .json(&json!({ "template_id": DEMO_TEMPLATE_ID, "webhook_url": webhook_url, "metadata": "{\"job\":\"j-7\"}" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    renders[0].clone()
}

fn stage(hit: &Hit) -> String {
    stage_of(&hit.body)
}

/// Waits until `done` holds for the ledger (callback records are finished just after the
/// receiver answers).
async fn ledger_when(sim: &RunningSim, done: impl Fn(&Ledger) -> bool) -> Ledger {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ledger = sim.ledger();
        if done(&ledger) {
            return ledger;
        }
        assert!(
            Instant::now() < deadline,
            "ledger never got there: {ledger:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn finished(ledger: &Ledger, n: usize) -> bool {
    ledger.callbacks.len() >= n
        && ledger
            .callbacks
            .iter()
            .all(|c| c.dropped || c.status.is_some() || c.error.is_some())
}

#[tokio::test]
async fn suno_stages_arrive_at_their_virtual_times() {
    let mut hook = Receiver::start().await;
    let sim = start("").await;
    let url = format!("{}/hooks/suno/j1/tok?sig=secret", hook.base);
    let sent = Instant::now();
    let task = generate(&sim, &url).await;
    let hits = hook.take(3).await;
    let stages: Vec<String> = hits.iter().map(stage).collect();
    assert_eq!(stages, ["text", "first", "complete"]);
    for hit in &hits {
        assert_eq!(hit.path, "/hooks/suno/j1/tok");
        assert_eq!(
            hit.query.as_deref(),
            Some("sig=secret"),
            "the URL is used as given"
        );
        let cb: Callback = serde_json::from_value(hit.body.clone()).expect("documented shape");
        assert_eq!(cb.code, 200);
        assert_eq!(
            cb.data.task_id.as_deref(),
            Some(task.as_str()),
            "snake_case task_id"
        );
        assert!(hit.body["data"].get("taskId").is_none());
    }
    // `first` streams, no downloadable file yet; `complete` has both files
    let first = &hits[1].body["data"]["data"];
    assert!(!first[0]["stream_audio_url"].as_str().unwrap().is_empty());
    assert_eq!(first[0]["audio_url"], "");
    let complete = hits[2].body["data"]["data"].as_array().unwrap();
    assert_eq!(complete.len(), 2);
    for t in complete {
        assert!(
            t["audio_url"]
                .as_str()
                .unwrap()
                .contains("/__sim/files/audio/")
        );
        assert!(t["duration"].as_f64().unwrap() > 100.0);
    }
    let ledger = ledger_when(&sim, |l| finished(l, 3)).await;
    let job = ledger.job(&task).unwrap();
    let records: Vec<&CallbackRecord> = ledger.callbacks_for(&task).collect();
    assert_eq!(records.len(), 3);
    for (record, hit) in records.iter().zip(&hits) {
        assert_eq!(record.stage, stage(hit));
        assert_eq!(record.path, "/hooks/suno/j1/tok", "no query in the ledger");
        assert_eq!(
            (record.status, record.copy, record.attempt),
            (Some(200), 1, 1)
        );
        assert!(record.is_delivered() && !record.late && !record.dropped);
        // each stage at creation + its virtual time × time scale
        let due = Duration::from_secs_f64(record.stage_virtual_s * SCALE);
        assert!(
            hit.at.duration_since(sent) + Duration::from_millis(2) >= due,
            "{record:?}"
        );
        assert!(
            record.at_ms + 1 >= job.at_ms + due.as_millis() as u64,
            "{record:?}"
        );
    }
    assert!((15.0..30.0).contains(&records[0].stage_virtual_s));
    assert!((30.0..40.0).contains(&records[1].stage_virtual_s));
    assert!(
        (records[2].stage_virtual_s - job.ready_after_virtual_s.unwrap()).abs() < 1e-9,
        "complete is sent when the task is ready"
    );
    hook.quiet(Duration::from_millis(100)).await;
    // the same records over HTTP
    let over_http: Value = client()
        .get(format!("{}/__sim/ledger", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        over_http["callbacks"],
        serde_json::to_value(&ledger.callbacks).unwrap()
    );
    assert_eq!(over_http["callbacks"][0]["service"], "suno");
    assert_eq!(over_http["callbacks"][2]["stage"], "complete");
    sim.shutdown().await;
}

#[tokio::test]
async fn suno_failures_send_an_error_callback() {
    let mut hook = Receiver::start().await;
    let sim = start("[suno]\noutcomes = [\"generate_audio_failed\", \"failed\"]").await;
    let url = format!("{}/cb", hook.base);
    let t1 = generate(&sim, &url).await;
    let t2 = generate(&sim, &url).await;
    let hits = hook.take(4).await;
    let of = |task: &str| -> Vec<(String, u64)> {
        hits.iter()
            .filter(|h| h.body["data"]["task_id"] == task)
            .map(|h| (stage(h), h.body["code"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(of(&t1), [("text".into(), 200), ("error".into(), 501)]);
    assert_eq!(of(&t2), [("text".into(), 200), ("error".into(), 400)]);
    let error = hits.iter().find(|h| stage(h) == "error").unwrap();
    assert!(error.body["data"]["data"].is_null());
    hook.quiet(Duration::from_millis(100)).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn creatomate_webhook_once_with_metadata() {
    let mut hook = Receiver::start().await;
    let sim = start("[creatomate]\noutcomes = [\"succeeded\", \"failed\"]").await;
    let url = format!("{}/hooks/creatomate/j-7/tok", hook.base);
    let ok = render(&sim, &url).await;
    let failed = render(&sim, &url).await;
    let mut hits = hook.take(2).await;
    hits.sort_by_key(|h| h.body["status"].as_str().unwrap().to_owned());
    let (failed_hit, ok_hit) = (&hits[0], &hits[1]);
    assert_eq!(ok_hit.body["id"], ok["id"]);
    assert_eq!(ok_hit.body["status"], "succeeded");
    assert_eq!(ok_hit.body["metadata"], "{\"job\":\"j-7\"}");
    assert_eq!(ok_hit.body["webhook_url"], url.as_str());
    assert!(ok_hit.body["file_size"].as_u64().unwrap() > 0);
    assert_eq!(failed_hit.body["id"], failed["id"]);
    assert_eq!(failed_hit.body["status"], "failed");
    assert!(failed_hit.body["error_message"].is_string());
    assert_eq!(failed_hit.body["metadata"], "{\"job\":\"j-7\"}");
    let ledger = ledger_when(&sim, |l| finished(l, 2)).await;
    let id = ok["id"].as_str().unwrap();
    let record = ledger.callbacks_for(id).next().unwrap();
    assert_eq!(record.stage, "succeeded");
    assert_eq!(record.path, "/hooks/creatomate/j-7/tok");
    assert_eq!(record.status, Some(200));
    let job = ledger.job(id).unwrap();
    assert!((record.stage_virtual_s - job.ready_after_virtual_s.unwrap()).abs() < 1e-9);
    hook.quiet(Duration::from_millis(150)).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicated_out_of_order_late_and_dropped() {
    // duplicates
    let mut hook = Receiver::start().await;
    let sim =
        start("[suno.callbacks]\nduplicate = 1.0\n[creatomate.callbacks]\nduplicate = 1.0").await;
    generate(&sim, &format!("{}/s", hook.base)).await;
    let stages: Vec<String> = hook.take(6).await.iter().map(stage).collect();
    assert_eq!(
        stages,
        ["text", "text", "first", "first", "complete", "complete"]
    );
    render(&sim, &format!("{}/c", hook.base)).await;
    let hits = hook.take(2).await;
    assert_eq!(hits[0].body, hits[1].body, "the same render object twice");
    let ledger = ledger_when(&sim, |l| finished(l, 8)).await;
    let copies: Vec<u32> = ledger.callbacks.iter().map(|c| c.copy).collect();
    assert_eq!(copies, [1, 2, 1, 2, 1, 2, 1, 2]);
    sim.shutdown().await;

    // out of order: each callback waits for the next one
    let sim = start("[suno.callbacks]\nout_of_order = 1.0").await;
    generate(&sim, &format!("{}/s", hook.base)).await;
    let stages: Vec<String> = hook.take(3).await.iter().map(stage).collect();
    assert_eq!(stages, ["complete", "first", "text"]);
    let ledger = ledger_when(&sim, |l| finished(l, 3)).await;
    let flags: Vec<(&str, bool)> = ledger
        .callbacks
        .iter()
        .map(|c| (c.stage.as_str(), c.out_of_order))
        .collect();
    assert_eq!(
        flags,
        [("complete", false), ("first", true), ("text", true)]
    );
    sim.shutdown().await;

    // late: 30 virtual seconds after each stage
    let sim = start("[suno.callbacks]\nlate = 1.0\nlate_by_s = 30").await;
    let sent = Instant::now();
    let task = generate(&sim, &format!("{}/s", hook.base)).await;
    let hits = hook.take(3).await;
    let ledger = ledger_when(&sim, |l| finished(l, 3)).await;
    let job = ledger.job(&task).unwrap().clone();
    for (record, hit) in ledger.callbacks.iter().zip(&hits) {
        assert!(record.late);
        let due = Duration::from_secs_f64((record.stage_virtual_s + 30.0) * SCALE);
        assert!(hit.at.duration_since(sent) + Duration::from_millis(2) >= due);
        assert!(record.at_ms + 1 >= job.at_ms + due.as_millis() as u64);
    }
    sim.shutdown().await;

    // dropped: never sent, but recorded
    let sim = start("[suno.callbacks]\ndrop = 1.0\n[creatomate.callbacks]\ndrop = 1.0").await;
    let task = generate(&sim, &format!("{}/s", hook.base)).await;
    let render = render(&sim, &format!("{}/c", hook.base)).await;
    let ledger = ledger_when(&sim, |l| l.callbacks.len() == 4).await;
    hook.quiet(Duration::from_millis(150)).await;
    assert!(
        ledger
            .callbacks
            .iter()
            .all(|c| c.dropped && c.status.is_none())
    );
    assert_eq!(ledger.callbacks_for(&task).count(), 3);
    assert_eq!(
        ledger.callbacks_for(render["id"].as_str().unwrap()).count(),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn hostile_delivery_is_seeded() {
    let scenario = "[suno.callbacks]\nduplicate = 0.5\nout_of_order = 0.5\nlate = 0.5\nlate_by_s = 5\ndrop = 0.2";
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = start(scenario).await;
        let mut tasks = Vec::new();
        for _ in 0..4 {
            // https is not delivered: the schedule is still decided and recorded
            tasks.push(generate(&sim, "https://example.test/cb").await);
        }
        // every task has a record of each stage, and then nothing more comes
        let mut ledger = ledger_when(&sim, |l| {
            tasks.iter().all(|t| {
                ["text", "first", "complete"]
                    .iter()
                    .all(|s| l.callbacks_for(t).any(|c| c.stage == *s))
            })
        })
        .await;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let again = sim.ledger();
            if again.callbacks.len() == ledger.callbacks.len() {
                break;
            }
            ledger = again;
        }
        assert!(
            ledger
                .callbacks
                .iter()
                .all(|c| c.status.is_none() && c.error.is_some())
        );
        let shape: Vec<(String, String, u32, bool, bool, bool)> = ledger
            .callbacks
            .iter()
            .map(|c| {
                (
                    c.job_id.clone(),
                    c.stage.clone(),
                    c.copy,
                    c.late,
                    c.out_of_order,
                    c.dropped,
                )
            })
            .collect();
        runs.push(shape);
        sim.shutdown().await;
    }
    // the same seed gives the same task ids and the same deliveries per task, in order
    // (tasks interleave in real time, so only each task's own order is compared)
    let per_task = |run: &[(String, String, u32, bool, bool, bool)]| {
        let mut by_task: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for k in run {
            by_task.entry(k.0.clone()).or_default().push(k.clone());
        }
        by_task
    };
    assert_eq!(
        per_task(&runs[0]),
        per_task(&runs[1]),
        "same seed, same hostile schedule"
    );
    let kinds = &runs[0];
    assert!(kinds.iter().any(|k| k.2 == 2), "some duplicate: {kinds:?}");
    assert!(kinds.iter().any(|k| k.3), "some late: {kinds:?}");
    assert!(kinds.iter().any(|k| k.4), "some out of order: {kinds:?}");
    assert!(kinds.iter().any(|k| k.5), "some dropped: {kinds:?}");
}

#[tokio::test]
async fn suno_retries_failed_deliveries_then_gives_up() {
    let mut hook = Receiver::start().await;
    let sim = start("").await;
    // the text callback fails once, then every delivery of `first` fails
    hook.answer("text", &[500]);
    hook.answer("first", &[503; 8]);
    let task = generate(&sim, &format!("{}/s", hook.base)).await;
    let mut stages: Vec<String> = hook.take(6).await.iter().map(stage).collect();
    stages.sort();
    assert_eq!(stages, ["first", "first", "first", "first", "text", "text"]);
    let ledger = ledger_when(&sim, |l| finished(l, 7)).await;
    hook.quiet(Duration::from_millis(150)).await;
    let of = |stage: &str| -> Vec<(u32, Option<u16>, bool)> {
        ledger
            .callbacks_for(&task)
            .filter(|c| c.stage == stage)
            .map(|c| (c.attempt, c.status, c.dropped))
            .collect()
    };
    assert_eq!(of("text"), [(1, Some(500), false), (2, Some(200), false)]);
    let want: Vec<_> = (1..=1 + SUNO_CALLBACK_RETRIES)
        .map(|attempt| (attempt, Some(503), false))
        .collect();
    assert_eq!(of("first"), want);
    assert_eq!(of("complete"), [(1, None, true)], "Suno stopped sending");
    let last = ledger.callbacks.last().unwrap();
    assert_eq!(last.stage, "complete");
    assert!(last.error.as_deref().unwrap().contains("stops sending"));
    // retries are CALLBACK_RETRY_DELAY_S virtual seconds apart
    let firsts: Vec<u64> = ledger
        .callbacks
        .iter()
        .filter(|c| c.stage == "first")
        .map(|c| c.at_ms)
        .collect();
    let gap = (encore_sim::CALLBACK_RETRY_DELAY_S * SCALE * 1000.0) as u64;
    for pair in firsts.windows(2) {
        assert!(pair[1] >= pair[0] + gap, "{firsts:?}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn creatomate_tries_a_webhook_once_and_unreachable_receivers_are_recorded() {
    let mut hook = Receiver::start().await;
    let sim = start("").await;
    hook.answer("succeeded", &[500]);
    let r = render(&sim, &format!("{}/c", hook.base)).await;
    hook.take(1).await;
    // a port nothing listens on
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r2 = render(&sim, &format!("http://{closed}/gone")).await;
    let ledger = ledger_when(&sim, |l| finished(l, 2)).await;
    hook.quiet(Duration::from_millis(150)).await;
    let a = ledger
        .callbacks_for(r["id"].as_str().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(a.len(), 1, "no retry documented for Creatomate");
    assert_eq!(a[0].status, Some(500));
    let b = ledger
        .callbacks_for(r2["id"].as_str().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(b.len(), 1);
    assert!(b[0].status.is_none() && b[0].error.is_some(), "{:?}", b[0]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_render_answer_still_bills_and_calls_the_webhook() {
    let mut hook = Receiver::start().await;
    let config = SimConfig {
        time_scale: SCALE,
        scenario: Scenario::default().with_route(
            RouteId::CreatomateRender,
            FaultRule::sequence([Fault::ResetAfterProcessing]),
        ),
        ..SimConfig::default()
    };
    let sim = serve(SimState::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("{}/hooks/creatomate/j-9/tok", hook.base);
    let err = client()
        .post(format!("{}/v1/renders", sim.base_url()))
        .bearer_auth(KEY)
        .json(&json!({ "template_id": DEMO_TEMPLATE_ID, "webhook_url": url, "metadata": "j-9" }))
        .send()
        .await
        .expect_err("the connection is reset after processing");
    assert!(!err.is_status());
    let ledger = sim.ledger();
    assert_eq!(ledger.creatomate_renders, 1, "created and billed");
    let request = ledger
        .requests_for(RouteId::CreatomateRender)
        .next()
        .unwrap();
    assert_eq!(request.status, None);
    assert_eq!(request.fault.as_deref(), Some("reset_after_processing"));
    let id = request.job_id.clone().unwrap();
    let hit = hook.next().await;
    assert_eq!(
        hit.body["id"],
        id.as_str(),
        "the webhook names the lost render"
    );
    assert_eq!(hit.body["metadata"], "j-9");
    // a free read verifies it
    let got: Value = client()
        .get(format!("{}/v1/renders/{id}", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "succeeded");
    assert_eq!(got["metadata"], "j-9");
    assert_eq!(got["webhook_url"], url.as_str());
    assert_eq!(
        sim.ledger().jobs_of(JobKind::CreatomateRender).count(),
        1,
        "nothing billed twice"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_generate_answer_is_reconciled_by_callback_and_record_info() {
    let mut hook = Receiver::start().await;
    let config = SimConfig {
        time_scale: SCALE,
        scenario: Scenario::default().with_route(
            RouteId::SunoGenerate,
            FaultRule::sequence([Fault::ResetAfterProcessing]),
        ),
        ..SimConfig::default()
    };
    let sim = serve(SimState::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("{}/hooks/suno/j-3/tok", hook.base);
    client()
        .post(format!("{}/api/v1/generate", sim.base_url()))
        .bearer_auth(KEY)
        .json(&json!({ "customMode": false, "instrumental": false, "model": "V5", "callBackUrl": url, "prompt": "a song about tea" }))
        .send()
        .await
        .expect_err("the connection is reset after processing");
    let hit = hook.next().await;
    let task = hit.body["data"]["task_id"].as_str().unwrap().to_owned();
    assert_eq!(sim.ledger().job(&task).unwrap().kind, JobKind::SunoTask);
    let info: Value = client()
        .get(format!("{}/api/v1/generate/record-info", sim.base_url()))
        .query(&[("taskId", &task)])
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let param: Value = serde_json::from_str(info["data"]["param"].as_str().unwrap())
        .expect("param is a JSON string");
    assert_eq!(
        param["callBackUrl"],
        url.as_str(),
        "the callback URL can be verified"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn callbacks_switch_off() {
    let mut hook = Receiver::start().await;
    let config = SimConfig {
        time_scale: SCALE,
        callbacks: false,
        ..SimConfig::default()
    };
    let sim = serve(SimState::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    generate(&sim, &format!("{}/s", hook.base)).await;
    render(&sim, &format!("{}/c", hook.base)).await;
    hook.quiet(Duration::from_millis(500)).await;
    assert!(sim.ledger().callbacks.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stopped_simulator_sends_no_more_callbacks() {
    let mut hook = Receiver::start().await;
    // slower than SCALE: the task's last callback is due 0.75–0.9 s after creation
    let config = SimConfig {
        time_scale: 0.005,
        ..SimConfig::default()
    };
    let sim = serve(SimState::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let state = sim.state().clone();
    generate(&sim, &format!("{}/s", hook.base)).await;
    render(&sim, &format!("{}/c", hook.base)).await;
    sim.shutdown().await;
    let sent_before = state.ledger().callbacks.len();
    assert!(sent_before < 4, "all callbacks were already due");
    // long past every due time: nothing more is sent or recorded
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut got = 0;
    while hook.rx.try_recv().is_ok() {
        got += 1;
    }
    assert!(
        got <= sent_before,
        "{got} arrived, {sent_before} were sent before the stop"
    );
    assert_eq!(state.ledger().callbacks.len(), sent_before);
    assert_eq!(state.ledger().suno_tasks, 1);
}
