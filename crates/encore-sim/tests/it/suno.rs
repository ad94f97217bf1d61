//! Suno: envelope, validation, credits, rate limit, task lifecycle on virtual time,
//! timestamped lyrics aligned to the submitted lyrics.

use std::time::Duration;

use axum::Router;
use encore_sim::suno::types::{Envelope, RecordInfo, TimestampedLyrics};
use encore_sim::{Scenario, SimConfig, SunoOutcome, SunoScenario};
use serde_json::{Value, json};

use crate::support::{KEY, Reply, call, sim};

const LYRICS: &str = "[Verse]\nWaggin' tails down Maple Street\nEvery pup has a friend to meet\n\n[Chorus]\nBark bark at the Happy Paws\nWe love you just because";

fn generate_body() -> Value {
    json!({
        "customMode": true,
        "instrumental": false,
        "model": "V4_5",
        "callBackUrl": "https://example.test/suno-callback",
        "prompt": LYRICS,
        "style": "indie pop, upbeat",
        "title": "Happy Paws"
    })
}

/// A second of virtual time at `time_scale = 1.0` is a real second; with paused time the
/// sleeps below finish instantly.
fn config() -> SimConfig {
    SimConfig::default()
}

async fn create(router: &Router) -> String {
    let r = call(
        router,
        "POST",
        "/api/v1/generate",
        Some(KEY),
        Some(generate_body()),
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["code"], 200, "{v}");
    assert_eq!(v["msg"], "success");
    v["data"]["taskId"].as_str().unwrap().to_owned()
}

async fn info(router: &Router, task: &str) -> RecordInfo {
    let r = call(
        router,
        "GET",
        &format!("/api/v1/generate/record-info?taskId={task}"),
        Some(KEY),
        None,
    )
    .await;
    let env: Envelope<RecordInfo> = serde_json::from_value(r.json()).unwrap();
    assert_eq!(env.code, 200);
    env.data.unwrap()
}

#[tokio::test(start_paused = true)]
async fn task_lifecycle_on_virtual_time() {
    let (state, router) = sim(config());
    let task = create(&router).await;
    let i = info(&router, &task).await;
    assert_eq!(i.status, "PENDING");
    assert!(i.response.is_none());
    let param: Value = serde_json::from_str(&i.param).expect("param is a JSON string");
    assert_eq!(param["title"], "Happy Paws");

    // Poll every virtual second and note when each thing first appears.
    let mut seen = vec![(i.status, 0)];
    let mut first_at = std::collections::BTreeMap::new();
    let start = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = start.elapsed().as_secs();
        let i = info(&router, &task).await;
        if seen.last().map(|(s, _)| s) != Some(&i.status) {
            seen.push((i.status.clone(), now));
        }
        let tracks = i
            .response
            .as_ref()
            .map(|r| r.suno_data.clone())
            .unwrap_or_default();
        for (n, t) in tracks.iter().enumerate() {
            if !t.stream_audio_url.is_empty() {
                first_at.entry(format!("stream{n}")).or_insert(now);
            }
            if t.audio_url.is_empty() {
                assert!(t.duration.is_none());
            } else {
                first_at.entry(format!("audio{n}")).or_insert(now);
                assert!(
                    t.duration.is_some(),
                    "a downloadable track has its duration"
                );
            }
        }
        if i.status == "FIRST_SUCCESS" && !first_at.contains_key("audio0") {
            assert!(
                tracks.iter().all(|t| t.audio_url.is_empty()),
                "FIRST_SUCCESS streams before any file exists"
            );
        }
        if i.status == "SUCCESS" {
            let tracks = i.response.unwrap().suno_data;
            assert_eq!(tracks.len(), 2);
            for t in &tracks {
                assert!(
                    t.audio_url
                        .ends_with(&format!("/__sim/files/audio/{}.mp3", t.id))
                );
                assert!(!t.stream_audio_url.is_empty() && !t.image_url.is_empty());
                assert_eq!(t.prompt, LYRICS);
                assert_eq!(t.title, "Happy Paws");
                assert_eq!(t.tags, "indie pop, upbeat");
                assert_eq!(t.model_name, "chirp-v4-5");
                assert!(t.duration.unwrap() > 100.0);
                assert!(t.create_time.is_some());
            }
            assert_ne!(tracks[0].id, tracks[1].id);
            break;
        }
        assert!(now < 200, "no SUCCESS after {now} s: {seen:?}");
    }
    let statuses: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS"]
    );
    let at = |k: &str| first_at[k];
    let status_at = |k: &str| seen.iter().find(|(s, _)| s == k).unwrap().1;
    // documented: stream URL in ~30–40 s, downloadable file in ~2–3 min
    assert!((15..=31).contains(&status_at("TEXT_SUCCESS")), "{seen:?}");
    assert!((30..=41).contains(&at("stream0")), "{first_at:?}");
    assert_eq!(at("stream0"), status_at("FIRST_SUCCESS"));
    assert!(at("stream1") >= at("stream0") && at("stream1") <= at("stream0") + 6);
    assert!((120..=136).contains(&at("audio0")), "{first_at:?}");
    assert!(at("audio1") >= at("audio0") + 29, "{first_at:?}");
    assert_eq!(at("audio1"), status_at("SUCCESS"));
    assert!((150..=181).contains(&status_at("SUCCESS")), "{seen:?}");
    let ledger = state.ledger();
    assert_eq!(ledger.suno_tasks, 1);
    let job = ledger.job(&task).unwrap();
    assert_eq!(job.final_status, "SUCCESS");
    let ready = job.ready_after_virtual_s.unwrap();
    assert!(
        ready <= status_at("SUCCESS") as f64 && (status_at("SUCCESS") as f64) < ready + 1.0 + 1e-9,
        "ready after {ready} s, seen at {seen:?}"
    );
    let ready_virtual = job.ready_virtual_s.unwrap() - job.created_virtual_s.unwrap();
    assert!((ready_virtual - ready).abs() < 1e-6, "{job:?}");
    let ready_ms = job.ready_at_ms.unwrap() - job.at_ms;
    assert!(ready_ms.abs_diff((ready * 1000.0) as u64) <= 1, "{job:?}");
}

