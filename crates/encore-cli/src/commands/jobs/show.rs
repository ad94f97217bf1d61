//! `encore jobs show JOB`: a job with its steps, its result or error, and what it needs.

use clap::Args;
use encore_pipeline::job::now_millis;
use encore_resilience::fmt_duration;
use encore_store::{JobDetail, JobId};

use super::{JobsArgs, read};
use crate::args::job_id;
use crate::error::CliError;
use crate::json::{JobDetailJson, step_elapsed_ms, time};
use crate::output;

/// `encore jobs show`
#[derive(Debug, Args, Clone)]
pub struct ShowArgs {
    /// The job's id.
    #[arg(value_name = "JOB", value_parser = job_id)]
    pub job: JobId,
    #[command(flatten)]
    pub jobs: JobsArgs,
}

/// Prints the job, as text or with `--json` as one job document.
pub async fn run(args: ShowArgs) -> Result<(), CliError> {
    let store = args.jobs.open().await?;
    let detail = read(&store, args.job).await?;
    if args.jobs.config.json {
        output::json(&JobDetailJson::new(&detail, now_millis()))
    } else {
        output::text(&text(&detail))
    }
}

/// The job as text: its facts, a table of its steps, then its attention, result or error.
pub fn text(detail: &JobDetail) -> String {
    let job = &detail.job;
    let now = now_millis();
    let mut out = format!(
        "job      {}\nstatus   {}\norigin   {}\n",
        job.id, job.status, job.origin
    );
    let input: Vec<String> = ["name", "business", "region", "mood", "lang"]
        .into_iter()
        .filter_map(|key| Some(format!("{key} {}", job.input.get(key)?)))
        .collect();
    out.push_str(&format!("input    {}\n", input.join(", ")));
    out.push_str(&format!(
        "created  {}\nupdated  {}\n",
        time(job.created_at),
        time(job.updated_at)
    ));
    if let Some(lease) = &job.lease {
        out.push_str(&format!(
            "held by  {} until {} ({})\n",
            lease.owner,
            time(lease.expires_at),
            if lease.expires_at > now {
                "live"
            } else {
                "expired"
            }
        ));
    }
    out.push_str(&format!(
        "\n{:<16} {:<10} {:>8}  {:<24} {:>8}  {}\n",
        "step", "state", "attempts", "started", "took", "external id"
    ));
    for step in &detail.steps {
        out.push_str(&format!(
            "{:<16} {:<10} {:>8}  {:<24} {:>8}  {}\n",
            step.name,
            step.state,
            step.attempts,
            step.started_at.map_or_else(|| "-".to_owned(), time),
            step_elapsed_ms(step).map_or_else(
                || "-".to_owned(),
                |ms| fmt_duration(std::time::Duration::from_millis(ms))
            ),
            step.external_id.as_deref().unwrap_or("-"),
        ));
        if let Some(error) = &step.error {
            out.push_str(&format!("  {}: {error}\n", step.name));
        }
    }
    if detail.steps.is_empty() {
        out.push_str("(no step has started)\n");
    }
    if let Some(attention) = &job.attention {
        out.push_str(&format!(
            "\nneeds attention: {}\nresolve: {}\n",
            attention.reason, attention.resolution
        ));
    }
    if let Some(error) = &job.error {
        out.push_str(&format!(
            "\nerror: {} ({}, {})\n",
            error.message, error.code, error.class
        ));
    }
    if let Some(result) = &job.result {
        out.push('\n');
        for key in ["video_url", "audio_url", "suno_task_id", "render_id"] {
            if let Some(value) = result.get(key).and_then(serde_json::Value::as_str) {
                out.push_str(&format!("{key}: {value}\n"));
            }
        }
    }
    out
}
