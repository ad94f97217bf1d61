//! The job store against the peer a user would pick instead, in one run: claims and step writes
//! per second of `encore-store` on an SQLite file and on PostgreSQL, and the same
//! claim-and-complete loop with `apalis` + `apalis-sql` on the same PostgreSQL server. Each
//! has a database of its own, dropped afterwards ([`crate::pg`]).
//!
//! The loops: `JOBS` queued jobs
//! claimed (`claim_next`, a leased `FOR UPDATE SKIP LOCKED` claim on PostgreSQL) and completed
//! (`set_succeeded`) by 1 and by `CLAIMERS` tasks until none is left; then `STEP_WRITES` step
//! writes (start and finish of free steps, alternating) by 1 and by `CLAIMERS` leases at once.
//!
//! apalis: `JOBS` jobs pushed, then 1 and `CLAIMERS` apalis workers (each its own poller and
//! connection use) drain them; a job counts when its acknowledgement (`status = 'Done'`) is in
//! the table. apalis fetches `buffer_size` jobs per poll tick and waits `poll_interval` between
//! ticks (defaults 10 and 100 ms: at most 100 jobs/s per worker by design); it is run with
//! `buffer_size` 1 and `poll_interval` 1 ms, one claim per fetch like `claim_next`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use apalis::prelude::{Data, Monitor, WorkerBuilder, WorkerFactoryFn as _};
use apalis_sql::Config as ApalisConfig;
use apalis_sql::postgres::{PgPool, PostgresStorage};
use encore_pipeline::{Journal as _, StepName};
use encore_store::{NewJob, Origin, Store, StoreOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::pg::TempDatabase;
use crate::report::{StoreRow, StoreThroughput};
use crate::service::Progress;

const JOBS: usize = 400;
const CLAIMERS: usize = 4;
const STEP_WRITES: usize = 400;
/// The longest one loop may take.
const LIMIT: Duration = Duration::from_secs(120);

/// Measures the three rows.
pub async fn store(quick: bool, progress: Progress<'_>) -> anyhow::Result<StoreThroughput> {
    let jobs = if quick { 100 } else { JOBS };
    let writes = if quick { 100 } else { STEP_WRITES };
    let mut rows = Vec::new();

    progress("service: store on SQLite".to_owned());
    let dir = tempfile::tempdir()?;
    let sqlite = dir.path().join("jobs.db");
    rows.push(
        encore_row(
            "encore-store on SQLite",
            &sqlite.to_string_lossy(),
            jobs,
            writes,
        )
        .await?,
    );

    progress("service: store on PostgreSQL".to_owned());
    let db = TempDatabase::create("store").await?;
    let measured = encore_row("encore-store on PostgreSQL", &db.url, jobs, writes).await;
    db.drop_now().await?;
    rows.push(measured?);

    progress("service: apalis-sql on PostgreSQL".to_owned());
    let db = TempDatabase::create("apalis").await?;
    let measured = apalis_row(&db.url, jobs).await;
    db.drop_now().await?;
    rows.push(measured?);

    Ok(StoreThroughput {
        jobs,
        claimers: CLAIMERS,
        rows,
        note: format!(
            "encore-store: claim_next (a lease with owner, expiry and fencing number) + set_succeeded; \
             step writes = Lease::start + Lease::finish, each a fenced write in its own transaction ({writes} per job).\n\
             apalis 0.7 + apalis-sql (postgres, sqlx 0.8 like encore-store): {jobs} jobs pushed, drained by 1 and {CLAIMERS} apalis workers \
             (buffer_size 1, poll_interval 1 ms: one claim per fetch); done = its ack written (status Done). Own database each, dropped after."
        ),
    })
}

async fn encore_row(
    name: &str,
    target: &str,
    jobs: usize,
    writes: usize,
) -> anyhow::Result<StoreRow> {
    let store = Store::open_with(
        target,
        StoreOptions {
            max_connections: CLAIMERS as u32 + 1,
            ..StoreOptions::default()
        },
    )
    .await?;
    let measured = async {
        Ok::<_, anyhow::Error>(StoreRow {
            backend: name.to_owned(),
            claims_per_s_1: claims_per_sec(&store, 1, jobs).await?,
            claims_per_s_n: claims_per_sec(&store, CLAIMERS, jobs).await?,
            step_writes_per_s_1: Some(step_writes_per_sec(&store, 1, writes).await?),
            step_writes_per_s_n: Some(step_writes_per_sec(&store, CLAIMERS, writes).await?),
        })
    }
    .await;
    store.close().await;
    measured
}

async fn queue(store: &Store, n: usize) -> anyhow::Result<()> {
    for i in 0..n {
        store
            .create_job(&NewJob::new(
                Origin::Api,
                json!({"business": "a bakery", "n": i}),
            ))
            .await?;
    }
    Ok(())
}

/// `claimers` tasks claim `jobs` queued jobs until none is left.
async fn claims_per_sec(store: &Store, claimers: usize, jobs: usize) -> anyhow::Result<f64> {
    queue(store, jobs).await?;
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
                if started.elapsed() > LIMIT {
                    break;
                }
            }
            Ok::<_, encore_store::Error>(claimed)
        }));
    }
    let mut claimed = 0;
    for task in tasks {
        claimed += task.await.context("a claimer")??;
    }
    ensure!(claimed == jobs, "{claimed} of {jobs} jobs claimed");
    Ok(claimed as f64 / started.elapsed().as_secs_f64())
}

