//! Claims, leases and fencing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use encore_pipeline::{JobStatus, Journal, StepName, StepState};
use encore_store::{ErrorKind, JobId, Origin, StoreOptions};
use serde_json::json;

use crate::support::{TestDb, all_events, on_both_backends, queued};

/// N tasks on two stores (two pools, as two processes would) claim 40 jobs at once: every job
/// is handed out exactly once.
async fn concurrent_claims_never_share_a_job(db: &TestDb) {
    let options = StoreOptions {
        max_connections: 4,
        ..StoreOptions::default()
    };
    let stores = [
        db.open_with(options.clone()).await,
        db.open_with(options).await,
    ];
    let mut created = HashSet::new();
    for _ in 0..40 {
        created.insert(queued(&stores[0], Origin::Api).await.id);
    }
    // A cli job is never claimed by the claim loop.
    let cli = queued(&stores[0], Origin::Cli).await;

    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = stores[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{n}");
            let mut claimed = Vec::new();
            while let Some(lease) = store
                .claim_next(&owner, Duration::from_secs(60))
                .await
                .unwrap()
            {
                claimed.push((lease.job_id(), owner.clone(), lease.fence()));
            }
            claimed
        }));
    }
    let mut owners: HashMap<JobId, Vec<String>> = HashMap::new();
    for task in tasks {
        for (job, owner, fence) in task.await.unwrap() {
            assert_eq!(fence, 1, "a first claim");
            owners.entry(job).or_default().push(owner);
        }
    }
    let claimed: HashSet<JobId> = owners.keys().copied().collect();
    assert_eq!(claimed, created, "every api job claimed, and only those");
    for (job, by) in &owners {
        assert_eq!(by.len(), 1, "job {job} was handed to {by:?}");
        let stored = stores[1].get_job(*job).await.unwrap().job;
        assert_eq!(stored.status, JobStatus::Running);
        assert_eq!(stored.lease.unwrap().owner, by[0]);
    }
    let cli = stores[0].get_job(cli.id).await.unwrap().job;
    assert_eq!(cli.status, JobStatus::Queued);
}

