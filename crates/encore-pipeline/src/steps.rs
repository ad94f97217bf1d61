//! A job's steps, run in order from its journal (`shared/design/service.md`, "Jobs and steps").
//!
//! Each step is skipped when its record says `done` (its stored result is used), and run when
//! it is `pending` or `failed`. A billed step (Suno generate, Creatomate render) is stored as
//! `in_flight` before its request is sent and as `done` with the provider's id right after the
//! answer; one found `unknown` (its answer was lost, now or in an earlier run) is never sent
//! again: a verified provider callback resolves it, or the run stops and says so. Waits read
//! the provider's state again on every run instead of trusting an old record.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use encore_clients::creatomate::{Render, RenderRequest, RenderStatus, Template};
use encore_clients::suno::{AlignedWord, GenerateRequest, TaskRecord, TaskStatus};
use encore_resilience::rate_limit::with_slot_taken;
use encore_resilience::{PollError, PollPolicy, PollState, fmt_duration, poll_until};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::captions::{Caption, TimedWord, captions, spread};
use crate::context::{CallbackAddress, JobContext};
use crate::job::{JournalError, StepName, StepRecord, StepState};
use crate::lyrics::{self, Lyrics, SunoLimits};
use crate::pipeline::{Pipeline, Report, Song, Video, VideoInput};
use crate::template::{self, TemplateChecked};
use crate::visibility::is_not_found;
use crate::{BusinessInput, Event, PipelineError, Stage};

/// What the `credits` step found.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CreditsChecked {
    remaining: u64,
}

/// The track the `song.wait` step settled on.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Track {
    task_id: String,
    track_id: String,
    audio_url: String,
    duration: Option<f64>,
    status: String,
}

/// What the `song.timestamps` step made.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Captions {
    captions: Vec<Caption>,
    timed: bool,
}

/// A status read refused by our own protections (circuit open, rate-limit queue too long): the
/// job is paid for and still running, so polling goes on until its own deadline.
fn look_again_later(e: &encore_clients::Error) -> bool {
    e.is_circuit_open() || e.is_throttled()
}

/// One run of a job's steps.
pub(crate) struct Steps<'p, 'c> {
    pipeline: &'p Pipeline,
    ctx: JobContext<'c>,
    records: BTreeMap<StepName, StepRecord>,
    /// Billed steps whose provider job was created (or adopted) in this run: their waits know
    /// it has only just started.
    fresh: Vec<StepName>,
}

impl<'p, 'c> Steps<'p, 'c> {
    /// Loads the job's steps from its journal.
    pub(crate) async fn load(
        pipeline: &'p Pipeline,
        ctx: JobContext<'c>,
    ) -> Result<Steps<'p, 'c>, PipelineError> {
        let stored = ctx
            .journal
            .load()
            .await
            .map_err(|source| PipelineError::Journal {
                step: StepName::Template,
                external_id: None,
                source,
            })?;
        let records = stored.into_iter().map(|r| (r.name, r)).collect();
        Ok(Steps {
            pipeline,
            ctx,
            records,
            fresh: Vec::new(),
        })
    }

    /// Every step, in order, filling `report` as results come.
    pub(crate) async fn all(
        &mut self,
        input: &BusinessInput,
        report: &mut Report,
    ) -> Result<(), PipelineError> {
        self.pipeline.preflight(input)?;
        self.template().await?;
        self.credits().await?;
        // Each stage's future is boxed: together they would make the run a large future.
        let lyrics = Box::pin(self.lyrics(input)).await?;
        report.lyrics = Some(lyrics.clone());
        let song = Box::pin(self.song(&lyrics)).await?;
        report.song = Some(song.clone());
        let video_input = VideoInput {
            audio_url: song.audio_url.clone(),
            title: lyrics.title.clone(),
            captions: song.captions.clone(),
            metadata: None,
        };
        let video = Box::pin(self.video(&video_input)).await?;
        report.video = Some(video);
        Ok(())
    }

    // ---- the journal ------------------------------------------------------------------------

    fn record(&self, step: StepName) -> StepRecord {
        self.records
            .get(&step)
            .cloned()
            .unwrap_or_else(|| StepRecord::pending(step))
    }

    /// The step's stored result, when it is done and the result is what this version stores.
    fn stored<T: DeserializeOwned>(&self, step: StepName) -> Option<T> {
        let record = self.records.get(&step)?;
        if record.state != StepState::Done {
            return None;
        }
        serde_json::from_value(record.result.clone()?).ok()
    }

    fn journal_error(
        step: StepName,
        external_id: Option<&str>,
    ) -> impl Fn(JournalError) -> PipelineError {
        let external_id = external_id.map(str::to_owned);
        move |source| PipelineError::Journal {
            step,
            external_id: external_id.clone(),
            source,
        }
    }

