//! A Suno task and its virtual timeline.

use std::time::SystemTime;

use rand::Rng;
use tokio::time::Instant;

use super::types::{CallbackTrack, CreateTime, RecordInfo, TaskResponse, Track};
use crate::scenario::SunoOutcome;
use crate::timefmt;

/// Virtual-second offsets of the stages of one task.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stages {
    pub(crate) text_s: f64,
    pub(crate) first_s: f64,
    pub(crate) complete_s: f64,
}

impl Stages {
    /// Upstream-like timings: text after 15–30 s, first track ~40 s, both ~150 s.
    pub(crate) fn draw(rng: &mut impl Rng) -> Self {
        Stages {
            text_s: rng.random_range(15.0..30.0),
            first_s: rng.random_range(35.0..45.0),
            complete_s: rng.random_range(140.0..170.0),
        }
    }
}

/// Seed data of one track.
#[derive(Clone, Debug)]
pub(crate) struct TrackSeed {
    pub(crate) id: String,
    pub(crate) prompt: String,
    pub(crate) title: String,
    pub(crate) tags: String,
    pub(crate) duration: f64,
}

/// A created task.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) id: String,
    pub(crate) created: Instant,
    pub(crate) created_wall: SystemTime,
    pub(crate) param: String,
    pub(crate) model_name: String,
    pub(crate) instrumental: bool,
    pub(crate) outcome: SunoOutcome,
    pub(crate) stages: Stages,
    pub(crate) tracks: Vec<TrackSeed>,
    pub(crate) base_url: String,
    pub(crate) create_time_as_number: bool,
}

/// Where a task is on its timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Pending,
    Text,
    First,
    Complete,
    Failed(&'static str, i64, &'static str),
    CallbackException,
}

impl Phase {
    pub(crate) fn status(self) -> &'static str {
        match self {
            Phase::Pending => "PENDING",
            Phase::Text => "TEXT_SUCCESS",
            Phase::First => "FIRST_SUCCESS",
            Phase::Complete => "SUCCESS",
            Phase::Failed(status, ..) => status,
            Phase::CallbackException => "CALLBACK_EXCEPTION",
        }
    }

    /// How many tracks have downloadable audio.
    pub(crate) fn ready_tracks(self) -> usize {
        match self {
            Phase::First => 1,
            Phase::Complete | Phase::CallbackException => 2,
            _ => 0,
        }
    }
}

/// Failure details: (status, errorCode, errorMessage).
pub(crate) const CREATE_FAILED: Phase = Phase::Failed(
    "CREATE_TASK_FAILED",
    500,
    "Failed to create the task, please try again",
);
pub(crate) const AUDIO_FAILED: Phase =
    Phase::Failed("GENERATE_AUDIO_FAILED", 501, "Audio generation failed");
pub(crate) const SENSITIVE: Phase = Phase::Failed(
    "SENSITIVE_WORD_ERROR",
    400,
    "The lyrics contain sensitive words; please modify them and try again",
);

impl Task {
    /// The phase after `elapsed_virtual` virtual seconds.
    pub(crate) fn phase(&self, elapsed_virtual: f64) -> Phase {
        let s = self.stages;
        let reached = |t: f64| elapsed_virtual >= t;
        match self.outcome {
            SunoOutcome::CreateTaskFailed => {
                if reached(2.0) {
                    CREATE_FAILED
                } else {
                    Phase::Pending
                }
            }
            SunoOutcome::SkipStages => {
                if reached(s.complete_s) {
                    Phase::Complete
                } else {
                    Phase::Pending
                }
            }
            SunoOutcome::SensitiveWordError => {
                if reached(s.text_s) {
                    SENSITIVE
                } else {
                    Phase::Pending
                }
            }
            SunoOutcome::GenerateAudioFailed => {
                if reached(s.first_s) {
                    AUDIO_FAILED
                } else if reached(s.text_s) {
                    Phase::Text
                } else {
                    Phase::Pending
                }
            }
            SunoOutcome::Success | SunoOutcome::CallbackException => {
                if reached(s.complete_s) {
                    if self.outcome == SunoOutcome::CallbackException {
                        Phase::CallbackException
                    } else {
                        Phase::Complete
                    }
                } else if reached(s.first_s) {
                    Phase::First
                } else if reached(s.text_s) {
                    Phase::Text
                } else {
                    Phase::Pending
                }
            }
        }
    }

