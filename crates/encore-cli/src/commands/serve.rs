//! `encore serve`: the pipeline as an HTTP service over the job store, with a worker that runs
//! the jobs, until SIGTERM or Ctrl-C (graceful: running jobs stop at a safe point and are
//! queued again; a second signal exits at once).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use encore_service::server::{self, ServerParts};
use encore_sim::{SimConfig, SimState};
use encore_store::Backend;

use crate::args::{ConfigArgs, StoreArgs, TargetArgs, named_scenario, scenario_names, time_scale};
use crate::cli::LogFormat;
use crate::error::CliError;
use crate::keys::{self, Needs};
use crate::output;
use crate::setup::{self, load_settings, point_at_sim};

/// `encore serve`
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Where the API listens (default 127.0.0.1:8080; a non-loopback address needs
    /// `serve.api_token`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The URL the providers reach this server at, for their callbacks (none: polling only).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// No provider callbacks: jobs poll only (as without a public URL).
    #[arg(long, conflicts_with = "public_url")]
    no_callbacks: bool,
    /// Jobs this process runs at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=10000))]
    concurrency: Option<u16>,
    /// Start an embedded simulator of the three APIs with callbacks on: the whole service with
    /// one command, no keys, no network.
    #[arg(long, conflicts_with = "sim")]
    demo: bool,
    /// With --demo: the simulator's fault scenario.
    #[arg(long, default_value = "calm", value_parser = scenario_names(), requires = "demo")]
    scenario: String,
    /// With --demo: simulated job durations relative to the real services.
    #[arg(long, default_value_t = 0.01, value_parser = time_scale, requires = "demo")]
    time_scale: f64,
    /// How log lines on stderr are written: `text` (shown when `RUST_LOG` is set), or `json`,
    /// one object per line, on at `info` unless `RUST_LOG` says otherwise, with each HTTP
    /// attempt's span (OpenTelemetry attribute names) as a line of its own when it closes.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub(crate) log_format: LogFormat,
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let mut settings = load_settings(&args.config)?;
    let serve = &mut settings.serve;
    if let Some(listen) = args.listen {
        serve.listen = listen;
    }
    if let Some(url) = &args.public_url {
        serve.public_url = Some(url.clone());
    }
    if let Some(n) = args.concurrency {
        serve.concurrency = usize::from(n);
    }
    if args.no_callbacks {
        serve.public_url = None;
    }
    serve.validate().map_err(CliError::bad_input)?;

    let listener = tokio::net::TcpListener::bind(settings.serve.listen)
        .await
        .with_context(|| format!("could not listen on {}", settings.serve.listen))
        .map_err(CliError::permanent)?;
    let addr = listener.local_addr().map_err(CliError::output)?;

    // --demo: a simulator on loopback, jobs at its time scale, callbacks to this server.
    let sim = if args.demo {
        let sim = encore_sim::serve(
            SimState::new(SimConfig {
                time_scale: args.time_scale,
                scenario: named_scenario(&args.scenario),
                callbacks: true,
                ..SimConfig::default()
            }),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .context("could not start the simulator")
        .map_err(CliError::permanent)?;
        let scale = args.time_scale;
        let p = &mut settings.pipeline;
        p.song_poll = p.song_poll.for_time_scale(scale);
        p.video_poll = p.video_poll.for_time_scale(scale);
        p.callback_poll_interval =
            scaled(p.callback_poll_interval, scale, Duration::from_millis(500));
        p.not_found_grace = scaled(p.not_found_grace, scale, Duration::from_millis(500));
        let serve = &mut settings.serve;
        serve.reconcile_window = scaled(serve.reconcile_window, scale, Duration::from_secs(5));
        if !args.no_callbacks {
            serve
                .public_url
                .get_or_insert_with(|| format!("http://{addr}"));
        }
        Some(sim)
    } else {
        None
    };
    let sim_url = sim
        .as_ref()
        .map(encore_sim::RunningSim::base_url)
        .or(args.target.sim.clone());
    if let Some(url) = &sim_url {
        point_at_sim(&mut settings.clients, url);
    }
    let keys = keys::from_env(Needs::ALL, &mut settings, sim_url.is_some())?;
    let mut http = setup::http(&settings.clients)?;

    let target = crate::store::target(&args.store, &settings.store)?;
    let store = crate::store::open(&target).await?;
    // One serving process per SQLite file; several share a PostgreSQL store, and with it the
    // accounts' rate limits (breakers and retry budgets stay per process).
    let _lock = match store.backend() {
        Backend::Sqlite => Some(store.lock_worker()?),
        Backend::Postgres => {
            let shared = encore_service::share_quotas(
                &store,
                &settings.clients,
                &keys,
                http.protections().clone(),
            )
            .context("cannot share the rate limits through the job store")
            .map_err(CliError::bad_input)?;
            http = http.with_protections(shared);
            None
        }
    };
    let public_url = settings.serve.public_url.clone();
    let running = server::start(
        listener,
        ServerParts {
            store: store.clone(),
            config: settings.serve.clone(),
            clients: settings.clients.clone(),
            http,
            keys,
            pipeline: settings.pipeline.clone(),
            owner: format!(
                "serve@{} pid {}",
                crate::holder::host_name(),
                std::process::id()
            ),
        },
    )
    .await
    .map_err(|e| CliError::bad_input(anyhow::Error::new(e)))?;

    let mut stop = crate::interrupt::terminate_from_now()?;
    let base = format!("http://{addr}");
    let mut banner = format!(
        "encore serve listening on {base}\n  jobs        {}\n  callbacks   {}\n  API         {base}/v1/jobs  (OpenAPI: {base}/openapi.json)\n",
        store.database(),
        public_url.as_deref().map_or_else(
            || "off (no public URL: jobs poll)".to_owned(),
            |u| format!("{u}/hooks/…")
        ),
    );
    if let Some(sim) = &sim {
        banner.push_str(&format!(
            "  simulator   {} (scenario {}, time scale {})\ntry:\n  curl -s -X POST {base}/v1/jobs -H 'Content-Type: application/json' -d '{{\"business\":\"a bakery in Mangwon-dong\",\"name\":\"Haneul\",\"lang\":\"en\"}}'\n",
            sim.base_url(),
            args.scenario,
            args.time_scale
        ));
    }
    banner.push_str("SIGTERM or Ctrl-C stops (running jobs are stored and queued again; a second signal exits at once)\n");
    output::text(&banner)?;
    stop.first().await;
    eprintln!("stopping: running jobs finish their current step and are queued again…");
    tokio::select! {
        result = running.shutdown() => result.context("the server failed").map_err(CliError::permanent)?,
        () = stop.second() => return Err(CliError::interrupted()),
    }
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    store.close().await;
    Ok(())
}

/// `d` at `scale`, at least `min`.
fn scaled(d: Duration, scale: f64, min: Duration) -> Duration {
    Duration::from_secs_f64(d.as_secs_f64() * scale).max(min)
}
