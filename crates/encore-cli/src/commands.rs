//! The subcommands.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use encore_clients::{ApiKey, Config, Endpoint, Http};
use encore_pipeline::{BusinessInput, Keys, Language, Lyrics, Pipeline, Report, VideoInput};
use encore_resilience::{PollPolicy, fmt_duration};
use encore_sim::{Scenario, SimConfig, SimState};
use serde_json::json;

use crate::args::{
    BusinessArgs, Command, ConfigAction, ConfigArgs, DemoArgs, LyricsArgs, RunArgs, SimArgs,
    SongArgs, TargetArgs, VideoArgs,
};
use crate::output::{RunJson, print_json, report_code};
use crate::progress::{Progress, calls_table};
use crate::settings::{self, Settings};
use crate::{Cli, exit, print_error};

/// The environment variables that hold the API keys and the template.
pub const OPENAI_KEY_VAR: &str = "OPENAI_API_KEY";
/// Suno's key.
pub const SUNO_KEY_VAR: &str = "SUNO_API_KEY";
/// Creatomate's key.
pub const CREATOMATE_KEY_VAR: &str = "CREATOMATE_API_KEY";
/// The Creatomate template to render.
pub const TEMPLATE_VAR: &str = "CREATOMATE_TEMPLATE_ID";

pub async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        // The pipeline futures are large (tens of KiB); keep them on the heap.
        Command::Demo(a) => Box::pin(demo(a)).await,
        Command::Run(a) => Box::pin(run(a)).await,
        Command::Sim(a) => sim(a).await,
        Command::Config { action } => config(action),
        Command::Lyrics(a) => Box::pin(lyrics(a)).await,
        Command::Song(a) => Box::pin(song(a)).await,
        Command::Video(a) => Box::pin(video(a)).await,
    }
}

fn load_settings(args: &ConfigArgs) -> Result<Settings, u8> {
    settings::load(args.config.as_deref()).map_err(|e| {
        print_error(&*e);
        exit::BAD_INPUT
    })
}

fn bad_input(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    exit::BAD_INPUT
}

fn business(args: &BusinessArgs) -> Result<BusinessInput, u8> {
    let language: Language = args.lang.parse().map_err(bad_input)?;
    let input = BusinessInput {
        name: args.name.clone(),
        description: args.business.clone(),
        region: args.region.clone(),
        mood: args.mood.clone(),
        language,
    };
    input.validate().map_err(bad_input)?;
    Ok(input)
}

fn shared_http(config: &Config) -> Result<Http, u8> {
    // The handle carries the protections `[services.*]` asks for.
    Http::for_config(config).map_err(|e| {
        print_error(&e);
        exit::PERMANENT
    })
}

/// Points every service of `config` at a simulator serving on `base`.
fn point_at_sim(config: &mut Config, base: &str) {
    let base = base.trim_end_matches('/');
    config.openai.base_url = format!("{base}/v1");
    config.suno.base_url = format!("{base}/api/v1");
    config.creatomate.base_url = format!("{base}/v1");
}

/// Which keys a command needs.
#[derive(Clone, Copy)]
struct Needs {
    openai: bool,
    suno: bool,
    creatomate: bool,
    template: bool,
}

const ALL: Needs = Needs {
    openai: true,
    suno: true,
    creatomate: true,
    template: true,
};

/// Reads the keys (and the template id) a command needs from the environment, naming every
/// missing one before any call is made. Against a simulator (`--sim`) missing ones get
/// placeholders.
fn keys_from_env(needs: Needs, settings: &mut Settings, sim: bool) -> Result<Keys, u8> {
    let mut missing = Vec::new();
    let mut read = |var: &str, needed: bool| -> ApiKey {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => ApiKey::new(v.trim()).expect("non-empty key"),
            _ => {
                if needed && !sim {
                    missing.push(var.to_owned());
                }
                ApiKey::new("encore-unused-key").expect("non-empty key")
            }
        }
    };
    let keys = Keys {
        openai: read(OPENAI_KEY_VAR, needs.openai),
        suno: read(SUNO_KEY_VAR, needs.suno),
        creatomate: read(CREATOMATE_KEY_VAR, needs.creatomate),
    };
    if let Ok(template) = std::env::var(TEMPLATE_VAR) {
        if !template.trim().is_empty() {
            template
                .trim()
                .clone_into(&mut settings.pipeline.template_id);
        }
    }
    if settings.pipeline.template_id.trim().is_empty() {
        if sim {
            encore_sim::DEMO_TEMPLATE_ID.clone_into(&mut settings.pipeline.template_id);
        } else if needs.template {
            missing.push(format!("{TEMPLATE_VAR} (or pipeline.template_id)"));
        }
    }
    if missing.is_empty() {
        Ok(keys)
    } else {
        Err(bad_input(format!(
            "missing {}: set {} in the environment (nothing was sent)",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        )))
    }
}