#[tokio::test(start_paused = true)]
async fn time_scale_shrinks_the_timeline() {
    let (state, router) = sim(SimConfig {
        time_scale: 0.01,
        ..config()
    });
    let task = create(&router).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(info(&router, &task).await.status, "SUCCESS");
    assert!(state.elapsed() < Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn timestamped_lyrics_follow_the_submitted_lyrics() {
    let (_state, router) = sim(config());
    let task = create(&router).await;
    let i = info(&router, &task).await;
    assert!(i.response.is_none());
    // not ready yet
    tokio::time::sleep(Duration::from_secs(200)).await;
    let tracks = info(&router, &task).await.response.unwrap().suno_data;
    let r = call(
        &router,
        "POST",
        "/api/v1/generate/get-timestamped-lyrics",
        Some(KEY),
        Some(json!({ "taskId": task, "audioId": tracks[1].id })),
    )
    .await;
    let env: Envelope<TimestampedLyrics> = serde_json::from_value(r.json()).unwrap();
    let data = env.data.unwrap();
    let words = &data.aligned_words;
    assert_eq!(words[0].word, "[Verse]\nWaggin'");
    assert!(words.iter().any(|w| w.word.starts_with("[Chorus]\nBark")));
    let plain: Vec<String> = words
        .iter()
        .map(|w| {
            w.word
                .rsplit('\n')
                .find(|s| !s.is_empty())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let expected: Vec<&str> = LYRICS
        .lines()
        .filter(|l| !l.starts_with('['))
        .flat_map(str::split_whitespace)
        .collect();
    assert_eq!(plain, expected);
    let duration = tracks[1].duration.unwrap();
    for pair in words.windows(2) {
        assert!(pair[0].start_s < pair[0].end_s && pair[0].end_s <= pair[1].start_s);
    }
    assert!(words.last().unwrap().end_s <= duration);
    assert!(!data.waveform_data.is_empty());
    assert!(!data.is_streamed);
}

#[tokio::test(start_paused = true)]
async fn timestamped_lyrics_errors() {
    let (_state, router) = sim(config());
    let task = create(&router).await;
    let path = "/api/v1/generate/get-timestamped-lyrics";
    let r = call(
        &router,
        "POST",
        path,
        Some(KEY),
        Some(json!({ "taskId": task })),
    )
    .await;
    assert_eq!(r.json()["code"], 400);
    let tracks = {
        tokio::time::sleep(Duration::from_secs(31)).await;
        info(&router, &task).await.response.unwrap().suno_data
    };
    let r = call(
        &router,
        "POST",
        path,
        Some(KEY),
        Some(json!({ "taskId": task, "audioId": tracks[0].id })),
    )
    .await;
    assert_eq!(r.json()["code"], 400, "audio not ready at TEXT_SUCCESS");
    let r = call(
        &router,
        "POST",
        path,
        Some(KEY),
        Some(json!({ "taskId": "nope", "audioId": "x" })),
    )
    .await;
    assert_eq!(r.json()["code"], 400);
}

async fn gen_with(router: &Router, patch: Value) -> Reply {
    let mut body = generate_body();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    call(router, "POST", "/api/v1/generate", Some(KEY), Some(body)).await
}

#[tokio::test]
async fn validation_matrix_in_the_envelope() {
    let (state, router) = sim(config());
    let cases = [
        (json!({ "customMode": null }), 400),
        (json!({ "instrumental": null }), 400),
        (json!({ "model": null }), 400),
        (json!({ "model": "V3_5" }), 400),
        (json!({ "callBackUrl": null }), 400),
        (json!({ "style": null }), 400),
        (json!({ "title": null }), 400),
        (json!({ "prompt": null }), 400),
        (json!({ "model": "V4", "title": "t".repeat(81) }), 413),
        (json!({ "model": "V4_5ALL", "title": "t".repeat(81) }), 413),
        (json!({ "model": "V4", "style": "s".repeat(201) }), 413),
        (json!({ "model": "V4", "prompt": "p".repeat(3001) }), 413),
        (json!({ "model": "V5", "prompt": "p".repeat(5001) }), 413),
        (
            json!({ "customMode": false, "prompt": "p".repeat(501) }),
            413,
        ),
    ];
    for (patch, code) in cases {
        let r = gen_with(&router, patch.clone()).await;
        assert_eq!(r.status, 200, "documented: HTTP 200 + body code ({patch})");
        let v = r.json();
        assert_eq!(v["code"], code, "{patch}: {v}");
        assert!(v["data"].is_null());
    }
    let r = gen_with(&router, json!({ "callBackUrl": null })).await;
    assert_eq!(r.json()["msg"], "Please enter callBackUrl.");
    // still fine: instrumental custom mode without lyrics, simple mode with a prompt only
    let r = gen_with(
        &router,
        json!({ "instrumental": true, "prompt": null, "model": "V5_5" }),
    )
    .await;
    assert_eq!(r.json()["code"], 200);
    let r = gen_with(&router, json!({ "customMode": false, "style": null, "title": null, "prompt": "a happy song about dogs" })).await;
    assert_eq!(r.json()["code"], 200);
    assert_eq!(state.ledger().suno_tasks, 2, "rejected calls bill nothing");
}

#[tokio::test]
async fn errors_mirror_into_http_status_with_the_switch() {
    let (_state, router) = sim(SimConfig {
        suno_errors_as_http_status: true,
        ..config()
    });
    let r = gen_with(&router, json!({ "model": "V3_5" })).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], 400);
    let r = call(&router, "GET", "/api/v1/generate/credit", None, None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn auth_and_credits() {
    let (state, router) = sim(SimConfig {
        suno_credits: 30,
        api_keys: Some(vec![KEY.into()]),
        ..config()
    });
    let r = call(&router, "GET", "/api/v1/generate/credit", None, None).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["code"].as_u64()),
        (200, Some(401))
    );
    let r = call(
        &router,
        "GET",
        "/api/v1/generate/credit",
        Some("other"),
        None,
    )
    .await;
    assert_eq!(r.json()["code"], 401);
    let r = call(&router, "GET", "/api/v1/generate/credit", Some(KEY), None).await;
    assert_eq!(
        r.json(),
        json!({ "code": 200, "msg": "success", "data": 30 })
    );
    create(&router).await;
    create(&router).await;
    let r = gen_with(&router, json!({})).await;
    assert_eq!(r.json()["code"], 429, "429 = insufficient credits");
    let r = call(&router, "GET", "/api/v1/generate/credit", Some(KEY), None).await;
    assert_eq!(r.json()["data"], 6);
    assert_eq!(state.suno_credits(KEY), 6);
    assert_eq!(state.ledger().suno_tasks, 2);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_is_20_per_10_seconds_per_key() {
    let (state, router) = sim(config());
    for _ in 0..20 {
        create(&router).await;
    }
    let r = gen_with(&router, json!({})).await;
    assert_eq!(r.json()["code"], 430);
    let r = call(
        &router,
        "POST",
        "/api/v1/generate",
        Some("another-key"),
        Some(generate_body()),
    )
    .await;
    assert_eq!(r.json()["code"], 200, "windows are per key");
    tokio::time::sleep(Duration::from_secs(10)).await;
    create(&router).await;
    assert_eq!(state.ledger().suno_tasks, 22);

    let (_state, router) = sim(SimConfig {
        suno_rate_limit_code: 405,
        ..config()
    });
    for _ in 0..20 {
        create(&router).await;
    }
    assert_eq!(gen_with(&router, json!({})).await.json()["code"], 405);

    let (_state, router) = sim(SimConfig {
        rate_limits: false,
        ..config()
    });
    for _ in 0..25 {
        create(&router).await;
    }
}

#[tokio::test(start_paused = true)]
async fn scenario_outcomes_end_tasks() {
    let scenario = Scenario {
        suno: SunoScenario {
            outcomes: vec![
                SunoOutcome::GenerateAudioFailed,
                SunoOutcome::SensitiveWordError,
                SunoOutcome::CallbackException,
                SunoOutcome::SkipStages,
                SunoOutcome::CreateTaskFailed,
            ],
            ..SunoScenario::default()
        },
        ..Scenario::default()
    };
    let (_state, router) = sim(SimConfig {
        scenario,
        ..config()
    });
    let mut tasks = Vec::new();
    for _ in 0..6 {
        tasks.push(create(&router).await);
    }
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(
        info(&router, &tasks[3]).await.status,
        "PENDING",
        "skip_stages"
    );
    tokio::time::sleep(Duration::from_secs(150)).await;
    let failed = info(&router, &tasks[0]).await;
    assert_eq!(failed.status, "GENERATE_AUDIO_FAILED");
    assert!(failed.error_code.is_some() && failed.error_message.is_some());
    assert_eq!(
        info(&router, &tasks[1]).await.status,
        "SENSITIVE_WORD_ERROR"
    );
    let cb = info(&router, &tasks[2]).await;
    assert_eq!(cb.status, "CALLBACK_EXCEPTION");
    assert!(
        cb.response
            .unwrap()
            .suno_data
            .iter()
            .all(|t| !t.audio_url.is_empty())
    );
    assert_eq!(info(&router, &tasks[3]).await.status, "SUCCESS");
    assert_eq!(info(&router, &tasks[4]).await.status, "CREATE_TASK_FAILED");
    assert_eq!(info(&router, &tasks[5]).await.status, "SUCCESS");
}

#[tokio::test]
async fn unknown_paths_and_tasks() {
    let (_state, router) = sim(config());
    let r = call(
        &router,
        "GET",
        "/api/v1/generate/record-info?taskId=nope",
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(r.json()["code"], 400);
    let r = call(
        &router,
        "GET",
        "/api/v1/generate/record-info",
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(r.json()["code"], 400);
    let r = call(&router, "GET", "/api/v1/nothing", Some(KEY), None).await;
    assert_eq!(r.json()["code"], 404);
}

#[tokio::test(start_paused = true)]
async fn simple_mode_writes_lyrics_and_files_are_served() {
    let (_state, router) = sim(SimConfig {
        time_scale: 0.01,
        ..config()
    });
    let r = call(
        &router,
        "POST",
        "/api/v1/generate",
        Some(KEY),
        Some(json!({ "customMode": false, "instrumental": false, "model": "V4", "callBackUrl": "https://x.test/cb", "prompt": "A song for Happy Paws dog grooming" })),
    )
    .await;
    let task = r.json()["data"]["taskId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tracks = info(&router, &task).await.response.unwrap().suno_data;
    assert!(tracks[0].prompt.contains("[Verse]"));
    let path = tracks[0].audio_url.split_once("/__sim").unwrap().1;
    let r = call(&router, "GET", &format!("/__sim{path}"), None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "audio/mpeg");
    assert_eq!(&r.bytes()[..2], &[0xFF, 0xFB]);
}

fn with_scenario(toml: &str) -> SimConfig {
    SimConfig {
        scenario: Scenario::from_toml(toml).unwrap(),
        ..config()
    }
}

async fn raw_info(router: &Router, task: &str) -> Value {
    call(
        router,
        "GET",
        &format!("/api/v1/generate/record-info?taskId={task}"),
        Some(KEY),
        None,
    )
    .await
    .json()
}

/// Polls every virtual second until `done`, returning the statuses seen with the tracks'
/// audio state.
async fn watch(router: &Router, task: &str, secs: u64) -> Vec<(String, bool, bool)> {
    let mut seen = Vec::new();
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let i = info(router, task).await;
        let tracks = i.response.map(|r| r.suno_data).unwrap_or_default();
        let streaming = tracks.iter().any(|t| !t.stream_audio_url.is_empty());
        let audio = !tracks.is_empty() && tracks.iter().all(|t| !t.audio_url.is_empty());
        let entry = (i.status, streaming, audio);
        if seen.last() != Some(&entry) {
            seen.push(entry);
        }
    }
    seen
}

fn st(status: &str, streaming: bool, audio: bool) -> (String, bool, bool) {
    (status.to_owned(), streaming, audio)
}

#[tokio::test(start_paused = true)]
async fn callback_exception_before_audio_then_the_audio_arrives() {
    let toml = "[suno]\noutcomes = [\"callback_exception_before_audio\"]";
    let (state, router) = sim(with_scenario(toml));
    let task = create(&router).await;
    let seen = watch(&router, &task, 200).await;
    // reported before any file exists; the status stays while the tracks fill in
    assert_eq!(
        seen,
        [
            st("PENDING", false, false),
            st("TEXT_SUCCESS", false, false),
            st("CALLBACK_EXCEPTION", true, false),
            st("CALLBACK_EXCEPTION", true, true),
        ]
    );
    let i = raw_info(&router, &task).await;
    assert!(i["data"]["errorMessage"].is_string());
    assert!(i["data"]["errorCode"].is_null());
    let job = state.ledger().jobs[0].clone();
    assert_eq!(job.final_status, "CALLBACK_EXCEPTION");
    assert!(
        job.ready_after_virtual_s.is_some(),
        "the audio does become available"
    );

    // the alternative: the status moves on once the last file is ready
    let (state, router) = sim(SimConfig {
        suno_callback_exception_recovers: true,
        ..with_scenario(toml)
    });
    let task = create(&router).await;
    let seen = watch(&router, &task, 200).await;
    assert_eq!(
        seen,
        [
            st("PENDING", false, false),
            st("TEXT_SUCCESS", false, false),
            st("CALLBACK_EXCEPTION", true, false),
            st("SUCCESS", true, true),
        ]
    );
    assert_eq!(state.ledger().jobs[0].final_status, "SUCCESS");
}

#[tokio::test(start_paused = true)]
async fn old_failed_status_with_an_error_message() {
    let (state, router) = sim(with_scenario("[suno]\noutcomes = [\"failed\"]"));
    let task = create(&router).await;
    let seen = watch(&router, &task, 60).await;
    let statuses: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(statuses, ["PENDING", "TEXT_SUCCESS", "FAILED"]);
    let i = raw_info(&router, &task).await;
    assert_eq!(i["data"]["status"], "FAILED");
    assert_eq!(i["data"]["errorMessage"], "Music generation failed");
    assert!(i["data"]["errorCode"].is_null());
    assert!(i["data"]["response"].is_null());
    let job = state.ledger().jobs[0].clone();
    assert_eq!(
        (job.final_status.as_str(), job.ready_after_virtual_s),
        ("FAILED", None)
    );
}

#[tokio::test(start_paused = true)]
async fn loose_timestamped_lyrics() {
    let toml = "[suno]\ntimestamped_lyrics = [\"null_timings\", \"missing_timings\", \"no_waveform\", \"loose\"]";
    let (_state, router) = sim(with_scenario(toml));
    let task = create(&router).await;
    tokio::time::sleep(Duration::from_secs(200)).await;
    let audio = info(&router, &task).await.response.unwrap().suno_data[0]
        .id
        .clone();
    let mut answers = Vec::new();
    for _ in 0..5 {
        let r = call(
            &router,
            "POST",
            "/api/v1/generate/get-timestamped-lyrics",
            Some(KEY),
            Some(json!({ "taskId": task, "audioId": audio })),
        )
        .await;
        answers.push(r.json()["data"].clone());
    }
    let words = |d: &Value| d["alignedWords"].as_array().unwrap().clone();
    let nulls = |d: &Value| {
        words(d)
            .iter()
            .filter(|w| w.get("startS") == Some(&Value::Null) && w["endS"].is_null())
            .count()
    };
    let missing = |d: &Value| {
        words(d)
            .iter()
            .filter(|w| w.get("startS").is_none() && w.get("endS").is_none())
            .count()
    };
    let n = words(&answers[0]).len();
    assert!(n > 8);
    // null_timings: every 4th word null and unaligned, the rest numeric
    assert_eq!(nulls(&answers[0]), n / 4);
    assert_eq!(missing(&answers[0]), 0);
    assert!(words(&answers[0])[3]["startS"].is_null());
    assert_eq!(words(&answers[0])[3]["success"], false);
    assert!(words(&answers[0])[0]["startS"].is_f64());
    // missing_timings: the keys are absent
    assert_eq!(missing(&answers[1]), n / 4);
    assert_eq!(nulls(&answers[1]), 0);
    // no_waveform: the keys are absent, the words are whole
    assert!(answers[2].get("waveformData").is_none() && answers[2].get("isStreamed").is_none());
    assert_eq!(nulls(&answers[2]) + missing(&answers[2]), 0);
    // loose: everything at once
    assert!(nulls(&answers[3]) > 0 && missing(&answers[3]) > 0);
    assert!(answers[3].get("waveformData").is_none());
    // then normal again, and every answer still parses leniently as the text
    assert!(answers[4]["waveformData"].is_array());
    assert_eq!(nulls(&answers[4]) + missing(&answers[4]), 0);
    for a in &answers {
        let all = words(a);
        let texts: Vec<&str> = all.iter().map(|w| w["word"].as_str().unwrap()).collect();
        assert_eq!(texts.len(), n);
        assert_eq!(texts[0], "[Verse]\nWaggin'");
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_task_can_be_invisible_for_a_while() {
    let (_state, router) = sim(SimConfig {
        suno_task_visible_after_s: 5.0,
        ..config()
    });
    let task = create(&router).await;
    let r = raw_info(&router, &task).await;
    assert_eq!(
        (r["code"].as_u64(), r["data"].is_null()),
        (Some(400), true),
        "{r}"
    );
    let unknown = raw_info(&router, "no-such-task").await;
    assert_eq!(r, unknown, "indistinguishable from an unknown task");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(raw_info(&router, &task).await["code"], 400);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(info(&router, &task).await.status, "PENDING");

    // the 404 form, as HTTP status too with the mirroring switch
    let (_state, router) = sim(SimConfig {
        suno_task_visible_after_s: 5.0,
        suno_unknown_task_code: 404,
        suno_errors_as_http_status: true,
        ..config()
    });
    let task = create(&router).await;
    let r = call(
        &router,
        "GET",
        &format!("/api/v1/generate/record-info?taskId={task}"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], 404);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(info(&router, &task).await.status, "PENDING");
}

#[tokio::test]
async fn no_credits_no_task_nothing_billed() {
    let (state, router) = sim(SimConfig {
        suno_credits: 0,
        ..config()
    });
    let r = call(&router, "GET", "/api/v1/generate/credit", Some(KEY), None).await;
    assert_eq!(
        r.json(),
        json!({ "code": 200, "msg": "success", "data": 0 })
    );
    let r = gen_with(&router, json!({})).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["code"], 429, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("insufficient"));
    assert!(v["data"].is_null());
    let ledger = state.ledger();
    assert_eq!(ledger.suno_tasks, 0);
    assert!(ledger.jobs.is_empty());
    assert_eq!(state.suno_credits(KEY), 0);
    let generate = ledger
        .requests_for(encore_sim::RouteId::SunoGenerate)
        .next()
        .unwrap();
    assert_eq!(
        (generate.body_code, generate.rate_limited),
        (Some(429), false)
    );
}

#[tokio::test(start_paused = true)]
async fn media_files_exist_only_when_their_urls_do() {
    let (_state, router) = sim(config());
    let task = create(&router).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let id = info(&router, &task).await.response.unwrap().suno_data[0]
        .id
        .clone();
    let get = |kind: &str| {
        let router = router.clone();
        let path = format!("/__sim/files/{kind}/{id}.mp3");
        async move { call(&router, "GET", &path, None, None).await.status }
    };
    assert_eq!(get("stream").await, 404);
    assert_eq!(get("audio").await, 404);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(get("stream").await, 200, "streams at 30–40 s");
    assert_eq!(get("audio").await, 404, "no file before 2 min");
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(get("audio").await, 200);
}