    pub(crate) fn audio_url(&self, id: &str) -> String {
        format!("{}/__sim/files/audio/{id}.mp3", self.base_url)
    }

    pub(crate) fn stream_url(&self, id: &str) -> String {
        format!("{}/__sim/files/stream/{id}.mp3", self.base_url)
    }

    pub(crate) fn image_url(&self, id: &str) -> String {
        format!("{}/__sim/files/images/{id}.jpeg", self.base_url)
    }

    fn create_time(&self) -> CreateTime {
        if self.create_time_as_number {
            CreateTime::Millis(timefmt::unix_millis(self.created_wall))
        } else {
            CreateTime::Text(timefmt::suno_time(self.created_wall))
        }
    }

    /// `sunoData` for a phase (tracks appear at TEXT_SUCCESS; stream URLs at
    /// FIRST_SUCCESS; audio URLs and durations when each track is done).
    pub(crate) fn tracks(&self, phase: Phase) -> Option<Vec<Track>> {
        let visible = matches!(
            phase,
            Phase::Text | Phase::First | Phase::Complete | Phase::CallbackException
        );
        if !visible {
            return None;
        }
        let ready = phase.ready_tracks();
        let streaming = ready > 0;
        Some(
            self.tracks
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let done = i < ready;
                    Track {
                        id: t.id.clone(),
                        audio_url: if done {
                            self.audio_url(&t.id)
                        } else {
                            String::new()
                        },
                        stream_audio_url: if streaming {
                            self.stream_url(&t.id)
                        } else {
                            String::new()
                        },
                        image_url: self.image_url(&t.id),
                        prompt: t.prompt.clone(),
                        model_name: self.model_name.clone(),
                        title: t.title.clone(),
                        tags: t.tags.clone(),
                        create_time: Some(self.create_time()),
                        duration: done.then_some(t.duration),
                        extra: serde_json::Map::new(),
                    }
                })
                .collect(),
        )
    }

    /// The `record-info` data at a phase.
    pub(crate) fn record_info(&self, phase: Phase) -> RecordInfo {
        let (error_code, error_message) = match phase {
            Phase::Failed(_, code, msg) => (Some(code), Some(msg.to_owned())),
            Phase::CallbackException => (
                None,
                Some("Callback delivery failed; the tracks were generated".to_owned()),
            ),
            _ => (None, None),
        };
        RecordInfo {
            task_id: self.id.clone(),
            parent_music_id: String::new(),
            param: self.param.clone(),
            response: self.tracks(phase).map(|suno_data| TaskResponse {
                task_id: self.id.clone(),
                suno_data,
            }),
            status: phase.status().to_owned(),
            kind: Some("GENERATE".to_owned()),
            operation_type: Some("generate".to_owned()),
            error_code,
            error_message,
            extra: serde_json::Map::new(),
        }
    }

    /// Snake_case callback tracks for a phase.
    pub(crate) fn callback_tracks(&self, phase: Phase) -> Vec<CallbackTrack> {
        self.tracks(phase)
            .unwrap_or_default()
            .into_iter()
            .map(|t| CallbackTrack {
                source_audio_url: Some(t.audio_url.clone()),
                source_stream_audio_url: Some(t.stream_audio_url.clone()),
                source_image_url: Some(t.image_url.clone()),
                audio_url: Some(t.audio_url),
                stream_audio_url: Some(t.stream_audio_url),
                image_url: Some(t.image_url),
                prompt: Some(t.prompt),
                model_name: Some(t.model_name),
                title: Some(t.title),
                tags: Some(t.tags),
                create_time: t.create_time,
                duration: t.duration,
                id: t.id,
                extra: serde_json::Map::new(),
            })
            .collect()
    }
}
