//! An operator's resolution of unknown billed steps, and callbacks that name what a lost
//! request created.

use std::time::Duration;

use encore_pipeline::{JobStatus, Journal, StepName, StepState};
use encore_store::{Attention, ErrorKind, JobId, Lease, NewCallback, Origin, Resolution, Store};
use serde_json::json;

use crate::support::{TestDb, on_both_backends, queued};

fn attention() -> Attention {
    Attention {
        step: Some(StepName::SongSubmit),
        reason: "Suno generate may have run; its answer was lost".to_owned(),
        resolution: "POST /v1/jobs/{id}/resolve".to_owned(),
    }
}

/// A job that needs attention because song.submit is unknown.
async fn unknown_song(store: &Store) -> JobId {
    let job = queued(store, Origin::Api).await;
    let lease = store
        .claim(job.id, "w", Duration::from_secs(60))
        .await
        .unwrap();
    lease
        .start(StepName::SongSubmit, Some("tok"))
        .await
        .unwrap();
    lease
        .fail(
            StepName::SongSubmit,
            StepState::Unknown,
            "connection reset after sending",
        )
        .await
        .unwrap();
    lease.set_needs_attention(&attention()).await.unwrap();
    job.id
}

async fn adopt_and_resubmit(db: &TestDb) {
    let store = db.open().await;
    let id = unknown_song(&store).await;
    let before = store.get_job(id).await.unwrap().job;

    // An empty id adopts nothing: refused, and the job still needs attention.
    let blank = Resolution::Adopt {
        external_id: "  ".to_owned(),
    };
    let err = store
        .resolve(id, StepName::SongSubmit, &blank)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("empty"), "{err}");
    assert_eq!(store.get_job(id).await.unwrap().job.status, before.status);

    let adopt = Resolution::Adopt {
        external_id: "suno-task-9".to_owned(),
    };
    let resolved = store
        .resolve(id, StepName::SongSubmit, &adopt)
        .await
        .unwrap();
    assert_eq!(resolved.job.status, JobStatus::Queued);
    assert!(resolved.job.attention.is_none() && resolved.job.lease.is_none());
    assert_eq!(resolved.job.fence, before.fence + 1);
    let step = &resolved.steps[0];
    assert_eq!(
        (
            step.state,
            step.external_id.as_deref(),
            step.error.as_deref()
        ),
        (StepState::Done, Some("suno-task-9"), None)
    );
    // A worker resumes it, with the adopted id.
    let lease = store
        .claim_next("w2", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.job_id(), id);
    assert_eq!(
        lease.load().await.unwrap()[0].external_id.as_deref(),
        Some("suno-task-9")
    );
    let events = store.events_after(id, 0, 100).await.unwrap();
    let resolved_event = events.iter().find(|e| e.kind == "resolved").unwrap();
    assert_eq!(resolved_event.data["external_id"], "suno-task-9");

    // Done is not unknown: nothing to resolve again.
    let err = store
        .resolve(id, StepName::SongSubmit, &adopt)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.to_string().contains("the step is done, not unknown"),
        "{err}"
    );
    drop(lease);

    // Resubmitting needs the explicit consent, then queues the step to be sent again.
    let id = unknown_song(&store).await;
    let unconfirmed = Resolution::Resubmit {
        accept_paying_twice: false,
    };
    let err = store
        .resolve(id, StepName::SongSubmit, &unconfirmed)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("accept_paying_twice"), "{err}");
    assert_eq!(
        store.get_job(id).await.unwrap().job.status,
        JobStatus::NeedsAttention,
        "a refused resolution changes nothing"
    );
    let resubmit = Resolution::Resubmit {
        accept_paying_twice: true,
    };
    let resolved = store
        .resolve(id, StepName::SongSubmit, &resubmit)
        .await
        .unwrap();
    assert_eq!(resolved.job.status, JobStatus::Queued);
    let step = &resolved.steps[0];
    assert_eq!(step.state, StepState::Pending);
    assert!(step.error.as_deref().unwrap().contains("may pay twice"));
    // The worker may send it again now.
    let lease = store
        .claim(id, "w3", Duration::from_secs(60))
        .await
        .unwrap();
    lease
        .start(StepName::SongSubmit, Some("tok-2"))
        .await
        .unwrap();
    assert_eq!(lease.load().await.unwrap()[0].attempts, 2);

    // Free steps are never unknown; unknown jobs are not found.
    let err = store
        .resolve(id, StepName::Lyrics, &adopt)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    let err = store
        .resolve(JobId::generate(), StepName::SongSubmit, &adopt)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = store
        .resolve(id, StepName::VideoSubmit, &adopt)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never started"), "{err}");
}

