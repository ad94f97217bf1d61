//! How fast the store claims jobs and journals steps, on an SQLite file and on PostgreSQL.
//!
//! ```sh
//! cargo run -p encore-store --release --example throughput
//! ENCORE_TEST_PG_URL=postgres://user:pw@host/db cargo run -p encore-store --release --example throughput
//! ```
//!
//! PostgreSQL is reached at `ENCORE_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), in a schema of its own that is dropped
//! afterwards. Figures depend on the disk (SQLite syncs every commit) and the machine.

use std::time::{Duration, Instant};

use encore_pipeline::{Journal, StepName};
use encore_store::{NewJob, Origin, Store, StoreOptions};
use serde_json::json;
use sqlx::Connection;

const JOBS: usize = 400;
const CLAIMERS: usize = 4;
const STEP_WRITES: usize = 400;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "backend     claims/s (1 claimer)  claims/s ({CLAIMERS} claimers)  step writes/s (1 job)  step writes/s ({CLAIMERS} jobs)"
    );

    let dir = tempfile::tempdir()?;
    let sqlite = dir.path().join("jobs.db");
    measure("sqlite", sqlite.to_str().unwrap()).await?;

    let base = std::env::var("ENCORE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let schema = format!("encore_throughput_{}", std::process::id());
    let mut admin = sqlx::postgres::PgConnection::connect(&base).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await?;
    let mut url = url::Url::parse(&base)?;
    url.query_pairs_mut()
        .append_pair("options", &format!("-c search_path={schema}"));
    let measured = measure("postgres", url.as_str()).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await?;
    measured
}

async fn measure(name: &str, target: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open_with(
        target,
        StoreOptions {
            max_connections: CLAIMERS as u32 + 1,
            ..StoreOptions::default()
        },
    )
    .await?;
    let one = claims_per_sec(&store, 1).await?;
    let many = claims_per_sec(&store, CLAIMERS).await?;
    let writes_one = step_writes_per_sec(&store, 1).await?;
    let writes_many = step_writes_per_sec(&store, CLAIMERS).await?;
    println!("{name:<10} {one:>22.0} {many:>22.0} {writes_one:>22.0} {writes_many:>22.0}");
    store.close().await;
    Ok(())
}

async fn queue(store: &Store, n: usize) -> Result<(), encore_store::Error> {
    for _ in 0..n {
        store
            .create_job(&NewJob::new(Origin::Api, json!({"business": "a bakery"})))
            .await?;
    }
    Ok(())
}

/// `claimers` tasks claim `JOBS` queued jobs until none is left.
async fn claims_per_sec(store: &Store, claimers: usize) -> Result<f64, encore_store::Error> {
    queue(store, JOBS).await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..claimers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut claimed = 0_usize;
            while let Some(lease) = store
                .claim_next(&format!("bench-{n}"), Duration::from_secs(600))
                .await?
            {
                lease.set_succeeded(&json!({})).await?;
                claimed += 1;
            }
            Ok::<_, encore_store::Error>(claimed)
        }));
    }
    let mut claimed = 0;
    for task in tasks {
        claimed += task.await.expect("claimer")?;
    }
    assert_eq!(claimed, JOBS);
    // Each claim was followed by its final status write; the rate counts claims.
    Ok(claimed as f64 / started.elapsed().as_secs_f64())
}

/// `jobs` leases journal `STEP_WRITES` step writes each (start and finish alternating), at once.
async fn step_writes_per_sec(store: &Store, jobs: usize) -> Result<f64, encore_store::Error> {
    queue(store, jobs).await?;
    let mut leases = Vec::new();
    for n in 0..jobs {
        leases.push(
            store
                .claim_next(&format!("writer-{n}"), Duration::from_secs(600))
                .await?
                .expect("a queued job"),
        );
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for lease in leases {
        tasks.push(tokio::spawn(async move {
            let result = json!({"task_id": "suno-1"});
            // Billed steps are never started again once done: free steps only.
            let free: Vec<StepName> = StepName::ALL
                .into_iter()
                .filter(|s| !s.is_billed())
                .collect();
            for i in 0..STEP_WRITES / 2 {
                let step = free[i % free.len()];
                lease.start(step, None).await.expect("start");
                lease.finish(step, None, &result).await.expect("finish");
            }
            (lease, STEP_WRITES / 2 * 2)
        }));
    }
    let mut written = 0;
    for task in tasks {
        let (lease, writes) = task.await.expect("writer");
        written += writes;
        lease.set_succeeded(&json!({})).await?;
    }
    Ok(written as f64 / started.elapsed().as_secs_f64())
}
