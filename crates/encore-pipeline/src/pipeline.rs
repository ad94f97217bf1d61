//! The lyric → song → video pipeline: its clients, settings, events and results. The steps
//! themselves, and how a job is resumed from its journal, are in `steps.rs`.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use encore_clients::{
    ApiKey, AttemptRecord, BreakerNotice, CallObserver, CallRecord, Config, CreatomateClient,
    Endpoint, Http, OpenAiClient, RefusalNotice, RetryNotice, Service, SunoClient,
};
use encore_resilience::rate_limit::RateLimiter;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::captions::Caption;
use crate::context::{JobContext, StopSignal};
use crate::job::MemoryJournal;
use crate::lyrics::Lyrics;
use crate::steps::Steps;
use crate::template::TemplateChecks;
use crate::transcript;
use crate::{BusinessInput, Event, PipelineConfig, PipelineError, Stage};

/// The three services' API keys.
#[derive(Clone, Debug)]
pub struct Keys {
    /// `OPENAI_API_KEY`.
    pub openai: ApiKey,
    /// `SUNO_API_KEY`.
    pub suno: ApiKey,
    /// `CREATOMATE_API_KEY`.
    pub creatomate: ApiKey,
}

/// The song the song stage made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Song {
    /// The Suno task.
    pub task_id: String,
    /// The track used (Suno makes two).
    pub track_id: String,
    /// Its audio URL.
    pub audio_url: String,
    /// Its length in seconds, when known.
    pub duration: Option<f64>,
    /// Caption lines timed from the aligned lyrics.
    pub captions: Vec<Caption>,
    /// Whether `captions` are timed from Suno's alignment (`false`: spread evenly, because the
    /// timestamped lyrics could not be had).
    pub timed_captions: bool,
}

/// What the video stage needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInput {
    /// The song's audio URL.
    pub audio_url: String,
    /// The title shown in the video.
    pub title: String,
    /// Caption lines (may be empty).
    pub captions: Vec<Caption>,
    /// An opaque tag stored with the render (e.g. the Suno task id), to find it again.
    pub metadata: Option<String>,
}

/// The video the video stage rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Video {
    /// The Creatomate render.
    pub render_id: String,
    /// Where the video can be downloaded.
    pub url: String,
    /// Its length in seconds, when known.
    pub duration: Option<f64>,
}

/// Everything a run produced, including partial results when it failed.
#[derive(Debug, Default)]
pub struct Report {
    /// The lyrics, when that stage finished.
    pub lyrics: Option<Lyrics>,
    /// The song, when that stage finished.
    pub song: Option<Song>,
    /// The video, when the run succeeded.
    pub video: Option<Video>,
    /// Why the run failed.
    pub error: Option<PipelineError>,
    /// Every logical call, in the order they finished.
    pub calls: Vec<CallRecord>,
    /// How long the run took.
    pub elapsed: Duration,
}

impl Report {
    /// Whether the run produced a video.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.video.is_some()
    }
}

type Sink = Arc<dyn Fn(&Event) + Send + Sync>;

#[derive(Default)]
struct Shared {
    sinks: RwLock<Vec<Sink>>,
    calls: Mutex<Vec<CallRecord>>,
    /// Observers of every call's attempts, refusals, retries and end (e.g. metrics).
    observers: RwLock<Vec<Arc<dyn CallObserver>>>,
}

impl Shared {
    fn emit(&self, event: &Event) {
        let sinks = self.sinks.read().expect("event sink lock").clone();
        for sink in sinks {
            sink(event);
        }
    }

    fn each_observer(&self, f: impl Fn(&dyn CallObserver)) {
        for observer in self.observers.read().expect("observer lock").iter() {
            f(&**observer);
        }
    }
}

struct Forwarder(Arc<Shared>);

fn stage_of(service: Service) -> Stage {
    match service {
        Service::OpenAi => Stage::Lyrics,
        Service::Suno => Stage::Song,
        Service::Creatomate => Stage::Video,
    }
}

impl CallObserver for Forwarder {
    fn attempt(&self, record: &AttemptRecord) {
        self.0.each_observer(|o| o.attempt(record));
    }

    fn refused(&self, notice: &RefusalNotice) {
        self.0.each_observer(|o| o.refused(notice));
    }

    fn retrying(&self, notice: &RetryNotice) {
        self.0.each_observer(|o| o.retrying(notice));
        self.0.emit(&Event::Retrying {
            stage: stage_of(notice.endpoint.service()),
            notice: notice.clone(),
        });
    }

    fn breaker_changed(&self, notice: &BreakerNotice) {
        self.0.emit(&Event::BreakerChanged {
            stage: stage_of(notice.service),
            notice: notice.clone(),
        });
    }

