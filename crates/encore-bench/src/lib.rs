//! encore's cost benchmark: encore's retry path measured side by side with raw reqwest,
//! reqwest-middleware + reqwest-retry, backon and tower::retry, in one run on one machine, so
//! the ratios hold even on a noisy box.
//!
//! A minimal axum server on 127.0.0.1 ([`server`]) plays the upstream; every contender
//! ([`contenders`]) shares one `reqwest::Client` and one policy; the scenarios
//! ([`scenarios`]) interleave the contenders with a rotating order. The table goes to stdout
//! (or JSON with `--json`), progress to stderr.
//!
//! `--only service` measures `encore serve` instead ([`service`], [`in_flight`], [`queue`],
//! [`scale`]): requests per job, makespan against the exact ideal, jobs in flight per worker,
//! the store against a peer job queue, and scale-out over worker processes.
//!
//! Usage: `cargo bench-encore [--json] [--quick] [--only happy,deadline,attempts,retry-after,amplification,memory,pipeline,service]`

pub mod alloc;
pub mod contenders;
pub mod in_flight;
pub mod makespan;
pub mod pg;
pub mod queue;
pub mod report;
pub mod scale;
pub mod scenarios;
pub mod server;
pub mod service;
pub mod stats;
pub mod worker;

use std::process::ExitCode;
use std::time::Instant;

use report::{Meta, Pipeline, Report};
use scenarios::Ctx;

/// The scenarios, by the names `--only` takes. `service` stands for its four parts
/// (`service.requests`, `service.in-flight`, `service.store`, `service.scale`), which can also
/// be named alone.
pub const SCENARIOS: [&str; 12] = [
    "happy",
    "deadline",
    "attempts",
    "retry-after",
    "amplification",
    "memory",
    "pipeline",
    "service",
    "service.requests",
    "service.in-flight",
    "service.store",
    "service.scale",
];

