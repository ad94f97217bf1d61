//! How simulated jobs end and how their callbacks are delivered: the per-service parts of a
//! [`Scenario`](crate::Scenario) (`[openai]`, `[suno]`, `[creatomate]` in a scenario file).

use serde::{Deserialize, Serialize};

/// Default delay of a late callback ([`CallbackFaults::late_by_s`]), virtual seconds.
pub const DEFAULT_CALLBACK_LATE_BY_S: f64 = 60.0;

/// How the *n*th created OpenAI response ends (then [`OpenaiOutcome::Completed`]).
///
/// Every such answer is HTTP 200 with a full response object; the response is billed (it
/// appears in the ledger) whatever its status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenaiScenario {
    /// Outcomes in response-creation order (calls rejected with an HTTP error do not count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<OpenaiOutcome>,
}

impl OpenaiScenario {
    pub(crate) fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }
}

/// The end of an OpenAI response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenaiOutcome {
    /// `status: "completed"`, one message with one `output_text` part (still `incomplete`
    /// when the request's `max_output_tokens` is below the generated size).
    #[default]
    Completed,
    /// Like `completed`, with a `reasoning` output item **before** the message (as reasoning
    /// models answer) and `usage.output_tokens_details.reasoning_tokens > 0`.
    Reasoning,
    /// `status: "completed"`, the message holds one `refusal` content part and no
    /// `output_text` (the SDKs' `output_text` is `""`).
    Refusal,
    /// `status: "failed"`, `error.code = "server_error"` (transient: a new call may work),
    /// no output.
    FailedServerError,
    /// `status: "failed"`, `error.code = "invalid_prompt"` (permanent), no output.
    FailedInvalidPrompt,
    /// `status: "incomplete"`, `incomplete_details.reason = "max_output_tokens"`: the text
    /// is cut off (invalid JSON for structured outputs).
    IncompleteMaxOutputTokens,
    /// `status: "incomplete"`, `incomplete_details.reason = "content_filter"`: the text is
    /// cut off.
    IncompleteContentFilter,
}

impl OpenaiOutcome {
    /// The scenario-file name, e.g. `"failed_server_error"`.
    pub const fn name(self) -> &'static str {
        match self {
            OpenaiOutcome::Completed => "completed",
            OpenaiOutcome::Reasoning => "reasoning",
            OpenaiOutcome::Refusal => "refusal",
            OpenaiOutcome::FailedServerError => "failed_server_error",
            OpenaiOutcome::FailedInvalidPrompt => "failed_invalid_prompt",
            OpenaiOutcome::IncompleteMaxOutputTokens => "incomplete_max_output_tokens",
            OpenaiOutcome::IncompleteContentFilter => "incomplete_content_filter",
        }
    }
}

/// Suno: how the *n*th created task ends (then [`SunoOutcome::Success`]), how the *n*th
/// timestamped-lyrics answer is shaped, and how callbacks are delivered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SunoScenario {
    /// Outcomes in task-creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<SunoOutcome>,
    /// Shapes of the timestamped-lyrics answers that carry data, in order (then `normal`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timestamped_lyrics: Vec<TimestampedLyricsOutcome>,
    /// Hostile delivery of `callBackUrl` callbacks (`[suno.callbacks]`).
    #[serde(default, skip_serializing_if = "CallbackFaults::is_none")]
    pub callbacks: CallbackFaults,
}

impl SunoScenario {
    pub(crate) fn is_empty(&self) -> bool {
        self.outcomes.is_empty() && self.timestamped_lyrics.is_empty() && self.callbacks.is_none()
    }
}

/// The end of a Suno task. Stage times (virtual seconds after creation): text 15–30 s,
/// first track streamable 30–40 s, first downloadable file 120–135 s, all files (the end)
/// 150–180 s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SunoOutcome {
    /// PENDING → TEXT_SUCCESS → FIRST_SUCCESS → SUCCESS.
    #[default]
    Success,
    /// PENDING → SUCCESS (the docs allow skipped intermediate stages).
    SkipStages,
    /// CREATE_TASK_FAILED right away (after 2 s).
    CreateTaskFailed,
    /// GENERATE_AUDIO_FAILED instead of FIRST_SUCCESS.
    GenerateAudioFailed,
    /// SENSITIVE_WORD_ERROR instead of TEXT_SUCCESS.
    SensitiveWordError,
    /// CALLBACK_EXCEPTION instead of SUCCESS, with both tracks complete.
    CallbackException,
    /// CALLBACK_EXCEPTION instead of FIRST_SUCCESS, **before** any track has a downloadable
    /// file: the tracks get their stream and audio URLs later, on the usual timeline. The
    /// status stays CALLBACK_EXCEPTION (UNCONFIRMED upstream; with
    /// [`SimConfig::suno_callback_exception_recovers`](crate::SimConfig) it becomes SUCCESS
    /// when the last file is ready).
    CallbackExceptionBeforeAudio,
    /// The older docs' `FAILED` status instead of FIRST_SUCCESS, with an `errorMessage` and
    /// a null `errorCode`; the error callback uses the older docs' code 400
    /// "Music generation failed".
    Failed,
}

