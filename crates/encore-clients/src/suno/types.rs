//! Suno (sunoapi.org) wire types. Requests are camelCase; responses are read leniently: unknown
//! statuses and models are kept as strings, `null` is accepted for documented strings,
//! `createTime` may be a string or a number, and `param` is a JSON-encoded string.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::wire;

/// The body of `POST /api/v1/generate`.
///
/// Leave `model` or `call_back_url` empty to use the configured `suno.model` and
/// `suno.callback_url`.
///
/// ```
/// use encore_clients::suno::GenerateRequest;
///
/// let req = GenerateRequest::custom("[Verse]\nNeon nights", "synthwave, 100 bpm", "Night City");
/// let json = serde_json::to_value(&req).unwrap();
/// assert_eq!(json["customMode"], true);
/// assert_eq!(json["prompt"], "[Verse]\nNeon nights");
/// assert!(json.get("negativeTags").is_none(), "None fields are not sent");
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest {
    /// `true`: you give style, title and (unless instrumental) the lyrics in `prompt`.
    pub custom_mode: bool,
    /// `true`: no vocals.
    pub instrumental: bool,
    /// `V4_5`, `V5`, …; empty = the configured default.
    #[serde(default)]
    pub model: String,
    /// Required by the API even when polling; empty = the configured default.
    #[serde(default)]
    pub call_back_url: String,
    /// Custom mode: the lyrics, used verbatim. Simple mode: the idea (≤ 500 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Custom mode: genre and style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// Custom mode: the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Styles to avoid, e.g. `"Heavy Metal, Upbeat Drums"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_tags: Option<String>,
    /// `"m"` or `"f"` (custom mode; a hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocal_gender: Option<String>,
}

impl GenerateRequest {
    /// Custom mode with lyrics: `style`, `title` and `lyrics` (sent as `prompt`).
    pub fn custom(
        lyrics: impl Into<String>,
        style: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        GenerateRequest {
            custom_mode: true,
            prompt: Some(lyrics.into()),
            style: Some(style.into()),
            title: Some(title.into()),
            ..GenerateRequest::default()
        }
    }

    /// Custom mode without vocals.
    pub fn instrumental(style: impl Into<String>, title: impl Into<String>) -> Self {
        GenerateRequest {
            custom_mode: true,
            instrumental: true,
            style: Some(style.into()),
            title: Some(title.into()),
            ..GenerateRequest::default()
        }
    }

    /// Simple mode: Suno writes the lyrics from `idea`.
    pub fn simple(idea: impl Into<String>) -> Self {
        GenerateRequest {
            prompt: Some(idea.into()),
            ..GenerateRequest::default()
        }
    }
}

/// The status of a Suno task. Unknown values are kept in [`TaskStatus::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// `PENDING`: waiting to be processed.
    Pending,
    /// `TEXT_SUCCESS`: lyrics generated.
    TextSuccess,
    /// `FIRST_SUCCESS`: the first track is done.
    FirstSuccess,
    /// `SUCCESS`: every track is done.
    Success,
    /// `CREATE_TASK_FAILED`.
    CreateTaskFailed,
    /// `GENERATE_AUDIO_FAILED`.
    GenerateAudioFailed,
    /// `CALLBACK_EXCEPTION`: the callback could not be delivered. Terminal, but the song may
    /// well exist: check [`TaskRecord::has_audio`].
    CallbackException,
    /// `SENSITIVE_WORD_ERROR`: the input contains prohibited words (change it).
    SensitiveWordError,
    /// `FAILED`: the failure status of sunoapi.org's older quick start (the current
    /// `get-music-generation-details` page lists `CREATE_TASK_FAILED`,
    /// `GENERATE_AUDIO_FAILED` and `SENSITIVE_WORD_ERROR` instead; `shared/reference/apis.md`
    /// 1.5). A failure that ends the task, with the reason in
    /// [`TaskRecord::error_message`]: read as [`Other`](Self::Other) it would be polled until
    /// the deadline.
    Failed,
    /// Anything else, as sent (treated as not terminal: keep polling until your deadline; the
    /// docs say stages may be skipped and have added statuses before).
    Other(String),
}

