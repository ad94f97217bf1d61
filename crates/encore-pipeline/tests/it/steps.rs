//! The step logic's edges (`steps.rs`), each found by mutation testing: the free checks'
//! boundaries before anything is paid for, and what a resumed or unknown step says.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_clients::{Config, Http, Protections, Service};
use encore_pipeline::{
    CallbackAddress, CallbackFuture, Callbacks, Event, FailureClass, JobContext, JournalError,
    MemoryJournal, Pipeline, PipelineConfig, PipelineError, Report, Stage, StepName, StepState,
    StopSignal,
};
use encore_resilience::PollPolicy;
use encore_resilience::rate_limit::{BoxFuture, LocalRateLimiter, NoSlot, RateLimiter};
use encore_sim::{SimConfig, SimState};
use tokio::time::Instant;

use super::{billed, input, keys, settings};

async fn run(sim: SimConfig, settings: PipelineConfig) -> (Report, Vec<Event>, SimState) {
    let state = SimState::new(sim);
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let config = Config::default().with_base("http://sim.test");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let pipeline = Pipeline::new(&http, &config, keys(), settings)
        .on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let report = pipeline.run(&input()).await;
    let events = events.lock().unwrap().clone();
    (report, events, state)
}

/// A simulator at real durations whose Suno account starts with `credits`.
fn with_credits(credits: u64) -> SimConfig {
    SimConfig {
        suno_credits: credits,
        ..SimConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn one_credit_short_of_a_song_is_refused_before_anything_is_paid_for() {
    let need = settings().song_credits;
    let (report, _, state) = run(with_credits(need - 1), settings()).await;
    let err = report.error.as_ref().expect("too few credits");
    assert!(
        matches!(err, PipelineError::InsufficientCredits { have, need: n } if *have == need - 1 && *n == need),
        "{err:?}"
    );
    assert_eq!(billed(&state), (0, 0, 0), "no lyrics, song or render");
}

#[tokio::test(start_paused = true)]
async fn exactly_the_credits_of_one_song_are_enough() {
    let need = settings().song_credits;
    let (report, _, state) = run(with_credits(need), settings()).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(billed(&state), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_template_without_a_configured_element_is_refused_before_anything_is_paid_for() {
    let settings = PipelineConfig {
        captions_element: "Subtitles".into(),
        ..settings()
    };
    let (report, _, state) = run(SimConfig::default(), settings).await;
    let err = report.error.as_ref().expect("no such element");
    match err {
        PipelineError::TemplateElements { missing, found, .. } => {
            assert_eq!(missing, &["Subtitles"]);
            for name in ["Audio", "Title", "Captions"] {
                assert!(found.iter().any(|f| f == name), "{name}: {found:?}");
            }
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(billed(&state), (0, 0, 0), "no lyrics, song or render");
}

/// A run over `journal` with `callbacks` and `stop`, its events collected.
async fn run_job(
    state: &SimState,
    journal: &MemoryJournal,
    callbacks: Option<&dyn Callbacks>,
    stop: &StopSignal,
    on_event: impl Fn(&Event) + Send + Sync + 'static,
) -> (Report, Vec<Event>) {
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let config = Config::default().with_base("http://sim.test");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let pipeline = Pipeline::new(&http, &config, keys(), settings()).on_event(move |e| {
        sink.lock().unwrap().push(e.clone());
        on_event(e);
    });
    let ctx = JobContext {
        job_id: "job-1",
        journal,
        callbacks,
        stop,
    };
    let report = pipeline.run_job(&input(), ctx).await;
    let events = events.lock().unwrap().clone();
    (report, events)
}

fn attempts(events: &[Event], step: StepName) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StepChanged {
                step: s,
                state: StepState::InFlight,
                attempt,
                ..
            } if *s == step => Some(*attempt),
            _ => None,
        })
        .collect()
}

/// A stop during the render's wait names `video.wait` (not the song's) and leaves it pending;
/// the resumed run says the finished stages were done in an earlier run instead of starting
/// them, and counts the wait's second attempt.
#[tokio::test(start_paused = true)]
async fn a_stop_during_the_render_wait_resumes_with_the_finished_stages_kept() {
    let state = SimState::new(SimConfig::default());
    let journal = MemoryJournal::new();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = StopSignal::new(rx);
    let waiting = Arc::new(tokio::sync::Notify::new());
    let started = waiting.clone();
    let run = run_job(&state, &journal, None, &stop, move |e| {
        if matches!(
            e,
            Event::StepChanged {
                step: StepName::VideoWait,
                state: StepState::InFlight,
                ..
            }
        ) {
            started.notify_one();
        }
    });
    // The render takes ~40 virtual seconds: a second into its wait, it is still running.
    let stopper = async {
        waiting.notified().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send(true).unwrap();
    };
    let ((report, events), ()) = tokio::join!(run, stopper);
    let err = report.error.as_ref().expect("interrupted");
    assert_eq!(
        err.to_string(),
        "interrupted before video.wait: every finished step is stored"
    );
    assert_eq!(attempts(&events, StepName::SongSubmit), [1]);
    assert_eq!(attempts(&events, StepName::VideoWait), [1]);
    let steps = journal.snapshot();
    let state_of = |name: StepName| steps.iter().find(|s| s.name == name).map(|s| s.state);
    assert_eq!(state_of(StepName::VideoSubmit), Some(StepState::Done));
    assert_eq!(state_of(StepName::VideoWait), Some(StepState::Pending));

    let (resumed, events) = run_job(&state, &journal, None, &StopSignal::never(), |_| {}).await;
    assert!(resumed.succeeded(), "{:?}", resumed.error);
    assert_eq!(billed(&state), (1, 1, 1));
    assert_eq!(attempts(&events, StepName::VideoWait), [2], "{events:#?}");
    let started: Vec<Stage> = events
        .iter()
        .filter_map(|e| match e {
            Event::StageStarted { stage } => Some(*stage),
            _ => None,
        })
        .collect();
    assert_eq!(started, [Stage::Video], "only the unfinished stage starts");
    for stage in [Stage::Lyrics, Stage::Song] {
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Note { stage: s, message }
                if *s == stage && message.starts_with("done in an earlier run: "))),
            "{stage}: {events:#?}"
        );
    }
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::StageFinished {
                stage: Stage::Video,
                ..
            }
        )),
        "{events:#?}"
    );
}

