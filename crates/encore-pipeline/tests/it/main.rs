//! The pipeline end to end against the simulator in memory, on paused tokio time: the real
//! services' durations (a 2.5-minute song, a 10-minute polling deadline) run in milliseconds.

mod journal;
mod providers;
mod steps;
mod template;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_clients::{ApiKey, Config, Http};
use encore_pipeline::{
    BusinessInput, Event, FailureClass, Keys, Language, Pipeline, PipelineConfig, PipelineError,
    Report, Stage,
};
use encore_sim::{Scenario, SimConfig, SimState};

struct Run {
    report: Report,
    events: Vec<Event>,
    state: SimState,
}

fn keys() -> Keys {
    Keys {
        openai: ApiKey::new("sk-pipeline-test").unwrap(),
        suno: ApiKey::new("suno-pipeline-test").unwrap(),
        creatomate: ApiKey::new("creatomate-pipeline-test").unwrap(),
    }
}

fn settings() -> PipelineConfig {
    PipelineConfig {
        template_id: encore_sim::DEMO_TEMPLATE_ID.to_owned(),
        ..PipelineConfig::default()
    }
}

fn input() -> BusinessInput {
    let mut input =
        BusinessInput::new("하늘 베이커리", "서울 망원동의 동네 빵집, 매일 아침 소금빵");
    input.region = Some("서울".into());
    input.language = Language::Ko;
    input
}

async fn run_with(
    scenario: &str,
    time_scale: f64,
    settings: PipelineConfig,
    input: BusinessInput,
) -> Run {
    let scenario = Scenario::from_toml(scenario).expect("valid scenario");
    let state = SimState::new(SimConfig {
        scenario,
        time_scale,
        ..SimConfig::default()
    });
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let config = Config::default().with_base("http://sim.test");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let pipeline = Pipeline::new(&http, &config, keys(), settings)
        .on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let report = pipeline.run(&input).await;
    let events = events.lock().unwrap().clone();
    Run {
        report,
        events,
        state,
    }
}

fn statuses(events: &[Event], stage: Stage) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StatusChanged { stage: s, status } if *s == stage => Some(status.clone()),
            _ => None,
        })
        .collect()
}

fn billed(state: &SimState) -> (u64, u64, u64) {
    let l = state.ledger();
    (l.openai_responses, l.suno_tasks, l.creatomate_renders)
}

#[tokio::test(start_paused = true)]
async fn a_calm_run_at_real_durations_makes_one_video() {
    let start = tokio::time::Instant::now();
    let run = run_with("", 1.0, settings(), input()).await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    let video = run.report.video.as_ref().unwrap();
    assert!(video.url.contains("/__sim/files/renders/"), "{video:?}");
    let song = run.report.song.as_ref().unwrap();
    assert!(song.timed_captions && !song.captions.is_empty());
    assert!(
        song.captions.iter().all(|c| !c.text.contains('[')),
        "tags are stripped"
    );
    assert_eq!(billed(&run.state), (1, 1, 1));
    // The song takes ~2.5 virtual minutes; polling every 10 → 15 → 22.5 → 30 s follows it.
    let took = start.elapsed();
    assert!(
        took > Duration::from_secs(120) && took < Duration::from_secs(600),
        "{took:?}"
    );
    // Polling sees the task's statuses in order (it may miss a short one in between).
    let song_statuses = statuses(&run.events, Stage::Song);
    assert!(song_statuses[0].contains("submitted"), "{song_statuses:?}");
    assert_eq!(song_statuses[1], "PENDING", "{song_statuses:?}");
    assert_eq!(
        song_statuses.last().map(String::as_str),
        Some("SUCCESS"),
        "{song_statuses:?}"
    );
    assert!(
        song_statuses.len() >= 4,
        "an intermediate status was seen: {song_statuses:?}"
    );
    assert_eq!(
        statuses(&run.events, Stage::Video)
            .last()
            .map(String::as_str),
        Some("succeeded")
    );
    let order: Vec<String> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::StageStarted { stage } => Some(format!("start {stage}")),
            Event::StageFinished { stage, .. } => Some(format!("finish {stage}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "start lyrics",
            "finish lyrics",
            "start song",
            "finish song",
            "start video",
            "finish video"
        ]
    );
    // The modifications went to the template's elements, captions timed from aligned words.
    let lyrics = run.report.lyrics.as_ref().unwrap();
    assert!(lyrics.lyrics.contains("[Verse]") && lyrics.lyrics.chars().count() <= 5000);
}

