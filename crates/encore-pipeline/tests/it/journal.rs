//! Crash and resume from the journal (issue 12): whatever the faults, wherever the process dies
//! and however often the job is resumed, no billed request is ever sent twice for a step.
//!
//! A "crash" drops the running job's future at a random instant of virtual time (an HTTP
//! exchange in progress is dropped with it, before or after the simulator processed it) or makes
//! a journal write fail; the next run is a new `Pipeline` over the same journal and the same
//! simulator (whose ledger counts what was billed across runs, as a standalone `encore sim`
//! does across processes).

use std::time::Duration;

use encore_clients::{Config, Http};
use encore_pipeline::job::{JournalFuture, StepRecord};
use encore_pipeline::{
    FailureClass, JobContext, Journal, JournalError, MemoryJournal, Pipeline, Report, StepName,
    StepState, StopSignal,
};
use encore_sim::{JobKind, Scenario, SimConfig, SimState};
use proptest::prelude::*;
use serde_json::Value;

use super::{input, keys, settings};

/// A journal whose `fail_at`-th write fails (as a database that went away would), then works.
struct Flaky {
    inner: MemoryJournal,
    writes: std::sync::atomic::AtomicUsize,
    fail_at: Option<usize>,
}

impl Flaky {
    fn check(&self) -> Result<(), JournalError> {
        let n = self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if Some(n) == self.fail_at {
            return Err(JournalError::new(
                "database unavailable",
                std::io::Error::other("injected"),
            ));
        }
        Ok(())
    }
}

impl Journal for Flaky {
    fn load(&self) -> JournalFuture<'_, Vec<StepRecord>> {
        self.inner.load()
    }
    fn start<'a>(&'a self, step: StepName, correlation: Option<&'a str>) -> JournalFuture<'a, ()> {
        match self.check() {
            Ok(()) => self.inner.start(step, correlation),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }
    fn finish<'a>(
        &'a self,
        step: StepName,
        external_id: Option<&'a str>,
        result: &'a Value,
    ) -> JournalFuture<'a, ()> {
        match self.check() {
            Ok(()) => self.inner.finish(step, external_id, result),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }
    fn fail<'a>(
        &'a self,
        step: StepName,
        state: StepState,
        error: &'a str,
    ) -> JournalFuture<'a, ()> {
        match self.check() {
            Ok(()) => self.inner.fail(step, state, error),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }
}

fn billed_fault() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("\"ok\""),
        Just("\"reset_after_processing\""),
        Just("\"reset_before_request\""),
        Just("{ kind = \"server_error\", status = 503 }"),
        Just("{ kind = \"server_error\", status = 500, after_processing = true }"),
        Just("{ kind = \"latency\", ms = 90000 }"),
    ]
}

fn scenario(generate: &[&str], render: &[&str]) -> Scenario {
    let toml = format!(
        "[routes.\"suno.generate\"]\nsequence = [{}]\n[routes.\"creatomate.render\"]\nsequence = [{}]\n",
        generate.join(", "),
        render.join(", ")
    );
    Scenario::from_toml(&toml).expect("valid scenario")
}

async fn run_once(
    http: &Http,
    journal: &dyn Journal,
    crash_after: Option<Duration>,
) -> Option<Report> {
    let config = Config::default().with_base("http://sim.test");
    let pipeline = Pipeline::new(http, &config, keys(), settings());
    let stop = StopSignal::never();
    let ctx = JobContext {
        job_id: "job-1",
        journal,
        callbacks: None,
        stop: &stop,
    };
    let input = input();
    let run = pipeline.run_job(&input, ctx);
    match crash_after {
        Some(after) => tokio::time::timeout(after, run).await.ok(),
        None => Some(run.await),
    }
}

/// Ids the simulator billed of `kind`.
fn billed(state: &SimState, kind: JobKind) -> Vec<String> {
    state.ledger().jobs_of(kind).map(|j| j.id.clone()).collect()
}

