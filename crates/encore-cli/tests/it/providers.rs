//! Issue 11's "Done when" for the CLI: what real providers do is handled by the real `encore`
//! binary over real loopback HTTP — a wrong template element and too few Suno credits are
//! refused before anything is billed, and a Suno CALLBACK_EXCEPTION that comes before the audio
//! still makes the song, from exactly one task.

use serde_json::Value;

use crate::{encore, get_json, json_output, start_sim};

/// A `[pipeline]` table for the simulator's time scale 0.01: status reads every 100–250 ms.
const FAST_POLLING: &str = "[pipeline]
song_poll = { interval = \"100ms\", max_interval = \"250ms\", multiplier = 1.5, deadline = \"2m\" }
video_poll = { interval = \"100ms\", max_interval = \"250ms\", multiplier = 1.5, deadline = \"2m\" }
";

/// Writes `text` to `name` in a new temporary directory (kept alive by the returned guard).
fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn no_billed_job(doc: &Value) {
    let ledger = &doc["ledger"];
    assert_eq!(ledger["openai_responses"], 0, "{ledger:#}");
    assert_eq!(ledger["suno_tasks"], 0, "{ledger:#}");
    assert_eq!(ledger["creatomate_renders"], 0, "{ledger:#}");
}

#[test]
fn a_template_element_that_does_not_exist_is_refused_before_anything_is_billed() {
    let (_dir, config) = file("encore.toml", "[pipeline]\naudio_element = \"Sound\"\n");
    let doc = json_output(
        encore()
            .args(["demo", "--scenario", "calm", "--json", "--config"])
            .arg(&config),
        3,
    );
    assert_eq!(doc["status"], "failed", "{doc:#}");
    assert_eq!(doc["error_class"], "bad_input", "{doc:#}");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("has no element named Sound"), "{error}");
    assert!(error.contains("pipeline.audio_element"), "{error}");
    no_billed_job(&doc);
    // The free template read was the only request.
    assert_eq!(doc["ledger"]["total_requests"], 1, "{doc:#}");
}

/// The same through the environment, as issue 11 states it (`ENCORE_PIPELINE__*` variables are
/// read by the clients' loader, with `[pipeline]` registered as a section).
#[test]
fn a_template_element_from_the_environment_is_refused_before_anything_is_billed() {
    let doc = json_output(
        encore()
            .env("ENCORE_PIPELINE__AUDIO_ELEMENT", "Sound")
            .args(["demo", "--scenario", "calm", "--json"]),
        3,
    );
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("no element named Sound"),
        "{doc:#}"
    );
    no_billed_job(&doc);
}

#[test]
fn no_suno_credits_are_refused_before_the_lyrics_are_paid_for() {
    let doc = json_output(
        encore().args([
            "demo",
            "--scenario",
            "calm",
            "--suno-credits",
            "0",
            "--json",
        ]),
        1,
    );
    assert_eq!(doc["error_class"], "permanent", "{doc:#}");
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("Suno has 0 credits left, one song needs 12"),
        "{error}"
    );
    assert!(doc["lyrics"].is_null(), "{doc:#}");
    no_billed_job(&doc);
    assert!(
        doc["ledger"]["requests"]
            .get("POST /v1/responses")
            .is_none(),
        "OpenAI was never called: {doc:#}"
    );
}

#[test]
fn a_callback_exception_before_the_audio_still_makes_the_song_from_one_task() {
    let (dir, scenario) = file(
        "scenario.toml",
        "[suno]\noutcomes = [\"callback_exception_before_audio\"]\n",
    );
    let config = dir.path().join("encore.toml");
    std::fs::write(&config, FAST_POLLING).unwrap();
    let scenario = scenario.to_string_lossy().into_owned();
    let (_sim, base) = start_sim(&["--time-scale", "0.01", "--scenario-file", &scenario]);

    let out = encore()
        .args([
            "run",
            "--business",
            "a neighbourhood bakery",
            "--name",
            "Haneul",
            "--lang",
            "en",
            "--json",
            "--sim",
            &base,
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    assert!(
        doc["audio_url"]
            .as_str()
            .unwrap()
            .contains("/__sim/files/audio/"),
        "{doc:#}"
    );

    let ledger = get_json(&base, "/__sim/ledger");
    assert_eq!(ledger["suno_tasks"], 1, "{ledger:#}");
    assert_eq!(
        ledger["requests_per_route"]["POST /api/v1/generate"], 1,
        "{ledger:#}"
    );
    let task = ledger["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "suno_task")
        .unwrap();
    assert_eq!(task["final_status"], "CALLBACK_EXCEPTION", "{task:#}");
    assert_eq!(doc["suno_task_id"], task["id"], "{doc:#}");
    assert_eq!(ledger["creatomate_renders"], 1, "{ledger:#}");
}
