//! Suno (sunoapi.org) wire types. Requests and `record-info` use camelCase; callback
//! payloads use snake_case (plus `createTime`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `{code, msg, data}` envelope of every answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// 200 on success, else an error code (HTTP numbers with Suno meanings).
    pub code: u16,
    /// `"success"` or an error message.
    pub msg: String,
    /// Payload; `null` on errors (a missing `data` reads as `None` too).
    pub data: Option<T>,
}

/// `POST /api/v1/generate` body. Every field is optional here so the simulator can report
/// missing ones itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest {
    /// Custom mode (style/title given, `prompt` = lyrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_mode: Option<bool>,
    /// No vocals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instrumental: Option<bool>,
    /// `V4`, `V4_5`, `V4_5PLUS`, `V4_5ALL`, `V5`, `V5_5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Required by the docs even when polling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_back_url: Option<String>,
    /// Simple mode: the idea; custom mode: the lyrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Style text (custom mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// Title (custom mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Styles to avoid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_tags: Option<String>,
    /// `m` | `f`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocal_gender: Option<String>,
    /// 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style_weight: Option<f64>,
    /// 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weirdness_constraint: Option<f64>,
    /// 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_weight: Option<f64>,
    /// Persona (custom mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona_id: Option<String>,
    /// `style_persona` | `voice_persona`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona_model: Option<String>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data` of a successful generate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskCreated {
    /// The task id to poll.
    pub task_id: String,
}

/// `createTime`: a `"YYYY-MM-DD HH:MM:SS"` string (documented) or epoch milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CreateTime {
    /// Epoch milliseconds.
    Millis(u64),
    /// `"2025-01-01 00:00:00"`.
    Text(String),
}

/// `data` of `GET /api/v1/generate/record-info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordInfo {
    /// Task id.
    pub task_id: String,
    /// `""` unless extending.
    #[serde(default)]
    pub parent_music_id: String,
    /// JSON-encoded **string** of the original request.
    #[serde(default)]
    pub param: String,
    /// Tracks; `null` before any exist.
    #[serde(default)]
    pub response: Option<TaskResponse>,
    /// `PENDING`, `TEXT_SUCCESS`, `FIRST_SUCCESS`, `SUCCESS`, `CREATE_TASK_FAILED`,
    /// `GENERATE_AUDIO_FAILED`, `CALLBACK_EXCEPTION`, `SENSITIVE_WORD_ERROR`.
    pub status: String,
    /// Opaque (`"GENERATE"`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `generate` | `extend` | …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_type: Option<String>,
    /// Set on failure.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Set on failure.
    #[serde(default)]
    pub error_message: Option<String>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `record-info` `response`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResponse {
    /// Task id.
    pub task_id: String,
    /// The (up to) two tracks.
    #[serde(default)]
    pub suno_data: Vec<Track>,
}

/// A generated track (`sunoData[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    /// The audioId.
    pub id: String,
    /// Final MP3 URL (`""` until ready).
    #[serde(default)]
    pub audio_url: String,
    /// Streaming URL (earlier than `audioUrl`; `""` until ready).
    #[serde(default)]
    pub stream_audio_url: String,
    /// Cover image.
    #[serde(default)]
    pub image_url: String,
    /// Lyrics actually used.
    #[serde(default)]
    pub prompt: String,
    /// Internal model name, e.g. `chirp-v4-5`.
    #[serde(default)]
    pub model_name: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Comma-separated style tags.
    #[serde(default)]
    pub tags: String,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<CreateTime>,
    /// Seconds; absent until the audio exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Any other field (`sourceAudioUrl`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /api/v1/generate/get-timestamped-lyrics` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampedLyricsRequest {
    /// Task id.
    pub task_id: String,
    /// Track id (`sunoData[].id`).
    pub audio_id: String,
}

/// `data` of the timestamped-lyrics answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampedLyrics {
    /// Words with timings; the first word of a section carries the tag and a newline
    /// (`"[Verse]\nWaggin'"`), the last word of a line a trailing newline.
    pub aligned_words: Vec<AlignedWord>,
    /// Waveform samples for visualisation.
    #[serde(default)]
    pub waveform_data: Vec<f64>,
    /// Alignment score.
    #[serde(default)]
    pub hoot_cer: f64,
    /// Whether the audio is a stream.
    #[serde(default)]
    pub is_streamed: bool,
}

/// One aligned word.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlignedWord {
    /// The token (may contain `[Tag]\n` and newlines).
    pub word: String,
    /// Whether it was aligned.
    pub success: bool,
    /// Start, seconds.
    #[serde(rename = "startS")]
    pub start_s: f64,
    /// End, seconds.
    #[serde(rename = "endS")]
    pub end_s: f64,
    /// Alignment parameter (undocumented).
    #[serde(default)]
    pub palign: i64,
}

/// A callback POSTed to `callBackUrl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    /// 200 on success; 400/408/413/451/500/501/531 on failure.
    pub code: u16,
    /// Message.
    pub msg: String,
    /// Stage data.
    pub data: CallbackData,
}

/// `data` of a callback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackData {
    /// `text` | `first` | `complete` | `error`.
    pub callback_type: String,
    /// Task id (music callbacks, snake_case).
    #[serde(rename = "task_id", default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Task id (lyrics callbacks use camelCase).
    #[serde(rename = "taskId", default, skip_serializing_if = "Option::is_none")]
    pub task_id_camel: Option<String>,
    /// Tracks; `null` on errors.
    #[serde(default)]
    pub data: Option<Vec<CallbackTrack>>,
}

/// A track in a callback (snake_case).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallbackTrack {
    /// The audioId.
    pub id: String,
    /// Final MP3 URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
    /// Original audio URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_audio_url: Option<String>,
    /// Stream URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_audio_url: Option<String>,
    /// Original stream URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_stream_audio_url: Option<String>,
    /// Cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Original cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_image_url: Option<String>,
    /// Lyrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Internal model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Style tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    /// Creation time (camelCase even here).
    #[serde(
        rename = "createTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub create_time: Option<CreateTime>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