/// Loads the settings, points them at `--sim` when given, reads the keys `needs` names and
/// builds the shared HTTP client: everything a command needs before its first call.
fn prepare(
    config: &ConfigArgs,
    target: &TargetArgs,
    needs: Needs,
) -> Result<(Settings, Keys, Http), u8> {
    let mut settings = load_settings(config)?;
    if let Some(url) = &target.sim {
        point_at_sim(&mut settings.clients, url);
    }
    let keys = keys_from_env(needs, &mut settings, target.sim.is_some())?;
    let http = shared_http(&settings.clients)?;
    Ok((settings, keys, http))
}

/// Runs `pipeline` (one per run: it collects that run's calls) with a progress display.
async fn run_with_progress(
    pipeline: Pipeline,
    input: &BusinessInput,
    prefix: String,
    show_breaker: bool,
) -> Report {
    let progress = Arc::new(Progress::new(prefix).show_breaker(show_breaker));
    let pipeline = pipeline.on_event(move |e| progress.event(e));
    pipeline.run(input).await
}

fn print_report(report: &Report) {
    if let Some(lyrics) = &report.lyrics {
        println!("title:  {}", lyrics.title);
        println!("style:  {}", lyrics.style);
    }
    if let Some(song) = &report.song {
        println!("audio:  {}", song.audio_url);
    }
    if let Some(video) = &report.video {
        println!("video:  {}", video.url);
    }
    println!();
    print!("{}", calls_table(&report.calls));
    println!("total:  {:.1}s", report.elapsed.as_secs_f64());
    if let Some(err) = &report.error {
        print_error(err);
        if err.class() == encore_pipeline::FailureClass::OutcomeUnknown {
            eprintln!(
                "note: a billed job may have been created; check the service's dashboard before running again"
            );
        }
    }
}

async fn interruptible<T>(work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        out = work => Some(out),
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: jobs already submitted keep running on the services");
            None
        }
    }
}

/// Poll timings for the simulator: its jobs run `time_scale` times as long as the real ones.
fn demo_poll(real: &PollPolicy, time_scale: f64) -> PollPolicy {
    let scaled = real.scaled(time_scale);
    PollPolicy {
        interval: scaled.interval.max(Duration::from_millis(50)),
        max_interval: scaled.max_interval.max(Duration::from_millis(250)),
        multiplier: real.multiplier,
        deadline: scaled.deadline.max(Duration::from_secs(120)),
    }
}

