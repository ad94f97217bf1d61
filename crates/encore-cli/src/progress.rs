//! Human output: one line per stage (a live spinner on a terminal, plain lines otherwise),
//! retries as they happen, and a summary table of calls.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use encore_clients::CallRecord;
use encore_pipeline::{Event, Stage};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

    fn line(&self, text: &str) {
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
                "{p}  ↻ {}: {}, retrying in {:.1}s (attempt {}/{}){}",
                notice.endpoint.name(),
                notice.cause,
                notice.delay.as_secs_f64(),
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
                let text = format!("{p}{stage:<6} ✔ {:.1}s  {summary}", elapsed.as_secs_f64());
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

/// The table of calls, for stdout.
pub fn calls_table(calls: &[CallRecord]) -> String {
    let mut out = format!(
        "{:<22} {:>8}  {:<7} {:>8}\n",
        "call", "attempts", "outcome", "time"
    );
    for c in calls {
        out.push_str(&format!(
            "{:<22} {:>8}  {:<7} {:>7.1}s\n",
            c.endpoint.name(),
            c.attempts,
            if c.error.is_none() { "ok" } else { "failed" },
            c.elapsed.as_secs_f64()
        ));
    }
    out
}
