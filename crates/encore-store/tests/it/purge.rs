//! Retention: `Store::purge` removes old finished jobs with everything they own, and nothing
//! else.

use std::time::Duration;

use encore_pipeline::job::now_millis;
use encore_pipeline::{JobStatus, Journal, StepName};
use encore_store::{ErrorKind, Job, JobError, NewCallback, NewJob, Origin, Purge, Purged, Store};
use serde_json::json;

use crate::support::{TestDb, on_both_backends, queued};

const TTL: Duration = Duration::from_secs(60);

/// A cli job taken to `status` through the store's API, with a step, events and a callback.
async fn finished(store: &Store, status: JobStatus) -> Job {
    let job = store
        .create_job(
            &NewJob::new(Origin::Cli, json!({"business": "a bakery"}))
                .with_idempotency(format!("key-{}", uuid::Uuid::now_v7()), "hash"),
        )
        .await
        .unwrap()
        .job;
    store
        .record_callback(&NewCallback {
            job_id: job.id,
            step: StepName::SongSubmit,
            external_id: "task-1".to_owned(),
            kind: "complete".to_owned(),
            payload: Some(json!({"code": 200})),
            verified: true,
        })
        .await
        .unwrap();
    if status == JobStatus::Queued {
        return job;
    }
    let lease = store.claim(job.id, "runner", TTL).await.unwrap();
    lease.start(StepName::Lyrics, None).await.unwrap();
    lease
        .finish(StepName::Lyrics, None, &json!({"title": "x"}))
        .await
        .unwrap();
    match status {
        JobStatus::Running => {}
        JobStatus::Succeeded => lease
            .set_succeeded(&json!({"video_url": "v"}))
            .await
            .unwrap(),
        JobStatus::Failed => lease
            .set_failed(&JobError {
                code: "video.failed".to_owned(),
                message: "the render failed".to_owned(),
                class: "permanent".to_owned(),
            })
            .await
            .unwrap(),
        JobStatus::NeedsAttention => lease
            .set_needs_attention(&encore_store::Attention {
                step: Some(StepName::SongSubmit),
                reason: "Suno generate may have run".to_owned(),
                resolution: "encore jobs resolve".to_owned(),
            })
            .await
            .unwrap(),
        JobStatus::Cancelled => {
            store.request_cancel(job.id).await.unwrap();
            lease.set_cancelled().await.unwrap();
        }
        JobStatus::Queued => unreachable!(),
    }
    store.get_job(job.id).await.unwrap().job
}

async fn gone(store: &Store, job: &Job) -> bool {
    match store.get_job(job.id).await {
        Ok(_) => false,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
            true
        }
    }
}

async fn purging_old_finished_jobs(db: &TestDb) {
    let store = db.open().await;
    let mut jobs = Vec::new();
    for status in JobStatus::ALL {
        jobs.push((status, finished(&store, status).await));
    }
    let cutoff = now_millis() + 1;
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Finished after the cutoff: kept.
    let recent = finished(&store, JobStatus::Succeeded).await;
    let status_of = |s: JobStatus| jobs.iter().find(|(t, _)| *t == s).unwrap().1.clone();

    let purge = Purge {
        finished_before: cutoff,
        include_failed: false,
    };
    let counted = store.purgeable(&purge).await.unwrap();
    let mut expected = Purged {
        jobs: vec![(JobStatus::Succeeded, 1), (JobStatus::Cancelled, 1)],
    };
    let sorted = |mut p: Purged| {
        p.jobs.sort_by_key(|(s, _)| s.as_str());
        p
    };
    assert_eq!(sorted(counted), sorted(expected.clone()));
    for (_, job) in &jobs {
        assert!(!gone(&store, job).await, "counting removes nothing");
    }

    let purged = store.purge(&purge).await.unwrap();
    assert_eq!(sorted(purged.clone()), sorted(expected.clone()));
    assert_eq!(purged.total(), 2);
    for (status, job) in &jobs {
        let removed = matches!(status, JobStatus::Succeeded | JobStatus::Cancelled);
        assert_eq!(gone(&store, job).await, removed, "{status}");
        let events = store.events_after(job.id, 0, 1000).await.unwrap();
        let callbacks = store.unconsumed_callbacks(job.id).await.unwrap();
        if removed {
            assert!(events.is_empty(), "{status}: {events:?}");
            assert!(callbacks.is_empty(), "{status}: {callbacks:?}");
        } else {
            assert!(!events.is_empty(), "{status} keeps its timeline");
            assert_eq!(callbacks.len(), 1, "{status} keeps its callbacks");
        }
    }
    assert!(
        !gone(&store, &recent).await,
        "a job finished after the cutoff stays"
    );
    let failed = status_of(JobStatus::Failed);
    assert_eq!(
        store.get_job(failed.id).await.unwrap().steps.len(),
        1,
        "a kept job keeps its steps"
    );

    // Again: nothing left to remove.
    assert_eq!(store.purge(&purge).await.unwrap(), Purged::default());

    // Failed jobs when asked; never one that needs attention, is queued or running.
    let with_failed = Purge {
        include_failed: true,
        ..purge
    };
    expected.jobs = vec![(JobStatus::Failed, 1)];
    assert_eq!(store.purgeable(&with_failed).await.unwrap(), expected);
    assert_eq!(store.purge(&with_failed).await.unwrap(), expected);
    assert!(gone(&store, &failed).await);
    for status in [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::NeedsAttention,
    ] {
        assert!(!gone(&store, &status_of(status)).await, "{status}");
    }
    let everything = Purge {
        finished_before: now_millis() + 1,
        include_failed: true,
    };
    assert_eq!(store.purge(&everything).await.unwrap().total(), 1);
    assert!(gone(&store, &recent).await);

    // A removed job's idempotency key is free again: the same key makes a new job.
    let key = status_of(JobStatus::Succeeded)
        .idempotency_key
        .expect("created with a key");
    let again = store
        .create_job(
            &NewJob::new(Origin::Cli, json!({"business": "a bakery"}))
                .with_idempotency(key, "hash"),
        )
        .await
        .unwrap();
    assert!(!again.replayed);
}

/// More jobs than one batch: every batch goes, and the count is exact.
async fn purging_in_batches(db: &TestDb) {
    let store = db.open().await;
    let mut ids = Vec::new();
    for _ in 0..103 {
        let job = queued(&store, Origin::Cli).await;
        store.request_cancel(job.id).await.unwrap();
        ids.push(job.id);
    }
    let purge = Purge {
        finished_before: now_millis() + 1,
        include_failed: false,
    };
    let purged = store.purge(&purge).await.unwrap();
    assert_eq!(purged.jobs, vec![(JobStatus::Cancelled, 103)]);
    for id in ids {
        assert!(store.get_job(id).await.unwrap_err().is_not_found());
    }
}

on_both_backends!(purging_old_finished_jobs, purging_in_batches);
