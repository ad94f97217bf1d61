//! Real providers, not just the simulator's happy path (issue 11), as the clients see them:
//! OpenAI answers that are HTTP 200 but not an answer (a reasoning item first, a refusal,
//! `failed`, `incomplete`), Suno's loose timestamped lyrics and the older docs' `FAILED`, and a
//! task or render that answers "not found" right after it was created. Each behaviour runs over
//! real loopback HTTP (the simulator on `127.0.0.1:0`, the reqwest transport, millisecond
//! policies and a fast time scale); where the schedule matters it runs again in memory on
//! paused time with the shipped policies.

use std::time::Duration;

use encore_clients::creatomate::RenderRequest;
use encore_clients::suno::{GenerateRequest, TaskStatus, Track};
use encore_clients::{
    CircuitState, Config, Endpoint, Error, ErrorKind, Http, Protections, Service,
};
use encore_sim::{DEMO_TEMPLATE_ID, JobKind, RouteId, RunningSim, SimState, serve};
use tokio::time::Instant;

use crate::support::{
    Clients, Lyrics, clients, defaults, fast, in_memory, in_memory_for, sim_with,
};

/// The simulator on a loopback port.
async fn start(state: SimState) -> RunningSim {
    serve(state, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// A reqwest transport of the test's own with the protections `config` asks for.
fn reqwest_for(config: &Config) -> Http {
    Http::with_connect_timeout(Duration::from_secs(1))
        .unwrap()
        .with_protections(Protections::from_config(config).unwrap())
}

/// A scenario whose first OpenAI response ends as `outcome` (then completed).
fn openai_outcome(outcome: &str) -> String {
    format!("[openai]\noutcomes = [\"{outcome}\"]\n")
}

async fn lyrics(c: &Clients) -> Result<Lyrics, Error> {
    c.openai
        .structured(
            "You write song lyrics.",
            "a bakery that opens at dawn",
            "lyrics",
        )
        .await
}

// ---- OpenAI ---------------------------------------------------------------------------------

#[tokio::test]
async fn openai_requests_keep_nothing_server_side_and_carry_the_output_ceiling() {
    for ceiling in [None, Some(3000)] {
        let running = start(sim_with("", |_| {})).await;
        let mut config = fast(&running.base_url());
        if let Some(n) = ceiling {
            config.openai.max_output_tokens = n;
        }
        let c = clients(&reqwest_for(&config), &config);
        lyrics(&c).await.unwrap();
        let ledger = running.ledger();
        let responses: Vec<_> = ledger
            .jobs
            .iter()
            .filter(|j| j.kind == JobKind::OpenaiResponse)
            .collect();
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].store, Some(false), "store: false is sent");
        assert_eq!(
            responses[0].max_output_tokens,
            Some(u64::from(ceiling.unwrap_or(8192))),
            "the configured ceiling (default 8192) is sent"
        );
    }
}

/// What one OpenAI call ends with.
#[derive(Debug)]
enum Expect {
    /// The lyrics, after this many attempts.
    Ok { attempts: u32 },
    /// An error of this kind after one attempt, permanent or (billed, not replayed) ambiguous,
    /// whose text contains every fragment.
    Err {
        kind: ErrorKind,
        permanent: bool,
        texts: &'static [&'static str],
    },
}

struct Case {
    outcome: &'static str,
    tweak: fn(&mut Config),
    expect: Expect,
    /// Responses billed (the simulator bills a response whatever its status).
    billed: u64,
}