#[tokio::test(start_paused = true)]
async fn a_flaky_run_reports_its_retries_and_pays_once() {
    let scenario = Scenario::named_source("flaky").unwrap();
    let run = run_with(scenario, 0.01, settings(), input()).await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    assert_eq!(billed(&run.state), (1, 1, 1));
    let retries: Vec<(Stage, String)> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Retrying { stage, notice } => Some((*stage, notice.endpoint.name().to_owned())),
            _ => None,
        })
        .collect();
    for (stage, endpoint) in [
        (Stage::Lyrics, "openai.responses"),
        (Stage::Song, "suno.generate"),
        (Stage::Video, "creatomate.render"),
    ] {
        assert!(
            retries.contains(&(stage, endpoint.to_owned())),
            "{endpoint}: {retries:?}"
        );
    }
    let generate = run
        .report
        .calls
        .iter()
        .find(|c| c.endpoint.name() == "suno.generate")
        .unwrap();
    assert_eq!(generate.attempts, 2, "one 430 rejection, then the task");
}

#[tokio::test(start_paused = true)]
async fn callback_exception_with_tracks_counts_as_success() {
    let run = run_with(
        "[suno]\noutcomes = [\"callback_exception\"]\n",
        0.01,
        settings(),
        input(),
    )
    .await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    assert!(
        statuses(&run.events, Stage::Song)
            .iter()
            .any(|s| s == "CALLBACK_EXCEPTION")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_generation_is_permanent_and_not_resubmitted() {
    let run = run_with(
        "[suno]\noutcomes = [\"generate_audio_failed\"]\n",
        0.01,
        settings(),
        input(),
    )
    .await;
    let err = run.report.error.as_ref().expect("the song failed");
    assert!(matches!(err, PipelineError::SongFailed { .. }), "{err:?}");
    assert_eq!(err.class(), FailureClass::Permanent);
    assert!(err.to_string().contains("GENERATE_AUDIO_FAILED"), "{err}");
    assert_eq!(
        billed(&run.state),
        (1, 1, 0),
        "one task, no resubmission, no render"
    );
    assert!(run.report.lyrics.is_some(), "finished stages are kept");
}

#[tokio::test(start_paused = true)]
async fn a_failed_render_says_why() {
    let scenario = "[creatomate]\noutcomes = [\"failed\"]\nfailure_message = \"font missing\"\n";
    let run = run_with(scenario, 0.01, settings(), input()).await;
    let err = run.report.error.as_ref().expect("the render failed");
    assert!(err.to_string().contains("font missing"), "{err}");
    assert_eq!(err.stage(), Some(Stage::Video));
    assert_eq!(billed(&run.state), (1, 1, 1));
    assert!(run.report.song.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_song_still_running_at_the_deadline_gives_up_without_a_second_task() {
    // At time_scale 10 the song takes ~25 virtual minutes; the default deadline is 10 minutes.
    let start = tokio::time::Instant::now();
    let run = run_with("", 10.0, settings(), input()).await;
    let err = run.report.error.as_ref().expect("the deadline passed");
    assert!(
        matches!(
            err,
            PipelineError::StillPending {
                stage: Stage::Song,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), FailureClass::GaveUp);
    assert!(err.to_string().contains("after the 10m deadline"), "{err}");
    assert_eq!(billed(&run.state), (1, 1, 0));
    assert!(
        start.elapsed() < Duration::from_secs(11 * 60),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_reset_after_the_task_was_created_is_not_replayed() {
    let scenario = "[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n";
    let run = run_with(scenario, 0.01, settings(), input()).await;
    let err = run.report.error.as_ref().expect("the answer was lost");
    assert_eq!(err.class(), FailureClass::OutcomeUnknown, "{err}");
    assert!(err.to_string().contains("suno.generate"), "{err}");
    assert_eq!(
        billed(&run.state).1,
        1,
        "exactly one task exists, and it was not replayed"
    );
    assert_eq!(
        run.state
            .ledger()
            .requests_per_route
            .get("POST /api/v1/generate"),
        Some(&1)
    );
}

#[tokio::test(start_paused = true)]
async fn creatomate_down_fails_before_anything_is_billed() {
    let scenario = "[routes.\"creatomate.template\"]\noutage = { from_s = 0 }\n";
    let run = run_with(scenario, 0.01, settings(), input()).await;
    let err = run.report.error.as_ref().expect("Creatomate is down");
    assert_eq!(err.class(), FailureClass::GaveUp, "{err}");
    assert!(
        err.to_string()
            .contains("creatomate.templates: gave up after 3 attempts"),
        "{err}"
    );
    assert_eq!(
        billed(&run.state),
        (0, 0, 0),
        "no lyrics, song or render paid for"
    );
}

#[tokio::test(start_paused = true)]
async fn bad_input_and_a_missing_template_are_refused_before_any_call() {
    let run = run_with("", 0.01, settings(), BusinessInput::new("", "a bakery")).await;
    let err = run.report.error.as_ref().unwrap();
    assert_eq!(err.class(), FailureClass::BadInput);
    assert!(err.to_string().contains("name must not be empty"), "{err}");
    assert!(run.state.ledger().requests.is_empty());

    let run = run_with("", 0.01, PipelineConfig::default(), input()).await;
    let err = run.report.error.as_ref().unwrap();
    assert_eq!(err.class(), FailureClass::BadInput);
    assert!(err.to_string().contains("CREATOMATE_TEMPLATE_ID"), "{err}");
    assert!(run.state.ledger().requests.is_empty());
}

#[tokio::test(start_paused = true)]
async fn first_success_can_be_accepted() {
    let settings = PipelineConfig {
        accept_first_success: true,
        ..settings()
    };
    let run = run_with("", 1.0, settings, input()).await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    let song = statuses(&run.events, Stage::Song);
    assert_eq!(
        song.last().map(String::as_str),
        Some("FIRST_SUCCESS"),
        "{song:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn english_input_gets_english_lyrics() {
    let mut input = input();
    input.name = "Haneul Bakery".into();
    input.description = "a neighbourhood bakery with salt bread every morning".into();
    input.language = Language::En;
    let run = run_with("", 0.01, settings(), input).await;
    assert!(run.report.succeeded(), "{:?}", run.report.error);
    let lyrics = &run.report.lyrics.as_ref().unwrap().lyrics;
    assert!(
        !lyrics
            .chars()
            .any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)),
        "{lyrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn twenty_pipelines_in_a_suno_outage_then_recovery() {
    // Suno answers "system maintenance" (code 455, transient) to every generate for 3000 virtual
    // seconds (30 s at time scale 0.01), then works again.
    let scenario = Scenario::from_toml(
        "[routes.\"suno.generate\"]\noutage = { from_s = 0, to_s = 3000, fault = { kind = \"suno_code\", code = 455 } }\n",
    )
    .unwrap();
    let state = SimState::new(SimConfig {
        scenario,
        time_scale: 0.01,
        ..SimConfig::default()
    });
    let http = Http::service::<_, axum::body::Body>(encore_sim::app(state.clone()));
    let config = Config::default().with_base("http://sim.test");
    let settings = PipelineConfig {
        song_poll: encore_resilience::PollPolicy::fixed(
            Duration::from_millis(200),
            Duration::from_secs(120),
        ),
        video_poll: encore_resilience::PollPolicy::fixed(
            Duration::from_millis(200),
            Duration::from_secs(120),
        ),
        ..settings()
    };
    let run_many = |n: usize| {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let pipeline = Pipeline::new(&http, &config, keys(), settings.clone());
            set.spawn(async move { pipeline.run(&input()).await });
        }
        set
    };

    let mut set = run_many(20);
    let mut reports = Vec::new();
    while let Some(r) = set.join_next().await {
        reports.push(r.unwrap());
    }
    let generate_deadline = config
        .endpoint(encore_clients::Endpoint::SunoGenerate)
        .deadline;
    for report in &reports {
        let err = report.error.as_ref().expect("Suno is down");
        assert_eq!(err.stage(), Some(Stage::Song), "{err}");
        assert!(err.to_string().starts_with("suno.generate: "), "{err}");
        for call in &report.calls {
            assert!(
                call.elapsed <= generate_deadline,
                "{call:?} outlived its deadline"
            );
        }
    }
    let generate_requests = state
        .ledger()
        .requests_per_route
        .get("POST /api/v1/generate")
        .copied()
        .unwrap_or(0);
    eprintln!("suno outage: {generate_requests} generate requests for 20 logical calls");
    assert!(
        generate_requests as f64 / 20.0 <= 1.2,
        "{generate_requests} generate requests for 20 logical calls"
    );
    assert_eq!(state.ledger().suno_tasks, 0);

    // The outage ends; after the breaker's open time a probe closes it and new runs succeed.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut set = run_many(3);
    while let Some(r) = set.join_next().await {
        let report = r.unwrap();
        assert!(report.succeeded(), "{:?}", report.error);
    }
    assert_eq!(
        http.circuit_state(encore_clients::Service::Suno),
        Some(encore_clients::CircuitState::Closed)
    );
    assert_eq!(state.ledger().suno_tasks, 3);
}
