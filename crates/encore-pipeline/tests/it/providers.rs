//! Real providers, not just the simulator's happy path (issue 11): what sunoapi.org and
//! Creatomate do that a first client gets wrong — a song's stream before its file, a
//! CALLBACK_EXCEPTION before the audio, loose timestamped lyrics, a job that answers "not found"
//! right after it was created — and captions that reach the render with their timing. Every test
//! runs the whole pipeline against the simulator in memory on paused time, and reads what the
//! simulator received and billed from its ledger.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_clients::{Config, Http};
use encore_pipeline::captions::{Caption, plain_lyrics};
use encore_pipeline::{
    CallbackAddress, CallbackFuture, Callbacks, Event, FailureClass, JobContext, JournalError,
    MemoryJournal, Pipeline, PipelineConfig, PipelineError, Report, Stage, StepName, StepState,
    StopSignal,
};
use encore_resilience::PollPolicy;
use encore_sim::{JobKind, RouteId, Scenario, SimConfig, SimState, SubtitleLine};
use tokio::time::Instant;

use super::{billed, input, keys, settings, statuses};

/// A run with the instant of every event (virtual time: the clock is paused).
struct TimedRun {
    report: Report,
    events: Vec<(Instant, Event)>,
    state: SimState,
    start: Instant,
}

impl TimedRun {
    fn events(&self) -> Vec<Event> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Seconds from the start of the run to the first event `pick` accepts.
    fn at(&self, pick: impl Fn(&Event) -> bool) -> Option<f64> {
        self.events
            .iter()
            .find(|(_, e)| pick(e))
            .map(|(at, _)| (*at - self.start).as_secs_f64())
    }

    fn notes(&self, stage: Stage) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Note { stage: s, message } if *s == stage => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// The subtitle lines the simulator rendered for the run's video.
    fn rendered_subtitles(&self) -> Vec<SubtitleLine> {
        let video = self.report.video.as_ref().expect("a video");
        self.state
            .ledger()
            .job(&video.render_id)
            .expect("the render is billed")
            .subtitles
            .clone()
    }
}

async fn run_sim(sim: SimConfig, settings: PipelineConfig) -> TimedRun {
    let state = SimState::new(sim);
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let config = Config::default().with_base("http://sim.test");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let pipeline = Pipeline::new(&http, &config, keys(), settings)
        .on_event(move |e| sink.lock().unwrap().push((Instant::now(), e.clone())));
    let start = Instant::now();
    let report = pipeline.run(&input()).await;
    let events = events.lock().unwrap().clone();
    TimedRun {
        report,
        events,
        state,
        start,
    }
}

/// A simulator at real durations (virtual seconds are the test's paused seconds) with `scenario`.
fn sim(scenario: &str) -> SimConfig {
    SimConfig {
        scenario: Scenario::from_toml(scenario).expect("valid scenario"),
        time_scale: 1.0,
        ..SimConfig::default()
    }
}

/// Asserts that the render shows `captions` line for line: the same words, appearing at each
/// line's start and lasting to its end (to the millisecond).
fn assert_rendered(captions: &[Caption], rendered: &[SubtitleLine]) {
    assert_eq!(
        rendered.len(),
        captions.len(),
        "one subtitle line per caption line:\n{rendered:#?}\n{captions:#?}"
    );
    for (line, caption) in rendered.iter().zip(captions) {
        assert_eq!(line.element, "Captions");
        assert_eq!(line.text, caption.text);
        assert!(
            (line.time - caption.start).abs() < 0.0015,
            "{line:?} vs {caption:?}"
        );
        assert!(
            (line.duration - (caption.end - caption.start)).abs() < 0.0015,
            "{line:?} vs {caption:?}"
        );
        assert_eq!(line.words, caption.words.len(), "{line:?}");
    }
}

