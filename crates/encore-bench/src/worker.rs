//! `encore serve` worker processes for the service benchmarks.
//!
//! A worker is this benchmark's own binary re-executed with [`AS_ENCORE`] set: it then runs the
//! `encore` command line (`encore_cli::main`, the very code of the `encore` binary) with
//! `serve --sim … --db … --listen …`, in a process of its own. That gives a release-built
//! `encore serve` whose peak RSS, CPU time and heap can be read from outside (`/proc/<pid>`),
//! without a second release build of the workspace. The benchmark talks to it only over
//! loopback HTTP (`POST /v1/jobs`) and reads the job store it writes.
//!
//! With [`HEAP_FILE`] set, the worker also counts its live heap bytes (the counting allocator of
//! [`crate::alloc`], on for the whole process) and writes the count to that file every 20 ms.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use encore_pipeline::PipelineConfig;
use tokio::process::{Child, Command};

/// Set in a worker's environment: run the `encore` command line instead of the benchmark.
pub const AS_ENCORE: &str = "ENCORE_BENCH_AS_ENCORE";
/// Set in a worker's environment: count the heap and write the live bytes to this file.
pub const HEAP_FILE: &str = "ENCORE_BENCH_HEAP_FILE";

/// In a process started by [`Worker::spawn`]: runs `encore` (and the heap counter) and returns
/// its exit code. Anywhere else: `None`.
pub fn child_main() -> Option<ExitCode> {
    std::env::var_os(AS_ENCORE)?;
    if let Some(path) = std::env::var_os(HEAP_FILE) {
        crate::alloc::start();
        let path = PathBuf::from(path);
        let tmp = path.with_extension("tmp");
        std::thread::spawn(move || {
            loop {
                // Write then rename, so a reader never sees half a number.
                if std::fs::write(&tmp, crate::alloc::net().to_string()).is_ok() {
                    let _ = std::fs::rename(&tmp, &path);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }
    Some(encore_cli::main())
}

/// How one worker runs.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The simulator's base URL (`--sim`).
    pub sim_url: String,
    /// The job store: an SQLite file or a `postgres://` URL (`--db`).
    pub db: String,
    /// Provider callbacks to this worker (`--public-url`), or polling only (`--no-callbacks`).
    pub callbacks: bool,
    /// Jobs it runs at once (`--concurrency`).
    pub concurrency: usize,
    /// The simulator's time scale: the worker's poll timings are scaled like `encore serve
    /// --demo` scales them.
    pub time_scale: f64,
    /// Whether encore's client-side rate limits (the per-account quotas) stay on.
    pub quotas: bool,
    /// How often an idle worker looks for queued jobs (`serve.claim_interval`).
    pub claim_interval: Duration,
    /// Count the heap (see [`HEAP_FILE`]).
    pub count_heap: bool,
}

/// What `/proc/<pid>` says about a worker.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// Peak resident set (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Resident set now (`VmRSS`), bytes.
    pub rss: u64,
    /// User plus system CPU time, seconds.
    pub cpu_s: f64,
}

/// A running `encore serve`.
#[derive(Debug)]
pub struct Worker {
    child: Child,
    pid: u32,
    /// Its API, `http://127.0.0.1:<port>`.
    pub base: String,
    dir: tempfile::TempDir,
}

impl Worker {
    /// Starts `encore serve` and waits (at most 30 s) until `/readyz` answers 200.
    pub async fn spawn(spec: &Spec, http: &reqwest::Client) -> anyhow::Result<Worker> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("encore.toml");
        std::fs::write(&config, config_toml(spec))?;
        // A free port: bound and released at once (loopback, so only this machine can race).
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let exe = std::env::current_exe().context("the benchmark's own path")?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--sim", &spec.sim_url, "--db", &spec.db])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--concurrency", &spec.concurrency.to_string()]);
        if spec.callbacks {
            command.args(["--public-url", &base]);
        } else {
            command.arg("--no-callbacks");
        }
        // Only what the worker needs from this environment: no keys (the simulator takes any),
        // no ENCORE_* settings of the person running the benchmark.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ENCORE_") {
                command.env_remove(key);
            }
        }
        command.env(AS_ENCORE, "1").env_remove("RUST_LOG");
        if spec.count_heap {
            command.env(HEAP_FILE, dir.path().join("heap"));
        }
        let stderr = std::fs::File::create(dir.path().join("stderr"))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let child = command.spawn().context("could not start encore serve")?;
        let pid = child.id().context("the worker exited at once")?;
        let mut worker = Worker {
            child,
            pid,
            base,
            dir,
        };
        let started = Instant::now();
        loop {
            if let Ok(answer) = http.get(format!("{}/readyz", worker.base)).send().await
                && answer.status().is_success()
            {
                return Ok(worker);
            }
            if let Some(status) = worker.child.try_wait()? {
                bail!(
                    "encore serve exited with {status}: {}",
                    worker.stderr_tail()
                );
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "encore serve was not ready within 30 s: {}",
                    worker.stderr_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Peak RSS, RSS and CPU time so far, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
    pub fn stats(&self) -> anyhow::Result<ProcStats> {
        proc_stats(self.pid)
    }

    /// The worker's live heap bytes (with [`Spec::count_heap`]), as last written.
    pub fn heap(&self) -> Option<i64> {
        std::fs::read_to_string(self.dir.path().join("heap"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The last lines the worker wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join(" | ")
    }

    /// SIGTERM, then waits (at most 40 s: the grace of running jobs plus margin) for it to
    /// exit; kills it if it does not.
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let pid = rustix::process::Pid::from_raw(self.pid as i32).context("a worker pid")?;
        if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_err() {
            // Already gone.
            return Ok(self.child.wait().await?);
        }
        if let Ok(status) = tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await {
            return Ok(status?);
        }
        self.child.kill().await?;
        bail!("encore serve did not stop within 40 s of SIGTERM; killed")
    }
}

/// `/proc/<pid>` figures of any process.
pub fn proc_stats(pid: u32) -> anyhow::Result<ProcStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("a /proc stat line")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
    let ticks = |i: usize| -> u64 { fields.get(i - 3).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let hz = rustix::param::clock_ticks_per_second() as f64;
    Ok(ProcStats {
        peak_rss: kb("VmHWM:") * 1024,
        rss: kb("VmRSS:") * 1024,
        cpu_s: (ticks(14) + ticks(15)) as f64 / hz,
    })
}

/// The worker's `encore.toml`: the poll timings scaled to the simulator's time scale as
/// `encore serve --demo` scales them, and the quotas on or off.
fn config_toml(spec: &Spec) -> String {
    let scale = spec.time_scale;
    let defaults = PipelineConfig::default();
    let scaled =
        |d: Duration, min: Duration| Duration::from_secs_f64(d.as_secs_f64() * scale).max(min);
    let ms = |d: Duration| format!("\"{}ms\"", d.as_millis().max(1));
    let mut out = String::new();
    let _ = writeln!(out, "[pipeline]");
    let _ = writeln!(
        out,
        "callback_poll_interval = {}",
        ms(scaled(
            defaults.callback_poll_interval,
            Duration::from_millis(500)
        ))
    );
    let _ = writeln!(
        out,
        "not_found_grace = {}",
        ms(scaled(defaults.not_found_grace, Duration::from_millis(500)))
    );
    for (name, poll) in [
        ("song_poll", defaults.song_poll.for_time_scale(scale)),
        ("video_poll", defaults.video_poll.for_time_scale(scale)),
    ] {
        let _ = writeln!(out, "[pipeline.{name}]");
        let _ = writeln!(out, "interval = {}", ms(poll.interval));
        let _ = writeln!(out, "max_interval = {}", ms(poll.max_interval));
        let _ = writeln!(out, "multiplier = {:?}", poll.multiplier);
        let _ = writeln!(out, "deadline = {}", ms(poll.deadline));
    }
    let _ = writeln!(out, "[serve]");
    let _ = writeln!(out, "claim_interval = {}", ms(spec.claim_interval));
    let _ = writeln!(
        out,
        "reconcile_window = {}",
        ms(scaled(Duration::from_secs(15 * 60), Duration::from_secs(5)))
    );
    if !spec.quotas {
        for service in ["openai", "suno", "creatomate"] {
            let _ = writeln!(out, "[services.{service}.rate_limit]\nenabled = false");
        }
    }
    out
}
