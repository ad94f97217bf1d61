use std::net::SocketAddr;

use encore_sim::{Scenario, SimConfig, SimState};

use crate::encore;

/// A simulator in this process, on a free loopback port, and a config file pointing at it.
fn sim_and_config() -> (
    tokio::runtime::Runtime,
    encore_sim::RunningSim,
    tempfile::TempDir,
) {
    let (rt, sim) = sim_with("calm");
    let dir = tempfile::tempdir().unwrap();
    let base = sim.base_url();
    std::fs::write(
        dir.path().join("encore.toml"),
        format!(
            "[openai]\nbase_url = \"{base}/v1\"\n[suno]\nbase_url = \"{base}/api/v1\"\n[creatomate]\nbase_url = \"{base}/v1\"\n"
        ),
    )
    .unwrap();
    (rt, sim, dir)
}

#[test]
fn missing_keys_are_named_before_any_request() {
    let (rt, sim, dir) = sim_and_config();
    let out = encore()
        .current_dir(dir.path())
        .env("OPENAI_API_KEY", "sk-present")
        .args(["run", "--business", "a bakery", "--name", "Haneul"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("SUNO_API_KEY"), "{stderr}");
    assert!(stderr.contains("CREATOMATE_API_KEY"), "{stderr}");
    assert!(stderr.contains("CREATOMATE_TEMPLATE_ID"), "{stderr}");
    assert!(
        !stderr.contains("OPENAI_API_KEY"),
        "that one is set: {stderr}"
    );
    let ledger = sim.state().ledger();
    assert_eq!(
        ledger.requests_per_route.values().sum::<u64>(),
        0,
        "nothing was sent: {ledger:?}"
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn bad_input_is_refused_before_any_request() {
    let (rt, sim, dir) = sim_and_config();
    let out = encore()
        .current_dir(dir.path())
        .env("OPENAI_API_KEY", "k")
        .env("SUNO_API_KEY", "k")
        .env("CREATOMATE_API_KEY", "k")
        .env("CREATOMATE_TEMPLATE_ID", encore_sim::DEMO_TEMPLATE_ID)
        .args([
            "run",
            "--business",
            "a bakery",
            "--name",
            "Haneul",
            "--lang",
            "fr",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("unknown language \"fr\""), "{stderr}");
    assert_eq!(
        sim.state()
            .ledger()
            .requests_per_route
            .values()
            .sum::<u64>(),
        0
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn run_with_keys_makes_a_video_against_a_configured_simulator() {
    let (rt, sim, dir) = sim_and_config();
    let out = encore()
        .current_dir(dir.path())
        .env("OPENAI_API_KEY", "sk-test")
        .env("SUNO_API_KEY", "suno-test")
        .env("CREATOMATE_API_KEY", "crea-test")
        .env("CREATOMATE_TEMPLATE_ID", encore_sim::DEMO_TEMPLATE_ID)
        .env("ENCORE_PIPELINE__SONG_POLL__INTERVAL", "100ms")
        .env("ENCORE_PIPELINE__VIDEO_POLL__INTERVAL", "100ms")
        .args([
            "run",
            "--business",
            "a neighbourhood bakery",
            "--name",
            "Haneul Bakery",
            "--lang",
            "en",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["status"], "succeeded");
    let ledger = sim.state().ledger();
    assert_eq!(
        (
            ledger.openai_responses,
            ledger.suno_tasks,
            ledger.creatomate_renders
        ),
        (1, 1, 1)
    );
    rt.block_on(sim.shutdown());
}

/// A simulator in this process with a named scenario.
pub fn sim_with(scenario: &str) -> (tokio::runtime::Runtime, encore_sim::RunningSim) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = SimConfig {
        scenario: Scenario::named(scenario).unwrap(),
        time_scale: 0.01,
        ..SimConfig::default()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = rt
        .block_on(encore_sim::serve(SimState::new(config), addr))
        .unwrap();
    (rt, sim)
}

#[test]
fn sentinel_keys_never_appear_in_output_even_at_trace_level() {
    const SENTINELS: [&str; 3] = [
        "sk-SENTINEL-openai-7f3a9c",
        "SENTINEL-suno-41be02",
        "SENTINEL-creatomate-9d1e77",
    ];
    for scenario in ["flaky", "hostile"] {
        let (rt, sim) = sim_with(scenario);
        let out = encore()
            .env("OPENAI_API_KEY", SENTINELS[0])
            .env("SUNO_API_KEY", SENTINELS[1])
            .env("CREATOMATE_API_KEY", SENTINELS[2])
            .env("RUST_LOG", "trace")
            .env("ENCORE_PIPELINE__SONG_POLL__INTERVAL", "100ms")
            .env("ENCORE_PIPELINE__VIDEO_POLL__INTERVAL", "100ms")
            .args([
                "run",
                "--sim",
                &sim.base_url(),
                "--business",
                "a bakery",
                "--name",
                "Haneul",
                "--json",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("TRACE") || stderr.contains("DEBUG"),
            "logs were on: {stderr}"
        );
        let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
        assert!(doc["status"].is_string());
        for sentinel in SENTINELS {
            assert!(
                !stdout.contains(sentinel),
                "{scenario}: key in stdout:\n{stdout}"
            );
            assert!(!stderr.contains(sentinel), "{scenario}: key in stderr");
        }
        // The simulator did receive the keys (so they were really used), in headers only.
        let ledger = sim.state().ledger();
        assert!(
            ledger.requests.len() > 3,
            "{scenario}: {} requests",
            ledger.requests.len()
        );
        rt.block_on(sim.shutdown());
    }
}

#[test]
fn an_unusable_key_is_named_without_showing_it() {
    let (rt, sim, dir) = sim_and_config();
    let out = encore()
        .current_dir(dir.path())
        .env("OPENAI_API_KEY", "sk-SENTINEL-\u{1}-5c2e")
        .args(["lyrics", "--business", "a bakery", "--name", "Haneul"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("unusable OPENAI_API_KEY: ") && stderr.contains("(nothing was sent)"),
        "{stderr}"
    );
    assert!(!stderr.contains("SENTINEL"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        sim.state()
            .ledger()
            .requests_per_route
            .values()
            .sum::<u64>(),
        0
    );
    rt.block_on(sim.shutdown());
}
