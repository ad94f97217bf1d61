//! `encore jobs list|show|resolve`, where `encore run` keeps its jobs (`--db`, `store.path`,
//! the platform's data directory), `[store]` settings, and who may resume a running job.

use std::time::Duration;

use encore_pipeline::{JobStatus, Journal, StepName};
use encore_store::{NewJob, Origin};
use serde_json::{Value, json};

use crate::encore_process;
use crate::job_support::{Sim, Workspace, aged_jobs, describe, stdout_json};

/// Every key of `doc`, at any depth.
fn all_keys(doc: &Value, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) => {
            for (key, value) in map {
                out.push(key.clone());
                all_keys(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_keys(v, out)),
        _ => {}
    }
}

#[test]
fn list_show_and_resolve_outputs_and_refusals() {
    let ws = Workspace::new();
    let sim = Sim::start(ws.dir.path(), None);
    let first = ws.output(
        Some(&sim),
        &["run", "--business", "a bakery", "--name", "First", "--json"],
    );
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let first = stdout_json(&first);
    let first_id = first["job_id"].as_str().unwrap().to_owned();
    let second = ws.output(
        Some(&sim),
        &[
            "run",
            "--business",
            "a florist",
            "--name",
            "Second",
            "--json",
        ],
    );
    let second_id = stdout_json(&second)["job_id"].as_str().unwrap().to_owned();

    // list: newest first, each with its id and status; --status and --limit.
    let list = ws.jobs_json(&["list"], 0);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second_id.as_str(), first_id.as_str()], "{list:#}");
    assert_eq!(list[1]["status"], "succeeded");
    assert_eq!(list[1]["name"], "First");
    assert_eq!(list[1]["origin"], "cli");
    assert!(list[1]["lease"].is_null(), "{list:#}");
    assert_eq!(
        ws.jobs_json(&["list", "--limit", "1"], 0)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(ws.jobs_json(&["list", "--status", "queued"], 0), json!([]));
    let out = ws.output(None, &["jobs", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("job "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&first_id) && l.contains("succeeded") && l.ends_with("First")),
        "{text}"
    );

    // show: every step with its state, attempts, external id and times; never a correlation
    // token (the credential of a callback URL).
    let shown = ws.jobs_json(&["show", &first_id], 0);
    assert_eq!(shown["id"], first_id.as_str());
    assert_eq!(shown["input"]["name"], "First");
    assert_eq!(shown["result"]["render_id"], first["render_id"]);
    let steps = shown["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        StepName::ALL.map(StepName::as_str),
        "every step ran once: {shown:#}"
    );
    for step in steps {
        assert_eq!(step["state"], "done", "{step}");
        assert_eq!(step["attempts"], 1, "{step}");
        assert!(
            step["started_at"].as_str().unwrap().ends_with('Z'),
            "{step}"
        );
        assert!(step["elapsed_ms"].is_u64(), "{step}");
    }
    assert_eq!(steps[3]["external_id"], first["suno_task_id"]);
    assert_eq!(steps[6]["external_id"], first["render_id"]);
    let mut keys = Vec::new();
    all_keys(&shown, &mut keys);
    assert!(!keys.iter().any(|k| k == "correlation"), "{keys:?}");
    let out = ws.output(None, &["jobs", "show", &first_id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status   succeeded"), "{text}");
    let submit = text
        .lines()
        .find(|l| l.starts_with("song.submit"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(submit.contains("done"), "{submit}");
    assert!(
        submit.ends_with(first["suno_task_id"].as_str().unwrap()),
        "{submit}"
    );

    // resolve: refused when nothing is unknown, for a named step that is not unknown, and for
    // a resubmit without the confirmation; nothing changes.
    // A job queued again after its song was submitted (its runner stopped), made through the
    // store.
    let store = ws.store();
    let queued = ws
        .block_on(store.create_job(&NewJob::new(
            Origin::Cli,
            json!({"business": "a bakery", "name": "Queued", "lang": "en"}),
        )))
        .unwrap()
        .job;
    let lease = ws
        .block_on(store.claim(queued.id, "cli@another-host pid 1", Duration::from_secs(60)))
        .unwrap();
    ws.block_on(lease.start(StepName::SongSubmit, None))
        .unwrap();
    ws.block_on(lease.finish(StepName::SongSubmit, Some("task-0"), &json!({})))
        .unwrap();
    ws.block_on(lease.release()).unwrap();
    let queued_id = queued.id.to_string();
    let refusals: [(&str, &[&str], i32, &str); 7] = [
        (
            &first_id,
            &["--adopt", "task-1"],
            1,
            "no billed step's outcome is unknown (song.submit is done, video.submit is done): nothing to resolve",
        ),
        (
            &first_id,
            &["--adopt", "task-1", "--step", "song.submit"],
            1,
            "the job is succeeded",
        ),
        (
            &queued_id,
            &["--adopt", "task-1", "--step", "song.submit"],
            1,
            "the step is done, not unknown: nothing to resolve",
        ),
        (
            &queued_id,
            &[
                "--resubmit",
                "--i-accept-paying-twice",
                "--step",
                "video.submit",
            ],
            1,
            "the step never started: nothing to resolve",
        ),
        (
            &queued_id,
            &["--resubmit", "--step", "song.submit"],
            3,
            "--resubmit sends the billed request again: if the lost one ran, it is paid twice",
        ),
        (
            &queued_id,
            &["--adopt", "task-1", "--resubmit"],
            3,
            "cannot be used with",
        ),
        (
            &queued_id,
            &["--adopt", "task-1", "--step", "lyrics"],
            3,
            "invalid value 'lyrics'",
        ),
    ];
    let queued_before = ws.jobs_json(&["show", &queued_id], 0);
    for (job, args, code, says) in refusals {
        let mut all = vec!["jobs", "resolve", job];
        all.extend_from_slice(args);
        let out = ws.output(None, &all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            describe(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            describe(&out)
        );
    }
    assert_eq!(
        ws.jobs_json(&["show", &queued_id], 0),
        queued_before,
        "nothing changed"
    );
    assert_eq!(
        ws.jobs_json(&["show", &first_id], 0),
        shown,
        "nothing changed"
    );

    // An unknown job, an id that is not one, a store that does not exist.
    let missing = encore_store::JobId::generate().to_string();
    for (args, says) in [
        (
            vec!["jobs", "show", missing.as_str()],
            format!("no job {missing} in {}", ws.db.display()),
        ),
        (
            vec!["jobs", "show", "last"],
            "invalid job id \"last\"".to_owned(),
        ),
        (
            vec!["run", "--resume", missing.as_str()],
            format!("no job {missing} in"),
        ),
    ] {
        let out = ws.output((args[0] == "run").then_some(&sim), &args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&says),
            "{}",
            describe(&out)
        );
    }
    let nowhere = ws.dir.path().join("nowhere.db");
    let out = encore_process()
        .args(["jobs", "list", "--db"])
        .arg(&nowhere)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("no job store at {}", nowhere.display())),
        "{}",
        describe(&out)
    );
    assert!(
        !nowhere.exists(),
        "a missing store is not created by a reader"
    );

    // Resuming a job that succeeded runs nothing and says where its video is.
    let out = ws.resume(&sim, first_id.parse().unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let again = stdout_json(&out);
    assert_eq!(again["video_url"], first["video_url"]);
    assert_eq!(again["calls"], json!([]));
    assert_eq!(sim.billed("suno_task").len(), 2, "one task per job");
    assert_eq!(
        ws.jobs_json(&["list", "--status", "queued"], 0)[0]["id"],
        queued_id.as_str()
    );
}

#[test]
fn run_keeps_its_jobs_in_the_platforms_data_directory_unless_told_otherwise() {
    let ws = Workspace::new();
    let sim = Sim::start(ws.dir.path(), None);
    let data = ws.dir.path().join("xdg-data");
    let run = |extra: &[(&str, &str)], config: &std::path::Path| {
        let mut cmd = encore_process();
        cmd.env("XDG_DATA_HOME", &data)
            .args([
                "run",
                "--business",
                "a bakery",
                "--name",
                "Haneul",
                "--json",
            ])
            .args(["--sim", &sim.base, "--config"])
            .arg(config);
        for (key, value) in extra {
            cmd.env(key, value);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        stdout_json(&out)["job_id"].as_str().unwrap().to_owned()
    };
    // The default: jobs.db in the data directory (XDG_DATA_HOME/encore on Linux).
    let id = run(&[], &ws.config);
    #[cfg(target_os = "linux")]
    {
        let default = data.join("encore").join("jobs.db");
        let list = Workspace::list_at(&default);
        assert_eq!(list[0]["id"], id.as_str(), "{list:#}");
    }
    // store.path, from the file or the environment.
    let elsewhere = ws.dir.path().join("elsewhere").join("jobs.db");
    let config = ws.dir.path().join("with-store.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[store]\npath = {:?}\nlease_ttl = \"5s\"\n",
            crate::job_support::FAST_POLLING,
            elsewhere.display().to_string()
        ),
    )
    .unwrap();
    let id = run(&[], &config);
    assert_eq!(Workspace::list_at(&elsewhere)[0]["id"], id.as_str());
    let by_env = ws.dir.path().join("by-env.db");
    let id = run(
        &[("ENCORE_STORE__PATH", by_env.to_str().unwrap())],
        &ws.config,
    );
    assert_eq!(Workspace::list_at(&by_env)[0]["id"], id.as_str());

    // A lease lifetime outside 1 s to 1 h, or a misspelled key, is refused naming it.
    for (key, value, says) in [
        ("ENCORE_STORE__LEASE_TTL", "0s", "store.lease_ttl"),
        ("ENCORE_STORE__LEASE_TTL", "soon", "store.lease_ttl"),
        ("ENCORE_STORE__LEASE", "5s", "ENCORE_STORE__LEASE"),
    ] {
        let out = encore_process()
            .env(key, value)
            .args([
                "run",
                "--business",
                "a bakery",
                "--name",
                "Haneul",
                "--sim",
                &sim.base,
            ])
            .arg("--db")
            .arg(&by_env)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{key}={value}: {}",
            describe(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{key}={value}: {}",
            describe(&out)
        );
    }
}

impl Workspace {
    /// `encore jobs list --json --db path`.
    fn list_at(path: &std::path::Path) -> Value {
        let out = encore_process()
            .args(["jobs", "list", "--json", "--db"])
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        stdout_json(&out)
    }
}

/// A running job is resumed at once from an `encore run` of this host whose process is gone
/// (the kill tests), never from one that is alive, and from a holder whose process cannot be
/// checked (another host) only once its lease expired.
#[test]
fn resume_refuses_a_live_holder_and_waits_out_one_it_cannot_check() {
    let ws = Workspace::with_config(&format!(
        "{}\n[store]\nlease_ttl = \"3s\"\n",
        crate::job_support::FAST_POLLING
    ));
    let sim = Sim::start(ws.dir.path(), None);

    // Alive: refused, naming it; the job is not disturbed.
    let run = ws.start_run(&sim, "alive");
    let id = run.job_id();
    let running = ws.wait_for(id, "waiting for the song", |d| {
        crate::job_support::state(d, StepName::SongWait).is_some()
    });
    let lease = running.job.lease.clone().unwrap();
    let ttl = lease.expires_at - running.job.updated_at;
    assert!(
        ttl <= 3_000,
        "store.lease_ttl is the lease's lifetime: {ttl} ms"
    );
    let out = ws.resume(&sim, id);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "job {id} is being run by {}, which is still running",
            lease.owner
        )),
        "{}",
        describe(&out)
    );
    let out = run.wait();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Another host's holder: refused until its lease expires, then resumed. (The test's one
    // store handle writes the holder's lease: a second handle on the same SQLite file in one
    // process would drop the first one's POSIX locks when it opens the file to check it.)
    let store = ws.store();
    let job = ws
        .block_on(store.create_job(&NewJob::new(
            Origin::Cli,
            json!({"business": "a bakery", "name": "Elsewhere", "lang": "en"}),
        )))
        .unwrap()
        .job;
    let held = ws
        .block_on(store.claim(
            job.id,
            "cli@another-host pid 1",
            Duration::from_millis(1500),
        ))
        .unwrap();
    ws.block_on(held.start(StepName::Template, None)).unwrap();
    let out = ws.resume(&sim, job.id);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "job {} is held by cli@another-host pid 1 until ",
            job.id
        )) && String::from_utf8_lossy(&out.stderr)
            .contains("resume it once that lease has expired"),
        "{}",
        describe(&out)
    );
    std::thread::sleep(Duration::from_millis(1600));
    let out = ws.resume(&sim, job.id);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stored = ws.job(job.id);
    assert_eq!(
        stored.job.status,
        JobStatus::Succeeded,
        "{stored:#?}\n{}",
        describe(&out)
    );
}

