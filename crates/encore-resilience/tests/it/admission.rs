//! The admission step the loop runs before each attempt (a rate-limit slot, the breaker's
//! permission), and the events it reports, on paused time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
use encore_resilience::budget::RetryBudgetConfig;
use encore_resilience::rate_limit::{LocalRateLimiter, RateLimitConfig, RateLimiter};
use encore_resilience::{Attempt, Event, Retry, RetryError, RetryPolicy, StopReason};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::support::{TestError, budget};

/// One request per second, no burst.
fn one_per_second() -> LocalRateLimiter {
    LocalRateLimiter::new("suno", &RateLimitConfig::new(1, Duration::from_secs(1))).unwrap()
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// The lines an event hook wrote.
type Seen = Arc<Mutex<Vec<String>>>;

/// What an event hook saw, as text.
fn recorder() -> (Seen, impl FnMut(&Event<'_, TestError>) + Send + 'static) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let hook = move |event: &Event<'_, TestError>| {
        let line = match event {
            Event::SlotWaited { attempt, waited } => format!("{attempt}: waited {waited:?}"),
            Event::Refused { attempt, reason } => format!("{attempt}: refused: {reason}"),
            Event::Succeeded { attempt, took } => format!("{attempt}: ok in {took:?}"),
            Event::Retrying(retry) => format!(
                "{}: {} in {:?}, retry in {:?}",
                retry.attempt, retry.error, retry.took, retry.delay
            ),
            Event::Stopped {
                attempt,
                error,
                reason,
                ..
            } => format!("{attempt}: {error}, stop: {reason}"),
            other => format!("{other:?}"),
        };
        log.lock().unwrap().push(line);
    };
    (seen, hook)
}

#[tokio::test(start_paused = true)]
async fn a_queued_request_is_not_counted_as_sent_its_timeout_starts_with_its_slot() {
    let limiter = one_per_second();
    let policy = RetryPolicy::new()
        .with_attempt_timeout(ms(500))
        .with_deadline(Duration::from_secs(5));
    let first = Retry::new(&policy)
        .rate_limiter(&limiter)
        .run(|_| async { Ok::<_, TestError>("first") })
        .await;
    assert_eq!(first.unwrap(), "first");

    // The second call queues for 1 s, then gets its whole 500 ms: the wait for the slot is not
    // part of the attempt's timeout.
    let start = Instant::now();
    let seen_timeout = Arc::new(Mutex::new(None));
    let (events, hook) = recorder();
    let timeouts = seen_timeout.clone();
    let second = Retry::new(&policy)
        .rate_limiter(&limiter)
        .on_event(hook)
        .run(move |attempt: Attempt| {
            *timeouts.lock().unwrap() = Some((attempt.timeout, start.elapsed()));
            async {
                tokio::time::sleep(ms(400)).await; // slow, but within its own 500 ms
                Ok::<_, TestError>("second")
            }
        })
        .await;
    assert_eq!(second.unwrap(), "second");
    assert_eq!(*seen_timeout.lock().unwrap(), Some((ms(500), ms(1000))));
    assert_eq!(start.elapsed(), ms(1400));
    assert_eq!(
        *events.lock().unwrap(),
        ["1: waited 1s", "1: ok in 400ms"].map(String::from)
    );
}