/// Every caption line is (a piece of) one sung line of the lyrics, and together they hold every
/// sung word in order.
fn assert_lines_follow_the_lyrics(captions: &[Caption], lyrics: &str) {
    let plain = plain_lyrics(lyrics);
    let sung: Vec<&str> = plain.lines().collect();
    for caption in captions {
        assert!(
            sung.iter().any(|line| line.contains(caption.text.as_str())),
            "{:?} is not within one sung line of\n{plain}",
            caption.text
        );
    }
    let words: Vec<&str> = captions.iter().flat_map(|c| c.text.split(' ')).collect();
    let expected: Vec<&str> = plain.split_whitespace().collect();
    assert_eq!(words, expected);
}

#[tokio::test(start_paused = true)]
async fn captions_reach_the_render_with_each_lines_time_and_duration() {
    let run = run_sim(sim(""), settings()).await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    let song = run.report.song.as_ref().unwrap();
    assert!(song.timed_captions);
    let lyrics = &run.report.lyrics.as_ref().unwrap().lyrics;
    assert_lines_follow_the_lyrics(&song.captions, lyrics);
    assert!(song.captions.len() >= 4, "{:?}", song.captions);
    // Sung one after the other, each for a while, none at the very start (the song has an intro).
    for pair in song.captions.windows(2) {
        assert!(
            pair[0].start < pair[0].end && pair[0].end <= pair[1].start,
            "{pair:?}"
        );
    }
    assert!(song.captions[0].start > 1.0, "{:?}", song.captions[0]);
    let rendered = run.rendered_subtitles();
    assert_rendered(&song.captions, &rendered);
    let render = run.state.ledger();
    let render = render.jobs_of(JobKind::CreatomateRender).next().unwrap();
    assert!(
        render.ignored_modifications.is_empty(),
        "{:?}",
        render.ignored_modifications
    );
}

#[tokio::test(start_paused = true)]
async fn evenly_spread_captions_reach_the_render_too() {
    // The timestamped lyrics are refused (a permanent answer): the song is kept and its captions
    // are spread over it, line by line.
    let scenario =
        "[routes.\"suno.timestamped_lyrics\"]\nsequence = [{ kind = \"suno_code\", code = 400 }]\n";
    let run = run_sim(sim(scenario), settings()).await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    let song = run.report.song.as_ref().unwrap();
    assert!(!song.timed_captions);
    let lyrics = &run.report.lyrics.as_ref().unwrap().lyrics;
    assert_eq!(
        song.captions
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>(),
        plain_lyrics(lyrics).lines().collect::<Vec<_>>()
    );
    assert_rendered(&song.captions, &run.rendered_subtitles());
    assert!(
        run.notes(Stage::Song)
            .iter()
            .any(|n| n.starts_with("captions spread evenly")),
        "{:?}",
        run.notes(Stage::Song)
    );
}

/// The timestamped lyrics in `shape` (a `[suno] timestamped_lyrics` value) still time the
/// captions from the words that have times: from that one answer (no retry that happens to get
/// a tidy one), with every sung word kept.
async fn captions_from_loose_timestamps(shape: &str, untimed_words: bool) {
    let scenario = format!("[suno]\ntimestamped_lyrics = [\"{shape}\"]\n");
    let run = run_sim(sim(&scenario), settings()).await;
    assert!(run.report.succeeded(), "{shape}: {:?}", run.report.error);
    assert_eq!(billed(&run.state), (1, 1, 1), "{shape}");
    assert_eq!(
        run.state.ledger().count(RouteId::SunoTimestampedLyrics),
        1,
        "{shape}: the first answer was used"
    );
    let song = run.report.song.as_ref().unwrap();
    assert!(song.timed_captions, "{shape}: {:?}", run.notes(Stage::Song));
    let lyrics = &run.report.lyrics.as_ref().unwrap().lyrics;
    assert_lines_follow_the_lyrics(&song.captions, lyrics);
    let placed = run
        .notes(Stage::Song)
        .into_iter()
        .find(|n| n.contains("had no usable time"));
    assert_eq!(placed.is_some(), untimed_words, "{shape}: {placed:?}");
    assert_rendered(&song.captions, &run.rendered_subtitles());
}

