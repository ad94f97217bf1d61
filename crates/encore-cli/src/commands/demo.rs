//! `encore demo`: the whole pipeline against the embedded simulator (no keys, no network).

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Args;
use encore_pipeline::{BusinessInput, Language, Report};
use encore_sim::{Ledger, SimConfig, SimState};

use crate::args::{ConfigArgs, named_scenario, non_blank, scenario_names, time_scale};
use crate::error::CliError;
use crate::exit::Exit;
use crate::interrupt::interruptible;
use crate::json::{DemoJson, DemoPipelinesJson, DemoSim, LedgerJson, RunJson};
use crate::settings::Settings;
use crate::setup::{http, load_settings, point_at_sim};
use crate::{keys, output, progress, report};

/// The most pipelines one demo runs at once.
const MAX_PIPELINES: u32 = 200;

/// `encore demo`
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Fault scenario.
    #[arg(long, default_value = "flaky", value_parser = scenario_names())]
    pub scenario: String,
    /// Seed for the simulator's ids, texts and fault draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated job durations relative to the real services, above 0 and at most 10 (0.01: a
    /// 2.5 min song takes 1.5 s).
    #[arg(long, default_value_t = 0.01, value_parser = time_scale)]
    pub time_scale: f64,
    /// Run this many pipelines at once against the one simulator (1 to 200).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PIPELINES)))]
    pub pipelines: u32,
    /// The Suno credit balance the simulator starts each key with (a song costs 12).
    #[arg(long, value_name = "N", default_value_t = encore_sim::DEFAULT_SUNO_CREDITS)]
    pub suno_credits: u64,
    /// Business name (default: a Seoul bakery).
    #[arg(long, value_parser = non_blank)]
    pub name: Option<String>,
    /// Business description.
    #[arg(long, value_name = "TEXT", value_parser = non_blank)]
    pub business: Option<String>,
    /// Language of the lyrics: ko or en.
    #[arg(long, default_value = "ko")]
    pub lang: Language,
    #[command(flatten)]
    pub config: ConfigArgs,
}

impl DemoArgs {
    /// The business to make a video for: the Seoul bakery unless `--name`/`--business` say
    /// otherwise.
    fn input(&self) -> Result<BusinessInput, CliError> {
        let mut input = BusinessInput::new(
            self.name.as_deref().unwrap_or("하늘 베이커리"),
            self.business
                .as_deref()
                .unwrap_or("서울 망원동의 동네 빵집. 매일 아침 갓 구운 소금빵과 우유식빵"),
        );
        input.region = Some("서울 마포구".to_owned());
        input.mood = Some("따뜻한 어쿠스틱 팝".to_owned());
        input.language = self.lang;
        input.validate().map_err(CliError::bad_input)?;
        Ok(input)
    }
}

/// Starts the simulator on a free loopback port, runs the pipelines against it and prints
/// their results with what the simulator received and billed.
pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    let mut settings = load_settings(&args.config)?;
    let input = args.input()?;
    let sim_config = SimConfig {
        seed: args.seed,
        time_scale: args.time_scale,
        scenario: named_scenario(&args.scenario),
        suno_credits: args.suno_credits,
        ..SimConfig::default()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = encore_sim::serve(SimState::new(sim_config), addr)
        .await
        .context("could not start the simulator on 127.0.0.1")
        .map_err(CliError::permanent)?;
    point_at_sim(&mut settings.clients, &sim.base_url());
    encore_sim::DEMO_TEMPLATE_ID.clone_into(&mut settings.pipeline.template_id);
    settings.pipeline.song_poll = settings.pipeline.song_poll.for_time_scale(args.time_scale);
    settings.pipeline.video_poll = settings.pipeline.video_poll.for_time_scale(args.time_scale);
    if !args.config.json {
        let _ = writeln!(
            std::io::stderr(),
            "encore demo: simulator on {} (scenario {}, seed {}, time scale {}), {} pipeline{}",
            sim.base_url(),
            args.scenario,
            args.seed,
            args.time_scale,
            args.pipelines,
            plural(u64::from(args.pipelines))
        );
    }
    let runs = run_pipelines(args.pipelines, &settings, &input).await?;
    let ledger = sim.state().ledger();
    sim.shutdown().await;
    print(&args, &runs, &ledger)?;
    outcome(runs)
}

/// The pipelines' reports in order, with their numbers (from 1); a run whose task panicked
/// has none.
struct Runs {
    numbers: Vec<u32>,
    reports: Vec<Report>,
    /// How many were started.
    started: u32,
}

