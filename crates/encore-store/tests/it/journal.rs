//! The journal through a lease: the write-ahead cycle of a billed step, what a takeover makes
//! of steps left in flight, and the same behaviour as the pipeline's in-memory journal.

use std::time::Duration;

use encore_pipeline::{JobStatus, Journal, MemoryJournal, StepName, StepRecord, StepState};
use encore_store::{ErrorKind, Origin};
use serde_json::json;

use crate::support::{TestDb, on_both_backends, queued};

async fn write_ahead_cycle(db: &TestDb) {
    let store = db.open().await;
    let job = queued(&store, Origin::Api).await;
    let lease = store
        .claim_next("worker-a", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the queued job");
    assert_eq!(lease.job_id(), job.id);
    assert!(lease.load().await.unwrap().is_empty());

    // Before the billed request: in flight, with its correlation token.
    lease
        .start(StepName::SongSubmit, Some("tok-1"))
        .await
        .unwrap();
    let step = &store.get_job(job.id).await.unwrap().steps[0];
    assert_eq!(step.name, StepName::SongSubmit);
    assert_eq!(step.state, StepState::InFlight);
    assert_eq!(step.attempts, 1);
    assert_eq!(step.correlation.as_deref(), Some("tok-1"));
    assert!(step.started_at.is_some() && step.finished_at.is_none());
    assert!(step.external_id.is_none());

    // After the answer: done, with the provider's id, before anything else.
    let result = json!({"task_id": "suno-7", "model": "V4_5"});
    lease
        .finish(StepName::SongSubmit, Some("suno-7"), &result)
        .await
        .unwrap();
    let steps = lease.load().await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].state, StepState::Done);
    assert_eq!(steps[0].external_id.as_deref(), Some("suno-7"));
    assert_eq!(steps[0].result.as_ref(), Some(&result));
    assert_eq!(steps[0].correlation.as_deref(), Some("tok-1"));
    assert!(steps[0].finished_at >= steps[0].started_at);

    // A free step fails and is retried; its error is kept until it is done.
    lease.start(StepName::SongWait, None).await.unwrap();
    lease
        .fail(StepName::SongWait, StepState::Pending, "http 503")
        .await
        .unwrap();
    lease.start(StepName::SongWait, None).await.unwrap();
    let wait = &lease.load().await.unwrap()[1];
    assert_eq!(
        (wait.state, wait.attempts, wait.error.as_deref()),
        (StepState::InFlight, 2, Some("http 503"))
    );

    // Every journal write is on the job's timeline, in order.
    let events = store.events_after(job.id, 0, 100).await.unwrap();
    let steps: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kind == "step")
        .map(|e| {
            (
                e.data["step"].as_str().unwrap().to_owned(),
                e.data["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("song.submit", "in_flight"),
            ("song.submit", "done"),
            ("song.wait", "in_flight"),
            ("song.wait", "pending"),
            ("song.wait", "in_flight"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=i64::try_from(seqs.len()).unwrap()).collect::<Vec<_>>()
    );
}

/// A runner stops with a billed and a free step in flight; the next claim reads the billed one
/// as `unknown` (possibly sent) and the free one as `pending`, and refuses to send the billed
/// one again.
async fn a_takeover_never_resends_a_billed_step(db: &TestDb) {
    let store = db.open().await;
    let job = queued(&store, Origin::Api).await;
    let first = store
        .claim_next("worker-a", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    first
        .start(StepName::SongSubmit, Some("tok"))
        .await
        .unwrap();
    first
        .finish(StepName::SongSubmit, Some("suno-1"), &json!({}))
        .await
        .unwrap();
    first.start(StepName::SongWait, None).await.unwrap();
    first
        .start(StepName::VideoSubmit, Some("tok-v"))
        .await
        .unwrap();
    // worker-a stops here (killed): its lease expires.
    tokio::time::sleep(Duration::from_millis(150)).await;

    let second = store
        .claim_next("worker-b", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the job whose lease expired");
    assert_eq!(second.job_id(), job.id);
    assert_eq!(second.fence(), first.fence() + 1);
    let steps = second.load().await.unwrap();
    let state = |name| steps.iter().find(|s| s.name == name).unwrap().state;
    assert_eq!(state(StepName::SongSubmit), StepState::Done);
    assert_eq!(state(StepName::SongWait), StepState::Pending);
    assert_eq!(state(StepName::VideoSubmit), StepState::Unknown);
    let video = steps
        .iter()
        .find(|s| s.name == StepName::VideoSubmit)
        .unwrap();
    assert_eq!(video.correlation.as_deref(), Some("tok-v"));
    assert!(
        video
            .error
            .as_deref()
            .unwrap()
            .contains("may have been sent")
    );

    // The new runner cannot send the possibly-billed request again, nor the done one.
    for step in [StepName::VideoSubmit, StepName::SongSubmit] {
        let err = second.start(step, Some("tok-2")).await.unwrap_err();
        assert!(!err.is_lease_lost());
        let source = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<encore_store::Error>())
            .expect("the store's error as the source");
        assert_eq!(source.kind(), ErrorKind::Conflict, "{source}");
        assert!(source.to_string().contains("resolve it"), "{source}");
    }
    // Nothing changed by the refusals.
    assert_eq!(second.load().await.unwrap(), steps);
    // The free step runs again.
    second.start(StepName::SongWait, None).await.unwrap();

    // It needs a person now.
    second
        .set_needs_attention(&encore_store::Attention {
            step: Some(StepName::VideoSubmit),
            reason: "Creatomate render may have run".to_owned(),
            resolution: "encore jobs resolve".to_owned(),
        })
        .await
        .unwrap();
    let stored = store.get_job(job.id).await.unwrap().job;
    assert_eq!(stored.status, JobStatus::NeedsAttention);
    assert!(stored.lease.is_none());
}

on_both_backends!(write_ahead_cycle, a_takeover_never_resends_a_billed_step);

/// A journal operation for the conformance test.
#[derive(Debug, Clone)]
enum Op {
    Start(StepName, Option<String>),
    Finish(StepName, Option<String>, u8),
    Fail(StepName, StepState, String),
}

fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let step = proptest::sample::select(StepName::ALL.to_vec());
    let token = proptest::option::of("[a-c]{1,2}");
    prop_oneof![
        (step.clone(), token.clone()).prop_map(|(s, t)| Op::Start(s, t)),
        (step.clone(), token, any::<u8>()).prop_map(|(s, t, n)| Op::Finish(s, t, n)),
        (
            step,
            proptest::sample::select(vec![
                StepState::Pending,
                StepState::Unknown,
                StepState::Failed
            ]),
            "[a-z ]{0,8}"
        )
            .prop_map(|(s, st, e)| Op::Fail(s, st, e)),
    ]
}

/// Timestamps differ between two journals; everything else must not.
fn without_times(mut steps: Vec<StepRecord>) -> Vec<StepRecord> {
    for s in &mut steps {
        assert!(s.started_at.is_some() || s.attempts == 0, "{s:?}");
        s.started_at = None;
        s.finished_at = None;
    }
    steps
}

/// The store's journal behaves as the in-memory one the pipeline is tested with, except that
/// it refuses to start a billed step that is `unknown` or `done` (and then changes nothing).
async fn conforms_to_the_memory_journal(db: &TestDb, cases: u32) {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};

    let store = db.open().await;
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let ops = proptest::collection::vec(op_strategy(), 1..25);
    for _ in 0..cases {
        let ops = ops.new_tree(&mut runner).unwrap().current();
        queued(&store, Origin::Api).await;
        let lease = store
            .claim_next("conformance", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let model = MemoryJournal::new();
        for op in &ops {
            match op {
                Op::Start(step, token) => {
                    let current = model
                        .snapshot()
                        .into_iter()
                        .find(|r| r.name == *step)
                        .map(|r| r.state);
                    let refused = step.is_billed()
                        && matches!(current, Some(StepState::Unknown | StepState::Done));
                    let stored = lease.start(*step, token.as_deref()).await;
                    assert_eq!(stored.is_err(), refused, "{op:?} after {ops:?}");
                    if !refused {
                        model.start(*step, token.as_deref()).await.unwrap();
                    }
                }
                Op::Finish(step, id, n) => {
                    let result = json!({"n": n});
                    lease.finish(*step, id.as_deref(), &result).await.unwrap();
                    model.finish(*step, id.as_deref(), &result).await.unwrap();
                }
                Op::Fail(step, state, error) => {
                    lease.fail(*step, *state, error).await.unwrap();
                    model.fail(*step, *state, error).await.unwrap();
                }
            }
        }
        assert_eq!(
            without_times(lease.load().await.unwrap()),
            without_times(model.snapshot()),
            "after {ops:?}"
        );
        lease.set_cancelled().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_journal_conforms_to_the_memory_journal() {
    conforms_to_the_memory_journal(&TestDb::sqlite(), 24).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_journal_conforms_to_the_memory_journal() {
    conforms_to_the_memory_journal(&TestDb::postgres().await, 24).await;
}
