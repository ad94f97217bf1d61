//! What a run measured: the rows of each scenario, the targets, the table and the JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::contenders::Contender;
use crate::stats::Spread;

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The machine and the run.
    pub meta: Meta,
    /// Sequential latency and throughput.
    pub happy_path: Option<HappyPath>,
    /// 200 ms overall deadline against a 2 s endpoint.
    pub deadline: Option<Overshoot>,
    /// 4 attempts with a per-attempt timeout.
    pub attempts: Option<Overshoot>,
    /// 429 + `Retry-After: 1`.
    pub retry_after: Option<RetryAfter>,
    /// Requests per logical call in a full outage.
    pub amplification: Option<Amplification>,
    /// Future sizes and parked memory.
    pub memory: Option<Memory>,
    /// `encore demo --scenario flaky` against its ideal.
    pub pipeline: Option<Pipeline>,
    /// `encore serve` measured (`--only service`).
    pub service: Option<Service>,
    /// The targets, checked.
    pub targets: Vec<TargetCheck>,
    /// Scenarios that could not be measured, and why.
    pub failures: Vec<String>,
}

/// The machine and the run.
#[derive(Debug, Default, Serialize)]
pub struct Meta {
    /// `std::thread::available_parallelism`.
    pub cpus: usize,
    /// Tokio worker threads (client and server share them).
    pub workers: usize,
    /// The soft open-files limit.
    pub fd_limit: Option<u64>,
    /// Wall time of the whole run.
    pub elapsed_s: f64,
    /// A shortened smoke run (`--quick`): the figures are not the ones to quote.
    pub quick: bool,
}

/// One contender's happy-path figures.
#[derive(Debug, Serialize)]
pub struct HappyRow {
    /// Who.
    pub contender: Contender,
    /// Row label.
    pub label: &'static str,
    /// Sequential calls timed.
    pub calls: usize,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Median over rounds of this contender's batch median over raw reqwest's in the same round.
    pub p50_ratio: f64,
    /// The 25th and 75th percentiles of those per-round ratios (the spread on this box).
    pub p50_ratio_iqr: [f64; 2],
    /// `p99_us` over raw reqwest's.
    pub p99_ratio: f64,
    /// Calls per second with the concurrent tasks.
    pub throughput: f64,
    /// Median over rounds of this contender's rate over raw reqwest's rate in the same round.
    pub throughput_ratio: f64,
    /// The 25th and 75th percentiles of those per-round ratios.
    pub throughput_ratio_iqr: [f64; 2],
    /// Calls that failed (should be 0).
    pub errors: u64,
}

/// Sequential latency and throughput.
#[derive(Debug, Serialize)]
pub struct HappyPath {
    /// Sequential calls per contender.
    pub calls_per_contender: usize,
    /// Calls per interleaving batch.
    pub batch: usize,
    /// Concurrent tasks for throughput.
    pub tasks: usize,
    /// Throughput rounds per contender.
    pub rounds: usize,
    /// Length of one throughput round, ms.
    pub round_ms: u64,
    /// The rows.
    pub rows: Vec<HappyRow>,
}

/// One contender's overshoot past the deadline or the ideal schedule.
#[derive(Debug, Serialize)]
pub struct OvershootRow {
    /// Who.
    pub contender: Contender,
    /// Row label.
    pub label: &'static str,
    /// How the bound is applied.
    pub mechanism: &'static str,
    /// Elapsed minus the bound, ms (negative: stopped early).
    pub overshoot_ms: Spread,
    /// Requests the server received per call.
    pub attempts_per_call: f64,
    /// Calls that ended otherwise than expected (should be 0).
    pub unexpected: usize,
}

/// An overshoot scenario.
#[derive(Debug, Serialize)]
pub struct Overshoot {
    /// What was measured.
    pub description: String,
    /// The bound, ms.
    pub bound_ms: f64,
    /// The rows.
    pub rows: Vec<OvershootRow>,
}

/// One contender's wait after `Retry-After: 1`.
#[derive(Debug, Serialize)]
pub struct RetryAfterRow {
    /// Who.
    pub contender: Contender,
    /// Row label.
    pub label: &'static str,
    /// The wait between the 429 and the retry, as the server saw it, ms.
    pub wait_ms: Spread,
    /// Median wait minus the 1000 ms demanded.
    pub error_ms: f64,
    /// Whether every wait was within ±5 ms of the demand.
    pub honoured: bool,
    /// Calls that failed (should be 0).
    pub errors: usize,
}

/// 429 + `Retry-After: 1`.
#[derive(Debug, Serialize)]
pub struct RetryAfter {
    /// The demanded wait, ms.
    pub demanded_ms: f64,
    /// The rows.
    pub rows: Vec<RetryAfterRow>,
}

/// One contender's requests per logical call in a full outage.
#[derive(Debug, Serialize)]
pub struct AmplificationRow {
    /// Who.
    pub contender: Contender,
    /// Row label.
    pub label: &'static str,
    /// Logical calls made.
    pub calls: u64,
    /// Requests the server received.
    pub requests: u64,
    /// `requests / calls`.
    pub ratio: f64,
    /// How long the callers took, ms.
    pub elapsed_ms: f64,
    /// What bounds the load.
    pub guard: &'static str,
}

