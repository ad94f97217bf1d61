//! What the observer hears: every attempt with its outcome, every refusal by a protection,
//! each retry, and the finished call — the material for metrics and a job timeline (issue 15).
//! And the registry of protections is explicit: a client never runs with settings it was not
//! given.

use std::sync::Arc;
use std::time::Duration;

use encore_clients::creatomate::{CreatomateClient, RenderRequest};
use encore_clients::suno::{GenerateRequest, SunoClient};
use encore_clients::{
    AttemptOutcome, CallOutcome, Endpoint, ErrorKind, Protection, Protections, Service,
};
use encore_sim::DEMO_TEMPLATE_ID;

use crate::support::{Recorder, always, defaults, in_memory, in_memory_for, key, sequence, sim};

fn outcomes(recorder: &Recorder) -> Vec<(u32, AttemptOutcome, Option<u16>, Option<String>)> {
    recorder
        .attempts
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.attempt,
                r.outcome,
                r.status,
                r.error_type.as_deref().map(str::to_owned),
            )
        })
        .collect()
}

/// A Suno client that reports to a recorder, over a simulator whose record-info answers
/// `faults` first, and the task it made (one attempt, recorded).
async fn recorded_suno(faults: &str) -> (SunoClient, Arc<Recorder>, String) {
    let state = sim(&sequence("suno.record_info", faults));
    let recorder = Arc::new(Recorder::default());
    let suno =
        SunoClient::new(in_memory(&state), &defaults(), key()).with_observer(recorder.clone());
    let task = suno
        .generate(&GenerateRequest::simple("a song"))
        .await
        .unwrap();
    (suno, recorder, task)
}

/// The records of a generate that succeeded, then a status read answered 502 once.
fn generated_then_502() -> Vec<(u32, AttemptOutcome, Option<u16>, Option<String>)> {
    vec![
        (1, AttemptOutcome::Ok, Some(200), None),
        (
            1,
            AttemptOutcome::Retried,
            Some(502),
            Some("502".to_owned()),
        ),
    ]
}

#[tokio::test(start_paused = true)]
async fn each_attempt_is_recorded_with_its_outcome_status_and_error_type() {
    let (suno, recorder, task) = recorded_suno("{ kind = \"server_error\", status = 502 }").await;
    suno.task_status(&task).await.unwrap();
    assert_eq!(
        outcomes(&recorder),
        [
            (1, AttemptOutcome::Ok, Some(200), None),
            (
                1,
                AttemptOutcome::Retried,
                Some(502),
                Some("502".to_owned())
            ),
            (2, AttemptOutcome::Ok, Some(200), None),
        ]
    );
    let attempts = recorder.attempts.lock().unwrap();
    assert!(attempts.iter().all(|a| a.slot_wait.is_zero()));
    assert_eq!(attempts[1].endpoint, Endpoint::SunoStatus);
    assert_eq!(
        recorder.notices.lock().unwrap().len(),
        1,
        "one retry notice"
    );
    let records = recorder.records.lock().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        (records[1].attempts, records[1].outcome),
        (2, CallOutcome::Ok)
    );
    assert!(recorder.refusals.lock().unwrap().is_empty());
}

