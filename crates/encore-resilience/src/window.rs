//! A rolling window of counters, split into slots that expire one by one (tower's `TpsBucket`).

use std::time::Duration;

use tokio::time::Instant;

/// How many slots a window is split into: a value lives between 9/10 of the window and the whole
/// window, depending on when in its slot it was added.
pub(crate) const SLOTS: u32 = 10;

/// `SLOTS` counters covering the last `window`; the oldest slot is cleared as time moves on.
#[derive(Debug)]
pub(crate) struct Window<T> {
    slots: Vec<T>,
    slot_len: Duration,
    /// Index of the slot being written.
    head: usize,
    /// When the slot being written started.
    head_start: Instant,
}

impl<T: Copy + Default> Window<T> {
    /// An empty window of `window` (at least `SLOTS` nanoseconds), starting now.
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            slots: vec![T::default(); SLOTS as usize],
            slot_len: (window / SLOTS).max(Duration::from_nanos(1)),
            head: 0,
            head_start: Instant::now(),
        }
    }

    /// Moves the window up to `now`, clearing the slots that fell out of it.
    fn advance(&mut self, now: Instant) {
        let behind = now.saturating_duration_since(self.head_start);
        if behind < self.slot_len {
            return;
        }
        let slot_ns = self.slot_len.as_nanos();
        let steps = behind.as_nanos() / slot_ns;
        let len = self.slots.len();
        if steps >= len as u128 {
            self.slots.fill(T::default());
            self.head = ((self.head as u128 + steps) % len as u128) as usize;
        } else {
            for _ in 0..steps {
                self.head = (self.head + 1) % len;
                self.slots[self.head] = T::default();
            }
        }
        // The current slot started at the last slot boundary at or before `now`.
        let into_slot = Duration::from_nanos((behind.as_nanos() % slot_ns) as u64);
        self.head_start = now.checked_sub(into_slot).unwrap_or(now);
    }

    /// The slot to write to at `now`.
    pub(crate) fn current(&mut self, now: Instant) -> &mut T {
        self.advance(now);
        &mut self.slots[self.head]
    }

    /// Every live slot at `now`.
    pub(crate) fn slots(&mut self, now: Instant) -> &[T] {
        self.advance(now);
        &self.slots
    }

    /// Forgets everything and starts again at `now`.
    pub(crate) fn reset(&mut self, now: Instant) {
        self.slots.fill(T::default());
        self.head = 0;
        self.head_start = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn values_expire_one_slot_at_a_time() {
        let mut w: Window<u32> = Window::new(Duration::from_secs(10));
        let start = Instant::now();
        *w.current(start) += 1; // slot [0 s, 1 s)
        let later = start + Duration::from_millis(4500);
        *w.current(later) += 10; // slot [4 s, 5 s)
        let sum = |w: &mut Window<u32>, at: Duration| w.slots(start + at).iter().sum::<u32>();
        assert_eq!(sum(&mut w, Duration::from_millis(9999)), 11);
        assert_eq!(
            sum(&mut w, Duration::from_secs(10)),
            10,
            "the first slot expired"
        );
        // Added 4.5 s in, into the slot [4 s, 5 s): it lives 9.5 s, until that slot is reused.
        assert_eq!(sum(&mut w, Duration::from_millis(13_999)), 10);
        assert_eq!(sum(&mut w, Duration::from_secs(14)), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_idle_clears_everything_and_keeps_slot_boundaries() {
        let mut w: Window<u32> = Window::new(Duration::from_secs(10));
        let start = Instant::now();
        *w.current(start) += 1;
        let much_later = start + Duration::from_millis(3_600_500);
        assert_eq!(w.slots(much_later).iter().sum::<u32>(), 0);
        *w.current(much_later) += 1; // slot [3600 s, 3601 s)
        let expiry = start + Duration::from_secs(3610);
        assert_eq!(
            w.slots(expiry - Duration::from_nanos(1))
                .iter()
                .sum::<u32>(),
            1
        );
        assert_eq!(w.slots(expiry).iter().sum::<u32>(), 0);
        w.reset(expiry);
        assert_eq!(w.slots(expiry).iter().sum::<u32>(), 0);
    }
}
