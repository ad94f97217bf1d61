use crate::{encore, json_output};

fn assert_run_fields(doc: &serde_json::Value) {
    for key in [
        "status",
        "video_url",
        "audio_url",
        "lyrics",
        "error",
        "elapsed_ms",
        "calls",
        "ledger",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}: {doc:#}");
    }
    for call in doc["calls"].as_array().expect("calls is an array") {
        for key in ["service", "endpoint", "attempts", "outcome", "elapsed_ms"] {
            assert!(call.get(key).is_some(), "call lacks {key}: {call}");
        }
    }
}

#[test]
fn calm_makes_one_video_with_exactly_one_billed_job_each() {
    let doc = json_output(encore().args(["demo", "--scenario", "calm", "--json"]), 0);
    assert_run_fields(&doc);
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    assert!(doc["error"].is_null());
    assert!(
        doc["video_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{doc:#}"
    );
    assert!(
        doc["audio_url"]
            .as_str()
            .unwrap()
            .contains("/__sim/files/audio/"),
        "{doc:#}"
    );
    assert!(
        doc["lyrics"]["lyrics"]
            .as_str()
            .unwrap()
            .contains("[Chorus]"),
        "{doc:#}"
    );
    let ledger = &doc["ledger"];
    assert_eq!(ledger["openai_responses"], 1, "{ledger:#}");
    assert_eq!(ledger["suno_tasks"], 1, "{ledger:#}");
    assert_eq!(ledger["creatomate_renders"], 1, "{ledger:#}");
    for call in doc["calls"].as_array().unwrap() {
        assert_eq!(call["attempts"], 1, "calm needs no retry: {call}");
        assert_eq!(call["outcome"], "ok");
    }
}

#[test]
fn flaky_retries_and_still_pays_once() {
    let doc = json_output(encore().args(["demo", "--json"]), 0);
    assert_run_fields(&doc);
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    let ledger = &doc["ledger"];
    assert_eq!(ledger["suno_tasks"], 1, "{ledger:#}");
    assert_eq!(ledger["creatomate_renders"], 1, "{ledger:#}");
    let retried = doc["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["attempts"].as_u64().unwrap() > 1)
        .count();
    assert!(retried >= 1, "flaky should make some call retry: {doc:#}");
    assert!(doc["amplification"].as_f64().unwrap() > 1.0);
}

#[test]
fn flaky_shows_retries_as_they_happen() {
    let out = encore()
        .args(["demo", "--scenario", "flaky"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("retrying in"), "{stderr}");
    assert!(stderr.contains("(attempt 1/"), "{stderr}");
    assert!(stdout.contains("video:  http://127.0.0.1:"), "{stdout}");
    assert!(
        stdout.contains("simulator ledger: 1 OpenAI response, 1 Suno task, 1 Creatomate render"),
        "{stdout}"
    );
}

#[test]
fn outage_gives_up_with_the_service_and_endpoint_named() {
    let doc = json_output(encore().args(["demo", "--scenario", "outage", "--json"]), 2);
    assert_eq!(doc["status"], "failed");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("gave up after"), "{error}");
    let named = ["openai.responses", "suno.", "creatomate."]
        .iter()
        .any(|e| error.contains(e));
    assert!(named, "the error names the endpoint: {error}");
    assert_eq!(doc["exit_code"], 2);
}

#[test]
fn an_unknown_scenario_is_bad_input() {
    let out = encore()
        .args(["demo", "--scenario", "sunny"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown scenario \"sunny\""), "{stderr}");
    assert!(stderr.contains("calm"), "{stderr}");
}

#[test]
fn twenty_pipelines_in_an_outage_are_not_amplified() {
    let doc = json_output(
        encore().args([
            "demo",
            "--scenario",
            "outage",
            "--pipelines",
            "20",
            "--json",
        ]),
        2,
    );
    assert_eq!(doc["failed"], 20, "{doc:#}");
    let amplification = doc["amplification"].as_f64().unwrap();
    assert!(
        amplification <= 1.2,
        "the seed's plan would give 3.0 here: {amplification}"
    );
    let ledger = &doc["ledger"];
    assert_eq!(
        (
            &ledger["openai_responses"],
            &ledger["suno_tasks"],
            &ledger["creatomate_renders"]
        ),
        (&0.into(), &0.into(), &0.into()),
        "nothing billed while Creatomate is down: {ledger:#}"
    );
    for p in doc["pipelines"].as_array().unwrap() {
        let error = p["error"].as_str().unwrap();
        assert!(error.starts_with("creatomate.templates: "), "{error}");
    }
}

#[test]
fn concurrent_pipelines_each_pay_once_and_report_their_own_calls() {
    let doc = json_output(
        encore().args(["demo", "--scenario", "calm", "--pipelines", "4", "--json"]),
        0,
    );
    assert_eq!(doc["succeeded"], 4, "{doc:#}");
    let ledger = &doc["ledger"];
    assert_eq!(ledger["suno_tasks"], 4, "{ledger:#}");
    assert_eq!(ledger["creatomate_renders"], 4, "{ledger:#}");
    for p in doc["pipelines"].as_array().unwrap() {
        let calls = p["calls"].as_array().unwrap();
        let generates = calls
            .iter()
            .filter(|c| c["endpoint"] == "suno.generate")
            .count();
        assert_eq!(generates, 1, "each run reports its own calls: {p:#}");
    }
}