/// Command-line options.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Print JSON on stdout instead of the table (the table then goes to stderr).
    pub json: bool,
    /// A short smoke run.
    pub quick: bool,
    /// Only these scenarios.
    pub only: Option<Vec<String>>,
    /// Instead of the scenarios: this many sequential happy-path calls of one contender, for
    /// `perf record` / `perf stat` (`--profile encore --calls 200000`).
    pub profile: Option<(contenders::Contender, usize)>,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--json" => options.json = true,
                "--quick" => options.quick = true,
                "--profile" => {
                    let key = args.next().ok_or("--profile needs a contender")?;
                    let contender = contenders::Contender::ALL
                        .into_iter()
                        .find(|c| c.key() == key)
                        .ok_or_else(|| {
                            let keys: Vec<_> =
                                contenders::Contender::ALL.iter().map(|c| c.key()).collect();
                            format!("unknown contender {key:?}: use {}", keys.join(", "))
                        })?;
                    options.profile = Some((contender, 100_000));
                }
                "--calls" => {
                    let n = args.next().ok_or("--calls needs a number")?;
                    let n: usize = n
                        .parse()
                        .map_err(|_| format!("--calls {n:?}: not a number"))?;
                    match &mut options.profile {
                        Some((_, calls)) => *calls = n.clamp(1, 10_000_000),
                        None => return Err("--calls goes with --profile".to_owned()),
                    }
                }
                "--only" => {
                    let list = args.next().ok_or("--only needs a list")?;
                    let names: Vec<String> = list.split(',').map(str::to_owned).collect();
                    if let Some(bad) = names.iter().find(|n| !SCENARIOS.contains(&n.as_str())) {
                        return Err(format!(
                            "unknown scenario {bad:?}: use {}",
                            SCENARIOS.join(", ")
                        ));
                    }
                    options.only = Some(names);
                }
                "-h" | "--help" => {
                    return Err(format!(
                        "usage: cargo bench-encore [--json] [--quick] [--only {}]\n       \
                         cargo bench-encore --profile <contender> [--calls N]",
                        SCENARIOS.join(",")
                    ));
                }
                other => return Err(format!("unknown argument {other:?} (try --help)")),
            }
        }
        Ok(options)
    }

    fn wants(&self, scenario: &str) -> bool {
        self.only.as_ref().is_none_or(|only| {
            only.iter()
                .any(|s| s == scenario || (s == "service" && scenario.starts_with("service.")))
        })
    }
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    // A worker process of the service benchmarks: this binary re-executed as `encore`.
    if let Some(code) = worker::child_main() {
        return code;
    }
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(message) if message.starts_with("usage:") => {
            println!("{message}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let profile = options.profile.is_some();
    let for_service = options.clone();
    // Run the driver on a worker, like the calls it makes, not on the main thread.
    let report = runtime.block_on(async move { tokio::spawn(run(options, cpus)).await });
    let report = match report {
        Ok(Ok((mut report, json))) if !profile => {
            runtime.block_on(service_part(&for_service, &mut report, started));
            Ok(Ok((report, json)))
        }
        other => other,
    };
    match report {
        Ok(Ok((report, json))) => {
            if json {
                eprint!("{}", report.table());
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.table());
            }
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: the benchmark task failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options, cpus: usize) -> anyhow::Result<(Report, bool)> {
    let started = Instant::now();
    // reqwest is built without a default TLS provider (like the main workspace); only plain
    // http to 127.0.0.1 is used, but the client builder still wants a provider installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()?;
    let server = server::Server::start().await?;
    let ctx = Ctx {
        client,
        server,
        quick: options.quick,
        started,
    };
    ctx.progress(format!("server on {}", ctx.server.base));
    if let Some((contender, calls)) = options.profile {
        scenarios::profile(&ctx, contender, calls).await?;
        return Ok((Report::default(), false));
    }

    let mut report = Report {
        meta: Meta {
            cpus,
            workers: cpus,
            fd_limit: fd_limit(),
            elapsed_s: 0.0,
            quick: options.quick,
        },
        ..Report::default()
    };
    let failed = |name: &str, e: anyhow::Error| {
        ctx.progress(format!("{name} failed: {e:#}"));
        report_failure(name, &e)
    };
    let mut failures = Vec::new();
    if options.wants("happy") {
        match scenarios::happy_path(&ctx).await {
            Ok(h) => report.happy_path = Some(h),
            Err(e) => failures.push(failed("happy path", e)),
        }
    }
    if options.wants("deadline") {
        match scenarios::deadline(&ctx).await {
            Ok(d) => report.deadline = Some(d),
            Err(e) => failures.push(failed("deadline", e)),
        }
    }
    if options.wants("attempts") {
        match scenarios::attempts(&ctx).await {
            Ok(d) => report.attempts = Some(d),
            Err(e) => failures.push(failed("attempts", e)),
        }
    }
    if options.wants("retry-after") {
        match scenarios::retry_after(&ctx).await {
            Ok(d) => report.retry_after = Some(d),
            Err(e) => failures.push(failed("retry-after", e)),
        }
    }
    if options.wants("amplification") {
        match scenarios::amplification(&ctx).await {
            Ok(d) => report.amplification = Some(d),
            Err(e) => failures.push(failed("amplification", e)),
        }
    }
    if options.wants("memory") {
        match scenarios::memory(&ctx).await {
            Ok(d) => report.memory = Some(d),
            Err(e) => failures.push(failed("memory", e)),
        }
    }
    if options.wants("pipeline") {
        match makespan::pipeline(|m| ctx.progress(m)).await {
            Ok(p) => report.pipeline = Some(p),
            Err(e) => {
                report.pipeline = Some(Pipeline {
                    measured: false,
                    note: format!("{e:#}"),
                    makespan_ms: None,
                    ideal_ms: None,
                    ratio: None,
                    backoff_ms: None,
                    demanded_ms: None,
                });
                failures.push(failed("pipeline", e));
            }
        }
    }
    report.failures = failures;
    report.meta.elapsed_s = started.elapsed().as_secs_f64();
    report.check_targets();
    Ok((report, options.json))
}

/// The service measurements (`--only service`). They run on the calling thread, after the
/// other scenarios: they drive child processes and hold borrowed store handles across awaits,
/// which the compiler cannot prove `Send` for a spawned task (higher-ranked lifetimes of
/// sqlx's executors), and their own load is in the children and the simulator's tasks.
async fn service_part(options: &Options, report: &mut Report, started: Instant) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            report
                .failures
                .push(format!("service: no HTTP client: {e}"));
            return;
        }
    };
    let load_before = load_average();
    let mut failures = Vec::new();
    let failed = |name: &str, e: anyhow::Error| {
        eprintln!("{name} failed: {e:#}");
        report_failure(name, &e)
    };
    let progress = |m: String| {
        eprintln!("[{:>6.1}s] {m}", started.elapsed().as_secs_f64());
    };
    if options.wants("service.requests") {
        let service = report.service.get_or_insert_with(report::Service::default);
        match service::batches(&client, options.quick, &progress).await {
            Ok(batches) => service.batches = batches,
            Err(e) => failures.push(failed("service requests", e)),
        }
    }
    if options.wants("service.in-flight") {
        let service = report.service.get_or_insert_with(report::Service::default);
        match in_flight::in_flight(&client, options.quick, &progress).await {
            Ok(f) => service.in_flight = Some(f),
            Err(e) => failures.push(failed("service jobs in flight", e)),
        }
    }
    if options.wants("service.store") {
        let service = report.service.get_or_insert_with(report::Service::default);
        match queue::store(options.quick, &progress).await {
            Ok(s) => service.store = Some(s),
            Err(e) => failures.push(failed("service store", e)),
        }
    }
    if options.wants("service.scale") {
        let service = report.service.get_or_insert_with(report::Service::default);
        match scale::scale_out(&client, options.quick, &progress).await {
            Ok(s) => service.scale_out = Some(s),
            Err(e) => failures.push(failed("service scale-out", e)),
        }
    }
    if let Some(service) = &mut report.service {
        service.load_average = [load_before, load_average()];
    }
    report.failures.extend(failures);
    report.meta.elapsed_s = started.elapsed().as_secs_f64();
    report.check_targets();
}

fn report_failure(name: &str, e: &anyhow::Error) -> String {
    format!("{name}: {e:#}")
}

/// The 1-minute load average, from `/proc/loadavg` (NaN when unreadable).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits`.
fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