impl TaskStatus {
    /// The wire value, e.g. `"SUCCESS"`.
    pub fn as_str(&self) -> &str {
        match self {
            TaskStatus::Pending => "PENDING",
            TaskStatus::TextSuccess => "TEXT_SUCCESS",
            TaskStatus::FirstSuccess => "FIRST_SUCCESS",
            TaskStatus::Success => "SUCCESS",
            TaskStatus::CreateTaskFailed => "CREATE_TASK_FAILED",
            TaskStatus::GenerateAudioFailed => "GENERATE_AUDIO_FAILED",
            TaskStatus::CallbackException => "CALLBACK_EXCEPTION",
            TaskStatus::SensitiveWordError => "SENSITIVE_WORD_ERROR",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Other(s) => s,
        }
    }

    /// Whether the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TaskStatus::Success
                | TaskStatus::CreateTaskFailed
                | TaskStatus::GenerateAudioFailed
                | TaskStatus::CallbackException
                | TaskStatus::SensitiveWordError
                | TaskStatus::Failed
        )
    }

    /// Whether the task definitely failed (`CALLBACK_EXCEPTION` is not counted: inspect tracks).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            TaskStatus::CreateTaskFailed
                | TaskStatus::GenerateAudioFailed
                | TaskStatus::SensitiveWordError
                | TaskStatus::Failed
        )
    }
}

impl From<&str> for TaskStatus {
    fn from(s: &str) -> Self {
        match s {
            "PENDING" => TaskStatus::Pending,
            "TEXT_SUCCESS" => TaskStatus::TextSuccess,
            "FIRST_SUCCESS" => TaskStatus::FirstSuccess,
            "SUCCESS" => TaskStatus::Success,
            "CREATE_TASK_FAILED" => TaskStatus::CreateTaskFailed,
            "GENERATE_AUDIO_FAILED" => TaskStatus::GenerateAudioFailed,
            "CALLBACK_EXCEPTION" => TaskStatus::CallbackException,
            "SENSITIVE_WORD_ERROR" => TaskStatus::SensitiveWordError,
            "FAILED" => TaskStatus::Failed,
            other => TaskStatus::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TaskStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(TaskStatus::from(wire::string(d)?.as_str()))
    }
}

/// A timestamp sent either as text (`"2025-01-01 00:00:00"`) or as a number (epoch, unit not
/// documented).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CreateTime {
    /// As text.
    Text(String),
    /// As a number.
    Number(serde_json::Number),
}

/// One generated track (`response.sunoData[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    /// The audio id (needed for timestamped lyrics).
    #[serde(default, deserialize_with = "wire::string")]
    pub id: String,
    /// The final MP3 (may be empty until ready).
    #[serde(default, deserialize_with = "wire::string")]
    pub audio_url: String,
    /// The streaming URL, available earlier.
    #[serde(default, deserialize_with = "wire::string")]
    pub stream_audio_url: String,
    /// The cover image.
    #[serde(default, deserialize_with = "wire::string")]
    pub image_url: String,
    /// The lyrics or prompt actually used.
    #[serde(default, deserialize_with = "wire::string")]
    pub prompt: String,
    /// Suno's internal model name, e.g. `chirp-v3-5` (kept as sent).
    #[serde(default, deserialize_with = "wire::string")]
    pub model_name: String,
    /// The title.
    #[serde(default, deserialize_with = "wire::string")]
    pub title: String,
    /// Comma-separated style tags.
    #[serde(default, deserialize_with = "wire::string")]
    pub tags: String,
    /// Length in seconds.
    #[serde(default, deserialize_with = "wire::opt_f64")]
    pub duration: Option<f64>,
    /// When it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<CreateTime>,
}

impl Track {
    /// Whether the final audio URL is present.
    pub fn has_audio(&self) -> bool {
        !self.audio_url.trim().is_empty()
    }
}

/// The `data` of `GET /api/v1/generate/record-info`.
///
/// Serializes in the API's camelCase form, so a serialized record reads back as itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "TaskRecordWire", rename_all = "camelCase")]
pub struct TaskRecord {
    /// The task id.
    pub task_id: String,
    /// Where the task is.
    pub status: TaskStatus,
    /// The tracks generated so far (empty while `response` is `null`).
    pub tracks: Vec<Track>,
    /// Set when the task failed.
    pub error_code: Option<i64>,
    /// Set when the task failed.
    pub error_message: Option<String>,
    /// The original request parameters as the JSON string the API sends (see
    /// [`params`](Self::params)).
    pub param: Option<String>,
    /// `generate`, `extend`, … (may be absent).
    pub operation_type: Option<String>,
    /// The task's `type` (opaque; e.g. `GENERATE`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// When the task was created, when sent.
    pub create_time: Option<CreateTime>,
}