    async fn start(
        &mut self,
        step: StepName,
        correlation: Option<&str>,
    ) -> Result<(), PipelineError> {
        self.ctx
            .journal
            .start(step, correlation)
            .await
            .map_err(Self::journal_error(step, None))?;
        let record = self
            .records
            .entry(step)
            .or_insert_with(|| StepRecord::pending(step));
        record.state = StepState::InFlight;
        record.attempts += 1;
        if let Some(token) = correlation {
            record.correlation = Some(token.to_owned());
        }
        self.pipeline.emit(Event::StepChanged {
            step,
            state: StepState::InFlight,
            attempt: record.attempts,
            external_id: None,
            error: None,
        });
        Ok(())
    }

    async fn finish(
        &mut self,
        step: StepName,
        external_id: Option<&str>,
        result: &impl Serialize,
    ) -> Result<(), PipelineError> {
        let value = serde_json::to_value(result).unwrap_or(Value::Null);
        self.ctx
            .journal
            .finish(step, external_id, &value)
            .await
            .map_err(Self::journal_error(step, external_id))?;
        let record = self
            .records
            .entry(step)
            .or_insert_with(|| StepRecord::pending(step));
        record.state = StepState::Done;
        record.external_id = external_id.map(str::to_owned);
        record.result = Some(value);
        record.error = None;
        self.pipeline.emit(Event::StepChanged {
            step,
            state: StepState::Done,
            attempt: record.attempts,
            external_id: record.external_id.clone(),
            error: None,
        });
        Ok(())
    }

    /// Stores the step's failure and returns `error`.
    async fn fail(
        &mut self,
        step: StepName,
        state: StepState,
        error: PipelineError,
    ) -> PipelineError {
        let text = error.to_string();
        if let Err(source) = self.ctx.journal.fail(step, state, &text).await {
            tracing::error!(step = %step, error = %source, "could not store the step's failure");
            return PipelineError::Journal {
                step,
                external_id: None,
                source,
            };
        }
        let record = self
            .records
            .entry(step)
            .or_insert_with(|| StepRecord::pending(step));
        record.state = state;
        record.error = Some(text.clone());
        self.pipeline.emit(Event::StepChanged {
            step,
            state,
            attempt: record.attempts,
            external_id: record.external_id.clone(),
            error: Some(text),
        });
        error
    }

    fn check_stop(&self, step: StepName) -> Result<(), PipelineError> {
        if self.ctx.stop.is_stopped() {
            return Err(PipelineError::Interrupted { step });
        }
        Ok(())
    }

    /// Runs `work` unless it is stopped first.
    async fn stoppable<T>(
        &self,
        step: StepName,
        work: impl Future<Output = Result<T, PipelineError>>,
    ) -> Result<T, PipelineError> {
        tokio::select! {
            result = work => result,
            () = self.ctx.stop.stopped() => Err(PipelineError::Interrupted { step }),
        }
    }

    /// A free (or replayable) step: its stored result when done, otherwise `work`, journaled.
    /// A stop cuts `work` short and leaves the step pending.
    async fn free<T, Fut>(&mut self, step: StepName, work: Fut) -> Result<T, PipelineError>
    where
        T: Serialize + DeserializeOwned,
        Fut: Future<Output = Result<T, PipelineError>>,
    {
        if let Some(value) = self.stored::<T>(step) {
            return Ok(value);
        }
        self.check_stop(step)?;
        self.start(step, None).await?;
        match self.stoppable(step, work).await {
            Ok(value) => {
                self.finish(step, None, &value).await?;
                Ok(value)
            }
            Err(e @ PipelineError::Interrupted { .. }) => {
                Err(self.fail(step, StepState::Pending, e).await)
            }
            Err(e) => Err(self.fail(step, StepState::Failed, e).await),
        }
    }

    /// Whether every step of `stage` is done already (its stage then does not start again).
    fn stage_done(&self, steps: &[StepName]) -> bool {
        steps.iter().all(|s| {
            self.records
                .get(s)
                .is_some_and(|r| r.state == StepState::Done)
        })
    }

    /// Announces `stage`, unless its steps are all done already. Returns when it started.
    fn stage_begins(&self, stage: Stage, steps: &[StepName]) -> Option<Instant> {
        if self.stage_done(steps) {
            return None;
        }
        self.pipeline.emit(Event::StageStarted { stage });
        Some(Instant::now())
    }

