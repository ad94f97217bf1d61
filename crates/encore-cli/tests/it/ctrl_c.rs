//! Ctrl-C during `encore run`: the first stops the job at its next safe point — after the
//! answer of a billed request already sent is stored — queues it again and exits 130; a second
//! exits 130 at once. Either way `encore run --resume` finishes the job, paying once.
#![cfg(unix)]

use std::time::{Duration, Instant};

use encore_pipeline::{JobStatus, StepName, StepState};

use crate::job_support::{Sim, Workspace, describe, state, stdout_json};

/// The answer to the first Suno generate is held for `ms` after the task is created.
fn held_generate(ms: u64) -> String {
    format!(
        "[routes.\"suno.generate\"]\nsequence = [{{ kind = \"stall_body\", after_bytes = 0, ms = {ms} }}]\n"
    )
}

#[test]
fn one_ctrl_c_during_a_wait_queues_the_job_which_resumes() {
    let ws = Workspace::new();
    let sim = Sim::start(ws.dir.path(), None);
    let run = ws.start_run(&sim, "ctrl-c-wait");
    let id = run.job_id();
    ws.wait_for(id, "waiting for the song", |d| {
        state(d, StepName::SongWait) == Some(StepState::InFlight)
    });
    run.interrupt();
    run.line_with("stopping at the next safe point; Ctrl-C again to exit now");
    let out = run.wait();
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: interrupted: job {id} stopped at a safe point and is queued again"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "note: continue it with `encore run --resume {id}`"
        )),
        "{stderr}"
    );
    let stored = ws.job(id);
    assert_eq!(stored.job.status, JobStatus::Queued);
    assert!(stored.job.lease.is_none(), "the lease was released");
    assert_eq!(state(&stored, StepName::SongSubmit), Some(StepState::Done));
    assert_eq!(state(&stored, StepName::SongWait), Some(StepState::Pending));

    let out = ws.resume(&sim, id);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = stdout_json(&out);
    assert_eq!(
        sim.billed("suno_task"),
        [doc["suno_task_id"].as_str().unwrap()]
    );
    assert_eq!(
        sim.billed("creatomate_render"),
        [doc["render_id"].as_str().unwrap()]
    );
}

#[test]
fn ctrl_c_during_the_suno_submission_stores_its_answer_first() {
    let ws = Workspace::new();
    let sim = Sim::start(ws.dir.path(), Some(&held_generate(1500)));
    let run = ws.start_run(&sim, "ctrl-c-submit");
    let id = run.job_id();
    ws.wait_for(id, "submitting the song", |d| {
        state(d, StepName::SongSubmit) == Some(StepState::InFlight)
    });
    run.interrupt();
    run.line_with(
        "stopping after the Suno submission in flight is stored; Ctrl-C again to exit now",
    );
    let out = run.wait();
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let stored = ws.job(id);
    assert_eq!(stored.job.status, JobStatus::Queued);
    let submit = stored
        .steps
        .iter()
        .find(|s| s.name == StepName::SongSubmit)
        .unwrap();
    assert_eq!(submit.state, StepState::Done, "{stored:#?}");
    let tasks = sim.billed("suno_task");
    assert_eq!(submit.external_id.as_deref(), Some(tasks[0].as_str()));
    assert!(state(&stored, StepName::SongWait).is_none_or(|s| s == StepState::Pending));

    let out = ws.resume(&sim, id);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(stdout_json(&out)["suno_task_id"], tasks[0].as_str());
    assert_eq!(sim.billed("suno_task"), tasks, "no second task");
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let ws = Workspace::new();
    let sim = Sim::start(ws.dir.path(), Some(&held_generate(6000)));
    let run = ws.start_run(&sim, "ctrl-c-twice");
    let id = run.job_id();
    ws.wait_for(id, "submitting the song", |d| {
        state(d, StepName::SongSubmit) == Some(StepState::InFlight)
    });
    run.interrupt();
    run.line_with("Ctrl-C again to exit now");
    let second = Instant::now();
    run.interrupt();
    let out = run.wait();
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "the second Ctrl-C did not exit at once: {:?}",
        second.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: interrupted again: job {id} stopped at once; the Suno submission in flight was abandoned, its outcome is unknown"
        )),
        "{stderr}"
    );
    // The process is gone with its lease still live: the next run takes the job over at once,
    // and the billed step it left in flight is unknown, never sent again.
    let stored = ws.job(id);
    assert_eq!(stored.job.status, JobStatus::Running);
    assert_eq!(
        state(&stored, StepName::SongSubmit),
        Some(StepState::InFlight)
    );
    let resumed = Instant::now();
    let out = ws.resume(&sim, id);
    assert!(resumed.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is gone; taking the job over"), "{stderr}");
    assert!(
        stderr.contains(&format!("`encore jobs resolve {id} --adopt TASK_ID`")),
        "{stderr}"
    );
    let tasks = sim.billed("suno_task");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let out = ws.output(
        None,
        &["jobs", "resolve", &id.to_string(), "--adopt", &tasks[0]],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = ws.resume(&sim, id);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(sim.billed("suno_task"), tasks, "no second task");
}
