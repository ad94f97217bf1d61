//! A rolling window of counters that threads add to without a lock (tower's `TpsBucket`, with
//! atomic slots).
//!
//! The window is split into [`SLOTS`] slots of `window / SLOTS` each, on fixed boundaries counted
//! from the window's creation: slot number `n` covers `[origin + n·len, origin + (n+1)·len)`. A
//! value added at `now` lands in the slot of `now` and counts while that slot is one of the last
//! [`SLOTS`] (so between 9/10 of the window and the whole window, depending on when in its slot
//! it was added).
//!
//! Each slot is one `AtomicU64` holding the slot number it belongs to (24 bits) and its value
//! (40 bits, two's complement). Adding is one compare-and-swap: a slot still holding an older
//! slot number is reset by the add that finds it so. The slot number wraps after 2²⁴ slots (194
//! days with 1 s slots); a slot untouched for exactly a multiple of that would be read as live,
//! which these heuristics tolerate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How many slots a window is split into.
pub(crate) const SLOTS: u64 = 10;

const VALUE_BITS: u32 = 40;
const VALUE_MASK: u64 = (1 << VALUE_BITS) - 1;
const EPOCH_MASK: u64 = (1 << (64 - VALUE_BITS)) - 1;
const VALUE_MAX: i64 = (1 << (VALUE_BITS - 1)) - 1;
const VALUE_MIN: i64 = -(1 << (VALUE_BITS - 1));

/// `SLOTS` counters covering the last `window`, shared by threads without a lock.
#[derive(Debug)]
pub(crate) struct AtomicWindow {
    slots: [AtomicU64; SLOTS as usize],
    origin: Instant,
    slot_nanos: u64,
}

fn pack(epoch: u64, value: i64) -> u64 {
    let value = value.clamp(VALUE_MIN, VALUE_MAX);
    ((epoch & EPOCH_MASK) << VALUE_BITS) | (value as u64 & VALUE_MASK)
}

fn epoch_of(word: u64) -> u64 {
    word >> VALUE_BITS
}

fn value_of(word: u64) -> i64 {
    // Sign-extend the low 40 bits: shift them to the top, reinterpret, shift back.
    i64::from_ne_bytes(((word & VALUE_MASK) << (64 - VALUE_BITS)).to_ne_bytes())
        >> (64 - VALUE_BITS)
}

impl AtomicWindow {
    /// An empty window of `window` (at least `SLOTS` nanoseconds), starting now.
    pub(crate) fn new(window: Duration) -> Self {
        let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        Self {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            origin: Instant::now(),
            slot_nanos: (nanos / SLOTS).max(1),
        }
    }

    /// The number of the slot that `now` falls in (a 64-bit division: this is on every call's
    /// path; nanoseconds since the origin fit in 64 bits for 584 years).
    fn epoch(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin);
        let nanos = since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()));
        nanos / self.slot_nanos
    }

    /// Adds `amount` to the slot of `now` (saturating at ±2³⁹).
    pub(crate) fn add(&self, now: Instant, amount: i64) {
        let epoch = self.epoch(now);
        let slot = &self.slots[(epoch % SLOTS) as usize];
        let mut old = slot.load(Ordering::Relaxed);
        loop {
            let base = if epoch_of(old) == epoch & EPOCH_MASK {
                value_of(old)
            } else {
                0
            };
            let new = pack(epoch, base.saturating_add(amount));
            match slot.compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => old = seen,
            }
        }
    }

    /// The sum of every live slot at `now`.
    pub(crate) fn sum(&self, now: Instant) -> i64 {
        let epoch = self.epoch(now) & EPOCH_MASK;
        self.slots.iter().fold(0i64, |sum, slot| {
            let word = slot.load(Ordering::Acquire);
            let age = epoch.wrapping_sub(epoch_of(word)) & EPOCH_MASK;
            if age < SLOTS {
                sum.saturating_add(value_of(word))
            } else {
                sum
            }
        })
    }

    /// Forgets everything up to `now`.
    pub(crate) fn reset(&self, now: Instant) {
        let word = pack(self.epoch(now), 0);
        for slot in &self.slots {
            slot.store(word, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_signed_values_and_saturate() {
        for value in [0, 1, -1, 200, -1000, VALUE_MAX, VALUE_MIN] {
            let word = pack(12_345, value);
            assert_eq!(value_of(word), value);
            assert_eq!(epoch_of(word), 12_345);
        }
        assert_eq!(value_of(pack(1, i64::MAX)), VALUE_MAX);
        assert_eq!(value_of(pack(1, i64::MIN)), VALUE_MIN);
        assert_eq!(epoch_of(pack(EPOCH_MASK + 5, 1)), 4, "slot numbers wrap");
    }

    #[tokio::test(start_paused = true)]
    async fn values_expire_one_slot_at_a_time() {
        let w = AtomicWindow::new(Duration::from_secs(10));
        let start = Instant::now();
        w.add(start, 1); // slot [0 s, 1 s)
        w.add(start + Duration::from_millis(4500), 10); // slot [4 s, 5 s)
        let sum = |at: Duration| w.sum(start + at);
        assert_eq!(sum(Duration::from_millis(9999)), 11);
        assert_eq!(sum(Duration::from_secs(10)), 10, "the first slot expired");
        // Added 4.5 s in, into the slot [4 s, 5 s): it lives 9.5 s, until that slot is reused.
        assert_eq!(sum(Duration::from_millis(13_999)), 10);
        assert_eq!(sum(Duration::from_secs(14)), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reused_slot_starts_from_zero_and_negative_values_count() {
        let w = AtomicWindow::new(Duration::from_secs(10));
        let start = Instant::now();
        w.add(start, 5);
        w.add(start, -1000);
        assert_eq!(w.sum(start), -995);
        // Ten slots later the same slot is reused: the old value is gone, not added to.
        let later = start + Duration::from_secs(10);
        w.add(later, 3);
        assert_eq!(w.sum(later), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_idle_clears_everything_and_reset_forgets() {
        let w = AtomicWindow::new(Duration::from_secs(10));
        let start = Instant::now();
        w.add(start, 1);
        let much_later = start + Duration::from_millis(3_600_500);
        assert_eq!(w.sum(much_later), 0);
        w.add(much_later, 1); // slot [3600 s, 3601 s)
        let expiry = start + Duration::from_secs(3610);
        assert_eq!(w.sum(expiry - Duration::from_nanos(1)), 1);
        assert_eq!(w.sum(expiry), 0);
        w.add(expiry, 7);
        w.reset(expiry);
        assert_eq!(w.sum(expiry), 0);
        w.add(expiry + Duration::from_secs(1), 2);
        assert_eq!(w.sum(expiry + Duration::from_secs(1)), 2);
    }

    #[test]
    fn concurrent_adds_are_not_lost() {
        let w = std::sync::Arc::new(AtomicWindow::new(Duration::from_secs(3600)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        w.add(Instant::now(), 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(w.sum(Instant::now()), 40_000);
    }
}