/// In flight under a live lease is not unknown yet; once the lease expired it may be
/// resolved, and the runner that held it changes nothing more. An unknown step may be resolved
/// even while a runner holds the job (it waits for a callback): the runner is fenced out.
async fn resolving_under_leases(db: &TestDb) {
    let store = db.open().await;
    let job = queued(&store, Origin::Cli).await;
    let lease = store
        .claim(job.id, "encore-run", Duration::from_millis(150))
        .await
        .unwrap();
    lease.start(StepName::VideoSubmit, Some("t")).await.unwrap();
    let adopt = Resolution::Adopt {
        external_id: "render-1".to_owned(),
    };
    let err = store
        .resolve(job.id, StepName::VideoSubmit, &adopt)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.to_string()
            .contains("in flight under a live lease held by encore-run"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resolved = store
        .resolve(job.id, StepName::VideoSubmit, &adopt)
        .await
        .unwrap();
    assert_eq!(resolved.steps[0].state, StepState::Done);
    assert_eq!(resolved.job.status, JobStatus::Queued);
    assert_lost(&lease).await;

    let id = queued(&store, Origin::Api).await.id;
    let waiting = store.claim(id, "w", Duration::from_secs(60)).await.unwrap();
    waiting
        .fail(StepName::SongSubmit, StepState::Unknown, "lost answer")
        .await
        .unwrap();
    store
        .resolve(
            id,
            StepName::SongSubmit,
            &Resolution::Adopt {
                external_id: "suno-2".to_owned(),
            },
        )
        .await
        .unwrap();
    assert_lost(&waiting).await;

    let done = queued(&store, Origin::Api).await.id;
    let lease = store
        .claim(done, "w", Duration::from_secs(60))
        .await
        .unwrap();
    lease
        .fail(StepName::SongSubmit, StepState::Unknown, "x")
        .await
        .unwrap();
    lease.set_succeeded(&json!({})).await.unwrap();
    let err = store
        .resolve(done, StepName::SongSubmit, &adopt)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the job is succeeded"), "{err}");
}

async fn assert_lost(lease: &Lease) {
    let err = lease
        .finish(StepName::VideoSubmit, Some("late"), &json!({}))
        .await
        .unwrap_err();
    assert!(err.is_lease_lost(), "{err}");
}

/// A callback for a job that needs attention on that step queues it again, once; duplicates
/// change nothing more; a worker verifies and consumes it.
async fn callbacks_inbox(db: &TestDb) {
    let store = db.open().await;
    let id = unknown_song(&store).await;
    let callback = NewCallback {
        job_id: id,
        step: StepName::SongSubmit,
        external_id: "suno-task-3".to_owned(),
        kind: "complete".to_owned(),
        payload: Some(json!({"code": 200, "data": {"callbackType": "complete"}})),
        verified: false,
    };
    let fence = store.get_job(id).await.unwrap().job.fence;
    // Not verified by a free read (yet): recorded, and nothing moves.
    let unverified = store.record_callback(&callback).await.unwrap();
    assert!(!unverified.duplicate && !unverified.requeued);
    let job = store.get_job(id).await.unwrap().job;
    assert_eq!(job.status, JobStatus::NeedsAttention);
    assert_eq!(job.fence, fence);
    // The same callback, verified: the job goes back to the queue.
    let callback = NewCallback {
        verified: true,
        ..callback
    };
    let first = store.record_callback(&callback).await.unwrap();
    assert!(first.duplicate && first.requeued);
    assert_eq!(first.id, unverified.id);
    let job = store.get_job(id).await.unwrap().job;
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.fence, fence + 1);
    let events = store.events_after(id, 0, 100).await.unwrap().len();

    let again = store.record_callback(&callback).await.unwrap();
    assert_eq!(
        (again.id, again.duplicate, again.requeued),
        (first.id, true, false)
    );
    assert_eq!(store.events_after(id, 0, 100).await.unwrap().len(), events);
    assert_eq!(store.get_job(id).await.unwrap().job.fence, fence + 1);

    // Another stage of the same task is another callback; the job is queued already.
    let first_stage = store
        .record_callback(&NewCallback {
            kind: "first".to_owned(),
            payload: None,
            ..callback.clone()
        })
        .await
        .unwrap();
    assert!(!first_stage.duplicate && !first_stage.requeued);

    // The worker that claims the job verifies the id, adopts it, and consumes the callbacks.
    let lease = store
        .claim_next("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let inbox = store.unconsumed_callbacks(id).await.unwrap();
    assert_eq!(
        inbox.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>(),
        ["complete", "first"]
    );
    assert_eq!(inbox[0].payload, callback.payload);
    assert_eq!(inbox[0].external_id, "suno-task-3");
    assert!(inbox[0].verified_at.is_some());
    assert!(inbox[1].verified_at.is_some());
    assert!(!store.mark_callback_verified(first.id).await.unwrap());
    lease
        .finish(StepName::SongSubmit, Some("suno-task-3"), &json!({}))
        .await
        .unwrap();
    for c in &inbox {
        assert!(store.mark_callback_consumed(c.id).await.unwrap());
    }
    assert!(!store.mark_callback_consumed(first.id).await.unwrap());
    assert!(store.unconsumed_callbacks(id).await.unwrap().is_empty());

    // A callback for a running job is only recorded.
    let late = store
        .record_callback(&NewCallback {
            kind: "complete-again".to_owned(),
            ..callback.clone()
        })
        .await
        .unwrap();
    assert!(!late.requeued);
    assert_eq!(
        store.get_job(id).await.unwrap().job.status,
        JobStatus::Running
    );

    let err = store
        .record_callback(&NewCallback {
            job_id: JobId::generate(),
            ..callback.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = store
        .mark_callback_verified(encore_store::CallbackId::generate())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // Providers repeat themselves, at once: one record, one requeue.
    let id = unknown_song(&store).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let callback = NewCallback {
            job_id: id,
            ..callback.clone()
        };
        tasks.push(tokio::spawn(async move {
            store.record_callback(&callback).await.unwrap()
        }));
    }
    let mut new = 0;
    let mut requeued = 0;
    for task in tasks {
        let receipt = task.await.unwrap();
        new += usize::from(!receipt.duplicate);
        requeued += usize::from(receipt.requeued);
    }
    assert_eq!((new, requeued), (1, 1));
}

/// A shared setting keeps its first value, also when several writers race; workers can follow
/// the callbacks any of them received.
async fn settings_and_recent_callbacks(db: &TestDb) {
    let store = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .setting_or_insert("callback_secret", &format!("secret-{i}"))
                .await
                .unwrap()
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "one value for everyone: {seen:?}");
    assert_eq!(
        store
            .setting_or_insert("callback_secret", "later")
            .await
            .unwrap(),
        seen[0]
    );

    let before = encore_pipeline::job::now_millis() - 1;
    let id = unknown_song(&store).await;
    for (external_id, kind) in [("t-1", "text"), ("t-1", "first")] {
        store
            .record_callback(&NewCallback {
                job_id: id,
                step: StepName::SongSubmit,
                external_id: external_id.to_owned(),
                kind: kind.to_owned(),
                payload: None,
                verified: false,
            })
            .await
            .unwrap();
    }
    let recent = store.callbacks_received_after(before, 10).await.unwrap();
    assert_eq!(
        recent.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>(),
        ["text", "first"]
    );
    assert_eq!(
        store
            .callbacks_received_after(before, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let last = recent[1].received_at;
    assert!(
        store
            .callbacks_received_after(last, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The census counts jobs by status and unknown steps, and follows a resolution.
async fn census_counts_statuses_and_unknown_steps(db: &TestDb) {
    let store = db.open().await;
    let empty = store.census().await.unwrap();
    assert_eq!(empty.jobs.len(), JobStatus::ALL.len());
    assert!(empty.jobs.iter().all(|(_, n)| *n == 0));
    assert!(empty.unknown_steps.is_empty());

    let id = unknown_song(&store).await;
    queued(&store, Origin::Api).await;
    queued(&store, Origin::Cli).await;
    let census = store.census().await.unwrap();
    assert_eq!(census.jobs_in(JobStatus::Queued), 2);
    assert_eq!(census.jobs_in(JobStatus::NeedsAttention), 1);
    assert_eq!(census.jobs_in(JobStatus::Running), 0);
    assert_eq!(census.unknown_steps, vec![(StepName::SongSubmit, 1)]);

    let adopt = Resolution::Adopt {
        external_id: "suno-task-1".to_owned(),
    };
    store
        .resolve(id, StepName::SongSubmit, &adopt)
        .await
        .unwrap();
    let census = store.census().await.unwrap();
    assert_eq!(census.jobs_in(JobStatus::Queued), 3);
    assert_eq!(census.jobs_in(JobStatus::NeedsAttention), 0);
    assert!(census.unknown_steps.is_empty(), "{census:?}");
}

on_both_backends!(
    census_counts_statuses_and_unknown_steps,
    adopt_and_resubmit,
    resolving_under_leases,
    callbacks_inbox,
    settings_and_recent_callbacks
);
