//! Pipeline makespan: `encore demo --scenario flaky` against its ideal.
//!
//! The demo is replayed in-process (so the simulator's ledger and the pipeline's retry notices
//! can be read): the simulator with the demo's defaults (scenario `flaky`, seed 42, time scale
//! 0.01), encore's default client config pointed at it, the demo's poll timings (the real ones
//! scaled by 0.01, at least 50 ms / 250 ms), one pipeline.
//!
//! The ideal — the simulator's processing time plus the waits the server demanded — is not
//! exposed by the simulator (its job timelines are private), so it is measured: the same
//! scenario and seed run by an *oracle* client that honours every server-demanded wait but
//! retries everything else after 1 ms and polls every 10 ms. The oracle's makespan contains the
//! simulator's processing, the demanded waits, the requests themselves and ≤ 10 ms of polling
//! slack per job, so it is an upper bound of the ideal, and `makespan / oracle` a lower bound
//! of `makespan / ideal`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use encore_clients::{ApiKey, Config, Endpoint, Http, RetryNotice, Service};
use encore_pipeline::{BusinessInput, Event, Keys, Language, Pipeline, PipelineConfig};
use encore_resilience::PollPolicy;
use encore_sim::{DEMO_TEMPLATE_ID, Scenario, SimConfig, SimState};

use crate::report::Pipeline as PipelineRow;

/// One replay of the demo.
#[derive(Debug)]
struct Run {
    makespan: Duration,
    succeeded: bool,
    error: Option<String>,
    demanded: Duration,
    backoff: Duration,
    retries: usize,
    requests: usize,
    calls: usize,
}

async fn replay(oracle: bool) -> anyhow::Result<Run> {
    const TIME_SCALE: f64 = 0.01;
    let sim_config = SimConfig {
        seed: 42,
        time_scale: TIME_SCALE,
        scenario: Scenario::named("flaky").context("the flaky scenario ships")?,
        // The oracle polls every 10 ms; the simulator's own rate limits would answer that with
        // 429s that the real run never sees.
        rate_limits: !oracle,
        ..SimConfig::default()
    };
    let sim = encore_sim::serve(SimState::new(sim_config), ([127, 0, 0, 1], 0).into()).await?;

    let mut config = Config::default().with_base(&sim.base_url());
    let mut settings = PipelineConfig {
        template_id: DEMO_TEMPLATE_ID.to_owned(),
        ..PipelineConfig::default()
    };
    if oracle {
        for endpoint in Endpoint::ALL {
            config.endpoints.get_mut(endpoint).base_delay = Duration::from_millis(1);
        }
        for service in [Service::OpenAi, Service::Suno, Service::Creatomate] {
            let policy = match service {
                Service::OpenAi => &mut config.services.openai,
                Service::Suno => &mut config.services.suno,
                Service::Creatomate => &mut config.services.creatomate,
            };
            policy.rate_limit.enabled = false;
        }
        let fast = PollPolicy {
            interval: Duration::from_millis(10),
            max_interval: Duration::from_millis(10),
            multiplier: 1.0,
            deadline: Duration::from_secs(120),
        };
        settings.song_poll = fast.clone();
        settings.video_poll = fast;
    } else {
        // The demo's timings: the real ones scaled, with floors (as `encore demo` polls).
        settings.song_poll = settings.song_poll.for_time_scale(TIME_SCALE);
        settings.video_poll = settings.video_poll.for_time_scale(TIME_SCALE);
    }
    config.validate()?;

    let http = Http::for_config(&config)?;
    let keys = Keys {
        openai: ApiKey::new("sk-encore-demo")?,
        suno: ApiKey::new("suno-encore-demo")?,
        creatomate: ApiKey::new("creatomate-encore-demo")?,
    };
    let notices: Arc<Mutex<Vec<RetryNotice>>> = Arc::default();
    let sink = Arc::clone(&notices);
    let pipeline = Pipeline::new(&http, &config, keys, settings).on_event(move |event| {
        if let Event::Retrying { notice, .. } = event {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(notice.clone());
        }
    });
    let mut input = BusinessInput::new(
        "하늘 베이커리",
        "서울 망원동의 동네 빵집. 매일 아침 갓 구운 소금빵과 우유식빵",
    );
    input.region = Some("서울 마포구".to_owned());
    input.mood = Some("따뜻한 어쿠스틱 팝".to_owned());
    input.language = Language::Ko;

    let start = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(60), pipeline.run(&input))
        .await
        .context("the demo pipeline did not finish in 60 s")?;
    let makespan = start.elapsed();
    let ledger = sim.ledger();
    sim.shutdown().await;

    let notices = notices.lock().unwrap_or_else(PoisonError::into_inner);
    let sum = |server: bool| {
        notices
            .iter()
            .filter(|n| n.server_requested == server)
            .map(|n| n.delay)
            .sum::<Duration>()
    };
    Ok(Run {
        makespan,
        succeeded: report.succeeded(),
        error: report.error.as_ref().map(ToString::to_string),
        demanded: sum(true),
        backoff: sum(false),
        retries: notices.len(),
        requests: ledger.requests.len(),
        calls: report.calls.len(),
    })
}

/// Replays the demo, then the oracle.
pub async fn pipeline(progress: impl Fn(String)) -> anyhow::Result<PipelineRow> {
    progress("pipeline: encore demo --scenario flaky (in-process replay)".to_owned());
    let real = replay(false).await?;
    ensure!(
        real.succeeded,
        "the demo pipeline failed: {}",
        real.error.as_deref().unwrap_or("no video")
    );
    progress("pipeline: the same scenario with an oracle client".to_owned());
    let oracle = replay(true).await?;
    ensure!(
        oracle.succeeded,
        "the oracle pipeline failed: {}",
        oracle.error.as_deref().unwrap_or("no video")
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(PipelineRow {
        measured: true,
        note: format!(
            "{} logical calls, {} requests, {} retries; waits the server demanded: {:.0} ms (the oracle: {:.0} ms); \
             waits the client chose (the shipped backoff policy: 1 s or 2 s first waits on 5xx, garbled answers and rate-limit body codes): {:.0} ms, \
             part of them overlapping the jobs' processing. Ideal = an oracle client on the same scenario and seed that honours demanded waits, \
             retries everything else after 1 ms and polls every 10 ms (an upper bound of the ideal)",
            real.calls,
            real.requests,
            real.retries,
            ms(real.demanded),
            ms(oracle.demanded),
            ms(real.backoff),
        ),
        makespan_ms: Some(ms(real.makespan)),
        ideal_ms: Some(ms(oracle.makespan)),
        ratio: Some(real.makespan.as_secs_f64() / oracle.makespan.as_secs_f64()),
        backoff_ms: Some(ms(real.backoff)),
        demanded_ms: Some(ms(real.demanded)),
    })
}
