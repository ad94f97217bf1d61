//! A database that stops answering without closing anything (a partition that drops packets):
//! every operation ends within `query_timeout` as unavailable, naming what it was doing; a
//! connection abandoned mid-query is never handed back half-read, nor kept for as long as the
//! kernel would wait; and the store answers again, its data whole, when the database does.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use encore_pipeline::{JobStatus, Journal, StepName, StepState};
use encore_store::{Error, ErrorKind, JobId, Origin, Store, StoreOptions};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::support::{Relay, TestDb, pg_admin, pg_socket_addr, queued};

const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// How long an operation may take, at most, when the database does not answer.
const ANSWERED_WITHIN: Duration = Duration::from_secs(3);

fn options(max_connections: u32) -> StoreOptions {
    StoreOptions {
        busy_timeout: Duration::from_millis(100),
        max_connections,
        acquire_timeout: Duration::from_millis(200),
        query_timeout: QUERY_TIMEOUT,
    }
}

/// `target` with an `application_name`, to find the store's connections on the server.
fn named(target: &str, name: &str) -> String {
    let mut url = url::Url::parse(target).unwrap();
    url.query_pairs_mut().append_pair("application_name", name);
    url.to_string()
}

/// The server processes of the connections named `name`.
async fn backends(name: &str) -> Vec<i32> {
    let mut admin = pg_admin().await;
    let pids = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid",
    )
    .bind(name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let _ = admin.close().await;
    pids
}

/// A transaction holding the schema's `jobs` table in ACCESS EXCLUSIVE mode: every store
/// operation waits for it on the server.
async fn lock_jobs(schema: &str) -> PgConnection {
    let mut lock = pg_admin().await;
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query(&format!(
        "LOCK TABLE {schema}.jobs IN ACCESS EXCLUSIVE MODE"
    ))
    .execute(&mut lock)
    .await
    .unwrap();
    lock
}

/// Waits until a query waits for `lock`'s table.
async fn until_waited_for(lock: &mut PgConnection, schema: &str) {
    let start = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND relation = '{schema}.jobs'::regclass"
        ))
        .fetch_one(&mut *lock)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no operation waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `op` while the table is locked; once it waits on the server, `then` (a stall of the
/// relay) happens and the lock is released, so that the server answers into the stall.
async fn in_flight<R>(
    schema: &str,
    op: Pin<Box<dyn Future<Output = R> + Send + '_>>,
    then: impl FnOnce(),
) -> (R, Duration) {
    let mut lock = lock_jobs(schema).await;
    let start = Instant::now();
    let op = async {
        // A store without a bound would wait here as long as the kernel does.
        tokio::time::timeout(Duration::from_secs(10), op)
            .await
            .expect("the operation is bounded")
    };
    let (outcome, ()) = tokio::join!(async { (op.await, start.elapsed()) }, async {
        until_waited_for(&mut lock, schema).await;
        then();
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    });
    let _ = lock.close().await;
    outcome
}

/// The store's error under a journal error.
fn store_error(err: &encore_pipeline::JournalError) -> &Error {
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        if let Some(store) = c.downcast_ref::<Error>() {
            return store;
        }
        cause = c.source();
    }
    panic!("no store error under {err}");
}

/// `outcome` is the failure of `op`, as unavailable, within [`ANSWERED_WITHIN`]; with
/// `no_answer`, the message names the bound.
fn unavailable<T>(outcome: (Result<T, &Error>, Duration), op: &str, no_answer: bool) {
    let (result, took) = outcome;
    let Err(err) = result else {
        panic!("{op}: answered through a stalled relay");
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().starts_with(op), "{err}");
    if no_answer {
        assert!(
            err.to_string()
                .ends_with("the database did not answer within 500ms"),
            "{err}"
        );
        assert!(took >= QUERY_TIMEOUT, "{op}: failed after {took:?}");
    }
    assert!(took < ANSWERED_WITHIN, "{op}: failed after {took:?}");
}

/// The job's timeline has no hole and says what its steps say: a write either whole or not
/// at all.
async fn consistent(store: &Store, id: JobId) -> (StepState, usize) {
    let detail = store.get_job(id).await.unwrap();
    let events = store.events_after(id, 0, 1000).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=i64::try_from(events.len()).unwrap()).collect::<Vec<_>>()
    );
    let lyrics = detail
        .steps
        .iter()
        .find(|s| s.name == StepName::Lyrics)
        .unwrap()
        .state;
    let done_events = events
        .iter()
        .filter(|e| e.kind == "step" && e.data["step"] == "lyrics" && e.data["state"] == "done")
        .count();
    assert_eq!(
        lyrics == StepState::Done,
        done_events > 0,
        "the step says {lyrics}, the timeline has {done_events} done event(s)"
    );
    (lyrics, done_events)
}