async fn demo(a: DemoArgs) -> u8 {
    let mut settings = match load_settings(&a.config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let Some(scenario) = Scenario::named(&a.scenario) else {
        return bad_input(format!(
            "unknown scenario {:?}: use one of {}",
            a.scenario,
            Scenario::NAMES.join(", ")
        ));
    };
    if !(a.time_scale.is_finite() && a.time_scale > 0.0 && a.time_scale <= 10.0) {
        return bad_input(format!("--time-scale {} must be in (0, 10]", a.time_scale));
    }
    if a.pipelines == 0 || a.pipelines > 200 {
        return bad_input(format!(
            "--pipelines {} must be between 1 and 200",
            a.pipelines
        ));
    }
    let language: Language = match a.lang.parse() {
        Ok(l) => l,
        Err(e) => return bad_input(e),
    };
    let mut input = BusinessInput::new(
        a.name.clone().unwrap_or_else(|| "하늘 베이커리".to_owned()),
        a.business.clone().unwrap_or_else(|| {
            "서울 망원동의 동네 빵집. 매일 아침 갓 구운 소금빵과 우유식빵".to_owned()
        }),
    );
    input.region = Some("서울 마포구".to_owned());
    input.mood = Some("따뜻한 어쿠스틱 팝".to_owned());
    input.language = language;
    if let Err(e) = input.validate() {
        return bad_input(e);
    }

    let sim_config = SimConfig {
        seed: a.seed,
        time_scale: a.time_scale,
        scenario,
        ..SimConfig::default()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = match encore_sim::serve(SimState::new(sim_config), addr).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("error: could not start the simulator on 127.0.0.1: {e}");
            return exit::PERMANENT;
        }
    };
    point_at_sim(&mut settings.clients, &sim.base_url());
    encore_sim::DEMO_TEMPLATE_ID.clone_into(&mut settings.pipeline.template_id);
    settings.pipeline.song_poll = demo_poll(&settings.pipeline.song_poll, a.time_scale);
    settings.pipeline.video_poll = demo_poll(&settings.pipeline.video_poll, a.time_scale);
    let http = match shared_http(&settings.clients) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let keys = Keys {
        openai: ApiKey::new("sk-encore-demo").expect("non-empty"),
        suno: ApiKey::new("suno-encore-demo").expect("non-empty"),
        creatomate: ApiKey::new("creatomate-encore-demo").expect("non-empty"),
    };
    if !a.config.json {
        eprintln!(
            "encore demo: simulator on {} (scenario {}, seed {}, time scale {}), {} pipeline{}",
            sim.base_url(),
            a.scenario,
            a.seed,
            a.time_scale,
            a.pipelines,
            if a.pipelines == 1 { "" } else { "s" }
        );
    }

    let mut runs = tokio::task::JoinSet::new();
    for i in 0..a.pipelines {
        // One pipeline per run, all on the one `Http`: they share its per-service retry budget,
        // circuit breaker and rate limiter, as concurrent jobs in one process should.
        let pipeline = Pipeline::new(
            &http,
            &settings.clients,
            keys.clone(),
            settings.pipeline.clone(),
        );
        let input = input.clone();
        let prefix = if a.pipelines == 1 {
            String::new()
        } else {
            format!("[{:>2}] ", i + 1)
        };
        runs.spawn(async move { (i, run_with_progress(pipeline, &input, prefix, i == 0).await) });
    }
    let Some(mut reports) = interruptible(async {
        let mut reports = Vec::new();
        while let Some(done) = runs.join_next().await {
            match done {
                Ok(r) => reports.push(r),
                Err(e) => eprintln!("error: a pipeline task failed: {e}"),
            }
        }
        reports
    })
    .await
    else {
        return exit::INTERRUPTED;
    };
    reports.sort_by_key(|(i, _)| *i);
    let ledger = sim.state().ledger();
    sim.shutdown().await;

    let logical_calls: usize = reports.iter().map(|(_, r)| r.calls.len()).sum();
    let received: u64 = ledger.requests_per_route.values().sum();
    let amplification = if logical_calls == 0 {
        0.0
    } else {
        received as f64 / logical_calls as f64
    };
    let ledger_json = json!({
        "openai_responses": ledger.openai_responses,
        "suno_tasks": ledger.suno_tasks,
        "creatomate_renders": ledger.creatomate_renders,
        "requests": ledger.requests_per_route,
        "total_requests": received,
    });
    let code = reports
        .iter()
        .map(|(_, r)| report_code(r))
        .max()
        .unwrap_or(exit::SUCCESS);

    if a.config.json {
        if reports.len() == 1 {
            let mut doc = RunJson::new(&reports[0].1);
            doc.ledger = Some(ledger_json);
            let mut value = serde_json::to_value(&doc).expect("serializable");
            value["amplification"] = json!(amplification);
            value["scenario"] = json!(a.scenario);
            value["seed"] = json!(a.seed);
            print_json(&value);
        } else {
            let docs: Vec<RunJson> = reports.iter().map(|(_, r)| RunJson::new(r)).collect();
            let succeeded = reports.iter().filter(|(_, r)| r.succeeded()).count();
            print_json(&json!({
                "status": if succeeded == reports.len() { "succeeded" } else { "failed" },
                "pipelines": docs,
                "succeeded": succeeded,
                "failed": reports.len() - succeeded,
                "exit_code": code,
                "ledger": ledger_json,
                "amplification": amplification,
                "scenario": a.scenario,
                "seed": a.seed,
            }));
        }
    } else {
        if reports.len() == 1 {
            println!();
            print_report(&reports[0].1);
        } else {
            let ok = reports.iter().filter(|(_, r)| r.succeeded()).count();
            println!("\n{ok} of {} pipelines succeeded", reports.len());
            for (i, r) in &reports {
                if let Some(e) = &r.error {
                    println!("[{:>2}] failed: {e}", i + 1);
                }
            }
        }
        println!(
            "simulator ledger: {} OpenAI response{}, {} Suno task{}, {} Creatomate render{}; {received} requests for {logical_calls} logical call{} (amplification {amplification:.2})",
            ledger.openai_responses,
            plural(ledger.openai_responses),
            ledger.suno_tasks,
            plural(ledger.suno_tasks),
            ledger.creatomate_renders,
            plural(ledger.creatomate_renders),
            plural(logical_calls as u64),
        );
    }
    code
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn run(a: RunArgs) -> u8 {
    let input = match business(&a.business) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let (settings, keys, http) = match prepare(&a.config, &a.target, ALL) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let pipeline = Pipeline::new(&http, &settings.clients, keys, settings.pipeline.clone());
    if let Err(e) = pipeline.preflight(&input) {
        print_error(&e);
        return exit::BAD_INPUT;
    }
    let Some(report) =
        interruptible(run_with_progress(pipeline, &input, String::new(), true)).await
    else {
        return exit::INTERRUPTED;
    };
    if a.config.json {
        print_json(&RunJson::new(&report));
    } else {
        println!();
        print_report(&report);
    }
    report_code(&report)
}

async fn sim(a: SimArgs) -> u8 {
    let scenario = if let Some(path) = &a.scenario_file {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return bad_input(format!("cannot read {}: {e}", path.display())),
        };
        match Scenario::from_toml(&text) {
            Ok(s) => s,
            Err(e) => return bad_input(format!("{}: {e}", path.display())),
        }
    } else {
        match Scenario::named(&a.scenario) {
            Some(s) => s,
            None => {
                return bad_input(format!(
                    "unknown scenario {:?}: use one of {}",
                    a.scenario,
                    Scenario::NAMES.join(", ")
                ));
            }
        }
    };
    if !(a.time_scale.is_finite() && a.time_scale > 0.0 && a.time_scale <= 10.0) {
        return bad_input(format!("--time-scale {} must be in (0, 10]", a.time_scale));
    }
    let config = SimConfig {
        seed: a.seed,
        time_scale: a.time_scale,
        scenario,
        ..SimConfig::default()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], a.port).into();
    let sim = match encore_sim::serve(SimState::new(config), addr).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("error: could not listen on {addr}: {e}");
            return exit::PERMANENT;
        }
    };
    let base = sim.base_url();
    println!("encore simulator listening on {base}");
    println!("  OpenAI      {base}/v1/responses");
    println!(
        "  Suno        {base}/api/v1/generate, /generate/record-info, /generate/get-timestamped-lyrics, /generate/credit"
    );
    println!(
        "  Creatomate  {base}/v1/renders, /v1/templates (demo template {})",
        encore_sim::DEMO_TEMPLATE_ID
    );
    println!("  ledger      {base}/__sim/ledger");
    println!("point encore at it with: encore run --sim {base} …  (Ctrl-C stops)");
    let _ = tokio::signal::ctrl_c().await;
    let ledger = sim.state().ledger();
    sim.shutdown().await;
    eprintln!(
        "stopped; served {} requests ({} OpenAI responses, {} Suno tasks, {} Creatomate renders)",
        ledger.requests_per_route.values().sum::<u64>(),
        ledger.openai_responses,
        ledger.suno_tasks,
        ledger.creatomate_renders
    );
    exit::SUCCESS
}

