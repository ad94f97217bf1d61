//! Jobs in flight per worker: one `encore serve` process (a child process, see
//! [`crate::worker`]) on an SQLite store, driving 1,000 concurrent jobs on the simulator at a
//! fast time scale, with the quotas off (one account's Suno quota alone would take 500 s for
//! 1,000 songs: this measures the worker, not the account).
//!
//! - **completion**: jobs that succeeded, and the paid jobs the simulator created for them;
//! - **peak RSS**: the worker's `VmHWM` at the end, against its `VmRSS` before the first job;
//! - **heap**: the worker counts its live heap bytes (the counting allocator, on for the whole
//!   worker process) and writes the count every 20 ms; sampled with the number of `running`
//!   jobs every 250 ms, the heap per in-flight job is (heap − idle heap) ÷ running jobs at the
//!   sample with the most jobs running;
//! - **CPU per job**: the worker's `utime + stime` (`/proc/<pid>/stat`) over the batch ÷ jobs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use encore_pipeline::JobStatus;
use encore_sim::{Scenario, SimConfig, SimState};
use encore_store::Store;

use crate::report::InFlight;
use crate::service::Progress;
use crate::service::{count, list, submit};
use crate::worker::{Spec, Worker};

const MIB: f64 = 1024.0 * 1024.0;
/// The simulator's time scale: a job's chain takes ≈ 36–46 s, longer than one worker takes to
/// claim 1,000 jobs (it claims one at a time, each claim a write that queues behind the running
/// jobs' step writes on SQLite), so that all of them can be in flight at once.
const TIME_SCALE: f64 = 0.2;
/// The longest the batch may take.
const LIMIT: Duration = Duration::from_secs(300);

/// Why jobs did not succeed: `status: code: message` (the message cut at 120 characters) →
/// how many.
async fn reasons(store: &Store) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut reasons = BTreeMap::new();
    for status in [
        JobStatus::Failed,
        JobStatus::NeedsAttention,
        JobStatus::Cancelled,
    ] {
        for job in list(store, status).await? {
            let why = match (&job.error, &job.attention) {
                (Some(e), _) => format!("{}: {}", e.code, e.message),
                (None, Some(a)) => a.reason.clone(),
                (None, None) => String::new(),
            };
            let why: String = why.chars().take(120).collect();
            *reasons
                .entry(format!("{}: {why}", status.as_str()))
                .or_default() += 1;
        }
    }
    Ok(reasons)
}

/// Runs the batch.
pub async fn in_flight(
    http: &reqwest::Client,
    quick: bool,
    progress: Progress<'_>,
) -> anyhow::Result<InFlight> {
    let jobs = if quick { 200 } else { 1000 };
    let time_scale = TIME_SCALE;
    progress(format!(
        "service: {jobs} concurrent jobs on one encore serve (time scale {time_scale})"
    ));
    let sim = encore_sim::serve(
        SimState::new(SimConfig {
            seed: 42,
            time_scale,
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
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("jobs.db").to_string_lossy().into_owned();
    let worker = Worker::spawn(
        &Spec {
            sim_url: sim.base_url(),
            db: db.clone(),
            callbacks: true,
            concurrency: jobs,
            time_scale,
            quotas: false,
            claim_interval: Duration::from_secs(1),
            count_heap: true,
        },
        http,
    )
    .await?;
    let store = Store::open(&db).await?;
    let measured = measure(http, &worker, &store, jobs).await;
    let idle_end = worker.stats();
    let tail = worker.stderr_tail();
    let stopped = worker.stop().await;
    let succeeded = count(&store, JobStatus::Succeeded).await;
    let why = reasons(&store).await;
    store.close().await;
    let ledger = sim.ledger();
    sim.shutdown().await;
    let mut row = measured.with_context(|| format!("encore serve said: {tail}"))?;
    stopped?;
    let end = idle_end?;
    row.succeeded = succeeded?;
    row.not_succeeded_reasons = why?;
    row.not_succeeded = jobs - row.succeeded;
    row.peak_rss_mib = end.peak_rss as f64 / MIB;
    row.rss_per_in_flight_kib =
        (end.peak_rss as f64 - row.idle_rss_mib * MIB) / 1024.0 / row.peak_in_flight.max(1) as f64;
    row.cpu_ms_per_job = row.cpu_s * 1e3 / row.succeeded.max(1) as f64;
    row.billed = [ledger.suno_tasks, ledger.creatomate_renders];
    progress(format!(
        "service: {}/{} succeeded, peak {} in flight, VmHWM {:.0} MiB, {:.2} ms CPU per job",
        row.succeeded, jobs, row.peak_in_flight, row.peak_rss_mib, row.cpu_ms_per_job
    ));
    Ok(row)
}

async fn measure(
    http: &reqwest::Client,
    worker: &Worker,
    store: &Store,
    jobs: usize,
) -> anyhow::Result<InFlight> {
    // Let the freshly started worker settle, then take its idle figures.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = worker.stats()?;
    let idle_heap = worker.heap().context("the worker writes no heap count")?;
    let started = Instant::now();
    let submitting = {
        let http = http.clone();
        let bases = vec![worker.base.clone()];
        tokio::spawn(async move { submit(&http, &bases, jobs, 64).await })
    };
    let mut submit_s = None;
    let mut peak = (0_usize, idle_heap);
    let mut submitting = Some(submitting);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let heap = worker.heap().unwrap_or(idle_heap);
        let running = count(store, JobStatus::Running).await?;
        if running > peak.0 {
            peak = (running, heap);
        }
        if let Some(task) = submitting.take_if(|t| t.is_finished()) {
            let ids = task.await.context("the submitting task")??;
            ensure!(ids.len() == jobs, "{} of {jobs} jobs submitted", ids.len());
            submit_s = Some(started.elapsed().as_secs_f64());
        }
        if submit_s.is_some() && running == 0 && count(store, JobStatus::Queued).await? == 0 {
            break;
        }
        ensure!(
            started.elapsed() < LIMIT,
            "the jobs were not done within {} s ({running} running)",
            LIMIT.as_secs()
        );
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let end = worker.stats()?;
    Ok(InFlight {
        how: format!(
            "one `encore serve` child process (pid {}, this binary re-executed as encore), SQLite store, callbacks on",
            worker.pid()
        ),
        jobs,
        concurrency: jobs,
        time_scale: TIME_SCALE,
        succeeded: 0,
        not_succeeded: 0,
        peak_in_flight: peak.0,
        elapsed_s,
        submit_s: submit_s.unwrap_or(elapsed_s),
        idle_rss_mib: idle.rss as f64 / MIB,
        peak_rss_mib: 0.0,
        rss_per_in_flight_kib: 0.0,
        idle_heap_mib: idle_heap as f64 / MIB,
        heap_at_peak_mib: peak.1 as f64 / MIB,
        heap_per_in_flight_kib: (peak.1 - idle_heap) as f64 / 1024.0 / peak.0.max(1) as f64,
        cpu_s: end.cpu_s - idle.cpu_s,
        cpu_ms_per_job: 0.0,
        billed: [0, 0],
        not_succeeded_reasons: BTreeMap::new(),
    })
}
