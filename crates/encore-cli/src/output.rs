//! The `--json` document: one JSON object on stdout, nothing else there.

use encore_clients::CallRecord;
use encore_pipeline::{Lyrics, Report};
use serde::Serialize;
use serde_json::Value;

use crate::exit;

/// One call in the `calls` array.
#[derive(Debug, Serialize)]
pub struct CallJson {
    service: String,
    endpoint: String,
    attempts: u32,
    outcome: &'static str,
    elapsed_ms: u64,
    error: Option<String>,
}

impl From<&CallRecord> for CallJson {
    fn from(c: &CallRecord) -> Self {
        Self {
            service: c.service.to_string(),
            endpoint: c.endpoint.name().to_owned(),
            attempts: c.attempts,
            outcome: if c.error.is_none() { "ok" } else { "failed" },
            elapsed_ms: c.elapsed.as_millis() as u64,
            error: c.error.clone(),
        }
    }
}

/// The document for one pipeline run.
#[derive(Debug, Serialize)]
pub struct RunJson {
    pub status: &'static str,
    pub video_url: Option<String>,
    pub audio_url: Option<String>,
    pub lyrics: Option<Lyrics>,
    pub error: Option<String>,
    pub error_class: Option<encore_pipeline::FailureClass>,
    pub exit_code: u8,
    pub elapsed_ms: u64,
    pub suno_task_id: Option<String>,
    pub render_id: Option<String>,
    pub calls: Vec<CallJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<Value>,
}

impl RunJson {
    /// The document for `report`.
    pub fn new(report: &Report) -> Self {
        let code = report_code(report);
        Self {
            status: if report.succeeded() {
                "succeeded"
            } else {
                "failed"
            },
            video_url: report.video.as_ref().map(|v| v.url.clone()),
            audio_url: report.song.as_ref().map(|s| s.audio_url.clone()),
            lyrics: report.lyrics.clone(),
            error: report.error.as_ref().map(ToString::to_string),
            error_class: report
                .error
                .as_ref()
                .map(encore_pipeline::PipelineError::class),
            exit_code: code,
            elapsed_ms: report.elapsed.as_millis() as u64,
            suno_task_id: report.song.as_ref().map(|s| s.task_id.clone()),
            render_id: report.video.as_ref().map(|v| v.render_id.clone()),
            calls: report.calls.iter().map(CallJson::from).collect(),
            ledger: None,
        }
    }
}

/// The exit code a report earns.
pub fn report_code(report: &Report) -> u8 {
    match &report.error {
        None if report.video.is_some() => exit::SUCCESS,
        None => exit::PERMANENT,
        Some(e) => exit::for_class(e.class()),
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: could not write JSON: {e}"),
    }
}