/// The shape of a timestamped-lyrics answer (`[suno] timestamped_lyrics`), for clients that
/// must parse loose data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampedLyricsOutcome {
    /// Every word has numeric `startS`/`endS`; `waveformData` and `isStreamed` present.
    #[default]
    Normal,
    /// Every 4th word (the 4th, 8th, …) has `"startS": null, "endS": null` and
    /// `"success": false`.
    NullTimings,
    /// Every 4th word lacks the `startS` and `endS` keys and has `"success": false`.
    MissingTimings,
    /// No `waveformData` and no `isStreamed` keys.
    NoWaveform,
    /// All of it: the 2nd, 6th, … words have null timings, the 4th, 8th, … lack them, and
    /// `waveformData` / `isStreamed` are missing.
    Loose,
}

/// Creatomate: how the *n*th created render ends (then succeeded), and how webhooks are
/// delivered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatomateScenario {
    /// Outcomes in render-creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<RenderOutcome>,
    /// `error_message` of failed renders (a default is provided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    /// Hostile delivery of `webhook_url` webhooks (`[creatomate.callbacks]`);
    /// `out_of_order` must be 0 (a render has one webhook).
    #[serde(default, skip_serializing_if = "CallbackFaults::is_none")]
    pub callbacks: CallbackFaults,
}

impl CreatomateScenario {
    pub(crate) fn is_empty(&self) -> bool {
        self.outcomes.is_empty() && self.failure_message.is_none() && self.callbacks.is_none()
    }
}

/// The end of a Creatomate render.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenderOutcome {
    /// planned → waiting → rendering → succeeded.
    #[default]
    Succeeded,
    /// planned → waiting → rendering → failed (with `error_message`).
    Failed,
}

/// Hostile callback delivery for one service. Each probability (0–1) is drawn once per
/// callback from a random stream seeded by the simulator seed and the job id, so a run is
/// reproducible; `1.0` applies the fault to every callback.
///
/// The faults combine: a dropped callback is never sent (and nothing else applies); a late
/// one is sent `late_by_s` virtual seconds after its stage; an out-of-order one is held back
/// until just after the job's next callback (the job's last callback has none: no effect);
/// a duplicated one is sent twice in a row.
///
/// ```toml
/// [suno.callbacks]
/// duplicate = 0.5
/// out_of_order = 0.3
/// late = 0.2
/// late_by_s = 90
/// drop = 0.1
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackFaults {
    /// Probability that a callback is never sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drop: f64,
    /// Probability that a callback is delivered twice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicate: f64,
    /// Probability that a callback is held back until after the job's next one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub out_of_order: f64,
    /// Probability that a callback is sent `late_by_s` after its stage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late: f64,
    /// Delay of a late callback, virtual seconds (default [`DEFAULT_CALLBACK_LATE_BY_S`]).
    #[serde(default = "default_late_by_s")]
    pub late_by_s: f64,
}

impl Default for CallbackFaults {
    fn default() -> Self {
        CallbackFaults {
            drop: 0.0,
            duplicate: 0.0,
            out_of_order: 0.0,
            late: 0.0,
            late_by_s: DEFAULT_CALLBACK_LATE_BY_S,
        }
    }
}

impl CallbackFaults {
    /// Whether no fault is configured (the default).
    pub fn is_none(&self) -> bool {
        *self == CallbackFaults::default()
    }

    /// Checks ranges; `Err((field, reason))`.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, p) in [
            ("drop", self.drop),
            ("duplicate", self.duplicate),
            ("out_of_order", self.out_of_order),
            ("late", self.late),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err((field, format!("probability {p} is not in 0..=1")));
            }
        }
        if !self.late_by_s.is_finite() || self.late_by_s < 0.0 {
            return Err(("late_by_s", "must be a finite number >= 0".to_owned()));
        }
        Ok(())
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(p: &f64) -> bool {
    *p == 0.0
}

const fn default_late_by_s() -> f64 {
    DEFAULT_CALLBACK_LATE_BY_S
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_faults_default_and_validate() {
        let f = CallbackFaults::default();
        assert!(f.is_none());
        assert!(f.validate().is_ok());
        let f: CallbackFaults = toml::from_str("duplicate = 1.0").unwrap();
        assert!(!f.is_none());
        assert!((f.late_by_s - DEFAULT_CALLBACK_LATE_BY_S).abs() < f64::EPSILON);
        let f = CallbackFaults {
            late: 1.5,
            ..CallbackFaults::default()
        };
        assert_eq!(f.validate().unwrap_err().0, "late");
        let f = CallbackFaults {
            late_by_s: f64::NAN,
            ..CallbackFaults::default()
        };
        assert_eq!(f.validate().unwrap_err().0, "late_by_s");
    }

    #[test]
    fn outcome_names_match_serde() {
        for o in [
            OpenaiOutcome::Completed,
            OpenaiOutcome::Reasoning,
            OpenaiOutcome::Refusal,
            OpenaiOutcome::FailedServerError,
            OpenaiOutcome::FailedInvalidPrompt,
            OpenaiOutcome::IncompleteMaxOutputTokens,
            OpenaiOutcome::IncompleteContentFilter,
        ] {
            assert_eq!(
                serde_json::to_value(o).unwrap(),
                serde_json::Value::from(o.name())
            );
        }
    }
}