fn config(action: ConfigAction) -> u8 {
    match action {
        ConfigAction::Check(args) => match load_settings(&args) {
            Ok(_) => {
                if args.json {
                    print_json(&json!({ "status": "ok" }));
                } else {
                    println!("configuration ok");
                }
                exit::SUCCESS
            }
            Err(code) => code,
        },
        ConfigAction::Show(args) => {
            let settings = match load_settings(&args) {
                Ok(s) => s,
                Err(code) => return code,
            };
            if args.json {
                print_json(&json!({ "clients": settings.clients, "pipeline": settings.pipeline }));
            } else {
                print!("{}", policy_table(&settings.clients));
            }
            exit::SUCCESS
        }
    }
}

/// A timeout as the seed plan writes it: whole seconds (`60s`, `120s`).
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() < 1000 {
        format!("{}s", d.as_secs())
    } else {
        fmt_duration(d)
    }
}

/// The effective per-endpoint policy table, as text.
pub fn policy_table(config: &Config) -> String {
    let mut out = format!(
        "retries: {}    http.connect_timeout: {}\n\n{:<22} {:<8} {:>8} {:>7}  {:<18} {:>8}  {}\n",
        if config.retries {
            "on"
        } else {
            "OFF (rollback)"
        },
        fmt_duration(config.http.connect_timeout),
        "endpoint",
        "retries",
        "timeout",
        "tries",
        "waits",
        "deadline",
        "replay if ambiguous"
    );
    for endpoint in Endpoint::ALL {
        let ep = config.endpoint(endpoint);
        let policy = ep.retry_policy(config.retries);
        let waits: Vec<String> = policy.backoff_seeded(0).map(fmt_duration).collect();
        out.push_str(&format!(
            "{:<22} {:<8} {:>8} {:>7}  {:<18} {:>8}  {}\n",
            endpoint.name(),
            if policy.enabled { "on" } else { "off" },
            secs(policy.attempt_timeout),
            policy.max_attempts(),
            if waits.is_empty() {
                "-".to_owned()
            } else {
                waits.join(" → ")
            },
            fmt_duration(policy.deadline),
            if ep.retry_ambiguous { "yes" } else { "no" },
        ));
    }
    out
}