/// Callbacks that arrive every five seconds and never name anything.
struct Chatty;

impl Callbacks for Chatty {
    fn address(&self, step: StepName) -> CallbackAddress {
        CallbackAddress {
            url: format!("http://hooks.test/{step}/job-1/token-1"),
            token: "token-1".into(),
        }
    }
    fn arrival(&self, _: StepName) -> CallbackFuture<'_, ()> {
        Box::pin(tokio::time::sleep(Duration::from_secs(5)))
    }
    fn candidates(&self, _: StepName) -> CallbackFuture<'_, Result<Vec<String>, JournalError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn reconcile_window(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// Callbacks wake the wait again and again, but the polling deadline counts from the start of
/// the wait, not from the last callback.
#[tokio::test(start_paused = true)]
async fn callbacks_do_not_push_the_polling_deadline_back() {
    // At time scale 10 the song takes ~25 virtual minutes; the deadline is 10 minutes.
    let state = SimState::new(SimConfig {
        time_scale: 10.0,
        ..SimConfig::default()
    });
    let journal = MemoryJournal::new();
    let start = tokio::time::Instant::now();
    let (report, _) = run_job(
        &state,
        &journal,
        Some(&Chatty),
        &StopSignal::never(),
        |_| {},
    )
    .await;
    let err = report.error.as_ref().expect("the deadline passed");
    match err {
        PipelineError::StillPending {
            stage: Stage::Song,
            checks,
            ..
        } => assert!(*checks > 10, "woken every 5 s: {checks} checks"),
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(11 * 60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(billed(&state), (1, 1, 0));
}

/// A lost render answer without callbacks: on resume, the unknown step names Creatomate and
/// its render, not Suno, and is not sent again.
#[tokio::test(start_paused = true)]
async fn a_lost_render_answer_names_creatomate_on_resume() {
    let scenario = encore_sim::Scenario::from_toml(
        "[routes.\"creatomate.render\"]\nsequence = [\"reset_after_processing\"]\n",
    )
    .unwrap();
    let state = SimState::new(SimConfig {
        scenario,
        ..SimConfig::default()
    });
    let journal = MemoryJournal::new();
    let never = StopSignal::never();
    let (first, _) = run_job(&state, &journal, None, &never, |_| {}).await;
    assert_eq!(
        first.error.as_ref().map(PipelineError::class),
        Some(FailureClass::OutcomeUnknown)
    );
    let (again, _) = run_job(&state, &journal, None, &never, |_| {}).await;
    let err = again.error.as_ref().expect("still unknown");
    assert_eq!(
        err.to_string(),
        "video.submit: the Creatomate render request may have created a render that is paid \
         for, but its answer was lost; check the Creatomate dashboard before running again"
    );
    assert_eq!(billed(&state), (1, 1, 1), "not sent again");
}

/// A Creatomate rate limiter that refuses every slot while `closed` is set.
#[derive(Debug)]
struct Closable {
    inner: LocalRateLimiter,
    closed: Arc<AtomicBool>,
}

impl RateLimiter for Closable {
    fn acquire(&self, deadline: Instant) -> BoxFuture<'_, Result<Duration, NoSlot>> {
        if self.closed.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            let refused = NoSlot::new(
                "creatomate",
                (30, Duration::from_secs(10)),
                Duration::from_secs(1),
                true,
                left,
            );
            return Box::pin(async move { Err(refused) });
        }
        self.inner.acquire(deadline)
    }
    fn hold_until(&self, until: Instant) -> BoxFuture<'_, ()> {
        self.inner.hold_until(until)
    }
}

