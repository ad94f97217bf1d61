//! The lyric → song → video pipeline.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use encore_clients::creatomate::{Render, RenderRequest, RenderStatus};
use encore_clients::suno::{GenerateRequest, TaskRecord, TaskStatus};
use encore_clients::{
    ApiKey, BreakerNotice, CallObserver, CallRecord, Config, CreatomateClient, Http, OpenAiClient,
    RetryNotice, Service, SunoClient,
};
use encore_resilience::{PollError, PollPolicy, PollState, poll_until};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::captions::{Caption, TimedWord, captions, round_ms, spread};
use crate::lyrics::{self, Lyrics, SunoLimits};
use crate::{BusinessInput, Event, PipelineConfig, PipelineError, Stage};

/// A status read refused by our own protections (circuit open, rate-limit queue too long): the
/// job is paid for and still running, so polling goes on until its own deadline.
fn look_again_later(e: &encore_clients::Error) -> bool {
    e.is_circuit_open() || e.is_throttled()
}

/// A submitted job, for polling and its errors.
#[derive(Clone, Copy)]
struct Job<'a> {
    stage: Stage,
    what: &'static str,
    id: &'a str,
    /// The status already reported when it was submitted, if any.
    seen: &'a str,
}

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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    sink: RwLock<Option<Sink>>,
    calls: Mutex<Vec<CallRecord>>,
}

