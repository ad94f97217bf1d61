//! What a command needs before its first call: the settings (pointed at `--sim` when given),
//! the keys, and one HTTP client whose per-service budget, breaker and rate limiter every
//! pipeline of the process shares.

use anyhow::Context as _;
use encore_clients::{Config, Http};
use encore_pipeline::{Keys, Pipeline};

use crate::args::{ConfigArgs, TargetArgs};
use crate::error::CliError;
use crate::keys::{self, Needs};
use crate::settings::{self, Settings};

/// Settings, keys and the HTTP client, checked and ready.
#[derive(Debug)]
pub struct Setup {
    /// The effective configuration.
    pub settings: Settings,
    /// The services' keys.
    pub keys: Keys,
    /// The shared HTTP client.
    pub http: Http,
}

impl Setup {
    /// Loads the settings, points them at `--sim` when given, reads the keys `needs` names and
    /// builds the HTTP client. Nothing is sent.
    pub fn prepare(
        config: &ConfigArgs,
        target: &TargetArgs,
        needs: Needs,
    ) -> Result<Self, CliError> {
        let mut settings = load_settings(config)?;
        if let Some(url) = &target.sim {
            point_at_sim(&mut settings.clients, url);
        }
        let keys = keys::from_env(needs, &mut settings, target.sim.is_some())?;
        let http = http(&settings.clients)?;
        Ok(Setup {
            settings,
            keys,
            http,
        })
    }

    /// A new pipeline on the shared client (one per run: it collects that run's calls).
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(
            &self.http,
            &self.settings.clients,
            self.keys.clone(),
            self.settings.pipeline.clone(),
        )
    }
}

/// The configuration from `--config` (or `./encore.toml`) and `ENCORE_*`, validated.
pub fn load_settings(args: &ConfigArgs) -> Result<Settings, CliError> {
    settings::load(args.config.as_deref())
        .map_err(|e| CliError::bad_input(anyhow::Error::from_boxed(e)))
}

/// Points every service of `config` at a simulator serving on `base`.
pub fn point_at_sim(config: &mut Config, base: &str) {
    let base = base.trim_end_matches('/');
    config.openai.base_url = format!("{base}/v1");
    config.suno.base_url = format!("{base}/api/v1");
    config.creatomate.base_url = format!("{base}/v1");
}

/// The HTTP client every call of the process goes through, with the protections (retry
/// budget, circuit breaker, rate limit) of `config`'s `[services.*]`.
pub fn http(config: &Config) -> Result<Http, CliError> {
    Http::for_config(config)
        .context("cannot build the HTTP client")
        .map_err(CliError::permanent)
}
