//! The retry budget in the retry loop: retries add at most `ratio` of the load, plus the floor.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use encore_resilience::budget::{RetryBudget, RetryBudgetConfig};
use encore_resilience::{Retry, RetryError, RetryPolicy, StopReason};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::support::{TestError, always, budget, count, counting};

/// Runs `calls` concurrent calls that always fail transiently (3 retries each by policy), all
/// sharing `budget` (or none); returns the number of attempts made and the errors.
async fn outage(calls: u32, budget: Option<&RetryBudget>) -> (u32, Vec<RetryError<TestError>>) {
    let attempts = Arc::new(AtomicU32::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..calls {
        let op = counting(&attempts, always(TestError::Transient));
        let budget = budget.cloned();
        tasks.spawn(async move {
            let policy = RetryPolicy::default();
            let mut retry = Retry::new(&policy).name("suno.generate");
            if let Some(budget) = &budget {
                retry = retry.budget(budget);
            }
            retry.run(op).await.unwrap_err()
        });
    }
    let errors = tasks.join_all().await;
    (count(&attempts), errors)
}

#[tokio::test(start_paused = true)]
async fn a_hundred_failing_calls_add_at_most_the_ratio_plus_the_floor() {
    let (unbudgeted, _) = outage(100, None).await;
    assert_eq!(unbudgeted, 400, "without a budget: 4 attempts per call");

    let shared = budget(RetryBudgetConfig::default());
    let (attempts, errors) = outage(100, Some(&shared)).await;
    // 100 first attempts deposit 20 tokens; the floor adds 10 per 10 s window; every retry
    // happens within 7 s of the start, so within one window.
    let bound = 100 + 20 + 10;
    assert!(attempts <= bound, "{attempts} attempts > {bound}");
    assert_eq!(attempts, 130, "every token was used, none more");
    let amplification = f64::from(attempts) / 100.0;
    assert!(amplification <= 1.3, "amplification {amplification}");

    let refused: Vec<_> = errors.iter().filter(|e| e.is_budget_exhausted()).collect();
    assert!(
        refused.len() >= 70,
        "{} calls were refused a retry",
        refused.len()
    );
    assert_eq!(
        refused[0].stop_reason(),
        Some(&StopReason::BudgetExhausted {
            upstream: "suno".into(),
            per_mille: 200
        })
    );
    assert_eq!(
        refused[0].to_string(),
        "suno.generate: gave up after 1 attempt in 0ms (retry budget for suno exhausted: \
         retries are limited to 20% of calls): http 503"
    );
}

#[tokio::test(start_paused = true)]
async fn a_steady_stream_of_failing_calls_cannot_bank_retries() {
    // 10 new calls per second for a minute, all failing: deposits expire after the window, so
    // the bound is the ratio plus the floor over the time it ran, not a growing hoard.
    let shared = budget(RetryBudgetConfig::default());
    let attempts = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let logical = 600;
    for i in 0..logical {
        if i % 10 == 0 && i > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let op = counting(&attempts, always(TestError::Transient));
        let shared = shared.clone();
        tasks.spawn(async move {
            let policy = RetryPolicy::default();
            Retry::new(&policy).budget(&shared).run(op).await
        });
    }
    tasks.join_all().await;
    let seconds = started.elapsed().as_secs_f64().ceil() as u32;
    let floor = seconds + 10; // 1 retry/s while it ran, plus one window's reserve
    let bound = logical + logical / 5 + floor;
    let attempts = count(&attempts);
    assert!(attempts <= bound, "{attempts} attempts > {bound}");
    assert!(
        f64::from(attempts) / f64::from(logical) <= 1.32,
        "amplification {}",
        f64::from(attempts) / f64::from(logical)
    );
}

#[tokio::test(start_paused = true)]
async fn a_quiet_client_can_still_retry() {
    let shared = budget(RetryBudgetConfig::default());
    let policy = RetryPolicy::default();

    // One call that recovers on its third attempt.
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = attempts.clone();
    let op = counting(&attempts, move || {
        if count(&seen) < 3 {
            Err(TestError::Transient)
        } else {
            Ok("ok")
        }
    });
    let value = Retry::new(&policy).budget(&shared).run(op).await.unwrap();
    assert_eq!(value, "ok");
    assert_eq!(count(&attempts), 3);

    // One call that never recovers uses every retry its policy allows.
    let attempts = Arc::new(AtomicU32::new(0));
    let op = counting(&attempts, always(TestError::Transient));
    let err = Retry::new(&policy)
        .budget(&shared)
        .run(op)
        .await
        .unwrap_err();
    assert_eq!(count(&attempts), 4);
    assert_eq!(err.stop_reason(), Some(&StopReason::AttemptsExhausted));
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_after_the_window() {
    let config = RetryBudgetConfig::default().with_min_per_sec(0.0); // deposits only
    let shared = budget(config);
    for _ in 0..50 {
        shared.deposit();
    }
    assert_eq!(shared.available(), 10, "50 calls × 0.2");
    tokio::time::advance(Duration::from_millis(9999)).await;
    assert_eq!(shared.available(), 10, "still within the window");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(shared.available(), 0, "expired");

    // So a failing call now may not retry: its own deposit (0.2) is not a whole token.
    let attempts = Arc::new(AtomicU32::new(0));
    let op = counting(&attempts, always(TestError::Transient));
    let policy = RetryPolicy::default();
    let err = Retry::new(&policy)
        .budget(&shared)
        .run(op)
        .await
        .unwrap_err();
    assert_eq!(count(&attempts), 1);
    assert!(err.is_budget_exhausted(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_floor_refills_as_withdrawals_expire() {
    let shared = budget(RetryBudgetConfig::default());
    let policy = RetryPolicy::default()
        .with_max_retries(10)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(1));
    let attempts = Arc::new(AtomicU32::new(0));
    let op = counting(&attempts, always(TestError::Transient));
    let err = Retry::new(&policy)
        .budget(&shared)
        .run(op)
        .await
        .unwrap_err();
    assert_eq!(count(&attempts), 11, "the floor of 10 retries, all used");
    assert!(err.stop_reason() == Some(&StopReason::AttemptsExhausted));
    let op = counting(&attempts, always(TestError::Transient));
    let err = Retry::new(&policy)
        .budget(&shared)
        .run(op)
        .await
        .unwrap_err();
    assert!(err.is_budget_exhausted(), "{err}");
    assert_eq!(count(&attempts), 12, "no token left: no retry");

    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(shared.available(), 10, "the floor is back");
}

#[tokio::test(start_paused = true)]
async fn a_disabled_budget_changes_nothing() {
    let shared = budget(RetryBudgetConfig::default().with_enabled(false));
    let (attempts, errors) = outage(100, Some(&shared)).await;
    assert_eq!(attempts, 400);
    assert!(
        errors
            .iter()
            .all(|e| e.stop_reason() == Some(&StopReason::AttemptsExhausted))
    );
}

#[test]
fn the_budget_is_send_sync_and_clones_share_it() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<RetryBudget>();
    let config = RetryBudgetConfig::default().with_min_per_sec(0.0);
    let a = budget(config);
    let b = a.clone();
    for _ in 0..5 {
        a.deposit();
    }
    assert_eq!(b.available(), 1);
    assert!(b.try_withdraw());
    assert_eq!(a.available(), 0);
    assert_eq!(b.upstream(), "suno");
}
