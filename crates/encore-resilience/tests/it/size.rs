//! The retry loop's future stays small: it is held by every in-flight call.

use encore_resilience::{Retry, RetryPolicy};

/// The bound: measured 352 B on x86_64 (debug and release alike; it was 704 B when the loop kept
/// a live `Backoff`, an `async` layer in `run` and `self` next to its moved-out fields).
const MAX_FUTURE_BYTES: usize = 400;

#[test]
fn the_retry_future_of_a_trivial_call_stays_small() {
    let policy = RetryPolicy::default();
    let fut = Retry::new(&policy).run(|_| async { Ok::<_, std::io::Error>(()) });
    let size = std::mem::size_of_val(&fut);
    eprintln!("retry future: {size} B");
    assert!(
        size <= MAX_FUTURE_BYTES,
        "the retry future grew to {size} B (bound {MAX_FUTURE_BYTES} B)"
    );
}
