//! `encore serve` on PostgreSQL through a relay that the test cuts, stalls and restores: a lost
//! database connection pauses the jobs (every write is asked again while the lease may be
//! valid and for minutes past it; a fenced write is refused if another runner took over), `/readyz` says 503 while
//! the store does not answer, and every job then finishes with one Suno task and one render. A
//! database that stops answering without closing anything costs no more than the store's
//! `query_timeout` per operation.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use encore_pipeline::job::now_millis;
use encore_sim::JobKind;
use encore_store::{JobId, Store, StoreOptions};
use sqlx::Connection;

use crate::pg::{Relay, TestSchema, pg_admin, pg_socket_addr};
use crate::server::{Options, Service, job_body, service};

async fn readyz(service: &Service) -> u16 {
    match service
        .request(reqwest::Method::GET, "/readyz")
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

async fn wait_ready(service: &Service, want: u16, limit: Duration) {
    let start = Instant::now();
    loop {
        let got = readyz(service).await;
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "/readyz answered {got}, not {want}, for {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_finish_once_each_across_lost_database_connections() {
    let pg = TestSchema::new().await;
    let relay = Relay::start(pg_socket_addr()).await;
    let lease_ttl = Duration::from_secs(2);
    let service = service(Options {
        store: Some(pg.target_at(Some(relay.addr))),
        lease_ttl,
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        let (status, created) = service.submit(&job_body(), None).await;
        assert_eq!(status, 201, "{created:#}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(readyz(&service).await, 200);

    // A long outage: longer than the leases.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let cut_at = now_millis();
    relay.cut();
    wait_ready(&service, 503, Duration::from_secs(5)).await;
    tokio::time::sleep(lease_ttl * 2).await;
    let restored_at = now_millis();
    relay.restore();
    wait_ready(&service, 200, Duration::from_secs(10)).await;

    // A short one, within the leases: the runs pause and go on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    relay.cut();
    wait_ready(&service, 503, Duration::from_secs(5)).await;
    relay.restore();
    wait_ready(&service, 200, Duration::from_secs(10)).await;

    // Runs were under way across the long outage: claimed before it, finished after it.
    let across = billed_once_each(&service, &pg, &ids, cut_at, restored_at).await;
    assert!(across >= 1, "no run was under way across the outage");
    service.stop().await;
}

/// Every job succeeded; the simulator made one Suno task and one render per job, and each
/// job names its task. Returns how many runs were claimed before `from` and finished after
/// `to`.
async fn billed_once_each(
    service: &Service,
    pg: &TestSchema,
    ids: &[String],
    from: i64,
    to: i64,
) -> usize {
    for id in ids {
        let job = service
            .wait_for(id, &["succeeded", "failed", "needs_attention"])
            .await;
        assert_eq!(job["status"], "succeeded", "{job:#}");
    }
    let tasks: BTreeSet<String> = service.billed(JobKind::SunoTask).into_iter().collect();
    let renders: BTreeSet<String> = service
        .billed(JobKind::CreatomateRender)
        .into_iter()
        .collect();
    assert_eq!(
        (service.billed(JobKind::SunoTask).len(), tasks.len()),
        (ids.len(), ids.len()),
        "one Suno task per job"
    );
    assert_eq!(
        (
            service.billed(JobKind::CreatomateRender).len(),
            renders.len()
        ),
        (ids.len(), ids.len()),
        "one render per job"
    );
    let store = Store::open(&pg.target()).await.unwrap();
    let mut across = 0;
    for id in ids {
        let id: JobId = id.parse().unwrap();
        let events = store.events_after(id, 0, 1000).await.unwrap();
        let claimed = events
            .iter()
            .find(|e| e.kind == "status" && e.data["status"] == "running")
            .map(|e| e.at);
        let finished = events
            .iter()
            .find(|e| e.kind == "status" && e.data["status"] == "succeeded")
            .map(|e| e.at);
        if claimed.is_some_and(|at| at < from) && finished.is_some_and(|at| at > to) {
            across += 1;
        }
        let detail = store.get_job(id).await.unwrap();
        let task = detail.job.result.as_ref().unwrap()["suno_task_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            tasks.contains(&task),
            "job {id} names a task the simulator made"
        );
    }
    store.close().await;
    across
}

/// The database stops answering without closing anything — first every connection (a
/// partition that drops packets, then heals), then only the connections open at that moment
/// while operations wait on the server (its host gone without a word, another one answering
/// at its address): `/readyz` and the API say 503 within the store's bound, a write that gets
/// no answer is asked again on a new connection, and every job finishes with one Suno task
/// and one render.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_costs_the_query_timeout_not_a_hang() {
    let pg = TestSchema::new().await;
    let relay = Relay::start(pg_socket_addr()).await;
    // A transaction left open on a connection that stopped answering holds its job's row until
    // the server ends it (`idle_in_transaction_session_timeout`, encore's default 10 s; each
    // write queued behind it on another such connection holds it as long again): 1 s here.
    let mut target = url::Url::parse(&pg.target_at(Some(relay.addr))).unwrap();
    let options = format!(
        "-c search_path={} -c idle_in_transaction_session_timeout=1s",
        pg.name()
    );
    target
        .query_pairs_mut()
        .clear()
        .append_pair("options", &options);
    let service = service(Options {
        store: Some(target.to_string()),
        store_options: StoreOptions {
            busy_timeout: Duration::from_millis(100),
            acquire_timeout: Duration::from_millis(200),
            query_timeout: Duration::from_millis(500),
            ..StoreOptions::default()
        },
        lease_ttl: Duration::from_secs(5),
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        let (status, created) = service.submit(&job_body(), None).await;
        assert_eq!(status, 201, "{created:#}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let start = Instant::now();
    while service.job(&ids[0]).await["status"] != "running" {
        assert!(start.elapsed() < Duration::from_secs(5), "no job runs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Every connection stalls, then the partition heals.
    let stalled_at = now_millis();
    relay.stall();
    let start = Instant::now();
    assert_eq!(readyz(&service).await, 503);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(1500), "/readyz took {took:?}");
    let start = Instant::now();
    let response = service
        .request(reqwest::Method::GET, &format!("/v1/jobs/{}", ids[0]))
        .send()
        .await
        .unwrap();
    let took = start.elapsed();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store.unavailable", "{body:#}");
    assert!(
        took < Duration::from_millis(1500),
        "a job read took {took:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restored_at = now_millis();
    relay.restore();
    wait_ready(&service, 200, Duration::from_secs(10)).await;

    // Operations wait on the server (the jobs table locked) when the connections open now stop
    // answering for good; new ones are relayed. Without the bound those operations, and the
    // runs behind them, would wait as long as the kernel does.
    let mut lock = pg_admin().await;
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query(&format!(
        "LOCK TABLE {}.jobs IN ACCESS EXCLUSIVE MODE",
        pg.name()
    ))
    .execute(&mut lock)
    .await
    .unwrap();
    let start = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND relation = '{}.jobs'::regclass",
            pg.name()
        ))
        .fetch_one(&mut lock)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "nothing waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let unfinished = {
        let mut n = 0;
        for id in &ids {
            let status: String = sqlx::query_scalar(&format!(
                "SELECT status FROM {}.jobs WHERE id = $1",
                pg.name()
            ))
            .bind(id)
            .fetch_one(&mut lock)
            .await
            .unwrap();
            n += usize::from(status != "succeeded");
        }
        n
    };
    relay.stall_open_connections();
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let _ = lock.close().await;
    assert!(unfinished > 0, "every job had finished already");

    let across = billed_once_each(&service, &pg, &ids, stalled_at, restored_at).await;
    assert!(across >= 1, "no run was under way across the stall");
    service.stop().await;
    relay.restore();
}