/// `encore jobs purge`: old succeeded and cancelled jobs go (failed ones when asked), with
/// everything they own; jobs that need attention, wait or are recent stay; less than a day is
/// refused.
#[test]
fn purge_removes_old_finished_jobs_only() {
    let ws = Workspace::new();
    let (old, recent) = aged_jobs(&ws);
    let listed = |ws: &Workspace| -> Vec<String> {
        ws.jobs_json(&["list"], 0)
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&ws).len(), 6);

    // Less than a day, or no age: refused, naming why; nothing removed.
    let out = ws.output(None, &["jobs", "purge", "--older-than", "12h"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("12h is less than a day"), "{stderr}");
    let out = ws.output(None, &["jobs", "purge"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(listed(&ws).len(), 6);

    // A dry run counts and removes nothing.
    let out = ws.output(None, &["jobs", "purge", "--older-than", "30d", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("would remove 2 jobs (")
            && text.contains("1 succeeded")
            && text.contains("1 cancelled"),
        "{text}"
    );
    assert!(
        text.contains("(failed jobs kept: --include-failed)"),
        "{text}"
    );
    assert_eq!(listed(&ws).len(), 6);

    let purged = ws.jobs_json(&["purge", "--older-than", "30d"], 0);
    assert_eq!(purged["total"], 2, "{purged:#}");
    assert_eq!(purged["dry_run"], false);
    assert_eq!(purged["jobs"]["succeeded"], 1, "{purged:#}");
    assert_eq!(purged["jobs"]["cancelled"], 1, "{purged:#}");
    assert!(purged["finished_before"].as_str().unwrap().ends_with('Z'));
    let left = listed(&ws);
    for (status, id) in &old {
        let kept = !matches!(status, JobStatus::Succeeded | JobStatus::Cancelled);
        assert_eq!(left.contains(&id.to_string()), kept, "{status}: {left:?}");
    }
    assert!(left.contains(&recent.to_string()), "a recent job stays");
    let out = ws.output(None, &["jobs", "show", &old[0].1.to_string()]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));

    // Failed jobs when asked: the one failed job; attention and queued stay.
    let out = ws.output(
        None,
        &["jobs", "purge", "--older-than", "30d", "--include-failed"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("removed 1 job (1 failed) finished before "),
        "{text}"
    );
    assert_eq!(listed(&ws).len(), 3);
}