/// What an operator does with an `unknown` step, looking at the provider's dashboard (here, the
/// simulator's ledger): adopt the job that exists, or resubmit when none does.
fn resolve(journal: &MemoryJournal, state: &SimState) {
    for record in journal.snapshot() {
        if record.on_load() != StepState::Unknown {
            continue;
        }
        let kind = match record.name {
            StepName::SongSubmit => JobKind::SunoTask,
            _ => JobKind::CreatomateRender,
        };
        let mut resolved = record.clone();
        match billed(state, kind).first() {
            Some(id) => {
                resolved.state = StepState::Done;
                resolved.external_id = Some(id.clone());
                resolved.result = Some(Value::Object(serde_json::Map::new()));
            }
            // Nothing exists: resending cannot pay twice.
            None => resolved.state = StepState::Pending,
        }
        journal.put(resolved);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn crashes_and_resumes_never_send_a_billed_request_twice(
        generate in proptest::collection::vec(billed_fault(), 0..3),
        render in proptest::collection::vec(billed_fault(), 0..3),
        crashes in proptest::collection::vec(0_u64..420_000, 0..4),
        fail_write in proptest::option::of(0_usize..24),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let state = SimState::new(SimConfig {
                scenario: scenario(&generate, &render),
                time_scale: 1.0,
                ..SimConfig::default()
            });
            let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
            let memory = MemoryJournal::new();
            let journal = Flaky { inner: memory.clone(), writes: 0.into(), fail_at: fail_write };
            for ms in &crashes {
                run_once(&http, &journal, Some(Duration::from_millis(*ms))).await;
                assert!(billed(&state, JobKind::SunoTask).len() <= 1);
                assert!(billed(&state, JobKind::CreatomateRender).len() <= 1);
            }
            let mut last = None;
            for _ in 0..8 {
                let report = run_once(&http, &journal, None).await.expect("no crash");
                let class = report.error.as_ref().map(encore_pipeline::PipelineError::class);
                match class {
                    None => {
                        last = Some(report);
                        break;
                    }
                    Some(FailureClass::OutcomeUnknown) => resolve(&memory, &state),
                    Some(FailureClass::GaveUp) => {}
                    Some(other) => panic!("unexpected {other:?}: {:?}", report.error),
                }
            }
            let tasks = billed(&state, JobKind::SunoTask);
            let renders = billed(&state, JobKind::CreatomateRender);
            assert_eq!(tasks.len(), 1, "one Suno task: {tasks:?}");
            assert_eq!(renders.len(), 1, "one render: {renders:?}");
            let report = last.expect("the job succeeds in the end");
            assert!(report.succeeded());
            assert_eq!(report.song.as_ref().map(|s| s.task_id.as_str()), Some(tasks[0].as_str()));
            assert_eq!(report.video.as_ref().map(|v| v.render_id.as_str()), Some(renders[0].as_str()));
            let steps = memory.snapshot();
            assert_eq!(steps.len(), StepName::ALL.len());
            assert!(steps.iter().all(|s| s.state == StepState::Done), "{steps:?}");
        });
    }
}

/// The lost-answer case without callbacks: the job stops as unknown, and says so on every
/// resume instead of sending again; adopting the task from the provider finishes it.
#[tokio::test(start_paused = true)]
async fn an_unknown_submit_is_never_resent_and_adopting_finishes_the_job() {
    let state = SimState::new(SimConfig {
        scenario: scenario(&["\"reset_after_processing\""], &[]),
        time_scale: 1.0,
        ..SimConfig::default()
    });
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let journal = MemoryJournal::new();
    let first = run_once(&http, &journal, None).await.unwrap();
    let error = first.error.expect("unknown");
    assert_eq!(error.class(), FailureClass::OutcomeUnknown);
    assert!(first.lyrics.is_some());
    for _ in 0..2 {
        let again = run_once(&http, &journal, None).await.unwrap();
        let error = again.error.expect("still unknown");
        assert_eq!(error.class(), FailureClass::OutcomeUnknown);
        assert!(
            error
                .to_string()
                .starts_with("song.submit: the Suno generate request may have created a task"),
            "{error}"
        );
    }
    assert_eq!(billed(&state, JobKind::SunoTask).len(), 1);
    assert_eq!(state.ledger().count(encore_sim::RouteId::SunoGenerate), 1);
    // Lyrics are not paid for again on resume.
    assert_eq!(state.ledger().openai_responses, 1);
    resolve(&journal, &state);
    let done = run_once(&http, &journal, None).await.unwrap();
    assert!(done.succeeded(), "{:?}", done.error);
    assert_eq!(billed(&state, JobKind::SunoTask).len(), 1);
    assert_eq!(billed(&state, JobKind::CreatomateRender).len(), 1);
    assert_eq!(state.ledger().openai_responses, 1);
}