impl Shared {
    fn emit(&self, event: &Event) {
        let sink = self.sink.read().expect("event sink lock").clone();
        if let Some(sink) = sink {
            sink(event);
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
    fn retrying(&self, notice: &RetryNotice) {
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
/// limiter.
pub struct Pipeline {
    openai: OpenAiClient,
    suno: SunoClient,
    creatomate: CreatomateClient,
    settings: PipelineConfig,
    suno_model: String,
    callback_url: String,
    shared: Arc<Shared>,
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
        Self {
            openai: OpenAiClient::new(http.clone(), config, keys.openai)
                .with_observer(observer.clone()),
            suno: SunoClient::new(http.clone(), config, keys.suno).with_observer(observer.clone()),
            creatomate: CreatomateClient::new(http.clone(), config, keys.creatomate)
                .with_observer(observer),
            settings,
            suno_model: config.suno.model.clone(),
            callback_url: config.suno.callback_url.clone(),
            shared,
        }
    }

    /// Sends every [`Event`] to `sink` (replacing any earlier one).
    pub fn on_event(self, sink: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        *self.shared.sink.write().expect("event sink lock") = Some(Arc::new(sink));
        self
    }

    /// The pipeline's settings.
    pub fn settings(&self) -> &PipelineConfig {
        &self.settings
    }

    fn emit(&self, event: Event) {
        self.shared.emit(&event);
    }

    /// Validates everything that can be checked before a billed call: the input, the settings and
    /// the template id.
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

    /// Runs lyrics → song → video. Never panics on a failed call: the [`Report`] holds the error
    /// and whatever the finished stages produced.
    pub async fn run(&self, input: &BusinessInput) -> Report {
        let start = Instant::now();
        let mut report = Report::default();
        if let Err(e) = self.run_stages(input, &mut report).await {
            report.error = Some(e);
        }
        report.calls = std::mem::take(&mut *self.shared.calls.lock().expect("calls lock"));
        report.elapsed = start.elapsed();
        report
    }

    async fn run_stages(
        &self,
        input: &BusinessInput,
        report: &mut Report,
    ) -> Result<(), PipelineError> {
        self.preflight(input)?;
        if self.settings.check_template {
            // A free read that proves Creatomate is reachable and the template exists before
            // anything billed (lyrics, the Suno task) is spent on a video that cannot be made.
            let template = self.creatomate.template(&self.settings.template_id).await?;
            self.emit(Event::Note {
                stage: Stage::Video,
                message: format!("template \"{}\" ({}) is ready", template.name, template.id),
            });
        }
        // Each stage's future is boxed: together they would make `run` a ~20 KiB future.
        let lyrics = Box::pin(self.lyrics(input)).await?;
        report.lyrics = Some(lyrics.clone());
        let song = Box::pin(self.song(&lyrics)).await?;
        report.song = Some(song.clone());
        let video_input = VideoInput {
            audio_url: song.audio_url.clone(),
            title: lyrics.title.clone(),
            captions: song.captions.clone(),
            metadata: Some(format!("encore suno-task={}", song.task_id)),
        };
        let video = Box::pin(self.video(&video_input)).await?;
        report.video = Some(video);
        Ok(())
    }

    async fn stage<T>(
        &self,
        stage: Stage,
        work: impl Future<Output = Result<T, PipelineError>>,
        summary: impl Fn(&T) -> String,
    ) -> Result<T, PipelineError> {
        let start = Instant::now();
        self.emit(Event::StageStarted { stage });
        let result = work.await;
        match &result {
            Ok(value) => self.emit(Event::StageFinished {
                stage,
                elapsed: start.elapsed(),
                summary: summary(value),
            }),
            Err(e) => self.emit(Event::StageFailed {
                stage,
                error: e.to_string(),
            }),
        }
        result
    }

    /// The lyrics stage alone: a structured-output call to OpenAI, fitted to Suno's limits.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Input`] for bad input; [`PipelineError::Call`] when OpenAI fails.
    pub async fn lyrics(&self, input: &BusinessInput) -> Result<Lyrics, PipelineError> {
        input.validate()?;
        self.stage(
            Stage::Lyrics,
            async {
                let limits = SunoLimits::for_model(&self.suno_model);
                let mut draft: Lyrics = self
                    .openai
                    .structured(
                        &lyrics::instructions(input, limits),
                        &lyrics::prompt(input),
                        "song_lyrics",
                    )
                    .await?;
                for note in lyrics::fit_to_limits(&mut draft, limits) {
                    self.emit(Event::Note {
                        stage: Stage::Lyrics,
                        message: note,
                    });
                }
                if !lyrics::has_sections(&draft.lyrics) {
                    self.emit(Event::Note {
                        stage: Stage::Lyrics,
                        message: "the lyrics have no [Verse]/[Chorus] tags".into(),
                    });
                }
                Ok(draft)
            },
            |l| {
                format!(
                    "\"{}\" ({} characters, {})",
                    l.title,
                    l.lyrics.chars().count(),
                    l.style
                )
            },
        )
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
        self.stage(Stage::Song, self.make_song(lyrics), |s| s.audio_url.clone())
            .await
    }

    async fn make_song(&self, lyrics: &Lyrics) -> Result<Song, PipelineError> {
        let request = GenerateRequest {
            custom_mode: true,
            instrumental: false,
            model: self.suno_model.clone(),
            call_back_url: self.callback_url.clone(),
            prompt: Some(lyrics.lyrics.clone()),
            style: Some(lyrics.style.clone()),
            title: Some(lyrics.title.clone()),
            negative_tags: None,
            vocal_gender: None,
        };
        let task_id = self.suno.generate(&request).await?;
        self.emit(Event::StatusChanged {
            stage: Stage::Song,
            status: format!("task {task_id} submitted"),
        });
        let accept_first = self.settings.accept_first_success;
        let job = Job {
            stage: Stage::Song,
            what: "Suno task",
            id: &task_id,
            seen: "",
        };
        let record = self
            .wait_for(
                job,
                &self.settings.song_poll,
                || self.suno.task_status(&task_id),
                |record: &TaskRecord| {
                    let status = record.status.as_str();
                    let done = match &record.status {
                        TaskStatus::Success => true,
                        TaskStatus::FirstSuccess => {
                            accept_first && record.tracks.iter().any(|t| !t.audio_url.is_empty())
                        }
                        other => other.is_terminal(),
                    };
                    (status.to_owned(), done)
                },
            )
            .await?;
        self.finish_song(task_id, record, &lyrics.lyrics).await
    }

    async fn finish_song(
        &self,
        task_id: String,
        record: TaskRecord,
        lyrics: &str,
    ) -> Result<Song, PipelineError> {
        let track = record.tracks.iter().find(|t| !t.audio_url.is_empty());
        // CALLBACK_EXCEPTION only means Suno could not reach our callback URL: the generation may
        // well have succeeded, so tracks decide (sunoapi.org docs, apis.md 1.5).
        let failed = record.status.is_failure()
            && !(record.status == TaskStatus::CallbackException && track.is_some());
        if failed {
            return Err(PipelineError::SongFailed {
                task_id,
                status: record.status.as_str().to_owned(),
                message: record.error_message.clone(),
            });
        }
        let Some(track) = track else {
            return Err(PipelineError::NoTrack {
                task_id,
                status: record.status.as_str().to_owned(),
            });
        };
        let words = self.settings.caption_words_per_line;
        let (captions, timed) = match self.suno.timestamped_lyrics(&task_id, &track.id).await {
            Ok(aligned) if !aligned.aligned_words.is_empty() => (
                captions(
                    aligned.aligned_words.iter().map(|w| TimedWord {
                        word: &w.word,
                        start: w.start_s,
                        end: w.end_s,
                    }),
                    words,
                ),
                true,
            ),
            // The song is paid for and playable; captions are not worth losing it over.
            outcome => {
                let why = match outcome {
                    Err(e) => e.to_string(),
                    Ok(_) => "no aligned words".to_owned(),
                };
                self.emit(Event::Note {
                    stage: Stage::Song,
                    message: format!(
                        "captions spread evenly: timestamped lyrics unavailable ({why})"
                    ),
                });
                (spread(lyrics, track.duration.unwrap_or(120.0)), false)
            }
        };
        Ok(Song {
            task_id,
            track_id: track.id.clone(),
            audio_url: track.audio_url.clone(),
            duration: track.duration,
            captions,
            timed_captions: timed,
        })
    }

    /// Polls a submitted job until `judge` says it is done (or its deadline passes), emitting a
    /// [`Event::StatusChanged`] whenever the status changes. Status reads refused by our own
    /// protections mean "look again later": the job is paid for and still running.
    async fn wait_for<T, F, Fut>(
        &self,
        job: Job<'_>,
        policy: &PollPolicy,
        mut fetch: F,
        judge: impl Fn(&T) -> (String, bool),
    ) -> Result<T, PipelineError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, encore_clients::Error>>,
    {
        let last = Mutex::new(job.seen.to_owned());
        let (last, judge) = (&last, &judge);
        let polled = poll_until(policy, |_| {
            let read = fetch();
            async move {
                let value = match read.await {
                    Ok(value) => value,
                    Err(e) if look_again_later(&e) => {
                        return Ok(PollState::pending(format!("waiting ({e})")));
                    }
                    Err(e) => return Err(e),
                };
                let (status, done) = judge(&value);
                self.status_changed(job.stage, last, &status);
                Ok(if done {
                    PollState::Ready(value)
                } else {
                    PollState::pending(status)
                })
            }
        })
        .await;
        polled.map_err(|e| match e {
            PollError::Check(e) => e.into(),
            PollError::Deadline {
                deadline,
                checks,
                last_status,
            } => PipelineError::StillPending {
                stage: job.stage,
                what: job.what,
                id: job.id.to_owned(),
                status: last_status,
                deadline,
                checks,
            },
        })
    }

    fn status_changed(&self, stage: Stage, last: &Mutex<String>, status: &str) {
        let mut last = last.lock().expect("status lock");
        if *last != status {
            status.clone_into(&mut last);
            self.emit(Event::StatusChanged {
                stage,
                status: status.to_owned(),
            });
        }
    }

    /// The Creatomate modifications for `input`, using the configured element names.
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
        if let (Some(first), Some(last)) = (input.captions.first(), input.captions.last()) {
            let text = input
                .captions
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            m.insert(format!("{}.text", s.captions_element), Value::from(text));
            m.insert(
                format!("{}.time", s.captions_element),
                Value::from(round_ms(first.start)),
            );
            m.insert(
                format!("{}.duration", s.captions_element),
                Value::from(round_ms((last.end - first.start).max(0.0))),
            );
        }
        m
    }

    /// The video stage alone: one render (submitted once, never replayed after an ambiguous
    /// failure), polled until it succeeds or fails.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Call`], [`PipelineError::RenderFailed`] or [`PipelineError::StillPending`].
    pub async fn video(&self, input: &VideoInput) -> Result<Video, PipelineError> {
        self.check_template()?;
        self.stage(Stage::Video, self.make_video(input), |v| v.url.clone())
            .await
    }

    async fn make_video(&self, input: &VideoInput) -> Result<Video, PipelineError> {
        let request = RenderRequest {
            template_id: self.settings.template_id.clone(),
            modifications: self.modifications(input),
            output_format: Some("mp4".into()),
            metadata: input.metadata.clone(),
            webhook_url: None,
        };
        let render = self.creatomate.render(&request).await?;
        let render_id = render.id.clone();
        self.emit(Event::StatusChanged {
            stage: Stage::Video,
            status: render.status.as_str().to_owned(),
        });
        let job = Job {
            stage: Stage::Video,
            what: "render",
            id: &render_id,
            seen: render.status.as_str(),
        };
        let render = self
            .wait_for(
                job,
                &self.settings.video_poll,
                || self.creatomate.render_status(&render_id),
                |render: &Render| {
                    (
                        render.status.as_str().to_owned(),
                        render.status.is_terminal(),
                    )
                },
            )
            .await?;
        match (&render.status, render.url.clone()) {
            (RenderStatus::Succeeded, Some(url)) if !url.is_empty() => Ok(Video {
                render_id,
                url,
                duration: render.duration,
            }),
            (status, _) => Err(PipelineError::RenderFailed {
                render_id,
                message: render
                    .error_message
                    .clone()
                    .unwrap_or_else(|| format!("finished as {} without a URL", status.as_str())),
            }),
        }
    }
}
