//! The retry loop's log lines, captured. Its own test binary: tracing caches per-callsite interest
//! process-wide, so capturing with a thread-local subscriber races with tests on other threads.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use encore_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig};
use encore_resilience::{AttemptTimedOut, Classify, Decision, Outcome, Retry, RetryPolicy};

/// The tests here capture with thread-local subscribers; one at a time keeps them apart.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("http 503")]
    Transient,
    #[error(transparent)]
    Timeout(#[from] AttemptTimedOut),
}

impl Classify for TestError {
    fn classify(&self) -> Decision {
        Decision::Retry
    }
    fn kind(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            TestError::Transient => "Transient",
            TestError::Timeout(_) => "Timeout",
        })
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn every_retry_is_logged_with_attempt_delay_and_error() {
    let _serial = SERIAL.lock().await;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let policy = RetryPolicy::new().with_max_retries(2);
    let _ = Retry::new(&policy)
        .name("creatomate.status")
        .run(|_| async { Err::<(), _>(TestError::Transient) })
        .await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "two retries and one give-up:\n{text}");
    assert!(lines[0].contains(" WARN "), "{text}");
    assert!(
        lines[0]
            .contains("creatomate.status: attempt 1/3 failed, retrying in 1s: Transient: http 503"),
        "{text}"
    );
    for field in [
        "attempt=1",
        "max_attempts=3",
        "delay_ms=1000",
        "error_kind=Transient",
        "error=http 503",
    ] {
        assert!(lines[0].contains(field), "missing {field}: {}", lines[0]);
    }
    assert!(
        lines[1].contains("attempt 2/3 failed, retrying in 2s"),
        "{text}"
    );
    assert!(lines[2].contains(" ERROR "), "{text}");
    assert!(
        lines[2].contains("creatomate.status: gave up after 3 attempts in 3s"),
        "{text}"
    );
}

/// One formatter for durations and counts: a 250 ms wait is `250ms` (not `0.2s`), and a single
/// attempt is "1 attempt".
#[tokio::test(start_paused = true)]
async fn waits_and_counts_read_as_words_and_durations() {
    let _serial = SERIAL.lock().await;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let policy = RetryPolicy::new()
        .with_max_retries(1)
        .with_base_delay(Duration::from_millis(250));
    let _ = Retry::new(&policy)
        .name("openai.responses")
        .run(|_| async { Err::<(), _>(TestError::Transient) })
        .await;
    let disabled = RetryPolicy::new().with_enabled(false);
    let _ = Retry::new(&disabled)
        .name("suno.credits")
        .run(|_| async { Err::<(), _>(TestError::Transient) })
        .await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("openai.responses: attempt 1/2 failed, retrying in 250ms: "),
        "{text}"
    );
    assert!(
        text.contains("openai.responses: gave up after 2 attempts in 250ms: "),
        "{text}"
    );
    assert!(
        text.contains("suno.credits: gave up after 1 attempt in 0ms: retries disabled"),
        "{text}"
    );
    assert!(!text.contains("1 attempts"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn breaker_state_changes_are_logged_warn_on_open_info_otherwise() {
    let _serial = SERIAL.lock().await;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let breaker = CircuitBreaker::new("suno", CircuitBreakerConfig::default()).unwrap();
    for _ in 0..5 {
        breaker.try_acquire().unwrap().record(Outcome::Failure);
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    breaker.try_acquire().unwrap().record(Outcome::Success);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "open, half-open, closed:\n{text}");
    assert!(lines[0].contains(" WARN "), "{text}");
    assert!(
        lines[0].contains(
            "suno: circuit opened (5 failed attempts in a row), failing fast; next probe in 10s"
        ),
        "{text}"
    );
    assert!(lines[0].contains("open_for_ms=10000"), "{text}");
    assert!(lines[1].contains(" INFO "), "{text}");
    assert!(
        lines[1].contains("suno: circuit half-open, letting 1 probe through"),
        "{text}"
    );
    assert!(lines[2].contains(" INFO "), "{text}");
    assert!(
        lines[2].contains("suno: circuit closed, the upstream answered again"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hold_is_logged_once_and_a_longer_one_extends_it() {
    use encore_resilience::rate_limit::{LocalRateLimiter, RateLimitConfig, RateLimiter};
    use tokio::time::Instant;

    let _serial = SERIAL.lock().await;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let limiter =
        LocalRateLimiter::new("suno", &RateLimitConfig::new(20, Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    // Three callers met the same 429 at once, then a later one asked for longer.
    for _ in 0..3 {
        limiter.hold_until(start + Duration::from_secs(2)).await;
    }
    limiter.hold_until(start + Duration::from_secs(5)).await;
    limiter.hold_until(start + Duration::from_secs(1)).await; // shorter: changes nothing
    limiter
        .acquire(start + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let holds: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("holding new requests"))
        .collect();
    assert_eq!(holds.len(), 2, "{text}");
    assert!(
        holds[0].contains("suno: the server asked to slow down; holding new requests for 2s"),
        "{text}"
    );
    assert!(holds[1].contains("for 5s"), "{text}");
}
