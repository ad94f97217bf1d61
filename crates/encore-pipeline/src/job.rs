//! The job model: one pipeline run persisted as a **job** of journaled **steps**, so that a
//! crash, a Ctrl-C or a lost answer does not throw away work that was paid for
//! (`shared/design/service.md`, "Jobs and steps").
//!
//! The pipeline writes its progress through a [`Journal`]; the job store (SQLite or
//! PostgreSQL) implements it for a job it holds a lease on, and tests use [`MemoryJournal`].
//!
//! **Write-ahead rule for billed steps.** Before a billed request (Suno generate, Creatomate
//! render) is sent, its step is stored as [`StepState::InFlight`] with its correlation token;
//! after the answer its external id is stored and the step is [`StepState::Done`] before anything
//! else happens. A billed step found `InFlight` when a job is loaded was possibly sent: it is
//! [`StepState::Unknown`], never resubmitted by itself ([`StepRecord::on_load`]).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Stage;

/// A job's state: `queued → running → succeeded | failed | needs_attention | cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it and runs its steps.
    Running,
    /// The video exists.
    Succeeded,
    /// Stopped on an error; `encore run --resume` (or a resubmitted API job) runs it again from
    /// the failed step.
    Failed,
    /// A billed step's outcome is unknown and no callback resolved it: an operator adopts an
    /// external id or accepts paying twice.
    NeedsAttention,
    /// Cancelled on request.
    Cancelled,
}

impl JobStatus {
    /// Every status.
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::NeedsAttention,
        JobStatus::Cancelled,
    ];

    /// `queued`, `running`, `succeeded`, `failed`, `needs_attention` or `cancelled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::NeedsAttention => "needs_attention",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more happens to the job by itself (`succeeded`, `failed`, `cancelled`).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// The steps of a job, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StepName {
    /// Creatomate GET template, and check that the configured elements exist (free).
    #[serde(rename = "template")]
    Template,
    /// Suno GET credits: enough for one song (free).
    #[serde(rename = "credits")]
    Credits,
    /// OpenAI Responses (cents; replayed after an ambiguous failure).
    #[serde(rename = "lyrics")]
    Lyrics,
    /// Suno generate (**billed**).
    #[serde(rename = "song.submit")]
    SongSubmit,
    /// Suno callbacks and/or record-info polling (free).
    #[serde(rename = "song.wait")]
    SongWait,
    /// Suno timestamped lyrics (free).
    #[serde(rename = "song.timestamps")]
    SongTimestamps,
    /// Creatomate render (**billed**).
    #[serde(rename = "video.submit")]
    VideoSubmit,
    /// Creatomate webhook and/or render polling (free).
    #[serde(rename = "video.wait")]
    VideoWait,
}

impl StepName {
    /// Every step, in order.
    pub const ALL: [StepName; 8] = [
        StepName::Template,
        StepName::Credits,
        StepName::Lyrics,
        StepName::SongSubmit,
        StepName::SongWait,
        StepName::SongTimestamps,
        StepName::VideoSubmit,
        StepName::VideoWait,
    ];

    /// `template`, `credits`, `lyrics`, `song.submit`, `song.wait`, `song.timestamps`,
    /// `video.submit` or `video.wait`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepName::Template => "template",
            StepName::Credits => "credits",
            StepName::Lyrics => "lyrics",
            StepName::SongSubmit => "song.submit",
            StepName::SongWait => "song.wait",
            StepName::SongTimestamps => "song.timestamps",
            StepName::VideoSubmit => "video.submit",
            StepName::VideoWait => "video.wait",
        }
    }

    /// Whether the step's request is billed and must never be sent twice (Suno generate,
    /// Creatomate render).
    pub const fn is_billed(self) -> bool {
        matches!(self, StepName::SongSubmit | StepName::VideoSubmit)
    }

    /// The stage the step belongs to.
    pub const fn stage(self) -> Stage {
        match self {
            StepName::Lyrics => Stage::Lyrics,
            StepName::Credits
            | StepName::SongSubmit
            | StepName::SongWait
            | StepName::SongTimestamps => Stage::Song,
            StepName::Template | StepName::VideoSubmit | StepName::VideoWait => Stage::Video,
        }
    }
}

/// A step's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started, or to be run again (its last run provably did not bill anything).
    Pending,
    /// Started: for a billed step, its request may be on the wire.
    InFlight,
    /// A billed request may have run but its answer was lost: never resubmitted by itself.
    Unknown,
    /// Finished; its external id and result are stored.
    Done,
    /// Ended in an error that provably billed nothing (or on a free step); running the job
    /// again runs the step again.
    Failed,
}

impl StepState {
    /// `pending`, `in_flight`, `unknown`, `done` or `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::InFlight => "in_flight",
            StepState::Unknown => "unknown",
            StepState::Done => "done",
            StepState::Failed => "failed",
        }
    }
}

macro_rules! string_enum {
    ($ty:ident, $what:literal, [$($variant:expr),+ $(,)?]) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                [$($variant),+]
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName { what: $what, name: s.to_owned() })
            }
        }
    };
}

