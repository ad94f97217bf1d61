//! The human summary of a pipeline run, for stdout: what it made, a table of its calls and the
//! total time. (Its error, if any, goes to stderr as the command's error.)

use encore_clients::{CallOutcome, CallRecord};
use encore_pipeline::Report;
use encore_resilience::fmt_duration;

use crate::error::CliError;

/// The summary of `report`: title, style, audio and video (as far as the run got), the calls
/// table and the total time.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    if let Some(lyrics) = &report.lyrics {
        out.push_str(&format!(
            "title:  {}\nstyle:  {}\n",
            lyrics.title, lyrics.style
        ));
    }
    if let Some(song) = &report.song {
        out.push_str(&format!("audio:  {}\n", song.audio_url));
    }
    if let Some(video) = &report.video {
        out.push_str(&format!("video:  {}\n", video.url));
    }
    out.push('\n');
    out.push_str(&calls_table(&report.calls));
    out.push_str(&format!("total:  {}\n", fmt_duration(report.elapsed)));
    out
}

/// The table of calls: endpoint, attempts, outcome and time, one row per logical call.
pub fn calls_table(calls: &[CallRecord]) -> String {
    let mut out = format!(
        "{:<22} {:>8}  {:<7} {:>8}\n",
        "call", "attempts", "outcome", "time"
    );
    for call in calls {
        out.push_str(&format!(
            "{:<22} {:>8}  {:<7} {:>8}\n",
            call.endpoint.name(),
            call.attempts,
            match call.outcome {
                CallOutcome::Ok => "ok",
                CallOutcome::Failed => "failed",
            },
            fmt_duration(call.elapsed)
        ));
    }
    out
}

/// The run's outcome as a command result: its error, if it has one.
pub fn into_result(report: Report) -> Result<(), CliError> {
    match report.error {
        Some(error) => Err(error.into()),
        None if report.video.is_some() => Ok(()),
        None => Err(CliError::permanent(anyhow::anyhow!(
            "the pipeline ended without a video"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use encore_clients::{Endpoint, Service};

    use super::*;

    fn call(endpoint: Endpoint, attempts: u32, elapsed: Duration, failed: bool) -> CallRecord {
        CallRecord {
            service: Service::Suno,
            endpoint,
            attempts,
            outcome: if failed {
                CallOutcome::Failed
            } else {
                CallOutcome::Ok
            },
            elapsed,
            error: failed.then(|| "http 503".to_owned()),
        }
    }

    #[test]
    fn times_use_the_cores_duration_format() {
        let table = calls_table(&[
            call(
                Endpoint::SunoGenerate,
                2,
                Duration::from_millis(1003),
                false,
            ),
            call(Endpoint::SunoStatus, 1, Duration::from_millis(250), false),
            call(Endpoint::SunoStatus, 3, Duration::from_secs(75), true),
        ]);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows[0], "call                   attempts  outcome     time");
        assert_eq!(rows[1], "suno.generate                 2  ok            1s");
        assert_eq!(rows[2], "suno.status                   1  ok         250ms");
        assert_eq!(rows[3], "suno.status                   3  failed    1m 15s");
        let report = Report {
            elapsed: Duration::from_millis(9204),
            ..Report::default()
        };
        assert!(
            text(&report).ends_with("total:  9.2s\n"),
            "{}",
            text(&report)
        );
    }
}
