//! Shared quotas: the GCRA's schedule against an independent model, holds, and the quota
//! under many concurrent takers on several connections.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use encore_store::{Admission, Quota, Store, StoreOptions};

use crate::support::{TestDb, on_both_backends};

fn at(base: SystemTime, ms: u64) -> SystemTime {
    base + Duration::from_millis(ms)
}

async fn schedule_burst_and_hold(db: &TestDb) {
    let store = db.open().await;
    let base = SystemTime::now();
    // 3 per 300 ms, burst 2: 100 ms apart, two at once after a quiet spell.
    let quota = Quota::new(3, Duration::from_millis(300), 2).unwrap();
    let max = Duration::from_millis(250);
    let take = |ms| store.take_quota_at("suno.generate", &quota, max, at(base, ms));
    let granted = |ms| Admission::Granted {
        wait: Duration::from_millis(ms),
    };
    assert_eq!(take(0).await.unwrap(), granted(0));
    assert_eq!(take(0).await.unwrap(), granted(0), "the burst");
    assert_eq!(take(0).await.unwrap(), granted(100));
    assert_eq!(take(0).await.unwrap(), granted(200));
    // A wait over max_wait reserves nothing.
    assert_eq!(
        take(0).await.unwrap(),
        Admission::Denied {
            next_available_in: Duration::from_millis(300)
        }
    );
    assert_eq!(take(60).await.unwrap(), granted(240));
    // Other names are other quotas.
    assert_eq!(
        store
            .take_quota_at("creatomate", &quota, max, at(base, 0))
            .await
            .unwrap(),
        granted(0)
    );
    // After a quiet spell the burst is back.
    assert_eq!(take(2000).await.unwrap(), granted(0));
    assert_eq!(take(2000).await.unwrap(), granted(0));

    // A 429 with Retry-After holds every taker until then; the burst refills from there.
    store
        .hold_quota("suno.generate", &quota, at(base, 5000))
        .await
        .unwrap();
    assert_eq!(
        take(4000).await.unwrap(),
        Admission::Denied {
            next_available_in: Duration::from_secs(1)
        }
    );
    assert_eq!(take(4800).await.unwrap(), granted(200));
    assert_eq!(
        take(4800).await.unwrap(),
        Admission::Denied {
            next_available_in: Duration::from_millis(300)
        }
    );
    // A hold earlier than the schedule changes nothing.
    store
        .hold_quota("suno.generate", &quota, at(base, 0))
        .await
        .unwrap();
    assert_eq!(take(5000).await.unwrap(), granted(100));
}

/// Many tasks on several pool connections take slots for a while; the granted send times
/// never put more than the quota into any window, and the quota is used.
async fn no_window_over_quota_under_concurrency(db: &TestDb) {
    // 20 per 10 s scaled down to 20 per 200 ms; once with the default burst, once with 5.
    for burst in [1, 5] {
        let store = db
            .open_with(StoreOptions {
                max_connections: 6,
                ..StoreOptions::default()
            })
            .await;
        let quota = Quota::new(20, Duration::from_millis(200), burst).unwrap();
        let name = format!("suno.generate.{burst}");
        let run_for = Duration::from_millis(600);
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let store = store.clone();
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                let mut slots = Vec::new();
                while started.elapsed() < run_for {
                    let now = now_to_the_microsecond();
                    match store
                        .take_quota_at(&name, &quota, Duration::from_millis(50), now)
                        .await
                        .unwrap()
                    {
                        Admission::Granted { wait } => {
                            slots.push(now + wait);
                            tokio::time::sleep(wait).await;
                        }
                        Admission::Denied { next_available_in } => {
                            tokio::time::sleep(next_available_in.min(Duration::from_millis(20)))
                                .await;
                        }
                    }
                }
                slots
            }));
        }
        let mut slots: Vec<SystemTime> = Vec::new();
        for task in tasks {
            slots.extend(task.await.unwrap());
        }
        slots.sort();
        assert_window_bound(&slots, Duration::from_millis(200), 20 + burst as usize - 1);
        assert_gcra_spacing(&slots, &quota);
        // The quota was used: at least 60 % of what 600 ms (+ the last reservations) allow.
        assert!(
            slots.len() >= 36,
            "only {} slots granted with burst {burst}",
            slots.len()
        );
    }
}

