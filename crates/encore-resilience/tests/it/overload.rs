//! The budget and the breaker together, with many concurrent callers: an outage is not
//! amplified, and calls succeed again once it is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use encore_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
use encore_resilience::budget::{RetryBudget, RetryBudgetConfig};
use encore_resilience::{Retry, RetryError, RetryPolicy, StopReason};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::support::{TestError, breaker, budget, count, counting};

/// An upstream that fails transiently while `down` is set.
struct Upstream {
    down: Arc<AtomicBool>,
    calls: Arc<AtomicU32>,
}

impl Upstream {
    fn down() -> Self {
        Self {
            down: Arc::new(AtomicBool::new(true)),
            calls: Arc::default(),
        }
    }

    /// `callers` concurrent calls with the default policy (3 retries), the budget and breaker.
    async fn burst(
        &self,
        callers: u32,
        budget: &RetryBudget,
        breaker: &CircuitBreaker,
    ) -> Vec<Result<&'static str, RetryError<TestError>>> {
        let mut tasks = JoinSet::new();
        for _ in 0..callers {
            let down = self.down.clone();
            let op = counting(&self.calls, move || {
                if down.load(Ordering::SeqCst) {
                    Err(TestError::Transient)
                } else {
                    Ok("ok")
                }
            });
            let (budget, breaker) = (budget.clone(), breaker.clone());
            tasks.spawn(async move {
                let policy = RetryPolicy::default();
                Retry::new(&policy)
                    .name("suno.generate")
                    .budget(&budget)
                    .breaker(&breaker)
                    .run(op)
                    .await
            });
        }
        tasks.join_all().await
    }
}

#[tokio::test(start_paused = true)]
async fn twenty_concurrent_callers_during_an_outage_and_after_it() {
    let shared_budget = budget(RetryBudgetConfig::default());
    let shared_breaker = breaker(CircuitBreakerConfig::default());
    let upstream = Upstream::down();

    // The outage: 20 callers at once, each allowed 3 retries by its policy.
    let results = upstream.burst(20, &shared_budget, &shared_breaker).await;
    let calls = count(&upstream.calls);
    assert!(
        f64::from(calls) / 20.0 <= 1.2,
        "{calls} calls for 20 logical calls (80 without protection)"
    );
    assert_eq!(calls, 5, "the breaker opened on the 5th failure");
    assert_eq!(shared_breaker.state(), CircuitState::Open);
    let refused = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.attempts() == 0))
        .count();
    assert_eq!(refused, 15, "15 callers were refused without a call");
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_err_and(RetryError::is_circuit_open))
    );

    // More callers keep failing fast while it is open.
    let results = upstream.burst(20, &shared_budget, &shared_breaker).await;
    assert_eq!(count(&upstream.calls), 5);
    assert!(results.iter().all(Result::is_err));

    // The outage ends; once open_for has passed, one probe succeeds and closes the circuit.
    upstream.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let results = upstream.burst(20, &shared_budget, &shared_breaker).await;
    assert_eq!(shared_breaker.state(), CircuitState::Closed);
    // The first caller is the probe; its answer is immediate, so the circuit is closed before
    // the next caller asks.
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|v| *v == "ok")));
    let logical = 60;
    let calls = count(&upstream.calls);
    assert!(
        f64::from(calls) / f64::from(logical) <= 1.2,
        "{calls} calls for {logical}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_outage_is_probed_rarely_and_recovery_is_noticed() {
    // 20 callers every second: 2 minutes of outage, then 3 minutes of a healthy upstream.
    let shared_budget = budget(RetryBudgetConfig::default());
    let shared_breaker = breaker(CircuitBreakerConfig::default());
    let upstream = Upstream::down();
    let started = Instant::now();
    let outage = Duration::from_secs(120);
    let (mut logical, mut during_outage) = (0, None);
    let mut first_success = None;
    while started.elapsed() < Duration::from_secs(300) {
        if during_outage.is_none() && started.elapsed() >= outage {
            upstream.down.store(false, Ordering::SeqCst);
            during_outage = Some((count(&upstream.calls), logical));
        }
        let at = started.elapsed();
        let results = upstream.burst(20, &shared_budget, &shared_breaker).await;
        logical += 20;
        match first_success {
            None if results.iter().any(Result::is_ok) => first_success = Some(at),
            None => {}
            Some(_) => assert!(results.iter().all(Result::is_ok), "failed again at {at:?}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (calls, outage_logical) = during_outage.unwrap();
    assert!(
        f64::from(calls) / f64::from(outage_logical) <= 1.2,
        "{calls} calls for {outage_logical} logical calls during the outage"
    );
    // 5 failures open it at 0 s; probes fail at 10 s, 30 s and 70 s (open for 10, 20, 40, 80 s).
    assert_eq!(calls, 5 + 3);
    // The probe at 150 s is the first to find the upstream back: within max_open_for (2 min)
    // of the end of the outage.
    assert_eq!(first_success, Some(Duration::from_secs(150)));
    assert_eq!(shared_breaker.state(), CircuitState::Closed);
    let after = count(&upstream.calls) - calls;
    assert_eq!(
        after,
        150 * 20,
        "from 150 s on, each logical call is exactly one call"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_the_breaker_refuses_after_its_wait_gets_its_token_back() {
    let shared_budget = budget(
        RetryBudgetConfig::default()
            .with_ratio(1.0)
            .with_min_per_sec(0.0),
    );
    let shared_breaker = breaker(CircuitBreakerConfig::default().with_consecutive_failures(2));
    let calls = Arc::new(AtomicU32::new(0));

    // Caller A fails, takes a token and waits 1 s to retry…
    let a = {
        let (b, c) = (shared_budget.clone(), shared_breaker.clone());
        let op = counting(&calls, || Err(TestError::Transient));
        tokio::spawn(async move {
            let policy = RetryPolicy::default();
            Retry::new(&policy).budget(&b).breaker(&c).run(op).await
        })
    };
    tokio::task::yield_now().await;
    assert_eq!(shared_budget.available(), 0, "A deposited 1 and took 1");

    // …meanwhile caller B's failure opens the circuit.
    let policy = RetryPolicy::default().with_max_retries(0);
    let _ = Retry::new(&policy)
        .budget(&shared_budget)
        .breaker(&shared_breaker)
        .run(counting(&calls, || Err(TestError::Transient)))
        .await;
    assert_eq!(shared_breaker.state(), CircuitState::Open);

    let err = a.await.unwrap().unwrap_err();
    assert_eq!(count(&calls), 2, "A's retry was not made");
    assert_eq!(
        err.stop_reason(),
        Some(&StopReason::CircuitOpen {
            upstream: "suno".into(),
            retry_in: Duration::from_secs(9)
        })
    );
    assert_eq!(
        err.as_exhausted().unwrap().elapsed(),
        Duration::from_secs(1),
        "it did wait"
    );
    assert_eq!(shared_budget.available(), 2, "A's token came back");
}
