//! Command-line usage errors are bad input (exit 3); help and version exit 0.

use crate::encore;

/// Runs `encore args`, expecting exit `code`; returns stdout and stderr.
fn run(args: &[&str], code: i32) -> (String, String) {
    let out = encore().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "encore {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn usage_errors_exit_3_and_say_what_is_wrong() {
    for (args, says) in [
        (&["run", "--business", "a bakery"][..], "--name"),
        (&["lyrics", "--name", "Haneul"], "--business"),
        (&["bake"], "unrecognized subcommand 'bake'"),
        (&["demo", "--pipelines", "0"], "0 is not in 1..=200"),
        (&["demo", "--pipelines", "201"], "201 is not in 1..=200"),
        (
            &["demo", "--time-scale", "0"],
            "must be above 0 and at most 10",
        ),
        (
            &["sim", "--time-scale", "11"],
            "must be above 0 and at most 10",
        ),
        (&["demo", "--lang", "fr"], "unknown language \"fr\""),
        (
            &["demo", "--suno-credits", "many"],
            "invalid value 'many' for '--suno-credits <N>'",
        ),
        (&["sim", "--port", "70000"], "--port"),
        (
            &["sim", "--scenario", "calm", "--scenario-file", "x.toml"],
            "cannot be used with",
        ),
        (
            &[
                "song",
                "--title",
                "t",
                "--style",
                "s",
                "--lyrics",
                "la",
                "--lyrics-file",
                "f",
            ],
            "cannot be used with",
        ),
        (&["song", "--title", "t", "--style", "s"], "--lyrics"),
        (
            &["song", "--title", " ", "--style", "s", "--lyrics", "la"],
            "must not be empty",
        ),
        (
            &[
                "video",
                "--audio-url",
                "u",
                "--title",
                "t",
                "--duration",
                "0",
            ],
            "positive",
        ),
        (
            &["run", "--business", "b", "--name", "n", "--sim", ""],
            "must not be empty",
        ),
    ] {
        let (stdout, stderr) = run(args, 3);
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should say {says:?}: {stderr}"
        );
    }
}

#[test]
fn a_missing_subcommand_is_a_usage_error() {
    let (_, stderr) = run(&[], 3);
    assert!(stderr.contains("Usage: encore <COMMAND>"), "{stderr}");
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let (stdout, stderr) = run(&["--help"], 0);
    assert!(stdout.contains("Usage: encore <COMMAND>"), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
    let (stdout, _) = run(&["demo", "--help"], 0);
    assert!(stdout.contains("--suno-credits <N>"), "{stdout}");
    assert!(
        stdout.contains("[possible values: calm, flaky, outage, hostile]"),
        "{stdout}"
    );
    let (stdout, _) = run(&["help", "sim"], 0);
    assert!(stdout.contains("--suno-credits <N>"), "{stdout}");
    let (stdout, _) = run(&["--version"], 0);
    assert_eq!(
        stdout.trim(),
        format!("encore {}", env!("CARGO_PKG_VERSION"))
    );
}
