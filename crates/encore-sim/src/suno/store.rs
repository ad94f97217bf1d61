//! Suno's server-side state: tasks, per-key credits and the generate rate window.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;

use super::task::Task;
use crate::ids;
use crate::ratelimit::SlidingWindow;

/// Generate calls admitted per key in any [`RATE_WINDOW`] (documented).
pub const RATE_LIMIT: usize = 20;
/// The generate rate-limit window (documented; real time, not scaled).
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Tasks, credits and the rate window.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) rng: StdRng,
    pub(crate) tasks: HashMap<String, Task>,
    pub(crate) credits: HashMap<String, u64>,
    pub(crate) window: SlidingWindow,
    /// Tasks created so far (indexes `[suno] outcomes`).
    pub(crate) created: usize,
    /// Timestamped-lyrics answers with data so far (indexes `[suno] timestamped_lyrics`).
    pub(crate) lyrics_answered: usize,
}

impl Store {
    pub(crate) fn new(seed: u64) -> Self {
        Store {
            rng: ids::rng_for(seed, "suno"),
            tasks: HashMap::new(),
            credits: HashMap::new(),
            window: SlidingWindow::new(RATE_LIMIT, RATE_WINDOW),
            created: 0,
            lyrics_answered: 0,
        }
    }

    /// The balance of a key (starting at `initial`).
    pub(crate) fn credits(&mut self, key: &str, initial: u64) -> u64 {
        *self.credits.entry(key.to_owned()).or_insert(initial)
    }

    /// Duration of a track by id, if it exists (used by Creatomate renders).
    pub(crate) fn track_duration(&self, audio_id: &str) -> Option<f64> {
        self.tasks
            .values()
            .flat_map(|t| t.tracks.iter())
            .find(|t| t.id == audio_id)
            .map(|t| t.duration)
    }
}
