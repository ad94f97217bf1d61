//! A per-key sliding-window request limiter on `tokio::time` (pausable in tests).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// At most `limit` admitted requests per key in any `window`.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    limit: usize,
    window: Duration,
    hits: HashMap<String, VecDeque<Instant>>,
}

impl SlidingWindow {
    pub(crate) fn new(limit: usize, window: Duration) -> Self {
        SlidingWindow {
            limit,
            window,
            hits: HashMap::new(),
        }
    }

    fn prune(&mut self, key: &str, now: Instant) -> &mut VecDeque<Instant> {
        let window = self.window;
        let q = self.hits.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        q
    }

    /// Admits and counts the request, or says how long until a slot frees up.
    pub(crate) fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let (limit, window) = (self.limit, self.window);
        let q = self.prune(key, now);
        if q.len() >= limit {
            let oldest = *q.front().expect("limit > 0");
            return Err(window.saturating_sub(now.duration_since(oldest)));
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn window_slides() {
        let mut w = SlidingWindow::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(w.check("k", t0).is_ok());
        assert!(w.check("k", t0 + Duration::from_secs(1)).is_ok());
        let wait = w.check("k", t0 + Duration::from_secs(2)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(8));
        assert!(w.check("other", t0).is_ok());
        assert!(w.check("k", t0 + Duration::from_secs(10)).is_ok());
    }
}
