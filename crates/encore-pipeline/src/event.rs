//! What the pipeline reports while it runs: stages, retries, status changes, calls.

use std::fmt;
use std::time::Duration;

use encore_clients::{BreakerNotice, CallRecord, RetryNotice};
use serde::Serialize;

use crate::job::{StepName, StepState};

/// The three stages of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// OpenAI writes the lyrics.
    Lyrics,
    /// Suno makes the song.
    Song,
    /// Creatomate renders the video.
    Video,
}

impl Stage {
    /// All stages in order.
    pub const ALL: [Stage; 3] = [Stage::Lyrics, Stage::Song, Stage::Video];

    /// `lyrics`, `song` or `video`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Lyrics => "lyrics",
            Stage::Song => "song",
            Stage::Video => "video",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One thing that happened while the pipeline ran.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A stage began.
    StageStarted {
        /// Which.
        stage: Stage,
    },
    /// A stage finished successfully.
    StageFinished {
        /// Which.
        stage: Stage,
        /// How long it took.
        #[serde(with = "millis")]
        elapsed: Duration,
        /// A one-line summary (title, audio URL, video URL).
        summary: String,
    },
    /// A stage failed; the pipeline stops.
    StageFailed {
        /// Which.
        stage: Stage,
        /// The error, as displayed.
        error: String,
    },
    /// A call failed and will be retried.
    Retrying {
        /// The stage the call belongs to.
        stage: Stage,
        /// What failed and how long the wait is.
        notice: RetryNotice,
    },
    /// A job's status changed (Suno task or Creatomate render).
    StatusChanged {
        /// The stage the job belongs to.
        stage: Stage,
        /// The new status, as the service names it.
        status: String,
    },
    /// A service's circuit breaker changed state (opened: calls fail fast until the next probe;
    /// half-open: probing; closed: back to normal).
    BreakerChanged {
        /// The stage whose service it is.
        stage: Stage,
        /// What changed.
        notice: BreakerNotice,
    },
    /// A logical call (with all its attempts) ended.
    CallFinished {
        /// The call.
        record: CallRecord,
    },
    /// A step's stored state changed (each change is written to the job's journal first).
    StepChanged {
        /// Which step.
        step: StepName,
        /// Its new state.
        state: StepState,
        /// How many times it has been started.
        attempt: u32,
        /// The provider's id, once known.
        external_id: Option<String>,
        /// The error, when it failed or its outcome is unknown.
        error: Option<String>,
    },
    /// Something worth telling that is not a failure (e.g. lyrics cut to Suno's limit).
    Note {
        /// The stage.
        stage: Stage,
        /// The message.
        message: String,
    },
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}