impl TaskRecord {
    /// Whether at least one track has its final audio URL (also the test for a
    /// `CALLBACK_EXCEPTION` task that did produce the song).
    pub fn has_audio(&self) -> bool {
        self.tracks.iter().any(Track::has_audio)
    }

    /// The original request parameters, decoded from [`param`](Self::param).
    pub fn params(&self) -> Option<Value> {
        serde_json::from_str(self.param.as_deref()?).ok()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskRecordWire {
    #[serde(default, deserialize_with = "wire::string")]
    task_id: String,
    #[serde(default)]
    status: Option<TaskStatus>,
    #[serde(default)]
    response: Option<ResponseWire>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    error_code: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    error_message: Option<String>,
    #[serde(default)]
    param: Option<Value>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    operation_type: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "wire::opt_string")]
    kind: Option<String>,
    #[serde(default)]
    create_time: Option<CreateTime>,
    // Serialized `TaskRecord`s (reports) come back through this wire type too.
    #[serde(default)]
    tracks: Option<Vec<Track>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResponseWire {
    #[serde(default, deserialize_with = "wire::null_default")]
    suno_data: Vec<Track>,
}

impl From<TaskRecordWire> for TaskRecord {
    fn from(w: TaskRecordWire) -> Self {
        let param = match w.param {
            Some(Value::String(s)) => Some(s),
            Some(Value::Null) | None => None,
            // Documented as a JSON string; an object is kept as its JSON text.
            Some(other) => Some(other.to_string()),
        };
        TaskRecord {
            task_id: w.task_id,
            status: w.status.unwrap_or_else(|| TaskStatus::Other(String::new())),
            tracks: w
                .tracks
                .or_else(|| w.response.map(|r| r.suno_data))
                .unwrap_or_default(),
            error_code: w.error_code,
            error_message: w.error_message,
            param,
            operation_type: w.operation_type,
            kind: w.kind,
            create_time: w.create_time,
        }
    }
}

/// The `data` of `POST /api/v1/generate/get-timestamped-lyrics`.
///
/// Read leniently, field by field: only the words' times matter to encore (the captions), and
/// one odd field must not cost the whole answer. The docs show every field present and typed
/// (`shared/reference/apis.md` 1.6), but nothing in them says a word that could not be aligned
/// (`success: false`) still gets numbers; a missing or `null` time is `None`, never `0`, so
/// such a word is not shown at the start of the song. `waveformData` and `isStreamed` are for
/// visualisation and may be absent or `null` (or, for the waveform, not numbers at all): `None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TimestampedLyrics {
    /// The words with their times (empty for instrumentals).
    #[serde(default, deserialize_with = "wire::null_default")]
    pub aligned_words: Vec<AlignedWord>,
    /// Alignment score as sent.
    #[serde(default, deserialize_with = "wire::opt_f64")]
    pub hoot_cer: Option<f64>,
    /// Whether this is streaming audio (`None`: not sent).
    #[serde(
        default,
        deserialize_with = "wire::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_streamed: Option<bool>,
    /// Waveform samples for visualisation (`None`: not sent, `null`, or not a list of numbers).
    #[serde(
        default,
        deserialize_with = "wire::opt_f64_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub waveform_data: Option<Vec<f64>>,
}

/// One aligned word. `word` may carry section tags and newlines (`"[Verse]\nWaggin'"`); see
/// [`plain`](Self::plain).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AlignedWord {
    /// The token as sent.
    #[serde(default, deserialize_with = "wire::string")]
    pub word: String,
    /// Whether it was aligned.
    #[serde(default, deserialize_with = "wire::bool_or_false")]
    pub success: bool,
    /// Start, seconds; `None` when Suno sent none (missing, `null`, not a number).
    #[serde(
        default,
        deserialize_with = "wire::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_s: Option<f64>,
    /// End, seconds; `None` when Suno sent none (missing, `null`, not a number).
    #[serde(
        default,
        deserialize_with = "wire::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_s: Option<f64>,
    /// Undocumented alignment parameter.
    #[serde(default, deserialize_with = "wire::opt_f64")]
    pub palign: Option<f64>,
}

