//! Scale-out: several `encore serve` worker processes on one PostgreSQL database (a schema of
//! the test's own on `ENCORE_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`,
//! what `.ci/postgres` starts) and one `encore sim` whose ledger outlives them.
//!
//! The accounts' quotas are shared through the database, so together the workers never earn a
//! rate-limit refusal; a worker killed outright loses nothing (its leases expire and the others
//! resume its jobs from their journals); a worker stopped past its leases wakes up to find its
//! jobs taken over, and its late writes change nothing (refused by their fencing numbers).

use std::io::{BufRead, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::{KillOnDrop, encore_process, get_json, http, start_sim};

const PG_URL_VAR: &str = "ENCORE_TEST_PG_URL";
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const LEASE_TTL: Duration = Duration::from_secs(2);

/// A PostgreSQL schema for one test, dropped afterwards, and a runtime to query it with.
struct Pg {
    rt: tokio::runtime::Runtime,
    base: String,
    schema: String,
}

impl Pg {
    fn new() -> Pg {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let base = std::env::var(PG_URL_VAR).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
        let schema = format!(
            "encore_test_{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let pg = Pg { rt, base, schema };
        pg.execute(&format!("CREATE SCHEMA {}", pg.schema));
        pg
    }

    fn connect(&self) -> PgConnection {
        self.rt
            .block_on(PgConnection::connect(&self.base))
            .unwrap_or_else(|e| {
                panic!(
                    "this test needs PostgreSQL ({e}): start one (.ci/postgres) or set {PG_URL_VAR}"
                )
            })
    }

    fn execute(&self, sql: &str) {
        let mut conn = self.connect();
        self.rt
            .block_on(sqlx::query(sql).execute(&mut conn))
            .unwrap();
    }

    /// The `--db` target: the database with the schema as its search path.
    fn target(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}options=-c%20search_path%3D{}",
            self.base, self.schema
        )
    }

    /// Every job: id, status, lease owner, fencing number.
    fn jobs(&self) -> Vec<(String, String, Option<String>, i64)> {
        let mut conn = self.connect();
        self.rt
            .block_on(
                sqlx::query_as(&format!(
                    "SELECT id, status, lease_owner, lease_fence FROM {}.jobs ORDER BY id",
                    self.schema
                ))
                .fetch_all(&mut conn),
            )
            .unwrap()
    }

    /// A job's `status` events (claims name their owner and fence).
    fn status_events(&self, id: &str) -> Vec<Value> {
        let mut conn = self.connect();
        let rows: Vec<(String,)> = self
            .rt
            .block_on(
                sqlx::query_as(&format!(
                    "SELECT data FROM {}.job_events WHERE job_id = $1 AND kind = 'status' ORDER BY seq",
                    self.schema
                ))
                .bind(id)
                .fetch_all(&mut conn),
            )
            .unwrap();
        rows.into_iter()
            .map(|(data,)| serde_json::from_str(&data).unwrap())
            .collect()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        if let Ok(mut conn) = self.rt.block_on(PgConnection::connect(&self.base)) {
            let _ = self.rt.block_on(sqlx::query(&sql).execute(&mut conn));
        }
    }
}

/// The one public address of every worker (what a load balancer is in production): each
/// connection goes to the next live worker. Providers' callbacks for a job then reach a live
/// worker whichever worker sent its request, and are shared with the one running the job
/// through the database.
struct Balancer {
    addr: SocketAddr,
    /// Each worker, whether it is live, and the connections relayed to it.
    backends: Arc<Mutex<Vec<Backend>>>,
}

struct Backend {
    addr: SocketAddr,
    live: bool,
    open: Vec<TcpStream>,
}

