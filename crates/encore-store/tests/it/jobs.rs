//! Creating jobs (idempotently), listing them, and their events.

use std::collections::HashSet;
use std::time::Duration;

use encore_pipeline::JobStatus;
use encore_store::{ErrorKind, JobQuery, NewJob, Origin};
use serde_json::json;

use crate::support::{TestDb, on_both_backends, queued};

async fn idempotency_keys(db: &TestDb) {
    let store = db.open().await;
    let body = json!({"business": "a bakery", "name": "Haneul"});
    let first = store
        .create_job(&NewJob::new(Origin::Api, body.clone()).with_idempotency("key-1", "hash-a"))
        .await
        .unwrap();
    assert!(!first.replayed);
    assert_eq!(first.job.status, JobStatus::Queued);
    assert_eq!(first.job.input, body);
    assert_eq!(first.job.idempotency_key.as_deref(), Some("key-1"));

    // The same key and body: the same job.
    let again = store
        .create_job(&NewJob::new(Origin::Api, body.clone()).with_idempotency("key-1", "hash-a"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.job, first.job);

    // The same key, another body: refused, nothing created.
    let err = store
        .create_job(
            &NewJob::new(Origin::Api, json!({"business": "other"}))
                .with_idempotency("key-1", "hash-b"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.is_conflict());
    assert!(
        err.to_string().contains(&first.job.id.to_string())
            && err.to_string().contains("another request body"),
        "{err}"
    );
    // Without keys, every request is a new job.
    let a = queued(&store, Origin::Api).await;
    let b = queued(&store, Origin::Api).await;
    assert_ne!(a.id, b.id);
    let all = store.list_jobs(&JobQuery::default()).await.unwrap();
    assert_eq!(all.jobs.len(), 3);

    // Racing requests with one key make one job.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_job(
                    &NewJob::new(Origin::Api, json!({"n": 1})).with_idempotency("race", "h"),
                )
                .await
                .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let c = task.await.unwrap();
        ids.insert(c.job.id);
        created += usize::from(!c.replayed);
    }
    assert_eq!((ids.len(), created), (1, 1));
}

async fn listing_newest_first_by_pages(db: &TestDb) {
    let store = db.open().await;
    let mut ids = Vec::new();
    for n in 0..7 {
        let origin = if n % 3 == 0 { Origin::Cli } else { Origin::Api };
        ids.push(queued(&store, origin).await.id);
    }
    let lease = store
        .claim_next("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.job_id(), ids[1], "the oldest api job first");

    let mut seen = Vec::new();
    let mut query = JobQuery {
        limit: 3,
        ..JobQuery::default()
    };
    loop {
        let page = store.list_jobs(&query).await.unwrap();
        assert!(page.jobs.len() <= 3);
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<_> = ids.iter().rev().copied().collect();
    assert_eq!(seen, newest_first);
    // A page that holds exactly what is left has no next page; one fewer leaves one behind.
    for (limit, next) in [(7, None), (8, None), (6, Some(ids[1]))] {
        let page = store
            .list_jobs(&JobQuery {
                limit,
                ..JobQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.jobs.len(), 7.min(limit as usize), "limit {limit}");
        assert_eq!(page.next, next, "limit {limit}");
    }

    let running = store
        .list_jobs(&JobQuery {
            status: Some(JobStatus::Running),
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        running.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[1]]
    );
    assert_eq!(running.next, None);
    let cli = store
        .list_jobs(&JobQuery {
            origin: Some(Origin::Cli),
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        cli.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[6], ids[3], ids[0]]
    );
}

async fn events_are_numbered_by_their_writer(db: &TestDb) {
    let store = db.open().await;
    let job = queued(&store, Origin::Api).await;
    let lease = store
        .claim_next("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    for n in 0..5 {
        let seq = lease
            .append_event("retry", &json!({"attempt": n, "delay_ms": 1000}))
            .await
            .unwrap();
        assert_eq!(seq, 3 + n, "created = 1, claimed = 2");
    }
    let all = store.events_after(job.id, 0, 100).await.unwrap();
    assert_eq!(all.len(), 7);
    assert_eq!(all[0].kind, "status");
    assert_eq!(all[0].data["status"], "queued");
    assert_eq!(all[1].data["status"], "running");
    assert_eq!(all[1].data["owner"], "w");
    // A follower reads from where it left off.
    let tail = store.events_after(job.id, 5, 100).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 7]);
    assert_eq!(tail[1].data, json!({"attempt": 4, "delay_ms": 1000}));
    assert_eq!(store.events_after(job.id, 1, 2).await.unwrap().len(), 2);
    assert!(store.events_after(job.id, 7, 100).await.unwrap().is_empty());
}

/// `list_job_details`: the page `list_jobs` gives, each job with its own steps and the seq of
/// its latest event.
async fn listing_jobs_with_their_steps(db: &TestDb) {
    use encore_pipeline::{Journal, StepName};

    let store = db.open().await;
    assert!(
        store
            .list_job_details(&JobQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    let mut ids = Vec::new();
    for n in 0..6 {
        let origin = if n % 2 == 0 { Origin::Cli } else { Origin::Api };
        ids.push(queued(&store, origin).await.id);
    }
    // Steps on three of them: one, two and three steps.
    for (k, id) in [ids[1], ids[2], ids[4]].into_iter().enumerate() {
        let lease = store.claim(id, "w", Duration::from_secs(60)).await.unwrap();
        for step in &StepName::ALL[..=k] {
            lease.start(*step, None).await.unwrap();
            lease.finish(*step, None, &json!({"n": k})).await.unwrap();
        }
        if k == 1 {
            lease.set_succeeded(&json!({})).await.unwrap();
        }
    }
    for query in [
        JobQuery::default(),
        JobQuery {
            limit: 3,
            ..JobQuery::default()
        },
        JobQuery {
            before: Some(ids[4]),
            limit: 2,
            ..JobQuery::default()
        },
        JobQuery {
            origin: Some(Origin::Cli),
            ..JobQuery::default()
        },
        JobQuery {
            status: Some(JobStatus::Succeeded),
            ..JobQuery::default()
        },
    ] {
        let page = store.list_jobs(&query).await.unwrap();
        let details = store.list_job_details(&query).await.unwrap();
        assert_eq!(
            details.iter().map(|d| d.job.clone()).collect::<Vec<_>>(),
            page.jobs,
            "{query:?}"
        );
        for detail in &details {
            assert_eq!(
                detail,
                &store.get_job(detail.job.id).await.unwrap(),
                "{query:?}"
            );
            let events = store.events_after(detail.job.id, 0, 1000).await.unwrap();
            assert_eq!(detail.job.last_event, events.last().unwrap().seq);
        }
    }
    let all = store.list_job_details(&JobQuery::default()).await.unwrap();
    let steps: Vec<usize> = all.iter().map(|d| d.steps.len()).collect();
    assert_eq!(steps, [0, 3, 0, 2, 1, 0], "newest first");
}

on_both_backends!(
    idempotency_keys,
    listing_newest_first_by_pages,
    listing_jobs_with_their_steps,
    events_are_numbered_by_their_writer,
);

/// An origin prints as the word the store keeps (padding honoured, for tables) and reads back.
#[test]
fn origins_print_as_stored() {
    assert_eq!(
        format!("[{:>4}|{:<4}]", Origin::Api, Origin::Cli),
        "[ api|cli ]"
    );
    for origin in [Origin::Api, Origin::Cli] {
        assert_eq!(origin.to_string(), origin.as_str());
        assert_eq!(origin.to_string().parse::<Origin>().unwrap(), origin);
    }
}