impl Runs {
    /// The worst run's exit (a lost run counts as a permanent failure).
    fn exit(&self) -> Exit {
        let lost = self.reports.len() < self.started as usize;
        self.reports
            .iter()
            .map(Exit::for_report)
            .chain(lost.then_some(Exit::Permanent))
            .max()
            .unwrap_or(Exit::Success)
    }

    /// The report of a demo of one pipeline.
    fn single(&self) -> Option<&Report> {
        match self.reports.as_slice() {
            [report] if self.started == 1 => Some(report),
            _ => None,
        }
    }

    fn succeeded(&self) -> usize {
        self.reports.iter().filter(|r| r.succeeded()).count()
    }

    fn logical_calls(&self) -> usize {
        self.reports.iter().map(|r| r.calls.len()).sum()
    }
}

/// Runs `count` pipelines at once (Ctrl-C stops them).
async fn run_pipelines(
    count: u32,
    settings: &Settings,
    input: &BusinessInput,
) -> Result<Runs, CliError> {
    // One pipeline per run, all on one `Http`: they share its per-service retry budget,
    // circuit breaker and rate limiter, and one set of template checks, as concurrent jobs in
    // one process should.
    let http = http(&settings.clients)?;
    let keys = keys::demo();
    let template_checks = encore_pipeline::TemplateChecks::new();
    let mut finished = interruptible(async {
        let mut runs = tokio::task::JoinSet::new();
        for number in 1..=count {
            let pipeline = encore_pipeline::Pipeline::new(
                &http,
                &settings.clients,
                keys.clone(),
                settings.pipeline.clone(),
            )
            .with_template_checks(template_checks.clone());
            let prefix = if count == 1 {
                String::new()
            } else {
                format!("[{number:>2}] ")
            };
            let pipeline = progress::attach(pipeline, prefix, number == 1);
            let input = input.clone();
            runs.spawn(async move { (number, pipeline.run(&input).await) });
        }
        let mut finished = Vec::new();
        while let Some(done) = runs.join_next().await {
            match done {
                Ok(run) => finished.push(run),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "error: a pipeline task failed: {e}");
                }
            }
        }
        finished
    })
    .await?;
    finished.sort_by_key(|(number, _)| *number);
    let (numbers, reports) = finished.into_iter().unzip();
    Ok(Runs {
        numbers,
        reports,
        started: count,
    })
}

/// Prints the runs' results and the simulator's ledger, as text or `--json`.
fn print(args: &DemoArgs, runs: &Runs, ledger: &Ledger) -> Result<(), CliError> {
    let logical_calls = runs.logical_calls();
    let received: u64 = ledger.requests_per_route.values().sum();
    let amplification = if logical_calls == 0 {
        0.0
    } else {
        received as f64 / logical_calls as f64
    };
    if args.config.json {
        let sim = DemoSim {
            ledger: LedgerJson::from(ledger),
            amplification,
            scenario: &args.scenario,
            seed: args.seed,
        };
        return match runs.single() {
            Some(report) => output::json(&DemoJson {
                run: RunJson::new(report),
                sim,
            }),
            None => output::json(&DemoPipelinesJson::new(
                &runs.reports,
                runs.started as usize,
                runs.exit(),
                sim,
            )),
        };
    }
    let mut text = String::from("\n");
    if let Some(report) = runs.single() {
        text.push_str(&report::text(report));
    } else {
        text.push_str(&format!(
            "{} of {} pipelines succeeded\n",
            runs.succeeded(),
            runs.started
        ));
        for (number, r) in runs.numbers.iter().zip(&runs.reports) {
            if let Some(e) = &r.error {
                text.push_str(&format!("[{number:>2}] failed: {e}\n"));
            }
        }
    }
    text.push_str(&format!(
        "simulator ledger: {} OpenAI response{}, {} Suno task{}, {} Creatomate render{}; {received} requests for {logical_calls} logical call{} (amplification {amplification:.2})\n",
        ledger.openai_responses,
        plural(ledger.openai_responses),
        ledger.suno_tasks,
        plural(ledger.suno_tasks),
        ledger.creatomate_renders,
        plural(ledger.creatomate_renders),
        plural(logical_calls as u64),
    ));
    output::text(&text)
}

/// The demo's result: the single run's error, or for several runs a summary with the worst
/// run's exit code.
fn outcome(mut runs: Runs) -> Result<(), CliError> {
    if runs.single().is_some() {
        return report::into_result(runs.reports.remove(0));
    }
    let exit = runs.exit();
    if exit == Exit::Success {
        return Ok(());
    }
    Err(CliError::new(
        exit,
        anyhow::anyhow!(
            "{} of {} pipelines failed",
            runs.started as usize - runs.succeeded(),
            runs.started
        ),
    ))
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
