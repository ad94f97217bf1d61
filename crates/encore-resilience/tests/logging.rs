//! The retry loop's log lines, captured. Its own test binary: tracing caches per-callsite interest
//! process-wide, so capturing with a thread-local subscriber races with tests on other threads.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use encore_resilience::{
    AttemptTimedOut, CircuitBreaker, CircuitBreakerConfig, Classify, Decision, Outcome, Retry,
    RetryPolicy,
};

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
        lines[0].contains(
            "creatomate.status: attempt 1/3 failed, retrying in 1.0s: Transient: http 503"
        ),
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
        lines[1].contains("attempt 2/3 failed, retrying in 2.0s"),
        "{text}"
    );
    assert!(lines[2].contains(" ERROR "), "{text}");
    assert!(
        lines[2].contains("creatomate.status: gave up after 3 attempts in 3s"),
        "{text}"
    );
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
