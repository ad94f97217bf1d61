//! A Suno task and its virtual timeline.
//!
//! Stage times, virtual seconds after creation (documented: "stream URL in ~30–40 s,
//! downloadable URL in ~2–3 min"):
//!
//! | moment | when | what changes |
//! |---|---|---|
//! | text | 15–30 s | TEXT_SUCCESS; both tracks listed, no URLs yet |
//! | first | 30–40 s | FIRST_SUCCESS; track 1 has its `streamAudioUrl` |
//! | second stream | first + 1–5 s | track 2 has its `streamAudioUrl` |
//! | first file | 120–135 s | track 1 has its `audioUrl` and `duration` |
//! | complete | first file + 30–45 s (150–180 s) | SUCCESS; track 2 has its `audioUrl` |
//!
//! `audioUrl` stays `""` until that track's file exists, so FIRST_SUCCESS never hands out a
//! downloadable URL before the real service would.

use std::time::SystemTime;

use rand::Rng;
use tokio::time::Instant;

use super::types::{CallbackTrack, CreateTime, RecordInfo, TaskResponse, Track};
use crate::outcome::SunoOutcome;
use crate::timefmt;

/// Virtual-second offsets of the stages of one task.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stages {
    pub(crate) text_s: f64,
    /// FIRST_SUCCESS: the first track's stream is ready.
    pub(crate) first_s: f64,
    /// When each track's stream URL appears.
    pub(crate) streams_s: [f64; 2],
    /// When each track's downloadable file appears.
    pub(crate) files_s: [f64; 2],
    /// SUCCESS: every file is ready (`files_s[1]`).
    pub(crate) complete_s: f64,
}

impl Stages {
    /// Upstream-like timings (see the module docs).
    pub(crate) fn draw(rng: &mut impl Rng) -> Self {
        let text_s = rng.random_range(15.0..30.0);
        let first_s = rng.random_range(30.0..40.0f64).max(text_s + 0.5);
        let second_stream_s = first_s + rng.random_range(1.0..5.0);
        let first_file_s = rng.random_range(120.0..135.0);
        let complete_s = first_file_s + rng.random_range(30.0..45.0);
        Stages {
            text_s,
            first_s,
            streams_s: [first_s, second_stream_s],
            files_s: [first_file_s, complete_s],
            complete_s,
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
    /// [`SimConfig::suno_callback_exception_recovers`](crate::SimConfig).
    pub(crate) callback_exception_recovers: bool,
    pub(crate) stages: Stages,
    pub(crate) tracks: Vec<TrackSeed>,
    pub(crate) base_url: String,
    pub(crate) create_time_as_number: bool,
}

/// A terminal failure: status, `errorCode`, `errorMessage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) status: &'static str,
    pub(crate) code: Option<i64>,
    pub(crate) message: &'static str,
}

/// Where a task is on its timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Pending,
    Text,
    First,
    Complete,
    Failed(Failure),
    CallbackException,
}

impl Phase {
    pub(crate) fn status(self) -> &'static str {
        match self {
            Phase::Pending => "PENDING",
            Phase::Text => "TEXT_SUCCESS",
            Phase::First => "FIRST_SUCCESS",
            Phase::Complete => "SUCCESS",
            Phase::Failed(f) => f.status,
            Phase::CallbackException => "CALLBACK_EXCEPTION",
        }
    }

    /// Whether `record-info` lists the tracks.
    fn lists_tracks(self) -> bool {
        matches!(
            self,
            Phase::Text | Phase::First | Phase::Complete | Phase::CallbackException
        )
    }
}

pub(crate) const CREATE_FAILED: Failure = Failure {
    status: "CREATE_TASK_FAILED",
    code: Some(500),
    message: "Failed to create the task, please try again",
};
pub(crate) const AUDIO_FAILED: Failure = Failure {
    status: "GENERATE_AUDIO_FAILED",
    code: Some(501),
    message: "Audio generation failed",
};
pub(crate) const SENSITIVE: Failure = Failure {
    status: "SENSITIVE_WORD_ERROR",
    code: Some(400),
    message: "The lyrics contain sensitive words; please modify them and try again",
};
/// The older docs' `FAILED` status: a message, no code.
pub(crate) const OLD_FAILED: Failure = Failure {
    status: "FAILED",
    code: None,
    message: "Music generation failed",
};