/// A stop signal ends the run at the next safe point with every finished step stored; the
/// resumed run finishes with one billed job of each kind.
#[tokio::test(start_paused = true)]
async fn a_stop_leaves_a_resumable_job() {
    let state = SimState::new(SimConfig {
        time_scale: 1.0,
        ..SimConfig::default()
    });
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let journal = MemoryJournal::new();
    let config = Config::default().with_base("http://sim.test");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = StopSignal::new(rx);
    let pipeline = Pipeline::new(&http, &config, keys(), settings());
    let ctx = JobContext {
        job_id: "job-1",
        journal: &journal,
        callbacks: None,
        stop: &stop,
    };
    // Stop while the song is being made (it takes ~2.5 virtual minutes).
    let stopper = async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        tx.send(true).unwrap();
    };
    let input = input();
    let (report, ()) = tokio::join!(pipeline.run_job(&input, ctx), stopper);
    let error = report.error.expect("interrupted");
    assert_eq!(error.class(), FailureClass::Interrupted);
    assert_eq!(
        error.to_string(),
        "interrupted before song.wait: every finished step is stored"
    );
    let steps = journal.snapshot();
    let state_of = |name: StepName| steps.iter().find(|s| s.name == name).map(|s| s.state);
    assert_eq!(state_of(StepName::SongSubmit), Some(StepState::Done));
    assert_eq!(state_of(StepName::SongWait), Some(StepState::Pending));
    let resumed = run_once(&http, &journal, None).await.unwrap();
    assert!(resumed.succeeded(), "{:?}", resumed.error);
    assert_eq!(billed(&state, JobKind::SunoTask).len(), 1);
    assert_eq!(billed(&state, JobKind::CreatomateRender).len(), 1);
}

/// Callbacks as the server would give them, fed from the simulator's ledger: every billed job
/// of the step's kind is named by "a callback", including one created for another job (with
/// another callback address), which the pipeline must refuse after reading it.
struct LedgerCallbacks {
    state: SimState,
}

impl encore_pipeline::Callbacks for LedgerCallbacks {
    fn address(&self, step: StepName) -> encore_pipeline::CallbackAddress {
        encore_pipeline::CallbackAddress {
            url: format!("http://hooks.test/{step}/job-1/token-1"),
            token: "token-1".into(),
        }
    }
    fn arrival(&self, _: StepName) -> encore_pipeline::CallbackFuture<'_, ()> {
        Box::pin(tokio::time::sleep(Duration::from_secs(20)))
    }
    fn candidates(
        &self,
        step: StepName,
    ) -> encore_pipeline::CallbackFuture<'_, Result<Vec<String>, JournalError>> {
        let kind = match step {
            StepName::SongSubmit => JobKind::SunoTask,
            _ => JobKind::CreatomateRender,
        };
        // Oldest first: the stranger's task is looked at (and refused) before ours.
        let ids = billed(&self.state, kind);
        Box::pin(async move { Ok(ids) })
    }
    fn reconcile_window(&self) -> Duration {
        Duration::from_secs(600)
    }
}

/// The lost-answer case with callbacks: the job adopts the task and the render its lost
/// requests created (verified by a free read), ignores one that is not its own, and succeeds
/// with exactly one of each.
#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_resolved_by_a_verified_callback() {
    let state = SimState::new(SimConfig {
        scenario: scenario(
            &["\"reset_after_processing\"", "\"reset_after_processing\""],
            &["\"reset_after_processing\""],
        ),
        time_scale: 1.0,
        ..SimConfig::default()
    });
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let config = Config::default().with_base("http://sim.test");
    // Another job's task, created first with another callback address: a forged or stray
    // callback may name it.
    let stranger = encore_clients::SunoClient::new(http.clone(), &config, keys().suno);
    let other = stranger
        .generate(&encore_clients::suno::GenerateRequest {
            custom_mode: true,
            instrumental: false,
            model: "V4_5".into(),
            call_back_url: "http://hooks.test/song.submit/job-2/token-2".into(),
            prompt: Some("[Verse]\nla la".into()),
            style: Some("pop".into()),
            title: Some("Other".into()),
            negative_tags: None,
            vocal_gender: None,
        })
        .await;
    // The scenario resets the first two generates after processing: the stranger's and ours.
    assert!(other.unwrap_err().may_have_run());
    let journal = MemoryJournal::new();
    let callbacks = LedgerCallbacks {
        state: state.clone(),
    };
    let pipeline = Pipeline::new(&http, &config, keys(), settings());
    let stop = StopSignal::never();
    let ctx = JobContext {
        job_id: "job-1",
        journal: &journal,
        callbacks: Some(&callbacks),
        stop: &stop,
    };
    let input = input();
    let report = pipeline.run_job(&input, ctx).await;
    assert!(report.succeeded(), "{:?}", report.error);
    let tasks = billed(&state, JobKind::SunoTask);
    assert_eq!(tasks.len(), 2, "the stranger's and ours: {tasks:?}");
    assert_eq!(
        report.song.unwrap().task_id,
        tasks[1],
        "ours, not the stranger's"
    );
    assert_eq!(billed(&state, JobKind::CreatomateRender).len(), 1);
    let steps = journal.snapshot();
    let submit = steps
        .iter()
        .find(|s| s.name == StepName::SongSubmit)
        .unwrap();
    assert_eq!(submit.correlation.as_deref(), Some("token-1"));
    assert_eq!(submit.attempts, 1);
}

