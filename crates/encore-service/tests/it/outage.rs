//! `encore serve` on PostgreSQL through a relay that the test cuts and restores: a lost
//! database connection pauses the jobs (every write is asked again while the lease may be
//! valid and for minutes past it; a fenced write is refused if another runner took over), `/readyz` says 503 while
//! the store does not answer, and every job then finishes with one Suno task and one render.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use encore_pipeline::job::now_millis;
use encore_sim::JobKind;
use encore_store::{JobId, Store};

use crate::pg::{Relay, TestSchema, pg_socket_addr};
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

    for id in &ids {
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

    // Runs were under way across the long outage: claimed before it, finished after it.
    let store = Store::open(&pg.target()).await.unwrap();
    let mut across = 0;
    for id in &ids {
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
        if claimed.is_some_and(|at| at < cut_at) && finished.is_some_and(|at| at > restored_at) {
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
    assert!(across >= 1, "no run was under way across the outage");
    service.stop().await;
}
