//! `encore jobs purge --older-than 30d`: retention, through
//! [`Store::purge`](encore_store::Store::purge). Removes succeeded and cancelled jobs (failed
//! ones with `--include-failed`) whose last change is older than the given age, with their
//! steps, events and callbacks. A job that needs attention, is queued or is running is never
//! removed.

use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use encore_store::{Purge, Purged};
use serde::Serialize;

use super::JobsArgs;
use crate::error::CliError;
use crate::json::time;
use crate::output;

/// `encore jobs purge`
#[derive(Debug, Args, Clone)]
pub struct PurgeArgs {
    /// Remove jobs whose last change is older than this (`30d`, `12weeks`; at least `1d`).
    #[arg(long, value_name = "AGE", value_parser = age)]
    pub older_than: Duration,
    /// Failed jobs too (otherwise kept: `encore run --resume` could still finish them).
    #[arg(long)]
    pub include_failed: bool,
    /// Count what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub jobs: JobsArgs,
}

/// Parses `--older-than`: a duration of at least [`Purge::MIN_AGE`].
fn age(text: &str) -> Result<Duration, String> {
    let age = humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 30d)"))?;
    if age < Purge::MIN_AGE {
        return Err(format!(
            "{} is less than a day: a purged job's idempotency key goes with it, and a client retrying within a day must find its job",
            humantime::format_duration(age)
        ));
    }
    Ok(age)
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct PurgeJson {
    dry_run: bool,
    finished_before: String,
    total: u64,
    jobs: serde_json::Map<String, serde_json::Value>,
}

/// Removes (or counts) the jobs and says how many of each status.
pub async fn run(args: PurgeArgs) -> Result<(), CliError> {
    let store = args.jobs.open().await?;
    let purge = Purge::older_than(args.older_than, args.include_failed);
    let finished_before = purge.finished_before;
    if finished_before <= 0 {
        return Err(CliError::bad_input(anyhow!(
            "--older-than {} reaches before 1970: nothing could be that old",
            humantime::format_duration(args.older_than)
        )));
    }
    let purged = if args.dry_run {
        store.purgeable(&purge).await?
    } else {
        store.purge(&purge).await?
    };
    let before = time(finished_before);
    if args.jobs.config.json {
        return output::json(&PurgeJson {
            dry_run: args.dry_run,
            finished_before: before,
            total: purged.total(),
            jobs: purged
                .jobs
                .iter()
                .map(|(status, n)| (status.as_str().to_owned(), (*n).into()))
                .collect(),
        });
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    output::text(&format!(
        "{verb} {} finished before {before}{} from {}\n",
        count(&purged),
        if args.include_failed {
            ""
        } else {
            " (failed jobs kept: --include-failed)"
        },
        store.database()
    ))
}

/// "3 jobs (2 succeeded, 1 cancelled)", "1 job (1 failed)", "no job".
fn count(purged: &Purged) -> String {
    match purged.total() {
        0 => "no job".to_owned(),
        total => format!(
            "{total} job{} ({})",
            if total == 1 { "" } else { "s" },
            purged
                .jobs
                .iter()
                .map(|(status, n)| format!("{n} {status}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use encore_pipeline::JobStatus;

    #[test]
    fn ages_below_a_day_are_refused() {
        assert_eq!(age("30d"), Ok(Duration::from_secs(30 * 24 * 3600)));
        assert_eq!(age("1day"), Ok(Purge::MIN_AGE));
        let short = age("23h 59m").unwrap_err();
        assert!(short.contains("23h 59m is less than a day"), "{short}");
        assert!(age("soon").unwrap_err().contains("e.g. 30d"));
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(count(&Purged::default()), "no job");
        let one = Purged {
            jobs: vec![(JobStatus::Failed, 1)],
        };
        assert_eq!(count(&one), "1 job (1 failed)");
        let three = Purged {
            jobs: vec![(JobStatus::Succeeded, 2), (JobStatus::Cancelled, 1)],
        };
        assert_eq!(count(&three), "3 jobs (2 succeeded, 1 cancelled)");
    }
}