/// The store counts in microseconds: a slot is then exactly `now + wait`.
fn now_to_the_microsecond() -> SystemTime {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_micros(u64::try_from(since.as_micros()).unwrap())
}

/// No window `[t, t + window)` starting at a granted slot holds more than `max` slots.
fn assert_window_bound(slots: &[SystemTime], window: Duration, max: usize) {
    for (i, start) in slots.iter().enumerate() {
        let inside = slots[i..]
            .iter()
            .take_while(|s| s.duration_since(*start).unwrap() < window)
            .count();
        assert!(
            inside <= max,
            "{inside} slots within {window:?} from slot {i} (at most {max})"
        );
    }
}

/// GCRA: any `k` consecutive granted slots span at least `k·T − τ`.
fn assert_gcra_spacing(slots: &[SystemTime], quota: &Quota) {
    let t = quota.interval();
    let tau = t * (quota.burst() - 1);
    for k in 1..slots.len().min(40) {
        for pair in slots.windows(k + 1) {
            let span = pair[k].duration_since(pair[0]).unwrap();
            assert!(
                span + tau >= t * k as u32,
                "{} slots within {span:?} (T {t:?}, τ {tau:?})",
                k + 1
            );
        }
    }
}

on_both_backends!(
    schedule_burst_and_hold,
    no_window_over_quota_under_concurrency
);

/// An independent model of the GCRA, to the microsecond.
struct Model {
    tat: Option<i64>,
}

impl Model {
    fn take(&mut self, now: i64, t: i64, tau: i64, max_wait: i64) -> Result<i64, i64> {
        let tat = self.tat.map_or(now, |tat| tat.max(now));
        let wait = (tat - tau - now).max(0);
        if wait <= max_wait {
            self.tat = Some(tat + t);
            Ok(wait)
        } else {
            Err(wait)
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap()
}

/// Random arrivals (gaps, max waits, holds) on one store: the store's answers are the model's.
async fn matches_the_model(store: &Store, cases: u32) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let strategy = (
        1_u32..10,
        1_u64..500,
        proptest::collection::vec(
            (0_u64..120, 0_u64..200, proptest::bool::weighted(0.1)),
            1..40,
        ),
    );
    let base = SystemTime::now();
    for case in 0..cases {
        let (requests, per_ms, arrivals) = strategy.new_tree(&mut runner).unwrap().current();
        let burst = 1 + requests / 3;
        let quota = Quota::new(requests, Duration::from_millis(per_ms), burst).unwrap();
        let t = micros(quota.interval());
        let tau = t * i64::from(burst - 1);
        let name = format!("model-{case}");
        let mut model = Model { tat: None };
        let mut now = 0_u64;
        for (gap, max_wait, hold) in arrivals {
            now += gap;
            let now_us = i64::try_from(now * 1000).unwrap();
            if hold {
                let until = now + max_wait;
                store
                    .hold_quota(&name, &quota, at(base, until))
                    .await
                    .unwrap();
                let held = i64::try_from(until * 1000).unwrap() + tau;
                model.tat = Some(model.tat.map_or(held, |tat| tat.max(held)));
                continue;
            }
            let expected = model.take(now_us, t, tau, i64::try_from(max_wait * 1000).unwrap());
            let got = store
                .take_quota_at(
                    &name,
                    &quota,
                    Duration::from_millis(max_wait),
                    at(base, now),
                )
                .await
                .unwrap();
            let got = match got {
                Admission::Granted { wait } => Ok(micros(wait)),
                Admission::Denied { next_available_in } => Err(micros(next_available_in)),
            };
            assert_eq!(
                got, expected,
                "quota {requests}/{per_ms}ms burst {burst} at {now} ms"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_quota_matches_the_model() {
    let db = TestDb::sqlite();
    matches_the_model(&db.open().await, 24).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_quota_matches_the_model() {
    let db = TestDb::postgres().await;
    matches_the_model(&db.open().await, 24).await;
}
