//! End-to-end tests: the real `encore` binary against the embedded simulator.

mod config;
mod config_env;
mod ctrl_c;
mod demo;
mod durable;
mod errors;
mod job_support;
mod jobs;
mod keys;
mod providers;
mod readme;
mod serve;
mod sim;
mod stages;
mod store_files;
mod usage;

use assert_cmd::Command;
use serde_json::Value;

/// The `encore` binary with a clean environment (no keys, no ENCORE_* overrides, logs off, and
/// the platform's data directory in the test's target directory, so that a run without `--db`
/// never journals in the home directory), as a `std` command for tests that talk to it while
/// it runs.
pub fn encore_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_encore"));
    cmd.env(
        "XDG_DATA_HOME",
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-data"),
    );
    for (key, _) in std::env::vars() {
        if key.starts_with("ENCORE_")
            || key.ends_with("_API_KEY")
            || key == "CREATOMATE_TEMPLATE_ID"
            || key == "RUST_LOG"
        {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(std::env::temp_dir());
    cmd
}

/// A spawned `encore` that is killed when the test ends, passed or failed.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `encore` binary with a clean environment, run to completion (at most 2 minutes).
pub fn encore() -> Command {
    let mut cmd = Command::from_std(encore_process());
    cmd.timeout(std::time::Duration::from_secs(120));
    cmd
}

/// Runs `cmd`, expects `code`, and parses stdout as one JSON document.
pub fn json_output(cmd: &mut Command, code: i32) -> Value {
    let out = cmd.output().expect("encore runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"))
}
