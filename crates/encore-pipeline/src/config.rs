//! The pipeline's own settings: polling, song options and the video template's element names.

use std::time::Duration;

use encore_resilience::{PolicyError, PollPolicy, fmt_duration};
use serde::{Deserialize, Serialize};

/// How the pipeline runs its stages (the `[pipeline]` table of `encore.toml`).
///
/// # Defaults
///
/// | key | default | meaning |
/// |---|---|---|
/// | `accept_first_success` | `false` | accept Suno's `FIRST_SUCCESS` (one track ready) instead of waiting for `SUCCESS` |
/// | `song_poll` | `10s` → ×1.5 → `30s`, `10m` deadline | polling of the Suno task |
/// | `video_poll` | `5s` → ×1.5 → `15s`, `15m` deadline | polling of the Creatomate render |
/// | `template_id` | `""` | the Creatomate template (or `CREATOMATE_TEMPLATE_ID`) |
/// | `check_template` | `true` | fetch the template (a free read) before any billed call, so an unreachable Creatomate or a wrong id fails first |
/// | `template_check_ttl` | `1m` | how long a successful template check is used by the worker's other jobs (pipelines sharing one [`TemplateChecks`](crate::TemplateChecks)) instead of reading the template again, at most `1h`; `0s` reads it for every job. A failed check is never kept |
/// | `audio_element` | `"Audio"` | template element that receives the song (`Audio.source`) |
/// | `title_element` | `"Title"` | template element that receives the title (`Title.text`) |
/// | `captions_element` | `"Captions"` | template element that receives the captions (`Captions.text`, `.time`, `.duration`) |
/// | `caption_words_per_line` | `8` | longest caption line, in words |
/// | `song_credits` | `12` | Suno credits one song needs; fewer left is refused before anything is paid for |
/// | `callback_poll_interval` | `2m` | with provider callbacks, polling is a slow fallback: no status read comes sooner than this after the last |
/// | `not_found_grace` | `30s` | how long (the provider's time, from the first status read) a task or render this job created may answer "not found" before that fails the wait, naming its id; `0s` fails at once |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Accept `FIRST_SUCCESS` as done.
    pub accept_first_success: bool,
    /// Polling of the Suno task.
    pub song_poll: PollPolicy,
    /// Polling of the Creatomate render.
    pub video_poll: PollPolicy,
    /// The Creatomate template id.
    pub template_id: String,
    /// Fetch the template before any billed call.
    pub check_template: bool,
    /// How long a successful template check is shared with the worker's other jobs (`0`: every
    /// job reads the template).
    #[serde(with = "humantime_serde")]
    pub template_check_ttl: Duration,
    /// Element that receives the audio URL.
    pub audio_element: String,
    /// Element that receives the title.
    pub title_element: String,
    /// Element that receives the captions.
    pub captions_element: String,
    /// Longest caption line, in words.
    pub caption_words_per_line: usize,
    /// Suno credits one song needs (checked with a free read before anything billed).
    pub song_credits: u64,
    /// With callbacks, the shortest time between two status reads of a task or render.
    #[serde(with = "humantime_serde")]
    pub callback_poll_interval: Duration,
    /// How long a task or render this job created may answer "not found" (a read that has not
    /// caught up with the creation) before the wait fails; see `visibility.rs`.
    #[serde(with = "humantime_serde")]
    pub not_found_grace: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            accept_first_success: false,
            song_poll: PollPolicy {
                interval: Duration::from_secs(10),
                max_interval: Duration::from_secs(30),
                multiplier: 1.5,
                deadline: Duration::from_secs(600),
            },
            video_poll: PollPolicy {
                interval: Duration::from_secs(5),
                max_interval: Duration::from_secs(15),
                multiplier: 1.5,
                deadline: Duration::from_secs(900),
            },
            template_id: String::new(),
            check_template: true,
            template_check_ttl: Self::DEFAULT_TEMPLATE_CHECK_TTL,
            audio_element: "Audio".into(),
            title_element: "Title".into(),
            captions_element: "Captions".into(),
            caption_words_per_line: 8,
            song_credits: 12,
            callback_poll_interval: Duration::from_secs(120),
            not_found_grace: Duration::from_secs(30),
        }
    }
}

impl PipelineConfig {
    /// Default `template_check_ttl`: a minute. Jobs claimed together (a worker claims up to
    /// `serve.concurrency` at once, every second) share one read instead of queueing for
    /// Creatomate's quota one slot (333 ms) each, and at the account's ceiling (~88 jobs a
    /// minute) the checks take one request a minute instead of one per job; a template edited or
    /// deleted meanwhile is noticed within a minute (by a render that fails, at worst).
    pub const DEFAULT_TEMPLATE_CHECK_TTL: Duration = Duration::from_secs(60);
    /// The longest `template_check_ttl`: a template edited or deleted during a longer one would
    /// go unnoticed by the free check while many jobs pay for lyrics and a song whose render then
    /// fails.
    pub const MAX_TEMPLATE_CHECK_TTL: Duration = Duration::from_secs(3600);

