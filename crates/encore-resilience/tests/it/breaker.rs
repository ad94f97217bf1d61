//! The circuit breaker in the retry loop: opens on transient failures, fails fast without calling
//! the operation, probes after `open_for`, and ignores rate limits and permanent errors.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_resilience::breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitOpen, CircuitState, StateChange,
};
use encore_resilience::{Decision, Retry, RetryError, RetryPolicy, StopReason};
use tokio::time::Instant;

use crate::support::{TestError, always, breaker, count, counting};

fn single_attempt() -> RetryPolicy {
    RetryPolicy::default().with_max_retries(0)
}

/// One call (no retries) through `breaker` answering with `answer`.
async fn call(
    breaker: &CircuitBreaker,
    calls: &Arc<AtomicU32>,
    answer: Result<&'static str, TestError>,
) -> Result<&'static str, RetryError<TestError>> {
    let policy = single_attempt();
    Retry::new(&policy)
        .name("suno.generate")
        .breaker(breaker)
        .run(counting(calls, move || answer.clone()))
        .await
}

async fn open(breaker: &CircuitBreaker, calls: &Arc<AtomicU32>) {
    for _ in 0..5 {
        let _ = call(breaker, calls, Err(TestError::Transient)).await;
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn five_transient_failures_in_a_row_open_it_even_across_calls() {
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    let policy = RetryPolicy::default(); // 3 retries: 4 attempts per call

    let first = Retry::new(&policy)
        .name("suno.generate")
        .breaker(&shared)
        .run(counting(&calls, always(TestError::Transient)))
        .await
        .unwrap_err();
    assert_eq!(first.stop_reason(), Some(&StopReason::AttemptsExhausted));
    assert_eq!(shared.state(), CircuitState::Closed, "4 failures so far");

    let started = Instant::now();
    let second = Retry::new(&policy)
        .name("suno.generate")
        .breaker(&shared)
        .run(counting(&calls, always(TestError::Transient)))
        .await
        .unwrap_err();
    assert_eq!(
        count(&calls),
        5,
        "the 5th failure opened it: no more attempts"
    );
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no wait for a retry that cannot happen"
    );
    assert_eq!(shared.state(), CircuitState::Open);
    assert_eq!(
        second.stop_reason(),
        Some(&StopReason::CircuitOpen {
            upstream: "suno".into(),
            retry_in: Duration::from_secs(10)
        })
    );
    assert_eq!(
        second.last_error(),
        &TestError::Transient,
        "the real error is kept"
    );
    assert_eq!(
        second.to_string(),
        "suno.generate: gave up after 1 attempt in 0ms (circuit open for suno, next probe in \
         10s): http 503"
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_fails_fast_without_calling_the_operation() {
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    open(&shared, &calls).await;
    assert_eq!(count(&calls), 5);

    let started = Instant::now();
    for _ in 0..10 {
        let err = call(&shared, &calls, Ok("never")).await.unwrap_err();
        assert_eq!(err.attempts(), 0);
        assert!(err.is_circuit_open());
        assert_eq!(
            err.to_string(),
            "suno.generate: circuit open for suno, next probe in 10s"
        );
        assert!(matches!(
            err.last_error(),
            TestError::Open(CircuitOpen { .. })
        ));
    }
    assert_eq!(count(&calls), 5, "the operation was not called");
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "failing fast means at once"
    );

    tokio::time::advance(Duration::from_millis(5800)).await;
    let err = call(&shared, &calls, Ok("never")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "suno.generate: circuit open for suno, next probe in 4.2s"
    );
}

#[tokio::test(start_paused = true)]
async fn after_open_for_one_probe_goes_through_and_its_success_closes_it() {
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    open(&shared, &calls).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(shared.state(), CircuitState::HalfOpen);

    // The probe takes 2 s to answer; meanwhile every other call fails fast.
    let probe = {
        let shared = shared.clone();
        let calls = calls.clone();
        tokio::spawn(async move {
            let policy = single_attempt();
            Retry::new(&policy)
                .breaker(&shared)
                .run(move |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        Ok::<_, TestError>("back")
                    }
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    assert_eq!(count(&calls), 6, "the probe went out");
    let err = call(&shared, &calls, Ok("never")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "suno.generate: circuit half-open for suno, waiting for a probe"
    );
    assert_eq!(count(&calls), 6, "only one probe");

    assert_eq!(probe.await.unwrap().unwrap(), "back");
    assert_eq!(shared.state(), CircuitState::Closed);
    assert_eq!(call(&shared, &calls, Ok("ok")).await.unwrap(), "ok");
    assert_eq!(count(&calls), 7);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_opens_it_again_for_twice_as_long() {
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    open(&shared, &calls).await;
    tokio::time::advance(Duration::from_secs(10)).await;

    let policy = RetryPolicy::default(); // would retry, but the breaker says no
    let err = Retry::new(&policy)
        .name("suno.generate")
        .breaker(&shared)
        .run(counting(&calls, always(TestError::Transient)))
        .await
        .unwrap_err();
    assert_eq!(count(&calls), 6, "one probe, no retry");
    assert_eq!(shared.state(), CircuitState::Open);
    assert_eq!(
        err.stop_reason(),
        Some(&StopReason::CircuitOpen {
            upstream: "suno".into(),
            retry_in: Duration::from_secs(20)
        })
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limited_answers_neither_open_it_nor_hide_failures() {
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    let limited = || Err(TestError::RateLimited(Duration::from_secs(1)));
    for _ in 0..50 {
        let _ = call(&shared, &calls, limited()).await;
    }
    assert_eq!(
        shared.state(),
        CircuitState::Closed,
        "a rate-limited upstream is alive"
    );

    // A 429 between hard failures does not reset the run of failures either.
    for answer in [
        Err(TestError::Transient),
        Err(TestError::Transient),
        limited(),
        Err(TestError::Transient),
        limited(),
        Err(TestError::Transient),
    ] {
        let _ = call(&shared, &calls, answer).await;
    }
    assert_eq!(shared.state(), CircuitState::Closed);
    let _ = call(&shared, &calls, Err(TestError::Transient)).await;
    assert_eq!(
        shared.state(),
        CircuitState::Open,
        "5 hard failures in a row"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_probe_settles_nothing_and_the_next_call_probes() {
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    open(&shared, &calls).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    let _ = call(
        &shared,
        &calls,
        Err(TestError::RateLimited(Duration::from_secs(1))),
    )
    .await;
    assert_eq!(shared.state(), CircuitState::HalfOpen);
    assert_eq!(call(&shared, &calls, Ok("ok")).await.unwrap(), "ok");
    assert_eq!(shared.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_count_as_the_upstream_being_up() {
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    for _ in 0..50 {
        let err = call(&shared, &calls, Err(TestError::Permanent))
            .await
            .unwrap_err();
        assert!(matches!(err, RetryError::Permanent(TestError::Permanent)));
    }
    assert_eq!(shared.state(), CircuitState::Closed);

    // …and end a run of transient failures.
    for _ in 0..4 {
        let _ = call(&shared, &calls, Err(TestError::Transient)).await;
    }
    let _ = call(&shared, &calls, Err(TestError::Permanent)).await;
    for _ in 0..4 {
        let _ = call(&shared, &calls, Err(TestError::Transient)).await;
    }
    assert_eq!(shared.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn half_the_attempts_failing_opens_it_without_a_run_of_failures() {
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    for i in 0..9 {
        let answer = if i % 2 == 0 {
            Ok("ok")
        } else {
            Err(TestError::Transient)
        };
        let _ = call(&shared, &calls, answer).await;
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(
        shared.state(),
        CircuitState::Closed,
        "4 of 9: too few calls to judge"
    );
    let _ = call(&shared, &calls, Err(TestError::Transient)).await;
    assert_eq!(shared.state(), CircuitState::Open, "5 of 10 failed");
}

#[tokio::test(start_paused = true)]
async fn the_breaker_outcome_can_differ_from_the_retry_decision() {
    // A billed call that timed out is not retried (Stop), but the upstream is failing.
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    for _ in 0..5 {
        let err = call(&shared, &calls, Err(TestError::BilledTimeout))
            .await
            .unwrap_err();
        assert!(!err.is_exhausted(), "not retried");
    }
    assert_eq!(shared.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn run_with_reports_outcomes_from_the_decision() {
    let shared = breaker(CircuitBreakerConfig::default());
    let policy = single_attempt();
    for _ in 0..5 {
        let _ = Retry::new(&policy)
            .breaker(&shared)
            .run_with(
                |_| async { Err::<(), _>(std::io::Error::other("503")) },
                |_: &std::io::Error| Decision::Retry,
            )
            .await;
    }
    assert_eq!(shared.state(), CircuitState::Open);
    let err = Retry::new(&policy)
        .breaker(&shared)
        .run_with(
            |_| async { Ok::<_, std::io::Error>(()) },
            |_: &std::io::Error| Decision::Retry,
        )
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 0);
    assert!(
        err.last_error()
            .to_string()
            .starts_with("circuit open for suno")
    );
}

#[tokio::test(start_paused = true)]
async fn state_changes_are_observable() {
    let shared = breaker(CircuitBreakerConfig::default());
    let seen: Arc<Mutex<Vec<StateChange>>> = Arc::default();
    let log = seen.clone();
    shared.on_state_change(move |change| log.lock().unwrap().push(change.clone()));
    let calls = Arc::new(AtomicU32::new(0));

    open(&shared, &calls).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    let _ = call(&shared, &calls, Err(TestError::Transient)).await; // the probe fails
    tokio::time::advance(Duration::from_secs(20)).await;
    let _ = call(&shared, &calls, Ok("ok")).await; // the next one succeeds

    let seen: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.from, c.to, c.open_for.map(|d| d.as_secs())))
        .collect();
    use CircuitState::{Closed, HalfOpen, Open};
    assert_eq!(
        seen,
        [
            (Closed, Open, Some(10)),
            (Open, HalfOpen, None),
            (HalfOpen, Open, Some(20)),
            (Open, HalfOpen, None),
            (HalfOpen, Closed, None),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_its_slot() {
    let shared = breaker(CircuitBreakerConfig::default());
    let calls = Arc::new(AtomicU32::new(0));
    open(&shared, &calls).await;
    tokio::time::advance(Duration::from_secs(10)).await;

    let policy = single_attempt();
    let hanging = Retry::new(&policy)
        .breaker(&shared)
        .run(|_| std::future::pending::<Result<(), TestError>>());
    let gave_up = tokio::time::timeout(Duration::from_secs(1), hanging).await;
    assert!(gave_up.is_err(), "the caller dropped the probe");
    assert_eq!(shared.state(), CircuitState::HalfOpen);
    assert_eq!(
        call(&shared, &calls, Ok("ok")).await.unwrap(),
        "ok",
        "the next call probes"
    );
    assert_eq!(shared.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_counts_as_a_failure() {
    let shared = breaker(CircuitBreakerConfig::default());
    let policy = single_attempt().with_attempt_timeout(Duration::from_secs(1));
    for _ in 0..5 {
        let err = Retry::new(&policy)
            .breaker(&shared)
            .run(|_| std::future::pending::<Result<(), TestError>>())
            .await
            .unwrap_err();
        assert!(matches!(err.last_error(), TestError::Timeout(_)));
    }
    assert_eq!(shared.state(), CircuitState::Open);
}

#[test]
fn the_breaker_is_send_sync_and_clones_share_it() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<CircuitBreaker>();
    assert_send_sync::<CircuitOpen>();
    let a = breaker(CircuitBreakerConfig::default().with_consecutive_failures(1));
    let b = a.clone();
    a.try_acquire()
        .unwrap()
        .record(encore_resilience::Outcome::Failure);
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.upstream(), "suno");
}
