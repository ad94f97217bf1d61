use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_resilience::decorator::RetryableFn;
use encore_resilience::{
    AttemptTimedOut, Classify, Decision, Jitter, Retry, RetryError, RetryPolicy, StopReason,
};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum TestError {
    #[error("http 503")]
    Transient,
    #[error("http 400")]
    Permanent,
    #[error("http 429")]
    RateLimited(Duration),
    #[error(transparent)]
    Timeout(#[from] AttemptTimedOut),
}

impl Classify for TestError {
    fn classify(&self) -> Decision {
        match self {
            TestError::Transient | TestError::Timeout(_) => Decision::Retry,
            TestError::Permanent => Decision::Stop,
            TestError::RateLimited(wait) => Decision::RetryAfter(*wait),
        }
    }
    fn kind(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            TestError::Transient => "Transient",
            TestError::Permanent => "Permanent",
            TestError::RateLimited(_) => "RateLimited",
            TestError::Timeout(_) => "Timeout",
        })
    }
}

/// What the scripted operation does on one attempt.
#[derive(Clone)]
enum Step {
    Ok,
    Fail(TestError),
    Hang,
}

/// A scripted operation: the nth attempt does `steps[n]` (the last step repeats) and records
/// when (virtual time since `start`) each attempt began and the timeout it was given.
struct Script {
    steps: Vec<Step>,
    start: Instant,
    starts: Arc<Mutex<Vec<(Duration, Duration)>>>,
}

impl Script {
    fn new(steps: Vec<Step>) -> Self {
        Self {
            steps,
            start: Instant::now(),
            starts: Arc::default(),
        }
    }

    fn op(
        &self,
    ) -> impl FnMut(
        encore_resilience::Attempt,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<&'static str, TestError>> + Send>,
    > + use<> {
        let steps = self.steps.clone();
        let start = self.start;
        let starts = self.starts.clone();
        move |attempt| {
            let mut starts = starts.lock().unwrap();
            let step = steps[starts.len().min(steps.len() - 1)].clone();
            starts.push((start.elapsed(), attempt.timeout));
            Box::pin(async move {
                match step {
                    Step::Ok => Ok("ok"),
                    Step::Fail(e) => Err(e),
                    Step::Hang => std::future::pending().await,
                }
            })
        }
    }

    fn attempt_times(&self) -> Vec<Duration> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .map(|(at, _)| *at)
            .collect()
    }
    fn attempt_timeouts(&self) -> Vec<Duration> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| *t)
            .collect()
    }
}

