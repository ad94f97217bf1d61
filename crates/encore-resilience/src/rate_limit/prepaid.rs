//! A slot taken ahead of a call: the caller takes a slot of a rate limit itself, does what must
//! happen between the slot and the request (a billed request's write-ahead record), then runs
//! the call inside [`with_slot_taken`], whose first admission by that limiter is then free.
//!
//! Why: a billed request's `in_flight` record says "possibly sent". Written before a long wait
//! for a slot, it would say so of requests that were still queued when the process died, and
//! those would need a person to resolve them. Taking the slot first keeps that record to the
//! moment of sending.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::RateLimiter;

/// How long after it was taken a slot taken ahead still counts: past this, the first attempt
/// takes a new slot (a slot used late would land among the slots other callers use now).
pub const PREPAID_SLOT_FRESHNESS: Duration = Duration::from_millis(100);

tokio::task_local! {
    /// The limiter (its address) whose slot the running call has taken ahead, and when.
    static PREPAID: Cell<Option<(usize, Instant)>>;
}

fn address(limiter: &dyn RateLimiter) -> usize {
    std::ptr::from_ref(limiter).cast::<()>() as usize
}

/// Runs `call` with a slot of `limiter` taken at `taken` (what
/// [`RateLimiter::acquire`] granted): the first admission by the same limiter object inside
/// `call` takes no other slot, if it comes within [`PREPAID_SLOT_FRESHNESS`] of `taken`.
/// Retries take their slots as usual.
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::rate_limit::{LocalRateLimiter, RateLimitConfig, RateLimiter, with_slot_taken};
/// use encore_resilience::{Retry, RetryPolicy};
/// use tokio::time::Instant;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let limiter = LocalRateLimiter::new("suno", &RateLimitConfig::new(1, Duration::from_secs(1))).unwrap();
/// let start = Instant::now();
/// limiter.acquire(start + Duration::from_secs(5)).await.unwrap();
/// // … store that the request is about to go …
/// let sent = with_slot_taken(&limiter, Instant::now(), async {
///     Retry::new(&RetryPolicy::default())
///         .rate_limiter(&limiter)
///         .run(|_| async { Ok::<_, std::io::Error>(Instant::now()) })
///         .await
///         .unwrap()
/// })
/// .await;
/// assert_eq!(sent, start, "no second slot was waited for");
/// # }
/// ```
pub async fn with_slot_taken<F: Future>(
    limiter: &dyn RateLimiter,
    taken: Instant,
    call: F,
) -> F::Output {
    PREPAID
        .scope(Cell::new(Some((address(limiter), taken))), call)
        .await
}

/// Whether the running call holds a fresh slot of `limiter` taken ahead; uses it up.
pub(crate) fn take_prepaid(limiter: &dyn RateLimiter) -> bool {
    PREPAID
        .try_with(|prepaid| match prepaid.get() {
            Some((owner, taken)) if owner == address(limiter) => {
                prepaid.set(None);
                let age = taken.elapsed();
                if age > PREPAID_SLOT_FRESHNESS {
                    tracing::debug!(
                        age_ms = age.as_millis() as u64,
                        "a rate-limit slot taken ahead went stale before the call; taking another"
                    );
                }
                age <= PREPAID_SLOT_FRESHNESS
            }
            _ => false,
        })
        .unwrap_or(false)
}