/// A call dropped while an attempt is in flight (its caller stopped waiting: a callback came
/// first, the job was cancelled) reports that attempt as cancelled: it was sent, and the
/// service counts it. A call dropped while it waits between attempts reports nothing more.
#[tokio::test(start_paused = true)]
async fn an_attempt_in_flight_when_its_call_is_dropped_is_recorded_as_cancelled() {
    let (suno, recorder, task) = recorded_suno("{ kind = \"server_error\", status = 502 }, { kind = \"stall_body\", after_bytes = 0, ms = 60000 }").await;
    let started = tokio::time::Instant::now();
    let abandoned = tokio::time::timeout(Duration::from_secs(5), suno.task_status(&task)).await;
    assert!(abandoned.is_err(), "the status read was still waiting");
    assert_eq!(
        outcomes(&recorder),
        [
            generated_then_502(),
            vec![(
                2,
                AttemptOutcome::Cancelled,
                None,
                Some("cancelled".to_owned())
            )],
        ]
        .concat()
    );
    let cancelled = recorder.attempts.lock().unwrap()[2].clone();
    assert_eq!(cancelled.endpoint, Endpoint::SunoStatus);
    assert!(
        cancelled.took > Duration::ZERO && cancelled.took < started.elapsed(),
        "from when the attempt began: {:?}",
        cancelled.took
    );

    // Dropped during the wait before a retry: nothing was in flight, nothing more is recorded.
    let (suno, recorder, task) = recorded_suno("{ kind = \"server_error\", status = 502 }").await;
    let abandoned = tokio::time::timeout(Duration::from_millis(1), suno.task_status(&task)).await;
    assert!(abandoned.is_err());
    assert_eq!(outcomes(&recorder), generated_then_502());
}

#[tokio::test(start_paused = true)]
async fn a_billed_call_that_may_have_run_is_recorded_as_ambiguous() {
    let state = sim(&always(
        "suno.generate",
        "{ kind = \"suno_code\", code = 500 }",
    ));
    let recorder = Arc::new(Recorder::default());
    let suno =
        SunoClient::new(in_memory(&state), &defaults(), key()).with_observer(recorder.clone());
    let err = suno
        .generate(&GenerateRequest::simple("a song"))
        .await
        .unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::Ambiguous);
    assert!(err.may_have_run());
    assert_eq!(
        outcomes(&recorder),
        [(
            1,
            AttemptOutcome::Ambiguous,
            Some(200),
            Some("500".to_owned())
        )]
    );
    // A permanent error is no ambiguity.
    let state = sim(&always(
        "suno.generate",
        "{ kind = \"suno_code\", code = 429 }",
    ));
    let recorder = Arc::new(Recorder::default());
    let suno =
        SunoClient::new(in_memory(&state), &defaults(), key()).with_observer(recorder.clone());
    suno.generate(&GenerateRequest::simple("a song"))
        .await
        .unwrap_err();
    assert_eq!(outcomes(&recorder)[0].1, AttemptOutcome::Permanent);
}

