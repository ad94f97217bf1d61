//! The progress display on stderr: one line per stage (a live spinner on a terminal, plain
//! lines otherwise), and each retry once, as the clients' call observer reports it.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use encore_pipeline::{Event, Pipeline, Stage};
use encore_resilience::fmt_duration;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `pipeline` with its events shown on stderr; `prefix` labels the lines of one pipeline among
/// several, and only one display of several should show the (shared) breaker changes.
pub fn attach(pipeline: Pipeline, prefix: String, show_breaker: bool) -> Pipeline {
    let progress = Progress::new(prefix).show_breaker(show_breaker);
    pipeline.on_event(move |event| progress.event(event))
}

/// Renders pipeline events on stderr.
pub struct Progress {
    live: Option<MultiProgress>,
    bars: Mutex<HashMap<Stage, ProgressBar>>,
    prefix: String,
    breaker: bool,
}

impl Progress {
    /// Live spinners when stderr is a terminal, plain lines otherwise. `prefix` labels the lines
    /// of one pipeline among several.
    pub fn new(prefix: impl Into<String>) -> Self {
        let live = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            live,
            bars: Mutex::new(HashMap::new()),
            prefix: prefix.into(),
            breaker: true,
        }
    }

    /// Whether to show circuit breaker changes (shared by every pipeline of the process, so
    /// only one display of several should show them).
    pub fn show_breaker(mut self, show: bool) -> Self {
        self.breaker = show;
        self
    }

    /// Prints a line of its own (between the live spinners on a terminal).
    pub fn line(&self, text: &str) {
        match &self.live {
            Some(mp) => {
                let _ = mp.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn bar(&self, stage: Stage) -> Option<ProgressBar> {
        self.bars.lock().expect("bars lock").get(&stage).cloned()
    }

    /// Shows one event.
    pub fn event(&self, event: &Event) {
        let p = &self.prefix;
        match event {
            Event::StageStarted { stage } => {
                if let Some(mp) = &self.live {
                    let bar = mp.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:.bold} {spinner} {msg} ({elapsed})")
                            .expect("valid template"),
                    );
                    bar.set_prefix(format!("{p}{stage:<6}"));
                    bar.set_message("working…");
                    bar.enable_steady_tick(Duration::from_millis(100));
                    self.bars.lock().expect("bars lock").insert(*stage, bar);
                } else {
                    self.line(&format!("{p}{stage:<6} started"));
                }
            }
            Event::StatusChanged { stage, status } => match self.bar(*stage) {
                Some(bar) => bar.set_message(status.clone()),
                None => self.line(&format!("{p}{stage:<6} status: {status}")),
            },
            Event::Retrying { notice, .. } => self.line(&format!(
                "{p}  ↻ {}: {}, retrying in {} (attempt {}/{}){}",
                notice.endpoint.name(),
                notice.cause,
                fmt_duration(notice.delay),
                notice.attempt,
                notice.max_attempts,
                if notice.server_requested {
                    ", as the server asked"
                } else {
                    ""
                },
            )),
            Event::Note { stage, message } => self.line(&format!("{p}  · {stage}: {message}")),
            Event::BreakerChanged { notice, .. } if self.breaker => {
                self.line(&format!("  ⚡ {notice}"));
            }
            Event::StageFinished {
                stage,
                elapsed,
                summary,
            } => {
                let text = format!("{p}{stage:<6} ✔ {}  {summary}", fmt_duration(*elapsed));
                match self.bar(*stage) {
                    Some(bar) => {
                        bar.set_style(
                            ProgressStyle::with_template("{msg}").expect("valid template"),
                        );
                        bar.finish_with_message(text);
                    }
                    None => self.line(&text),
                }
            }
            Event::StageFailed { stage, error } => {
                let text = format!("{p}{stage:<6} ✘ {error}");
                match self.bar(*stage) {
                    Some(bar) => {
                        bar.set_style(
                            ProgressStyle::with_template("{msg}").expect("valid template"),
                        );
                        bar.abandon_with_message(text);
                    }
                    None => self.line(&text),
                }
            }
            _ => {}
        }
    }
}