/// `jobs` leases journal `writes` step writes each (start and finish alternating), at once.
async fn step_writes_per_sec(store: &Store, jobs: usize, writes: usize) -> anyhow::Result<f64> {
    queue(store, jobs).await?;
    let mut leases = Vec::new();
    for n in 0..jobs {
        leases.push(
            store
                .claim_next(&format!("writer-{n}"), Duration::from_secs(600))
                .await?
                .context("a queued job")?,
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
            for i in 0..writes / 2 {
                let step = free[i % free.len()];
                lease.start(step, None).await?;
                lease.finish(step, None, &result).await?;
            }
            Ok::<_, anyhow::Error>((lease, writes / 2 * 2))
        }));
    }
    let mut written = 0;
    for task in tasks {
        let (lease, n) = task.await.context("a writer")??;
        written += n;
        lease.set_succeeded(&json!({})).await?;
    }
    Ok(written as f64 / started.elapsed().as_secs_f64())
}

/// The peer's job: the same payload as encore's.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BenchJob {
    business: String,
    n: usize,
}

async fn apalis_job(_job: BenchJob, done: Data<Arc<AtomicUsize>>) -> Result<(), std::io::Error> {
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

async fn apalis_row(url: &str, jobs: usize) -> anyhow::Result<StoreRow> {
    let pool = PgPool::connect(url).await?;
    PostgresStorage::setup(&pool).await?;
    let one = apalis_claims_per_sec(&pool, 1, jobs).await;
    let many = apalis_claims_per_sec(&pool, CLAIMERS, jobs).await;
    pool.close().await;
    Ok(StoreRow {
        backend: "apalis-sql on PostgreSQL".to_owned(),
        claims_per_s_1: one?,
        claims_per_s_n: many?,
        step_writes_per_s_1: None,
        step_writes_per_s_n: None,
    })
}

async fn apalis_claims_per_sec(pool: &PgPool, workers: usize, jobs: usize) -> anyhow::Result<f64> {
    use apalis::prelude::Storage as _;

    let namespace = format!("encore-bench-{workers}");
    let config = ApalisConfig::new(&namespace)
        .set_buffer_size(1)
        .set_poll_interval(Duration::from_millis(1));
    let mut storage: PostgresStorage<BenchJob> =
        PostgresStorage::new_with_config(pool.clone(), config);
    for n in 0..jobs {
        storage
            .push(BenchJob {
                business: "a bakery".to_owned(),
                n,
            })
            .await?;
    }
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut monitor = Monitor::new();
    for w in 0..workers {
        monitor = monitor.register(
            WorkerBuilder::new(format!("{namespace}-worker-{w}"))
                .data(Arc::clone(&done))
                .backend(storage.clone())
                .build_fn(apalis_job),
        );
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(monitor.run_with_signal(async move {
        let _ = stopped.await;
        Ok(())
    }));
    // Done when every job's acknowledgement is stored.
    let finished = loop {
        let acked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'",
        )
        .bind(&namespace)
        .fetch_one(pool)
        .await?;
        if acked as usize >= jobs {
            break Ok(started.elapsed());
        }
        if started.elapsed() > LIMIT {
            break Err(anyhow::anyhow!(
                "apalis acknowledged {acked} of {jobs} jobs within {} s",
                LIMIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    let elapsed = finished?;
    ensure!(
        done.load(Ordering::Relaxed) >= jobs,
        "apalis ran {} of {jobs} jobs",
        done.load(Ordering::Relaxed)
    );
    Ok(jobs as f64 / elapsed.as_secs_f64())
}