/// `errorMessage` of a CALLBACK_EXCEPTION task.
const CALLBACK_EXCEPTION_MESSAGE: &str = "Callback exception: the callback could not be delivered";

/// Virtual seconds until a CREATE_TASK_FAILED task reports it.
const CREATE_FAILED_S: f64 = 2.0;

impl Task {
    /// Whether the outcome ever gives the tracks audio.
    fn makes_audio(&self) -> bool {
        matches!(
            self.outcome,
            SunoOutcome::Success
                | SunoOutcome::SkipStages
                | SunoOutcome::CallbackException
                | SunoOutcome::CallbackExceptionBeforeAudio
        )
    }

    /// The phase after `elapsed` virtual seconds.
    pub(crate) fn phase(&self, elapsed: f64) -> Phase {
        let s = self.stages;
        let reached = |t: f64| elapsed >= t;
        let running = || {
            if reached(s.first_s) {
                Phase::First
            } else if reached(s.text_s) {
                Phase::Text
            } else {
                Phase::Pending
            }
        };
        let before_first = || {
            if reached(s.text_s) {
                Phase::Text
            } else {
                Phase::Pending
            }
        };
        match self.outcome {
            SunoOutcome::Success => {
                if reached(s.complete_s) {
                    Phase::Complete
                } else {
                    running()
                }
            }
            SunoOutcome::CallbackException => {
                if reached(s.complete_s) {
                    Phase::CallbackException
                } else {
                    running()
                }
            }
            SunoOutcome::CallbackExceptionBeforeAudio => {
                if self.callback_exception_recovers && reached(s.complete_s) {
                    Phase::Complete
                } else if reached(s.first_s) {
                    Phase::CallbackException
                } else {
                    before_first()
                }
            }
            SunoOutcome::SkipStages => {
                if reached(s.complete_s) {
                    Phase::Complete
                } else {
                    Phase::Pending
                }
            }
            SunoOutcome::CreateTaskFailed => {
                if reached(CREATE_FAILED_S) {
                    Phase::Failed(CREATE_FAILED)
                } else {
                    Phase::Pending
                }
            }
            SunoOutcome::SensitiveWordError => {
                if reached(s.text_s) {
                    Phase::Failed(SENSITIVE)
                } else {
                    Phase::Pending
                }
            }
            SunoOutcome::GenerateAudioFailed => {
                if reached(s.first_s) {
                    Phase::Failed(AUDIO_FAILED)
                } else {
                    before_first()
                }
            }
            SunoOutcome::Failed => {
                if reached(s.first_s) {
                    Phase::Failed(OLD_FAILED)
                } else {
                    before_first()
                }
            }
        }
    }

    /// Virtual seconds after creation when every track's file is ready (`None` if never).
    pub(crate) fn ready_after_s(&self) -> Option<f64> {
        self.makes_audio().then_some(self.stages.complete_s)
    }

