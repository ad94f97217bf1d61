//! The `--json` documents (README, "--json"), one typed struct per document.

use std::collections::BTreeMap;

use encore_clients::{CallOutcome, CallRecord, Config, Endpoint, Service};
use encore_pipeline::job::Millis;
use encore_pipeline::{
    FailureClass, JobStatus, Lyrics, PipelineConfig, PipelineError, Report, StepName, StepRecord,
    StepState,
};
use encore_sim::Ledger;
use encore_store::{Attention, Job, JobDetail, JobError, JobId, Origin};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::exit::Exit;

/// Whether a run (or every run of a demo) made its video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It did.
    Succeeded,
    /// It did not; `error` says why.
    Failed,
}

impl Status {
    fn of(succeeded: bool) -> Status {
        if succeeded {
            Status::Succeeded
        } else {
            Status::Failed
        }
    }
}

/// One call in the `calls` array.
#[derive(Debug, Serialize)]
pub struct CallJson<'a> {
    service: Service,
    endpoint: Endpoint,
    attempts: u32,
    outcome: CallOutcome,
    elapsed_ms: u64,
    error: Option<&'a str>,
}

impl<'a> From<&'a CallRecord> for CallJson<'a> {
    fn from(call: &'a CallRecord) -> Self {
        CallJson {
            service: call.service,
            endpoint: call.endpoint,
            attempts: call.attempts,
            outcome: call.outcome,
            elapsed_ms: millis(call.elapsed),
            error: call.error.as_deref(),
        }
    }
}

/// The document of one pipeline run (`encore run --json`, and each of `demo`'s).
#[derive(Debug, Serialize)]
pub struct RunJson<'a> {
    status: Status,
    video_url: Option<&'a str>,
    audio_url: Option<&'a str>,
    lyrics: Option<&'a Lyrics>,
    error: Option<String>,
    error_class: Option<FailureClass>,
    exit_code: u8,
    elapsed_ms: u64,
    suno_task_id: Option<&'a str>,
    render_id: Option<&'a str>,
    calls: Vec<CallJson<'a>>,
}

impl<'a> RunJson<'a> {
    /// The document for `report`.
    pub fn new(report: &'a Report) -> Self {
        RunJson {
            status: Status::of(report.succeeded()),
            video_url: report.video.as_ref().map(|v| v.url.as_str()),
            audio_url: report.song.as_ref().map(|s| s.audio_url.as_str()),
            lyrics: report.lyrics.as_ref(),
            error: report.error.as_ref().map(ToString::to_string),
            error_class: report.error.as_ref().map(PipelineError::class),
            exit_code: Exit::for_report(report).code(),
            elapsed_ms: millis(report.elapsed),
            suno_task_id: report.song.as_ref().map(|s| s.task_id.as_str()),
            render_id: report.video.as_ref().map(|v| v.render_id.as_str()),
            calls: report.calls.iter().map(CallJson::from).collect(),
        }
    }
}

/// What a succeeded job stored as its result (the runner's `result`).
#[derive(Debug, Default, Deserialize)]
pub struct StoredResult {
    video_url: Option<String>,
    audio_url: Option<String>,
    lyrics: Option<Lyrics>,
    suno_task_id: Option<String>,
    render_id: Option<String>,
}

impl StoredResult {
    /// The result stored with `job` (empty fields for what is missing or unreadable).
    pub fn of(job: &Job) -> StoredResult {
        job.result
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }

    /// The video's URL.
    pub fn video_url(&self) -> Option<&str> {
        self.video_url.as_deref()
    }

    /// The song's URL.
    pub fn audio_url(&self) -> Option<&str> {
        self.audio_url.as_deref()
    }

    /// The lyrics.
    pub fn lyrics(&self) -> Option<&Lyrics> {
        self.lyrics.as_ref()
    }
}

impl<'a> RunJson<'a> {
    /// The document of a job that had succeeded before this run (nothing was called).
    pub fn succeeded_earlier(result: &'a StoredResult) -> Self {
        RunJson {
            status: Status::Succeeded,
            video_url: result.video_url.as_deref(),
            audio_url: result.audio_url.as_deref(),
            lyrics: result.lyrics.as_ref(),
            error: None,
            error_class: None,
            exit_code: Exit::Success.code(),
            elapsed_ms: 0,
            suno_task_id: result.suno_task_id.as_deref(),
            render_id: result.render_id.as_deref(),
            calls: Vec::new(),
        }
    }
}

