//! The service measured as an operator runs it: `encore serve` ([`crate::worker`]) against the
//! simulator, jobs submitted over its HTTP API, the simulator's ledger read afterwards.
//!
//! One *batch* = a fresh simulator (seed 42, a scenario, rate limits on, callbacks on or off),
//! a fresh job store, one `encore serve` worker, `jobs` jobs submitted at once with
//! `POST /v1/jobs`, then waited for in the store (every loop bounded in time). From the batch:
//!
//! - **requests per completed job**: every request the simulator received ÷ jobs that succeeded;
//!   callbacks are counted apart (they are requests the provider makes to encore, not quota).
//! - **quota headroom**: the most requests that fell in any 10 s window (sliding over the
//!   ledger's arrival times), for Suno generate (the account's limit: 20 / 10 s) and for all of
//!   Creatomate (30 / 10 s); and the refusals the simulator's own limiter answered.
//! - **makespan against the exact ideal** ([`Ideal`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use encore_pipeline::{JobStatus, StepName};
use encore_sim::{Ledger, RouteId, Scenario, SimConfig, SimState, Upstream};
use encore_store::{Job, JobDetail, JobId, JobQuery, Store};
use serde::Deserialize;
use tokio::task::JoinSet;

use crate::report::ServiceBatch;
use crate::worker::{Spec, Worker};

/// Where progress lines go.
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

/// Credits of the simulated accounts: enough for every job of a run (the simulator's default
/// balance runs out after 833 songs).
pub const SIM_CREDITS: u64 = 100_000_000;

/// The per-account quota windows, ms.
pub const QUOTA_WINDOW_MS: u64 = 10_000;
/// Suno's generate quota per window.
pub const SUNO_GENERATE_QUOTA: usize = 20;
/// Creatomate's quota per window (every request, polling included).
pub const CREATOMATE_QUOTA: usize = 30;

/// Jobs per batch: few enough that the account quotas do not bind with callbacks (10 template
/// reads, 10 renders and their reads fall in different 10 s windows at this time scale).
const BATCH_JOBS: usize = 10;
/// The batches' time scale: a job's chain (≈ 150–180 s of Suno and 30–50 s of rendering
/// upstream) takes ≈ 18–23 s. The quotas' 10 s windows are not scaled, so a smaller scale would
/// squeeze 10 jobs' requests into one window.
const BATCH_TIME_SCALE: f64 = 0.1;

/// `calm` and `flaky`, each with callbacks and polling only.
pub async fn batches(
    http: &reqwest::Client,
    quick: bool,
    progress: Progress<'_>,
) -> anyhow::Result<Vec<ServiceBatch>> {
    let (jobs, time_scale) = if quick {
        (4, 0.05)
    } else {
        (BATCH_JOBS, BATCH_TIME_SCALE)
    };
    let mut rows = Vec::new();
    for scenario in ["calm", "flaky"] {
        for callbacks in [true, false] {
            let batch = Batch {
                scenario,
                callbacks,
                jobs,
                time_scale,
                pacing: true,
            };
            rows.push(run_batch(http, batch, progress).await?);
        }
    }
    // Diagnostic: the calm batch with callbacks again, without encore's client-side pacing.
    let batch = Batch {
        scenario: "calm",
        callbacks: true,
        jobs,
        time_scale,
        pacing: false,
    };
    rows.push(run_batch(http, batch, progress).await?);
    Ok(rows)
}

/// One batch to run.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// The simulator's scenario.
    pub scenario: &'static str,
    /// Callbacks on (a public URL) or polling only.
    pub callbacks: bool,
    /// Jobs submitted at once.
    pub jobs: usize,
    /// The simulator's time scale.
    pub time_scale: f64,
    /// encore's client-side rate limits (the pacing that keeps an account under its quotas).
    /// Off only in the diagnostic batch that shows what the pacing costs in makespan; the
    /// simulator enforces the quotas either way.
    pub pacing: bool,
}

