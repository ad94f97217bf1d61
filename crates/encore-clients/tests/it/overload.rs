//! Issue 6, measured in memory on paused time: with one upstream down, retries do not multiply
//! the load on it, every call fails fast and clearly within its deadline, and the service is
//! used again once it is back; concurrent callers queue at the documented quotas instead of
//! earning 429s; and each protection can be switched off.
//!
//! "Amplification" is requests the simulator received ÷ logical calls. Every pipeline builds its
//! own clients, as `encore-pipeline` does, on one shared `Http`: the protections are shared
//! through it. Run with `--nocapture` to see the measured figures.

use std::sync::Arc;
use std::time::Duration;

use encore_clients::creatomate::{CreatomateClient, RenderRequest};
use encore_clients::suno::{GenerateRequest, SunoClient};
use encore_clients::{CircuitState, Config, Endpoint, Error, ErrorKind, Http, Service};
use encore_resilience::StopReason;
use encore_sim::{DEMO_TEMPLATE_ID, RouteId, SimState};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::support::{Recorder, always, defaults, in_memory, in_memory_for, key, sim, sim_with};

/// Suno's "system maintenance": retried, since no task was created.
const MAINTENANCE: &str = "{ kind = \"suno_code\", code = 455 }";
/// Concurrent pipelines, each making one logical `generate` call.
const PIPELINES: usize = 20;

fn song() -> GenerateRequest {
    GenerateRequest::custom("[Verse]\nWarm bread at dawn", "acoustic pop", "Dawn Bakery")
}

type Outcomes = Vec<(Result<String, Error>, Duration)>;

/// One `generate` per pipeline, all at once, each through the pipeline's own client; the
/// observers are handed out in turn. Returns each call's result and how long it took.
async fn generate_all(http: &Http, config: &Config, observers: &[Arc<Recorder>]) -> Outcomes {
    let mut set = JoinSet::new();
    for i in 0..PIPELINES {
        let observer = observers[i % observers.len()].clone();
        let client = SunoClient::new(http.clone(), config, key()).with_observer(observer);
        set.spawn(async move {
            let start = Instant::now();
            let result = client.generate(&song()).await;
            (i, result, start.elapsed())
        });
    }
    let mut all = set.join_all().await;
    all.sort_by_key(|(i, ..)| *i);
    all.into_iter().map(|(_, r, e)| (r, e)).collect()
}

fn amplification(state: &SimState, route: RouteId, calls: usize) -> (u64, f64) {
    let sent = state.ledger().count(route);
    (sent, sent as f64 / calls as f64)
}

