//! Checklist 3 and 4, per endpoint, in memory on paused time: a transient fault is retried and
//! then succeeds (the ledger shows the attempts); exhaustion returns the clear error; a
//! permanent error makes exactly one attempt.

use std::time::Duration;

use encore_clients::creatomate::RenderRequest;
use encore_clients::suno::GenerateRequest;
use encore_clients::{CallOutcome, Endpoint, Error, ErrorKind};
use encore_resilience::fmt_duration;
use encore_sim::{DEMO_TEMPLATE_ID, RouteId};
use http::StatusCode;
use tokio::time::Instant;

use crate::support::{
    Clients, Lyrics, always, clients, defaults, in_memory, sequence, sim, sim_with,
};

fn song() -> GenerateRequest {
    GenerateRequest::custom("[Verse]\nWarm bread at dawn", "acoustic pop", "Dawn Bakery")
}

/// Makes the call of `route` (creating what it needs first, through routes without faults).
async fn call(c: &Clients, route: &str) -> Result<(), Error> {
    match route {
        "openai.responses" => c
            .openai
            .structured::<Lyrics>("Write lyrics.", "a bakery", "song")
            .await
            .map(drop),
        "suno.generate" => c.suno.generate(&song()).await.map(drop),
        "suno.record_info" => {
            let task = c.suno.generate(&song()).await.unwrap();
            c.suno.task_status(&task).await.map(drop)
        }
        "suno.timestamped_lyrics" => {
            let task = c.suno.generate(&song()).await.unwrap();
            let record = c.suno.task_status(&task).await.unwrap();
            c.suno
                .timestamped_lyrics(&task, &record.tracks[0].id)
                .await
                .map(drop)
        }
        "suno.credit" => c.suno.credits().await.map(drop),
        "creatomate.render" => c
            .creatomate
            .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
            .await
            .map(drop),
        "creatomate.render_status" => {
            let render = c
                .creatomate
                .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
                .await
                .unwrap();
            c.creatomate.render_status(&render.id).await.map(drop)
        }
        "creatomate.templates" => c.creatomate.templates().await.map(drop),
        "creatomate.template" => c.creatomate.template(DEMO_TEMPLATE_ID).await.map(drop),
        other => panic!("unknown route {other}"),
    }
}

fn endpoint_of(route: &str) -> Endpoint {
    match route {
        "openai.responses" => Endpoint::OpenAiResponses,
        "suno.generate" => Endpoint::SunoGenerate,
        "suno.record_info" => Endpoint::SunoStatus,
        "suno.timestamped_lyrics" => Endpoint::SunoTimestamps,
        "suno.credit" => Endpoint::SunoCredits,
        "creatomate.render" => Endpoint::CreatomateRender,
        "creatomate.render_status" => Endpoint::CreatomateStatus,
        _ => Endpoint::CreatomateTemplates,
    }
}

fn route_id(route: &str) -> RouteId {
    route.parse().unwrap()
}