/// A render status read refused by our own rate limit (no slot) is "look again later", not the
/// end of a paid render's wait.
#[tokio::test(start_paused = true)]
async fn a_throttled_status_read_is_read_again_later() {
    let state = SimState::new(SimConfig::default());
    let config = Config::default().with_base("http://sim.test");
    let closed = Arc::new(AtomicBool::new(false));
    let quota = config.services.creatomate.rate_limit.clone();
    let limiter = Arc::new(Closable {
        inner: LocalRateLimiter::new("creatomate", &quota).unwrap(),
        closed: closed.clone(),
    });
    let protections = Protections::from_config(&config)
        .unwrap()
        .with_rate_limiter(Service::Creatomate, limiter);
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()))
        .with_protections(protections);
    let submitted = Arc::new(tokio::sync::Notify::new());
    let (close, on_submit) = (closed.clone(), submitted.clone());
    // The limiter refuses every slot from the render's creation on, for 20 s of its ~40 s.
    let pipeline = Pipeline::new(&http, &config, keys(), settings()).on_event(move |e| {
        if matches!(
            e,
            Event::StepChanged {
                step: StepName::VideoSubmit,
                state: StepState::Done,
                ..
            }
        ) {
            close.store(true, Ordering::SeqCst);
            on_submit.notify_one();
        }
    });
    let reopen = async {
        submitted.notified().await;
        tokio::time::sleep(Duration::from_secs(20)).await;
        closed.store(false, Ordering::SeqCst);
    };
    let input = input();
    let (report, ()) = tokio::join!(pipeline.run(&input), reopen);
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(billed(&state), (1, 1, 1));
    let refused = report
        .calls
        .iter()
        .filter(|c| c.endpoint == encore_clients::Endpoint::CreatomateStatus && c.error.is_some())
        .count();
    assert!(
        refused > 0,
        "a status read was refused: {:#?}",
        report.calls
    );
}