impl Balancer {
    fn start() -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let backends: Arc<Mutex<Vec<Backend>>> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let shared = Arc::clone(&backends);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let backends = Arc::clone(&shared);
                let turn = next.fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || relay(client, &backends, turn));
            }
        });
        Balancer { addr, backends }
    }

    fn add(&self, addr: SocketAddr) {
        self.backends.lock().unwrap().push(Backend {
            addr,
            live: true,
            open: Vec::new(),
        });
    }

    /// Takes a worker out (its relayed connections are closed) or puts it back.
    fn set_live(&self, addr: SocketAddr, live: bool) {
        for backend in self.backends.lock().unwrap().iter_mut() {
            if backend.addr == addr {
                backend.live = live;
                for stream in backend.open.drain(..) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

fn relay(client: TcpStream, backends: &Mutex<Vec<Backend>>, turn: usize) {
    let target = {
        let list = backends.lock().unwrap();
        let live: Vec<SocketAddr> = list.iter().filter(|b| b.live).map(|b| b.addr).collect();
        if live.is_empty() {
            return;
        }
        live[turn % live.len()]
    };
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
        return;
    };
    {
        let mut list = backends.lock().unwrap();
        if let Some(backend) = list.iter_mut().find(|b| b.addr == target) {
            backend.open.retain(|s| s.peer_addr().is_ok());
            backend.open.push(client.try_clone().unwrap());
        }
    }
    let (mut client_read, mut server_write) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    let (mut server_read, mut client_write) = (server, client);
    let _ = std::io::copy(&mut server_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = upstream.join();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `encore serve` worker: its process, its API, its log file.
struct Worker {
    process: KillOnDrop,
    base: String,
    addr: SocketAddr,
    log: PathBuf,
}

impl Worker {
    /// A worker whose callbacks come through `public` (every worker's public URL is the same
    /// one, in front of them all, as in production), or to itself.
    fn start(sim: &str, db: &str, logs: &Path, n: usize, public: Option<&Balancer>) -> Worker {
        Worker::start_with(sim, db, logs, n, &[], public)
    }

    fn start_with(
        sim: &str,
        db: &str,
        logs: &Path,
        n: usize,
        env: &[(&str, &str)],
        public: Option<&Balancer>,
    ) -> Worker {
        let port = free_port();
        let public_url = public.map_or_else(
            || format!("http://127.0.0.1:{port}"),
            |b| format!("http://{}", b.addr),
        );
        if let Some(balancer) = public {
            balancer.add(([127, 0, 0, 1], port).into());
        }
        let log = logs.join(format!("worker-{n}.log"));
        let mut child = encore_process()
            .args(["serve", "--sim", sim, "--db", db])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-url", &public_url])
            .env("ENCORE_SERVE__LEASE_TTL", "2s")
            .env("ENCORE_SERVE__CLAIM_INTERVAL", "100ms")
            .env("ENCORE_SERVE__SHUTDOWN_GRACE", "5s")
            .env("ENCORE_PIPELINE__CALLBACK_POLL_INTERVAL", "2s")
            // One Creatomate request less per job: the quota (30 per 10 s) sets the pace.
            .env("ENCORE_PIPELINE__CHECK_TEMPLATE", "false")
            .env("RUST_LOG", "encore_service=info,encore_store=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(first.starts_with("encore serve listening on"), "{first:?}");
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Worker {
            process: KillOnDrop(child),
            base: format!("http://127.0.0.1:{port}"),
            addr: ([127, 0, 0, 1], port).into(),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// Whether `owner` (a lease owner, `serve@host pid N`) is this worker.
    fn owns(&self, owner: Option<&str>) -> bool {
        owner.is_some_and(|o| o.ends_with(&format!(" pid {}", self.pid())))
    }

    fn signal(&self, signal: rustix::process::Signal) {
        rustix::process::kill_process(rustix::process::Pid::from_child(&self.process.0), signal)
            .unwrap();
    }
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(jobs: &[(String, String, Option<String>, i64)], status: &str) -> usize {
    jobs.iter().filter(|j| j.1 == status).count()
}

#[cfg(unix)]
#[test]
fn three_workers_share_the_quotas_and_survive_a_kill_and_a_stop() {
    use rustix::process::Signal;
    const JOBS: usize = 60;
    let started = Instant::now();
    let (_sim, sim) = start_sim(&["--time-scale", "0.01"]);
    let pg = Pg::new();
    let db = pg.target();
    let public = Balancer::start();
    let logs = tempfile::Builder::new()
        .prefix("encore-workers-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let workers: Vec<Worker> = (0..3)
        .map(|n| Worker::start(&sim, &db, logs.path(), n, Some(&public)))
        .collect();
    let (killed, stopped) = (&workers[0], &workers[1]);

    let ids: Vec<String> = (0..JOBS)
        .map(|i| {
            let body = json!({"business": format!("bakery number {i}"), "name": format!("Bakery {i}"), "lang": "en"});
            let base = &workers[i % 3].base;
            let (code, body) = http(base, "POST", "/v1/jobs", Some(&body));
            assert_eq!(code, 201, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned()
        })
        .collect();

    // SIGKILL one worker mid-way, while it holds jobs.
    wait_until("the first jobs to finish", Duration::from_secs(60), || {
        let jobs = pg.jobs();
        count(&jobs, "succeeded") >= 6 && jobs.iter().any(|j| killed.owns(j.2.as_deref()))
    });
    killed.signal(Signal::KILL);
    public.set_live(killed.addr, false);
    let killed_at = started.elapsed();

    // SIGSTOP another past its leases, until the third has taken over every job it held.
    let mut held: Vec<(String, i64)> = Vec::new();
    wait_until(
        "the stopped worker to hold jobs",
        Duration::from_secs(60),
        || {
            let jobs = pg.jobs();
            held = jobs
                .iter()
                .filter(|j| j.1 == "running" && stopped.owns(j.2.as_deref()))
                .map(|j| (j.0.clone(), j.3))
                .collect();
            count(&jobs, "succeeded") >= 15 && !held.is_empty()
        },
    );
    stopped.signal(Signal::STOP);
    public.set_live(stopped.addr, false);
    let stopped_at = Instant::now();
    let stopped_after = started.elapsed();
    let held: Vec<(String, i64)> = pg
        .jobs()
        .into_iter()
        .filter(|j| j.1 == "running" && stopped.owns(j.2.as_deref()))
        .map(|j| (j.0, j.3))
        .collect();
    assert!(!held.is_empty(), "the stopped worker held jobs");
    wait_until(
        "the stopped worker's jobs to be taken over",
        Duration::from_secs(60),
        || {
            let jobs = pg.jobs();
            held.iter().all(|(id, fence)| {
                jobs.iter()
                    .any(|j| &j.0 == id && (j.3 > *fence || j.1 == "succeeded"))
            })
        },
    );
    std::thread::sleep(LEASE_TTL.saturating_sub(stopped_at.elapsed()));
    stopped.signal(Signal::CONT);
    public.set_live(stopped.addr, true);
    let resumed_at = started.elapsed();

    let ended = |j: &(String, String, Option<String>, i64)| {
        matches!(
            j.1.as_str(),
            "succeeded" | "failed" | "needs_attention" | "cancelled"
        )
    };
    let limit = Instant::now() + Duration::from_secs(120);
    while !pg.jobs().iter().all(ended) {
        if Instant::now() > limit {
            let open: Vec<_> = pg.jobs().into_iter().filter(|j| !ended(j)).collect();
            let logs = logs.keep();
            panic!(
                "jobs still open after 120 s: {open:?}\nlogs kept in {}\n{}",
                logs.display(),
                logs_of(&workers)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let finished_at = started.elapsed();
    let jobs = pg.jobs();
    let not_done: Vec<_> = jobs.iter().filter(|j| j.1 != "succeeded").collect();
    assert!(
        not_done.is_empty(),
        "every job succeeds: {not_done:?}\n{}",
        logs_of(&workers)
    );
    let mut stored: Vec<&str> = jobs.iter().map(|j| j.0.as_str()).collect();
    let mut submitted: Vec<&str> = ids.iter().map(String::as_str).collect();
    stored.sort_unstable();
    submitted.sort_unstable();
    assert_eq!(stored, submitted, "the jobs are the ones submitted");

    // Exactly one paid job per job, and not one rate-limit refusal for the whole account.
    let ledger = get_json(&sim, "/__sim/ledger");
    assert_eq!(ledger["suno_tasks"], JOBS, "one Suno task per job");
    assert_eq!(ledger["creatomate_renders"], JOBS, "one render per job");
    assert_eq!(
        ledger["rate_limited_per_route"],
        json!({}),
        "the simulator never refused a request for the account's quotas"
    );

    // The stopped worker's jobs were claimed by another worker while it slept (a new fence and
    // owner in their timelines); once awake, its writes were refused and it carried on serving.
    let awake_log = std::fs::read_to_string(&stopped.log).unwrap();
    for (id, fence) in &held {
        let claims: Vec<Value> = pg
            .status_events(id)
            .into_iter()
            .filter(|e| e["status"] == "running")
            .collect();
        assert!(
            claims
                .iter()
                .any(|c| c["fence"].as_i64() > Some(*fence) && !stopped.owns(c["owner"].as_str())),
            "job {id} was taken over: {claims:?}"
        );
    }
    assert!(
        held.iter().any(|(id, _)| awake_log
            .lines()
            .any(|l| l.contains("lease lost") && l.contains(id.as_str()))),
        "the woken worker found its leases lost:\n{awake_log}"
    );
    let (code, _) = http(&stopped.base, "GET", "/readyz", None);
    assert_eq!(code, 200, "the woken worker serves on");
    eprintln!(
        "{JOBS} jobs on 3 workers: SIGKILL at {killed_at:.1?}, SIGSTOP from {stopped_after:.1?} to {resumed_at:.1?}, all done at {finished_at:.1?}"
    );
}

fn logs_of(workers: &[Worker]) -> String {
    workers
        .iter()
        .map(|w| {
            let text = std::fs::read_to_string(&w.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            format!(
                "--- worker pid {}\n{}",
                w.pid(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Jobs per minute with 1, 2 and 4 workers on this machine against the simulator (calm, time
/// scale 0.01, callbacks on, 16 jobs at once per worker, the template check off). A
/// measurement, run by hand:
///
/// ```text
/// cargo test -p encore-cli --test it workers::jobs_per_minute -- --ignored --nocapture
/// ENCORE_BENCH_QUOTAS=off cargo test -p encore-cli --test it workers::jobs_per_minute -- --ignored --nocapture
/// ```
///
/// `ENCORE_BENCH_WORKERS` (default `1,2,4`), `ENCORE_BENCH_JOBS` (default 60);
/// `ENCORE_BENCH_QUOTAS=off` switches off the simulator's rate-limit windows and encore's own
/// limits, to see what the workers themselves can do.
#[cfg(unix)]
#[test]
#[ignore = "a measurement of minutes, run by hand"]
fn jobs_per_minute() {
    let env =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let jobs: usize = env("ENCORE_BENCH_JOBS", "60").parse().unwrap();
    let quotas = env("ENCORE_BENCH_QUOTAS", "on") != "off";
    let counts: Vec<usize> = env("ENCORE_BENCH_WORKERS", "1,2,4")
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let no_limits = [
        ("ENCORE_SERVICES__SUNO__RATE_LIMIT__ENABLED", "false"),
        ("ENCORE_SERVICES__CREATOMATE__RATE_LIMIT__ENABLED", "false"),
    ];
    let mut rows = Vec::new();
    for workers_n in counts {
        let mut sim_args = vec!["--time-scale", "0.01"];
        if !quotas {
            sim_args.push("--no-rate-limits");
        }
        let (_sim, sim) = start_sim(&sim_args);
        let pg = Pg::new();
        let db = pg.target();
        let logs = tempfile::tempdir().unwrap();
        let env: &[(&str, &str)] = if quotas { &[] } else { &no_limits };
        let workers: Vec<Worker> = (0..workers_n)
            .map(|n| Worker::start_with(&sim, &db, logs.path(), n, env, None))
            .collect();
        let start = Instant::now();
        for i in 0..jobs {
            let body = json!({"business": format!("bakery number {i}"), "name": format!("Bakery {i}"), "lang": "en"});
            let (code, body) = http(
                &workers[i % workers_n].base,
                "POST",
                "/v1/jobs",
                Some(&body),
            );
            assert_eq!(code, 201, "{body}");
        }
        wait_until("every job to end", Duration::from_secs(900), || {
            let all = pg.jobs();
            all.len() == jobs
                && all.iter().all(|j| {
                    matches!(
                        j.1.as_str(),
                        "succeeded" | "failed" | "needs_attention" | "cancelled"
                    )
                })
        });
        let elapsed = start.elapsed();
        let all = pg.jobs();
        assert_eq!(count(&all, "succeeded"), jobs, "{}", logs_of(&workers));
        let ledger = get_json(&sim, "/__sim/ledger");
        assert_eq!(ledger["rate_limited_per_route"], json!({}));
        #[expect(clippy::cast_precision_loss, reason = "a few hundred jobs")]
        let per_minute = jobs as f64 / elapsed.as_secs_f64() * 60.0;
        let row = format!(
            "workers {workers_n}: {jobs} jobs in {:.1} s = {per_minute:.0} jobs/min (quotas {}); requests {}",
            elapsed.as_secs_f64(),
            if quotas { "on" } else { "off" },
            ledger["requests_per_route"]
        );
        eprintln!("{row}");
        rows.push(row);
    }
    eprintln!("{}", rows.join("\n"));
}