impl AlignedWord {
    /// The word without `[Section]` tags, newlines or surrounding whitespace.
    ///
    /// ```
    /// use encore_clients::suno::AlignedWord;
    ///
    /// let w = AlignedWord { word: "[Verse]\nWaggin' ".into(), ..Default::default() };
    /// assert_eq!(w.plain(), "Waggin'");
    /// ```
    pub fn plain(&self) -> String {
        let mut out = String::with_capacity(self.word.len());
        let mut depth = 0u32;
        for c in self.word.chars() {
            match c {
                '[' => depth += 1,
                ']' if depth > 0 => depth -= 1,
                _ if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The `data` of `POST /api/v1/generate`.
#[derive(Deserialize)]
pub(crate) struct Created {
    #[serde(rename = "taskId", deserialize_with = "wire::string")]
    pub(crate) task_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_record_parses() {
        let data = serde_json::json!({
            "taskId": "5c79be8e",
            "parentMusicId": "",
            "param": "{\"prompt\":\"A calm piano track\",\"model\":\"V4_5ALL\"}",
            "response": {
                "taskId": "5c79be8e",
                "sunoData": [{
                    "id": "8551662c", "audioUrl": "https://x/a.mp3", "streamAudioUrl": "https://x/s",
                    "imageUrl": "https://x/i.jpeg", "prompt": "[Verse] ...", "modelName": "chirp-v3-5",
                    "title": "Peaceful Piano", "tags": "electrifying, rock",
                    "createTime": "2025-01-01 00:00:00", "duration": 198.44
                }]
            },
            "status": "SUCCESS", "type": "GENERATE", "errorCode": null, "errorMessage": null
        });
        let r: TaskRecord = serde_json::from_value(data).unwrap();
        assert_eq!(r.task_id, "5c79be8e");
        assert_eq!(r.status, TaskStatus::Success);
        assert!(r.status.is_terminal() && !r.status.is_failure());
        assert_eq!(r.tracks.len(), 1);
        assert_eq!(r.tracks[0].duration, Some(198.44));
        assert_eq!(
            r.tracks[0].create_time,
            Some(CreateTime::Text("2025-01-01 00:00:00".into()))
        );
        assert!(r.has_audio());
        assert_eq!(r.params().unwrap()["model"], "V4_5ALL");
        assert_eq!(r.kind.as_deref(), Some("GENERATE"));
        // A report round trip keeps everything.
        let back: TaskRecord = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn early_odd_and_unknown_records_parse() {
        let r: TaskRecord = serde_json::from_value(serde_json::json!({
            "taskId": "t1", "status": "GENERATING", "response": null, "createTime": 1_735_689_600_000_u64,
            "errorCode": "413", "param": {"prompt": "x"}
        }))
        .unwrap();
        assert_eq!(r.status, TaskStatus::Other("GENERATING".into()));
        assert!(!r.status.is_terminal());
        assert!(r.tracks.is_empty() && !r.has_audio());
        assert!(matches!(r.create_time, Some(CreateTime::Number(_))));
        assert_eq!(r.error_code, Some(413));
        assert_eq!(r.params().unwrap()["prompt"], "x");
        let r: TaskRecord = serde_json::from_value(serde_json::json!({
            "taskId": "t2", "status": "CALLBACK_EXCEPTION",
            "response": {"sunoData": [{"id": "a", "audioUrl": null, "duration": "12.5", "createTime": 17}]}
        }))
        .unwrap();
        assert!(r.status.is_terminal() && !r.status.is_failure());
        assert_eq!(r.tracks[0].audio_url, "");
        assert_eq!(r.tracks[0].duration, Some(12.5));
        assert!(!r.has_audio());
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            "PENDING",
            "TEXT_SUCCESS",
            "FIRST_SUCCESS",
            "SUCCESS",
            "CREATE_TASK_FAILED",
            "GENERATE_AUDIO_FAILED",
            "CALLBACK_EXCEPTION",
            "SENSITIVE_WORD_ERROR",
            "FAILED",
            "NEW_THING",
        ] {
            let status = TaskStatus::from(s);
            assert_eq!(status.as_str(), s);
            assert_eq!(serde_json::to_value(&status).unwrap(), s);
            let back: TaskStatus = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(back, status);
        }
        assert!(TaskStatus::SensitiveWordError.is_failure());
    }

    #[test]
    fn the_old_failed_status_is_a_terminal_failure_and_unknown_ones_are_not() {
        let r: TaskRecord = serde_json::from_value(serde_json::json!({
            "taskId": "t3", "status": "FAILED", "response": null,
            "errorCode": null, "errorMessage": "Music generation failed"
        }))
        .unwrap();
        assert_eq!(r.status, TaskStatus::Failed);
        assert!(r.status.is_terminal() && r.status.is_failure());
        assert_eq!(r.error_message.as_deref(), Some("Music generation failed"));
        // Statuses encore has never seen (or in another case) stay non-terminal.
        for s in ["GENERATING", "failed", "FAILED_SOMEHOW", ""] {
            let status = TaskStatus::from(s);
            assert_eq!(status, TaskStatus::Other(s.to_owned()), "{s}");
            assert!(!status.is_terminal() && !status.is_failure(), "{s}");
        }
        // Every named status says what the docs say about it.
        let terminal_failures = [
            TaskStatus::CreateTaskFailed,
            TaskStatus::GenerateAudioFailed,
            TaskStatus::SensitiveWordError,
            TaskStatus::Failed,
        ];
        for status in terminal_failures {
            assert!(status.is_terminal() && status.is_failure(), "{status}");
        }
        for status in [TaskStatus::Success, TaskStatus::CallbackException] {
            assert!(status.is_terminal() && !status.is_failure(), "{status}");
        }
        for status in [
            TaskStatus::Pending,
            TaskStatus::TextSuccess,
            TaskStatus::FirstSuccess,
        ] {
            assert!(!status.is_terminal() && !status.is_failure(), "{status}");
        }
    }

    #[test]
    fn timestamped_lyrics_parse() {
        let l: TimestampedLyrics = serde_json::from_value(serde_json::json!({
            "alignedWords": [{"word": "[Verse]\nWaggin'", "success": true, "startS": 1.36, "endS": 1.79, "palign": 0}],
            "waveformData": [0, 1, 0.5], "hootCer": 0.38, "isStreamed": false
        }))
        .unwrap();
        assert_eq!(l.aligned_words[0].plain(), "Waggin'");
        assert_eq!(l.aligned_words[0].start_s, Some(1.36));
        assert_eq!(l.aligned_words[0].end_s, Some(1.79));
        assert_eq!(l.waveform_data, Some(vec![0.0, 1.0, 0.5]));
        assert_eq!(l.is_streamed, Some(false));
        let empty: TimestampedLyrics =
            serde_json::from_value(serde_json::json!({"alignedWords": null})).unwrap();
        assert!(empty.aligned_words.is_empty());
    }

    #[test]
    fn words_without_times_keep_the_answer_and_are_not_at_zero() {
        let l: TimestampedLyrics = serde_json::from_value(serde_json::json!({
            "alignedWords": [
                {"word": "[Verse]\nHello", "success": true, "startS": 1.5, "endS": 1.9, "palign": 0},
                {"word": "there", "success": false, "startS": null, "endS": null, "palign": 0},
                {"word": "my", "success": false, "palign": 0},
                {"word": "friend", "success": true, "startS": "2.5", "endS": 3, "palign": 0},
                {"word": "again", "success": true, "startS": 3.1, "endS": {"s": 1}}
            ],
            "hootCer": 0.2
        }))
        .unwrap();
        let times: Vec<_> = l
            .aligned_words
            .iter()
            .map(|w| (w.plain(), w.start_s, w.end_s))
            .collect();
        assert_eq!(
            times,
            [
                ("Hello".to_owned(), Some(1.5), Some(1.9)),
                ("there".to_owned(), None, None),
                ("my".to_owned(), None, None),
                ("friend".to_owned(), Some(2.5), Some(3.0)),
                ("again".to_owned(), Some(3.1), None),
            ]
        );
        assert_eq!((l.waveform_data, l.is_streamed), (None, None));
        // A report round trip keeps "no time" as no time (the keys are left out).
        let text = serde_json::to_value(&l.aligned_words[2]).unwrap();
        assert_eq!(
            text,
            serde_json::json!({"word": "my", "success": false, "palign": 0.0})
        );
        let back: AlignedWord = serde_json::from_value(text).unwrap();
        assert_eq!(back, l.aligned_words[2]);
    }

    #[test]
    fn requests_serialize_camel_case_without_nones() {
        let mut req = GenerateRequest::instrumental("lofi", "Rain");
        req.model = "V5".into();
        req.call_back_url = "https://cb.test/x".into();
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"customMode": true, "instrumental": true, "model": "V5",
                "callBackUrl": "https://cb.test/x", "style": "lofi", "title": "Rain"})
        );
        let simple = serde_json::to_value(GenerateRequest::simple("a song")).unwrap();
        assert_eq!(simple["customMode"], false);
        assert_eq!(simple["prompt"], "a song");
    }
}