#[tokio::test(start_paused = true)]
async fn no_slot_before_the_deadline_refuses_without_calling_and_says_when() {
    let limiter = one_per_second();
    let policy = RetryPolicy::new()
        .with_attempt_timeout(ms(200))
        .with_deadline(ms(500));
    Retry::new(&policy)
        .rate_limiter(&limiter)
        .run(|_| async { Ok::<_, TestError>(()) })
        .await
        .unwrap();
    let calls = AtomicU32::new(0);
    let (events, hook) = recorder();
    let start = Instant::now();
    let err = Retry::new(&policy)
        .name("suno.generate")
        .rate_limiter(&limiter)
        .on_event(hook)
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, TestError>(()) }
        })
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "refused at once");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the operation was not called"
    );
    assert_eq!(err.attempts(), 0);
    assert!(err.is_throttled() && !err.is_circuit_open());
    assert!(matches!(err.last_error(), TestError::Throttled(_)));
    let text = err.to_string();
    assert_eq!(
        text,
        "suno.generate: client-side rate limit for suno (1 requests per 1s): no slot before the \
         deadline, the next is in 1s with 500ms left; not sent"
    );
    assert_eq!(
        *events.lock().unwrap(),
        [format!("1: refused: {}", &text["suno.generate: ".len()..])]
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_that_gets_no_slot_keeps_the_last_real_error_and_its_budget_token() {
    let limiter = one_per_second();
    let shared = budget(RetryBudgetConfig::default());
    let policy = RetryPolicy::new()
        .with_base_delay(ms(100))
        .with_attempt_timeout(ms(200))
        .with_deadline(ms(800));
    let before = shared.available();
    let (events, hook) = recorder();
    let err = Retry::new(&policy)
        .rate_limiter(&limiter)
        .budget(&shared)
        .on_event(hook)
        .run(|_| async { Err::<(), _>(TestError::Transient) })
        .await
        .unwrap_err();
    // Attempt 1 at 0 ms fails; the retry after 100 ms would need the slot at 1 s: too late.
    assert_eq!(err.attempts(), 1);
    assert!(err.is_throttled());
    assert_eq!(*err.last_error(), TestError::Transient);
    assert_eq!(
        shared.available(),
        before,
        "the refused retry's token went back"
    );
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], "1: http 503 in 0ns, retry in 100ms");
    assert!(
        events[1].starts_with("2: refused: client-side rate limit for suno"),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn calls_queued_when_the_circuit_opens_leave_the_queue_at_once() {
    let limiter = Arc::new(one_per_second());
    let breaker = CircuitBreaker::new(
        "suno",
        CircuitBreakerConfig::new().with_consecutive_failures(1),
    )
    .unwrap();
    let policy = RetryPolicy::new()
        .with_enabled(false)
        .with_attempt_timeout(Duration::from_secs(1))
        .with_deadline(Duration::from_secs(30));
    let calls = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..5u64 {
        let (limiter, breaker, policy, calls) = (
            limiter.clone(),
            breaker.clone(),
            policy.clone(),
            calls.clone(),
        );
        set.spawn(async move {
            tokio::time::sleep(Duration::from_micros(i)).await; // arrive in order
            let limiter: &dyn RateLimiter = &*limiter;
            let result = Retry::new(&policy)
                .rate_limiter(limiter)
                .breaker(&breaker)
                .run(|_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async {
                        tokio::time::sleep(ms(100)).await;
                        Err::<(), _>(TestError::Transient)
                    }
                })
                .await;
            (result.unwrap_err(), start.elapsed())
        });
    }
    let results = set.join_all().await;
    // The first call fails after 100 ms and opens the circuit; the four queued behind it since
    // 1 ms are refused right then, not when their slots would have come (1, 2, 3, 4 s).
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(breaker.state(), CircuitState::Open);
    let refused: Vec<&(RetryError<TestError>, Duration)> =
        results.iter().filter(|(e, _)| e.attempts() == 0).collect();
    assert_eq!(refused.len(), 4);
    for (err, at) in refused {
        assert!(err.is_circuit_open(), "{err}");
        assert_eq!(*at, ms(100), "refused after {at:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_with_a_server_wait_holds_every_caller() {
    // 100 per second: only the hold can make the second call wait.
    let limiter = LocalRateLimiter::new(
        "creatomate",
        &RateLimitConfig::new(100, Duration::from_secs(1)).with_burst(100),
    )
    .unwrap();
    let policy = RetryPolicy::new().with_enabled(false);
    let _ = Retry::new(&policy)
        .rate_limiter(&limiter)
        .run(|_| async { Err::<(), _>(TestError::RateLimited(Duration::from_secs(3))) })
        .await;
    let start = Instant::now();
    let (events, hook) = recorder();
    Retry::new(&policy)
        .rate_limiter(&limiter)
        .on_event(hook)
        .run(|_| async { Ok::<_, TestError>(()) })
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(events.lock().unwrap()[0], "1: waited 3s");
}

#[tokio::test(start_paused = true)]
async fn every_attempt_ends_in_one_event_and_every_refusal_is_one() {
    let policy = RetryPolicy::new().with_max_retries(3);
    let shared = budget(
        RetryBudgetConfig::new()
            .with_min_per_sec(0.1)
            .with_ratio(0.0),
    ); // one retry in the window
    let (events, hook) = recorder();
    let attempt = AtomicU32::new(0);
    let err = Retry::new(&policy)
        .budget(&shared)
        .on_event(hook)
        .run(|_| {
            let n = attempt.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(ms(10 * u64::from(n + 1))).await;
                Err::<(), _>(TestError::Transient)
            }
        })
        .await
        .unwrap_err();
    assert!(err.is_budget_exhausted());
    assert_eq!(err.attempts(), 2);
    let budget_text = "retry budget for suno exhausted: retries are limited to 0% of calls";
    assert_eq!(
        *events.lock().unwrap(),
        [
            "1: http 503 in 10ms, retry in 1s".to_owned(),
            format!("2: http 503, stop: {budget_text}"),
            format!("3: refused: {budget_text}"),
        ]
    );
    // A permanent error is one `Stopped`, and is returned as itself.
    let (events, hook) = recorder();
    let err = Retry::new(&policy)
        .on_event(hook)
        .run(|_| async { Err::<(), _>(TestError::Permanent) })
        .await
        .unwrap_err();
    assert!(!err.is_exhausted());
    assert_eq!(
        *events.lock().unwrap(),
        ["1: http 400, stop: permanent error".to_owned()]
    );
    assert!(!StopReason::Permanent.is_refusal());
}