#[tokio::test(start_paused = true)]
async fn timestamps_normal() {
    captions_from_loose_timestamps("normal", false).await;
}

#[tokio::test(start_paused = true)]
async fn timestamps_missing_timings() {
    captions_from_loose_timestamps("missing_timings", true).await;
}

#[tokio::test(start_paused = true)]
async fn timestamps_without_waveform() {
    captions_from_loose_timestamps("no_waveform", false).await;
}

#[tokio::test(start_paused = true)]
async fn timestamps_null_timings() {
    captions_from_loose_timestamps("null_timings", true).await;
}

#[tokio::test(start_paused = true)]
async fn timestamps_loose() {
    captions_from_loose_timestamps("loose", true).await;
}

#[tokio::test(start_paused = true)]
async fn callback_exception_before_the_audio_waits_for_the_song() {
    let run = run_sim(
        sim("[suno]\noutcomes = [\"callback_exception_before_audio\"]\n"),
        settings(),
    )
    .await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    assert_eq!(billed(&run.state), (1, 1, 1), "one task, not resubmitted");
    let song_statuses = statuses(&run.events(), Stage::Song);
    assert!(
        song_statuses.iter().any(|s| s == "CALLBACK_EXCEPTION"),
        "{song_statuses:?}"
    );
    let song = run.report.song.as_ref().unwrap();
    assert!(
        song.audio_url.contains("/__sim/files/audio/"),
        "{}",
        song.audio_url
    );
    // CALLBACK_EXCEPTION came at 30–40 s, with no file; the wait went on until one existed.
    let exception = run
        .at(|e| matches!(e, Event::StatusChanged { status, .. } if status == "CALLBACK_EXCEPTION"))
        .unwrap();
    let waited = run.at(|e| step_done(e, StepName::SongWait)).unwrap();
    assert!(
        waited > exception + 60.0,
        "exception at {exception}s, done at {waited}s"
    );
}

fn step_done(event: &Event, step: StepName) -> bool {
    matches!(event, Event::StepChanged { step: s, state: StepState::Done, .. } if *s == step)
}

#[tokio::test(start_paused = true)]
async fn first_success_is_taken_only_once_its_file_exists() {
    // Polled every 2 s so the stages are seen as they happen: FIRST_SUCCESS with a stream at
    // 30–40 s, the first file at 120–135 s, SUCCESS at 150–180 s.
    let settings = PipelineConfig {
        accept_first_success: true,
        song_poll: PollPolicy::fixed(Duration::from_secs(2), Duration::from_secs(600)),
        ..settings()
    };
    let run = run_sim(sim(""), settings).await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    let submitted = run
        .at(|e| matches!(e, Event::StatusChanged { status, .. } if status.ends_with("submitted")))
        .unwrap();
    let first = run
        .at(|e| matches!(e, Event::StatusChanged { status, .. } if status == "FIRST_SUCCESS"))
        .unwrap()
        - submitted;
    let taken = run.at(|e| step_done(e, StepName::SongWait)).unwrap() - submitted;
    assert!(
        (30.0..=42.0).contains(&first),
        "FIRST_SUCCESS (stream only) seen at {first}s"
    );
    assert!(
        (120.0..=137.0).contains(&taken),
        "taken at {taken}s, when the first file exists"
    );
    let song_statuses = statuses(&run.events(), Stage::Song);
    assert_eq!(
        song_statuses.last().map(String::as_str),
        Some("FIRST_SUCCESS"),
        "not waiting for SUCCESS: {song_statuses:?}"
    );
    let song = run.report.song.as_ref().unwrap();
    assert!(
        song.audio_url.contains("/__sim/files/audio/"),
        "the file, not the stream: {}",
        song.audio_url
    );
}

