//! What the job tests share: a standalone `encore sim` process (its ledger outlives the
//! `encore run` processes that a test kills and restarts), a job store in a temporary
//! directory read with encore-store while `encore run` writes it, and `encore run` processes
//! to watch, kill and resume.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use encore_pipeline::{JobStatus, Journal, StepName, StepState};
use encore_store::{JobDetail, JobId, NewJob, Origin, Store};
use serde_json::{Value, json};

use crate::{KillOnDrop, encore_process};

/// A `[pipeline]` table for the simulator's time scale 0.01: status reads every 100–250 ms.
pub const FAST_POLLING: &str = "[pipeline]
song_poll = { interval = \"100ms\", max_interval = \"250ms\", multiplier = 1.5, deadline = \"2m\" }
video_poll = { interval = \"100ms\", max_interval = \"250ms\", multiplier = 1.5, deadline = \"2m\" }
";

/// How long a test waits for anything before failing.
const PATIENCE: Duration = Duration::from_secs(60);

/// A standalone simulator at time scale 0.01, killed when dropped.
pub struct Sim {
    _process: KillOnDrop,
    pub base: String,
}

impl Sim {
    /// `encore sim --port 0 --time-scale 0.01`, with `scenario` (TOML) when given.
    pub fn start(dir: &Path, scenario: Option<&str>) -> Sim {
        let mut args = vec!["--time-scale".to_owned(), "0.01".to_owned()];
        if let Some(scenario) = scenario {
            let file = dir.join("scenario.toml");
            std::fs::write(&file, scenario).unwrap();
            args.push("--scenario-file".to_owned());
            args.push(file.to_string_lossy().into_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (process, base) = crate::start_sim(&args);
        Sim {
            _process: process,
            base,
        }
    }

    /// `GET /__sim/ledger`.
    pub fn ledger(&self) -> Value {
        crate::get_json(&self.base, "/__sim/ledger")
    }

    /// The ids of the billed jobs of `kind` (`suno_task`, `creatomate_render`) in the ledger.
    pub fn billed(&self, kind: &str) -> Vec<String> {
        self.ledger()["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] == kind)
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A temporary directory with a fast-polling `encore.toml` and a job store, read from the
/// test with encore-store.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub config: PathBuf,
    rt: tokio::runtime::Runtime,
    store: Mutex<Option<Store>>,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace::with_config(FAST_POLLING)
    }

    pub fn with_config(config: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("jobs.db");
        let file = dir.path().join("encore.toml");
        std::fs::write(&file, config).unwrap();
        Workspace {
            dir,
            db,
            config: file,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            store: Mutex::new(None),
        }
    }

    /// `encore <args> --db <db> --config <config>` (and `--sim` when given).
    pub fn command(&self, sim: Option<&Sim>, args: &[&str]) -> std::process::Command {
        let mut cmd = encore_process();
        cmd.args(args).arg("--db").arg(&self.db);
        cmd.arg("--config").arg(&self.config);
        if let Some(sim) = sim {
            cmd.args(["--sim", &sim.base]);
        }
        cmd
    }

    /// Runs `encore <args>` to its end (within the test's patience).
    pub fn output(&self, sim: Option<&Sim>, args: &[&str]) -> Output {
        finish(
            self.command(sim, args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }

    /// `encore jobs <args> --json`, expecting exit `code`: the document.
    pub fn jobs_json(&self, args: &[&str], code: i32) -> Value {
        let mut all = vec!["jobs"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = self.output(None, &all);
        assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)))
    }

    /// Starts `encore run` for a new job of a business named `name`.
    pub fn start_run(&self, sim: &Sim, name: &str) -> Running {
        Running::spawn(self.command(
            Some(sim),
            &[
                "run",
                "--business",
                "a neighbourhood bakery",
                "--name",
                name,
                "--lang",
                "en",
            ],
        ))
    }

    /// `encore run --resume id` to its end.
    pub fn resume(&self, sim: &Sim, id: JobId) -> Output {
        self.output(Some(sim), &["run", "--resume", &id.to_string(), "--json"])
    }

    /// The test's one handle on the job store, opened on first use (a second `Store::open` of
    /// the file in this process would give the same store anyway).
    pub fn store(&self) -> Store {
        let mut store = self.store.lock().unwrap();
        store
            .get_or_insert_with(|| {
                self.rt
                    .block_on(Store::open(self.db.to_str().unwrap()))
                    .expect("the job store opens")
            })
            .clone()
    }

    /// Runs `future` on the workspace's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// The job with its steps, as stored now.
    pub fn job(&self, id: JobId) -> JobDetail {
        let store = self.store();
        self.rt.block_on(store.get_job(id)).expect("the job exists")
    }

    /// Reads the job every 2 ms until `ready` says so (or fails the test).
    pub fn wait_for(&self, id: JobId, what: &str, ready: impl Fn(&JobDetail) -> bool) -> JobDetail {
        let store = self.store();
        let start = Instant::now();
        loop {
            let detail = self.rt.block_on(store.get_job(id)).expect("the job exists");
            if ready(&detail) {
                return detail;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "job {id}: never {what}: {:#?}",
                detail.steps
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Jobs for the retention tests, made with encore-store in `ws`'s store (before any `encore`
/// process opens it): one of each status but running, forty days old, and one cancelled job
/// made just now. Returns the old ones with their status, and the recent one.
pub fn aged_jobs(ws: &Workspace) -> (Vec<(JobStatus, JobId)>, JobId) {
    use sqlx::Connection;

    let db = ws.db.to_str().unwrap().to_owned();
    ws.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let mut old = Vec::new();
        for status in [
            JobStatus::Succeeded,
            JobStatus::Cancelled,
            JobStatus::Failed,
            JobStatus::NeedsAttention,
            JobStatus::Queued,
        ] {
            let job = store
                .create_job(&NewJob::new(Origin::Cli, json!({"business": "a bakery"})))
                .await
                .unwrap()
                .job;
            if status != JobStatus::Queued {
                let lease = store
                    .claim(job.id, "test", Duration::from_secs(60))
                    .await
                    .unwrap();
                lease.start(StepName::Lyrics, None).await.unwrap();
                match status {
                    JobStatus::Succeeded => lease.set_succeeded(&json!({})).await.unwrap(),
                    JobStatus::Cancelled => lease.set_cancelled().await.unwrap(),
                    JobStatus::Failed => lease
                        .set_failed(&encore_store::JobError {
                            code: "video.failed".to_owned(),
                            message: "failed".to_owned(),
                            class: "permanent".to_owned(),
                        })
                        .await
                        .unwrap(),
                    _ => lease
                        .set_needs_attention(&encore_store::Attention {
                            step: Some(StepName::SongSubmit),
                            reason: "unknown".to_owned(),
                            resolution: "resolve".to_owned(),
                        })
                        .await
                        .unwrap(),
                }
            }
            old.push((status, job.id));
        }
        let recent = store
            .create_job(&NewJob::new(Origin::Cli, json!({"business": "a florist"})))
            .await
            .unwrap()
            .job
            .id;
        store.request_cancel(recent).await.unwrap();
        store.close().await;
        // Forty days pass for all but the recent one.
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{db}"))
            .await
            .unwrap();
        sqlx::query("UPDATE jobs SET updated_at = updated_at - 40 * 86400000 WHERE id <> $1")
            .bind(recent.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        (old, recent)
    })
}

/// The state of `step` in `detail` (`None`: never started).
pub fn state(detail: &JobDetail, step: StepName) -> Option<StepState> {
    detail
        .steps
        .iter()
        .find(|s| s.name == step)
        .map(|s| s.state)
}

/// A running `encore` whose stderr lines are collected as they come.
pub struct Running {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn spawn(mut cmd: std::process::Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let all = stderr.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                all.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            stderr,
            lines,
        }
    }

    /// Waits for a stderr line containing `text`; returns it.
    pub fn line_with(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {text:?} ({e}):\n{}", self.stderr()),
            }
        }
    }

    /// The job id from the `job <id> started` line.
    pub fn job_id(&self) -> JobId {
        let line = self.line_with(" started (journal ");
        line.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL, and reap the process (its pid is then gone).
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGINT (Ctrl-C).
    #[cfg(unix)]
    pub fn interrupt(&self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::INT,
        )
        .unwrap();
    }

    /// Waits for the exit: the output with the stderr collected so far.
    pub fn wait(self) -> Output {
        let Running { child, stderr, .. } = self;
        let mut out = finish(child);
        // The reader thread has seen the end of stderr once the process is gone.
        std::thread::sleep(Duration::from_millis(20));
        out.stderr = stderr.lock().unwrap().clone().into_bytes();
        out
    }
}

/// Waits for `child` to exit within the test's patience (killing it otherwise).
fn finish(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > PATIENCE {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// Exit code, stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stdout as one JSON document.
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", describe(out)))
}
