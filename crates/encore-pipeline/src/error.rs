//! Why a pipeline run failed, and what kind of failure it is (for exit codes).

use std::time::Duration;

use encore_resilience::fmt_duration;

use crate::{InputError, PipelineConfigError, Stage};

/// How a failure should be handled by whoever ran the pipeline (the CLI maps these to exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Something is wrong with the request, account or job itself; running again will not help.
    Permanent,
    /// Transient faults outlasted the retries or a deadline; running again later may work.
    GaveUp,
    /// The input or configuration was refused before any call was made.
    BadInput,
    /// A billed call may have run but its answer was lost; check before running again, or it may
    /// be paid for twice.
    OutcomeUnknown,
}

/// A failed pipeline run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The business description was refused.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A pipeline setting was refused.
    #[error(transparent)]
    Config(#[from] PipelineConfigError),
    /// A call to one of the services failed (after its retries, where it had any).
    #[error(transparent)]
    Call(#[from] encore_clients::Error),
    /// The Suno task ended in a failure status.
    #[error("song: Suno task {task_id} ended in {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    SongFailed {
        /// The task.
        task_id: String,
        /// The terminal status.
        status: String,
        /// Suno's `errorMessage`, if any.
        message: Option<String>,
    },
    /// The Suno task succeeded without a track that has an audio URL.
    #[error("song: Suno task {task_id} finished as {status} without a playable track")]
    NoTrack {
        /// The task.
        task_id: String,
        /// The status it finished in.
        status: String,
    },
    /// The Creatomate render failed.
    #[error("video: render {render_id} failed: {message}")]
    RenderFailed {
        /// The render.
        render_id: String,
        /// Creatomate's `error_message`.
        message: String,
    },
    /// A job was still running when its polling deadline passed.
    #[error("{stage}: {what} {id} still {status} after the {} deadline ({checks} status checks)", fmt_duration(*deadline))]
    StillPending {
        /// The stage.
        stage: Stage,
        /// "Suno task" or "render".
        what: &'static str,
        /// The job's id.
        id: String,
        /// Its last status.
        status: String,
        /// The polling deadline.
        deadline: Duration,
        /// How many status checks were made.
        checks: u32,
    },
}

impl PipelineError {
    /// The stage that failed, when the failure belongs to one.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            PipelineError::Input(_) | PipelineError::Config(_) => None,
            PipelineError::Call(e) => e.service().map(|s| match s {
                encore_clients::Service::OpenAi => Stage::Lyrics,
                encore_clients::Service::Suno => Stage::Song,
                encore_clients::Service::Creatomate => Stage::Video,
            }),
            PipelineError::SongFailed { .. } | PipelineError::NoTrack { .. } => Some(Stage::Song),
            PipelineError::RenderFailed { .. } => Some(Stage::Video),
            PipelineError::StillPending { stage, .. } => Some(*stage),
        }
    }

    /// What kind of failure this is.
    pub fn class(&self) -> FailureClass {
        match self {
            PipelineError::Input(_) | PipelineError::Config(_) => FailureClass::BadInput,
            PipelineError::Call(e) => {
                if e.may_have_run() {
                    FailureClass::OutcomeUnknown
                } else if matches!(
                    e.kind(),
                    encore_clients::ErrorKind::MissingKey | encore_clients::ErrorKind::Config
                ) {
                    FailureClass::BadInput
                } else if e.is_permanent() {
                    FailureClass::Permanent
                } else {
                    FailureClass::GaveUp
                }
            }
            PipelineError::SongFailed { .. }
            | PipelineError::NoTrack { .. }
            | PipelineError::RenderFailed { .. } => FailureClass::Permanent,
            PipelineError::StillPending { .. } => FailureClass::GaveUp,
        }
    }
}
