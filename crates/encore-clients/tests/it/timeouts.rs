//! Checklist 2: a timeout raises within the configured bound — the shipped default schedules,
//! proven on paused time with the simulator in memory (minutes of virtual time in milliseconds).

use std::time::Duration;

use encore_clients::creatomate::RenderRequest;
use encore_clients::suno::GenerateRequest;
use encore_clients::{Endpoint, Error, ErrorKind};
use encore_sim::{DEMO_TEMPLATE_ID, RouteId};
use tokio::time::Instant;

use crate::support::{Lyrics, always, clients, defaults, in_memory, sim};

/// A response head that never comes in any reasonable time (the request is not processed
/// before the wait, so an abandoned attempt creates nothing).
const HANG: &str = "{ kind = \"latency\", ms = 100000000 }";
/// The request is processed and the head sent, then the body never finishes.
const STALL: &str = "{ kind = \"stall_body\", after_bytes = 4, ms = 100000000 }";

/// The default schedule of `endpoint` when every attempt times out: attempts × timeout + waits.
fn expected(endpoint: Endpoint, attempts: u32) -> Duration {
    let p = defaults().endpoint(endpoint).retry_policy(true);
    let waits: Duration = p.backoff_seeded(0).take(attempts as usize - 1).sum();
    p.attempt_timeout * attempts + waits
}

fn assert_timed_out(err: &Error, endpoint: Endpoint, attempts: u32, elapsed: Duration) {
    assert_eq!(err.endpoint(), Some(endpoint), "{err}");
    assert_eq!(err.attempts(), attempts, "{err}");
    assert!(err.is_timeout(), "{err}");
    let want = expected(endpoint, attempts);
    assert!(
        elapsed >= want && elapsed < want + Duration::from_millis(50),
        "{endpoint}: took {elapsed:?}, expected {want:?}"
    );
    let deadline = defaults().endpoint(endpoint).deadline;
    assert!(
        elapsed <= deadline,
        "{endpoint}: {elapsed:?} > deadline {deadline:?}"
    );
    assert!(err.elapsed().unwrap() <= elapsed);
}

#[tokio::test(start_paused = true)]
async fn reads_use_their_whole_default_schedule_and_stop_at_its_bound() {
    for (route, endpoint) in [
        ("suno.record_info", Endpoint::SunoStatus),
        ("suno.timestamped_lyrics", Endpoint::SunoTimestamps),
        ("suno.credit", Endpoint::SunoCredits),
        ("creatomate.templates", Endpoint::CreatomateTemplates),
        ("creatomate.template", Endpoint::CreatomateTemplates),
        ("creatomate.render_status", Endpoint::CreatomateStatus),
    ] {
        let state = sim(&always(route, HANG));
        let c = clients(&in_memory(&state), &defaults());
        let start = Instant::now();
        let err = match route {
            "suno.record_info" => c.suno.task_status("t-1").await.err(),
            "suno.timestamped_lyrics" => c.suno.timestamped_lyrics("t-1", "a-1").await.err(),
            "suno.credit" => c.suno.credits().await.err(),
            "creatomate.templates" => c.creatomate.templates().await.err(),
            "creatomate.template" => c.creatomate.template(DEMO_TEMPLATE_ID).await.err(),
            _ => c.creatomate.render_status("r-1").await.err(),
        }
        .expect("every attempt hangs");
        let elapsed = start.elapsed();
        let attempts = defaults().endpoint(endpoint).max_retries + 1;
        assert_timed_out(&err, endpoint, attempts, elapsed);
        assert!(
            err.is_exhausted() && err.is_retryable() && !err.may_have_run(),
            "{err}"
        );
        assert_eq!(*err.kind(), ErrorKind::Timeout);
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "{endpoint}: gave up after {attempts} attempts in "
            )),
            "{text}"
        );
        assert!(
            text.ends_with("attempt timed out after 30s")
                || text.ends_with("attempt timed out after 2m"),
            "{text}"
        );
        let served = state.ledger().count(route.parse::<RouteId>().unwrap());
        assert_eq!(
            served,
            u64::from(attempts),
            "{route}: the simulator saw every attempt"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn openai_replays_timeouts_within_its_bound() {
    let state = sim(&always("openai.responses", STALL));
    let c = clients(&in_memory(&state), &defaults());
    let start = Instant::now();
    let err = c
        .openai
        .structured::<Lyrics>("", "a song", "song")
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    // 4 × 60 s + 2 + 4 + 8 s = 254 s, inside the 4m 15s deadline.
    assert_timed_out(&err, Endpoint::OpenAiResponses, 4, elapsed);
    assert_eq!(elapsed, Duration::from_secs(254));
    assert!(
        err.may_have_run(),
        "responses may have been generated and billed"
    );
    assert_eq!(
        state.ledger().openai_responses,
        4,
        "each attempt was processed: the documented cost of replaying OpenAI"
    );
}

#[tokio::test(start_paused = true)]
async fn billed_calls_time_out_once_and_are_not_replayed() {
    for (route, fault, jobs) in [
        ("suno.generate", STALL, 1),
        ("creatomate.render", STALL, 1),
        // Timed out before processing: nothing exists, but the client cannot know that.
        ("suno.generate", HANG, 0),
        ("creatomate.render", HANG, 0),
    ] {
        let state = sim(&always(route, fault));
        let c = clients(&in_memory(&state), &defaults());
        let start = Instant::now();
        let (err, endpoint) = if route == "suno.generate" {
            let req = GenerateRequest::custom("la la", "pop", "Song");
            (
                c.suno.generate(&req).await.unwrap_err(),
                Endpoint::SunoGenerate,
            )
        } else {
            let req = RenderRequest::new(DEMO_TEMPLATE_ID);
            (
                c.creatomate.render(&req).await.unwrap_err(),
                Endpoint::CreatomateRender,
            )
        };
        let elapsed = start.elapsed();
        assert_timed_out(&err, endpoint, 1, elapsed);
        assert_eq!(*err.kind(), ErrorKind::Ambiguous, "{err}");
        assert!(err.may_have_run() && !err.is_retryable() && !err.is_exhausted());
        let text = err.to_string();
        assert!(text.contains("may have been"), "{text}");
        assert!(
            text.contains(&format!(
                "endpoints.{}.retry_ambiguous = true",
                endpoint.config_key()
            )),
            "{text}"
        );
        let ledger = state.ledger();
        assert_eq!(
            ledger.suno_tasks + ledger.creatomate_renders,
            jobs,
            "{route} {fault}"
        );
        assert_eq!(ledger.requests.len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_a_schedule_short() {
    let state = sim(&always("suno.record_info", HANG));
    let mut config = defaults();
    config.endpoints.suno_status.deadline = Duration::from_secs(45);
    let c = clients(&in_memory(&state), &config);
    let start = Instant::now();
    let err = c.suno.task_status("t").await.unwrap_err();
    // 30 s attempt, 1 s wait, then the second attempt gets only the 14 s left.
    assert_eq!(start.elapsed(), Duration::from_secs(45));
    assert_eq!(err.attempts(), 2);
    assert!(err.is_exhausted());
    assert!(err.to_string().contains("deadline"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn with_retries_off_one_attempt_still_times_out_at_its_bound() {
    let state = sim(&always("suno.record_info", HANG));
    let mut config = defaults();
    config.retries = false;
    let c = clients(&in_memory(&state), &config);
    let start = Instant::now();
    let err = c.suno.task_status("t").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(err.attempts(), 1);
    assert!(err.to_string().contains("(retries disabled)"), "{err}");
}