/// Lyrics with verse and chorus tags get no note saying they lack them.
#[tokio::test(start_paused = true)]
async fn tagged_lyrics_get_no_note_about_tags() {
    let (report, events, _) = run(SimConfig::default(), settings()).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert!(report.lyrics.as_ref().unwrap().lyrics.contains("[Verse]"));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Note { message, .. } if message.contains("tags"))),
        "{events:#?}"
    );
}

/// A stop that comes between steps is obeyed before the next billed request: the song is not
/// paid for, and the resumed run sends it once.
#[tokio::test(start_paused = true)]
async fn a_stop_between_steps_sends_no_billed_request() {
    let state = SimState::new(SimConfig::default());
    let journal = MemoryJournal::new();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = StopSignal::new(rx);
    let (report, events) = run_job(&state, &journal, None, &stop, move |e| {
        if matches!(
            e,
            Event::StepChanged {
                step: StepName::Lyrics,
                state: StepState::Done,
                ..
            }
        ) {
            tx.send(true).unwrap();
        }
    })
    .await;
    let err = report.error.as_ref().expect("interrupted");
    assert_eq!(
        err.to_string(),
        "interrupted before song.submit: every finished step is stored"
    );
    assert_eq!(billed(&state), (1, 0, 0), "the lyrics only");
    assert!(
        attempts(&events, StepName::SongSubmit).is_empty(),
        "{events:#?}"
    );
    let (resumed, _) = run_job(&state, &journal, None, &StopSignal::never(), |_| {}).await;
    assert!(resumed.succeeded(), "{:?}", resumed.error);
    assert_eq!(billed(&state), (1, 1, 1));
}

fn with_scenario(toml: &str) -> SimConfig {
    SimConfig {
        scenario: encore_sim::Scenario::from_toml(toml).expect("valid scenario"),
        ..SimConfig::default()
    }
}

/// A render that says it succeeded but has an empty URL is a failed render, not a video.
#[tokio::test(start_paused = true)]
async fn a_succeeded_render_without_a_url_is_a_failure() {
    let scenario = "[routes.\"creatomate.render_status\"]\nsequence = [{ kind = \"status\", \
                    status = 200, body = { id = \"r-1\", status = \"succeeded\", url = \"\" } }]\n";
    let (report, _, _) = run(with_scenario(scenario), settings()).await;
    let err = report.error.as_ref().expect("no video");
    assert!(
        matches!(err, PipelineError::RenderFailed { message, .. }
            if message == "finished as succeeded without a URL"),
        "{err:?}"
    );
    assert!(report.video.is_none());
}

/// Timestamped lyrics with no aligned word at all: captions are spread, saying why.
#[tokio::test(start_paused = true)]
async fn no_aligned_words_spread_the_captions_and_say_so() {
    let scenario = "[routes.\"suno.timestamped_lyrics\"]\nsequence = [{ kind = \"status\", \
                    status = 200, body = { code = 200, msg = \"success\", data = { alignedWords \
                    = [] } } }]\n";
    let (report, events, _) = run(with_scenario(scenario), settings()).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert!(!report.song.as_ref().unwrap().timed_captions);
    assert!(
        events.iter().any(|e| matches!(e, Event::Note { message, .. }
            if message == "captions spread evenly: timestamped lyrics unavailable (no aligned words)")),
        "{events:#?}"
    );
}

/// Callbacks that name every task the simulator billed.
struct NamesBilledTasks(SimState);

