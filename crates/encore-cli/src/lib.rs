//! The `encore` command line: a thin shell over `encore-pipeline`, `encore-clients` and
//! `encore-sim`.
//!
//! Exit codes: 0 success, 1 permanent failure, 2 gave up after retries or a deadline, 3 bad input
//! or configuration (refused before any call), 4 outcome unknown (a billed job may exist),
//! 130 interrupted.

mod args;
mod commands;
pub mod exit;
mod output;
mod progress;
mod settings;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return exit::code(exit::PERMANENT);
        }
    };
    let code = runtime.block_on(commands::dispatch(cli));
    exit::code(code)
}

/// `RUST_LOG` controls the log lines on stderr; without it only the progress display is shown
/// (it carries the same retries), so the logs stay off by default.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let Ok(filter) = EnvFilter::try_from_default_env() else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}

/// Prints an error and its causes to stderr, skipping a cause whose text the error already
/// includes.
pub(crate) fn print_error(err: &(dyn std::error::Error + 'static)) {
    let mut text = format!("error: {err}");
    let mut shown = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !shown.contains(&line) {
            text.push_str(&format!("\n  caused by: {line}"));
            shown.push_str(&line);
        }
        source = cause.source();
    }
    eprintln!("{text}");
}