string_enum!(
    JobStatus,
    "job status",
    [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::NeedsAttention,
        JobStatus::Cancelled,
    ]
);
string_enum!(
    StepName,
    "step",
    [
        StepName::Template,
        StepName::Credits,
        StepName::Lyrics,
        StepName::SongSubmit,
        StepName::SongWait,
        StepName::SongTimestamps,
        StepName::VideoSubmit,
        StepName::VideoWait,
    ]
);
string_enum!(
    StepState,
    "step state",
    [
        StepState::Pending,
        StepState::InFlight,
        StepState::Unknown,
        StepState::Done,
        StepState::Failed,
    ]
);

/// A name that is not a known status, step or state (e.g. read from a database written by a
/// newer encore).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    what: &'static str,
    name: String,
}

/// Milliseconds since the Unix epoch, as stored.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// One step of a job, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Which step.
    pub name: StepName,
    /// Its state.
    pub state: StepState,
    /// How many times it was started.
    pub attempts: u32,
    /// The provider's id for what the step created or watches (Suno task id, render id).
    pub external_id: Option<String>,
    /// The token that names this job and step in callback URLs (billed steps).
    pub correlation: Option<String>,
    /// What the step produced (JSON), once done.
    pub result: Option<Value>,
    /// The last error, as displayed.
    pub error: Option<String>,
    /// When it was first started.
    pub started_at: Option<Millis>,
    /// When it last finished (done, failed or unknown).
    pub finished_at: Option<Millis>,
}

impl StepRecord {
    /// A step that has not started.
    pub const fn pending(name: StepName) -> StepRecord {
        StepRecord {
            name,
            state: StepState::Pending,
            attempts: 0,
            external_id: None,
            correlation: None,
            result: None,
            error: None,
            started_at: None,
            finished_at: None,
        }
    }

    /// The state this record means when a job is picked up again after its last runner
    /// stopped: a billed step left `InFlight` was possibly sent, so it is `Unknown`; a free step
    /// left `InFlight` is simply run again (`Pending`).
    pub const fn on_load(&self) -> StepState {
        match self.state {
            StepState::InFlight if self.name.is_billed() => StepState::Unknown,
            StepState::InFlight => StepState::Pending,
            state => state,
        }
    }
}

/// Why a journal write failed. The pipeline stops on it: a billed request is never sent when
/// its `in_flight` record could not be stored.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct JournalError {
    message: String,
    lease_lost: bool,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl JournalError {
    /// A failed write, with its cause.
    pub fn new(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> JournalError {
        JournalError {
            message: message.into(),
            lease_lost: false,
            source: Some(source.into()),
        }
    }

    /// Another worker holds the job now (this one's lease expired): nothing was written.
    pub fn lease_lost(message: impl Into<String>) -> JournalError {
        JournalError {
            message: message.into(),
            lease_lost: true,
            source: None,
        }
    }

    /// Whether the write was refused because this runner no longer holds the job.
    pub const fn is_lease_lost(&self) -> bool {
        self.lease_lost
    }
}

/// A boxed future of a journal operation.
pub type JournalFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, JournalError>> + Send + 'a>>;

/// Where a running pipeline stores its steps: the job store, for a job this runner holds (every
/// write conditional on its lease), or [`MemoryJournal`] in tests.
pub trait Journal: Send + Sync {
    /// Every stored step of the job (steps never started may be absent).
    fn load(&self) -> JournalFuture<'_, Vec<StepRecord>>;

    /// Stores `step` as `in_flight` (attempts + 1; `started_at` on the first start) with its
    /// correlation token, before its request is sent.
    fn start<'a>(&'a self, step: StepName, correlation: Option<&'a str>) -> JournalFuture<'a, ()>;

    /// Stores `step` as `done` with the provider's id and what it produced.
    fn finish<'a>(
        &'a self,
        step: StepName,
        external_id: Option<&'a str>,
        result: &'a Value,
    ) -> JournalFuture<'a, ()>;

    /// Stores `step` as `state` (`pending`, `unknown` or `failed`) with the error.
    fn fail<'a>(
        &'a self,
        step: StepName,
        state: StepState,
        error: &'a str,
    ) -> JournalFuture<'a, ()>;
}

/// A [`Journal`] in memory (clones share it), for tests and for runs that keep no journal.
#[derive(Debug, Clone, Default)]
pub struct MemoryJournal {
    steps: Arc<Mutex<BTreeMap<StepName, StepRecord>>>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> MemoryJournal {
        MemoryJournal::default()
    }

    /// The stored steps, in order.
    pub fn snapshot(&self) -> Vec<StepRecord> {
        self.steps
            .lock()
            .expect("journal lock")
            .values()
            .cloned()
            .collect()
    }

    /// Replaces a step's record (to set up a test, or as an operator's resolution does).
    pub fn put(&self, record: StepRecord) {
        self.steps
            .lock()
            .expect("journal lock")
            .insert(record.name, record);
    }