    /// The status the task ends in.
    pub(crate) fn final_status(&self) -> &'static str {
        self.phase(f64::INFINITY).status()
    }

    /// Whether track `index` has its downloadable file after `elapsed` virtual seconds.
    pub(crate) fn file_ready(&self, index: usize, elapsed: f64) -> bool {
        self.makes_audio()
            && self.phase(elapsed).lists_tracks()
            && self
                .stages
                .files_s
                .get(index)
                .is_some_and(|t| elapsed >= *t)
    }

    pub(crate) fn stream_ready(&self, index: usize, elapsed: f64) -> bool {
        self.makes_audio()
            && self.phase(elapsed).lists_tracks()
            && self
                .stages
                .streams_s
                .get(index)
                .is_some_and(|t| elapsed >= *t)
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

    /// `sunoData` after `elapsed` virtual seconds: tracks appear at TEXT_SUCCESS, each
    /// track's stream URL and file (with its duration) at their own times.
    pub(crate) fn tracks(&self, elapsed: f64) -> Option<Vec<Track>> {
        if !self.phase(elapsed).lists_tracks() {
            return None;
        }
        Some(
            self.tracks
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let done = self.file_ready(i, elapsed);
                    Track {
                        id: t.id.clone(),
                        audio_url: if done {
                            self.audio_url(&t.id)
                        } else {
                            String::new()
                        },
                        stream_audio_url: if self.stream_ready(i, elapsed) {
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

    /// The `record-info` data after `elapsed` virtual seconds.
    pub(crate) fn record_info(&self, elapsed: f64) -> RecordInfo {
        let phase = self.phase(elapsed);
        let (error_code, error_message) = match phase {
            Phase::Failed(f) => (f.code, Some(f.message.to_owned())),
            Phase::CallbackException => (None, Some(CALLBACK_EXCEPTION_MESSAGE.to_owned())),
            _ => (None, None),
        };
        RecordInfo {
            task_id: self.id.clone(),
            parent_music_id: String::new(),
            param: self.param.clone(),
            response: self.tracks(elapsed).map(|suno_data| TaskResponse {
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

    /// Snake_case callback tracks after `elapsed` virtual seconds.
    pub(crate) fn callback_tracks(&self, elapsed: f64) -> Vec<CallbackTrack> {
        self.tracks(elapsed)
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

    /// The callbacks of this task: (stage, virtual seconds after creation, code, msg, data).
    pub(crate) fn callback_plan(&self) -> Vec<StageCallback> {
        let s = self.stages;
        let text = StageCallback {
            stage: "text",
            at_s: s.text_s,
            code: 200,
            msg: "Text generation completed successfully.",
            tracks: Some(Vec::new()),
        };
        let first = StageCallback {
            stage: "first",
            at_s: s.first_s,
            code: 200,
            msg: "First track generated successfully.",
            tracks: Some(self.callback_tracks(s.first_s)),
        };
        let complete = StageCallback {
            stage: "complete",
            at_s: s.complete_s,
            code: 200,
            msg: "All generated successfully.",
            tracks: Some(self.callback_tracks(s.complete_s)),
        };
        let error = |at_s, code, msg| StageCallback {
            stage: "error",
            at_s,
            code,
            msg,
            tracks: None,
        };
        match self.outcome {
            SunoOutcome::Success
            | SunoOutcome::CallbackException
            | SunoOutcome::CallbackExceptionBeforeAudio => vec![text, first, complete],
            SunoOutcome::SkipStages => vec![complete],
            SunoOutcome::GenerateAudioFailed => {
                vec![text, error(s.first_s, 501, "Audio generation failed")]
            }
            SunoOutcome::Failed => vec![text, error(s.first_s, 400, "Music generation failed")],
            SunoOutcome::SensitiveWordError => {
                vec![error(s.text_s, 400, "The lyrics contain sensitive words")]
            }
            SunoOutcome::CreateTaskFailed => {
                vec![error(CREATE_FAILED_S, 500, "Failed to create the task")]
            }
        }
    }
}

/// One planned callback of a task.
#[derive(Clone, Debug)]
pub(crate) struct StageCallback {
    pub(crate) stage: &'static str,
    pub(crate) at_s: f64,
    pub(crate) code: u16,
    pub(crate) msg: &'static str,
    pub(crate) tracks: Option<Vec<CallbackTrack>>,
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn task(outcome: SunoOutcome, recovers: bool) -> Task {
        let mut rng = StdRng::seed_from_u64(3);
        Task {
            id: "t".into(),
            created: Instant::now(),
            created_wall: SystemTime::UNIX_EPOCH,
            param: "{}".into(),
            model_name: "chirp-v4-5".into(),
            instrumental: false,
            outcome,
            callback_exception_recovers: recovers,
            stages: Stages::draw(&mut rng),
            tracks: (0..2)
                .map(|i| TrackSeed {
                    id: format!("a{i}"),
                    prompt: String::new(),
                    title: String::new(),
                    tags: String::new(),
                    duration: 150.0,
                })
                .collect(),
            base_url: "http://x".into(),
            create_time_as_number: false,
        }
    }

    #[tokio::test]
    async fn stage_times_follow_the_docs() {
        for seed in 0..200 {
            let s = Stages::draw(&mut StdRng::seed_from_u64(seed));
            assert!((15.0..30.0).contains(&s.text_s));
            assert!(s.text_s < s.first_s && (30.0..40.0).contains(&s.first_s));
            assert!(s.streams_s[1] > s.first_s && s.streams_s[1] < s.first_s + 5.0);
            assert!((120.0..135.0).contains(&s.files_s[0]));
            assert!(s.files_s[1] - s.files_s[0] >= 30.0);
            assert!((150.0..180.0).contains(&s.complete_s));
        }
    }

    #[tokio::test]
    async fn first_success_streams_before_files() {
        let t = task(SunoOutcome::Success, false);
        let s = t.stages;
        let at_first = t.tracks(s.first_s).unwrap();
        assert_eq!(t.phase(s.first_s), Phase::First);
        assert!(!at_first[0].stream_audio_url.is_empty());
        assert!(
            at_first
                .iter()
                .all(|t| t.audio_url.is_empty() && t.duration.is_none())
        );
        let mid = t.tracks(s.files_s[0]).unwrap();
        assert_eq!(t.phase(s.files_s[0]), Phase::First);
        assert!(!mid[0].audio_url.is_empty() && mid[1].audio_url.is_empty());
        assert_eq!(t.phase(s.complete_s), Phase::Complete);
        assert_eq!(t.ready_after_s(), Some(s.complete_s));
        assert_eq!(t.final_status(), "SUCCESS");
    }

    #[tokio::test]
    async fn callback_exception_before_audio_sticks_or_recovers() {
        let t = task(SunoOutcome::CallbackExceptionBeforeAudio, false);
        let s = t.stages;
        assert_eq!(t.phase(s.text_s), Phase::Text);
        assert_eq!(t.phase(s.first_s), Phase::CallbackException);
        assert!(
            t.tracks(s.first_s)
                .unwrap()
                .iter()
                .all(|t| t.audio_url.is_empty())
        );
        assert_eq!(t.phase(s.complete_s + 100.0), Phase::CallbackException);
        assert!(
            t.tracks(s.complete_s)
                .unwrap()
                .iter()
                .all(|t| !t.audio_url.is_empty())
        );
        assert_eq!(t.final_status(), "CALLBACK_EXCEPTION");
        let r = task(SunoOutcome::CallbackExceptionBeforeAudio, true);
        assert_eq!(r.phase(s.first_s), Phase::CallbackException);
        assert_eq!(r.phase(s.complete_s), Phase::Complete);
        assert_eq!(r.final_status(), "SUCCESS");
    }

    #[tokio::test]
    async fn failures_never_have_audio() {
        for (outcome, status) in [
            (SunoOutcome::Failed, "FAILED"),
            (SunoOutcome::GenerateAudioFailed, "GENERATE_AUDIO_FAILED"),
            (SunoOutcome::SensitiveWordError, "SENSITIVE_WORD_ERROR"),
            (SunoOutcome::CreateTaskFailed, "CREATE_TASK_FAILED"),
        ] {
            let t = task(outcome, false);
            assert_eq!(t.final_status(), status);
            assert_eq!(t.ready_after_s(), None);
            assert!(!t.file_ready(0, f64::INFINITY));
            let plan = t.callback_plan();
            assert_eq!(plan.last().unwrap().stage, "error");
        }
        let old = task(SunoOutcome::Failed, false).record_info(f64::INFINITY);
        assert_eq!(old.error_code, None);
        assert_eq!(
            old.error_message.as_deref(),
            Some("Music generation failed")
        );
    }
}