impl Callbacks for NamesBilledTasks {
    fn address(&self, step: StepName) -> CallbackAddress {
        Chatty.address(step)
    }
    fn arrival(&self, _: StepName) -> CallbackFuture<'_, ()> {
        Box::pin(tokio::time::sleep(Duration::from_secs(5)))
    }
    fn candidates(&self, _: StepName) -> CallbackFuture<'_, Result<Vec<String>, JournalError>> {
        let ids = self
            .0
            .ledger()
            .jobs_of(encore_sim::JobKind::SunoTask)
            .map(|j| j.id.clone())
            .collect();
        Box::pin(async move { Ok(ids) })
    }
    fn reconcile_window(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// A callback's id whose verifying read is refused for good is rejected and not read again:
/// the lost answer stays unknown when the window ends, and nothing is sent twice.
#[tokio::test(start_paused = true)]
async fn a_candidate_refused_for_good_is_not_read_again() {
    let state = SimState::new(with_scenario(
        "[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n\
         [routes.\"suno.record_info\"]\nsequence = [{ kind = \"suno_code\", code = 401 }]\n",
    ));
    let journal = MemoryJournal::new();
    let callbacks = NamesBilledTasks(state.clone());
    let (report, _) = run_job(
        &state,
        &journal,
        Some(&callbacks),
        &StopSignal::never(),
        |_| {},
    )
    .await;
    let err = report.error.as_ref().expect("unknown");
    assert_eq!(err.class(), FailureClass::OutcomeUnknown, "{err}");
    assert_eq!(billed(&state), (1, 1, 0));
    assert_eq!(
        state.ledger().count(encore_sim::RouteId::SunoRecordInfo),
        1,
        "read once"
    );
}

/// A Creatomate rate limiter whose slots stop coming once `closed` is set.
#[derive(Debug)]
struct Gated {
    inner: LocalRateLimiter,
    closed: Arc<AtomicBool>,
    waiting: Arc<tokio::sync::Notify>,
}

impl RateLimiter for Gated {
    fn acquire(&self, deadline: Instant) -> BoxFuture<'_, Result<Duration, NoSlot>> {
        if self.closed.load(Ordering::SeqCst) {
            self.waiting.notify_one();
            return Box::pin(std::future::pending());
        }
        self.inner.acquire(deadline)
    }
    fn hold_until(&self, until: Instant) -> BoxFuture<'_, ()> {
        self.inner.hold_until(until)
    }
}

/// The render's write-ahead record, too, comes after its rate-limit slot: a run that dies while
/// the render waits for one leaves `video.submit` unsent, not `in_flight`.
#[tokio::test(start_paused = true)]
async fn a_run_killed_while_the_render_waits_for_a_slot_leaves_it_unsent() {
    let state = SimState::new(SimConfig::default());
    let config = Config::default().with_base("http://sim.test");
    let closed = Arc::new(AtomicBool::new(false));
    let waiting = Arc::new(tokio::sync::Notify::new());
    let quota = config.services.creatomate.rate_limit.clone();
    let limiter = Arc::new(Gated {
        inner: LocalRateLimiter::new("creatomate", &quota).unwrap(),
        closed: closed.clone(),
        waiting: waiting.clone(),
    });
    let protections = Protections::from_config(&config)
        .unwrap()
        .with_rate_limiter(Service::Creatomate, limiter);
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()))
        .with_protections(protections);
    let close = closed.clone();
    // Once the song is made, the next Creatomate request (the render) waits for a slot.
    let pipeline = Pipeline::new(&http, &config, keys(), settings()).on_event(move |e| {
        if matches!(
            e,
            Event::StepChanged {
                step: StepName::SongTimestamps,
                state: StepState::Done,
                ..
            }
        ) {
            close.store(true, Ordering::SeqCst);
        }
    });
    let journal = MemoryJournal::new();
    let stop = StopSignal::never();
    let ctx = JobContext {
        job_id: "job-1",
        journal: &journal,
        callbacks: None,
        stop: &stop,
    };
    let input = input();
    tokio::select! {
        report = pipeline.run_job(&input, ctx) => panic!("the run ended: {:?}", report.error),
        () = async {
            waiting.notified().await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        } => {}
    }
    let submit = journal
        .snapshot()
        .into_iter()
        .find(|s| s.name == StepName::VideoSubmit);
    assert!(
        submit
            .as_ref()
            .is_none_or(|s| s.state == StepState::Pending),
        "not written ahead while queued: {submit:?}"
    );
    assert_eq!(billed(&state), (1, 1, 0));
}

