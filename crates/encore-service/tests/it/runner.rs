use std::time::Duration;

use encore_clients::{ApiKey, Config, Http};
use encore_pipeline::{JobStatus, Keys, Pipeline, PipelineConfig, StepName, StepState, StopSignal};
use encore_service::{Ended, JobInput, JobRun, run_job};
use encore_sim::{JobKind, RunningSim, Scenario, SimConfig, SimState};
use encore_store::{NewJob, Origin, Store};

const TIME_SCALE: f64 = 0.005;

async fn sim(scenario: &str) -> RunningSim {
    let config = SimConfig {
        time_scale: TIME_SCALE,
        scenario: Scenario::from_toml(scenario).unwrap(),
        ..SimConfig::default()
    };
    encore_sim::serve(SimState::new(config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn pipeline(sim: &RunningSim) -> Pipeline {
    let config = Config::default().with_base(&sim.base_url());
    let mut settings = PipelineConfig {
        template_id: encore_sim::DEMO_TEMPLATE_ID.to_owned(),
        ..PipelineConfig::default()
    };
    let fast = |p: &encore_resilience::PollPolicy| {
        let mut p = p.scaled(TIME_SCALE);
        p.interval = p.interval.max(Duration::from_millis(20));
        p.max_interval = p.max_interval.max(Duration::from_millis(50));
        p.deadline = Duration::from_secs(30);
        p
    };
    settings.song_poll = fast(&settings.song_poll);
    settings.video_poll = fast(&settings.video_poll);
    let keys = Keys {
        openai: ApiKey::new("sk-runner-test").unwrap(),
        suno: ApiKey::new("suno-runner-test").unwrap(),
        creatomate: ApiKey::new("creatomate-runner-test").unwrap(),
    };
    Pipeline::new(&Http::for_config(&config).unwrap(), &config, keys, settings)
}

fn input() -> serde_json::Value {
    serde_json::to_value(JobInput {
        business: "a bakery in Mangwon-dong".into(),
        name: "Haneul".into(),
        region: None,
        mood: None,
        lang: Some("en".into()),
    })
    .unwrap()
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("jobs.db").to_str().unwrap())
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_to_success_with_its_steps_events_and_result_stored() {
    let sim = sim("").await;
    let (_dir, store) = store().await;
    let job = store
        .create_job(&NewJob::new(Origin::Cli, input()))
        .await
        .unwrap()
        .job;
    let lease = store
        .claim(job.id, "test-runner", Duration::from_secs(10))
        .await
        .unwrap();
    let finished = run_job(JobRun {
        lease,
        pipeline: pipeline(&sim),
        callbacks: None,
        stop: StopSignal::never(),
        lease_ttl: Duration::from_secs(10),
    })
    .await
    .unwrap();
    assert_eq!(
        finished.ended,
        Ended::Succeeded,
        "{:?}",
        finished.report.error
    );
    let detail = store.get_job(job.id).await.unwrap();
    assert_eq!(detail.job.status, JobStatus::Succeeded);
    assert!(
        detail.job.lease.is_none() || !detail.job.is_leased_at(encore_pipeline::job::now_millis())
    );
    let result = detail.job.result.unwrap();
    assert!(
        result["video_url"].as_str().unwrap().contains("/renders/"),
        "{result}"
    );
    assert!(
        result["audio_url"].as_str().unwrap().contains("/audio/"),
        "{result}"
    );
    assert!(!result["lyrics"]["title"].as_str().unwrap().is_empty());
    assert_eq!(detail.steps.len(), StepName::ALL.len());
    assert!(
        detail.steps.iter().all(|s| s.state == StepState::Done),
        "{:?}",
        detail.steps
    );
    let events = store.events_after(job.id, 0, 1000).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"stage_started"), "{kinds:?}");
    assert!(kinds.contains(&"step_changed"), "{kinds:?}");
    assert!(kinds.contains(&"call_finished"), "{kinds:?}");
    let ledger = sim.ledger();
    assert_eq!(ledger.jobs_of(JobKind::SunoTask).count(), 1);
    assert_eq!(ledger.jobs_of(JobKind::CreatomateRender).count(), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_makes_the_job_need_attention_and_names_the_resolution() {
    let sim = sim("[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n").await;
    let (_dir, store) = store().await;
    let job = store
        .create_job(&NewJob::new(Origin::Cli, input()))
        .await
        .unwrap()
        .job;
    let lease = store
        .claim(job.id, "test-runner", Duration::from_secs(10))
        .await
        .unwrap();
    let finished = run_job(JobRun {
        lease,
        pipeline: pipeline(&sim),
        callbacks: None,
        stop: StopSignal::never(),
        lease_ttl: Duration::from_secs(10),
    })
    .await
    .unwrap();
    assert_eq!(finished.ended, Ended::NeedsAttention);
    let detail = store.get_job(job.id).await.unwrap();
    assert_eq!(detail.job.status, JobStatus::NeedsAttention);
    let attention = detail.job.attention.unwrap();
    assert_eq!(attention.step, Some(StepName::SongSubmit));
    assert!(
        attention
            .resolution
            .contains(&format!("encore jobs resolve {} --adopt TASK_ID", job.id)),
        "{}",
        attention.resolution
    );
    let submit = detail
        .steps
        .iter()
        .find(|s| s.name == StepName::SongSubmit)
        .unwrap();
    assert_eq!(submit.state, StepState::Unknown);
    assert_eq!(sim.ledger().jobs_of(JobKind::SunoTask).count(), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_requeues_the_job_and_a_cancel_cancels_it() {
    let sim = sim("").await;
    let (_dir, store) = store().await;
    for cancel in [false, true] {
        let job = store
            .create_job(&NewJob::new(Origin::Cli, input()))
            .await
            .unwrap()
            .job;
        let lease = store
            .claim(job.id, "test-runner", Duration::from_millis(600))
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let store2 = store.clone();
        let trigger = async move {
            // The song takes ~0.8 s at this time scale: stop while it is made.
            tokio::time::sleep(Duration::from_millis(400)).await;
            if cancel {
                store2.request_cancel(job.id).await.unwrap();
            } else {
                tx.send(true).unwrap();
            }
        };
        let (finished, ()) = tokio::join!(
            run_job(JobRun {
                lease,
                pipeline: pipeline(&sim),
                callbacks: None,
                stop: StopSignal::new(rx),
                lease_ttl: Duration::from_millis(600),
            }),
            trigger
        );
        let finished = finished.unwrap();
        let status = store.get_job(job.id).await.unwrap().job.status;
        if cancel {
            assert_eq!(finished.ended, Ended::Cancelled);
            assert_eq!(status, JobStatus::Cancelled);
        } else {
            assert_eq!(
                finished.ended,
                Ended::Interrupted,
                "{:?}",
                finished.report.error
            );
            assert_eq!(status, JobStatus::Queued);
        }
    }
    sim.shutdown().await;
}