/// A lease expires, another owner takes the job over, and every write of the old owner fails
/// with "lease lost" and changes nothing.
async fn a_lost_lease_writes_nothing(db: &TestDb) {
    let store = db.open().await;
    let job = queued(&store, Origin::Api).await;
    // A short lease, yet long enough that the checks below run before it expires on a busy
    // machine.
    let old = store
        .claim_next("worker-old", Duration::from_millis(500))
        .await
        .unwrap()
        .unwrap();
    old.start(StepName::Lyrics, None).await.unwrap();
    // Not expired yet: nobody else gets it.
    assert!(
        store
            .claim_next("worker-new", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none()
    );
    let refused = store
        .claim(job.id, "worker-new", Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict);
    // The refusal says until when, as an RFC 3339 time to the millisecond.
    let until = std::time::UNIX_EPOCH + Duration::from_millis(old.expires_at() as u64);
    let until = humantime::format_rfc3339_millis(until).to_string();
    assert!(
        refused.to_string().contains(&format!(
            "held by worker-old until {until} (fence {})",
            old.fence()
        )),
        "{refused}"
    );
    // `Job::is_leased_at` draws the same line as the claim: live before the expiry, not at it.
    let held = store.get_job(job.id).await.unwrap().job;
    let expires_at = held.lease.as_ref().expect("a lease").expires_at;
    assert_eq!(expires_at, old.expires_at());
    for (at, live) in [
        (expires_at - 100, true),
        (expires_at - 1, true),
        (expires_at, false),
        (expires_at + 1, false),
    ] {
        assert_eq!(
            held.is_leased_at(at),
            live,
            "at expiry {:+} ms",
            at - expires_at
        );
    }
    let waiting = queued(&store, Origin::Api).await;
    assert!(
        !store
            .get_job(waiting.id)
            .await
            .unwrap()
            .job
            .is_leased_at(expires_at - 100),
        "a job nobody claimed is not leased"
    );
    store.request_cancel(waiting.id).await.unwrap();

    tokio::time::sleep(Duration::from_millis(550)).await;
    let new = store
        .claim_next("worker-new", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the expired job");
    assert_eq!(new.fence(), old.fence() + 1);
    let before = store.get_job(job.id).await.unwrap();
    let events_before = store.events_after(job.id, 0, 1000).await.unwrap();

    let lost = |e: &encore_store::Error| {
        assert_eq!(e.kind(), ErrorKind::LeaseLost, "{e}");
        assert!(e.to_string().contains("held by worker-new"), "{e}");
    };
    let journal = old
        .finish(StepName::Lyrics, None, &json!({"title": "x"}))
        .await
        .unwrap_err();
    assert!(journal.is_lease_lost(), "{journal}");
    assert!(
        old.start(StepName::SongSubmit, Some("t"))
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    assert!(
        old.fail(StepName::Lyrics, StepState::Failed, "x")
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    assert!(old.load().await.unwrap_err().is_lease_lost());
    lost(&old.append_event("retry", &json!({})).await.unwrap_err());
    lost(&old.set_succeeded(&json!({})).await.unwrap_err());
    lost(&old.set_failed(&failure()).await.unwrap_err());
    lost(&old.set_cancelled().await.unwrap_err());
    lost(&old.renew(Duration::from_secs(30)).await.unwrap_err());
    lost(&old.release().await.unwrap_err());

    assert_eq!(store.get_job(job.id).await.unwrap(), before);
    assert_eq!(
        store.events_after(job.id, 0, 1000).await.unwrap(),
        events_before
    );

    // The new owner goes on; the free step left in flight runs again.
    assert_eq!(new.load().await.unwrap()[0].state, StepState::Pending);
    new.start(StepName::Lyrics, None).await.unwrap();
    new.set_succeeded(&json!({"video_url": "v"})).await.unwrap();
    let done = store.get_job(job.id).await.unwrap().job;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.result, Some(json!({"video_url": "v"})));
    // Finishing ended the lease too.
    assert!(
        new.renew(Duration::from_secs(1))
            .await
            .unwrap_err()
            .is_lease_lost()
    );
}

fn failure() -> encore_store::JobError {
    encore_store::JobError {
        code: "suno.failed".to_owned(),
        message: "song failed".to_owned(),
        class: "permanent".to_owned(),
    }
}

/// A runner that keeps writing while its lease expires and another claims the job: every write
/// it was told succeeded is ordered before the takeover, and none after it.
async fn fenced_writes_race_a_takeover(db: &TestDb) {
    let store = db.open().await;
    let job = queued(&store, Origin::Api).await;
    let old = store
        .claim_next("paused", Duration::from_millis(80))
        .await
        .unwrap()
        .unwrap();
    let writer = {
        let old = old.clone();
        tokio::spawn(async move {
            let mut written = 0_u32;
            let started = std::time::Instant::now();
            loop {
                match old.append_event("tick", &json!({"n": written})).await {
                    Ok(_) => written += 1,
                    Err(e) => return (written, e),
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the fenced-out writer kept writing"
                );
            }
        })
    };
    let taker = {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                if let Some(lease) = store
                    .claim_next("taker", Duration::from_secs(30))
                    .await
                    .unwrap()
                {
                    return lease;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let (written, err) = writer.await.unwrap();
    let new = taker.await.unwrap();
    assert_eq!(err.kind(), ErrorKind::LeaseLost, "{err}");
    assert!(written > 0, "the writer wrote before the takeover");

    let events = all_events(&store, job.id).await;
    let takeover = events
        .iter()
        .find(|e| e.kind == "status" && e.data["owner"] == "taker")
        .expect("the takeover's event")
        .seq;
    let ticks: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "tick")
        .map(|e| e.seq)
        .collect();
    assert_eq!(
        ticks.len(),
        written as usize,
        "every acknowledged write is stored, no other"
    );
    assert!(ticks.iter().all(|&seq| seq < takeover));
    assert_eq!(new.fence(), old.fence() + 1);
}

/// Release gives the job back to the queue; renew extends the lease and reports a cancel.
async fn release_renew_and_cancel(db: &TestDb) {
    let store = db.open().await;
    let job = queued(&store, Origin::Api).await;
    let lease = store
        .claim_next("w1", Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    let renewal = lease.renew(Duration::from_secs(60)).await.unwrap();
    assert!(!renewal.cancel_requested);
    assert_eq!(lease.expires_at(), renewal.expires_at);
    // A lease "for ever" is far in the future, not wrapped around to the past.
    let now = encore_pipeline::job::now_millis();
    let century = 100 * 365 * 24 * 3600 * 1000_i64;
    let forever = lease.renew(Duration::MAX).await.unwrap();
    assert!(forever.expires_at > now + century, "{forever:?}");
    let stored = store.get_job(job.id).await.unwrap().job;
    assert_eq!(stored.lease.unwrap().expires_at, forever.expires_at);
    lease.renew(Duration::from_secs(60)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Renewed: still held.
    assert!(
        store
            .claim_next("w2", Duration::from_secs(1))
            .await
            .unwrap()
            .is_none()
    );
    lease.release().await.unwrap();
    let released = store.get_job(job.id).await.unwrap().job;
    assert_eq!(released.status, JobStatus::Queued);
    assert!(released.lease.is_none());

    let again = store
        .claim_next("w2", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the released job");
    assert_eq!(again.fence(), lease.fence() + 1);
    let marked = store.request_cancel(job.id).await.unwrap();
    assert_eq!(marked.status, JobStatus::Running);
    assert!(marked.cancel_requested);
    // Asking twice is harmless.
    assert!(store.request_cancel(job.id).await.unwrap().cancel_requested);
    assert!(
        again
            .renew(Duration::from_secs(60))
            .await
            .unwrap()
            .cancel_requested
    );
    again.set_cancelled().await.unwrap();
    assert_eq!(
        store.get_job(job.id).await.unwrap().job.status,
        JobStatus::Cancelled
    );
    assert_eq!(
        store.request_cancel(job.id).await.unwrap().status,
        JobStatus::Cancelled
    );
}

/// `claim` of one job (`encore run --resume`): cli jobs, failed jobs, and the reasons for a
/// refusal.
async fn claiming_one_job(db: &TestDb) {
    let store = db.open().await;
    let cli = queued(&store, Origin::Cli).await;
    let lease = store
        .claim(cli.id, "encore-run-1", Duration::from_secs(60))
        .await
        .unwrap();
    lease.set_failed(&failure()).await.unwrap();
    let failed = store.get_job(cli.id).await.unwrap().job;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error, Some(failure()));

    // A failed job runs again from its journal; its error is cleared while it runs.
    let resumed = store
        .claim(cli.id, "encore-run-2", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(resumed.job().status, JobStatus::Running);
    assert!(resumed.job().error.is_none());
    resumed
        .set_needs_attention(&encore_store::Attention {
            step: Some(StepName::SongSubmit),
            reason: "Suno generate may have run".to_owned(),
            resolution: format!("encore jobs resolve {} --step song.submit", cli.id),
        })
        .await
        .unwrap();
    let err = store
        .claim(cli.id, "encore-run-3", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.to_string()
            .contains("needs attention: Suno generate may have run")
            && err.to_string().contains("encore jobs resolve"),
        "{err}"
    );

    let missing = store
        .claim(JobId::generate(), "x", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);

    let other = queued(&store, Origin::Api).await;
    let cancelled = store.request_cancel(other.id).await.unwrap();
    assert_eq!(
        cancelled.status,
        JobStatus::Cancelled,
        "a queued job is cancelled at once"
    );
    let err = store
        .claim(other.id, "x", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("is cancelled: nothing to run"),
        "{err}"
    );
}

/// `take_over` (`encore run --resume` after the runner's process is gone, its lease still
/// live): conditional on the holder and its fence; the old holder's writes are refused
/// afterwards, a billed step it left in flight is `unknown`, and the timeline names it.
async fn taking_over_from_a_stopped_runner(db: &TestDb) {
    let store = db.open().await;
    let ttl = Duration::from_secs(600);
    let job = queued(&store, Origin::Cli).await;
    let old = store.claim(job.id, "cli@host pid 1", ttl).await.unwrap();
    old.start(StepName::Template, None).await.unwrap();
    old.finish(StepName::Template, None, &json!({}))
        .await
        .unwrap();
    old.start(StepName::SongSubmit, Some("token"))
        .await
        .unwrap();

    // The lease is live: a plain claim is refused.
    let err = store
        .claim(job.id, "cli@host pid 2", ttl)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    // Another holder or another fence than the job's: refused, nothing changes.
    for (gone, fence) in [
        ("cli@host pid 1", old.fence() + 1),
        ("cli@host pid 9", old.fence()),
    ] {
        let err = store
            .take_over(job.id, "cli@host pid 2", ttl, gone, fence)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert!(
            err.to_string().contains("is held by cli@host pid 1"),
            "{err}"
        );
    }
    let unchanged = store.get_job(job.id).await.unwrap();
    assert_eq!(unchanged.job.fence, old.fence());
    assert_eq!(unchanged.steps[1].state, StepState::InFlight);

    let new = store
        .take_over(job.id, "cli@host pid 2", ttl, "cli@host pid 1", old.fence())
        .await
        .unwrap();
    assert_eq!(new.fence(), old.fence() + 1);
    assert_eq!(new.owner(), "cli@host pid 2");
    let detail = store.get_job(job.id).await.unwrap();
    assert_eq!(detail.job.lease.unwrap().owner, "cli@host pid 2");
    let states: Vec<(StepName, StepState)> =
        detail.steps.iter().map(|s| (s.name, s.state)).collect();
    assert_eq!(
        states,
        [
            (StepName::Template, StepState::Done),
            (StepName::SongSubmit, StepState::Unknown),
        ]
    );
    // The old holder, alive after all, writes nothing more.
    let err = old
        .finish(StepName::SongSubmit, Some("task-1"), &json!({}))
        .await
        .unwrap_err();
    assert!(err.is_lease_lost(), "{err}");
    let events = all_events(&store, job.id).await;
    let taken = events
        .iter()
        .find(|e| e.kind == "taken_over")
        .expect("a taken_over event");
    assert_eq!(taken.data["from"], "cli@host pid 1");
    assert_eq!(taken.data["owner"], "cli@host pid 2");

    // The same stale judgment again changes nothing.
    let err = store
        .take_over(job.id, "cli@host pid 3", ttl, "cli@host pid 1", old.fence())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    // Only a running job is taken over.
    new.release().await.unwrap();
    let err = store
        .take_over(job.id, "cli@host pid 3", ttl, "cli@host pid 2", new.fence())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is queued"), "{err}");
    let err = store
        .take_over(JobId::generate(), "x", ttl, "y", 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

on_both_backends!(
    concurrent_claims_never_share_a_job,
    a_lost_lease_writes_nothing,
    fenced_writes_race_a_takeover,
    release_renew_and_cancel,
    claiming_one_job,
    taking_over_from_a_stopped_runner,
);
