//! The `encore` command line: a thin shell over `encore-pipeline`, `encore-clients` and
//! `encore-sim`.
//!
//! Each command lives in its own module under `commands/` and returns a `CliError` that carries
//! its exit code ([`exit::Exit`]): 0 success, 1 permanent failure, 2 gave up after
//! retries or a deadline, 3 bad input, configuration or command line (refused before any call),
//! 4 outcome unknown (a billed job may exist), 130 interrupted. A broken pipe on stdout exits 0.

mod args;
mod cli;
mod commands;
mod error;
pub mod exit;
mod holder;
mod interrupt;
mod json;
mod keys;
mod output;
mod progress;
mod report;
mod settings;
mod setup;
mod store;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::Cli;
use crate::error::CliError;
use crate::exit::Exit;

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e).into(),
    };
    init_tracing(cli.log_format());
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::permanent(anyhow::Error::new(e).context("could not start the async runtime"))
        })
        .and_then(|runtime| runtime.block_on(commands::dispatch(cli.command)));
    match result {
        Ok(()) => Exit::Success.into(),
        Err(error) => {
            if !error.is_broken_pipe() {
                let _ = error.write_to(&mut std::io::stderr().lock());
            }
            error.exit().into()
        }
    }
}

/// `--help` and `--version` print to stdout and exit 0; any other command-line error is bad
/// input (exit 3, not clap's 2, which means "gave up on transient faults" here).
fn usage(error: &clap::Error) -> Exit {
    let _ = error.print();
    if error.use_stderr() {
        Exit::BadInput
    } else {
        let _ = std::io::stdout().flush();
        Exit::Success
    }
}

/// `RUST_LOG` controls the log lines on stderr. As text, without it only the progress display
/// is shown (it carries the same retries), so the logs stay off by default; as JSON (for a log
/// collector, e.g. under `encore serve`), they are on at `info` by default, and each closed
/// span is a line too: one per HTTP attempt, with its OpenTelemetry attributes.
fn init_tracing(format: cli::LogFormat) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    let filter = match (EnvFilter::try_from_default_env(), format) {
        (Ok(filter), _) => filter,
        (Err(_), cli::LogFormat::Json) => EnvFilter::new("info"),
        (Err(_), cli::LogFormat::Text) => return,
    };
    let _ = match format {
        cli::LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(true)
            .try_init(),
        cli::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_span_events(FmtSpan::CLOSE)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(true)
            .try_init(),
    };
}
