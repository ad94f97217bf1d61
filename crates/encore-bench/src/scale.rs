//! Scale-out: jobs per minute with 1, 2 and 4 `encore serve` worker processes (see
//! [`crate::worker`]) sharing one PostgreSQL database, against one simulator.
//!
//! Each point: a fresh database ([`crate::pg`]) and simulator (`calm`, time scale 0.01, rate
//! limits off — with one account's quotas on, Suno's 20 songs / 10 s would cap every point at
//! 120 jobs/min; callbacks on), `workers` processes with the default `--concurrency` (16), the
//! same number of jobs submitted at once with `POST /v1/jobs` round-robin over the workers (a
//! load balancer's spread). Jobs per minute = succeeded ÷ (last success − first creation, from
//! the store) × 60. CPU: the workers' `utime + stime`, this process's (the simulator and the
//! submitting client), and the whole machine's busy cores from `/proc/stat` (PostgreSQL and
//! anyone else on the box included).

use std::time::Duration;

use std::collections::HashMap;

use anyhow::Context as _;
use encore_pipeline::JobStatus;
use encore_sim::{Scenario, SimConfig, SimState};
use encore_store::Store;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

use crate::pg::TempDatabase;
use crate::report::{ScaleOut, ScaleRow};
use crate::service::Progress;
use crate::service::{Ideal, submit, wait_all};
use crate::worker::{Spec, Worker, proc_stats};

/// The simulator's time scale: a job's chain takes ≈ 1.8–2.3 s.
const TIME_SCALE: f64 = 0.01;
/// `encore serve`'s default `--concurrency`.
const CONCURRENCY: usize = 16;

/// Measures 1, 2 and 4 workers.
pub async fn scale_out(
    http: &reqwest::Client,
    quick: bool,
    progress: Progress<'_>,
) -> anyhow::Result<ScaleOut> {
    let jobs = if quick { 64 } else { 320 };
    let mut rows: Vec<ScaleRow> = Vec::new();
    for workers in [1, 2, 4] {
        progress(format!(
            "service: scale-out, {workers} worker(s), {jobs} jobs on one PostgreSQL"
        ));
        let db = TempDatabase::create(&format!("scale{workers}")).await?;
        let measured = point(http, &db.url, workers, jobs).await;
        db.drop_now().await?;
        let mut row = measured?;
        row.speedup = rows
            .first()
            .map_or(1.0, |one| row.jobs_per_min / one.jobs_per_min);
        progress(format!(
            "service: {workers} worker(s): {:.0} jobs/min, {:.2} cores busy",
            row.jobs_per_min, row.machine_cores_busy
        ));
        rows.push(row);
    }
    Ok(ScaleOut {
        concurrency_per_worker: CONCURRENCY,
        time_scale: TIME_SCALE,
        rows,
        note: format!(
            "each point: fresh database and simulator (calm, rate limits off, callbacks on), {jobs} jobs submitted at once round-robin over the workers;\n\
             jobs/min = succeeded ÷ (last success − first creation) × 60; bound = workers × concurrency × 60 s ÷ a job's mean zero-overhead chain (from the ledger), the most the slots allow; worker CPU = utime+stime of the worker processes; \
             sim CPU = this benchmark's process (simulator + client); PG CPU = the PostgreSQL backends serving the database (the benchmark's own status reads included: two list queries every 250 ms);\n\
             own cores = (worker + sim + PG CPU) ÷ time; machine cores busy = the whole machine (/proc/stat), other users of the box included"
        ),
    })
}