/// A rate limiter that says when a caller starts waiting for a slot.
#[derive(Debug)]
struct Watched {
    inner: encore_resilience::rate_limit::LocalRateLimiter,
    waiting: std::sync::Arc<tokio::sync::Notify>,
}

impl encore_resilience::rate_limit::RateLimiter for Watched {
    fn acquire(
        &self,
        deadline: tokio::time::Instant,
    ) -> encore_resilience::rate_limit::BoxFuture<
        '_,
        Result<Duration, encore_resilience::rate_limit::NoSlot>,
    > {
        self.waiting.notify_one();
        self.inner.acquire(deadline)
    }
    fn hold_until(
        &self,
        until: tokio::time::Instant,
    ) -> encore_resilience::rate_limit::BoxFuture<'_, ()> {
        self.inner.hold_until(until)
    }
}

/// A process that dies while its billed request waits for a rate-limit slot has not sent it:
/// the step's write-ahead record comes after the slot, so the next run sends the request (once)
/// instead of finding an `in_flight` step whose outcome is unknown.
#[tokio::test(start_paused = true)]
async fn a_run_killed_while_queued_for_a_slot_leaves_the_request_unsent() {
    use encore_clients::{Protections, Service};
    use encore_resilience::rate_limit::{LocalRateLimiter, RateLimitConfig, RateLimiter};

    let state = SimState::new(SimConfig {
        time_scale: 1.0,
        ..SimConfig::default()
    });
    let mut config = Config::default().with_base("http://sim.test");
    let quota = RateLimitConfig::new(1, Duration::from_secs(120));
    config.services.suno.rate_limit = quota.clone();
    let waiting = std::sync::Arc::new(tokio::sync::Notify::new());
    let limiter = std::sync::Arc::new(Watched {
        inner: LocalRateLimiter::new("suno", &quota).unwrap(),
        waiting: waiting.clone(),
    });
    // Another caller took the account's slot: the job's generate waits up to two minutes for the next.
    limiter
        .inner
        .acquire(tokio::time::Instant::now() + Duration::from_secs(1))
        .await
        .unwrap();
    let protections = Protections::from_config(&config)
        .unwrap()
        .with_rate_limiter(Service::Suno, limiter.clone());
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()))
        .with_protections(protections);
    let journal = MemoryJournal::new();
    let run = |journal: MemoryJournal| {
        let http = http.clone();
        let config = config.clone();
        async move {
            let pipeline = Pipeline::new(&http, &config, keys(), settings());
            let stop = StopSignal::never();
            let ctx = JobContext {
                job_id: "job-1",
                journal: &journal,
                callbacks: None,
                stop: &stop,
            };
            pipeline.run_job(&input(), ctx).await
        }
    };
    // The process dies ten seconds into the wait.
    tokio::select! {
        report = run(journal.clone()) => panic!("the run ended while its generate had no slot: {:?}", report.error),
        () = async {
            waiting.notified().await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        } => {}
    }
    let submit = journal
        .snapshot()
        .into_iter()
        .find(|s| s.name == StepName::SongSubmit);
    assert!(
        submit
            .as_ref()
            .is_none_or(|s| s.state == StepState::Pending),
        "not written ahead while queued: {submit:?}"
    );
    assert_eq!(billed(&state, JobKind::SunoTask).len(), 0);

    // The next run sends it, once, and the job succeeds (no callbacks: an `in_flight` step
    // would have stopped it as unknown).
    let report = run(journal.clone()).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(billed(&state, JobKind::SunoTask).len(), 1);
}
