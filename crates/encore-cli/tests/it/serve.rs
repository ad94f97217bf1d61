//! `encore serve` as a real process: graceful SIGTERM, SIGKILL, restart — every job finishes,
//! and the simulator (a separate `encore sim` process whose ledger outlives the servers) bills
//! exactly one Suno task and one render per job.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{KillOnDrop, encore_process, get_json, http, start_sim};

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `encore serve` on `port`, against `sim`, with callbacks to itself; returns once it listens.
pub(crate) fn start_serve(sim: &str, db: &str, port: u16) -> KillOnDrop {
    start_serve_with(sim, db, port, &[])
}

/// [`start_serve`] with more environment variables.
pub(crate) fn start_serve_with(sim: &str, db: &str, port: u16, env: &[(&str, &str)]) -> KillOnDrop {
    let mut child = encore_process()
        .args(["serve", "--sim", sim, "--db", db])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--public-url", &format!("http://127.0.0.1:{port}")])
        .env("ENCORE_SERVE__LEASE_TTL", "1s")
        .env("ENCORE_SERVE__CLAIM_INTERVAL", "100ms")
        .env("ENCORE_SERVE__SHUTDOWN_GRACE", "20s")
        .env("ENCORE_PIPELINE__CALLBACK_POLL_INTERVAL", "2s")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("encore serve listening on"), "{first:?}");
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    KillOnDrop(child)
}

fn signal(child: &KillOnDrop, signal: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_child(&child.0), signal).unwrap();
}

