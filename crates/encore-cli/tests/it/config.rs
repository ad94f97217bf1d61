use crate::encore;

/// `encore config check` on a file holding `toml`: the exit code and stderr.
fn check_file(toml: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encore.toml");
    std::fs::write(&path, toml).unwrap();
    let out = encore()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_config_value_is_refused_with_its_key() {
    let (code, stderr) = check_file("[endpoints.suno_generate]\nbase_delay = \"60s\"\n");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("suno_generate"), "{stderr}");
    assert!(stderr.contains("base_delay"), "{stderr}");
}

#[test]
fn an_unknown_key_is_reported() {
    let (code, stderr) = check_file("[endpoints.suno_generate]\nmax_retry = 5\n");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("max_retry"), "{stderr}");
}

#[test]
fn a_bad_pipeline_value_is_refused_with_its_key() {
    let (code, stderr) = check_file("[pipeline.song_poll]\ninterval = \"5m\"\n");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("pipeline.song_poll.interval"), "{stderr}");
}

#[test]
fn a_bad_template_check_lifetime_is_refused_with_its_key() {
    for (value, why) in [("\"2h\"", "must be at most 60m"), ("\"soon\"", "soon")] {
        let (code, stderr) = check_file(&format!("[pipeline]\ntemplate_check_ttl = {value}\n"));
        assert_eq!(code, Some(3), "{stderr}");
        assert!(stderr.contains("pipeline.template_check_ttl"), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
    }
    let (code, stderr) = check_file("[pipeline]\ntemplate_check_ttl = \"0s\"\n");
    assert_eq!(
        code,
        Some(0),
        "0s checks the template for every job: {stderr}"
    );
}

#[test]
fn a_bad_environment_override_is_refused_with_its_key() {
    let out = encore()
        .env("ENCORE_ENDPOINTS__OPENAI_RESPONSES__MULTIPLIER", "0.5")
        .args(["config", "check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("multiplier"), "{stderr}");
}

/// The cells of the row of `stdout` that starts with `key` (followed by a space).
fn row<'a>(stdout: &'a str, key: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} row:\n{stdout}"));
    line.split_whitespace().skip(1).collect()
}

#[test]
fn config_show_prints_the_seed_plans_table() {
    let out = encore().args(["config", "show"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for (endpoint, timeout, waits) in [
        ("openai.responses", "1m", "2s → 4s → 8s"),
        ("suno.generate", "30s", "1s → 2s → 4s"),
        ("suno.status", "30s", "1s → 2s"),
        ("suno.timestamps", "2m", "2s → 4s"),
        ("creatomate.templates", "30s", "1s → 2s"),
        ("creatomate.render", "1m", "1s → 2s → 4s"),
        ("creatomate.status", "30s", "1s → 2s"),
    ] {
        let cells = row(&stdout, endpoint).join(" ");
        assert!(
            cells.starts_with(&format!("on {timeout} ")) && cells.contains(waits),
            "{endpoint}: {cells}"
        );
    }
}

#[test]
fn config_show_prints_each_services_budget_breaker_and_rate_limit() {
    let out = encore().args(["config", "show"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let endpoints = stdout.find("creatomate.status").unwrap();
    let services = stdout.find("services").expect("a services table");
    assert!(services > endpoints, "after the endpoint table:\n{stdout}");
    assert_eq!(row(&stdout, "services"), ["openai", "suno", "creatomate"]);
    // The shipped defaults (README, "Overload protection").
    for (key, cells) in [
        ("budget.enabled", ["on", "on", "on"]),
        ("budget.ratio", ["0.2", "0.2", "0.2"]),
        ("budget.window", ["10s", "10s", "10s"]),
        ("breaker.consecutive_failures", ["5", "5", "5"]),
        ("breaker.open_for", ["10s", "10s", "10s"]),
        ("breaker.max_open_for", ["2m", "2m", "2m"]),
        ("rate_limit.enabled", ["off", "on", "on"]),
        ("rate_limit.requests", ["500", "20", "30"]),
        ("rate_limit.per", ["1m", "10s", "10s"]),
    ] {
        assert_eq!(row(&stdout, key), cells, "{key}");
    }
}

#[test]
fn config_show_prints_the_services_settings_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encore.toml");
    std::fs::write(
        &path,
        "[services.suno.rate_limit]\nrequests = 7\nper = \"1m\"\n\
         [services.creatomate.breaker]\nenabled = false\n\
         [services.openai.budget]\nratio = 0.5\n",
    )
    .unwrap();
    let out = encore()
        .args(["config", "show", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(row(&stdout, "rate_limit.requests"), ["500", "7", "30"]);
    assert_eq!(row(&stdout, "rate_limit.per"), ["1m", "1m", "10s"]);
    assert_eq!(row(&stdout, "breaker.enabled"), ["on", "on", "off"]);
    assert_eq!(row(&stdout, "budget.ratio"), ["0.5", "0.2", "0.2"]);
}

#[test]
fn the_rollback_switch_turns_every_retry_off() {
    let out = encore()
        .env("ENCORE_RETRIES", "false")
        .args(["config", "show"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("retries: OFF (rollback)"), "{stdout}");
    let generate = row(&stdout, "suno.generate");
    assert_eq!(generate[0], "off", "{generate:?}");
    assert_eq!(generate[2], "1", "one try: {generate:?}");
}
