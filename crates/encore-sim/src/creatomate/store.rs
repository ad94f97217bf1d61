//! Creatomate's server-side state: renders, per-key credits and the request window.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;

use super::render_job::RenderJob;
use crate::ids;
use crate::ratelimit::SlidingWindow;

/// Requests admitted per key in any [`RATE_WINDOW`] (documented, polling included).
pub const RATE_LIMIT: usize = 30;
/// The rate-limit window (documented; real time, not scaled).
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Renders, credits and the rate window.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) rng: StdRng,
    pub(crate) renders: HashMap<String, RenderJob>,
    pub(crate) credits: HashMap<String, u64>,
    pub(crate) window: SlidingWindow,
    /// Renders created so far (indexes `[creatomate] outcomes`).
    pub(crate) created: usize,
}

impl Store {
    pub(crate) fn new(seed: u64) -> Self {
        Store {
            rng: ids::rng_for(seed, "creatomate"),
            renders: HashMap::new(),
            credits: HashMap::new(),
            window: SlidingWindow::new(RATE_LIMIT, RATE_WINDOW),
            created: 0,
        }
    }

    /// The balance of a key (starting at `initial`).
    pub(crate) fn credits(&mut self, key: &str, initial: u64) -> u64 {
        *self.credits.entry(key.to_owned()).or_insert(initial)
    }
}