/// A rate limiter that counts the slots asked of it.
#[derive(Debug)]
struct Counting {
    inner: LocalRateLimiter,
    asked: Arc<std::sync::atomic::AtomicUsize>,
}

impl RateLimiter for Counting {
    fn acquire(&self, deadline: Instant) -> BoxFuture<'_, Result<Duration, NoSlot>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.inner.acquire(deadline)
    }
    fn hold_until(&self, until: Instant) -> BoxFuture<'_, ()> {
        self.inner.hold_until(until)
    }
}

/// The slot a billed request waited for before its write-ahead record is the one it is sent
/// with: the request does not take a second slot of the account's quota.
#[tokio::test(start_paused = true)]
async fn a_billed_request_takes_one_slot_not_two() {
    let state = SimState::new(SimConfig::default());
    let config = Config::default().with_base("http://sim.test");
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let limiter = Arc::new(Counting {
        inner: LocalRateLimiter::new("suno", &config.services.suno.rate_limit).unwrap(),
        asked: asked.clone(),
    });
    let protections = Protections::from_config(&config)
        .unwrap()
        .with_rate_limiter(Service::Suno, limiter);
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()))
        .with_protections(protections);
    let pipeline = Pipeline::new(&http, &config, keys(), settings());
    let report = pipeline.run(&input()).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(billed(&state), (1, 1, 1));
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "one Suno slot, for the one generate"
    );
}

/// A billed request refused before it ran is `failed`, not `unknown`: running the job again
/// sends it, once.
#[tokio::test(start_paused = true)]
async fn a_billed_request_refused_before_it_ran_is_sent_again_on_resume() {
    let state = SimState::new(with_scenario(
        "[routes.\"suno.generate\"]\nsequence = [{ kind = \"suno_code\", code = 401 }]\n",
    ));
    let journal = MemoryJournal::new();
    let never = StopSignal::never();
    let (first, _) = run_job(&state, &journal, None, &never, |_| {}).await;
    let err = first.error.as_ref().expect("refused");
    assert!(
        !matches!(err.class(), FailureClass::OutcomeUnknown),
        "{err}"
    );
    let submit = journal
        .snapshot()
        .into_iter()
        .find(|s| s.name == StepName::SongSubmit)
        .unwrap();
    assert_eq!(submit.state, StepState::Failed, "{submit:?}");
    assert_eq!(billed(&state), (1, 0, 0));
    let (again, _) = run_job(&state, &journal, None, &never, |_| {}).await;
    assert!(again.succeeded(), "{:?}", again.error);
    assert_eq!(billed(&state), (1, 1, 1));
}