    fn finished(&self, record: &CallRecord) {
        self.0.each_observer(|o| o.finished(record));
        self.0
            .calls
            .lock()
            .expect("calls lock")
            .push(record.clone());
        self.0.emit(&Event::CallFinished {
            record: record.clone(),
        });
    }
}

/// Runs the three stages with the three clients, reporting what happens as [`Event`]s.
///
/// A `Pipeline` collects the calls of the run it is doing: make one per concurrent run. Pipelines
/// built on the same [`Http`] share its per-service retry budget, circuit breaker and rate
/// limiter; pipelines given the same [`TemplateChecks`] share a successful template check for
/// `template_check_ttl` ([`with_template_checks`](Self::with_template_checks)).
pub struct Pipeline {
    pub(crate) openai: OpenAiClient,
    pub(crate) suno: SunoClient,
    pub(crate) creatomate: CreatomateClient,
    settings: PipelineConfig,
    pub(crate) suno_model: String,
    pub(crate) callback_url: String,
    /// Per billed step (Suno generate, Creatomate render): the rate limit whose slot is taken
    /// before the step's write-ahead record, and how long the call may wait for it.
    pub(crate) billed_slots: [Option<BilledSlot>; 2],
    /// Successful template checks, shared with the other pipelines given the same ones.
    pub(crate) template_checks: TemplateChecks,
    /// The Creatomate account (a fingerprint of its key): template checks are kept per account.
    pub(crate) creatomate_account: String,
    shared: Arc<Shared>,
}

/// The rate limit a billed request waits for, taken before its `in_flight` record is written
/// (see `Steps::billed`).
#[derive(Clone)]
pub(crate) struct BilledSlot {
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) deadline: Duration,
}