/// (route, one transient fault, the wait before the retry)
const TRANSIENT: &[(&str, &str, Duration)] = &[
    (
        "openai.responses",
        "{ kind = \"openai_rate_limit\", retry_after_ms = 250 }",
        Duration::from_millis(250),
    ),
    (
        "openai.responses",
        "{ kind = \"openai_rate_limit\", retry_after_s = 3 }",
        Duration::from_secs(3),
    ),
    (
        "openai.responses",
        "{ kind = \"server_error\", status = 503 }",
        Duration::from_secs(2),
    ),
    (
        "openai.responses",
        "{ kind = \"server_error\", status = 500, should_retry = true }",
        Duration::from_secs(2),
    ),
    (
        "openai.responses",
        "\"malformed_json\"",
        Duration::from_secs(2),
    ),
    (
        "openai.responses",
        "\"truncated_body\"",
        Duration::from_secs(2),
    ),
    (
        "openai.responses",
        "\"reset_before_request\"",
        Duration::from_secs(2),
    ),
    (
        "suno.generate",
        "{ kind = \"suno_code\", code = 430 }",
        Duration::from_secs(1),
    ),
    (
        "suno.generate",
        "{ kind = \"suno_code\", code = 405 }",
        Duration::from_secs(1),
    ),
    (
        "suno.generate",
        "{ kind = \"suno_code\", code = 455 }",
        Duration::from_secs(1),
    ),
    (
        "suno.generate",
        "{ kind = \"status\", status = 408 }",
        Duration::from_secs(1),
    ),
    (
        "suno.record_info",
        "{ kind = \"server_error\", status = 500 }",
        Duration::from_secs(1),
    ),
    (
        "suno.record_info",
        "{ kind = \"suno_code\", code = 500 }",
        Duration::from_secs(1),
    ),
    (
        "suno.record_info",
        "\"malformed_json\"",
        Duration::from_secs(1),
    ),
    (
        "suno.record_info",
        "\"truncated_body\"",
        Duration::from_secs(1),
    ),
    (
        "suno.record_info",
        "\"reset_before_request\"",
        Duration::from_secs(1),
    ),
    (
        "suno.record_info",
        "\"reset_after_processing\"",
        Duration::from_secs(1),
    ),
    (
        "suno.record_info",
        "{ kind = \"stall_body\", after_bytes = 8, ms = 60000 }",
        Duration::from_secs(1),
    ),
    (
        "suno.timestamped_lyrics",
        "{ kind = \"server_error\", status = 502 }",
        Duration::from_secs(2),
    ),
    (
        "suno.timestamped_lyrics",
        "{ kind = \"suno_code\", code = 455 }",
        Duration::from_secs(2),
    ),
    (
        "suno.credit",
        "{ kind = \"status\", status = 502, headers = { \"content-type\" = \"text/html\" }, body = \"<html>502 Bad Gateway</html>\" }",
        Duration::from_secs(1),
    ),
    (
        "suno.credit",
        "{ kind = \"suno_code\", code = 430 }",
        Duration::from_secs(1),
    ),
    (
        "creatomate.render",
        "{ kind = \"creatomate_rate_limit\", retry_after_s = 1 }",
        Duration::from_secs(1),
    ),
    (
        "creatomate.render",
        "{ kind = \"creatomate_rate_limit\", retry_after_s = 4, http_date = true }",
        Duration::from_secs(4),
    ),
    (
        "creatomate.render",
        "{ kind = \"status\", status = 429 }",
        Duration::from_secs(1),
    ),
    (
        "creatomate.render_status",
        "{ kind = \"server_error\", status = 502 }",
        Duration::from_secs(1),
    ),
    (
        "creatomate.render_status",
        "\"truncated_body\"",
        Duration::from_secs(1),
    ),
    ("creatomate.templates", "\"outage\"", Duration::from_secs(1)),
    (
        "creatomate.templates",
        "\"malformed_json\"",
        Duration::from_secs(1),
    ),
    (
        "creatomate.template",
        "{ kind = \"server_error\", status = 503, should_retry = true }",
        Duration::from_secs(1),
    ),
];

