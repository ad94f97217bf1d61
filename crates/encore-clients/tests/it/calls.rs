//! Checklist 1: a normal call returns the same value with retries on as with them off — for
//! every endpoint, in memory, against the simulator.

use encore_clients::creatomate::{Render, RenderRequest, Template};
use encore_clients::suno::{GenerateRequest, TaskRecord, TimestampedLyrics};
use encore_clients::{CallOutcome, Config, Endpoint};
use encore_sim::DEMO_TEMPLATE_ID;

use crate::support::{Clients, Lyrics, clients, defaults, in_memory, sim};

#[derive(Debug, PartialEq)]
struct Everything {
    lyrics: Lyrics,
    task_id: String,
    record: TaskRecord,
    timestamps: TimestampedLyrics,
    credits: u64,
    templates: Vec<Template>,
    template: Template,
    render: Render,
    render_now: Render,
}

async fn every_endpoint(c: &Clients) -> Everything {
    let lyrics: Lyrics = c
        .openai
        .structured(
            "You write song lyrics for small businesses.",
            "A bakery in Busan that opens at dawn",
            "song_plan",
        )
        .await
        .unwrap();
    let task_id = c
        .suno
        .generate(&GenerateRequest::custom(
            &lyrics.lyrics,
            &lyrics.style,
            &lyrics.title,
        ))
        .await
        .unwrap();
    let record = c.suno.task_status(&task_id).await.unwrap();
    assert!(record.status.is_terminal(), "time scale 0: done at once");
    let audio_id = record.tracks[0].id.clone();
    let timestamps = c
        .suno
        .timestamped_lyrics(&task_id, &audio_id)
        .await
        .unwrap();
    let credits = c.suno.credits().await.unwrap();
    let templates = c.creatomate.templates().await.unwrap();
    let template = c.creatomate.template(DEMO_TEMPLATE_ID).await.unwrap();
    let render = c
        .creatomate
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID).modify("Title", lyrics.title.clone()))
        .await
        .unwrap();
    let render_now = c.creatomate.render_status(&render.id).await.unwrap();
    Everything {
        lyrics,
        task_id,
        record,
        timestamps,
        credits,
        templates,
        template,
        render,
        render_now,
    }
}

async fn run(config: &Config) -> (Everything, Clients) {
    let state = sim("");
    let c = clients(&in_memory(&state), config);
    let everything = every_endpoint(&c).await;
    let ledger = state.ledger();
    assert_eq!(ledger.openai_responses, 1);
    assert_eq!(ledger.suno_tasks, 1);
    assert_eq!(ledger.creatomate_renders, 1);
    assert_eq!(ledger.requests.len(), 9, "one request per call");
    (everything, c)
}

#[tokio::test(start_paused = true)]
async fn every_endpoint_returns_the_same_value_with_retries_on_and_off() {
    let on = defaults();
    let mut off = defaults();
    off.retries = false;
    let (with, c) = run(&on).await;
    let (without, _) = run(&off).await;
    assert_eq!(with, without);

    // Sanity of what came back.
    assert!(!with.lyrics.lyrics.is_empty());
    assert_eq!(with.record.task_id, with.task_id);
    assert_eq!(with.record.tracks.len(), 2);
    assert!(with.record.has_audio());
    assert!(!with.timestamps.aligned_words.is_empty());
    assert!(with.templates.iter().any(|t| t.id == DEMO_TEMPLATE_ID));
    assert!(with.template.source.is_some());
    assert_eq!(with.render.id, with.render_now.id);
    assert_eq!(with.render.template_id.as_deref(), Some(DEMO_TEMPLATE_ID));

    // The observer saw one finished record per call, every one a first-attempt success.
    let records = c.recorder.records.lock().unwrap();
    let endpoints: Vec<Endpoint> = records.iter().map(|r| r.endpoint).collect();
    assert_eq!(
        endpoints,
        [
            Endpoint::OpenAiResponses,
            Endpoint::SunoGenerate,
            Endpoint::SunoStatus,
            Endpoint::SunoTimestamps,
            Endpoint::SunoCredits,
            Endpoint::CreatomateTemplates,
            Endpoint::CreatomateTemplates,
            Endpoint::CreatomateRender,
            Endpoint::CreatomateStatus,
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| r.outcome == CallOutcome::Ok && r.attempts == 1 && r.error.is_none())
    );
    assert!(c.recorder.notices.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn suno_model_and_callback_default_from_the_config() {
    let state = sim("");
    let mut config = defaults();
    config.suno.model = "V5".into();
    config.suno.callback_url = "https://hooks.example.test/suno".into();
    let c = clients(&in_memory(&state), &config);
    let task_id = c
        .suno
        .generate(&GenerateRequest::instrumental("lofi", "Rain"))
        .await
        .unwrap();
    let record = c.suno.task_status(&task_id).await.unwrap();
    let params = record
        .params()
        .expect("the simulator echoes param as a JSON string");
    assert_eq!(params["model"], "V5");
    assert_eq!(params["callBackUrl"], "https://hooks.example.test/suno");
}

#[tokio::test(start_paused = true)]
async fn empty_ids_are_refused_before_sending() {
    let state = sim("");
    let c = clients(&in_memory(&state), &defaults());
    let err = c.suno.task_status(" ").await.unwrap_err();
    assert_eq!(err.attempts(), 0);
    assert_eq!(err.endpoint(), Some(Endpoint::SunoStatus));
    assert!(err.is_permanent());
    assert!(c.creatomate.render(&RenderRequest::new("")).await.is_err());
    assert!(state.ledger().requests.is_empty());
    // The observer still hears of both calls, with no attempts.
    let records = c.recorder.records.lock().unwrap();
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| r.attempts == 0 && r.outcome == CallOutcome::Failed)
    );
    assert_eq!(records[1].endpoint, Endpoint::CreatomateRender);
}
