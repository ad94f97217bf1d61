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
    assert!(stderr.contains("invalid value 'sunny'"), "{stderr}");
    assert!(
        stderr.contains("calm, flaky, outage, hostile"),
        "names the choices: {stderr}"
    );
}

/// The rows of the calls table on stdout: (endpoint, attempts, outcome, time).
fn calls_table(stdout: &str) -> Vec<(String, u32, String, String)> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("call "))
        .skip(1)
        .take_while(|l| !l.starts_with("total:"))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cells.len(), 4, "a calls row: {l}");
            (
                cells[0].to_owned(),
                cells[1].parse().unwrap(),
                cells[2].to_owned(),
                cells[3].to_owned(),
            )
        })
        .collect()
}

/// Whether `text` is a duration as `encore_resilience::fmt_duration` writes it: `250ms`, `1s`,
/// `1.3s`, `2m`, `1m 5s`.
fn is_core_duration(text: &str) -> bool {
    let number = |s: &str, decimals: bool| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || (decimals && c == '.'))
            && !s.starts_with('.')
            && !s.ends_with('.')
    };
    if let Some(ms) = text.strip_suffix("ms") {
        return number(ms, false) && ms.parse::<u32>().is_ok_and(|n| n < 1000);
    }
    if let Some(s) = text.strip_suffix('s') {
        if let Some((m, s)) = s.split_once("m ") {
            return number(m, false) && number(s, false) && s.parse::<u32>().is_ok_and(|n| n < 60);
        }
        return number(s, true)
            && s.split('.').nth(1).is_none_or(|d| d.len() == 1)
            && s.parse::<f64>().is_ok_and(|v| (1.0..60.0).contains(&v));
    }
    text.strip_suffix('m').is_some_and(|m| number(m, false))
}

#[test]
fn each_retry_is_shown_once_with_the_cores_duration_format() {
    let out = encore().args(["demo"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let calls = calls_table(&stdout);
    assert!(calls.len() >= 8, "{stdout}");
    // One line per retry: as many as the attempts after the first, over every call.
    let retries: u32 = calls.iter().map(|c| c.1.saturating_sub(1)).sum();
    let retry_lines: Vec<&str> = stderr.lines().filter(|l| l.contains('↻')).collect();
    assert_eq!(retry_lines.len(), retries as usize, "{stderr}\n{stdout}");
    assert!(retries >= 5, "flaky retries: {stdout}");
    // The same formatter everywhere: the retry waits, the stage times, the calls, the total.
    // OpenAI's 429 asks for 250 ms: the wait reads as the server wrote it, not as "0.2s".
    assert!(
        stderr.contains("Please try again in 250ms") && stderr.contains("retrying in 250ms"),
        "{stderr}"
    );
    for line in &retry_lines {
        let wait = line.split("retrying in ").nth(1).unwrap();
        let wait = wait.split(' ').next().unwrap();
        assert!(is_core_duration(wait), "{wait:?} in {line}");
    }
    let stage_times: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split(" ✔ ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(stage_times.len(), 3, "{stderr}");
    for time in stage_times
        .iter()
        .copied()
        .chain(calls.iter().map(|c| c.3.as_str()))
    {
        assert!(is_core_duration(time), "{time:?}:\n{stderr}\n{stdout}");
    }
    let total = stdout
        .lines()
        .find_map(|l| l.strip_prefix("total:"))
        .unwrap()
        .trim();
    assert!(is_core_duration(total), "{total:?}");
}

#[test]
fn the_duration_check_tells_the_cores_format_from_others() {
    for good in ["250ms", "1ms", "1s", "1.3s", "59.9s", "2m", "1m 5s"] {
        assert!(is_core_duration(good), "{good}");
    }
    for bad in [
        "0.2s", "1.25s", "1000ms", "1.0", "s", "ms", "1m5s", ".5s", "75s", "1m 60s",
    ] {
        assert!(!is_core_duration(bad), "{bad}");
    }
}

#[test]
fn suno_credits_set_the_simulators_balance() {
    // A song costs 12 credits: 11 are refused by the free credit check, before the lyrics are
    // paid for and before any task (a permanent failure).
    let doc = json_output(
        encore().args([
            "demo",
            "--scenario",
            "calm",
            "--suno-credits",
            "11",
            "--json",
        ]),
        1,
    );
    assert_eq!(doc["status"], "failed", "{doc:#}");
    assert_eq!(doc["error_class"], "permanent", "{doc:#}");
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("Suno has 11 credits left, one song needs 12"),
        "{error}"
    );
    assert_eq!(doc["ledger"]["openai_responses"], 0, "{doc:#}");
    assert_eq!(doc["ledger"]["suno_tasks"], 0, "{doc:#}");
    assert_eq!(doc["ledger"]["creatomate_renders"], 0, "{doc:#}");
    // 12 are enough.
    let doc = json_output(
        encore().args([
            "demo",
            "--scenario",
            "calm",
            "--suno-credits",
            "12",
            "--json",
        ]),
        0,
    );
    assert_eq!(doc["ledger"]["suno_tasks"], 1, "{doc:#}");
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