fn statuses(base: &str, ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            get_json(base, &format!("/v1/jobs/{id}"))["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

pub(crate) fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(unix)]
#[test]
fn serve_survives_sigterm_and_sigkill_and_runs_every_job_exactly_once() {
    use rustix::process::Signal;
    let (_sim, sim) = start_sim(&["--time-scale", "0.02"]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db").to_string_lossy().into_owned();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let first = start_serve(&sim, &db, port);
    let ids: Vec<String> = (0..4)
        .map(|i| {
            let body = json!({"business": format!("bakery number {i}"), "name": format!("Bakery {i}"), "lang": "en"});
            let (code, body) = http(&base, "POST", "/v1/jobs", Some(&body));
            assert_eq!(code, 201, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    // SIGTERM once a song is being made: running jobs reach a stored state and are queued.
    wait_until("a submitted song", Duration::from_secs(30), || {
        ids.iter().any(|id| {
            let job = get_json(&base, &format!("/v1/jobs/{id}"));
            job["steps"][3]["state"] == "done"
        })
    });
    signal(&first, Signal::TERM);
    let mut first = first;
    let status = first.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0");

    // Read while no server runs: nothing was left running.
    let listed = encore_process()
        .args(["jobs", "list", "--json", "--db", &db])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let after_term: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after_term.len(), ids.len());
    assert!(
        after_term.iter().all(|s| s != "running"),
        "SIGTERM left no job running: {after_term:?}"
    );

    // A second server picks the jobs up; it is killed outright in the middle of them.
    let second = start_serve(&sim, &db, port);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&second, Signal::KILL);
    drop(second);

    // A third one finishes everything (after the killed one's leases expire).
    let _third = start_serve(&sim, &db, port);
    let after_kill = statuses(&base, &ids);
    eprintln!("after SIGTERM: {after_term:?}; after SIGKILL: {after_kill:?}");
    assert!(
        after_kill.iter().any(|s| s != "succeeded"),
        "the kill landed while jobs were unfinished: {after_kill:?}"
    );
    wait_until("every job to end", Duration::from_secs(90), || {
        statuses(&base, &ids).iter().all(|s| {
            matches!(
                s.as_str(),
                "succeeded" | "failed" | "needs_attention" | "cancelled"
            )
        })
    });
    let end = statuses(&base, &ids);
    assert!(end.iter().all(|s| s == "succeeded"), "{end:?}");
    let ledger = get_json(&sim, "/__sim/ledger");
    assert_eq!(ledger["suno_tasks"], 4, "one Suno task per job");
    assert_eq!(ledger["creatomate_renders"], 4, "one render per job");
}

#[cfg(unix)]
#[test]
fn a_second_server_on_one_sqlite_file_is_refused() {
    let (_sim, sim) = start_sim(&["--time-scale", "0.02"]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db").to_string_lossy().into_owned();
    let _first = start_serve(&sim, &db, free_port());
    let port = free_port();
    let out = encore_process()
        .args(["serve", "--sim", &sim, "--db", &db])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&db) || stderr.contains("jobs.db"),
        "names the file: {stderr}"
    );
    assert!(
        stderr.contains("PostgreSQL") || stderr.contains("another"),
        "{stderr}"
    );
}

#[test]
fn a_public_address_without_an_api_token_is_refused() {
    let out = encore_process()
        .args([
            "serve",
            "--sim",
            "http://127.0.0.1:9",
            "--listen",
            "0.0.0.0:0",
            "--db",
        ])
        .arg(std::env::temp_dir().join("encore-never-created.db"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("serve.api_token"), "{stderr}");
    assert!(
        !std::env::temp_dir()
            .join("encore-never-created.db")
            .exists()
    );
}

#[cfg(unix)]
#[test]
fn no_secret_reaches_the_logs_or_the_answers_even_at_trace_level() {
    use rustix::process::Signal;
    const TOKEN: &str = "api-token-SENTINEL-0123456789";
    const SECRET: &str = "callback-secret-SENTINEL-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db").to_string_lossy().into_owned();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = encore_process()
        .args([
            "serve",
            "--demo",
            "--db",
            &db,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("ENCORE_SERVE__API_TOKEN", TOKEN)
        .env("ENCORE_SERVE__CALLBACK_SECRET", SECRET)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("encore serve listening on"), "{first:?}");
    let mut stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let child = KillOnDrop(child);
    let with_token = |method: &str, path: &str, body: Option<&Value>| {
        let host = base.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(host).unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let created = with_token(
        "POST",
        "/v1/jobs",
        Some(&json!({"business": "a bakery", "name": "Haneul", "lang": "en"})),
    );
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let id = created
        .split("\"id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let mut answers = created.clone();
    wait_until("the job to succeed", Duration::from_secs(60), || {
        let job = with_token("GET", &format!("/v1/jobs/{id}"), None);
        answers.push_str(&job);
        job.contains("\"status\":\"succeeded\"")
    });
    answers.push_str(
        &with_token("GET", &format!("/v1/jobs/{id}/events?after=0"), None)
            .chars()
            .take(200_000)
            .collect::<String>(),
    );
    signal(&child, Signal::TERM);
    let mut child = child;
    child.0.wait().unwrap();
    let logs = logs.join().unwrap();
    let out = out.join().unwrap();
    assert!(
        logs.len() > 1000,
        "trace logs were written: {} bytes",
        logs.len()
    );
    for (name, text) in [("logs", &logs), ("stdout", &out), ("answers", &answers)] {
        assert!(!text.contains(TOKEN), "the API token is in the {name}");
        assert!(
            !text.contains(SECRET),
            "the callback secret is in the {name}"
        );
    }
    // Callback URLs carry a per-job credential (their HMAC token): not in the logs either.
    assert!(!logs.contains("/hooks/"), "a callback URL is in the logs");
}

/// `serve.retention`: a worker removes the succeeded and cancelled jobs older than it when it
/// starts; failed jobs, jobs that need attention or wait, and recent ones stay. Less than a day
/// is refused at start, naming the key.
#[test]
fn a_worker_removes_jobs_past_the_retention() {
    use crate::job_support::{Workspace, aged_jobs};
    use encore_pipeline::JobStatus;

    let ws = Workspace::new();
    let (old, recent) = aged_jobs(&ws);
    let db = ws.db.to_string_lossy().into_owned();
    let out = encore_process()
        .args(["serve", "--sim", "http://127.0.0.1:9", "--db", &db])
        .args(["--listen", "127.0.0.1:0"])
        .env("ENCORE_SERVE__RETENTION", "23h")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("serve.retention: must be at least 1d"),
        "{stderr}"
    );

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = start_serve_with(
        "http://127.0.0.1:9",
        &db,
        port,
        &[("ENCORE_SERVE__RETENTION", "30d")],
    );
    let code = |id: &encore_store::JobId| http(&base, "GET", &format!("/v1/jobs/{id}"), None).0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while code(&old[0].1) != 404 {
        assert!(
            Instant::now() < deadline,
            "the old succeeded job was never removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for (status, id) in &old {
        let removed = matches!(status, JobStatus::Succeeded | JobStatus::Cancelled);
        assert_eq!(code(id), if removed { 404 } else { 200 }, "{status}");
    }
    assert_eq!(code(&recent), 200, "a recent job stays");
}
