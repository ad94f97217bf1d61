//! On the real clock: timers fire a tick (~1 ms) late, and the loop must not let that add up
//! over attempts and waits (it schedules on absolute instants). Paused time cannot show this:
//! there, timers fire exactly.

use std::time::Duration;

use encore_resilience::{Jitter, Retry, RetryError, RetryPolicy, StopReason};
use tokio::time::Instant;

use crate::support::TestError;

/// Runs `attempts` attempts that all time out after `timeout`; returns how long the call took.
async fn all_time_out(policy: &RetryPolicy) -> Duration {
    let started = Instant::now();
    let result = Retry::new(policy)
        .run(|_| std::future::pending::<Result<(), TestError>>())
        .await;
    let elapsed = started.elapsed();
    match result {
        Err(RetryError::Exhausted(x)) => {
            assert_eq!(x.attempts(), policy.max_attempts());
            assert_eq!(*x.reason(), StopReason::AttemptsExhausted);
        }
        other => panic!("expected exhaustion, got {other:?}"),
    }
    elapsed
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// 4 attempts × 20 ms with 10/20/40 ms waits: ideal 150 ms.
#[tokio::test]
async fn timed_out_attempts_and_waits_keep_to_the_schedule() {
    let policy = RetryPolicy::new()
        .with_max_retries(3)
        .with_base_delay(ms(10))
        .with_max_delay(ms(40))
        .with_multiplier(2.0)
        .with_jitter(Jitter::None)
        .with_attempt_timeout(ms(20))
        .with_deadline(Duration::from_secs(10));
    let ideal = ms(4 * 20 + 10 + 20 + 40);
    let elapsed = all_time_out(&policy).await;
    assert!(
        elapsed >= ideal,
        "{elapsed:?} is shorter than the schedule ({ideal:?})"
    );
    // Generous for a loaded CI machine; the precision figure belongs to the benchmark.
    assert!(
        elapsed <= ideal + ms(60),
        "{elapsed:?}: more than 60 ms over the ideal {ideal:?}"
    );
}

/// 64 attempts × 2 ms with 1 ms waits: 127 timers, ideal 191 ms. A loop that started each timer
/// from when the previous one fired would be ~1 ms late per timer (over 120 ms in all); one on
/// absolute instants is late only by the last timer's latency. The 60 ms bound is generous for a
/// loaded CI machine and still far below what accumulated lateness would give.
#[tokio::test]
async fn lateness_does_not_add_up_over_many_timers() {
    let policy = RetryPolicy::new()
        .with_max_retries(63)
        .with_base_delay(ms(1))
        .with_max_delay(ms(1))
        .with_jitter(Jitter::None)
        .with_attempt_timeout(ms(2))
        .with_deadline(Duration::from_secs(10));
    let ideal = ms(64 * 2 + 63);
    let elapsed = all_time_out(&policy).await;
    assert!(
        elapsed >= ideal,
        "{elapsed:?} is shorter than the schedule ({ideal:?})"
    );
    assert!(
        elapsed <= ideal + ms(60),
        "{elapsed:?}: more than 60 ms over the ideal {ideal:?}: timer lateness adds up"
    );
}