fn secs(v: &[f64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
}

fn transient_forever() -> Script {
    Script::new(vec![Step::Fail(TestError::Transient)])
}

#[tokio::test(start_paused = true)]
async fn the_seed_plans_schedules_are_followed_exactly() {
    let table = [
        (1.0, 3, vec![0.0, 1.0, 3.0, 7.0]), // suno.generate, creatomate.render: 1 → 2 → 4 s
        (2.0, 3, vec![0.0, 2.0, 6.0, 14.0]), // openai: 2 → 4 → 8 s
        (1.0, 2, vec![0.0, 1.0, 3.0]),      // status calls: 1 → 2 s
        (2.0, 2, vec![0.0, 2.0, 6.0]),      // suno.timestamps: 2 → 4 s
    ];
    for (base, retries, expected) in table {
        let policy = RetryPolicy::new()
            .with_base_delay(Duration::from_secs_f64(base))
            .with_max_retries(retries);
        let script = transient_forever();
        let err = Retry::new(&policy).run(script.op()).await.unwrap_err();
        assert_eq!(
            script.attempt_times(),
            secs(&expected),
            "base {base}, {retries} retries"
        );
        assert_eq!(err.attempts(), retries + 1);
    }
}

#[tokio::test(start_paused = true)]
async fn waits_are_capped_at_max_delay() {
    let policy = RetryPolicy::new()
        .with_max_retries(5)
        .with_max_delay(Duration::from_secs(3));
    let script = transient_forever();
    let _ = Retry::new(&policy).run(script.op()).await;
    assert_eq!(
        script.attempt_times(),
        secs(&[0.0, 1.0, 3.0, 6.0, 9.0, 12.0])
    );
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_then_succeed() {
    let policy = RetryPolicy::default();
    let script = Script::new(vec![
        Step::Fail(TestError::Transient),
        Step::Fail(TestError::Transient),
        Step::Ok,
    ]);
    let started = Instant::now();
    let value = Retry::new(&policy).run(script.op()).await.unwrap();
    assert_eq!(value, "ok");
    assert_eq!(script.attempt_times(), secs(&[0.0, 1.0, 3.0]));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_normal_call_is_unchanged_by_retries() {
    for enabled in [true, false] {
        let policy = RetryPolicy::new().with_enabled(enabled);
        let script = Script::new(vec![Step::Ok]);
        assert_eq!(Retry::new(&policy).run(script.op()).await.unwrap(), "ok");
        assert_eq!(script.attempt_times(), secs(&[0.0]));
    }
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_stops_at_once_and_is_returned_as_itself() {
    let policy = RetryPolicy::default();
    let script = Script::new(vec![Step::Fail(TestError::Permanent)]);
    let err = Retry::new(&policy)
        .name("suno.generate")
        .run(script.op())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RetryError::Permanent(TestError::Permanent)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "http 400");
    assert_eq!(script.attempt_times(), secs(&[0.0]));
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_after_retries_says_so() {
    let policy = RetryPolicy::default();
    let script = Script::new(vec![
        Step::Fail(TestError::Transient),
        Step::Fail(TestError::Permanent),
    ]);
    let err = Retry::new(&policy)
        .name("suno.generate")
        .run(script.op())
        .await
        .unwrap_err();
    assert_eq!(err.stop_reason(), Some(&StopReason::Permanent));
    assert_eq!(err.attempts(), 2);
    assert_eq!(
        err.to_string(),
        "suno.generate: gave up after 2 attempts in 1s (permanent error): http 400"
    );
}

#[tokio::test(start_paused = true)]
async fn exhaustion_returns_the_rich_error() {
    let policy = RetryPolicy::default();
    let script = transient_forever();
    let err = Retry::new(&policy)
        .name("suno.generate")
        .run(script.op())
        .await
        .unwrap_err();
    let RetryError::Exhausted(x) = &err else {
        panic!("expected exhaustion, got {err:?}")
    };
    assert_eq!(x.attempts(), 4);
    assert_eq!(x.elapsed(), Duration::from_secs(7));
    assert_eq!(x.operation(), Some("suno.generate"));
    assert_eq!(x.reason(), &StopReason::AttemptsExhausted);
    assert_eq!(x.last_error(), &TestError::Transient);
    assert_eq!(
        err.to_string(),
        "suno.generate: gave up after 4 attempts in 7s: http 503"
    );
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "http 503");
}

#[tokio::test(start_paused = true)]
async fn disabled_retries_make_exactly_one_attempt_still_with_its_timeout() {
    let policy = RetryPolicy::new()
        .with_enabled(false)
        .with_attempt_timeout(Duration::from_secs(5));
    let script = Script::new(vec![Step::Hang]);
    let started = Instant::now();
    let err = Retry::new(&policy)
        .name("openai.responses")
        .run(script.op())
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(script.attempt_times(), secs(&[0.0]));
    assert_eq!(err.stop_reason(), Some(&StopReason::RetriesDisabled));
    assert_eq!(
        err.last_error(),
        &TestError::Timeout(AttemptTimedOut {
            limit: Duration::from_secs(5)
        })
    );
    assert_eq!(
        err.to_string(),
        "openai.responses: gave up after 1 attempt in 5s (retries disabled): attempt timed out after 5s"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_never_overshot_and_the_last_attempt_shrinks() {
    let policy = RetryPolicy::new()
        .with_max_retries(10)
        .with_base_delay(Duration::from_millis(500))
        .with_attempt_timeout(Duration::from_secs(4))
        .with_deadline(Duration::from_secs(10));
    let script = Script::new(vec![Step::Hang]);
    let started = Instant::now();
    let err = Retry::new(&policy).run(script.op()).await.unwrap_err();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(10),
        "stopped exactly at the deadline"
    );
    assert_eq!(script.attempt_times(), secs(&[0.0, 4.5, 9.5]));
    assert_eq!(script.attempt_timeouts(), secs(&[4.0, 4.0, 0.5]));
    assert!(
        matches!(
            err.stop_reason(),
            Some(StopReason::Deadline {
                next_wait: None,
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_does_not_fit_stops_now() {
    let policy = RetryPolicy::new()
        .with_base_delay(Duration::from_secs(8))
        .with_attempt_timeout(Duration::from_secs(5))
        .with_deadline(Duration::from_secs(10));
    let script = Script::new(vec![Step::Hang]);
    let started = Instant::now();
    let err = Retry::new(&policy)
        .name("x")
        .run(script.op())
        .await
        .unwrap_err();
    // The first attempt times out at 5 s; an 8 s wait cannot fit in the 5 s left.
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(
        err.stop_reason(),
        Some(&StopReason::Deadline {
            deadline: Duration::from_secs(10),
            next_wait: Some(Duration::from_secs(8)),
            left: Duration::from_secs(5),
        })
    );
    assert!(
        err.to_string()
            .contains("the next wait of 8s does not fit in the 5s left"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_what_is_left_stops_immediately() {
    let policy = RetryPolicy::new().with_deadline(Duration::from_secs(60));
    let script = Script::new(vec![Step::Fail(TestError::RateLimited(
        Duration::from_secs(90),
    ))]);
    let started = Instant::now();
    let err = Retry::new(&policy).run(script.op()).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::ZERO, "no sleep at all");
    assert!(matches!(
        err.stop_reason(),
        Some(StopReason::Deadline { next_wait: Some(w), .. }) if *w == Duration::from_secs(90)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_above_the_ceiling_stops_and_names_the_wait() {
    let policy = RetryPolicy::new().with_deadline(Duration::from_secs(3600));
    let policy = policy.with_attempt_timeout(Duration::from_secs(30));
    let script = Script::new(vec![Step::Fail(TestError::RateLimited(
        Duration::from_secs(300),
    ))]);
    let err = Retry::new(&policy)
        .name("openai.responses")
        .run(script.op())
        .await
        .unwrap_err();
    assert_eq!(
        err.stop_reason(),
        Some(&StopReason::RetryAfterTooLong {
            requested: Duration::from_secs(300),
            limit: Duration::from_secs(120),
        })
    );
    assert!(err.to_string().contains("server asked to wait 5m"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_is_honoured_exactly_instead_of_the_backoff() {
    let policy = RetryPolicy::default();
    let script = Script::new(vec![
        Step::Fail(TestError::RateLimited(Duration::from_millis(1500))),
        Step::Fail(TestError::Transient),
        Step::Ok,
    ]);
    Retry::new(&policy).run(script.op()).await.unwrap();
    // 1.5 s as the server asked, then the backoff goes on from its second step (2 s).
    assert_eq!(script.attempt_times(), secs(&[0.0, 1.5, 3.5]));
}

#[tokio::test(start_paused = true)]
async fn the_on_retry_hook_sees_attempt_delay_and_error() {
    let policy = RetryPolicy::default();
    let script = Script::new(vec![
        Step::Fail(TestError::Transient),
        Step::Fail(TestError::RateLimited(Duration::from_millis(250))),
        Step::Ok,
    ]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    Retry::<TestError>::new(&policy)
        .name("suno.status")
        .on_retry(move |ev| {
            log.lock().unwrap().push((
                ev.operation.map(str::to_owned),
                ev.attempt,
                ev.max_attempts,
                ev.delay,
                ev.server_requested,
                ev.error.clone(),
            ));
        })
        .run(script.op())
        .await
        .unwrap();
    let op = Some("suno.status".to_owned());
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (
                op.clone(),
                1,
                4,
                Duration::from_secs(1),
                false,
                TestError::Transient
            ),
            (
                op,
                2,
                4,
                Duration::from_millis(250),
                true,
                TestError::RateLimited(Duration::from_millis(250))
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_mid_sleep_stops_further_attempts() {
    let policy = RetryPolicy::default();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let running = Retry::new(&policy).run(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>(TestError::Transient) }
    });
    // Attempts at 0 s and 1 s; at 1.5 s the loop sleeps until 3 s and is dropped.
    let outcome = tokio::time::timeout(Duration::from_millis(1500), running).await;
    assert!(outcome.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "nothing was left running");
}

#[tokio::test(start_paused = true)]
async fn jitter_in_the_loop_is_reproducible_with_a_seed() {
    let policy = RetryPolicy::new()
        .with_jitter(Jitter::Full)
        .with_max_retries(3);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let script = transient_forever();
        let _ = Retry::new(&policy).jitter_seed(99).run(script.op()).await;
        runs.push(script.attempt_times());
    }
    assert_eq!(runs[0], runs[1]);
    let gaps: Vec<Duration> = runs[0]
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    for (gap, nominal) in gaps.iter().zip(secs(&[1.0, 2.0, 4.0])) {
        assert!(*gap <= nominal, "{gap:?} > {nominal:?}");
    }
    assert_ne!(gaps, secs(&[1.0, 2.0, 4.0]), "jitter changed something");
}

#[tokio::test(start_paused = true)]
async fn with_retry_wraps_a_plain_function() {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    async fn flaky() -> Result<u32, TestError> {
        if CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(TestError::Transient)
        } else {
            Ok(7)
        }
    }
    let policy = RetryPolicy::default();
    let started = Instant::now();
    let value = flaky.with_retry(&policy).name("flaky").await.unwrap();
    assert_eq!(value, 7);
    assert_eq!(CALLS.load(Ordering::SeqCst), 3);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_closure_can_classify_instead_of_the_trait() {
    let policy = RetryPolicy::default();
    let calls = AtomicU32::new(0);
    let err = Retry::new(&policy)
        .run_with(
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset)) }
            },
            |_e: &std::io::Error| Decision::Stop,
        )
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the closure said stop");
    assert!(!err.is_exhausted());
}

#[tokio::test(start_paused = true)]
async fn the_operation_is_told_which_attempts_are_retries() {
    let policy = RetryPolicy::default();
    let seen = Mutex::new(Vec::new());
    let _ = Retry::new(&policy)
        .run(|attempt| {
            seen.lock()
                .unwrap()
                .push((attempt.number, attempt.max_attempts, attempt.is_retry()));
            async { Err::<(), _>(TestError::Transient) }
        })
        .await;
    assert_eq!(
        seen.into_inner().unwrap(),
        [(1, 4, false), (2, 4, true), (3, 4, true), (4, 4, true)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_deadline_too_far_to_add_is_about_thirty_years() {
    // `Instant + Duration::MAX` overflows: the loop caps the deadline (and the attempt's bound)
    // at about 30 years from now instead of panicking or giving up at once.
    let policy = RetryPolicy::new()
        .with_attempt_timeout(Duration::MAX)
        .with_deadline(Duration::MAX);
    let script = Script::new(vec![Step::Fail(TestError::Transient), Step::Ok]);
    assert_eq!(Retry::new(&policy).run(script.op()).await.unwrap(), "ok");
    assert_eq!(script.attempt_times(), secs(&[0.0, 1.0]));
    let year = Duration::from_secs(86_400 * 365);
    for timeout in script.attempt_timeouts() {
        assert!(
            timeout > year * 29 && timeout <= year * 30,
            "{timeout:?} is not about 30 years"
        );
    }
}