impl BilledSlot {
    fn of(http: &Http, config: &Config, endpoint: Endpoint) -> Option<BilledSlot> {
        if !endpoint.counts_toward_rate_limit() {
            return None;
        }
        let limiter = http.protections().get(endpoint.service()).rate_limiter()?;
        Some(BilledSlot {
            limiter: Arc::clone(limiter),
            deadline: config.endpoint(endpoint).deadline,
        })
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("settings", &self.settings)
            .field("suno_model", &self.suno_model)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline whose clients share `http`, follow `config`'s policies and use `keys`.
    pub fn new(http: &Http, config: &Config, keys: Keys, settings: PipelineConfig) -> Self {
        let shared = Arc::new(Shared::default());
        let observer: Arc<dyn CallObserver> = Arc::new(Forwarder(shared.clone()));
        let creatomate_account = keys.creatomate.fingerprint();
        Self {
            openai: OpenAiClient::new(http.clone(), config, keys.openai)
                .with_observer(observer.clone()),
            suno: SunoClient::new(http.clone(), config, keys.suno).with_observer(observer.clone()),
            creatomate: CreatomateClient::new(http.clone(), config, keys.creatomate)
                .with_observer(observer),
            settings,
            suno_model: config.suno.model.clone(),
            callback_url: config.suno.callback_url.clone(),
            billed_slots: [
                BilledSlot::of(http, config, Endpoint::SunoGenerate),
                BilledSlot::of(http, config, Endpoint::CreatomateRender),
            ],
            template_checks: TemplateChecks::new(),
            creatomate_account,
            shared,
        }
    }

    /// Keeps this pipeline's successful template checks in `checks`, shared with every pipeline
    /// given the same ones (clones share): give all the pipelines of a worker one
    /// [`TemplateChecks`], and its jobs read the template once per `template_check_ttl` instead
    /// of once each. Without it, a pipeline keeps its own.
    pub fn with_template_checks(mut self, checks: TemplateChecks) -> Self {
        self.template_checks = checks;
        self
    }

    /// Sends every [`Event`] to `sink` too (after the sinks given before).
    pub fn on_event(self, sink: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.shared
            .sinks
            .write()
            .expect("event sink lock")
            .push(Arc::new(sink));
        self
    }

    /// Reports every call of this pipeline's clients to `observer` too: attempts, refusals,
    /// retries and finished calls (not breaker changes: watch those on the breakers, which
    /// outlive pipelines, so that each change is counted once).
    pub fn observe_calls(self, observer: Arc<dyn CallObserver>) -> Self {
        self.shared
            .observers
            .write()
            .expect("observer lock")
            .push(observer);
        self
    }

    /// The pipeline's settings.
    pub fn settings(&self) -> &PipelineConfig {
        &self.settings
    }

    pub(crate) fn emit(&self, event: Event) {
        self.shared.emit(&event);
    }

    /// Validates everything that can be checked before a billed call without a request: the
    /// input, the settings and the template id.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Input`] or [`PipelineError::Config`].
    pub fn preflight(&self, input: &BusinessInput) -> Result<(), PipelineError> {
        input.validate()?;
        self.settings.validate()?;
        self.check_template()
    }

    fn check_template(&self) -> Result<(), PipelineError> {
        if self.settings.template_id.trim().is_empty() {
            return Err(crate::InputError::new(
                "template_id",
                "is empty: set CREATOMATE_TEMPLATE_ID or pipeline.template_id".to_owned(),
            )
            .into());
        }
        Ok(())
    }

    /// Runs the whole pipeline once, keeping its steps in memory only. Never panics on a failed
    /// call: the [`Report`] holds the error and whatever the finished stages produced.
    pub async fn run(&self, input: &BusinessInput) -> Report {
        let journal = MemoryJournal::new();
        let stop = StopSignal::never();
        let ctx = JobContext {
            job_id: "-",
            journal: &journal,
            callbacks: None,
            stop: &stop,
        };
        self.run_job(input, ctx).await
    }

    /// Runs (or resumes) a job: its steps are loaded from `ctx.journal`, the done ones are
    /// skipped, and every change is stored there before the run goes on (the write-ahead rule
    /// for billed steps: see [`crate::job`]). The [`Report`] holds the error, if any, and every
    /// result the job has so far, from this run or earlier ones.
    pub async fn run_job(&self, input: &BusinessInput, ctx: JobContext<'_>) -> Report {
        let start = Instant::now();
        let mut report = Report::default();
        let result = match Steps::load(self, ctx).await {
            Ok(mut steps) => steps.all(input, &mut report).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            report.error = Some(e);
        }
        report.calls = std::mem::take(&mut *self.shared.calls.lock().expect("calls lock"));
        report.elapsed = start.elapsed();
        report
    }

    /// The lyrics stage alone: a structured-output call to OpenAI, fitted to Suno's limits.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Input`] for bad input; [`PipelineError::Call`] when OpenAI fails.
    pub async fn lyrics(&self, input: &BusinessInput) -> Result<Lyrics, PipelineError> {
        let journal = MemoryJournal::new();
        let stop = StopSignal::never();
        Steps::load(self, Self::alone(&journal, &stop))
            .await?
            .lyrics(input)
            .await
    }

    /// The song stage alone: one Suno task (submitted once, never replayed after an ambiguous
    /// failure), polled until done, then its timestamped lyrics for captions.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Call`], [`PipelineError::SongFailed`], [`PipelineError::NoTrack`] or
    /// [`PipelineError::StillPending`].
    pub async fn song(&self, lyrics: &Lyrics) -> Result<Song, PipelineError> {
        let journal = MemoryJournal::new();
        let stop = StopSignal::never();
        Steps::load(self, Self::alone(&journal, &stop))
            .await?
            .song(lyrics)
            .await
    }

    /// The video stage alone: one render (submitted once, never replayed after an ambiguous
    /// failure), polled until it succeeds or fails.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Call`], [`PipelineError::RenderFailed`] or [`PipelineError::StillPending`].
    pub async fn video(&self, input: &VideoInput) -> Result<Video, PipelineError> {
        self.check_template()?;
        let journal = MemoryJournal::new();
        let stop = StopSignal::never();
        Steps::load(self, Self::alone(&journal, &stop))
            .await?
            .video(input)
            .await
    }

    fn alone<'a>(journal: &'a MemoryJournal, stop: &'a StopSignal) -> JobContext<'a> {
        JobContext {
            job_id: "-",
            journal,
            callbacks: None,
            stop,
        }
    }

    /// The Creatomate modifications for `input`, using the configured element names: the song
    /// (`Audio.source`), the title (`Title.text`) and the captions in time
    /// (`Captions.transcript_source`: one keyframe per sung word, each line a `sentence`, with
    /// `Captions.time` 0 and `Captions.duration` to the end of the last line; see
    /// [`crate::transcript`] for the form and its sources). Without captions, the captions
    /// element is left as the template has it.
    pub fn modifications(&self, input: &VideoInput) -> Map<String, Value> {
        let s = &self.settings;
        let mut m = Map::new();
        m.insert(
            format!("{}.source", s.audio_element),
            Value::from(input.audio_url.clone()),
        );
        m.insert(
            format!("{}.text", s.title_element),
            Value::from(input.title.clone()),
        );
        if !input.captions.is_empty() {
            m.insert(
                format!("{}.transcript_source", s.captions_element),
                transcript::keyframes(&input.captions),
            );
            m.insert(format!("{}.time", s.captions_element), Value::from(0));
            m.insert(
                format!("{}.duration", s.captions_element),
                Value::from(transcript::last_line_end(&input.captions)),
            );
        }
        m
    }
}