/// The partition starts while each operation waits for the server (reading a job, claiming
/// one, a lease write, a renewal), then while none is under way: each fails as unavailable
/// within the bound; the store answers again when the relay does, and what was half done was
/// rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_postgres_is_unavailable_within_the_query_timeout_then_answers() {
    let db = TestDb::postgres().await;
    db.open().await; // migrate
    let relay = Relay::start(pg_socket_addr()).await;
    let store = Store::open_with(&db.target_via(relay.addr, ""), options(2))
        .await
        .unwrap();
    let a = queued(&store, Origin::Api).await;
    let lease = store
        .claim_next("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.job_id(), a.id);
    lease.start(StepName::Lyrics, None).await.unwrap();
    let b = queued(&store, Origin::Api).await;
    let schema = db.schema();
    let result = serde_json::json!({"title": "Mangwon-dong Forever"});

    // In flight when the stall begins: the server answers, the answer never arrives.
    let outcome = in_flight(schema, Box::pin(store.get_job(a.id)), || relay.stall()).await;
    unavailable((outcome.0.as_ref(), outcome.1), "reading a job", true);
    relay.restore();
    let outcome = in_flight(
        schema,
        Box::pin(store.claim_next("w2", Duration::from_secs(60))),
        || relay.stall(),
    )
    .await;
    unavailable((outcome.0.as_ref(), outcome.1), "claiming a job", true);
    relay.restore();
    let (written, took) = in_flight(
        schema,
        lease.finish(StepName::Lyrics, Some("lyrics-1"), &result),
        || relay.stall(),
    )
    .await;
    let written = written.unwrap_err();
    unavailable(
        (Err::<(), _>(store_error(&written)), took),
        "storing a step",
        true,
    );
    relay.restore();
    let outcome = in_flight(
        schema,
        Box::pin(lease.renew(Duration::from_secs(60))),
        || relay.stall(),
    )
    .await;
    unavailable((outcome.0.as_ref(), outcome.1), "renewing a lease", true);

    // Stalled before they start: the pool's test of a connection, or a new connection, gets
    // no answer.
    for _ in 0..2 {
        let start = Instant::now();
        let outcome = store.get_job(a.id).await;
        unavailable((outcome.as_ref(), start.elapsed()), "reading a job", false);
        let start = Instant::now();
        let outcome = store.claim_next("w2", Duration::from_secs(60)).await;
        unavailable((outcome.as_ref(), start.elapsed()), "claiming a job", false);
        let start = Instant::now();
        let outcome = lease.append_event("retry", &serde_json::json!({})).await;
        unavailable(
            (outcome.as_ref(), start.elapsed()),
            "storing an event",
            false,
        );
        let start = Instant::now();
        let outcome = lease.renew(Duration::from_secs(60)).await;
        unavailable(
            (outcome.as_ref(), start.elapsed()),
            "renewing a lease",
            false,
        );
    }
    let start = Instant::now();
    store.ping().await.unwrap_err();
    assert!(start.elapsed() < ANSWERED_WITHIN);

    // The partition heals: the same store answers, and nothing was half written.
    relay.restore();
    store.ping().await.unwrap();
    let (lyrics, _) = consistent(&store, a.id).await;
    assert!(
        matches!(lyrics, StepState::InFlight | StepState::Done),
        "{lyrics}"
    );
    // The abandoned claim was rolled back: the job is still queued for the next claim.
    assert_eq!(
        store.get_job(b.id).await.unwrap().job.status,
        JobStatus::Queued
    );
    lease.renew(Duration::from_secs(60)).await.unwrap();
    lease
        .finish(StepName::Lyrics, Some("lyrics-1"), &result)
        .await
        .unwrap();
    assert_eq!(consistent(&store, a.id).await.0, StepState::Done);
    let claimed = store
        .claim_next("w2", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.job_id(), b.id);
    let detail = store.get_job(a.id).await.unwrap();
    assert_eq!(detail.job.status, JobStatus::Running);
    assert_eq!(detail.job.lease.unwrap().owner, "w");
}