fn openai_cases() -> Vec<Case> {
    let keep: fn(&mut Config) = |_| {};
    vec![
        Case {
            outcome: "completed",
            tweak: keep,
            expect: Expect::Ok { attempts: 1 },
            billed: 1,
        },
        // Reasoning models put a `reasoning` item before the message: still the answer.
        Case {
            outcome: "reasoning",
            tweak: keep,
            expect: Expect::Ok { attempts: 1 },
            billed: 1,
        },
        Case {
            outcome: "refusal",
            tweak: keep,
            expect: Expect::Err {
                kind: ErrorKind::Refusal,
                permanent: true,
                texts: &["the model refused: ", encore_sim::openai::REFUSAL_TEXT],
            },
            billed: 1,
        },
        // `server_error` may work on a new call, which bills again: the endpoint's replay rule
        // decides. OpenAI's default replays it (a response costs cents)…
        Case {
            outcome: "failed_server_error",
            tweak: keep,
            expect: Expect::Ok { attempts: 2 },
            billed: 2,
        },
        // …and with `retry_ambiguous = false` it is not replayed, and says why.
        Case {
            outcome: "failed_server_error",
            tweak: |c| c.endpoints.openai_responses.retry_ambiguous = false,
            expect: Expect::Err {
                kind: ErrorKind::Ambiguous,
                permanent: false,
                texts: &[
                    "the response failed (server_error): ",
                    encore_sim::openai::SERVER_ERROR_MESSAGE,
                    "so it was not retried",
                ],
            },
            billed: 1,
        },
        Case {
            outcome: "failed_invalid_prompt",
            tweak: keep,
            expect: Expect::Err {
                kind: ErrorKind::ResponseFailed,
                permanent: true,
                texts: &[
                    "the response failed (invalid_prompt): ",
                    encore_sim::openai::INVALID_PROMPT_MESSAGE,
                ],
            },
            billed: 1,
        },
        // The simulator echoes the request's `max_output_tokens`: the error names the ceiling
        // that was sent.
        Case {
            outcome: "incomplete_max_output_tokens",
            tweak: keep,
            expect: Expect::Err {
                kind: ErrorKind::Incomplete,
                permanent: true,
                texts: &[
                    "the response is incomplete (max_output_tokens)",
                    "did not fit in 8192 output tokens; raise openai.max_output_tokens",
                ],
            },
            billed: 1,
        },
        Case {
            outcome: "incomplete_content_filter",
            tweak: keep,
            expect: Expect::Err {
                kind: ErrorKind::Incomplete,
                permanent: true,
                texts: &["the response is incomplete (content_filter): OpenAI's content filter"],
            },
            billed: 1,
        },
        // A ceiling too small for the answer: the simulator cuts it off as OpenAI does.
        Case {
            outcome: "completed",
            tweak: |c| c.openai.max_output_tokens = 16,
            expect: Expect::Err {
                kind: ErrorKind::Incomplete,
                permanent: true,
                texts: &["did not fit in 16 output tokens"],
            },
            billed: 1,
        },
    ]
}

fn check_openai(case: &Case, result: &Result<Lyrics, Error>, c: &Clients) {
    let name = case.outcome;
    match (&case.expect, result) {
        (Expect::Ok { attempts }, Ok(lyrics)) => {
            assert!(!lyrics.lyrics.is_empty(), "{name}");
            let records = c.recorder.records.lock().unwrap();
            assert_eq!(records.last().unwrap().attempts, *attempts, "{name}");
        }
        (
            Expect::Err {
                kind,
                permanent,
                texts,
            },
            Err(err),
        ) => {
            assert_eq!(err.kind(), kind, "{name}: {err}");
            assert_eq!(err.attempts(), 1, "{name}: {err}");
            assert_eq!(err.is_permanent(), *permanent, "{name}: {err}");
            assert!(!err.is_retryable() && !err.is_exhausted(), "{name}: {err}");
            assert_eq!(err.may_have_run(), !permanent, "{name}: {err}");
            let text = err.to_string();
            assert!(text.starts_with("openai.responses: "), "{name}: {text}");
            for fragment in *texts {
                assert!(
                    text.contains(fragment),
                    "{name}: {text:?} lacks {fragment:?}"
                );
            }
            assert!(c.recorder.notices.lock().unwrap().is_empty(), "{name}");
        }
        (expect, got) => panic!("{name}: expected {expect:?}, got {got:?}"),
    }
}