#[tokio::test(start_paused = true)]
async fn the_old_failed_status_ends_the_wait_as_a_failed_song() {
    let start = Instant::now();
    let run = run_sim(sim("[suno]\noutcomes = [\"failed\"]\n"), settings()).await;
    let err = run.report.error.as_ref().expect("the song failed");
    assert!(matches!(err, PipelineError::SongFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("ended in FAILED"), "{err}");
    assert_eq!(err.class(), FailureClass::Permanent);
    assert_eq!(billed(&run.state), (1, 1, 0));
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "not polled until the deadline: {:?}",
        start.elapsed()
    );
}

/// Seconds from the first "not visible yet" status of `stage` to the stage's failure.
fn not_visible_for(run: &TimedRun, stage: Stage) -> f64 {
    let first = run
        .at(|e| matches!(e, Event::StatusChanged { stage: s, status } if *s == stage && status == "not visible yet"))
        .expect("\"not visible yet\" was shown");
    let failed = run
        .at(|e| matches!(e, Event::StageFailed { stage: s, .. } if *s == stage))
        .expect("the stage failed");
    failed - first
}

/// A simulator whose new tasks and renders answer "not found" for the given virtual seconds.
fn invisible_at_first(suno_s: f64, creatomate_s: f64) -> SimConfig {
    SimConfig {
        suno_task_visible_after_s: suno_s,
        creatomate_render_visible_after_s: creatomate_s,
        ..sim("")
    }
}

#[tokio::test(start_paused = true)]
async fn tasks_and_renders_not_visible_at_first_are_waited_for() {
    // Both shorter than the 30 s grace.
    let run = run_sim(invisible_at_first(20.0, 20.0), settings()).await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    assert_eq!(billed(&run.state), (1, 1, 1), "nothing created twice");
    let events = run.events();
    for stage in [Stage::Song, Stage::Video] {
        let seen = statuses(&events, stage);
        assert!(
            seen.iter().any(|s| s == "not visible yet"),
            "{stage}: {seen:?}"
        );
    }
    // Both reads answered "not found" before they answered the job.
    let ledger = run.state.ledger();
    for route in [RouteId::SunoRecordInfo, RouteId::CreatomateRenderStatus] {
        let first = ledger.requests_for(route).next().unwrap();
        let not_found = match route {
            RouteId::SunoRecordInfo => first.body_code == Some(400),
            _ => first.status == Some(404),
        };
        assert!(not_found, "{first:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_still_not_found_after_the_grace_fails_naming_it() {
    let run = run_sim(invisible_at_first(300.0, 0.0), settings()).await;
    let err = run.report.error.as_ref().expect("never visible in time");
    let task = run
        .state
        .ledger()
        .jobs_of(JobKind::SunoTask)
        .next()
        .unwrap()
        .id
        .clone();
    assert!(
        matches!(err, PipelineError::NotVisible { stage: Stage::Song, id, .. } if *id == task),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("Suno task {task} was created")),
        "{text}"
    );
    assert!(
        text.contains("after 30s") && text.contains("Suno dashboard"),
        "{text}"
    );
    assert_eq!(
        err.class(),
        FailureClass::OutcomeUnknown,
        "paid for: check first"
    );
    assert_eq!(billed(&run.state), (1, 1, 0), "no second task");
    // It gave up soon after the grace, not at once nor at the 10-minute polling deadline.
    let waited = not_visible_for(&run, Stage::Song);
    assert!((30.0..60.0).contains(&waited), "{waited}s");
}

#[tokio::test(start_paused = true)]
async fn a_render_still_not_found_after_the_grace_fails_naming_it() {
    let run = run_sim(invisible_at_first(0.0, 300.0), settings()).await;
    let err = run.report.error.as_ref().expect("never visible in time");
    let render = run
        .state
        .ledger()
        .jobs_of(JobKind::CreatomateRender)
        .next()
        .unwrap()
        .id
        .clone();
    assert!(
        matches!(err, PipelineError::NotVisible { stage: Stage::Video, id, .. } if *id == render),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("render {render} was created")),
        "{err}"
    );
    assert!(
        err.to_string().contains("check the Creatomate dashboard"),
        "{err}"
    );
    assert_eq!(err.class(), FailureClass::OutcomeUnknown);
    assert_eq!(billed(&run.state), (1, 1, 1), "no second render");
    let waited = not_visible_for(&run, Stage::Video);
    assert!((30.0..60.0).contains(&waited), "{waited}s");
}