    /// Reports how `stage` ended (begun at `started`, or done in an earlier run).
    fn stage_ends<T>(
        &self,
        stage: Stage,
        started: Option<Instant>,
        result: &Result<T, PipelineError>,
        summary: impl Fn(&T) -> String,
    ) {
        let event = match (result, started) {
            (Ok(value), None) => Event::Note {
                stage,
                message: format!("done in an earlier run: {}", summary(value)),
            },
            (Ok(value), Some(started)) => Event::StageFinished {
                stage,
                elapsed: started.elapsed(),
                summary: summary(value),
            },
            (Err(e), _) => Event::StageFailed {
                stage,
                error: e.to_string(),
            },
        };
        self.pipeline.emit(event);
    }

    // ---- free checks --------------------------------------------------------------------

    /// `template`: the template exists and has every configured element (a free read), so that a
    /// wrong id, an unreachable Creatomate or an element name Creatomate would silently ignore
    /// fails before anything is paid for. A successful check is shared with the worker's other
    /// jobs for `template_check_ttl` (see `template.rs`); the step is journaled either way, and
    /// its note says when the check was another job's.
    async fn template(&mut self) -> Result<(), PipelineError> {
        let settings = self.pipeline.settings();
        if !settings.check_template {
            return Ok(());
        }
        let pipeline = self.pipeline;
        let checked: TemplateChecked = self
            .free(StepName::Template, async move {
                let settings = pipeline.settings();
                pipeline
                    .template_checks
                    .check(
                        template::Key::of(&pipeline.creatomate_account, settings),
                        settings.template_check_ttl,
                        || async {
                            let template =
                                pipeline.creatomate.template(&settings.template_id).await?;
                            pipeline.check_elements(&template)
                        },
                    )
                    .await
            })
            .await?;
        let reused = match checked.checked_ms_ago {
            Some(ms) => format!(" (checked {} ago)", fmt_duration(Duration::from_millis(ms))),
            None => String::new(),
        };
        self.pipeline.emit(Event::Note {
            stage: Stage::Video,
            message: format!(
                "template \"{}\" ({}) is ready{reused}",
                checked.name, checked.id
            ),
        });
        Ok(())
    }

    /// `credits`: Suno's remaining credits cover one song (a free read), checked before the
    /// lyrics are paid for.
    async fn credits(&mut self) -> Result<(), PipelineError> {
        let need = self.pipeline.settings().song_credits;
        if need == 0 {
            return Ok(());
        }
        let pipeline = self.pipeline;
        self.free(StepName::Credits, async move {
            let remaining = pipeline.suno.credits().await?;
            if remaining < need {
                return Err(PipelineError::InsufficientCredits {
                    have: remaining,
                    need,
                });
            }
            Ok(CreditsChecked { remaining })
        })
        .await?;
        Ok(())
    }

    // ---- lyrics ---------------------------------------------------------------------------

    pub(crate) async fn lyrics(&mut self, input: &BusinessInput) -> Result<Lyrics, PipelineError> {
        input.validate()?;
        let started = self.stage_begins(Stage::Lyrics, &[StepName::Lyrics]);
        let result = self
            .free(StepName::Lyrics, self.pipeline.write_lyrics(input))
            .await;
        self.stage_ends(Stage::Lyrics, started, &result, |l: &Lyrics| {
            format!(
                "\"{}\" ({} characters, {})",
                l.title,
                l.lyrics.chars().count(),
                l.style
            )
        });
        result
    }

    // ---- billed steps -----------------------------------------------------------------------

    /// The callback address of a billed step, when the job has callbacks.
    fn address(&self, step: StepName) -> Option<CallbackAddress> {
        self.ctx.callbacks.map(|c| c.address(step))
    }