async fn point(
    http: &reqwest::Client,
    url: &str,
    workers: usize,
    jobs: usize,
) -> anyhow::Result<ScaleRow> {
    let sim = encore_sim::serve(
        SimState::new(SimConfig {
            seed: 42,
            time_scale: TIME_SCALE,
            scenario: Scenario::named("calm").context("calm ships")?,
            rate_limits: false,
            callbacks: true,
            suno_credits: crate::service::SIM_CREDITS,
            creatomate_credits: crate::service::SIM_CREDITS,
            ..SimConfig::default()
        }),
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let spec = Spec {
        sim_url: sim.base_url(),
        db: url.to_owned(),
        callbacks: true,
        concurrency: CONCURRENCY,
        time_scale: TIME_SCALE,
        quotas: false,
        claim_interval: Duration::from_secs(1),
        count_heap: false,
    };
    let mut running = Vec::new();
    let mut spawned = Ok(());
    for _ in 0..workers {
        match Worker::spawn(&spec, http).await {
            Ok(w) => running.push(w),
            Err(e) => {
                spawned = Err(e);
                break;
            }
        }
    }
    let store = Store::open(url).await;
    let measured = async {
        spawned?;
        let store = store.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let before: Vec<_> = running
            .iter()
            .map(Worker::stats)
            .collect::<Result<_, _>>()?;
        let me_before = proc_stats(std::process::id())?;
        let pg_before = pg_backends_cpu(url).await?;
        let machine_before = machine_busy()?;
        let bases: Vec<String> = running.iter().map(|w| w.base.clone()).collect();
        let ids = submit(http, &bases, jobs, 64).await?;
        let details = wait_all(store, &ids, Duration::from_secs(300)).await?;
        let machine_after = machine_busy()?;
        let me_after = proc_stats(std::process::id())?;
        let pg_after = pg_backends_cpu(url).await?;
        let pg_cpu_s: f64 = pg_after
            .iter()
            .map(|(pid, cpu)| cpu - pg_before.get(pid).copied().unwrap_or(0.0))
            .sum();
        let after: Vec<_> = running
            .iter()
            .map(Worker::stats)
            .collect::<Result<_, _>>()?;
        let succeeded: Vec<_> = details
            .iter()
            .filter(|d| d.job.status == JobStatus::Succeeded)
            .collect();
        let first = details.iter().map(|d| d.job.created_at).min().unwrap_or(0);
        let last = succeeded
            .iter()
            .map(|d| d.job.updated_at)
            .max()
            .unwrap_or(first);
        let elapsed_s = ((last - first) as f64 / 1e3).max(1e-3);
        let worker_cpu_s: f64 = after
            .iter()
            .zip(&before)
            .map(|(a, b)| a.cpu_s - b.cpu_s)
            .sum();
        let row = ScaleRow {
            workers,
            jobs,
            succeeded: succeeded.len(),
            elapsed_s,
            jobs_per_min: succeeded.len() as f64 / elapsed_s * 60.0,
            speedup: 1.0,
            worker_cpu_s,
            worker_cpu_ms_per_job: worker_cpu_s * 1e3 / succeeded.len().max(1) as f64,
            sim_cpu_s: me_after.cpu_s - me_before.cpu_s,
            pg_cpu_s,
            own_cores_busy: (worker_cpu_s + me_after.cpu_s - me_before.cpu_s + pg_cpu_s)
                / elapsed_s,
            machine_cores_busy: (machine_after.0 - machine_before.0)
                / (machine_after.1 - machine_before.1).max(1.0)
                * machine_after.2 as f64,
            billed_per_job: [0.0, 0.0],
            bound_per_min: 0.0,
            of_bound: 0.0,
        };
        Ok::<_, anyhow::Error>((row, details))
    }
    .await;
    let mut tails = Vec::new();
    for worker in running {
        tails.push(worker.stderr_tail());
        let _ = worker.stop().await;
    }
    if let Ok(store) = store {
        store.close().await;
    }
    let ledger = sim.ledger();
    sim.shutdown().await;
    let (mut row, details) =
        measured.with_context(|| format!("the workers said: {}", tails.join(" || ")))?;
    // The concurrency bound: every slot busy with zero overhead, one job after another.
    if let Some(ideal) = Ideal::compute(&details, &ledger)? {
        row.bound_per_min = (workers * CONCURRENCY) as f64 * 60_000.0 / ideal.mean_chain_ms;
        row.of_bound = row.jobs_per_min / row.bound_per_min;
    }
    let n = row.succeeded.max(1) as f64;
    row.billed_per_job = [
        ledger.suno_tasks as f64 / n,
        ledger.creatomate_renders as f64 / n,
    ];
    Ok(row)
}

/// CPU seconds so far of each PostgreSQL backend connected to the database at `url` (this
/// query's own excepted), by pid.
async fn pg_backends_cpu(url: &str) -> anyhow::Result<HashMap<i32, f64>> {
    let mut conn = PgConnection::connect(url).await?;
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    // A backend may have exited in between: it is left out.
    Ok(pids
        .into_iter()
        .filter_map(|pid| Some((pid, proc_stats(pid as u32).ok()?.cpu_s)))
        .collect())
}

/// (busy ticks, all ticks, cores) of the whole machine, from the first line of `/proc/stat`.
fn machine_busy() -> anyhow::Result<(f64, f64, usize)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cores = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    let line = stat.lines().next().context("an empty /proc/stat")?;
    let fields: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let all: f64 = fields.iter().take(8).sum();
    // idle and iowait are fields 4 and 5.
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    Ok((all - idle, all, cores.max(1)))
}
