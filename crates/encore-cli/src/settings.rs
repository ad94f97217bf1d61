//! The effective configuration: defaults ← `encore.toml` ← `ENCORE_*` environment variables,
//! read by the clients' [`Loader`] with the pipeline's `[pipeline]` and the job store's
//! `[store]` tables registered as sections of their own (so `ENCORE_PIPELINE__…` and
//! `ENCORE_STORE__…` variables are known, and misspelled ones are refused like the clients').
//! Every refusal names the key and the reason.

use std::path::{Path, PathBuf};

use encore_clients::Config;
use encore_clients::config::{ConfigError, Loader};
use encore_pipeline::PipelineConfig;
use encore_service::server::ServeConfig;

use crate::store::StoreSettings;

/// The configuration of one `encore` invocation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The clients' settings, per-endpoint policies and per-service protections.
    pub clients: Config,
    /// The pipeline's settings (`[pipeline]`).
    pub pipeline: PipelineConfig,
    /// `encore serve`'s settings (`[serve]`).
    pub serve: ServeConfig,
    /// Where jobs are journaled, and their lease (`[store]`).
    pub store: StoreSettings,
    /// The file that was read, if any.
    #[allow(dead_code)]
    pub file: Option<PathBuf>,
}

/// The top-level table of the pipeline's settings.
const PIPELINE: &str = "pipeline";
/// The top-level table of `encore serve`'s settings.
const SERVE: &str = "serve";
/// The top-level table of the job store's settings.
const STORE: &str = "store";

/// Loads the configuration from `path` (or `./encore.toml` when it exists) and the environment,
/// and validates it.
pub fn load(path: Option<&Path>) -> Result<Settings, Box<dyn std::error::Error + Send + Sync>> {
    let loaded = Loader::new()
        .file(path)
        .section(PIPELINE)
        .section(SERVE)
        .section(STORE)
        .load()?;
    let pipeline: PipelineConfig = loaded.section(PIPELINE)?;
    pipeline.validate()?;
    let serve: ServeConfig = loaded.section(SERVE)?;
    serve.validate()?;
    let store: StoreSettings = loaded.section(STORE)?;
    if let Err((key, why)) = store.validate() {
        return Err(Box::new(ConfigError::new(format!("{STORE}.{key}"), why)));
    }
    Ok(Settings {
        file: loaded.file().map(Path::to_path_buf),
        clients: loaded.into_config(),
        pipeline,
        serve,
        store,
    })
}
