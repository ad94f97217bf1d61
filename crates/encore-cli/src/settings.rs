//! The effective configuration: defaults ← `encore.toml` ← `ENCORE_*` environment variables.
//!
//! The file holds the clients' keys (`retries`, `[http]`, `[openai]`, `[suno]`, `[creatomate]`,
//! `[endpoints.*]`) and the pipeline's (`[pipeline]`). Environment variables use `__` between
//! levels: `ENCORE_RETRIES=false`, `ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRIES=5`,
//! `ENCORE_PIPELINE__SONG_POLL__DEADLINE=15m`.

use std::path::{Path, PathBuf};

use encore_clients::Config;
use encore_pipeline::PipelineConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

/// The configuration of one `encore` invocation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The clients' settings and per-endpoint policies.
    pub clients: Config,
    /// The pipeline's settings.
    pub pipeline: PipelineConfig,
    /// The file that was read, if any.
    #[allow(dead_code)]
    pub file: Option<PathBuf>,
}

/// A configuration that could not be loaded: says which file, which key and why.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML, or a key has the wrong type or is unknown.
    #[error("invalid config{}: {message}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, if the error came from it.
        path: Option<PathBuf>,
        /// Figment's or TOML's message, which names the key.
        message: String,
    },
    /// A value broke an invariant.
    #[error(transparent)]
    Clients(#[from] encore_clients::ConfigError),
    /// A pipeline value broke an invariant.
    #[error(transparent)]
    Pipeline(#[from] encore_pipeline::PipelineConfigError),
}

/// The top-level keys of [`Config`]; other `ENCORE_*` variables (e.g. `ENCORE_PIPELINE__…`) are
/// not the clients' business.
const CLIENT_SECTIONS: [&str; 6] = [
    "retries",
    "http",
    "openai",
    "suno",
    "creatomate",
    "endpoints",
];

fn figment_error(path: Option<&Path>, e: &figment::Error) -> SettingsError {
    let mut messages = Vec::new();
    for err in e.clone() {
        let key = err.path.join(".");
        let source = err
            .metadata
            .as_ref()
            .filter(|m| !m.name.contains("TOML"))
            .map(|m| {
                format!(
                    " (from {})",
                    m.interpolate(&err.profile.clone().unwrap_or_default(), &err.path)
                )
            })
            .unwrap_or_default();
        if key.is_empty() {
            messages.push(format!("{}{source}", err.kind));
        } else {
            messages.push(format!("{key}: {}{source}", err.kind));
        }
    }
    SettingsError::Parse {
        path: path.map(Path::to_path_buf),
        message: messages.join("; "),
    }
}

/// Loads the configuration from `path` (or `./encore.toml` when it exists) and the environment,
/// and validates it.
pub fn load(path: Option<&Path>) -> Result<Settings, Box<dyn std::error::Error + Send + Sync>> {
    Ok(load_from(path, Env::prefixed("ENCORE_"))?)
}

fn load_from(path: Option<&Path>, env: Env) -> Result<Settings, SettingsError> {
    let file = path.map(Path::to_path_buf).or_else(|| {
        let default = PathBuf::from("encore.toml");
        default.exists().then_some(default)
    });
    let mut table = match &file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| SettingsError::Read {
                path: p.clone(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| SettingsError::Parse {
                    path: Some(p.clone()),
                    message: e.to_string(),
                })?
        }
        None => toml::Table::new(),
    };
    let pipeline_table = table
        .remove("pipeline")
        .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
    let clients_text = toml::to_string(&table).expect("a parsed table serializes");
    let pipeline_text = toml::to_string(&pipeline_table).expect("a parsed table serializes");
    let env = env.split("__");

    let clients: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(&clients_text))
        .merge(env.clone().filter(|k| {
            let section = k.as_str().split('.').next().unwrap_or_default();
            CLIENT_SECTIONS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(section))
        }))
        .extract()
        .map_err(|e| figment_error(file.as_deref(), &e))?;
    clients.validate()?;

    let pipeline: PipelineConfig = Figment::from(Serialized::defaults(PipelineConfig::default()))
        .merge(Toml::string(&pipeline_text))
        .merge(env.filter_map(|k| {
            k.as_str()
                .strip_prefix("pipeline.")
                .map(|rest| rest.to_owned().into())
        }))
        .extract()
        .map_err(|e| figment_error(file.as_deref(), &e))?;
    pipeline.validate()?;
    Ok(Settings {
        clients,
        pipeline,
        file,
    })
}