/// A query given up at the bound while the server is only slow (waiting for a lock) leaves
/// its connection to the pool's test: the connection is drained (the late answer read, the
/// transaction rolled back) and used again, the answers that follow are the right ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_given_up_at_the_bound_is_drained_before_it_is_used_again() {
    let db = TestDb::postgres().await;
    let name = format!("encore-drained-{}", db.schema());
    let store = Store::open_with(
        &named(db.target(), &name),
        StoreOptions {
            query_timeout: Duration::from_secs(1),
            acquire_timeout: Duration::from_millis(500),
            ..options(1)
        },
    )
    .await
    .unwrap();
    let a = queued(&store, Origin::Api).await;
    let b = queued(&store, Origin::Cli).await;
    let before = backends(&name).await;
    assert_eq!(before.len(), 1, "{before:?}");

    let mut lock = lock_jobs(db.schema()).await;
    let start = Instant::now();
    let err = store.get_job(a.id).await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().starts_with("reading a job: "), "{err}");
    assert!(
        err.to_string()
            .ends_with(": the database did not answer within 1s"),
        "{err}"
    );
    assert!(
        (Duration::from_secs(1)..ANSWERED_WITHIN).contains(&took),
        "{took:?}"
    );
    // The server answers late, while the pool tests the connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let _ = lock.close().await;

    for _ in 0..5 {
        assert_eq!(store.get_job(b.id).await.unwrap().job.id, b.id);
        assert_eq!(store.get_job(a.id).await.unwrap().job.id, a.id);
    }
    assert_eq!(backends(&name).await, before, "the connection was kept");
}

/// The connections open when the database host went away stop answering while new ones work
/// (a failover to another host at the same address): a connection abandoned at the bound is
/// closed within the bound too, and its place in a pool of one is taken by a new connection —
/// the pool's own test of it would wait as long as the kernel does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_answers_again_gives_its_place_back() {
    let db = TestDb::postgres().await;
    db.open().await; // migrate
    let relay = Relay::start(pg_socket_addr()).await;
    let name = format!("encore-replaced-{}", db.schema());
    let store = Store::open_with(&named(&db.target_via(relay.addr, ""), &name), options(1))
        .await
        .unwrap();
    let a = queued(&store, Origin::Api).await;
    let first = backends(&name).await;
    assert_eq!(first.len(), 1, "{first:?}");

    let outcome = in_flight(db.schema(), Box::pin(store.get_job(a.id)), || {
        relay.stall_open_connections();
    })
    .await;
    unavailable((outcome.0.as_ref(), outcome.1), "reading a job", true);

    // Within the bound of the pool's test, a new connection serves the store.
    let start = Instant::now();
    loop {
        match store.get_job(a.id).await {
            Ok(detail) => {
                assert_eq!(detail.job.id, a.id);
                break;
            }
            Err(err) => {
                assert!(err.is_unavailable(), "{err}");
                assert!(
                    start.elapsed() < QUERY_TIMEOUT * 3,
                    "no new connection after {:?}: {err}",
                    start.elapsed()
                );
            }
        }
    }
    // (The stalled connection's server process stays until the relay passes its end on.)
    let now = backends(&name).await;
    assert!(
        now.iter().any(|pid| !first.contains(pid)),
        "{first:?} then {now:?}"
    );
    relay.restore();
}

/// `query_timeout` must be longer than the bounds whose errors are clearer: refused naming the
/// options, before anything is opened.
#[tokio::test]
async fn a_query_timeout_not_longer_than_the_other_bounds_is_refused() {
    let sqlite = TestDb::sqlite();
    let err = Store::open_with(
        sqlite.target(),
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(1),
            query_timeout: Duration::from_secs(5),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert_eq!(
        err.to_string(),
        "query_timeout (5s) must be longer than busy_timeout (5s): a write that waits for the SQLite file's lock fails as busy first"
    );
    assert!(!sqlite.path().exists(), "nothing is created");

    let postgres = TestDb::postgres().await;
    for target in [sqlite.target(), postgres.target()] {
        let err = Store::open_with(
            target,
            StoreOptions {
                acquire_timeout: Duration::from_secs(2),
                query_timeout: Duration::from_millis(1500),
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert!(
            err.to_string()
                .starts_with("query_timeout (1s 500ms) must be longer than acquire_timeout (2s)"),
            "{err}"
        );
    }
    // busy_timeout is SQLite's: PostgreSQL does not wait on it.
    let store = Store::open_with(
        postgres.target(),
        StoreOptions {
            busy_timeout: Duration::from_secs(60),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    store.ping().await.unwrap();
}