/// A full outage.
#[derive(Debug, Serialize)]
pub struct Amplification {
    /// Concurrent callers.
    pub callers: usize,
    /// Logical calls per caller.
    pub calls_per_caller: usize,
    /// The rows.
    pub rows: Vec<AmplificationRow>,
}

/// One contender's memory figures.
#[derive(Debug, Serialize)]
pub struct MemoryRow {
    /// Who.
    pub contender: Contender,
    /// Row label.
    pub label: &'static str,
    /// `size_of_val` of one call's future, bytes.
    pub future_bytes: usize,
    /// `future_bytes` over backon's.
    pub future_vs_backon: f64,
    /// Net heap growth per parked call (task, future, anything it holds), bytes.
    pub heap_per_call: Option<f64>,
    /// RSS growth for all the parked calls, MiB.
    pub rss_mib: Option<f64>,
    /// The most file descriptors the process had open while they were parked (client and
    /// server sockets together).
    pub open_fds: Option<usize>,
}

/// Future sizes and parked memory.
#[derive(Debug, Serialize)]
pub struct Memory {
    /// Calls parked in a backoff sleep at once.
    pub parked_calls: usize,
    /// Measured rounds (the figures are medians over them).
    pub rounds: usize,
    /// The rows.
    pub rows: Vec<MemoryRow>,
}

/// `encore demo --scenario flaky` against its ideal.
#[derive(Debug, Serialize)]
pub struct Pipeline {
    /// Whether it was measured.
    pub measured: bool,
    /// Why not, or how.
    pub note: String,
    /// Wall time, ms.
    pub makespan_ms: Option<f64>,
    /// The simulator's processing time plus the waits it demanded, ms.
    pub ideal_ms: Option<f64>,
    /// `makespan_ms / ideal_ms`.
    pub ratio: Option<f64>,
    /// The demo's own backoff waits (retries the server did not ask to delay), ms.
    pub backoff_ms: Option<f64>,
    /// The waits the server demanded (`Retry-After`), ms.
    pub demanded_ms: Option<f64>,
}

/// `encore serve` measured: requests and makespan per batch, jobs in flight, the store, and
/// scale-out.
#[derive(Debug, Default, Serialize)]
pub struct Service {
    /// One row per scenario × callbacks-or-polling batch.
    pub batches: Vec<ServiceBatch>,
    /// One worker driving many concurrent jobs.
    pub in_flight: Option<InFlight>,
    /// Claims and step writes per second, and the peer queue.
    pub store: Option<StoreThroughput>,
    /// Jobs per minute with 1, 2 and 4 workers on one PostgreSQL.
    pub scale_out: Option<ScaleOut>,
    /// The machine's 1-minute load average before and after the service measurements (the
    /// box is shared: timings under load are longer than on an idle machine).
    pub load_average: [f64; 2],
}

/// One batch: `jobs` jobs submitted at once to one `encore serve`.
#[derive(Debug, Serialize)]
pub struct ServiceBatch {
    /// The simulator's scenario.
    pub scenario: &'static str,
    /// Callbacks on, or polling only.
    pub callbacks: bool,
    /// encore's client-side rate limits on (off only in the diagnostic batch).
    pub pacing: bool,
    /// Jobs submitted.
    pub jobs: usize,
    /// The simulator's time scale.
    pub time_scale: f64,
    /// Jobs that succeeded.
    pub succeeded: usize,
    /// Requests the simulator received.
    pub requests: usize,
    /// `requests / succeeded`.
    pub requests_per_job: f64,
    /// The same per route (`POST /api/v1/generate`, …).
    pub per_route_per_job: BTreeMap<String, f64>,
    /// Callbacks and webhooks the simulator delivered to encore, per succeeded job.
    pub callbacks_per_job: f64,
    /// Suno tasks created per succeeded job (1.00: no duplicate paid job).
    pub suno_tasks_per_job: f64,
    /// Creatomate renders created per succeeded job (1.00: no duplicate paid job).
    pub renders_per_job: f64,
    /// Refusals by the simulator's own per-account rate limiter (the quota was exceeded).
    pub quota_refusals: usize,
    /// Rate-limit refusals the scenario scripted (not a quota excess).
    pub scripted_refusals: usize,
    /// Most Suno generate requests in any 10 s window (limit 20).
    pub peak_suno_generate_10s: usize,
    /// Most Creatomate requests in any 10 s window (limit 30).
    pub peak_creatomate_10s: usize,
    /// First creation to last success, ms.
    pub makespan_ms: Option<f64>,
    /// The exact ideal (see `service::Ideal`), ms.
    pub ideal_ms: Option<f64>,
    /// `makespan_ms / ideal_ms`.
    pub ratio: Option<f64>,
    /// Median time a job spent on anything but the providers' processing, ms.
    pub overhead_median_ms: Option<f64>,
    /// The largest such time, ms.
    pub overhead_max_ms: Option<f64>,
}