/// `encore run --json`: the run's document with its job: its id, its stored status after the
/// run, and what resolves it when it needs attention.
#[derive(Debug, Serialize)]
pub struct RunJobJson<'a> {
    /// The job's id.
    pub job_id: JobId,
    /// The job's status as stored when the run ended.
    pub job_status: JobStatus,
    /// Why the job needs attention and what resolves it (with `job_status` `needs_attention`).
    pub attention: Option<&'a Attention>,
    /// The run.
    #[serde(flatten)]
    pub run: RunJson<'a>,
}

/// A time as RFC 3339 in UTC, to the millisecond.
pub fn time(at: Millis) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// Who holds a job.
#[derive(Debug, Serialize)]
pub struct LeaseJson<'a> {
    /// The holder (`cli@<host> pid <pid>` for `encore run`).
    owner: &'a str,
    /// When its lease expires unless renewed.
    expires_at: String,
    /// Whether it had not expired when read.
    live: bool,
}

/// One job in `encore jobs list --json`.
#[derive(Debug, Serialize)]
pub struct JobJson<'a> {
    id: JobId,
    status: JobStatus,
    origin: Origin,
    /// The business's name, from the job's input.
    name: Option<&'a str>,
    created_at: String,
    updated_at: String,
    lease: Option<LeaseJson<'a>>,
    error: Option<&'a JobError>,
    attention: Option<&'a Attention>,
}

impl<'a> JobJson<'a> {
    /// The document of `job`, read at `now`.
    pub fn new(job: &'a Job, now: Millis) -> Self {
        JobJson {
            id: job.id,
            status: job.status,
            origin: job.origin,
            name: job.input.get("name").and_then(Value::as_str),
            created_at: time(job.created_at),
            updated_at: time(job.updated_at),
            lease: job.lease.as_ref().map(|l| LeaseJson {
                owner: &l.owner,
                expires_at: time(l.expires_at),
                live: l.expires_at > now,
            }),
            error: job.error.as_ref(),
            attention: job.attention.as_ref(),
        }
    }
}

/// One step in `encore jobs show --json`.
#[derive(Debug, Serialize)]
pub struct StepJson<'a> {
    name: StepName,
    state: StepState,
    attempts: u32,
    external_id: Option<&'a str>,
    started_at: Option<String>,
    finished_at: Option<String>,
    /// From its first start to its last finish.
    elapsed_ms: Option<u64>,
    error: Option<&'a str>,
    result: Option<&'a Value>,
}

impl<'a> From<&'a StepRecord> for StepJson<'a> {
    /// A step's record, without its correlation token (a credential of its callback URL).
    fn from(step: &'a StepRecord) -> Self {
        StepJson {
            name: step.name,
            state: step.state,
            attempts: step.attempts,
            external_id: step.external_id.as_deref(),
            started_at: step.started_at.map(time),
            finished_at: step.finished_at.map(time),
            elapsed_ms: step_elapsed_ms(step),
            error: step.error.as_deref(),
            result: step.result.as_ref(),
        }
    }
}

/// A step's time from its first start to its last finish, once both are stored.
pub fn step_elapsed_ms(step: &StepRecord) -> Option<u64> {
    let (start, end) = (step.started_at?, step.finished_at?);
    u64::try_from(end - start).ok()
}

/// `encore jobs show --json` and `encore jobs resolve --json`: a job with its input, result and
/// steps.
#[derive(Debug, Serialize)]
pub struct JobDetailJson<'a> {
    #[serde(flatten)]
    job: JobJson<'a>,
    input: &'a Value,
    result: Option<&'a Value>,
    cancel_requested: bool,
    /// The fencing number of the job's latest claim.
    fence: i64,
    steps: Vec<StepJson<'a>>,
}

impl<'a> JobDetailJson<'a> {
    /// The document of `detail`, read at `now`.
    pub fn new(detail: &'a JobDetail, now: Millis) -> Self {
        JobDetailJson {
            job: JobJson::new(&detail.job, now),
            input: &detail.job.input,
            result: detail.job.result.as_ref(),
            cancel_requested: detail.job.cancel_requested,
            fence: detail.job.fence,
            steps: detail.steps.iter().map(StepJson::from).collect(),
        }
    }
}

