//! `encore jobs list`: jobs newest first, optionally of one status.

use clap::Args;
use clap::builder::PossibleValuesParser;
use encore_pipeline::JobStatus;
use encore_pipeline::job::now_millis;
use encore_store::{Job, JobQuery};

use super::JobsArgs;
use crate::error::CliError;
use crate::json::{JobJson, time};
use crate::output;

/// `encore jobs list`
#[derive(Debug, Args, Clone)]
pub struct ListArgs {
    /// Only jobs in this status.
    #[arg(long, value_parser = PossibleValuesParser::new(JobStatus::ALL.map(JobStatus::as_str)))]
    pub status: Option<String>,
    /// At most this many jobs (1 to 500).
    #[arg(long, default_value_t = JobQuery::DEFAULT_LIMIT,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(JobQuery::MAX_LIMIT)))]
    pub limit: u32,
    #[command(flatten)]
    pub jobs: JobsArgs,
}

/// Prints the jobs as a table, or with `--json` as an array of job documents.
pub async fn run(args: ListArgs) -> Result<(), CliError> {
    let store = args.jobs.open().await?;
    let query = JobQuery {
        status: args
            .status
            .as_deref()
            .map(|s| s.parse().expect("clap accepts only job status names")),
        limit: args.limit,
        ..JobQuery::default()
    };
    let page = store.list_jobs(&query).await?;
    let now = now_millis();
    if args.jobs.config.json {
        let jobs: Vec<JobJson<'_>> = page.jobs.iter().map(|j| JobJson::new(j, now)).collect();
        return output::json(&jobs);
    }
    let mut text = table(&page.jobs);
    if page.next.is_some() {
        text.push_str(&format!(
            "(older jobs not shown: --limit {} shows more)\n",
            (args.limit * 2).min(JobQuery::MAX_LIMIT)
        ));
    }
    output::text(&text)
}

/// One line per job: id, status, last change, name.
fn table(jobs: &[Job]) -> String {
    let mut out = format!(
        "{:<36}  {:<15}  {:<24}  {}\n",
        "job", "status", "updated", "name"
    );
    for job in jobs {
        out.push_str(&format!(
            "{:<36}  {:<15}  {:<24}  {}\n",
            job.id,
            job.status,
            time(job.updated_at),
            job.input
                .get("name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("-")
        ));
    }
    out
}