/// The business inputs: one per job, all different (so no idempotency or cache can merge them).
pub fn job_body(i: usize) -> serde_json::Value {
    serde_json::json!({
        "business": format!("a neighbourhood bakery, shop number {i}, fresh salt bread every morning"),
        "name": format!("Haneul {i}"),
        "lang": "en",
    })
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// Submits `jobs` jobs with `POST /v1/jobs`, `parallel` at a time, round-robin over `bases`.
pub async fn submit(
    http: &reqwest::Client,
    bases: &[String],
    jobs: usize,
    parallel: usize,
) -> anyhow::Result<Vec<JobId>> {
    let mut ids = Vec::with_capacity(jobs);
    let mut set = JoinSet::new();
    let mut next = 0;
    while ids.len() < jobs {
        while next < jobs && set.len() < parallel {
            let url = format!("{}/v1/jobs", bases[next % bases.len()]);
            let body = job_body(next);
            let http = http.clone();
            set.spawn(async move {
                let answer = http
                    .post(url)
                    .json(&body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await?;
                let status = answer.status();
                if !status.is_success() {
                    bail!("POST /v1/jobs answered {status}: {}", answer.text().await?);
                }
                let created: Created = answer.json().await?;
                created
                    .id
                    .parse::<JobId>()
                    .map_err(|e| anyhow::anyhow!("job id {:?}: {e}", created.id))
            });
            next += 1;
        }
        match set.join_next().await {
            Some(result) => ids.push(result??),
            None => break,
        }
    }
    Ok(ids)
}

/// Whether a job's status is final for this benchmark.
pub fn is_final(status: JobStatus) -> bool {
    !matches!(status, JobStatus::Queued | JobStatus::Running)
}

/// Waits (at most `limit`) until every job is in a final status; returns their details.
///
/// Polls cheaply, with two list queries every 250 ms (the jobs still queued or running: the
/// store holds only this measurement's jobs), and reads each job's details once at the end, so
/// the waiting adds little to the load of the store being measured.
pub async fn wait_all(
    store: &Store,
    ids: &[JobId],
    limit: Duration,
) -> anyhow::Result<Vec<JobDetail>> {
    let started = Instant::now();
    loop {
        let left =
            count(store, JobStatus::Queued).await? + count(store, JobStatus::Running).await?;
        if left == 0 {
            break;
        }
        if started.elapsed() > limit {
            bail!(
                "{left} of {} jobs were not done within {} s",
                ids.len(),
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut details = Vec::with_capacity(ids.len());
    for id in ids {
        let detail = store.get_job(*id).await?;
        ensure!(
            is_final(detail.job.status),
            "job {id} is {}",
            detail.job.status.as_str()
        );
        details.push(detail);
    }
    Ok(details)
}

/// Jobs in `status` (every page).
pub async fn count(store: &Store, status: JobStatus) -> anyhow::Result<usize> {
    Ok(list(store, status).await?.len())
}

/// The jobs in `status` (every page, at most 100 pages).
pub async fn list(store: &Store, status: JobStatus) -> anyhow::Result<Vec<Job>> {
    let mut query = JobQuery {
        status: Some(status),
        limit: JobQuery::MAX_LIMIT,
        ..JobQuery::default()
    };
    let mut jobs = Vec::new();
    for _ in 0..100 {
        let page = store.list_jobs(&query).await?;
        jobs.extend(page.jobs);
        match page.next {
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    Ok(jobs)
}

/// The most of `times` (ms, any order) that fall in one window `[t, t + window)`.
pub fn peak_in_window(mut times: Vec<u64>, window: u64) -> usize {
    times.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// The makespan of a batch against its exact ideal.
///
/// Each job `j` was created (`POST /v1/jobs` stored it) at `c_j` and finished (its status became
/// `succeeded`) at `f_j`, both from the job store (ms). Each billed job the simulator created for
/// it — the Suno task of its `song.submit` step, the render of its `video.submit` step, and the
/// OpenAI response of `lyrics` when the step names it — has a processing time fixed when it was
/// created, read from the ledger: `p = ready_at_ms − at_ms` (OpenAI: 0). With zero overhead (every
/// request, callback, store write and wait instantaneous, each step starting the instant the one
/// before it is ready), job `j` would finish at `c_j + Σ p`: its *ideal finish*. Then
///
/// - `makespan = max f_j − min c_j`, `ideal = max (c_j + Σ p_j) − min c_j`;
/// - `overhead_j = (f_j − c_j) − Σ p_j`, the time job `j` spent on anything but the providers'
///   processing.
///
/// Jobs start at their own creation, so the time the batch took to submit is not overhead.
/// Only the billed jobs a job *used* are counted: a task or render that failed and was replaced
/// (not in `calm`) adds its time to the overhead, which makes the ratio pessimistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ideal {
    /// `max f_j − min c_j`, ms.
    pub makespan_ms: f64,
    /// `max (c_j + Σ p_j) − min c_j`, ms.
    pub ideal_ms: f64,
    /// The median of `overhead_j`, ms.
    pub overhead_median_ms: f64,
    /// The largest `overhead_j`, ms.
    pub overhead_max_ms: f64,
    /// The mean of `Σ p_j`: a job's chain with zero overhead, ms.
    pub mean_chain_ms: f64,
}

impl Ideal {
    /// Computes it from the succeeded jobs and the ledger; `None` without succeeded jobs.
    pub fn compute(jobs: &[JobDetail], ledger: &Ledger) -> anyhow::Result<Option<Ideal>> {
        let mut first_created = i64::MAX;
        let mut last_finish = i64::MIN;
        let mut last_ideal = f64::MIN;
        let mut overheads = Vec::new();
        let mut chains = 0.0;
        for detail in jobs.iter().filter(|d| d.job.status == JobStatus::Succeeded) {
            let created = detail.job.created_at;
            let finished = detail.job.updated_at;
            let mut processing = 0.0;
            for step in [
                StepName::Lyrics,
                StepName::SongSubmit,
                StepName::VideoSubmit,
            ] {
                let external = detail
                    .steps
                    .iter()
                    .find(|s| s.name == step)
                    .and_then(|s| s.external_id.as_deref());
                let billed = external.and_then(|id| ledger.job(id));
                match (step, billed) {
                    (_, Some(b)) => {
                        let ready = b
                            .ready_at_ms
                            .with_context(|| format!("billed job {} has no ready time", b.id))?;
                        processing += ready.saturating_sub(b.at_ms) as f64;
                    }
                    // The lyrics step need not name its response; OpenAI's processing is 0.
                    (StepName::Lyrics, None) => {}
                    (_, None) => bail!(
                        "job {} succeeded but its {} names no billed job of the simulator",
                        detail.job.id,
                        step.as_str()
                    ),
                }
            }
            first_created = first_created.min(created);
            last_finish = last_finish.max(finished);
            last_ideal = last_ideal.max(created as f64 + processing);
            overheads.push((finished - created) as f64 - processing);
            chains += processing;
        }
        if overheads.is_empty() {
            return Ok(None);
        }
        overheads.sort_by(f64::total_cmp);
        Ok(Some(Ideal {
            makespan_ms: (last_finish - first_created) as f64,
            ideal_ms: last_ideal - first_created as f64,
            overhead_median_ms: overheads[overheads.len() / 2],
            overhead_max_ms: overheads[overheads.len() - 1],
            mean_chain_ms: chains / overheads.len() as f64,
        }))
    }
}

/// Runs one batch.
pub async fn run_batch(
    http: &reqwest::Client,
    batch: Batch,
    progress: Progress<'_>,
) -> anyhow::Result<ServiceBatch> {
    let sim = encore_sim::serve(
        SimState::new(SimConfig {
            seed: 42,
            time_scale: batch.time_scale,
            scenario: Scenario::named(batch.scenario)
                .with_context(|| format!("the {} scenario ships", batch.scenario))?,
            rate_limits: true,
            callbacks: batch.callbacks,
            suno_credits: SIM_CREDITS,
            creatomate_credits: SIM_CREDITS,
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
            callbacks: batch.callbacks,
            concurrency: batch.jobs.max(16),
            time_scale: batch.time_scale,
            quotas: batch.pacing,
            claim_interval: Duration::from_secs(1),
            count_heap: false,
        },
        http,
    )
    .await?;
    let store = Store::open(&db).await?;
    let measured = async {
        let ids = submit(
            http,
            std::slice::from_ref(&worker.base),
            batch.jobs,
            batch.jobs,
        )
        .await?;
        wait_all(&store, &ids, Duration::from_secs(240)).await
    }
    .await;
    let tail = worker.stderr_tail();
    let stopped = worker.stop().await;
    store.close().await;
    let ledger = sim.ledger();
    sim.shutdown().await;
    let jobs = measured.with_context(|| format!("encore serve said: {tail}"))?;
    stopped?;
    let row = batch_row(batch, &jobs, &ledger)?;
    progress(format!(
        "service: {} {}{}: {}/{} jobs, {:.1} requests per job, makespan {:.0} ms (ideal {:.0} ms)",
        batch.scenario,
        if batch.callbacks {
            "callbacks"
        } else {
            "polling only"
        },
        if batch.pacing {
            ""
        } else {
            ", no client pacing"
        },
        row.succeeded,
        row.jobs,
        row.requests_per_job,
        row.makespan_ms.unwrap_or(f64::NAN),
        row.ideal_ms.unwrap_or(f64::NAN),
    ));
    Ok(row)
}

/// The figures of a finished batch.
pub fn batch_row(
    batch: Batch,
    jobs: &[JobDetail],
    ledger: &Ledger,
) -> anyhow::Result<ServiceBatch> {
    let succeeded = jobs
        .iter()
        .filter(|d| d.job.status == JobStatus::Succeeded)
        .count();
    ensure!(succeeded > 0, "no job succeeded");
    let per_job = |n: usize| n as f64 / succeeded as f64;
    let mut per_route: BTreeMap<String, f64> = BTreeMap::new();
    for r in &ledger.requests {
        *per_route.entry(r.endpoint.clone()).or_default() += 1.0;
    }
    for v in per_route.values_mut() {
        *v /= succeeded as f64;
    }
    let times = |keep: &dyn Fn(RouteId) -> bool| -> Vec<u64> {
        ledger
            .requests
            .iter()
            .filter(|r| keep(r.route))
            .map(|r| r.at_ms)
            .collect()
    };
    let quota_refusals = ledger
        .requests
        .iter()
        .filter(|r| r.rate_limited && r.fault.is_none())
        .count();
    let scripted_refusals = ledger
        .requests
        .iter()
        .filter(|r| r.rate_limited && r.fault.is_some())
        .count();
    let ideal = Ideal::compute(jobs, ledger)?;
    Ok(ServiceBatch {
        scenario: batch.scenario,
        callbacks: batch.callbacks,
        pacing: batch.pacing,
        jobs: jobs.len(),
        time_scale: batch.time_scale,
        succeeded,
        requests: ledger.requests.len(),
        requests_per_job: per_job(ledger.requests.len()),
        per_route_per_job: per_route,
        callbacks_per_job: per_job(ledger.callbacks.iter().filter(|c| !c.dropped).count()),
        suno_tasks_per_job: ledger.suno_tasks as f64 / succeeded as f64,
        renders_per_job: ledger.creatomate_renders as f64 / succeeded as f64,
        quota_refusals,
        scripted_refusals,
        peak_suno_generate_10s: peak_in_window(
            times(&|r| r == RouteId::SunoGenerate),
            QUOTA_WINDOW_MS,
        ),
        peak_creatomate_10s: peak_in_window(
            times(&|r| r.upstream() == Upstream::Creatomate),
            QUOTA_WINDOW_MS,
        ),
        makespan_ms: ideal.map(|i| i.makespan_ms),
        ideal_ms: ideal.map(|i| i.ideal_ms),
        ratio: ideal.map(|i| i.makespan_ms / i.ideal_ms),
        overhead_median_ms: ideal.map(|i| i.overhead_median_ms),
        overhead_max_ms: ideal.map(|i| i.overhead_max_ms),
    })
}

#[cfg(test)]
mod tests {
    use encore_pipeline::StepRecord;
    use encore_sim::{BilledJob, JobKind};
    use encore_store::Origin;

    use super::*;

    fn billed(kind: JobKind, id: &str, at_ms: u64, ready_at_ms: Option<u64>) -> BilledJob {
        BilledJob {
            kind,
            id: id.to_owned(),
            request_seq: 1,
            attempt: 1,
            at_ms,
            created_virtual_s: None,
            ready_after_virtual_s: None,
            ready_at_ms,
            ready_virtual_s: None,
            final_status: String::new(),
            ignored_modifications: Vec::new(),
            subtitles: Vec::new(),
            store: None,
            max_output_tokens: None,
        }
    }

    fn job(created: i64, finished: i64, status: JobStatus, task: &str, render: &str) -> JobDetail {
        let step = |name: StepName, id: &str| StepRecord {
            external_id: Some(id.to_owned()),
            ..StepRecord::pending(name)
        };
        JobDetail {
            job: Job {
                id: JobId::generate(),
                status,
                origin: Origin::Api,
                input: serde_json::json!({}),
                idempotency_key: None,
                created_at: created,
                updated_at: finished,
                result: None,
                error: None,
                attention: None,
                cancel_requested: false,
                lease: None,
                fence: 1,
            },
            steps: vec![
                StepRecord::pending(StepName::Lyrics),
                step(StepName::SongSubmit, task),
                step(StepName::VideoSubmit, render),
            ],
        }
    }

    #[test]
    fn ideal_chains_each_jobs_own_processing_times() {
        let ledger = Ledger {
            jobs: vec![
                // Job A: a 100 ms task and a 50 ms render; job B: 300 ms and 20 ms.
                billed(JobKind::SunoTask, "ta", 5_000, Some(5_100)),
                billed(JobKind::CreatomateRender, "ra", 5_200, Some(5_250)),
                billed(JobKind::SunoTask, "tb", 9_000, Some(9_300)),
                billed(JobKind::CreatomateRender, "rb", 9_400, Some(9_420)),
            ],
            ..Ledger::default()
        };
        // Store times are epoch ms, the ledger's are since the simulator started: only the
        // ledger's differences are used.
        let jobs = [
            job(1_000_000, 1_000_200, JobStatus::Succeeded, "ta", "ra"),
            job(1_000_010, 1_000_400, JobStatus::Succeeded, "tb", "rb"),
            // Not succeeded: left out.
            job(999_000, 2_000_000, JobStatus::Failed, "tb", "rb"),
        ];
        let ideal = Ideal::compute(&jobs, &ledger).unwrap().unwrap();
        // Makespan: last finish 1_000_400 − first creation 1_000_000.
        assert!((ideal.makespan_ms - 400.0).abs() < 1e-9);
        // Ideal: max(1_000_000 + 150, 1_000_010 + 320) − 1_000_000.
        assert!((ideal.ideal_ms - 330.0).abs() < 1e-9);
        // Overheads: A 200 − 150 = 50, B 390 − 320 = 70.
        assert!((ideal.overhead_max_ms - 70.0).abs() < 1e-9);
        assert!((ideal.mean_chain_ms - 235.0).abs() < 1e-9);
    }

    #[test]
    fn ideal_refuses_a_job_whose_task_the_ledger_does_not_know() {
        let jobs = [job(0, 10, JobStatus::Succeeded, "nope", "nope")];
        assert!(Ideal::compute(&jobs, &Ledger::default()).is_err());
        assert_eq!(Ideal::compute(&[], &Ledger::default()).unwrap(), None);
    }

    #[test]
    fn peak_counts_a_sliding_window() {
        assert_eq!(peak_in_window(vec![], 10), 0);
        assert_eq!(peak_in_window(vec![5], 10), 1);
        // 0..9 fit one window; 10 starts the next.
        assert_eq!(peak_in_window(vec![0, 9, 10, 19, 25], 10), 2);
        assert_eq!(peak_in_window(vec![30, 1, 2, 3, 31, 32, 33], 10), 4);
    }
}
