//! The `--json` documents (README, "--json"), one typed struct per document.

use std::collections::BTreeMap;

use encore_clients::{CallOutcome, CallRecord, Config, Endpoint, Service};
use encore_pipeline::{FailureClass, Lyrics, PipelineConfig, PipelineError, Report};
use encore_sim::Ledger;
use serde::Serialize;

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