async fn lyrics(a: LyricsArgs) -> u8 {
    let input = match business(&a.business) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let needs = Needs {
        openai: true,
        suno: false,
        creatomate: false,
        template: false,
    };
    let (settings, keys, http) = match prepare(&a.config, &a.target, needs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let pipeline = stage_pipeline(&http, &settings, keys);
    let Some(result) = interruptible(pipeline.lyrics(&input)).await else {
        return exit::INTERRUPTED;
    };
    finish_stage(result, a.config.json, |l: &Lyrics| {
        println!("title: {}\nstyle: {}\n\n{}", l.title, l.style, l.lyrics);
    })
}

fn stage_pipeline(http: &Http, settings: &Settings, keys: Keys) -> Pipeline {
    let progress = Arc::new(Progress::new(String::new()));
    Pipeline::new(http, &settings.clients, keys, settings.pipeline.clone())
        .on_event(move |e| progress.event(e))
}

fn finish_stage<T: serde::Serialize>(
    result: Result<T, encore_pipeline::PipelineError>,
    json: bool,
    human: impl FnOnce(&T),
) -> u8 {
    match result {
        Ok(value) => {
            if json {
                print_json(&json!({ "status": "succeeded", "result": value, "error": null }));
            } else {
                human(&value);
            }
            exit::SUCCESS
        }
        Err(e) => {
            let code = exit::for_class(e.class());
            if json {
                print_json(
                    &json!({ "status": "failed", "result": null, "error": e.to_string(), "exit_code": code }),
                );
            } else {
                print_error(&e);
            }
            code
        }
    }
}

async fn song(a: SongArgs) -> u8 {
    let text = match (&a.lyrics, &a.lyrics_file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return bad_input(format!("cannot read {}: {e}", path.display())),
        },
        (None, None) => return bad_input("--lyrics or --lyrics-file is required"),
    };
    if text.trim().is_empty() || a.title.trim().is_empty() || a.style.trim().is_empty() {
        return bad_input("--title, --style and the lyrics must not be empty");
    }
    let mut lyrics = Lyrics {
        title: a.title.clone(),
        lyrics: text,
        style: a.style.clone(),
    };
    let needs = Needs {
        openai: false,
        suno: true,
        creatomate: false,
        template: false,
    };
    let (settings, keys, http) = match prepare(&a.config, &a.target, needs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let limits = encore_pipeline::lyrics::SunoLimits::for_model(&settings.clients.suno.model);
    for note in encore_pipeline::lyrics::fit_to_limits(&mut lyrics, limits) {
        eprintln!("note: {note}");
    }
    let pipeline = stage_pipeline(&http, &settings, keys);
    let Some(result) = interruptible(pipeline.song(&lyrics)).await else {
        return exit::INTERRUPTED;
    };
    finish_stage(result, a.config.json, |s| {
        println!(
            "task:   {}\naudio:  {}\ncaptions: {} lines{}",
            s.task_id,
            s.audio_url,
            s.captions.len(),
            if s.timed_captions { "" } else { " (untimed)" }
        );
    })
}

async fn video(a: VideoArgs) -> u8 {
    if a.audio_url.trim().is_empty() || a.title.trim().is_empty() {
        return bad_input("--audio-url and --title must not be empty");
    }
    if !(a.duration.is_finite() && a.duration > 0.0) {
        return bad_input("--duration must be a positive number of seconds");
    }
    let needs = Needs {
        openai: false,
        suno: false,
        creatomate: true,
        template: true,
    };
    let (settings, keys, http) = match prepare(&a.config, &a.target, needs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let captions = a
        .captions
        .as_deref()
        .map(|c| encore_pipeline::captions::spread(c, a.duration))
        .unwrap_or_default();
    let input = VideoInput {
        audio_url: a.audio_url.clone(),
        title: a.title.clone(),
        captions,
        metadata: None,
    };
    let pipeline = stage_pipeline(&http, &settings, keys);
    let Some(result) = interruptible(pipeline.video(&input)).await else {
        return exit::INTERRUPTED;
    };
    finish_stage(result, a.config.json, |v| {
        println!("render: {}\nvideo:  {}", v.render_id, v.url);
    })
}
