//! `encore sim`: the simulator of the three APIs, served on loopback until Ctrl-C.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use encore_sim::{Scenario, SimConfig, SimState};

use crate::args::{named_scenario, scenario_names, time_scale};
use crate::error::CliError;
use crate::interrupt::ctrl_c_from_now;
use crate::output;

/// `encore sim`
#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Fault scenario.
    #[arg(long, default_value = "calm", value_parser = scenario_names())]
    pub scenario: String,
    /// A scenario file (TOML) instead of a named scenario.
    #[arg(long, value_name = "FILE", conflicts_with = "scenario")]
    pub scenario_file: Option<PathBuf>,
    /// Seed for ids, texts and fault draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated job durations relative to the real services, above 0 and at most 10.
    #[arg(long, default_value_t = 1.0, value_parser = time_scale)]
    pub time_scale: f64,
    /// The Suno credit balance each API key starts with (a song costs 12).
    #[arg(long, value_name = "N", default_value_t = encore_sim::DEFAULT_SUNO_CREDITS)]
    pub suno_credits: u64,
    /// Answer without the providers' rate-limit windows (Suno 20 generate / 10 s, Creatomate
    /// 30 / 10 s): for load tests of encore itself, with its own rate limits switched off.
    #[arg(long)]
    pub no_rate_limits: bool,
}

impl SimArgs {
    /// The scenario from `--scenario-file`, or the named one.
    fn scenario(&self) -> Result<Scenario, CliError> {
        let Some(path) = &self.scenario_file else {
            return Ok(named_scenario(&self.scenario));
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the scenario file {}", path.display()))
            .map_err(CliError::bad_input)?;
        Scenario::from_toml(&text)
            .with_context(|| format!("invalid scenario file {}", path.display()))
            .map_err(CliError::bad_input)
    }
}

/// Serves the simulator until Ctrl-C, then says what it served.
pub async fn run(args: SimArgs) -> Result<(), CliError> {
    let config = SimConfig {
        seed: args.seed,
        time_scale: args.time_scale,
        scenario: args.scenario()?,
        suno_credits: args.suno_credits,
        rate_limits: !args.no_rate_limits,
        ..SimConfig::default()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], args.port).into();
    let sim = encore_sim::serve(SimState::new(config), addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))
        .map_err(CliError::permanent)?;
    let stop = ctrl_c_from_now().await;
    let base = sim.base_url();
    output::text(&format!(
        "encore simulator listening on {base}\n  \
         OpenAI      {base}/v1/responses\n  \
         Suno        {base}/api/v1/generate, /generate/record-info, /generate/get-timestamped-lyrics, /generate/credit ({} credits per key)\n  \
         Creatomate  {base}/v1/renders, /v1/templates (demo template {})\n  \
         ledger      {base}/__sim/ledger\n\
         point encore at it with: encore run --sim {base} …  (Ctrl-C stops)\n",
        args.suno_credits,
        encore_sim::DEMO_TEMPLATE_ID
    ))?;
    stop.await;
    let ledger = sim.state().ledger();
    sim.shutdown().await;
    let _ = writeln!(
        std::io::stderr(),
        "stopped; served {} requests ({} OpenAI responses, {} Suno tasks, {} Creatomate renders)",
        ledger.requests_per_route.values().sum::<u64>(),
        ledger.openai_responses,
        ledger.suno_tasks,
        ledger.creatomate_renders
    );
    Ok(())
}
