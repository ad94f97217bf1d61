//! End-to-end tests: the real `encore` binary against the embedded simulator.

mod config;
mod config_env;
mod ctrl_c;
mod demo;
mod durable;
mod errors;
mod job_support;
mod jobs;
mod keys;
mod observe;
mod providers;
mod readme;
mod serve;
mod sim;
mod stages;
mod status_page;
mod store_files;
mod usage;
mod workers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use assert_cmd::Command;
use serde_json::Value;

/// The `encore` binary with a clean environment (no keys, no ENCORE_* overrides, logs off, and
/// the platform's data directory in the test's target directory, so that a run without `--db`
/// never journals in the home directory), as a `std` command for tests that talk to it while
/// it runs.
pub fn encore_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_encore"));
    cmd.env(
        "XDG_DATA_HOME",
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-data"),
    );
    for (key, _) in std::env::vars() {
        if key.starts_with("ENCORE_")
            || key.ends_with("_API_KEY")
            || key == "CREATOMATE_TEMPLATE_ID"
            || key == "RUST_LOG"
        {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(std::env::temp_dir());
    cmd
}

/// A spawned `encore` that is killed when the test ends, passed or failed.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `encore` binary with a clean environment, run to completion (at most 2 minutes).
pub fn encore() -> Command {
    let mut cmd = Command::from_std(encore_process());
    cmd.timeout(std::time::Duration::from_secs(120));
    cmd
}

/// Runs `cmd`, expects `code`, and parses stdout as one JSON document.
pub fn json_output(cmd: &mut Command, code: i32) -> Value {
    let out = cmd.output().expect("encore runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"))
}

/// Starts `encore sim --port 0` with `args`; returns the process (killed when dropped) and its
/// base URL.
pub fn start_sim(args: &[&str]) -> (KillOnDrop, String) {
    let mut child = encore_process()
        .args(["sim", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let base = first
        .trim()
        .strip_prefix("encore simulator listening on ")
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_owned();
    // Keep draining the banner so the process never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (KillOnDrop(child), base)
}

/// One HTTP/1.1 exchange over a plain socket (with a Bearer key): the status code and the body
/// (a chunked body's JSON part).
pub fn http(base: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    http_as("test-key", base, method, path, body)
}

/// [`http`] with `token` as the Bearer key.
pub fn http_as(
    token: &str,
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        match (body.find(['{', '[']), body.rfind(['}', ']'])) {
            (Some(a), Some(b)) => body[a..=b].to_owned(),
            _ => body.to_owned(),
        }
    } else {
        body.to_owned()
    };
    (code, body)
}

/// `GET path` at `base`, expected 200, parsed as JSON.
pub fn get_json(base: &str, path: &str) -> Value {
    let (code, body) = http(base, "GET", path, None);
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
