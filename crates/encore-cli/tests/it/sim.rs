//! `encore sim`: the standalone simulator, over real loopback HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use crate::{KillOnDrop, encore_process};

/// `GET path` with a Bearer key over a plain socket: the status line and the body.
fn get(base: &str, path: &str) -> (String, String) {
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer test-key\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// Starts `encore sim` on a free port with `args`; returns the process and its base URL.
fn start_sim(args: &[&str]) -> (KillOnDrop, String) {
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

#[cfg(unix)]
#[test]
fn suno_credits_are_the_balance_the_credit_endpoint_reports() {
    let (mut child, base) = start_sim(&["--suno-credits", "5"]);
    let (status, body) = get(&base, "/api/v1/generate/credit");
    assert!(status.ends_with(" 200 OK"), "{status}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["code"], 200, "{answer}");
    assert_eq!(answer["data"], 5, "{answer}");

    // Ctrl-C stops it cleanly, saying what it served.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child.0),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped; served 1 requests"), "{stderr}");
}

#[test]
fn the_default_balance_is_the_simulators() {
    let (_sim, base) = start_sim(&[]);
    let (_, body) = get(&base, "/api/v1/generate/credit");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["data"], encore_sim::DEFAULT_SUNO_CREDITS, "{answer}");
}
