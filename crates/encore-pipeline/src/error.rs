//! Why a pipeline run failed, and what kind of failure it is (for exit codes).

use std::time::Duration;

use encore_resilience::fmt_duration;

use crate::job::{JournalError, StepName};
use crate::{InputError, PipelineConfigError, Stage};

/// How a failure should be handled by whoever ran the pipeline (the CLI maps these to exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The run was stopped on request (Ctrl-C, shutdown) at a safe point; its steps are stored
    /// and it can be resumed.
    Interrupted,
}

impl FailureClass {
    /// `permanent`, `gave_up`, `bad_input`, `outcome_unknown` or `interrupted` (as serialized).
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureClass::Permanent => "permanent",
            FailureClass::GaveUp => "gave_up",
            FailureClass::BadInput => "bad_input",
            FailureClass::OutcomeUnknown => "outcome_unknown",
            FailureClass::Interrupted => "interrupted",
        }
    }
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
    /// The template lacks elements the configuration names: Creatomate would silently ignore
    /// their modifications and render a paid video without the song or the captions.
    #[error("video: template {template_id} has no element named {}: set pipeline.audio_element, pipeline.title_element or pipeline.captions_element to one of: {}", missing.join(", "), if found.is_empty() { "(none)".to_owned() } else { found.join(", ") })]
    TemplateElements {
        /// The template.
        template_id: String,
        /// The configured names it lacks.
        missing: Vec<String>,
        /// The element names it has.
        found: Vec<String>,
    },
    /// Suno's remaining credits do not cover one song.
    #[error(
        "song: Suno has {have} credits left, one song needs {need}: top up before running (nothing was paid for)"
    )]
    InsufficientCredits {
        /// What the account has.
        have: u64,
        /// What one song needs (`pipeline.song_credits`).
        need: u64,
    },
    /// A billed step's request may have created a job at the provider, but its answer was lost
    /// (now or in an earlier run), and no callback resolved it.
    #[error(
        "{step}: the {what} request may have created a {created} that is paid for, but its answer was lost; check the {service} dashboard before running again"
    )]
    OutcomeUnknown {
        /// The billed step.
        step: StepName,
        /// `Suno generate` or `Creatomate render`.
        what: &'static str,
        /// `task` or `render`.
        created: &'static str,
        /// `Suno` or `Creatomate`.
        service: &'static str,
    },
    /// The run was asked to stop, at a safe point before `step`.
    #[error("interrupted before {step}: every finished step is stored")]
    Interrupted {
        /// The step that did not run (or whose wait was cut short).
        step: StepName,
    },
    /// A step's record could not be stored; the run stops rather than go on unrecorded.
    #[error("{step}: could not store the step{}: {source}", external_id.as_deref().map(|id| format!(" (the provider's id is {id}: adopt it to resume)")).unwrap_or_default())]
    Journal {
        /// The step.
        step: StepName,
        /// The external id the step had just received, when its record is what was lost.
        external_id: Option<String>,
        /// Why.
        #[source]
        source: JournalError,
    },
    /// A task or render this job created still answered "not found" when the grace for a read
    /// that has not caught up (`pipeline.not_found_grace`) had passed. It was created (its id
    /// came back) and may well be paid for, so running again could pay twice.
    #[error("{stage}: {what} {id} was created but {service} still answers \"not found\" for it after {}: it may exist and be paid for; check the {service} dashboard before running again", fmt_duration(*grace))]
    NotVisible {
        /// The stage.
        stage: Stage,
        /// "Suno task" or "render".
        what: &'static str,
        /// The job's id.
        id: String,
        /// `Suno` or `Creatomate`.
        service: &'static str,
        /// How long "not found" was read as "not visible yet".
        grace: Duration,
        /// The last "not found" answer.
        #[source]
        source: encore_clients::Error,
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
            PipelineError::SongFailed { .. }
            | PipelineError::NoTrack { .. }
            | PipelineError::InsufficientCredits { .. } => Some(Stage::Song),
            PipelineError::RenderFailed { .. } | PipelineError::TemplateElements { .. } => {
                Some(Stage::Video)
            }
            PipelineError::StillPending { stage, .. } | PipelineError::NotVisible { stage, .. } => {
                Some(*stage)
            }
            PipelineError::OutcomeUnknown { step, .. }
            | PipelineError::Interrupted { step }
            | PipelineError::Journal { step, .. } => Some(step.stage()),
        }
    }

    /// A stable, machine-readable name for the failure (`song.insufficient_credits`,
    /// `video.render_failed`, `call.gave_up`, …), for API answers and stored job errors.
    pub fn code(&self) -> String {
        match self {
            PipelineError::Input(_) => "input.invalid".into(),
            PipelineError::Config(_) => "config.invalid".into(),
            PipelineError::Call(e) => {
                let endpoint = e.endpoint().map_or("call", |e| e.name());
                let what = match self.class() {
                    FailureClass::OutcomeUnknown => "outcome_unknown",
                    FailureClass::BadInput => "refused",
                    FailureClass::Permanent => "permanent",
                    FailureClass::GaveUp | FailureClass::Interrupted => "gave_up",
                };
                format!("{endpoint}.{what}")
            }
            PipelineError::SongFailed { .. } => "song.failed".into(),
            PipelineError::NoTrack { .. } => "song.no_track".into(),
            PipelineError::RenderFailed { .. } => "video.render_failed".into(),
            PipelineError::TemplateElements { .. } => "video.template_elements".into(),
            PipelineError::InsufficientCredits { .. } => "song.insufficient_credits".into(),
            PipelineError::StillPending { stage, .. } => format!("{stage}.still_pending"),
            PipelineError::NotVisible { stage, .. } => format!("{stage}.not_visible"),
            PipelineError::OutcomeUnknown { step, .. } => format!("{step}.outcome_unknown"),
            PipelineError::Interrupted { .. } => "interrupted".into(),
            PipelineError::Journal { .. } => "journal.unavailable".into(),
        }
    }

    /// What kind of failure this is.
    pub fn class(&self) -> FailureClass {
        match self {
            PipelineError::Input(_)
            | PipelineError::Config(_)
            | PipelineError::TemplateElements { .. } => FailureClass::BadInput,
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
            | PipelineError::RenderFailed { .. }
            | PipelineError::InsufficientCredits { .. } => FailureClass::Permanent,
            // A paid job that may exist without our being able to see it: a lost answer, a job
            // the provider still does not show after the grace, or a step whose id was received
            // but could not be stored. Running again blindly could pay twice.
            PipelineError::OutcomeUnknown { .. }
            | PipelineError::NotVisible { .. }
            | PipelineError::Journal {
                external_id: Some(_),
                ..
            } => FailureClass::OutcomeUnknown,
            PipelineError::StillPending { .. } | PipelineError::Journal { .. } => {
                FailureClass::GaveUp
            }
            PipelineError::Interrupted { .. } => FailureClass::Interrupted,
        }
    }
}
