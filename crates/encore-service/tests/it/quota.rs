//! The rate limit shared through the job store, on real PostgreSQL: several limiters (each on
//! its own connection pool, as separate processes would be) on one quota never send more than
//! the quota in any window, a slot past the caller's deadline is refused without being taken,
//! a `Retry-After` hold reaches every worker, and an unreachable database sends nothing.

use std::sync::Arc;
use std::time::Duration;

use encore_clients::{ApiKey, Config, Protections, Service};
use encore_pipeline::Keys;
use encore_resilience::rate_limit::{RateLimitConfig, RateLimiter};
use encore_service::quota::quota_name;
use encore_service::{StoreRateLimiter, share_quotas};
use encore_store::Store;
use tokio::time::Instant;

use crate::pg::{Relay, TestSchema, pg_socket_addr};

const QUOTA: &str = "suno:test-account";

async fn limiters(
    pg: &TestSchema,
    n: usize,
    config: &RateLimitConfig,
) -> Vec<Arc<StoreRateLimiter>> {
    let mut limiters = Vec::new();
    for _ in 0..n {
        let store = Store::open(&pg.target()).await.expect("open the store");
        limiters.push(Arc::new(
            StoreRateLimiter::new(store, "suno", QUOTA, config).unwrap(),
        ));
    }
    limiters
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_sharing_a_quota_never_exceed_it_in_any_window() {
    let pg = TestSchema::new().await;
    let config = RateLimitConfig::new(5, Duration::from_secs(2));
    let limiters = limiters(&pg, 3, &config).await;
    let mut tasks = Vec::new();
    for limiter in &limiters {
        for _ in 0..4 {
            let limiter = Arc::clone(limiter);
            tasks.push(tokio::spawn(async move {
                limiter
                    .acquire(far())
                    .await
                    .expect("a slot within a minute");
                Instant::now()
            }));
        }
    }
    let mut sent = Vec::new();
    for task in tasks {
        sent.push(task.await.unwrap());
    }
    sent.sort();
    assert_eq!(sent.len(), 12);
    // Any 6 sends (one more than the quota) span more than the window: at most 5 in any 2 s.
    // The limiter checks each send's lateness against the 2 % margin as it wakes; the instant
    // recorded here comes a little later on a loaded machine (the thread may be preempted in
    // between), hence 20 ms of slack — unshared limiters would send all 12 within milliseconds.
    let slack = Duration::from_millis(20);
    for (first, sixth) in sent.iter().zip(sent.iter().skip(5)) {
        let span = *sixth - *first;
        assert!(
            span + slack >= config.per,
            "6 requests within {span:?}: over the quota of 5 per {:?}",
            config.per
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_past_the_deadline_is_refused_and_nothing_is_taken() {
    let pg = TestSchema::new().await;
    let config = RateLimitConfig::new(1, Duration::from_secs(1));
    let all = limiters(&pg, 3, &config).await;
    let (a, b, c) = (&all[0], &all[1], &all[2]);
    let interval = a.interval();
    assert_eq!(
        interval,
        Duration::from_millis(1020),
        "1 s and the 2 % margin"
    );

    let start = Instant::now();
    assert!(a.acquire(far()).await.unwrap() < Duration::from_millis(200));
    let refused = b
        .acquire(Instant::now() + Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(refused.exact, "the database's own answer: {refused}");
    assert!(
        refused.next_in > Duration::from_millis(100) && refused.next_in <= interval,
        "{refused}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "refused at once, not at the deadline"
    );
    // b took nothing: c gets the slot right after a's, not one after b's.
    c.acquire(far()).await.unwrap();
    let second = start.elapsed();
    assert!(
        second + Duration::from_millis(30) >= interval && second < interval * 3 / 2,
        "the second slot came {second:?} after the first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_holds_every_worker() {
    let pg = TestSchema::new().await;
    let config = RateLimitConfig::new(10, Duration::from_secs(1));
    let all = limiters(&pg, 2, &config).await;
    let start = Instant::now();
    all[0].hold_until(start + Duration::from_millis(1500)).await;
    let refused = all[1]
        .acquire(Instant::now() + Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(refused.next_in > Duration::from_secs(1), "{refused}");
    all[1].acquire(far()).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(1490),
        "the other worker sent after {:?}, inside the hold",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_while_the_database_is_unreachable() {
    let pg = TestSchema::new().await;
    let relay = Relay::start(pg_socket_addr()).await;
    let store = Store::open(&pg.target_at(Some(relay.addr))).await.unwrap();
    let config = RateLimitConfig::new(10, Duration::from_secs(1));
    let limiter = StoreRateLimiter::new(store, "suno", QUOTA, &config).unwrap();
    limiter.acquire(far()).await.unwrap();

    relay.cut();
    let start = Instant::now();
    let refused = limiter
        .acquire(start + Duration::from_millis(400))
        .await
        .unwrap_err();
    assert!(!refused.exact, "{refused}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "given up near the deadline, after {:?}",
        start.elapsed()
    );

    // Back: a caller whose deadline outlasts the outage gets its slot.
    let waiting = tokio::spawn(async move { limiter.acquire(far()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.restore();
    waiting
        .await
        .unwrap()
        .expect("a slot once the database is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rate_limited_service_shares_its_quota_named_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("jobs.db").to_str().unwrap())
        .await
        .unwrap();
    let keys = |suno: &str| Keys {
        openai: ApiKey::new("sk-openai-SECRET").unwrap(),
        suno: ApiKey::new(suno).unwrap(),
        creatomate: ApiKey::new("creatomate-SECRET").unwrap(),
    };
    let ours = keys("suno-SECRET-1");
    let name = quota_name(Service::Suno, &ours);
    assert!(
        name.starts_with("suno:") && !name.contains("SECRET"),
        "{name}"
    );
    assert_eq!(name, quota_name(Service::Suno, &keys("suno-SECRET-1")));
    assert_ne!(name, quota_name(Service::Suno, &keys("suno-SECRET-2")));

    let config = Config::default();
    let shared = share_quotas(
        &store,
        &config,
        &ours,
        Protections::from_config(&config).unwrap(),
    )
    .unwrap();
    assert!(
        shared.get(Service::OpenAi).rate_limiter().is_none(),
        "OpenAI has no rate limit by default"
    );
    for service in [Service::Suno, Service::Creatomate] {
        let limiter = format!("{:?}", shared.get(service).rate_limiter().unwrap());
        assert!(limiter.contains("StoreRateLimiter"), "{limiter}");
        assert!(
            limiter.contains(&quota_name(service, &ours)) && !limiter.contains("SECRET"),
            "{limiter}"
        );
    }
}

/// A caller dropped while it waits (its breaker opened, a callback made its read needless)
/// gives up its place and takes no slot from the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_dropped_while_it_waits_takes_no_slot() {
    let pg = TestSchema::new().await;
    let config = RateLimitConfig::new(1, Duration::from_secs(1));
    let all = limiters(&pg, 2, &config).await;
    let interval = all[0].interval();
    let start = Instant::now();
    all[0].acquire(far()).await.unwrap();
    let dropped = Arc::clone(&all[0]);
    let waiting = tokio::spawn(async move { dropped.acquire(far()).await });
    tokio::time::sleep(interval * 3 / 10).await;
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    // The next slot is still the one after the first, not one after the dropped caller's.
    all[1].acquire(far()).await.unwrap();
    let sent = start.elapsed();
    assert!(
        sent + Duration::from_millis(30) >= interval && sent < interval * 3 / 2,
        "the second request went {sent:?} after the first"
    );
}