#[tokio::test]
async fn every_openai_outcome_over_loopback() {
    for case in openai_cases() {
        let running = start(sim_with(&openai_outcome(case.outcome), |_| {})).await;
        let mut config = fast(&running.base_url());
        (case.tweak)(&mut config);
        let c = clients(&reqwest_for(&config), &config);
        let result = lyrics(&c).await;
        check_openai(&case, &result, &c);
        let ledger = running.ledger();
        assert_eq!(ledger.openai_responses, case.billed, "{}", case.outcome);
        assert_eq!(
            ledger.count(RouteId::OpenaiResponses),
            case.billed,
            "{}: one request per billed response, nothing else",
            case.outcome
        );
    }
}

#[tokio::test(start_paused = true)]
async fn openai_outcomes_on_the_shipped_schedule() {
    for case in openai_cases() {
        let state = sim_with(&openai_outcome(case.outcome), |_| {});
        let mut config = defaults();
        (case.tweak)(&mut config);
        let c = clients(&in_memory(&state), &config);
        let started = Instant::now();
        let result = lyrics(&c).await;
        let took = started.elapsed();
        check_openai(&case, &result, &c);
        // A replayed `server_error` waits the endpoint's first backoff (2 s) once; anything
        // that is not replayed ends at once.
        let expected = match case.expect {
            Expect::Ok { attempts: 2 } => Duration::from_secs(2),
            _ => Duration::ZERO,
        };
        assert_eq!(took, expected, "{}", case.outcome);
        assert_eq!(
            state.ledger().openai_responses,
            case.billed,
            "{}",
            case.outcome
        );
    }
}

// ---- Suno: timestamped lyrics and FAILED ----------------------------------------------------

/// A generated task (instant: time scale 0) and its first track.
async fn finished_track(c: &Clients) -> (String, Track) {
    let task = c
        .suno
        .generate(&GenerateRequest::custom(
            "[Verse]\nMorning bread is rising slow\nSalt and butter in the glow\n\
             [Chorus]\nHaneul bakery, open at dawn\nHaneul bakery, come along",
            "acoustic pop",
            "Dawn",
        ))
        .await
        .unwrap();
    let record = c.suno.task_status(&task).await.unwrap();
    assert_eq!(record.status, TaskStatus::Success);
    (task, record.tracks[0].clone())
}

#[tokio::test]
async fn timestamped_lyrics_in_every_shape_over_loopback() {
    /// Which words (by index) of a shape come without times.
    type Untimed = fn(usize) -> bool;
    // Per the simulator's documented shapes: which words come without times, and whether the
    // visualisation fields are sent.
    let shapes: [(&str, Untimed, bool); 5] = [
        ("normal", |_| false, true),
        ("null_timings", |i| i % 4 == 3, true),
        ("missing_timings", |i| i % 4 == 3, true),
        ("no_waveform", |_| false, false),
        ("loose", |i| i % 4 == 1 || i % 4 == 3, false),
    ];
    for (shape, untimed, visual) in shapes {
        let scenario = format!("[suno]\ntimestamped_lyrics = [\"{shape}\"]\n");
        let running = start(sim_with(&scenario, |_| {})).await;
        let config = fast(&running.base_url());
        let c = clients(&reqwest_for(&config), &config);
        let (task, track) = finished_track(&c).await;
        let aligned = c
            .suno
            .timestamped_lyrics(&task, &track.id)
            .await
            .unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert!(aligned.aligned_words.len() >= 8, "{shape}");
        for (i, word) in aligned.aligned_words.iter().enumerate() {
            let (start, end) = (word.start_s, word.end_s);
            if untimed(i) {
                assert_eq!((start, end), (None, None), "{shape}: word {i} {word:?}");
                assert!(!word.success, "{shape}: word {i}");
            } else {
                let (start, end) = start
                    .zip(end)
                    .unwrap_or_else(|| panic!("{shape}: {word:?}"));
                assert!(0.0 < start && start <= end, "{shape}: word {i} {word:?}");
            }
        }
        assert_eq!(aligned.waveform_data.is_some(), visual, "{shape}");
        assert_eq!(aligned.is_streamed.is_some(), visual, "{shape}");
        assert!(aligned.hoot_cer.is_some(), "{shape}");
        assert_eq!(
            running.ledger().count(RouteId::SunoTimestampedLyrics),
            1,
            "{shape}: the first answer was used, not retried"
        );
    }
}

