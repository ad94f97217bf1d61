//! How failures end: the error and its causes on stderr, the exit code, a broken pipe, Ctrl-C.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::Stdio;

use crate::{KillOnDrop, encore, encore_process};

#[test]
fn an_error_prints_its_causes_on_caused_by_lines() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = encore()
        .args(["sim", "--port", &port.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        format!("error: could not listen on 127.0.0.1:{port}"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("  Caused by: ") && lines[1].to_lowercase().contains("in use"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_lyrics_file_is_bad_input_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let out = encore()
        .args(["song", "--title", "t", "--style", "pop", "--lyrics-file"])
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot read the lyrics file {}\n  Caused by: ",
            missing.display()
        )),
        "{stderr}"
    );
    // An empty file is refused too, before any key is asked for.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n  \n").unwrap();
    let out = encore()
        .args(["song", "--title", "t", "--style", "pop", "--lyrics-file"])
        .arg(&empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("it is empty"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn a_broken_pipe_exits_0_quietly() {
    // A pipe whose reader is gone before encore writes: every write fails with EPIPE.
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    drop(reader);
    for args in [
        &["config", "show"][..],
        &["config", "show", "--json"],
        &["--help"],
    ] {
        let out = encore_process()
            .args(args)
            .stdout(Stdio::from(writer.try_clone().unwrap()))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_run_with_exit_130() {
    let mut child = KillOnDrop(
        encore_process()
            .args(["demo", "--scenario", "calm"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut seen = String::new();
    // The song stage starts after the lyrics: by then the run is well under way.
    while !seen.contains("song   started") {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "ended early:\n{seen}"
        );
        seen.push_str(&line);
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child.0),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(
        rest.contains("error: interrupted: jobs already submitted keep running on the services"),
        "{rest}"
    );
}