    fn update(&self, step: StepName, change: impl FnOnce(&mut StepRecord)) {
        let mut steps = self.steps.lock().expect("journal lock");
        let record = steps
            .entry(step)
            .or_insert_with(|| StepRecord::pending(step));
        change(record);
    }
}

impl Journal for MemoryJournal {
    fn load(&self) -> JournalFuture<'_, Vec<StepRecord>> {
        let steps = self.snapshot();
        Box::pin(async move { Ok(steps) })
    }

    fn start<'a>(&'a self, step: StepName, correlation: Option<&'a str>) -> JournalFuture<'a, ()> {
        let now = now_millis();
        self.update(step, |r| {
            r.state = StepState::InFlight;
            r.attempts += 1;
            r.started_at.get_or_insert(now);
            if let Some(token) = correlation {
                r.correlation = Some(token.to_owned());
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn finish<'a>(
        &'a self,
        step: StepName,
        external_id: Option<&'a str>,
        result: &'a Value,
    ) -> JournalFuture<'a, ()> {
        let now = now_millis();
        self.update(step, |r| {
            r.state = StepState::Done;
            r.external_id = external_id.map(str::to_owned);
            r.result = Some(result.clone());
            r.error = None;
            r.finished_at = Some(now);
        });
        Box::pin(async { Ok(()) })
    }

    fn fail<'a>(
        &'a self,
        step: StepName,
        state: StepState,
        error: &'a str,
    ) -> JournalFuture<'a, ()> {
        let now = now_millis();
        self.update(step, |r| {
            r.state = state;
            r.error = Some(error.to_owned());
            r.finished_at = Some(now);
        });
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for step in StepName::ALL {
            assert_eq!(step.as_str().parse::<StepName>().unwrap(), step);
            assert_eq!(
                serde_json::to_value(step).unwrap(),
                Value::from(step.as_str())
            );
        }
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>().unwrap(), status);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                Value::from(status.as_str())
            );
        }
        for state in [
            StepState::Pending,
            StepState::InFlight,
            StepState::Unknown,
            StepState::Done,
            StepState::Failed,
        ] {
            assert_eq!(state.as_str().parse::<StepState>().unwrap(), state);
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                Value::from(state.as_str())
            );
        }
        let err = "song.resubmit".parse::<StepName>().unwrap_err();
        assert_eq!(err.to_string(), "unknown step \"song.resubmit\"");
    }

    #[test]
    fn only_succeeded_failed_and_cancelled_are_final() {
        let finals: Vec<_> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(
            finals,
            [
                JobStatus::Succeeded,
                JobStatus::Failed,
                JobStatus::Cancelled
            ],
            "a job needing attention, queued or running is not over"
        );
    }

    #[tokio::test]
    async fn the_journal_stamps_steps_with_the_wall_clock() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as Millis;
        let journal = MemoryJournal::new();
        journal.start(StepName::Lyrics, None).await.unwrap();
        let record = journal
            .snapshot()
            .into_iter()
            .find(|r| r.name == StepName::Lyrics)
            .unwrap();
        let started = record.started_at.expect("stamped");
        assert!(
            started >= before && started - before < 60_000,
            "{started} vs {before}"
        );
        assert_eq!(record.state, StepState::InFlight);
    }

    #[test]
    fn a_lost_lease_is_told_apart_from_a_failed_write() {
        use std::error::Error as _;
        let lost = JournalError::lease_lost("another worker holds the job");
        assert!(lost.is_lease_lost());
        assert!(lost.source().is_none());
        let failed = JournalError::new("could not write", std::io::Error::other("disk full"));
        assert!(!failed.is_lease_lost());
        assert_eq!(failed.to_string(), "could not write");
        assert_eq!(failed.source().unwrap().to_string(), "disk full");
    }

    #[test]
    fn only_submits_are_billed() {
        let billed: Vec<_> = StepName::ALL
            .into_iter()
            .filter(|s| s.is_billed())
            .collect();
        assert_eq!(billed, [StepName::SongSubmit, StepName::VideoSubmit]);
    }

    #[test]
    fn a_billed_step_left_in_flight_is_unknown() {
        let mut record = StepRecord::pending(StepName::SongSubmit);
        record.state = StepState::InFlight;
        assert_eq!(record.on_load(), StepState::Unknown);
        record.name = StepName::SongWait;
        assert_eq!(record.on_load(), StepState::Pending);
        record.state = StepState::Done;
        assert_eq!(record.on_load(), StepState::Done);
    }

    #[tokio::test]
    async fn memory_journal_records_steps() {
        let journal = MemoryJournal::new();
        journal
            .start(StepName::SongSubmit, Some("tok"))
            .await
            .unwrap();
        journal.start(StepName::SongSubmit, None).await.unwrap();
        journal
            .finish(StepName::SongSubmit, Some("task-1"), &Value::Null)
            .await
            .unwrap();
        let steps = journal.load().await.unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].attempts, 2);
        assert_eq!(steps[0].state, StepState::Done);
        assert_eq!(steps[0].external_id.as_deref(), Some("task-1"));
    }
}