/// One `encore serve` driving many concurrent jobs.
#[derive(Debug, Serialize)]
pub struct InFlight {
    /// How the server ran.
    pub how: String,
    /// Jobs submitted.
    pub jobs: usize,
    /// `--concurrency`.
    pub concurrency: usize,
    /// The simulator's time scale.
    pub time_scale: f64,
    /// Jobs that succeeded.
    pub succeeded: usize,
    /// Jobs that ended otherwise.
    pub not_succeeded: usize,
    /// The most jobs seen `running` at once (sampled every 250 ms).
    pub peak_in_flight: usize,
    /// First submission to the last final status, s.
    pub elapsed_s: f64,
    /// Time to submit all jobs, s.
    pub submit_s: f64,
    /// `VmRSS` before the first job, MiB.
    pub idle_rss_mib: f64,
    /// `VmHWM` at the end, MiB.
    pub peak_rss_mib: f64,
    /// `(VmHWM − idle VmRSS) / peak_in_flight`, KiB.
    pub rss_per_in_flight_kib: f64,
    /// Live heap before the first job, MiB.
    pub idle_heap_mib: f64,
    /// Live heap at the sample with the most jobs running, MiB.
    pub heap_at_peak_mib: f64,
    /// `(heap at that sample − idle heap) / jobs running at that sample`, KiB.
    pub heap_per_in_flight_kib: f64,
    /// The worker's user + system CPU time for the whole batch, s.
    pub cpu_s: f64,
    /// `cpu_s / succeeded`, ms.
    pub cpu_ms_per_job: f64,
    /// Suno tasks and Creatomate renders created (each should equal `succeeded`).
    pub billed: [u64; 2],
    /// Why the other jobs did not succeed (`status: code: message` → jobs).
    pub not_succeeded_reasons: BTreeMap<String, usize>,
}

/// One store's (or queue's) claim and write rates.
#[derive(Debug, Serialize)]
pub struct StoreRow {
    /// `encore-store on SQLite`, `encore-store on PostgreSQL`, `apalis-sql on PostgreSQL`.
    pub backend: String,
    /// Claim-and-complete per second, one claimer.
    pub claims_per_s_1: f64,
    /// Claim-and-complete per second, `claimers` at once.
    pub claims_per_s_n: f64,
    /// Step writes per second, one job (encore only).
    pub step_writes_per_s_1: Option<f64>,
    /// Step writes per second, `claimers` jobs at once (encore only).
    pub step_writes_per_s_n: Option<f64>,
}

/// The store benchmark.
#[derive(Debug, Serialize)]
pub struct StoreThroughput {
    /// Jobs queued per claim measurement.
    pub jobs: usize,
    /// Concurrent claimers (or the peer's worker concurrency).
    pub claimers: usize,
    /// The rows.
    pub rows: Vec<StoreRow>,
    /// How each loop runs.
    pub note: String,
}

/// One point of the scale-out curve.
#[derive(Debug, Serialize)]
pub struct ScaleRow {
    /// `encore serve` processes.
    pub workers: usize,
    /// Jobs submitted.
    pub jobs: usize,
    /// Jobs that succeeded.
    pub succeeded: usize,
    /// First creation to last success, s.
    pub elapsed_s: f64,
    /// `succeeded / elapsed × 60`.
    pub jobs_per_min: f64,
    /// Over the one-worker row.
    pub speedup: f64,
    /// All workers' user + system CPU, s.
    pub worker_cpu_s: f64,
    /// `worker_cpu_s / succeeded`, ms.
    pub worker_cpu_ms_per_job: f64,
    /// This benchmark's own process (the simulator) CPU, s.
    pub sim_cpu_s: f64,
    /// The PostgreSQL backends' CPU serving the workers' database, s.
    pub pg_cpu_s: f64,
    /// `(worker + sim + PostgreSQL CPU) / elapsed`: cores this measurement kept busy.
    pub own_cores_busy: f64,
    /// Cores busy on the whole machine during the run (from `/proc/stat`: every process,
    /// PostgreSQL and other users of the box included).
    pub machine_cores_busy: f64,
    /// Suno tasks and renders per succeeded job.
    pub billed_per_job: [f64; 2],
    /// The concurrency bound: `workers × concurrency` slots, each running jobs back to back
    /// with zero overhead (a job's mean chain from the ledger), jobs/min.
    pub bound_per_min: f64,
    /// `jobs_per_min / bound_per_min`.
    pub of_bound: f64,
}

/// Jobs per minute against workers.
#[derive(Debug, Serialize)]
pub struct ScaleOut {
    /// `--concurrency` of each worker.
    pub concurrency_per_worker: usize,
    /// The simulator's time scale.
    pub time_scale: f64,
    /// The rows.
    pub rows: Vec<ScaleRow>,
    /// How it runs.
    pub note: String,
}

/// One target, checked.
#[derive(Debug, Serialize)]
pub struct TargetCheck {
    /// What.
    pub target: String,
    /// The goal.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Met, missed, or not measured.
    pub met: Option<bool>,
}

