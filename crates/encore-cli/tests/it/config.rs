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

#[test]
fn config_show_prints_the_seed_plans_table() {
    let out = encore().args(["config", "show"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for row in [
        ("openai.responses", "60s", "2s → 4s → 8s"),
        ("suno.generate", "30s", "1s → 2s → 4s"),
        ("suno.status", "30s", "1s → 2s"),
        ("suno.timestamps", "120s", "2s → 4s"),
        ("creatomate.templates", "30s", "1s → 2s"),
        ("creatomate.render", "60s", "1s → 2s → 4s"),
        ("creatomate.status", "30s", "1s → 2s"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(row.0))
            .unwrap_or_else(|| panic!("no {} row:\n{stdout}", row.0));
        assert!(line.contains(row.1) && line.contains(row.2), "{line}");
    }
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
    let generate = stdout
        .lines()
        .find(|l| l.starts_with("suno.generate"))
        .unwrap();
    assert!(generate.contains(" off "), "{generate}");
    assert!(generate.contains(" 1 "), "one try: {generate}");
}