    /// Checks every value, naming the key (`pipeline.song_poll.interval`, …).
    ///
    /// # Errors
    ///
    /// A [`PipelineConfigError`] with the key and the reason.
    pub fn validate(&self) -> Result<(), PipelineConfigError> {
        let poll = |name: &str, p: &PollPolicy| {
            p.validate().map_err(|e: PolicyError| PipelineConfigError {
                key: format!("pipeline.{name}.{}", e.field()),
                reason: e.reason().to_owned(),
            })
        };
        poll("song_poll", &self.song_poll)?;
        poll("video_poll", &self.video_poll)?;
        for (key, value) in [
            ("audio_element", &self.audio_element),
            ("title_element", &self.title_element),
            ("captions_element", &self.captions_element),
        ] {
            if value.trim().is_empty() {
                return Err(PipelineConfigError {
                    key: format!("pipeline.{key}"),
                    reason: "must not be empty".into(),
                });
            }
        }
        if self.callback_poll_interval.is_zero() {
            return Err(PipelineConfigError {
                key: "pipeline.callback_poll_interval".into(),
                reason: "must be greater than zero".into(),
            });
        }
        if self.template_check_ttl > Self::MAX_TEMPLATE_CHECK_TTL {
            return Err(PipelineConfigError {
                key: "pipeline.template_check_ttl".into(),
                reason: format!(
                    "must be at most {} (a template edited or deleted would go unnoticed that long; 0s checks it for every job)",
                    fmt_duration(Self::MAX_TEMPLATE_CHECK_TTL)
                ),
            });
        }
        if self.caption_words_per_line == 0 {
            return Err(PipelineConfigError {
                key: "pipeline.caption_words_per_line".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// A pipeline setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {key}: {reason}")]
pub struct PipelineConfigError {
    key: String,
    reason: String,
}

impl PipelineConfigError {
    /// The offending key, as written in `encore.toml`.
    pub fn key(&self) -> &str {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// The rows of the "# Defaults" table in this file's documentation comments (`///` lines
    /// only, so the strings in this test cannot match themselves), as key → default cell.
    fn documented_defaults() -> BTreeMap<String, String> {
        include_str!("config.rs")
            .lines()
            .filter_map(|line| line.trim_start().strip_prefix("///"))
            .filter_map(|doc| doc.trim().strip_prefix("| `"))
            .map(|row| {
                let cells: Vec<&str> = row.split(" | ").collect();
                let key = cells[0].trim_end_matches('`');
                (key.to_owned(), cells[1].to_owned())
            })
            .collect()
    }

    /// The default cell the table should hold for a key, written from its value as
    /// `encore.toml` spells it: `false`, `8`, `"Audio"` (text), `10m` (a duration), or a poll
    /// policy as `` `10s` → ×1.5 → `30s`, `10m` deadline ``.
    fn expected_cell(value: &serde_json::Value) -> Vec<String> {
        use serde_json::Value;
        match value {
            Value::Object(poll) => {
                let text = |key: &str| poll[key].as_str().unwrap().to_owned();
                vec![format!(
                    "`{}` → ×{} → `{}`, `{}` deadline",
                    text("interval"),
                    poll["multiplier"],
                    text("max_interval"),
                    text("deadline")
                )]
            }
            // Durations and text both serialize as strings: a duration is written bare, text
            // in quotes.
            Value::String(text) => vec![format!("`{text}`"), format!("`{value}`")],
            other => vec![format!("`{other}`")],
        }
    }

    #[test]
    fn defaults_match_the_table_and_validate() {
        let c = PipelineConfig::default();
        c.validate().unwrap();
        let serde_json::Value::Object(values) = serde_json::to_value(&c).unwrap() else {
            panic!("a table");
        };
        let documented = documented_defaults();
        assert_eq!(
            documented.keys().collect::<BTreeSet<_>>(),
            values.keys().collect::<BTreeSet<_>>(),
            "every setting has a row, and every row a setting"
        );
        for (key, value) in &values {
            let cell = &documented[key];
            let expected = expected_cell(value);
            assert!(
                expected.contains(cell),
                "`{key}`: the table says {cell}, the default is {}",
                expected.join(" or ")
            );
        }
    }

    #[test]
    fn the_table_reader_reads_doc_lines_only() {
        // This row is in the file, but not in a doc comment: the reader must skip it.
        let row = "| `not_a_setting` | `1` | written in a test |";
        assert!(include_str!("config.rs").contains(row));
        assert!(!documented_defaults().contains_key("not_a_setting"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut c = PipelineConfig::default();
        c.song_poll.interval = Duration::from_secs(99);
        assert_eq!(
            c.validate().unwrap_err().key(),
            "pipeline.song_poll.interval"
        );
        let c = PipelineConfig {
            captions_element: " ".into(),
            ..PipelineConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key(), "pipeline.captions_element");
    }

    #[test]
    fn the_template_check_lifetime_is_zero_to_an_hour() {
        let with = |ttl: Duration| PipelineConfig {
            template_check_ttl: ttl,
            ..PipelineConfig::default()
        };
        with(Duration::ZERO).validate().unwrap();
        with(PipelineConfig::MAX_TEMPLATE_CHECK_TTL)
            .validate()
            .unwrap();
        let err = with(PipelineConfig::MAX_TEMPLATE_CHECK_TTL + Duration::from_millis(1))
            .validate()
            .unwrap_err();
        assert_eq!(err.key(), "pipeline.template_check_ttl");
        assert!(
            err.to_string()
                .starts_with("invalid config: pipeline.template_check_ttl: must be at most 60m"),
            "{err}"
        );
        // Written as a duration, like the other durations of the table; a bare number or a
        // word is refused by the reader.
        let read = |toml: &str| serde_json::from_value::<PipelineConfig>(toml_like(toml));
        assert_eq!(
            read("0s").unwrap().template_check_ttl,
            Duration::ZERO,
            "0s: every job reads"
        );
        assert_eq!(
            read("90s").unwrap().template_check_ttl,
            Duration::from_secs(90)
        );
        assert!(read("soon").is_err());
    }

    /// `{ "template_check_ttl": value }`, as a file would hold it.
    fn toml_like(value: &str) -> serde_json::Value {
        serde_json::json!({ "template_check_ttl": value })
    }
}