impl Report {
    /// Checks the targets against encore's rows.
    pub fn check_targets(&mut self) {
        let mut checks = Vec::new();
        let mut check = |target: String, goal: &str, measured: Option<(String, bool)>| {
            let (measured, met) = match measured {
                Some((text, met)) => (text, Some(met)),
                None => ("not measured".to_owned(), None),
            };
            checks.push(TargetCheck {
                target,
                goal: goal.to_owned(),
                measured,
                met,
            });
        };
        // The core's targets (issue 8), and the typed client's (issue 10: within reach of the
        // bare core).
        for (who, min_throughput, max_p50) in [
            (Contender::Encore, 0.98, 1.02),
            (Contender::EncoreGuarded, 0.98, 1.02),
            (Contender::EncoreClient, 0.95, 1.05),
        ] {
            let row = self
                .happy_path
                .as_ref()
                .and_then(|h| h.rows.iter().find(|r| r.contender == who));
            check(
                format!("throughput vs raw reqwest ({})", who.label()),
                &format!("≥ {min_throughput:.2}×"),
                row.map(|r| {
                    (
                        format!("{:.3}×", r.throughput_ratio),
                        r.throughput_ratio >= min_throughput,
                    )
                }),
            );
            check(
                format!("p50 latency vs raw reqwest ({})", who.label()),
                &format!("≤ {max_p50:.2}×"),
                row.map(|r| (format!("{:.3}×", r.p50_ratio), r.p50_ratio <= max_p50)),
            );
            check(
                format!("p99 latency vs raw reqwest ({})", who.label()),
                "≤ 1.05×",
                row.map(|r| (format!("{:.3}×", r.p99_ratio), r.p99_ratio <= 1.05)),
            );
        }
        let client_attempts = self.attempts.as_ref().and_then(|s| {
            s.rows
                .iter()
                .find(|r| r.contender == Contender::EncoreClient)
        });
        check(
            "4 × 50 ms attempts: overshoot median (encore client)".to_owned(),
            "≤ 3 ms",
            client_attempts.map(|r| {
                (
                    format!("{:+.2} ms", r.overshoot_ms.median),
                    r.overshoot_ms.median <= 3.0 && r.unexpected == 0,
                )
            }),
        );
        // Not a target of the issue: the loop's own cost, net of the one timer per attempt that
        // any bounded call pays (the `raw + timeout` control).
        if let Some(h) = &self.happy_path {
            let find = |c: Contender| h.rows.iter().find(|r| r.contender == c);
            if let (Some(e), Some(t)) = (find(Contender::Encore), find(Contender::RawTimeout)) {
                let ratio = e.p50_ratio / t.p50_ratio;
                check(
                    "(info) p50 vs raw + timeout (encore Retry, same timer)".to_owned(),
                    "≤ 1.02×",
                    Some((format!("{ratio:.3}×"), ratio <= 1.02)),
                );
                let ratio = e.throughput_ratio / t.throughput_ratio;
                check(
                    "(info) throughput vs raw + timeout (encore Retry)".to_owned(),
                    "≥ 0.98×",
                    Some((format!("{ratio:.3}×"), ratio >= 0.98)),
                );
            }
        }
        for (scenario, name) in [
            (&self.deadline, "200 ms deadline"),
            (&self.attempts, "4 × 50 ms attempts"),
        ] {
            for who in [Contender::Encore, Contender::EncoreClient] {
                let row = scenario
                    .as_ref()
                    .and_then(|s| s.rows.iter().find(|r| r.contender == who));
                check(
                    format!("{name}: overshoot p99 ({})", who.label()),
                    "≤ 3 ms",
                    row.map(|r| {
                        (
                            format!("{:.2} ms", r.overshoot_ms.p99),
                            r.overshoot_ms.p99 <= 3.0 && r.unexpected == 0,
                        )
                    }),
                );
            }
        }
        for who in [Contender::Encore, Contender::EncoreClient] {
            let row = self
                .retry_after
                .as_ref()
                .and_then(|s| s.rows.iter().find(|r| r.contender == who));
            check(
                format!("Retry-After: 1 honoured ({})", who.label()),
                "±5 ms",
                row.map(|r| {
                    (
                        format!(
                            "{:+.2} ms (worst {:+.2})",
                            r.error_ms,
                            worst_error(&r.wait_ms, 1000.0)
                        ),
                        r.honoured,
                    )
                }),
            );
        }
        let row = self.amplification.as_ref().and_then(|a| {
            a.rows
                .iter()
                .find(|r| r.contender == Contender::EncoreGuarded)
        });
        check(
            "amplification under outage (encore +budget+breaker)".to_owned(),
            "≤ 1.2",
            row.map(|r| (format!("{:.2}", r.ratio), r.ratio <= 1.2)),
        );
        for who in [Contender::Encore, Contender::EncoreGuarded] {
            let row = self
                .memory
                .as_ref()
                .and_then(|m| m.rows.iter().find(|r| r.contender == who));
            check(
                format!("future size vs backon ({})", who.label()),
                "≤ 1.00×",
                row.map(|r| {
                    (
                        format!("{} B ({:.2}×)", r.future_bytes, r.future_vs_backon),
                        r.future_vs_backon <= 1.0,
                    )
                }),
            );
        }
        checks.push(TargetCheck {
            target: "(info) pipeline makespan / ideal (demo, flaky)".to_owned(),
            goal: "—".to_owned(),
            measured: self
                .pipeline
                .as_ref()
                .and_then(|p| {
                    p.ratio
                        .map(|r| format!("{r:.2}× ({:.1} s)", p.makespan_ms.unwrap_or(0.0) / 1e3))
                })
                .unwrap_or_else(|| "not measured".to_owned()),
            met: None,
        });
        checks.extend(self.service_targets());
        self.targets = checks;
    }