#[tokio::test(start_paused = true)]
async fn a_transient_fault_is_retried_then_succeeds_and_the_ledger_shows_both_attempts() {
    for &(route, fault, wait) in TRANSIENT {
        for mirrored in [false, true] {
            if mirrored && !fault.contains("suno_code") {
                continue;
            }
            let state = sim_with(&sequence(route, fault), |c| {
                c.suno_errors_as_http_status = mirrored;
            });
            let c = clients(&in_memory(&state), &defaults());
            let start = Instant::now();
            call(&c, route)
                .await
                .unwrap_or_else(|e| panic!("{route} after {fault}: {e}"));
            let elapsed = start.elapsed();

            let ledger = state.ledger();
            assert_eq!(
                ledger.count(route_id(route)),
                2,
                "{route} {fault}: the fault, then the retry"
            );
            assert!(
                ledger.faults_for(route_id(route))[0].is_some(),
                "{route} {fault}"
            );
            let records = c.recorder.records.lock().unwrap();
            let last = records.last().unwrap();
            assert_eq!(last.endpoint, endpoint_of(route));
            assert_eq!(
                (last.attempts, last.outcome),
                (2, CallOutcome::Ok),
                "{route} {fault}"
            );
            let notices = c.recorder.notices.lock().unwrap();
            assert_eq!(notices.len(), 1, "{route} {fault}");
            let notice = &notices[0];
            assert_eq!((notice.endpoint, notice.attempt), (endpoint_of(route), 1));
            assert!(!notice.cause.is_empty());
            // Server-requested waits are honoured (HTTP-dates have whole-second precision).
            assert!(
                notice.delay.abs_diff(wait) < Duration::from_secs(1),
                "{route} {fault}: waited {:?}, expected {wait:?}",
                notice.delay
            );
            assert!(elapsed >= notice.delay, "{route} {fault}");
            // Billed jobs: exactly one per logical call, except OpenAI answers that were
            // processed and then lost (replayed by design, `retry_ambiguous = true`).
            match route {
                "suno.generate" | "suno.record_info" | "suno.timestamped_lyrics" => {
                    assert_eq!(ledger.suno_tasks, 1, "{route} {fault}");
                }
                "creatomate.render" | "creatomate.render_status" => {
                    assert_eq!(ledger.creatomate_renders, 1, "{route} {fault}");
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn exhaustion_says_which_endpoint_how_many_attempts_how_long_and_why() {
    for route in [
        "openai.responses",
        "suno.record_info",
        "suno.timestamped_lyrics",
        "suno.credit",
        "creatomate.render_status",
        "creatomate.templates",
        "creatomate.template",
    ] {
        let state = sim(&always(route, "\"outage\""));
        let c = clients(&in_memory(&state), &defaults());
        let start = Instant::now();
        let err = call(&c, route).await.unwrap_err();
        let endpoint = endpoint_of(route);
        let policy = defaults().endpoint(endpoint).retry_policy(true);
        let attempts = policy.max_attempts();
        let waits: Duration = policy.backoff_seeded(0).sum();
        // In-memory 503s take no time; a Creatomate read right after the render that set it up
        // first waits for its rate-limit slot (one request per 333 ms, rounded up to the 1 ms
        // timer tick).
        let slot = if route == "creatomate.render_status" {
            Duration::from_millis(334)
        } else {
            Duration::ZERO
        };
        assert_eq!(start.elapsed(), waits + slot, "{route}");
        assert_eq!(err.endpoint(), Some(endpoint));
        assert_eq!(err.attempts(), attempts);
        assert_eq!(err.elapsed(), Some(waits + slot));
        assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert!(err.is_exhausted() && err.is_retryable(), "{err}");
        let text = err.to_string();
        let what = if route.starts_with("suno") {
            "suno code 503 (server error): "
        } else {
            "http 503 Service Unavailable: "
        };
        let head = format!(
            "{endpoint}: gave up after {attempts} attempts in {}: {what}",
            fmt_duration(waits + slot)
        );
        assert!(text.starts_with(&head), "{text}\n  vs {head}");
        assert!(
            text.len() > head.len(),
            "the server's message follows: {text}"
        );
        assert_eq!(state.ledger().count(route_id(route)), u64::from(attempts));
        let records = c.recorder.records.lock().unwrap();
        let last = records.last().unwrap();
        assert_eq!(
            (last.attempts, last.outcome),
            (attempts, CallOutcome::Failed)
        );
        assert_eq!(last.error.as_deref(), Some(text.as_str()));
        assert_eq!(
            c.recorder.notices.lock().unwrap().len(),
            attempts as usize - 1
        );
    }
}

#[tokio::test(start_paused = true)]
async fn billed_calls_exhaust_on_provable_rejections_without_creating_anything() {
    // Suno's rate-limit code: rejected before any task exists, so all four attempts are made.
    let state = sim(&always(
        "suno.generate",
        "{ kind = \"suno_code\", code = 430 }",
    ));
    let c = clients(&in_memory(&state), &defaults());
    let err = c.suno.generate(&song()).await.unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.elapsed(), Some(Duration::from_secs(7)));
    assert!(err.is_exhausted() && !err.may_have_run());
    assert_eq!(err.api_code(), Some("430"));
    assert!(
        err.to_string()
            .starts_with("suno.generate: gave up after 4 attempts in 7s: suno code 430"),
        "{err}"
    );
    assert_eq!(state.ledger().suno_tasks, 0);

    // Creatomate 429 with Retry-After: 1 s between attempts, as asked.
    let state = sim(&always(
        "creatomate.render",
        "{ kind = \"creatomate_rate_limit\", retry_after_s = 1 }",
    ));
    let c = clients(&in_memory(&state), &defaults());
    let err = c
        .creatomate
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
        .await
        .unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::RateLimited);
    assert_eq!(
        (err.attempts(), err.elapsed()),
        (4, Some(Duration::from_secs(3)))
    );
    assert_eq!(state.ledger().creatomate_renders, 0);
    assert!(
        c.recorder
            .notices
            .lock()
            .unwrap()
            .iter()
            .all(|n| n.server_requested && n.delay == Duration::from_secs(1))
    );

    // A Retry-After beyond max_retry_after (2 min) gives up at once, naming the wait.
    let state = sim(&always(
        "creatomate.render",
        "{ kind = \"creatomate_rate_limit\", retry_after_s = 600 }",
    ));
    let c = clients(&in_memory(&state), &defaults());
    let err = c
        .creatomate
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert!(
        err.to_string()
            .contains("server asked to wait 10m, more than the 2m limit"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn billed_calls_under_an_outage_are_not_replayed_and_say_the_job_may_exist() {
    for route in ["suno.generate", "creatomate.render"] {
        let state = sim(&always(route, "\"outage\""));
        let c = clients(&in_memory(&state), &defaults());
        let err = call(&c, route).await.unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Ambiguous, "{err}");
        assert_eq!(err.attempts(), 1);
        assert!(err.may_have_run());
        assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert!(err.to_string().contains("503"), "{err}");
        let ledger = state.ledger();
        assert_eq!(ledger.count(route_id(route)), 1);
        assert_eq!(
            ledger.suno_tasks + ledger.creatomate_renders,
            0,
            "a 503 outage creates nothing"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn opting_in_to_retry_ambiguous_replays_billed_calls_as_the_seed_plan_did() {
    let state = sim(&sequence("suno.generate", "\"reset_after_processing\""));
    let mut config = defaults();
    config.endpoints.suno_generate.retry_ambiguous = true;
    let c = clients(&in_memory(&state), &config);
    c.suno.generate(&song()).await.unwrap();
    let ledger = state.ledger();
    assert_eq!(ledger.count(RouteId::SunoGenerate), 2);
    assert_eq!(
        ledger.suno_tasks, 2,
        "the documented cost of opting in: a duplicate task"
    );
}

#[tokio::test(start_paused = true)]
async fn an_opted_in_replay_that_ends_permanently_still_says_the_job_may_exist() {
    // The first attempt is processed and its answer lost; the replay is refused (400): a task
    // exists, and the error must say so although the last failure was a plain refusal.
    let state = sim(&sequence(
        "suno.generate",
        "\"reset_after_processing\", { kind = \"status\", status = 400 }",
    ));
    let mut config = defaults();
    config.endpoints.suno_generate.retry_ambiguous = true;
    let c = clients(&in_memory(&state), &config);
    let err = c.suno.generate(&song()).await.unwrap_err();
    assert_eq!(state.ledger().suno_tasks, 1);
    assert_eq!(err.attempts(), 2);
    assert!(err.may_have_run(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_make_exactly_one_attempt() {
    struct Case {
        route: &'static str,
        scenario: String,
        tweak: fn(&mut encore_sim::SimConfig),
        kind: ErrorKind,
    }
    let none: fn(&mut encore_sim::SimConfig) = |_| {};
    let cases = [
        Case {
            route: "openai.responses",
            scenario: sequence("openai.responses", "\"openai_insufficient_quota\""),
            tweak: none,
            kind: ErrorKind::InsufficientCredits,
        },
        Case {
            route: "openai.responses",
            scenario: sequence("openai.responses", "{ kind = \"status\", status = 400 }"),
            tweak: none,
            kind: ErrorKind::InvalidRequest,
        },
        Case {
            route: "openai.responses",
            scenario: String::new(),
            tweak: |c| c.api_keys = Some(vec!["other".into()]),
            kind: ErrorKind::Unauthorized,
        },
        Case {
            route: "suno.generate",
            scenario: String::new(),
            tweak: |c| c.suno_credits = 0,
            kind: ErrorKind::InsufficientCredits,
        },
        Case {
            route: "suno.generate",
            scenario: sequence("suno.generate", "{ kind = \"suno_code\", code = 413 }"),
            tweak: none,
            kind: ErrorKind::InvalidRequest,
        },
        Case {
            route: "suno.generate",
            scenario: String::new(),
            tweak: |c| c.api_keys = Some(vec!["other".into()]),
            kind: ErrorKind::Unauthorized,
        },
        Case {
            route: "suno.credit",
            scenario: sequence("suno.credit", "{ kind = \"suno_code\", code = 401 }"),
            tweak: |c| c.suno_errors_as_http_status = true,
            kind: ErrorKind::Unauthorized,
        },
        Case {
            route: "suno.record_info",
            scenario: String::new(),
            tweak: none,
            kind: ErrorKind::NotFound,
        },
        Case {
            route: "suno.record_info",
            scenario: String::new(),
            tweak: |c| c.suno_unknown_task_code = 404,
            kind: ErrorKind::NotFound,
        },
        Case {
            route: "creatomate.render",
            scenario: String::new(),
            tweak: |c| c.creatomate_credits = 0,
            kind: ErrorKind::InsufficientCredits,
        },
        Case {
            route: "creatomate.render_status",
            scenario: String::new(),
            tweak: none,
            kind: ErrorKind::NotFound,
        },
        Case {
            route: "creatomate.template",
            scenario: sequence(
                "creatomate.template",
                "{ kind = \"server_error\", status = 503, should_retry = false }",
            ),
            tweak: none,
            kind: ErrorKind::Status {
                status: StatusCode::SERVICE_UNAVAILABLE,
            },
        },
    ];
    for case in cases {
        let state = sim_with(&case.scenario, case.tweak);
        let c = clients(&in_memory(&state), &defaults());
        let err = match case.route {
            // Unknown ids: the simulator answers Suno 400 (or 404) / Creatomate 404.
            "suno.record_info" => c.suno.task_status("no-such-task").await.unwrap_err(),
            "creatomate.render_status" => c
                .creatomate
                .render_status("no-such-render")
                .await
                .unwrap_err(),
            route => call(&c, route).await.unwrap_err(),
        };
        assert_eq!(*err.kind(), case.kind, "{}: {err}", case.route);
        assert_eq!(
            err.is_not_found(),
            case.kind == ErrorKind::NotFound,
            "{}: {err}",
            case.route
        );
        assert_eq!(err.attempts(), 1, "{}: {err}", case.route);
        assert!(
            err.is_permanent() && !err.is_retryable() && !err.is_exhausted(),
            "{}",
            case.route
        );
        assert_eq!(
            state.ledger().count(route_id(case.route)),
            1,
            "{}",
            case.route
        );
        assert!(c.recorder.notices.lock().unwrap().is_empty());
        assert!(!err.to_string().contains("gave up"), "{err}");
    }
}
