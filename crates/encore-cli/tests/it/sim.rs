//! `encore sim`: the standalone simulator, over real loopback HTTP.

use std::io::Read;

use crate::{http, start_sim};

#[cfg(unix)]
#[test]
fn suno_credits_are_the_balance_the_credit_endpoint_reports() {
    let (mut child, base) = start_sim(&["--suno-credits", "5"]);
    let (status, body) = http(&base, "GET", "/api/v1/generate/credit", None);
    assert_eq!(status, 200, "{body}");
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
    let (_, body) = http(&base, "GET", "/api/v1/generate/credit", None);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["data"], encore_sim::DEFAULT_SUNO_CREDITS, "{answer}");
}