#[tokio::test(start_paused = true)]
async fn refusals_by_each_protection_are_reported_and_nothing_is_sent_for_them() {
    // The breaker: five failed generates in a row open it; the next call is refused.
    let state = sim(&always(
        "suno.generate",
        "{ kind = \"suno_code\", code = 455 }",
    ));
    let mut config = defaults();
    config.services.suno.budget.enabled = false;
    config.services.suno.rate_limit.enabled = false;
    let http = in_memory_for(&state, &config);
    let recorder = Arc::new(Recorder::default());
    let suno = SunoClient::new(http, &config, key()).with_observer(recorder.clone());
    let first = suno
        .generate(&GenerateRequest::simple("x"))
        .await
        .unwrap_err();
    assert_eq!(first.attempts(), 4);
    let second = suno
        .generate(&GenerateRequest::simple("x"))
        .await
        .unwrap_err();
    assert!(second.is_circuit_open(), "{second}");
    let refusals = recorder.refusals.lock().unwrap().clone();
    assert!(!refusals.is_empty());
    assert!(refusals.iter().all(|r| r.by == Protection::Breaker));
    assert!(
        refusals[0].detail.starts_with("circuit open for suno"),
        "{refusals:?}"
    );
    let gave_up = outcomes(&recorder)
        .iter()
        .filter(|o| o.1 == AttemptOutcome::GaveUp)
        .count();
    assert_eq!(
        gave_up,
        2,
        "each call's last attempt: {:?}",
        outcomes(&recorder)
    );
    let sent = state.ledger().requests.len();
    assert_eq!(
        sent,
        recorder.attempts.lock().unwrap().len(),
        "one request per recorded attempt, none for refusals"
    );

    // The budget: no floor, no deposits yet enough for a retry.
    let state = sim(&always(
        "suno.record_info",
        "{ kind = \"server_error\", status = 502 }",
    ));
    let mut config = defaults();
    config.services.suno.budget.min_per_sec = 0.0;
    config.services.suno.breaker.enabled = false;
    let recorder = Arc::new(Recorder::default());
    let suno = SunoClient::new(in_memory_for(&state, &config), &config, key())
        .with_observer(recorder.clone());
    let err = suno.task_status("t-1").await.unwrap_err();
    assert!(err.is_budget_exhausted(), "{err}");
    let refusals = recorder.refusals.lock().unwrap().clone();
    assert_eq!(refusals.len(), 1);
    assert_eq!(
        (refusals[0].by, refusals[0].attempt),
        (Protection::Budget, 2)
    );

    // The rate limit: one render per minute, and a second one that cannot wait that long.
    let state = sim("");
    let mut config = defaults();
    config.services.creatomate.rate_limit.requests = 1;
    config.services.creatomate.rate_limit.per = Duration::from_secs(60);
    config.endpoints.creatomate_status.attempt_timeout = Duration::from_secs(2);
    config.endpoints.creatomate_status.deadline = Duration::from_secs(5);
    let recorder = Arc::new(Recorder::default());
    let creatomate = CreatomateClient::new(in_memory_for(&state, &config), &config, key())
        .with_observer(recorder.clone());
    let render = creatomate
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
        .await
        .unwrap();
    let err = creatomate.render_status(&render.id).await.unwrap_err();
    assert!(err.is_throttled());
    let refusals = recorder.refusals.lock().unwrap().clone();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].by, Protection::RateLimit);
    assert_eq!(refusals[0].endpoint, Endpoint::CreatomateStatus);
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_a_rate_limit_slot_is_recorded_with_the_attempt() {
    let state = sim("");
    let mut config = defaults();
    config.services.creatomate.rate_limit.requests = 1;
    config.services.creatomate.rate_limit.per = Duration::from_secs(2);
    let recorder = Arc::new(Recorder::default());
    let creatomate = CreatomateClient::new(in_memory_for(&state, &config), &config, key())
        .with_observer(recorder.clone());
    let render = creatomate
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
        .await
        .unwrap();
    creatomate.render_status(&render.id).await.unwrap();
    let attempts = recorder.attempts.lock().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].slot_wait, Duration::ZERO);
    assert_eq!(attempts[1].slot_wait, Duration::from_secs(2));
    // The wait is not part of the attempt.
    assert_eq!(attempts[1].took, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_client_refuses_protections_built_from_other_settings() {
    let state = sim("");
    let mut config = defaults();
    config.services.suno.budget.ratio = 0.1;
    // A handle with the default protections, and a client whose configuration asks otherwise.
    let suno = SunoClient::new(in_memory(&state), &config, key());
    let err = suno.credits().await.unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::Config);
    assert_eq!(err.attempts(), 0);
    assert!(
        err.to_string().starts_with(
            "suno.credits: invalid config: services.suno: differs from the protections"
        ),
        "{err}"
    );
    assert_eq!(state.ledger().requests.len(), 0, "nothing was sent");
    // Built from the same settings, the handle serves it; the other services are unaffected.
    let http = in_memory(&state).with_protections(Protections::from_config(&config).unwrap());
    SunoClient::new(http.clone(), &config, key())
        .credits()
        .await
        .unwrap();
    assert!(
        (http
            .protections()
            .get(Service::Suno)
            .budget()
            .config()
            .ratio
            - 0.1)
            .abs()
            < 1e-9
    );
    CreatomateClient::new(in_memory(&state), &config, key())
        .templates()
        .await
        .unwrap();
}
