//! Observability of `encore serve` as a real process: `/metrics` counts exactly the attempts
//! the simulator received.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{free_port, start_serve, start_serve_with, wait_until};
use crate::{get_json, http, start_sim};

/// The simulator's route ids for each of encore's endpoints.
const ROUTES: [(&str, &[&str]); 8] = [
    ("openai.responses", &["openai.responses"]),
    ("suno.generate", &["suno.generate"]),
    ("suno.status", &["suno.record_info"]),
    ("suno.timestamps", &["suno.timestamped_lyrics"]),
    ("suno.credits", &["suno.credit"]),
    ("creatomate.render", &["creatomate.render"]),
    ("creatomate.status", &["creatomate.render_status"]),
    (
        "creatomate.templates",
        &["creatomate.templates", "creatomate.template"],
    ),
];

/// The value of every sample of `family` in a scrape (counts and gauges: whole numbers), by its
/// labels (`{a="x",b="y"}`).
pub(crate) fn samples(text: &str, family: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(family)?;
            let (labels, value) = if rest.starts_with('{') {
                let end = rest.find('}')?;
                (&rest[..=end], rest[end + 1..].trim())
            } else {
                ("", rest.strip_prefix(' ')?.trim())
            };
            Some((labels.to_owned(), value.parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// The value of `label` in a sample's labels.
fn label<'a>(labels: &'a str, label: &str) -> &'a str {
    let key = format!("{label}=\"");
    let start = labels.find(&key).map_or(0, |i| i + key.len());
    let end = labels[start..].find('"').map_or(start, |i| start + i);
    &labels[start..end]
}

/// Attempts per endpoint, from a scrape.
fn attempts_per_endpoint(text: &str) -> BTreeMap<String, u64> {
    let mut per = BTreeMap::new();
    for (labels, value) in samples(text, "encore_client_attempts_total") {
        *per.entry(label(&labels, "endpoint").to_owned())
            .or_default() += value;
    }
    per
}

/// Requests the simulator received per encore endpoint.
fn received_per_endpoint(ledger: &Value) -> BTreeMap<String, u64> {
    let mut per = BTreeMap::new();
    for request in ledger["requests"].as_array().unwrap() {
        let route = request["route"].as_str().unwrap();
        let (endpoint, _) = ROUTES
            .iter()
            .find(|(_, routes)| routes.contains(&route))
            .unwrap_or_else(|| panic!("an unmapped simulator route: {route}"));
        *per.entry((*endpoint).to_owned()).or_default() += 1;
    }
    per
}

#[test]
fn metrics_count_every_attempt_the_simulator_received() {
    let (_sim, sim) = start_sim(&["--scenario", "flaky", "--time-scale", "0.02"]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db").to_string_lossy().into_owned();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // A callback that wakes a waiting step drops the status read in flight, which the
    // simulator received: the observer counts it as `cancelled`, so the sides still agree.
    let _server = start_serve_with(&sim, &db, port, &[]);

    let ids: Vec<String> = (0..2)
        .map(|i| {
            let body = json!({"business": format!("a flower shop {i}"), "name": format!("Shop {i}"), "lang": "en"});
            let (code, body) = http(&base, "POST", "/v1/jobs", Some(&body));
            assert_eq!(code, 201, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    wait_until("both jobs to succeed", Duration::from_secs(90), || {
        ids.iter()
            .all(|id| get_json(&base, &format!("/v1/jobs/{id}"))["status"] == "succeeded")
    });

    // Callbacks may still be arriving (and be checked with free reads): compare until the
    // two sides agree, for at most 10 s.
    let start = Instant::now();
    let (scrape, counted, received) = loop {
        let ledger = get_json(&sim, "/__sim/ledger");
        let (code, scrape) = http(&base, "GET", "/metrics", None);
        assert_eq!(code, 200, "{scrape}");
        let counted = attempts_per_endpoint(&scrape);
        let received = received_per_endpoint(&ledger);
        if counted == received || start.elapsed() > Duration::from_secs(10) {
            break (scrape, counted, received);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("attempts counted: {counted:?}\nrequests received: {received:?}");
    assert_eq!(
        counted, received,
        "the attempts /metrics counts are the requests the simulator received"
    );
    assert!(
        counted.values().sum::<u64>() > 20,
        "a real run was counted: {counted:?}"
    );

    // The flaky scenario's faults show as retried attempts and as retries.
    let outcomes = samples(&scrape, "encore_client_attempts_total");
    let retried: u64 = outcomes
        .iter()
        .filter(|(labels, _)| label(labels, "outcome") == "retried")
        .map(|(_, v)| v)
        .sum();
    let retries: u64 = samples(&scrape, "encore_client_retries_total")
        .values()
        .sum();
    assert!(retried >= 4, "{scrape}");
    assert_eq!(retried, retries, "one retry follows each retried attempt");

    // Jobs by state come from the store; both succeeded, nothing is unknown.
    let jobs = samples(&scrape, "encore_jobs");
    assert_eq!(jobs["{state=\"succeeded\"}"], 2, "{scrape}");
    assert_eq!(jobs["{state=\"running\"}"], 0);
    let unknown = samples(&scrape, "encore_unknown_billed_steps");
    assert_eq!(unknown["{step=\"song.submit\"}"], 0);
    // Every step was timed: two jobs, eight steps each, all done.
    let steps = samples(&scrape, "encore_step_duration_seconds_count");
    assert_eq!(steps.len(), 8, "{steps:?}");
    assert!(steps.values().all(|n| *n == 2), "{steps:?}");
    // Breakers are closed; callbacks came and were verified.
    let breakers = samples(&scrape, "encore_circuitbreaker_state");
    for service in ["openai", "suno", "creatomate"] {
        assert_eq!(
            breakers[&format!("{{service=\"{service}\",state=\"closed\"}}")],
            1
        );
        for other in ["open", "half_open"] {
            assert_eq!(
                breakers[&format!("{{service=\"{service}\",state=\"{other}\"}}")],
                0
            );
        }
    }
    let received_callbacks: u64 = samples(&scrape, "encore_callbacks_received_total")
        .values()
        .sum();
    let delivered = get_json(&sim, "/__sim/ledger")["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["dropped"] != true && c["status"].is_number())
        .count();
    assert!(received_callbacks >= 1, "{scrape}");
    assert_eq!(
        usize::try_from(received_callbacks).unwrap(),
        delivered,
        "{scrape}"
    );
    // No label names a job or a URL.
    assert!(!scrape.contains(&ids[0]) && !scrape.contains("http://"));
}

/// `encore serve --demo` on a free port with `args`; its stdout banner read, its stderr kept.
pub(crate) struct Demo {
    pub(crate) child: crate::KillOnDrop,
    pub(crate) base: String,
    /// The embedded simulator's base URL.
    pub(crate) sim: String,
    pub(crate) stderr: std::thread::JoinHandle<String>,
}

pub(crate) fn start_demo(db: &str, args: &[&str], env: &[(&str, &str)]) -> Demo {
    use std::io::{BufRead, BufReader, Read};
    let port = free_port();
    let mut child = crate::encore_process()
        .args(["serve", "--demo", "--db", db])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("encore serve listening on"), "{first:?}");
    // The banner names the simulator: `  simulator   http://127.0.0.1:PORT (scenario …`.
    let mut sim = String::new();
    for _ in 0..8 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if let Some(rest) = line.trim_start().strip_prefix("simulator") {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .clone_into(&mut sim);
            break;
        }
    }
    assert!(sim.starts_with("http://"), "the banner names the simulator");
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Demo {
        child: crate::KillOnDrop(child),
        base: format!("http://127.0.0.1:{port}"),
        sim,
        stderr,
    }
}

/// Submits a job (with `token` as the API token) and waits until it succeeded; returns its id.
pub(crate) fn submit_and_finish(token: &str, base: &str, body: &Value) -> String {
    let (code, created) = crate::http_as(token, base, "POST", "/v1/jobs", Some(body));
    assert_eq!(code, 201, "{created}");
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("the job to succeed", Duration::from_secs(60), || {
        let (code, job) = crate::http_as(token, base, "GET", &format!("/v1/jobs/{id}"), None);
        assert_eq!(code, 200, "{job}");
        serde_json::from_str::<Value>(&job).unwrap()["status"] == "succeeded"
    });
    id
}

#[cfg(unix)]
#[test]
fn log_format_json_writes_one_object_per_line_with_each_attempts_span() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db").to_string_lossy().into_owned();
    let demo = start_demo(&db, &["--log-format", "json"], &[]);
    submit_and_finish(
        "test-key",
        &demo.base,
        &json!({"business": "a bakery", "name": "Haneul", "lang": "en"}),
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&demo.child.0),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let mut child = demo.child;
    child.0.wait().unwrap();
    let logs = demo.stderr.join().unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.len() > 10,
        "JSON log lines at info by default:\n{logs}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["timestamp"].is_string() && l["level"].is_string()),
        "{logs}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "encore serve listening"),
        "{logs}"
    );
    // One closed span per HTTP attempt, with OpenTelemetry's attribute names.
    let attempts: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "close" && l["span"]["name"] == "http_request")
        .map(|l| &l["span"])
        .collect();
    assert!(attempts.len() >= 8, "{logs}");
    for span in &attempts {
        assert!(span["http.request.method"].is_string(), "{span}");
        assert_eq!(span["server.address"], "127.0.0.1", "{span}");
        assert!(span["server.port"].as_u64().unwrap() > 0, "{span}");
        assert!(
            span["url.full"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:"),
            "{span}"
        );
        assert!(span["encore.endpoint"].is_string(), "{span}");
    }
    assert!(
        attempts
            .iter()
            .any(|s| s["encore.endpoint"] == "suno.generate"
                && s["http.request.method"] == "POST"
                && s["http.response.status_code"].as_u64() == Some(200)),
        "{logs}"
    );
}

#[test]
fn metrics_show_an_outage_failing_fast() {
    let (_sim, sim) = start_sim(&["--scenario", "outage", "--time-scale", "0.02"]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db").to_string_lossy().into_owned();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = start_serve(&sim, &db, port);
    let ids: Vec<String> = (0..12)
        .map(|i| {
            let body = json!({"business": format!("a café {i}"), "name": format!("Café {i}"), "lang": "en"});
            let (code, body) = http(&base, "POST", "/v1/jobs", Some(&body));
            assert_eq!(code, 201, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    wait_until("every job to fail", Duration::from_secs(90), || {
        ids.iter()
            .all(|id| get_json(&base, &format!("/v1/jobs/{id}"))["status"] == "failed")
    });
    let (code, scrape) = http(&base, "GET", "/metrics", None);
    assert_eq!(code, 200, "{scrape}");
    let ledger = get_json(&sim, "/__sim/ledger");
    assert_eq!(
        attempts_per_endpoint(&scrape),
        received_per_endpoint(&ledger),
        "{scrape}"
    );
    // Creatomate's breaker opened (and the attempts it refused sent nothing), and the retry
    // budget refused retries: the outage was not amplified.
    let opened: u64 = samples(&scrape, "encore_circuitbreaker_transitions_total")
        .iter()
        .filter(|(labels, _)| {
            label(labels, "service") == "creatomate" && label(labels, "to") == "open"
        })
        .map(|(_, n)| n)
        .sum();
    assert!(opened >= 1, "{scrape}");
    let refused: u64 = [
        "encore_circuitbreaker_not_permitted_calls_total",
        "encore_retry_budget_refusals_total",
    ]
    .iter()
    .flat_map(|family| samples(&scrape, family).into_values())
    .sum();
    assert!(refused >= 1, "{scrape}");
    let gave_up: u64 = samples(&scrape, "encore_client_attempts_total")
        .iter()
        .filter(|(labels, _)| label(labels, "outcome") == "gave_up")
        .map(|(_, n)| n)
        .sum();
    assert!(gave_up >= 1, "{scrape}");
    assert_eq!(
        samples(&scrape, "encore_jobs")["{state=\"failed\"}"],
        12,
        "{scrape}"
    );
    let failed_steps = samples(&scrape, "encore_step_duration_seconds_count");
    assert_eq!(
        failed_steps["{step=\"template\",state=\"failed\"}"], 12,
        "{failed_steps:?}"
    );
    eprintln!(
        "outage: breaker opened {opened}×, {refused} attempts refused, {gave_up} gave up, \
         {} attempts in all",
        attempts_per_endpoint(&scrape).values().sum::<u64>()
    );
}
