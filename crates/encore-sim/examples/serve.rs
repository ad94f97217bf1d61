//! Serves the simulator until killed, for pointing your own tools at it.
//!
//! ```text
//! cargo run -p encore-sim --example serve -- [SCENARIO] [PORT] [TIME_SCALE]
//! cargo run -p encore-sim --example serve -- flaky 8080 0.01
//! ```
//!
//! SCENARIO is a shipped name (calm, flaky, outage, hostile) or a path to a TOML file.

use encore_sim::{Scenario, SimConfig, SimState, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "encore_sim=info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "calm".into());
    let port: u16 = args.next().map_or(Ok(0), |p| p.parse())?;
    let time_scale: f64 = args.next().map_or(Ok(0.01), |t| t.parse())?;
    let scenario = match Scenario::named(&scenario) {
        Some(s) => s,
        None => Scenario::from_toml(&std::fs::read_to_string(&scenario)?)?,
    };
    let config = SimConfig {
        scenario,
        time_scale,
        ..SimConfig::default()
    };
    let sim = serve(SimState::try_new(config)?, ([127, 0, 0, 1], port).into()).await?;
    let base = sim.base_url();
    eprintln!("encore-sim on {base}");
    eprintln!("  OpenAI     {base}/v1");
    eprintln!("  Suno       {base}/api/v1");
    eprintln!("  Creatomate {base}/v1");
    eprintln!("  ledger     {base}/__sim/ledger");
    std::future::pending::<()>().await;
    Ok(())
}