fn transitions(recorder: &Recorder) -> Vec<(CircuitState, CircuitState)> {
    recorder
        .breakers
        .lock()
        .unwrap()
        .iter()
        .map(|n| (n.from, n.to))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_suno_outage_is_not_amplified_fails_fast_within_deadlines_and_recovers() {
    // Maintenance on every generate for the first 30 s (virtual seconds = seconds here).
    let scenario = format!(
        "[routes.\"suno.generate\"]\noutage = {{ from_s = 0, to_s = 30, fault = {MAINTENANCE} }}\n"
    );
    let state = sim_with(&scenario, |c| c.time_scale = 1.0);
    let http = in_memory(&state);
    let config = defaults();
    let deadline = config.endpoint(Endpoint::SunoGenerate).deadline;
    let observers = [Arc::new(Recorder::default()), Arc::new(Recorder::default())];
    let t0 = Instant::now();

    // (a) 20 pipelines while Suno is down.
    let results = generate_all(&http, &config, &observers).await;
    let (sent, amp) = amplification(&state, RouteId::SunoGenerate, PIPELINES);
    eprintln!(
        "suno outage, default protections: {sent} requests for {PIPELINES} calls, \
         amplification {amp:.2} (the seed's 3 retries: 4.00)"
    );
    assert!(amp <= 1.2, "amplification {amp}");
    let mut refused = 0;
    for (result, elapsed) in &results {
        let err = result.as_ref().expect_err("suno is down");
        assert!(*elapsed <= deadline, "{elapsed:?} > {deadline:?}: {err}");
        assert!(
            err.is_circuit_open() || err.is_budget_exhausted() || err.is_exhausted(),
            "{err}"
        );
        assert!(!err.may_have_run(), "455 creates nothing: {err}");
        let text = err.to_string();
        if err.attempts() == 0 {
            // (f) Failing fast names the service and when it will be probed again.
            refused += 1;
            assert_eq!(*err.kind(), ErrorKind::CircuitOpen, "{err}");
            assert!(
                text.starts_with("suno.generate: circuit open for suno, next probe in "),
                "{text}"
            );
            assert!(err.is_retryable() && !err.is_permanent());
        } else {
            assert!(
                text.starts_with(&format!(
                    "suno.generate: gave up after {} attempt",
                    err.attempts()
                )),
                "{text}"
            );
            // Either the last failure, or the breaker that opened meanwhile.
            assert!(
                text.contains("suno code 455")
                    || text.contains(": circuit open for suno, next probe in "),
                "{text}"
            );
        }
    }
    assert!(refused > 0, "most calls fail fast");
    let last = results.iter().map(|(_, e)| *e).max().unwrap();
    eprintln!("  {refused} refused without a request; every call over within {last:?}");
    assert!(
        last < Duration::from_secs(10),
        "nobody waits out the outage"
    );
    assert_eq!(http.circuit_state(Service::Suno), Some(CircuitState::Open));
    // Each observer heard the change once, whichever client's call caused it.
    for observer in &observers {
        assert_eq!(
            transitions(observer),
            [(CircuitState::Closed, CircuitState::Open)]
        );
        let notice = observer.breakers.lock().unwrap()[0].clone();
        assert_eq!(notice.service, Service::Suno);
        assert_eq!(notice.open_for, Some(Duration::from_secs(10)));
    }

    // (b) Once the outage is over and the open time has passed, a probe closes the circuit and
    // every pipeline gets its song.
    tokio::time::sleep_until(t0 + Duration::from_secs(31)).await;
    let probe = SunoClient::new(http.clone(), &config, key()).with_observer(observers[0].clone());
    probe.generate(&song()).await.expect("suno is back");
    assert_eq!(
        http.circuit_state(Service::Suno),
        Some(CircuitState::Closed)
    );
    let before = state.ledger().count(RouteId::SunoGenerate);
    let results = generate_all(&http, &config, &observers).await;
    for (result, elapsed) in &results {
        result.as_ref().expect("suno is back");
        assert!(*elapsed <= deadline);
    }
    assert_eq!(
        state.ledger().count(RouteId::SunoGenerate) - before,
        PIPELINES as u64,
        "one request each: queued under Suno's 20 per 10 s, nothing rejected"
    );
    assert_eq!(state.ledger().suno_tasks, PIPELINES as u64 + 1);
    assert_eq!(
        transitions(&observers[0]),
        [
            (CircuitState::Closed, CircuitState::Open),
            (CircuitState::Open, CircuitState::HalfOpen),
            (CircuitState::HalfOpen, CircuitState::Closed),
        ]
    );
}

/// How each switch-off behaves under a full Suno outage (20 concurrent `generate` calls).
#[tokio::test(start_paused = true)]
async fn each_protection_switches_off_and_all_off_is_the_seed_behaviour() {
    struct Case {
        name: &'static str,
        tweak: fn(&mut Config),
        /// Requests the simulator may receive for the 20 calls.
        requests: std::ops::RangeInclusive<u64>,
        check: fn(&[Error]),
    }
    let cases = [
        Case {
            name: "all three off (the seed)",
            tweak: |c| c.services.suno = c.services.suno.clone().without_protections(),
            requests: 80..=80,
            check: |errors| {
                for e in errors {
                    assert_eq!(e.attempts(), 4, "{e}");
                    assert!(!e.is_circuit_open() && !e.is_budget_exhausted(), "{e}");
                    assert_eq!(e.stop_reason(), Some(&StopReason::AttemptsExhausted));
                }
            },
        },
        Case {
            // Every call deposits 0.2 retries and the floor allows 10 per 10 s: 14 retries.
            name: "budget only",
            tweak: |c| {
                c.services.suno.breaker.enabled = false;
                c.services.suno.rate_limit.enabled = false;
            },
            requests: 34..=34,
            check: |errors| {
                let dry: Vec<_> = errors.iter().filter(|e| e.is_budget_exhausted()).collect();
                assert!(!dry.is_empty());
                for e in dry {
                    assert!(
                        e.to_string().contains(
                            "(retry budget for suno exhausted: retries are limited to 20% of \
                             calls): suno code 455"
                        ),
                        "{e}"
                    );
                }
            },
        },
        Case {
            // Opens after 5 failed attempts; at most every first attempt is made.
            name: "breaker only",
            tweak: |c| {
                c.services.suno.budget.enabled = false;
                c.services.suno.rate_limit.enabled = false;
            },
            requests: 5..=20,
            check: |errors| {
                assert!(errors.iter().all(Error::is_circuit_open));
            },
        },
        Case {
            // Spacing alone does not bound amplification: every retry is made, 500 ms apart.
            name: "rate limit only",
            tweak: |c| {
                c.services.suno.budget.enabled = false;
                c.services.suno.breaker.enabled = false;
            },
            requests: 80..=80,
            check: |errors| {
                assert!(errors.iter().all(|e| e.attempts() == 4), "every retry made");
            },
        },
        Case {
            name: "retries = false, protections off",
            tweak: |c| {
                c.retries = false;
                c.services.suno = c.services.suno.clone().without_protections();
            },
            requests: 20..=20,
            check: |errors| {
                for e in errors {
                    assert_eq!(e.attempts(), 1);
                    assert_eq!(e.stop_reason(), Some(&StopReason::RetriesDisabled));
                }
            },
        },
        Case {
            // One attempt per call, and the breaker and rate limit still act.
            name: "retries = false, protections on",
            tweak: |c| c.retries = false,
            requests: 5..=5,
            check: |errors| {
                assert!(errors.iter().all(|e| e.attempts() <= 1));
                assert!(
                    errors
                        .iter()
                        .any(|e| e.attempts() == 0 && e.is_circuit_open())
                );
            },
        },
        Case {
            name: "defaults",
            tweak: |_| {},
            requests: 0..=24,
            check: |errors| {
                assert!(errors.iter().any(Error::is_circuit_open));
            },
        },
    ];
    for case in cases {
        let state = sim(&always("suno.generate", MAINTENANCE));
        let mut config = defaults();
        (case.tweak)(&mut config);
        let http = in_memory_for(&state, &config);
        let deadline = config.endpoint(Endpoint::SunoGenerate).deadline;
        let start = Instant::now();
        let results = generate_all(&http, &config, &[Arc::new(Recorder::default())]).await;
        let took = start.elapsed();
        let (sent, amp) = amplification(&state, RouteId::SunoGenerate, PIPELINES);
        eprintln!(
            "{:<34} {sent:>3} requests for {PIPELINES} calls: amplification {amp:.2} (in {took:?})",
            case.name
        );
        assert!(case.requests.contains(&sent), "{}: {sent}", case.name);
        let errors: Vec<Error> = results
            .into_iter()
            .map(|(result, elapsed)| {
                assert!(elapsed <= deadline, "{}", case.name);
                result.expect_err("suno is down")
            })
            .collect();
        (case.check)(&errors);
        if case.name == "rate limit only" {
            // Never more than Suno's 20 requests in any 10 s.
            let at: Vec<u64> = state.ledger().requests.iter().map(|r| r.at_ms).collect();
            for (i, t) in at.iter().enumerate() {
                let in_window = at[i..].iter().filter(|u| **u < t + 10_000).count();
                assert!(
                    in_window <= 20,
                    "{in_window} requests within 10 s of {t} ms"
                );
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_creatomate_polls_queue_at_the_quota_instead_of_earning_429s() {
    const POLLS: usize = 40;
    for limited in [true, false] {
        let state = sim("");
        let mut config = defaults();
        config.services.creatomate.rate_limit.enabled = limited;
        let http = in_memory_for(&state, &config);
        let deadline = config.endpoint(Endpoint::CreatomateStatus).deadline;
        let render = CreatomateClient::new(http.clone(), &config, key())
            .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
            .await
            .unwrap();
        let mut set = JoinSet::new();
        for _ in 0..POLLS {
            let client = CreatomateClient::new(http.clone(), &config, key());
            let id = render.id.clone();
            set.spawn(async move {
                let start = Instant::now();
                (client.render_status(&id).await, start.elapsed())
            });
        }
        let results = set.join_all().await;
        let ledger = state.ledger();
        let rejected = ledger
            .requests
            .iter()
            .filter(|r| r.status == Some(429))
            .count();
        let failed = results.iter().filter(|(r, _)| r.is_err()).count();
        let last = results.iter().map(|(_, e)| *e).max().unwrap();
        eprintln!(
            "creatomate, 1 render + {POLLS} concurrent polls, rate limit {}: {} requests, \
             {rejected} answered 429, {failed} calls failed, last done after {last:?}",
            if limited { "on" } else { "off" },
            ledger.requests.len()
        );
        if limited {
            assert_eq!(rejected, 0);
            assert_eq!(failed, 0);
            assert_eq!(ledger.requests.len(), POLLS + 1, "no retries needed");
            // The quota is used in full: poll k goes out k × 333 ms after the render.
            assert!(
                last >= Duration::from_millis(13_333) && last <= Duration::from_millis(13_400),
                "{last:?}"
            );
            assert!(last <= deadline);
        } else {
            // 30 per 10 s: the render and 29 polls go through, the rest earn 429s (again on
            // their retries, within the same window).
            assert!(rejected >= POLLS + 1 - 30, "{rejected}");
            assert!(results.iter().any(|(r, _)| {
                r.as_ref()
                    .is_err_and(|e| *e.kind() == ErrorKind::RateLimited)
            }));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_holds_every_caller_until_the_hinted_instant() {
    // The simulator's 429s name the wait; the client's own quota is out of the way (100 per
    // 10 s, all at once), so only the hold can keep late callers from earning 429s.
    for hold in [true, false] {
        let state = sim_with("", |c| c.creatomate_retry_after = true);
        let mut config = defaults();
        let limit = &mut config.services.creatomate.rate_limit;
        limit.enabled = hold;
        limit.requests = 100;
        limit.burst = 100;
        let http = in_memory_for(&state, &config);
        let render = CreatomateClient::new(http.clone(), &config, key())
            .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
            .await
            .unwrap();
        let poll = |set: &mut JoinSet<Result<_, Error>>| {
            let client = CreatomateClient::new(http.clone(), &config, key());
            let id = render.id.clone();
            set.spawn(async move { client.render_status(&id).await });
        };
        let mut set = JoinSet::new();
        // 35 polls at once: 29 fit in Creatomate's window with the render, the 30th earns a
        // 429 with Retry-After: 10; with the hold, the 5 behind it wait instead of earning one.
        for _ in 0..35 {
            poll(&mut set);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        // 10 more, 1 s later.
        for _ in 0..10 {
            poll(&mut set);
        }
        let results = set.join_all().await;
        assert!(results.iter().all(Result::is_ok), "everyone gets an answer");
        let rejected = state
            .ledger()
            .requests
            .iter()
            .filter(|r| r.status == Some(429))
            .count();
        eprintln!(
            "creatomate 429 with Retry-After, hold {}: {rejected} answered 429",
            if hold { "on" } else { "off" }
        );
        assert_eq!(rejected, if hold { 1 } else { 16 });
    }
}

#[tokio::test(start_paused = true)]
async fn an_invalid_service_policy_fails_every_call_naming_the_key() {
    let state = sim("");
    let http = in_memory(&state);
    let mut config = defaults();
    config.services.suno.breaker.failure_ratio = 0.0;
    let err = config.validate().unwrap_err();
    assert_eq!(err.key(), "services.suno.breaker.failure_ratio");
    // Built anyway (the constructors cannot fail): every call fails before sending.
    let client = SunoClient::new(http.clone(), &config, key());
    let err = client.generate(&song()).await.unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::Config);
    assert_eq!(err.attempts(), 0);
    assert!(
        err.to_string().starts_with(
            "suno.generate: invalid config: services.suno.breaker.failure_ratio: 0 must be"
        ),
        "{err}"
    );
    assert_eq!(state.ledger().requests.len(), 0);
    // The handle's own protections are untouched.
    assert_eq!(
        http.circuit_state(Service::Suno),
        Some(CircuitState::Closed)
    );
    // The other services are unaffected.
    CreatomateClient::new(http.clone(), &config, key())
        .templates()
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_whose_slot_cannot_come_before_its_deadline_fails_at_once() {
    let state = sim("");
    let mut config = defaults();
    // One Creatomate request per minute, and status calls that may take 5 s in all.
    config.services.creatomate.rate_limit.requests = 1;
    config.services.creatomate.rate_limit.per = Duration::from_secs(60);
    config.endpoints.creatomate_status.attempt_timeout = Duration::from_secs(2);
    config.endpoints.creatomate_status.deadline = Duration::from_secs(5);
    config.validate().unwrap();
    let http = in_memory_for(&state, &config);
    let client = CreatomateClient::new(http.clone(), &config, key());
    let render = client
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
        .await
        .unwrap();
    let start = Instant::now();
    let err = client.render_status(&render.id).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "no point waiting");
    assert_eq!(*err.kind(), ErrorKind::Throttled);
    assert!(err.is_throttled() && err.is_retryable() && err.is_exhausted());
    assert_eq!(err.attempts(), 0);
    assert!(matches!(
        err.stop_reason(),
        Some(StopReason::Throttled(refusal)) if refusal.next_in == Duration::from_secs(60)
    ));
    assert_eq!(
        err.to_string(),
        "creatomate.status: client-side rate limit for creatomate (1 requests per 1m): no slot \
         before the deadline, the next is in 1m with 5s left; not sent"
    );
    assert_eq!(state.ledger().requests.len(), 1, "only the render was sent");
}

#[tokio::test(start_paused = true)]
async fn outages_of_the_other_services_are_not_amplified_either() {
    use crate::support::{Lyrics, clients};
    for route in [
        "openai.responses",
        "suno.record_info",
        "creatomate.templates",
    ] {
        let state = sim(&always(route, "\"outage\""));
        let http = in_memory(&state);
        let config = defaults();
        let mut set = JoinSet::new();
        for _ in 0..PIPELINES {
            let c = clients(&http, &config);
            set.spawn(async move {
                match route {
                    "openai.responses" => c
                        .openai
                        .structured::<Lyrics>("Write lyrics.", "a bakery", "song")
                        .await
                        .map(drop),
                    "suno.record_info" => c.suno.task_status("t-1").await.map(drop),
                    _ => c.creatomate.templates().await.map(drop),
                }
            });
        }
        let results = set.join_all().await;
        assert!(results.iter().all(Result::is_err), "{route} is down");
        let route_id: RouteId = route.parse().unwrap();
        let (sent, amp) = amplification(&state, route_id, PIPELINES);
        eprintln!("{route} outage, defaults: {sent} requests for {PIPELINES} calls: {amp:.2}");
        assert!(amp <= 1.2, "{route}: {amp}");
        let service = match route.split('.').next().unwrap() {
            "openai" => Service::OpenAi,
            "suno" => Service::Suno,
            _ => Service::Creatomate,
        };
        assert_eq!(http.circuit_state(service), Some(CircuitState::Open));
    }
}