    /// A billed step: the stored id when done; when `unknown`, reconciliation (never a second
    /// request); otherwise `in_flight` stored, then `send`, then the id stored.
    async fn billed<Fut>(
        &mut self,
        step: StepName,
        send: impl FnOnce(Option<CallbackAddress>) -> Fut,
    ) -> Result<String, PipelineError>
    where
        Fut: Future<Output = Result<String, encore_clients::Error>>,
    {
        let record = self.record(step);
        match record.on_load() {
            StepState::Done => {
                if let Some(id) = record.external_id {
                    return Ok(id);
                }
                // A done billed step without its id cannot be continued; it is not resent.
                return self.reconcile(step).await;
            }
            StepState::Unknown | StepState::InFlight => return self.reconcile(step).await,
            StepState::Pending | StepState::Failed => {}
        }
        self.check_stop(step)?;
        let address = self.address(step);
        // The rate-limit slot first, so that the write-ahead record is written when the request
        // is about to go, not before a wait in the queue: a process that dies while queued
        // leaves a step that was never sent, not one whose outcome is unknown.
        let slot = match step {
            StepName::SongSubmit => self.pipeline.billed_slots[0].clone(),
            StepName::VideoSubmit => self.pipeline.billed_slots[1].clone(),
            _ => None,
        };
        let taken = match &slot {
            Some(slot) => match slot.limiter.acquire(Instant::now() + slot.deadline).await {
                Ok(_) => Some(Instant::now()),
                Err(no_slot) => {
                    return Err(self
                        .fail(
                            step,
                            StepState::Failed,
                            encore_clients::Error::from(no_slot).into(),
                        )
                        .await);
                }
            },
            None => None,
        };
        // The write-ahead record: if it cannot be stored, nothing is sent.
        self.start(step, address.as_ref().map(|a| a.token.as_str()))
            .await?;
        // Not raced with the stop signal: an answer to a billed request is never abandoned.
        let sent = match (&slot, taken) {
            (Some(slot), Some(taken)) => {
                with_slot_taken(&*slot.limiter, taken, send(address)).await
            }
            _ => send(address).await,
        };
        match sent {
            Ok(id) => {
                self.finish(step, Some(&id), &Value::Object(serde_json::Map::new()))
                    .await?;
                self.fresh.push(step);
                Ok(id)
            }
            Err(e) if e.may_have_run() => {
                let has_callbacks = self.ctx.callbacks.is_some();
                let error = self.fail(step, StepState::Unknown, e.into()).await;
                if has_callbacks && !matches!(error, PipelineError::Journal { .. }) {
                    self.pipeline.emit(Event::Note {
                        stage: step.stage(),
                        message: format!(
                            "{step}: the answer was lost; waiting for the provider's callback to \
                             name what it created"
                        ),
                    });
                    return self.reconcile(step).await;
                }
                Err(error)
            }
            // Provably not run (refused before processing, or permanently): nothing was billed,
            // so running the job again may send it again.
            Err(e) => Err(self.fail(step, StepState::Failed, e.into()).await),
        }
    }

    /// Resolves an `unknown` billed step from provider callbacks: each external id a callback
    /// named is checked with a free read, and the first that is this job's is adopted. Without
    /// callbacks, or when none comes within the reconcile window, the run stops with
    /// [`PipelineError::OutcomeUnknown`] (the runner marks the job as needing attention).
    async fn reconcile(&mut self, step: StepName) -> Result<String, PipelineError> {
        let unknown = || match step {
            StepName::VideoSubmit => PipelineError::OutcomeUnknown {
                step,
                what: "Creatomate render",
                created: "render",
                service: "Creatomate",
            },
            _ => PipelineError::OutcomeUnknown {
                step,
                what: "Suno generate",
                created: "task",
                service: "Suno",
            },
        };
        let Some(callbacks) = self.ctx.callbacks else {
            return Err(unknown());
        };
        let address = callbacks.address(step);
        let until = Instant::now() + callbacks.reconcile_window();
        let mut rejected: Vec<String> = Vec::new();
        loop {
            // Made before looking, so that a callback arriving while we look is not missed.
            let arrival = callbacks.arrival(step);
            let candidates = callbacks
                .candidates(step)
                .await
                .map_err(Self::journal_error(step, None))?;
            for id in candidates {
                if rejected.contains(&id) {
                    continue;
                }
                match self.verify(step, &id, &address).await {
                    Some(true) => {
                        self.finish(
                            step,
                            Some(&id),
                            &serde_json::json!({ "adopted": "callback" }),
                        )
                        .await?;
                        self.pipeline.emit(Event::Note {
                            stage: step.stage(),
                            message: format!(
                                "{step}: the lost answer was resolved by the provider's callback: {id}"
                            ),
                        });
                        return Ok(id);
                    }
                    Some(false) => {
                        tracing::warn!(step = %step, id = %id, "a callback named a job that is not this one's; ignored");
                        rejected.push(id);
                    }
                    // Could not be read now: look again later.
                    None => {}
                }
            }
            let now = Instant::now();
            if now >= until {
                return Err(unknown());
            }
            // Callbacks received by another process are seen on the next look.
            let next = now + (until - now).min(std::time::Duration::from_secs(5));
            tokio::select! {
                () = arrival => {}
                () = tokio::time::sleep_until(next) => {}
                () = self.ctx.stop.stopped() => return Err(PipelineError::Interrupted { step }),
            }
        }
    }

    async fn verify(&self, step: StepName, id: &str, address: &CallbackAddress) -> Option<bool> {
        self.pipeline
            .verify_callback(self.ctx.job_id, step, id, address)
            .await
    }

    /// The metadata a render of this job carries.
    fn metadata(&self) -> String {
        render_metadata(self.ctx.job_id)
    }