#[tokio::test]
async fn the_old_failed_status_ends_with_sunos_message_over_loopback() {
    // Real time at 1/1000: FAILED comes instead of FIRST_SUCCESS, 30–40 ms after creation.
    let running = start(sim_with("[suno]\noutcomes = [\"failed\"]\n", |c| {
        c.time_scale = 0.001;
    }))
    .await;
    let config = fast(&running.base_url());
    let c = clients(&reqwest_for(&config), &config);
    let task = c
        .suno
        .generate(&GenerateRequest::custom("[Verse]\nla la", "pop", "Song"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    let record = loop {
        let record = c.suno.task_status(&task).await.unwrap();
        if seen.last() != Some(&record.status) {
            seen.push(record.status.clone());
        }
        if record.status.is_terminal() {
            break record;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{seen:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(record.status, TaskStatus::Failed, "{seen:?}");
    assert!(record.status.is_failure());
    assert_eq!(
        record.error_message.as_deref(),
        Some("Music generation failed")
    );
    assert!(!record.has_audio());
    // Everything before it was an ordinary, non-terminal stage.
    for status in &seen[..seen.len() - 1] {
        assert!(!status.is_terminal(), "{seen:?}");
    }
}

// ---- Not found right after creation ---------------------------------------------------------

/// How a read of a job that is not visible yet ends: one permanent attempt, "not found", no
/// retry, nothing refused.
fn assert_not_found(err: &Error, endpoint: Endpoint) {
    assert!(err.is_not_found(), "{err}");
    assert_eq!(*err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.endpoint(), Some(endpoint), "{err}");
    assert_eq!(err.attempts(), 1, "{err}");
    assert!(
        err.is_permanent() && !err.is_retryable() && !err.is_exhausted(),
        "{err}"
    );
    assert!(!err.is_circuit_open() && !err.may_have_run(), "{err}");
    assert!(!err.to_string().contains("gave up"), "{err}");
}

/// Config with breakers that open after two failures in a row, so that a read counted as a
/// failure would show at once, and no client-side rate limit (Creatomate's spaces requests
/// 333 ms apart, which is not what these tests are about).
fn touchy(config: Config) -> Config {
    let mut config = config;
    for service in [&mut config.services.suno, &mut config.services.creatomate] {
        service.breaker.consecutive_failures = 2;
        service.rate_limit.enabled = false;
    }
    config.validate().unwrap();
    config
}

/// How long (real time) a new task or render stays invisible in the loopback test: 2 s, as
/// 200 virtual seconds at a time scale of 0.01.
const INVISIBLE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_jobs_not_visible_yet_spend_no_retries_and_keep_the_breaker_closed() {
    // Each way the simulator can say "no such task": the documented HTTP 200 + body code 400
    // (its default), body code 404, and either mirrored into the HTTP status.
    let variants: [(u16, bool); 4] = [(400, false), (404, false), (400, true), (404, true)];
    let cases: Vec<_> = variants
        .into_iter()
        .map(|(code, as_status)| tokio::spawn(not_visible_yet(code, as_status)))
        .collect();
    for case in cases {
        case.await.unwrap();
    }
}

async fn not_visible_yet(code: u16, as_status: bool) {
    let label = format!("suno {code}, as http status: {as_status}");
    let state = sim_with("", |c| {
        c.time_scale = 0.01;
        c.suno_unknown_task_code = code;
        c.suno_errors_as_http_status = as_status;
        c.suno_task_visible_after_s = INVISIBLE.as_secs_f64() / 0.01;
        c.creatomate_render_visible_after_s = INVISIBLE.as_secs_f64() / 0.01;
    });
    let running = start(state).await;
    let config = touchy(fast(&running.base_url()));
    let http = reqwest_for(&config);
    let c = clients(&http, &config);
    // Both jobs are created between these two instants.
    let before = std::time::Instant::now();
    let task = c
        .suno
        .generate(&GenerateRequest::custom("[Verse]\nla la", "pop", "Song"))
        .await
        .unwrap();
    let render = c
        .creatomate
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
        .await
        .unwrap();
    let after = std::time::Instant::now();
    let (budget_suno, budget_creatomate) = (
        http.retry_budget(Service::Suno).unwrap().available(),
        http.retry_budget(Service::Creatomate).unwrap().available(),
    );
    // More "not found" answers in a row than the breakers tolerate failures.
    let mut reads = 0;
    for _ in 0..6 {
        let err = c.suno.task_status(&task).await.unwrap_err();
        assert_not_found(&err, Endpoint::SunoStatus);
        let err = c.creatomate.render_status(&render.id).await.unwrap_err();
        assert_not_found(&err, Endpoint::CreatomateStatus);
        reads += 1;
    }
    assert!(before.elapsed() < INVISIBLE, "{label}: too slow to test");
    for service in [Service::Suno, Service::Creatomate] {
        assert_eq!(
            http.circuit_state(service),
            Some(CircuitState::Closed),
            "{label}: {service}"
        );
    }
    assert!(c.recorder.notices.lock().unwrap().is_empty(), "{label}");
    assert!(c.recorder.breakers.lock().unwrap().is_empty(), "{label}");
    assert!(c.recorder.refusals.lock().unwrap().is_empty(), "{label}");
    assert!(
        http.retry_budget(Service::Suno).unwrap().available() >= budget_suno
            && http.retry_budget(Service::Creatomate).unwrap().available() >= budget_creatomate,
        "{label}: no retry token spent"
    );
    let ledger = running.ledger();
    assert_eq!(ledger.count(RouteId::SunoRecordInfo), reads, "{label}");
    assert_eq!(
        ledger.count(RouteId::CreatomateRenderStatus),
        reads,
        "{label}"
    );
    // Once visible, the same reads answer the job.
    tokio::time::sleep(INVISIBLE.saturating_sub(after.elapsed()) + Duration::from_millis(50)).await;
    let record = c.suno.task_status(&task).await.unwrap();
    assert_eq!(record.task_id, task, "{label}");
    let status = c.creatomate.render_status(&render.id).await.unwrap();
    assert_eq!(status.id, render.id, "{label}");
    assert_eq!(
        (ledger.suno_tasks, ledger.creatomate_renders),
        (1, 1),
        "{label}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_not_found_read_returns_at_once_on_the_shipped_schedule() {
    // With the shipped policies (retries 1 s → 2 s), a "not found" ends the read at once:
    // no backoff slept, one request each.
    let state = sim_with("", |c| {
        c.time_scale = 1.0;
        c.suno_task_visible_after_s = 60.0;
        c.creatomate_render_visible_after_s = 60.0;
    });
    let config = touchy(defaults());
    let c = clients(&in_memory_for(&state, &config), &config);
    let task = c
        .suno
        .generate(&GenerateRequest::custom("[Verse]\nla la", "pop", "Song"))
        .await
        .unwrap();
    let render = c
        .creatomate
        .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
        .await
        .unwrap();
    let started = Instant::now();
    assert_not_found(
        &c.suno.task_status(&task).await.unwrap_err(),
        Endpoint::SunoStatus,
    );
    assert_not_found(
        &c.creatomate.render_status(&render.id).await.unwrap_err(),
        Endpoint::CreatomateStatus,
    );
    assert_eq!(started.elapsed(), Duration::ZERO);
    let ledger = state.ledger();
    assert_eq!(ledger.count(RouteId::SunoRecordInfo), 1);
    assert_eq!(ledger.count(RouteId::CreatomateRenderStatus), 1);
    // After the window, the task reads as itself.
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(c.suno.task_status(&task).await.unwrap().task_id, task);
}
