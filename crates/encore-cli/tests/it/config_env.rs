//! The `encore` binary reads `ENCORE_*` variables for every table of the configuration —
//! the clients' (`services` included) and the pipeline's — through the clients' loader, and
//! refuses a bad value or a misspelled variable with the key and the reason (exit 3).

use serde_json::Value;

use crate::{encore, json_output};

/// `encore config check` with one variable set: the exit code and stderr.
fn check_with(var: &str, value: &str) -> (Option<i32>, String) {
    let out = encore()
        .env(var, value)
        .args(["config", "check"])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_service_value_from_the_environment_is_refused_with_its_key() {
    let (code, stderr) = check_with("ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS", "abc");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("services.suno.rate_limit.requests"),
        "the key: {stderr}"
    );
    assert!(
        stderr.contains("environment variable ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS"),
        "where it came from: {stderr}"
    );
    assert!(!stderr.contains("configuration ok"), "{stderr}");
    // A value of the right type that breaks an invariant is refused too.
    let (code, stderr) = check_with("ENCORE_SERVICES__SUNO__BREAKER__FAILURE_RATIO", "2");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("services.suno.breaker.failure_ratio"),
        "{stderr}"
    );
}

#[test]
fn a_misspelled_variable_is_refused_with_a_suggestion() {
    let (code, stderr) = check_with("ENCORE_OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("ENCORE_OPENAI_BASE_URL"), "{stderr}");
    assert!(
        stderr.contains("did you mean ENCORE_OPENAI__BASE_URL?"),
        "{stderr}"
    );
    // The pipeline's table is known as well.
    let (code, stderr) = check_with("ENCORE_PIPELINE_SONG_POLL__DEADLINE", "15m");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("did you mean ENCORE_PIPELINE__SONG_POLL__DEADLINE?"),
        "{stderr}"
    );
    // Variables of other parts of encore are left alone.
    let (code, stderr) = check_with("ENCORE_LOG", "debug");
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn service_and_pipeline_variables_reach_the_effective_configuration() {
    let shown: Value = json_output(
        encore()
            .env("ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS", "10")
            .env("ENCORE_SERVICES__CREATOMATE__BREAKER__ENABLED", "false")
            .env("ENCORE_PIPELINE__SONG_POLL__DEADLINE", "15m")
            .args(["config", "show", "--json"]),
        0,
    );
    let suno = &shown["clients"]["services"]["suno"];
    assert_eq!(suno["rate_limit"]["requests"], 10, "{shown}");
    assert_eq!(
        shown["clients"]["services"]["creatomate"]["breaker"]["enabled"],
        false
    );
    assert_eq!(shown["pipeline"]["song_poll"]["deadline"], "15m", "{shown}");
}

#[test]
fn a_bad_pipeline_variable_names_its_key_and_origin() {
    let (code, stderr) = check_with("ENCORE_PIPELINE__SONG_POLL__DEADLINE", "soon");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("pipeline.song_poll.deadline"), "{stderr}");
    assert!(
        stderr.contains("environment variable ENCORE_PIPELINE__SONG_POLL__DEADLINE"),
        "{stderr}"
    );
}