/// "Not found" is "not visible yet" only strictly within the grace: a read exactly when the
/// grace ends gives up, naming the task.
#[tokio::test(start_paused = true)]
async fn the_grace_ends_at_its_last_instant() {
    // Read every 10 s from the task's creation; the grace is 30 s, the task never shows.
    let settings = PipelineConfig {
        song_poll: PollPolicy::fixed(Duration::from_secs(10), Duration::from_secs(600)),
        ..settings()
    };
    let sim = SimConfig {
        suno_task_visible_after_s: 3600.0,
        ..SimConfig::default()
    };
    let state = SimState::new(sim);
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let config = Config::default().with_base("http://sim.test");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let pipeline = Pipeline::new(&http, &config, keys(), settings)
        .on_event(move |e| sink.lock().unwrap().push((Instant::now(), e.clone())));
    let report = pipeline.run(&input()).await;
    let err = report.error.as_ref().expect("never visible");
    assert!(matches!(err, PipelineError::NotVisible { .. }), "{err:?}");
    let seen = seen.lock().unwrap();
    let at = |pick: &dyn Fn(&Event) -> bool| seen.iter().find(|(_, e)| pick(e)).map(|(t, _)| *t);
    let waiting = at(&|e| {
        matches!(
            e,
            Event::StepChanged {
                step: StepName::SongWait,
                state: StepState::InFlight,
                ..
            }
        )
    })
    .unwrap();
    let failed = at(&|e| {
        matches!(
            e,
            Event::StageFailed {
                stage: Stage::Song,
                ..
            }
        )
    })
    .unwrap();
    assert_eq!(
        failed - waiting,
        Duration::from_secs(30),
        "the fourth read, at 30 s"
    );
    assert_eq!(state.ledger().count(encore_sim::RouteId::SunoRecordInfo), 4);
}

/// A status read refused for another reason than "not found" ends the wait with that error,
/// not as a job that is not visible.
#[tokio::test(start_paused = true)]
async fn a_status_read_refused_for_good_is_not_called_not_visible() {
    let scenario =
        "[routes.\"suno.record_info\"]\nsequence = [{ kind = \"suno_code\", code = 401 }]\n";
    let (report, _, state) = run(with_scenario(scenario), settings()).await;
    let err = report.error.as_ref().expect("refused");
    assert!(matches!(err, PipelineError::Call(_)), "{err:?}");
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(billed(&state), (1, 1, 0));
}

/// While a lost answer waits for its callback, the ids callbacks named are looked at every
/// five seconds, not in a loop: a task that never shows is read once per look.
#[tokio::test(start_paused = true)]
async fn reconciling_looks_every_five_seconds() {
    let state = SimState::new(SimConfig {
        suno_task_visible_after_s: 3600.0,
        ..with_scenario("[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n")
    });
    let journal = MemoryJournal::new();
    let callbacks = NamesBilledTasks(state.clone());
    let start = Instant::now();
    let (report, _) = run_job(
        &state,
        &journal,
        Some(&callbacks),
        &StopSignal::never(),
        |_| {},
    )
    .await;
    let err = report.error.as_ref().expect("unknown");
    assert_eq!(err.class(), FailureClass::OutcomeUnknown, "{err}");
    assert!(
        start.elapsed() >= Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    // One look at once, then one every 5 s until the 60 s window ends.
    assert_eq!(
        state.ledger().count(encore_sim::RouteId::SunoRecordInfo),
        13
    );
}

/// A render's metadata names its job and step, so that a webhook and an operator can tell whose
/// render it is.
#[test]
fn render_metadata_names_the_job() {
    assert_eq!(
        encore_pipeline::render_metadata("job-1"),
        "encore job=job-1 step=video.submit"
    );
}

/// A callback's id whose verifying read fails for a while (the service is having trouble) is
/// read again later, not rejected: the lost task is adopted once the read works.
#[tokio::test(start_paused = true)]
async fn a_candidate_whose_read_fails_for_a_while_is_adopted_later() {
    let state = SimState::new(with_scenario(
        "[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n\
         [routes.\"suno.record_info\"]\nsequence = [{ kind = \"server_error\", status = 503 }, \
         { kind = \"server_error\", status = 503 }, { kind = \"server_error\", status = 503 }, \
         { kind = \"server_error\", status = 503 }]\n",
    ));
    let journal = MemoryJournal::new();
    let callbacks = NamesBilledTasks(state.clone());
    let (report, _) = run_job(
        &state,
        &journal,
        Some(&callbacks),
        &StopSignal::never(),
        |_| {},
    )
    .await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(billed(&state), (1, 1, 1), "adopted, not resent");
}