    /// The service's targets (issue 16).
    fn service_targets(&self) -> Vec<TargetCheck> {
        let batches: &[ServiceBatch] = self.service.as_ref().map_or(&[], |s| &s.batches);
        let mut checks = Vec::new();
        let mut check = |target: String, goal: &str, measured: Option<(String, bool)>| {
            let (measured, met) = match measured {
                Some((text, met)) => (text, Some(met)),
                None => ("not measured".to_owned(), None),
            };
            checks.push(TargetCheck {
                target,
                goal: goal.to_owned(),
                measured,
                met,
            });
        };
        let find = |scenario: &str, callbacks: bool| {
            batches
                .iter()
                .find(|b| b.scenario == scenario && b.callbacks == callbacks && b.pacing)
        };
        check(
            "service makespan / exact ideal (callbacks, calm)".to_owned(),
            "≤ 1.10×",
            find("calm", true).and_then(|b| {
                b.ratio.map(|r| {
                    (
                        format!("{r:.3}× ({:.1} s)", b.ideal_ms.unwrap_or(0.0) / 1e3),
                        r <= 1.10,
                    )
                })
            }),
        );
        for scenario in ["calm", "flaky"] {
            check(
                format!("service requests/job: callbacks < polling ({scenario})"),
                "<",
                find(scenario, true)
                    .zip(find(scenario, false))
                    .map(|(c, p)| {
                        (
                            format!("{:.1} vs {:.1}", c.requests_per_job, p.requests_per_job),
                            c.requests_per_job < p.requests_per_job,
                        )
                    }),
            );
        }
        let all = |f: &dyn Fn(&ServiceBatch) -> bool| -> Option<bool> {
            (!batches.is_empty()).then(|| batches.iter().all(f))
        };
        // The quota targets hold for encore as shipped: the diagnostic batch without the
        // client-side pacing is left out of them.
        let paced: Vec<&ServiceBatch> = batches.iter().filter(|b| b.pacing).collect();
        let all_paced = |f: &dyn Fn(&ServiceBatch) -> bool| -> Option<bool> {
            (!paced.is_empty()).then(|| paced.iter().all(|b| f(b)))
        };
        check(
            "service: quota refusals (every paced batch)".to_owned(),
            "0",
            all_paced(&|b| b.quota_refusals == 0).map(|met| {
                let n: usize = paced.iter().map(|b| b.quota_refusals).sum();
                (n.to_string(), met)
            }),
        );
        check(
            "service: peak Suno generate / 10 s (paced batches)".to_owned(),
            "≤ 20",
            all_paced(&|b| b.peak_suno_generate_10s <= crate::service::SUNO_GENERATE_QUOTA).map(
                |met| {
                    let peak = paced.iter().map(|b| b.peak_suno_generate_10s).max();
                    (peak.unwrap_or(0).to_string(), met)
                },
            ),
        );
        check(
            "service: peak Creatomate requests / 10 s (paced batches)".to_owned(),
            "≤ 30",
            all_paced(&|b| b.peak_creatomate_10s <= crate::service::CREATOMATE_QUOTA).map(|met| {
                let peak = paced.iter().map(|b| b.peak_creatomate_10s).max();
                (peak.unwrap_or(0).to_string(), met)
            }),
        );
        check(
            "service: paid jobs per job (every batch)".to_owned(),
            "1.00",
            all(&|b| {
                (b.suno_tasks_per_job - 1.0).abs() < 1e-9
                    && (b.renders_per_job - 1.0).abs() < 1e-9
                    && b.succeeded == b.jobs
            })
            .map(|met| {
                let worst = batches
                    .iter()
                    .map(|b| b.suno_tasks_per_job.max(b.renders_per_job))
                    .fold(0.0, f64::max);
                (format!("max {worst:.2}"), met)
            }),
        );
        let in_flight = self.service.as_ref().and_then(|s| s.in_flight.as_ref());
        check(
            "service: concurrent jobs on one worker completed".to_owned(),
            "all",
            in_flight.map(|f| {
                (
                    format!(
                        "{}/{} (peak {} running)",
                        f.succeeded, f.jobs, f.peak_in_flight
                    ),
                    f.succeeded == f.jobs && f.billed == [f.jobs as u64; 2],
                )
            }),
        );
        let store = self.service.as_ref().and_then(|s| s.store.as_ref());
        checks.push(TargetCheck {
            target: "(info) claims/s, PostgreSQL, 1 / N claimers: encore vs apalis".to_owned(),
            goal: "—".to_owned(),
            measured: store
                .and_then(|st| {
                    let find = |name: &str| st.rows.iter().find(|r| r.backend.starts_with(name));
                    let (e, a) = (find("encore-store on PostgreSQL")?, find("apalis")?);
                    Some(format!(
                        "{:.0}/{:.0} vs {:.0}/{:.0}",
                        e.claims_per_s_1, e.claims_per_s_n, a.claims_per_s_1, a.claims_per_s_n
                    ))
                })
                .unwrap_or_else(|| "not measured".to_owned()),
            met: None,
        });
        let scale = self.service.as_ref().and_then(|s| s.scale_out.as_ref());
        checks.push(TargetCheck {
            target: "(info) scale-out: jobs/min with 1, 2, 4 workers".to_owned(),
            goal: "—".to_owned(),
            measured: scale.map_or_else(
                || "not measured".to_owned(),
                |s| {
                    s.rows
                        .iter()
                        .map(|r| format!("{:.0}", r.jobs_per_min))
                        .collect::<Vec<_>>()
                        .join(" / ")
                },
            ),
            met: None,
        });
        checks
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.meta;
        let _ = writeln!(
            out,
            "encore-bench: one run, {} CPUs, {} tokio workers shared by client and server, all traffic on 127.0.0.1{}",
            m.cpus,
            m.workers,
            if m.quick {
                " (--quick: smoke run, do not quote)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "same reqwest::Client, same server, same policy (3 retries, waits ×2, no jitter); ratios are against raw reqwest in this run\n"
        );

        if let Some(h) = &self.happy_path {
            let _ = writeln!(
                out,
                "HAPPY PATH  {} sequential calls each (batches of {}, rotating order): p50/p99 over all calls,\n            p50 ×raw = median (and IQR) of per-round ratios, p99 ×raw = ratio of the p99s;",
                h.calls_per_contender, h.batch
            );
            let _ = writeln!(
                out,
                "            throughput: {} tasks, {} rounds × {} ms each: calls/s = mean, ×raw = median (and IQR) of per-round ratios",
                h.tasks, h.rounds, h.round_ms
            );
            let _ = writeln!(
                out,
                "{:<22} {:>8} {:>6} {:>11} {:>8} {:>6} {:>9} {:>6} {:>11} {:>6}",
                "contender",
                "p50 µs",
                "×raw",
                "(IQR)",
                "p99 µs",
                "×raw",
                "calls/s",
                "×raw",
                "(IQR)",
                "errors"
            );
            let iqr = |r: [f64; 2]| format!("{:.2}–{:.2}", r[0], r[1]);
            for r in &h.rows {
                let _ = writeln!(
                    out,
                    "{:<22} {:>8.1} {:>6.3} {:>11} {:>8.1} {:>6.3} {:>9.0} {:>6.3} {:>11} {:>6}",
                    r.label,
                    r.p50_us,
                    r.p50_ratio,
                    iqr(r.p50_ratio_iqr),
                    r.p99_us,
                    r.p99_ratio,
                    r.throughput,
                    r.throughput_ratio,
                    iqr(r.throughput_ratio_iqr),
                    r.errors
                );
            }
            out.push('\n');
        }

        for s in [&self.deadline, &self.attempts].into_iter().flatten() {
            let _ = writeln!(out, "{}", s.description);
            let _ = writeln!(
                out,
                "{:<22} {:>10} {:>8} {:>8} {:>8} {:>9} {:>4}  bound by",
                "contender", "median ms", "p99 ms", "max ms", "min ms", "req/call", "bad",
            );
            for r in &s.rows {
                let _ = writeln!(
                    out,
                    "{:<22} {:>+10.2} {:>+8.2} {:>+8.2} {:>+8.2} {:>9.2} {:>4}  {}",
                    r.label,
                    r.overshoot_ms.median,
                    r.overshoot_ms.p99,
                    r.overshoot_ms.max,
                    r.overshoot_ms.min,
                    r.attempts_per_call,
                    r.unexpected,
                    r.mechanism
                );
            }
            out.push('\n');
        }

        if let Some(ra) = &self.retry_after {
            let _ = writeln!(
                out,
                "RETRY-AFTER  429 + Retry-After: 1, then 200; the wait between them as the server saw it ({} ms demanded)",
                ra.demanded_ms
            );
            let _ = writeln!(
                out,
                "{:<22} {:>10} {:>9} {:>9} {:>10} {:>9} {:>6}",
                "contender", "median ms", "min ms", "max ms", "error ms", "honoured", "errors"
            );
            for r in &ra.rows {
                let _ = writeln!(
                    out,
                    "{:<22} {:>10.2} {:>9.2} {:>9.2} {:>+10.2} {:>9} {:>6}",
                    r.label,
                    r.wait_ms.median,
                    r.wait_ms.min,
                    r.wait_ms.max,
                    r.error_ms,
                    if r.honoured { "yes" } else { "no" },
                    r.errors
                );
            }
            out.push('\n');
        }

        if let Some(a) = &self.amplification {
            let _ = writeln!(
                out,
                "AMPLIFICATION  full outage (every request 503), {} concurrent callers × {} calls",
                a.callers, a.calls_per_caller
            );
            let _ = writeln!(
                out,
                "{:<22} {:>8} {:>9} {:>10} {:>9}  what bounds the load",
                "contender", "calls", "requests", "req/call", "time ms",
            );
            for r in &a.rows {
                let _ = writeln!(
                    out,
                    "{:<22} {:>8} {:>9} {:>10.2} {:>9.0}  {}",
                    r.label, r.calls, r.requests, r.ratio, r.elapsed_ms, r.guard
                );
            }
            out.push('\n');
        }

        if let Some(mem) = &self.memory {
            let _ = writeln!(
                out,
                "MEMORY  size_of_val of one call's future; {} calls parked at once in a 10 s backoff (median of {} rounds)",
                mem.parked_calls, mem.rounds
            );
            let _ = writeln!(
                out,
                "{:<22} {:>9} {:>9} {:>12} {:>9} {:>9}",
                "contender", "future B", "×backon", "heap B/call", "RSS MiB", "open fds"
            );
            for r in &mem.rows {
                let heap = r
                    .heap_per_call
                    .map_or_else(|| "—".to_owned(), |h| format!("{h:.0}"));
                let rss = r
                    .rss_mib
                    .map_or_else(|| "—".to_owned(), |h| format!("{h:.1}"));
                let fds = r.open_fds.map_or_else(|| "—".to_owned(), |f| f.to_string());
                let _ = writeln!(
                    out,
                    "{:<22} {:>9} {:>9.2} {:>12} {:>9} {:>9}",
                    r.label, r.future_bytes, r.future_vs_backon, heap, rss, fds
                );
            }
            out.push('\n');
        }

        if let Some(p) = &self.pipeline {
            let _ = writeln!(out, "PIPELINE MAKESPAN  encore demo --scenario flaky");
            match (p.makespan_ms, p.ideal_ms, p.ratio) {
                (Some(make), Some(ideal), Some(ratio)) => {
                    let _ = writeln!(
                        out,
                        "makespan {make:.0} ms, ideal (oracle) {ideal:.0} ms, ratio {ratio:.2}"
                    );
                    let _ = writeln!(out, "{}", p.note);
                }
                _ => {
                    let _ = writeln!(out, "not measured: {}", p.note);
                }
            }
            out.push('\n');
        }

        if let Some(service) = &self.service {
            service.table(&mut out);
        }

        let _ = writeln!(out, "TARGETS");
        let _ = writeln!(
            out,
            "{:<52} {:>8} {:>26}  met",
            "target", "goal", "measured",
        );
        let unmeasured = self
            .targets
            .iter()
            .filter(|t| t.measured == "not measured")
            .count();
        for t in self.targets.iter().filter(|t| t.measured != "not measured") {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "MISSED",
                None => "info",
            };
            let _ = writeln!(
                out,
                "{:<52} {:>8} {:>26}  {}",
                t.target, t.goal, t.measured, met
            );
        }
        if unmeasured > 0 {
            let _ = writeln!(
                out,
                "({unmeasured} targets of scenarios not run here are left out; --json lists them)"
            );
        }
        for f in &self.failures {
            let _ = writeln!(out, "not measured: {f}");
        }
        let _ = writeln!(out, "\nrun took {:.1} s", m.elapsed_s);
        out
    }
}