    // ---- song ---------------------------------------------------------------------------

    pub(crate) async fn song(&mut self, lyrics: &Lyrics) -> Result<Song, PipelineError> {
        let started = self.stage_begins(
            Stage::Song,
            &[
                StepName::SongSubmit,
                StepName::SongWait,
                StepName::SongTimestamps,
            ],
        );
        let result = self.make_song(lyrics).await;
        self.stage_ends(Stage::Song, started, &result, |s: &Song| {
            s.audio_url.clone()
        });
        result
    }

    async fn make_song(&mut self, lyrics: &Lyrics) -> Result<Song, PipelineError> {
        let pipeline = self.pipeline;
        let task_id = self
            .billed(StepName::SongSubmit, move |address| async move {
                let request = GenerateRequest {
                    custom_mode: true,
                    instrumental: false,
                    model: pipeline.suno_model.clone(),
                    call_back_url: address.map_or_else(|| pipeline.callback_url.clone(), |a| a.url),
                    prompt: Some(lyrics.lyrics.clone()),
                    style: Some(lyrics.style.clone()),
                    title: Some(lyrics.title.clone()),
                    negative_tags: None,
                    vocal_gender: None,
                };
                let task_id = pipeline.suno.generate(&request).await?;
                pipeline.emit(Event::StatusChanged {
                    stage: Stage::Song,
                    status: format!("task {task_id} submitted"),
                });
                Ok(task_id)
            })
            .await?;
        let track = self.wait_song(&task_id).await?;
        let caps = self.timestamps(&track, &lyrics.lyrics).await?;
        Ok(Song {
            task_id,
            track_id: track.track_id,
            audio_url: track.audio_url,
            duration: track.duration,
            captions: caps.captions,
            timed_captions: caps.timed,
        })
    }

    /// `song.wait`: polls the task (woken early by callbacks) until a track has its final
    /// audio. `CALLBACK_EXCEPTION` only says Suno could not deliver a callback, possibly before
    /// the audio existed: it ends the wait only once a track has audio.
    async fn wait_song(&mut self, task_id: &str) -> Result<Track, PipelineError> {
        let step = StepName::SongWait;
        if let Some(track) = self.stored::<Track>(step) {
            return Ok(track);
        }
        self.check_stop(step)?;
        self.start(step, None).await?;
        let pipeline = self.pipeline;
        let accept_first = pipeline.settings().accept_first_success;
        let job = Watched {
            stage: Stage::Song,
            what: "Suno task",
            id: task_id,
            seen: "",
            callbacks_for: StepName::SongSubmit,
        };
        let polled = self
            .wait_for(
                job,
                &pipeline.settings().song_poll,
                || pipeline.suno.task_status(task_id),
                |record: &TaskRecord| {
                    let done = match &record.status {
                        TaskStatus::Success => true,
                        // One track is done, but only its stream URL may exist: `audioUrl` stays
                        // "" until the downloadable file is ready (~2–3 min after the ~30–40 s
                        // stream). Creatomate needs the file, so only a track with it ends the
                        // wait.
                        TaskStatus::FirstSuccess => accept_first && record.has_audio(),
                        // Suno could not deliver a callback, possibly before the audio existed:
                        // the song may still come, so only audio ends the wait.
                        TaskStatus::CallbackException => record.has_audio(),
                        // Failures (the older docs' `FAILED` included) end the wait with
                        // Suno's message; unknown statuses do not.
                        other => other.is_terminal(),
                    };
                    (record.status.as_str().to_owned(), done)
                },
            )
            .await
            .and_then(|record| chosen_track(task_id, &record));
        match polled {
            Ok(track) => {
                self.finish(step, Some(task_id), &track).await?;
                Ok(track)
            }
            Err(e @ PipelineError::Interrupted { .. }) => {
                Err(self.fail(step, StepState::Pending, e).await)
            }
            Err(e) => Err(self.fail(step, StepState::Failed, e).await),
        }
    }

