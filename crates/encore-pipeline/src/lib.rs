//! The lyric → song → video pipeline: a business description in, a music video out.
//!
//! 1. **Lyrics** — OpenAI structured output ([`Lyrics`]: title, lyrics with `[Verse]`/`[Chorus]`
//!    sections, style tags), fitted to Suno's limits for the chosen model.
//! 2. **Song** — one Suno task in custom mode, polled with [`encore_resilience::poll_until`] until
//!    `SUCCESS` (or, if configured, `FIRST_SUCCESS` once a track's downloadable file exists, not
//!    just its stream; `CALLBACK_EXCEPTION` only once a track has audio, since it can come
//!    first), then timestamped lyrics for [`captions`]. A task or render that answers "not
//!    found" right after its creation is "not visible yet" for `not_found_grace`.
//! 3. **Video** — one Creatomate render of the configured template with the audio, title and
//!    captions timed word by word ([`transcript`]), polled until it succeeds or fails.
//!
//! Every call goes through the clients' resilience policies; billed submissions are never
//! replayed after an ambiguous failure. Progress is reported as [`Event`]s.
#![warn(missing_docs)]

pub mod captions;
mod config;
mod context;
mod error;
mod event;
mod input;
pub mod job;
pub mod lyrics;
mod pipeline;
mod steps;
mod template;
pub mod transcript;
mod visibility;

pub use config::{PipelineConfig, PipelineConfigError};
pub use context::{CallbackAddress, CallbackFuture, Callbacks, JobContext, StopSignal};
pub use error::{FailureClass, PipelineError};
pub use event::{Event, Stage};
pub use input::{BusinessInput, InputError, Language};
pub use job::{JobStatus, Journal, JournalError, MemoryJournal, StepName, StepRecord, StepState};
pub use lyrics::Lyrics;
pub use pipeline::{Keys, Pipeline, Report, Song, Video, VideoInput};
pub use steps::render_metadata;
pub use template::TemplateChecks;