/// What the demo's simulator received and billed.
#[derive(Debug, Serialize)]
pub struct LedgerJson<'a> {
    openai_responses: u64,
    suno_tasks: u64,
    creatomate_renders: u64,
    /// Requests per route, keyed like `"POST /api/v1/generate"`.
    requests: &'a BTreeMap<String, u64>,
    total_requests: u64,
}

impl<'a> From<&'a Ledger> for LedgerJson<'a> {
    fn from(ledger: &'a Ledger) -> Self {
        LedgerJson {
            openai_responses: ledger.openai_responses,
            suno_tasks: ledger.suno_tasks,
            creatomate_renders: ledger.creatomate_renders,
            requests: &ledger.requests_per_route,
            total_requests: ledger.requests_per_route.values().sum(),
        }
    }
}

/// What every demo document ends with: the simulator's ledger and how it was set up.
#[derive(Debug, Serialize)]
pub struct DemoSim<'a> {
    /// The simulator's ledger.
    pub ledger: LedgerJson<'a>,
    /// Requests received ÷ logical calls made.
    pub amplification: f64,
    /// The fault scenario.
    pub scenario: &'a str,
    /// The simulator's seed.
    pub seed: u64,
}

/// `encore demo --json` with one pipeline: the run's document plus the simulator's.
#[derive(Debug, Serialize)]
pub struct DemoJson<'a> {
    /// The run.
    #[serde(flatten)]
    pub run: RunJson<'a>,
    /// The simulator.
    #[serde(flatten)]
    pub sim: DemoSim<'a>,
}

/// `encore demo --pipelines N --json` (N > 1): every run's document and one ledger.
#[derive(Debug, Serialize)]
pub struct DemoPipelinesJson<'a> {
    status: Status,
    pipelines: Vec<RunJson<'a>>,
    succeeded: usize,
    failed: usize,
    exit_code: u8,
    #[serde(flatten)]
    sim: DemoSim<'a>,
}

impl<'a> DemoPipelinesJson<'a> {
    /// The document for the `reports` of `pipelines` runs (a run whose task panicked has
    /// none), which ended with `exit`.
    pub fn new(reports: &'a [Report], pipelines: usize, exit: Exit, sim: DemoSim<'a>) -> Self {
        let succeeded = reports.iter().filter(|r| r.succeeded()).count();
        DemoPipelinesJson {
            status: Status::of(succeeded == pipelines),
            pipelines: reports.iter().map(RunJson::new).collect(),
            succeeded,
            failed: pipelines - succeeded,
            exit_code: exit.code(),
            sim,
        }
    }
}

/// `encore lyrics|song|video --json`: the stage's result or its error.
#[derive(Debug, Serialize)]
pub struct StageJson<'a, T> {
    status: Status,
    result: Option<&'a T>,
    error: Option<String>,
    error_class: Option<FailureClass>,
    exit_code: u8,
}

impl<'a, T> StageJson<'a, T> {
    /// The document for a stage's outcome.
    pub fn new(result: &'a Result<T, PipelineError>) -> Self {
        match result {
            Ok(value) => StageJson {
                status: Status::Succeeded,
                result: Some(value),
                error: None,
                error_class: None,
                exit_code: Exit::Success.code(),
            },
            Err(error) => StageJson {
                status: Status::Failed,
                result: None,
                error: Some(error.to_string()),
                error_class: Some(error.class()),
                exit_code: Exit::for_class(error.class()).code(),
            },
        }
    }
}

/// `encore config show --json`: the effective configuration.
#[derive(Debug, Serialize)]
pub struct ConfigShowJson<'a> {
    /// The clients' settings, endpoint policies and service protections.
    pub clients: &'a Config,
    /// The pipeline's settings.
    pub pipeline: &'a PipelineConfig,
}

/// `encore config check --json`: the configuration is valid (an invalid one is an error).
#[derive(Debug, Serialize)]
pub struct ConfigCheckJson {
    /// Always `"ok"`.
    pub status: &'static str,
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
