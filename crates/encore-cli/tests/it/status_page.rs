//! The status page of `encore serve --demo` in a real headless Chromium (Debian's package,
//! installed by `.ci/chromium`): sign-in with the API token, the job list, one job's timeline,
//! the live-update script allowed by the page's CSP nonce, hostile job text shown as text, and
//! screenshots kept under `target/tmp/status-page/`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::observe::{start_demo, submit_and_finish};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The demo server's API token.
const TOKEN: &str = "status-page-token-0123456789";

/// Runs Chromium headless on `url` with `args` (a fresh profile each time); its stdout.
fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed on {url}: {status}");
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// `GET path` without any credential: the status code and the body.
fn get_anonymous(base: &str, path: &str) -> (u16, String) {
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

/// `PUT /__sim/scenario` with a TOML body.
fn put_scenario(sim: &str, toml: &str) -> (u16, String) {
    let host = sim.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "PUT /__sim/scenario HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/toml\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{toml}",
        toml.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{} is a real screenshot ({} bytes)",
        path.display(),
        bytes.len()
    );
}

#[cfg(unix)]
#[test]
fn the_status_page_in_a_headless_browser() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED the_status_page_in_a_headless_browser: {CHROMIUM} is missing \
             (`.ci/chromium` installs Debian's chromium package)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db").to_string_lossy().into_owned();
    // Every job reads the template (`template_check_ttl = 0s`): the live job below is held
    // running by a slow template read, which a check shared with the earlier jobs would skip.
    let demo = start_demo(
        &db,
        &["--scenario", "flaky"],
        &[
            ("ENCORE_SERVE__API_TOKEN", TOKEN),
            ("ENCORE_PIPELINE__TEMPLATE_CHECK_TTL", "0s"),
        ],
    );
    let base = demo.base.clone();

    // Without the token: the sign-in page (which does not contain the token), and no metrics.
    let (code, body) = get_anonymous(&base, "/");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("action=\"/signin\""), "{body}");
    let (code, _) = get_anonymous(&base, "/metrics");
    assert_eq!(code, 401);
    let (code, _) = get_anonymous(&base, "/jobs/x/events");
    assert_eq!(code, 401);

    // A job whose text tries to inject markup, through the flaky scenario (retries, waits).
    let hostile = submit_and_finish(
        TOKEN,
        &base,
        &json!({
            "business": "a bakery</td><script id=\"injected\">document.title='owned'</script>",
            "name": "Haneul <img src=x id=pwned>",
            "lang": "en",
        }),
    );
    let calm = submit_and_finish(
        TOKEN,
        &base,
        &json!({"business": "a bakery in Mangwon-dong", "name": "Mangwon Bakery", "lang": "en"}),
    );

    // The job list, signed in with ?token= (a cookie, then the page without the token).
    let index = chromium(&["--dump-dom"], &format!("{base}/?token={TOKEN}"));
    for id in [&hostile, &calm] {
        assert!(
            index.contains(&format!("data-job=\"{id}\"")),
            "the list shows {id}:\n{index}"
        );
    }
    assert!(index.contains("class=\"state succeeded\""), "{index}");
    assert!(
        index.contains("id=\"live\">live: nothing open to follow<"),
        "the inline script ran under the CSP nonce:\n{index}"
    );
    assert!(index.contains("id=\"services\""), "{index}");
    assert!(
        index.contains("Haneul &lt;img src=x id=pwned&gt;"),
        "hostile text shown as text:\n{index}"
    );
    assert!(
        !index.contains("id=\"pwned\"") && !index.contains(TOKEN),
        "{index}"
    );

    // One job's steps and timeline.
    let page = chromium(
        &["--dump-dom"],
        &format!("{base}/jobs/{hostile}?token={TOKEN}"),
    );
    assert!(page.contains("id=\"timeline\""), "{page}");
    assert_eq!(
        page.matches("<tr data-step=").count(),
        8,
        "eight steps:\n{page}"
    );
    assert_eq!(
        page.matches("class=\"state done\"").count(),
        8,
        "all done:\n{page}"
    );
    assert!(
        page.matches("data-kind=\"call_finished\"").count() >= 8,
        "{page}"
    );
    assert!(
        page.contains("data-kind=\"retrying\"") && page.contains("— waiting "),
        "the flaky scenario's retries and waits are on the timeline:\n{page}"
    );
    assert!(
        !page.contains("<script id=\"injected\"") && !page.contains("<title>owned"),
        "{page}"
    );
    assert!(page.contains("&lt;script id=\"injected\"&gt;"), "{page}");

    // Live updates: a page opened while a job runs follows its event stream (signed in by the
    // cookie) and reloads until the job has ended. The simulator now holds every template read
    // for 8 s, so the job is still running when Chromium (started at once) loads the page;
    // Chromium runs the page on virtual time until it is idle (or 60 virtual seconds passed).
    let held = "[routes.\"creatomate.template\"]\nmix = [{ p = 1.0, fault = { kind = \"latency\", ms = 8000 } }]\n";
    let (code, answer) = put_scenario(&demo.sim, held);
    assert_eq!(code, 200, "{answer}");
    let (code, created) = crate::http_as(
        TOKEN,
        &base,
        "POST",
        "/v1/jobs",
        Some(&json!({"business": "a flower shop", "name": "Live Flowers", "lang": "en"})),
    );
    assert_eq!(code, 201, "{created}");
    let live = serde_json::from_str::<serde_json::Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let followed = chromium(
        &["--virtual-time-budget=60000", "--dump-dom"],
        &format!("{base}/jobs/{live}?token={TOKEN}"),
    );
    let (_, now) = crate::http_as(TOKEN, &base, "GET", &format!("/v1/jobs/{live}"), None);
    assert!(now.contains("\"status\":\"succeeded\""), "{now}");
    assert!(
        followed.contains("<span class=\"state succeeded\">succeeded</span>")
            && followed.contains("live: nothing open to follow (updated live ×"),
        "the page followed the job's events and reloaded until it succeeded:\n{followed}"
    );

    // Screenshots, kept as the test's artifacts.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, path) in [
        ("jobs", "/".to_owned()),
        ("job", format!("/jobs/{hostile}")),
    ] {
        let file = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&file);
        chromium(
            &[
                "--window-size=1280,1400",
                &format!("--screenshot={}", file.display()),
            ],
            &format!("{base}{path}?token={TOKEN}"),
        );
        assert_png(&file);
        eprintln!("screenshot: {}", file.display());
    }
}