    /// `song.timestamps`: caption lines timed from Suno's aligned words (words without usable
    /// times placed by their neighbours, see [`captions`]), or spread evenly when no word has a
    /// time or the timestamps cannot be had (the song is paid for; captions are not worth losing
    /// it over).
    async fn timestamps(&mut self, track: &Track, lyrics: &str) -> Result<Captions, PipelineError> {
        let pipeline = self.pipeline;
        let words = pipeline.settings().caption_words_per_line;
        self.free(StepName::SongTimestamps, async move {
            let timed = match pipeline
                .suno
                .timestamped_lyrics(&track.task_id, &track.track_id)
                .await
            {
                Ok(aligned) if aligned.aligned_words.is_empty() => Err("no aligned words".into()),
                Ok(aligned) => {
                    let timed: Vec<TimedWord<'_>> =
                        aligned.aligned_words.iter().map(timed_word).collect();
                    let untimed = timed.iter().filter(|w| w.start.is_none()).count();
                    let lines = captions(timed, words);
                    if lines.is_empty() {
                        Err("no word has a usable time".to_owned())
                    } else {
                        if untimed > 0 {
                            pipeline.emit(Event::Note {
                                stage: Stage::Song,
                                message: format!(
                                    "captions: {untimed} of {} aligned words had no usable time \
                                     and were placed by their neighbours",
                                    aligned.aligned_words.len()
                                ),
                            });
                        }
                        Ok(lines)
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            Ok(match timed {
                Ok(lines) => Captions {
                    captions: lines,
                    timed: true,
                },
                Err(why) => {
                    pipeline.emit(Event::Note {
                        stage: Stage::Song,
                        message: format!(
                            "captions spread evenly: timestamped lyrics unavailable ({why})"
                        ),
                    });
                    Captions {
                        captions: spread(lyrics, track.duration.unwrap_or(120.0)),
                        timed: false,
                    }
                }
            })
        })
        .await
    }

    // ---- video --------------------------------------------------------------------------

    pub(crate) async fn video(&mut self, input: &VideoInput) -> Result<Video, PipelineError> {
        let started =
            self.stage_begins(Stage::Video, &[StepName::VideoSubmit, StepName::VideoWait]);
        let result = self.make_video(input).await;
        self.stage_ends(Stage::Video, started, &result, |v: &Video| v.url.clone());
        result
    }

    async fn make_video(&mut self, input: &VideoInput) -> Result<Video, PipelineError> {
        let pipeline = self.pipeline;
        let metadata = input.metadata.clone().unwrap_or_else(|| self.metadata());
        let first_status = Mutex::new(String::new());
        let seen = &first_status;
        let render_id = self
            .billed(StepName::VideoSubmit, move |address| async move {
                let request = RenderRequest {
                    template_id: pipeline.settings().template_id.clone(),
                    modifications: pipeline.modifications(input),
                    output_format: Some("mp4".into()),
                    metadata: Some(metadata),
                    webhook_url: address.map(|a| a.url),
                };
                let render = pipeline.creatomate.render(&request).await?;
                pipeline.emit(Event::StatusChanged {
                    stage: Stage::Video,
                    status: render.status.as_str().to_owned(),
                });
                render
                    .status
                    .as_str()
                    .clone_into(&mut seen.lock().expect("status lock"));
                Ok(render.id)
            })
            .await?;
        let seen = first_status.into_inner().expect("status lock");
        self.wait_video(&render_id, &seen).await
    }

    /// `video.wait`: polls the render (woken early by the webhook) until it succeeds or fails.
    async fn wait_video(&mut self, render_id: &str, seen: &str) -> Result<Video, PipelineError> {
        let step = StepName::VideoWait;
        if let Some(video) = self.stored::<Video>(step) {
            return Ok(video);
        }
        self.check_stop(step)?;
        self.start(step, None).await?;
        let pipeline = self.pipeline;
        let job = Watched {
            stage: Stage::Video,
            what: "render",
            id: render_id,
            seen,
            callbacks_for: StepName::VideoSubmit,
        };
        let polled = self
            .wait_for(
                job,
                &pipeline.settings().video_poll,
                || pipeline.creatomate.render_status(render_id),
                |render: &Render| {
                    (
                        render.status.as_str().to_owned(),
                        render.status.is_terminal(),
                    )
                },
            )
            .await
            .and_then(|render| finished_video(render_id, &render));
        match polled {
            Ok(video) => {
                self.finish(step, Some(render_id), &video).await?;
                Ok(video)
            }
            Err(e @ PipelineError::Interrupted { .. }) => {
                Err(self.fail(step, StepState::Pending, e).await)
            }
            Err(e) => Err(self.fail(step, StepState::Failed, e).await),
        }
    }

    // ---- waiting ------------------------------------------------------------------------

    /// Polls a submitted job until `judge` says it is done (or its deadline passes), emitting a
    /// [`Event::StatusChanged`] whenever the status changes. With callbacks, polling is a slow
    /// fallback (no sooner than `callback_poll_interval`) and a callback makes it look at once.
    /// Status reads refused by our own protections mean "look again later", and so does "not
    /// found" until `not_found_grace` after the first read (the job was just created and the
    /// provider's reads may lag: see `visibility.rs`); after that it is
    /// [`PipelineError::NotVisible`], naming the id.
    async fn wait_for<T, F, Fut>(
        &self,
        job: Watched<'_>,
        policy: &PollPolicy,
        mut fetch: F,
        judge: impl Fn(&T) -> (String, bool),
    ) -> Result<T, PipelineError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, encore_clients::Error>>,
    {
        let mut policy = policy.clone();
        let callbacks = self.ctx.callbacks;
        if callbacks.is_some() {
            let slow = self.pipeline.settings().callback_poll_interval;
            policy.interval = policy.interval.max(slow);
            policy.max_interval = policy.max_interval.max(slow);
        }
        let deadline = Instant::now() + policy.deadline;
        // With callbacks, a job created moments ago is not looked at before its callback or the
        // first fallback interval: its status is known (just started), and reads cost quota.
        if let Some(callbacks) = callbacks
            && self.fresh.contains(&job.callbacks_for)
        {
            let arrival = callbacks.arrival(job.callbacks_for);
            tokio::select! {
                () = arrival => {}
                () = tokio::time::sleep(policy.interval) => {}
                () = self.ctx.stop.stopped() => {
                    return Err(PipelineError::Interrupted { step: job.callbacks_for.next_wait() });
                }
            }
        }
        let grace = self.pipeline.settings().not_found_grace;
        let visible_by = Instant::now() + grace;
        let last = Mutex::new(job.seen.to_owned());
        let mut checks = 0;
        let (last, judge) = (&last, &judge);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let this_round = PollPolicy {
                deadline: left,
                ..policy.clone()
            };
            let arrival = async {
                match callbacks {
                    Some(c) => c.arrival(job.callbacks_for).await,
                    None => std::future::pending().await,
                }
            };
            let round = poll_until(&this_round, |_| {
                checks += 1;
                let read = fetch();
                async move {
                    let value = match read.await {
                        Ok(value) => value,
                        Err(e) if look_again_later(&e) => {
                            return Ok(PollState::pending(format!("waiting ({e})")));
                        }
                        Err(e) if is_not_found(&e) && Instant::now() < visible_by => {
                            self.status_changed(job.stage, last, NOT_VISIBLE_YET);
                            return Ok(PollState::pending(NOT_VISIBLE_YET));
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
            });
            let outcome = tokio::select! {
                polled = round => Some(polled),
                () = arrival, if !left.is_zero() => None,
                () = self.ctx.stop.stopped() => {
                    return Err(PipelineError::Interrupted { step: job.callbacks_for.next_wait() });
                }
            };
            match outcome {
                // A callback arrived: look again now.
                None => {}
                Some(Ok(value)) => return Ok(value),
                Some(Err(PollError::Check(e))) if is_not_found(&e) => {
                    return Err(PipelineError::NotVisible {
                        stage: job.stage,
                        what: job.what,
                        id: job.id.to_owned(),
                        service: job.service(),
                        grace,
                        source: e,
                    });
                }
                Some(Err(PollError::Check(e))) => return Err(e.into()),
                Some(Err(PollError::Deadline { last_status, .. })) => {
                    return Err(PipelineError::StillPending {
                        stage: job.stage,
                        what: job.what,
                        id: job.id.to_owned(),
                        status: last_status,
                        deadline: policy.deadline,
                        checks,
                    });
                }
            }
        }
    }

    fn status_changed(&self, stage: Stage, last: &Mutex<String>, status: &str) {
        let mut last = last.lock().expect("status lock");
        if *last != status {
            status.clone_into(&mut last);
            self.pipeline.emit(Event::StatusChanged {
                stage,
                status: status.to_owned(),
            });
        }
    }
}

/// The status shown while a just-created job answers "not found".
const NOT_VISIBLE_YET: &str = "not visible yet";

/// A submitted job being waited for.
#[derive(Clone, Copy)]
struct Watched<'a> {
    stage: Stage,
    what: &'static str,
    id: &'a str,
    /// The status already reported when it was submitted, if any.
    seen: &'a str,
    /// The billed step whose callbacks report on it.
    callbacks_for: StepName,
}

impl Watched<'_> {
    /// The provider that runs the job.
    const fn service(&self) -> &'static str {
        match self.callbacks_for {
            StepName::VideoSubmit => "Creatomate",
            _ => "Suno",
        }
    }
}

impl StepName {
    /// The wait step that follows a submit step.
    const fn next_wait(self) -> StepName {
        match self {
            StepName::VideoSubmit => StepName::VideoWait,
            _ => StepName::SongWait,
        }
    }
}

/// A Suno aligned word as `captions` takes it: the client reads a missing, `null` or
/// non-numeric `startS`/`endS` as `None` (never as 0), and `captions` itself refuses
/// non-finite, negative and reversed times.
fn timed_word(w: &AlignedWord) -> TimedWord<'_> {
    TimedWord {
        word: &w.word,
        start: w.start_s,
        end: w.end_s,
    }
}

/// The first track with its final audio, or why the task gave none.
fn chosen_track(task_id: &str, record: &TaskRecord) -> Result<Track, PipelineError> {
    let track = record.tracks.iter().find(|t| t.has_audio());
    if let Some(track) = track {
        return Ok(Track {
            task_id: task_id.to_owned(),
            track_id: track.id.clone(),
            audio_url: track.audio_url.clone(),
            duration: track.duration,
            status: record.status.as_str().to_owned(),
        });
    }
    if record.status.is_failure() {
        return Err(PipelineError::SongFailed {
            task_id: task_id.to_owned(),
            status: record.status.as_str().to_owned(),
            message: record.error_message.clone(),
        });
    }
    Err(PipelineError::NoTrack {
        task_id: task_id.to_owned(),
        status: record.status.as_str().to_owned(),
    })
}

/// The video of a finished render, or why it failed (the client reads an empty `url` as none).
fn finished_video(render_id: &str, render: &Render) -> Result<Video, PipelineError> {
    match (&render.status, render.url.clone()) {
        (RenderStatus::Succeeded, Some(url)) => Ok(Video {
            render_id: render_id.to_owned(),
            url,
            duration: render.duration,
        }),
        (status, _) => Err(PipelineError::RenderFailed {
            render_id: render_id.to_owned(),
            message: render
                .error_message
                .clone()
                .unwrap_or_else(|| format!("finished as {} without a URL", status.as_str())),
        }),
    }
}

/// The names of every element in a template's RenderScript (nested compositions included).
pub(crate) fn element_names(template: &Template) -> Vec<String> {
    // A RenderScript and each of its elements are objects; a composition's elements are in
    // its own `elements` array.
    fn walk(value: &Value, out: &mut Vec<String>) {
        if let Some(Value::Array(elements)) = value.get("elements") {
            for element in elements {
                if let Some(name) = element.get("name").and_then(Value::as_str) {
                    out.push(name.to_owned());
                }
                walk(element, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(source) = &template.source {
        walk(source, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// The metadata a render of job `job_id` carries: names the job, so that a webhook (and an
/// operator) can tell which job a render belongs to, and a free read can verify it.
pub fn render_metadata(job_id: &str) -> String {
    format!("encore job={job_id} step={}", StepName::VideoSubmit)
}

impl Pipeline {
    /// Whether `id` is the task or render that `step` (a billed step) of job `job_id` created,
    /// by a free read from the provider: Suno's task carries the `callBackUrl` it was created
    /// with (`address`), a render the metadata it was sent ([`render_metadata`]). `None` when
    /// the read failed for a reason that may pass (including "not found" for a job created
    /// moments ago, which a callback can outrun).
    pub async fn verify_callback(
        &self,
        job_id: &str,
        step: StepName,
        id: &str,
        address: &CallbackAddress,
    ) -> Option<bool> {
        let read =
            match step {
                StepName::SongSubmit => self.suno.task_status(id).await.map(|task| {
                    task.params()
                        .and_then(|p| {
                            p.get("callBackUrl")
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        })
                        .is_some_and(|url| url == address.url)
                }),
                StepName::VideoSubmit => self.creatomate.render_status(id).await.map(|render| {
                    render.metadata.as_deref() == Some(render_metadata(job_id).as_str())
                }),
                _ => return Some(false),
            };
        match read {
            Ok(ours) => Some(ours),
            Err(e) if is_not_found(&e) => None,
            Err(e) if e.is_permanent() => Some(false),
            Err(e) => {
                tracing::debug!(step = %step, id = %id, error = %e, "callback not verified yet");
                None
            }
        }
    }

    /// Checks that `template` has every element the configuration names.
    fn check_elements(&self, template: &Template) -> Result<TemplateChecked, PipelineError> {
        let s = self.settings();
        let elements = element_names(template);
        let missing: Vec<String> = [&s.audio_element, &s.title_element, &s.captions_element]
            .into_iter()
            .filter(|name| !elements.iter().any(|e| e == *name))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(PipelineError::TemplateElements {
                template_id: template.id.clone(),
                missing,
                found: elements,
            });
        }
        Ok(TemplateChecked {
            id: template.id.clone(),
            name: template.name.clone(),
            elements,
            checked_ms_ago: None,
        })
    }

    /// Writes the lyrics (OpenAI structured output), fitted to Suno's limits.
    async fn write_lyrics(&self, input: &BusinessInput) -> Result<Lyrics, PipelineError> {
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
    }
}