/// A batch's mode, as the table shows it.
fn mode(b: &ServiceBatch) -> &'static str {
    match (b.callbacks, b.pacing) {
        (true, true) => "callbacks",
        (false, true) => "polling",
        (true, false) => "cb no-pace",
        (false, false) => "pl no-pace",
    }
}

impl Service {
    /// The service's part of the table.
    fn table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "SERVICE MEASUREMENTS  load average {:.1} before, {:.1} after (2 cores shared with other work: timings are those of a loaded box)\n",
            self.load_average[0], self.load_average[1]
        );
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"))
        };
        if !self.batches.is_empty() {
            let b0 = &self.batches[0];
            let _ = writeln!(
                out,
                "SERVICE  one `encore serve` (a child process), {} jobs submitted at once per batch, simulator time scale {}, quotas on;\n         \
                 requests = what the simulator received ÷ succeeded jobs; peaks = most requests in any sliding 10 s window",
                b0.jobs, b0.time_scale
            );
            let _ = writeln!(
                out,
                "{:<8} {:<10} {:>5} {:>8} {:>8} {:>6} {:>9} {:>9} {:>7} {:>8} {:>8} {:>6} {:>8} {:>8}",
                "scenario",
                "mode",
                "ok",
                "req/job",
                "reads",
                "cb/job",
                "peak suno",
                "peak crt",
                "quota",
                "makespan",
                "ideal",
                "ratio",
                "ovh med",
                "ovh max"
            );
            for b in &self.batches {
                let reads: f64 = b
                    .per_route_per_job
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with("GET /api/v1/generate/record-info")
                            || k.starts_with("GET /v1/renders/")
                    })
                    .map(|(_, v)| v)
                    .sum();
                let _ = writeln!(
                    out,
                    "{:<8} {:<10} {:>5} {:>8.2} {:>8.2} {:>6.2} {:>6}/20 {:>6}/30 {:>7} {:>8} {:>8} {:>6} {:>8} {:>8}",
                    b.scenario,
                    mode(b),
                    format!("{}/{}", b.succeeded, b.jobs),
                    b.requests_per_job,
                    reads,
                    b.callbacks_per_job,
                    b.peak_suno_generate_10s,
                    b.peak_creatomate_10s,
                    b.quota_refusals,
                    opt(b.makespan_ms, 0),
                    opt(b.ideal_ms, 0),
                    opt(b.ratio, 3),
                    opt(b.overhead_median_ms, 0),
                    opt(b.overhead_max_ms, 0),
                );
            }
            let _ = writeln!(
                out,
                "(reads = status reads per job: Suno record-info + Creatomate GET render; quota = refusals by the simulator's own limiter;\n \
                 no-pace = encore's client-side rate limits off (a diagnostic: what the pacing costs), the simulator's quotas still on;\n \
                 makespan/ideal/overheads in ms; ideal = max over jobs of (created + the processing times of its own task and render, from the ledger) − first created)"
            );
            for b in &self.batches {
                let routes: Vec<String> = b
                    .per_route_per_job
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.2}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "  {} {}: {}; paid per job: {:.2} Suno tasks, {:.2} renders; scripted refusals {}",
                    b.scenario,
                    mode(b),
                    routes.join(", "),
                    b.suno_tasks_per_job,
                    b.renders_per_job,
                    b.scripted_refusals
                );
            }
            out.push('\n');
        }
        if let Some(f) = &self.in_flight {
            let _ = writeln!(
                out,
                "JOBS IN FLIGHT  {}: {} jobs, --concurrency {}, time scale {}, quotas off",
                f.how, f.jobs, f.concurrency, f.time_scale
            );
            let _ = writeln!(
                out,
                "succeeded {}/{} (other {}), peak {} running at once, {:.1} s ({:.1} s to submit); RSS idle {:.1} MiB, peak (VmHWM) {:.1} MiB = {:.0} KiB per in-flight job;\n\
                 heap idle {:.1} MiB, {:.1} MiB at the peak sample = {:.0} KiB per in-flight job; CPU {:.2} s = {:.2} ms per job; paid: {} tasks, {} renders",
                f.succeeded,
                f.jobs,
                f.not_succeeded,
                f.peak_in_flight,
                f.elapsed_s,
                f.submit_s,
                f.idle_rss_mib,
                f.peak_rss_mib,
                f.rss_per_in_flight_kib,
                f.idle_heap_mib,
                f.heap_at_peak_mib,
                f.heap_per_in_flight_kib,
                f.cpu_s,
                f.cpu_ms_per_job,
                f.billed[0],
                f.billed[1]
            );
            for (why, n) in &f.not_succeeded_reasons {
                let _ = writeln!(out, "  not succeeded ×{n}: {why}");
            }
            out.push('\n');
        }
        if let Some(st) = &self.store {
            let _ = writeln!(
                out,
                "STORE  claim-and-complete of {} queued jobs, 1 and {} claimers; step writes (start + finish) of free steps",
                st.jobs, st.claimers
            );
            let _ = writeln!(
                out,
                "{:<28} {:>10} {:>10} {:>14} {:>14}",
                "backend",
                "claims/s 1",
                format!("claims/s {}", st.claimers),
                "step writes/s 1",
                format!("step writes/s {}", st.claimers)
            );
            for r in &st.rows {
                let _ = writeln!(
                    out,
                    "{:<28} {:>10.0} {:>10.0} {:>14} {:>14}",
                    r.backend,
                    r.claims_per_s_1,
                    r.claims_per_s_n,
                    opt(r.step_writes_per_s_1, 0),
                    opt(r.step_writes_per_s_n, 0)
                );
            }
            let _ = writeln!(out, "{}", st.note);
            out.push('\n');
        }
        if let Some(sc) = &self.scale_out {
            let _ = writeln!(
                out,
                "SCALE-OUT  `encore serve` workers on one PostgreSQL database, one simulator (time scale {}, quotas off), --concurrency {} each",
                sc.time_scale, sc.concurrency_per_worker
            );
            let _ = writeln!(
                out,
                "{:>7} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8} {:>7} {:>10} {:>13} {:>10}",
                "workers",
                "jobs",
                "time s",
                "jobs/min",
                "speedup",
                "bound",
                "of bound",
                "worker CPU",
                "CPU ms/job",
                "sim CPU",
                "PG CPU",
                "own cores",
                "machine cores",
                "paid/job"
            );
            for r in &sc.rows {
                let _ = writeln!(
                    out,
                    "{:>7} {:>8} {:>7.1} {:>9.0} {:>8.2} {:>8.0} {:>8.2} {:>10.1} {:>10.1} {:>8.1} {:>7.1} {:>10.2} {:>13.2} {:>10}",
                    r.workers,
                    format!("{}/{}", r.succeeded, r.jobs),
                    r.elapsed_s,
                    r.jobs_per_min,
                    r.speedup,
                    r.bound_per_min,
                    r.of_bound,
                    r.worker_cpu_s,
                    r.worker_cpu_ms_per_job,
                    r.sim_cpu_s,
                    r.pg_cpu_s,
                    r.own_cores_busy,
                    r.machine_cores_busy,
                    format!("{:.2}/{:.2}", r.billed_per_job[0], r.billed_per_job[1])
                );
            }
            let _ = writeln!(out, "{}", sc.note);
            out.push('\n');
        }
    }
}

/// The largest distance of the spread's ends from `expected`, signed.
pub fn worst_error(spread: &Spread, expected: f64) -> f64 {
    let low = spread.min - expected;
    let high = spread.max - expected;
    if high.abs() >= low.abs() { high } else { low }
}