#[tokio::test(start_paused = true)]
async fn the_grace_is_a_setting() {
    // A 20 s window outlasts a 5 s grace: the task is given up on, naming it.
    let settings = PipelineConfig {
        not_found_grace: Duration::from_secs(5),
        ..settings()
    };
    let run = run_sim(invisible_at_first(20.0, 0.0), settings).await;
    let err = run.report.error.as_ref().expect("the grace is shorter");
    assert!(
        matches!(
            err,
            PipelineError::NotVisible {
                stage: Stage::Song,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("after 5s"), "{err}");
    let waited = not_visible_for(&run, Stage::Song);
    assert!((5.0..20.0).contains(&waited), "{waited}s");
}

/// Callbacks that name every task and render the simulator billed, as a server that received
/// their callbacks would (the pipeline verifies each by a free read before adopting it).
struct LedgerCallbacks(SimState);

impl Callbacks for LedgerCallbacks {
    fn address(&self, step: StepName) -> CallbackAddress {
        CallbackAddress {
            url: format!("http://hooks.test/{step}/job-1/token-1"),
            token: "token-1".into(),
        }
    }
    fn arrival(&self, _: StepName) -> CallbackFuture<'_, ()> {
        Box::pin(tokio::time::sleep(Duration::from_secs(5)))
    }
    fn candidates(&self, step: StepName) -> CallbackFuture<'_, Result<Vec<String>, JournalError>> {
        let kind = match step {
            StepName::SongSubmit => JobKind::SunoTask,
            _ => JobKind::CreatomateRender,
        };
        let ids = self
            .0
            .ledger()
            .jobs_of(kind)
            .map(|j| j.id.clone())
            .collect();
        Box::pin(async move { Ok(ids) })
    }
    fn reconcile_window(&self) -> Duration {
        Duration::from_secs(600)
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_adopted_once_the_task_can_be_read() {
    // The generate answer is lost after the task was created, and the new task answers "not
    // found" for a minute: the callback that names it is not refused for that, but read again
    // until the task shows, then adopted.
    let state = SimState::new(SimConfig {
        suno_task_visible_after_s: 60.0,
        ..sim("[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n")
    });
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let config = Config::default().with_base("http://sim.test");
    let pipeline = Pipeline::new(&http, &config, keys(), settings());
    let journal = MemoryJournal::new();
    let callbacks = LedgerCallbacks(state.clone());
    let stop = StopSignal::never();
    let ctx = JobContext {
        job_id: "job-1",
        journal: &journal,
        callbacks: Some(&callbacks),
        stop: &stop,
    };
    let report = pipeline.run_job(&input(), ctx).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(
        billed(&state),
        (1, 1, 1),
        "the lost task was adopted, not resent"
    );
    let task = state
        .ledger()
        .jobs_of(JobKind::SunoTask)
        .next()
        .unwrap()
        .id
        .clone();
    assert_eq!(report.song.unwrap().task_id, task);
    let first_read = state
        .ledger()
        .requests_for(RouteId::SunoRecordInfo)
        .next()
        .unwrap()
        .clone();
    assert_eq!(
        first_read.body_code,
        Some(400),
        "read while not visible: {first_read:?}"
    );
}
