//! Loading the configuration: built-in defaults ← a TOML file ← `ENCORE_*` environment
//! variables, validated once, every refusal naming its key.
//!
//! The file and the variables may hold tables of other parts of a program (the pipeline's
//! `[pipeline]`, a server's `[serve]`): a program registers them with [`Loader::section`], so
//! that they count as known (a misspelled `ENCORE_PIPELINE_…` variable is refused like one of
//! the clients'), and reads each into its own type with [`Loaded::section`], with the same
//! key-naming errors.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Config, ConfigError, SECTIONS};
use crate::defaults::{DEFAULT_CONFIG_FILE, ENV_PREFIX};

impl Config {
    /// Loads the defaults, then the file at `path` (or `./encore.toml` when `path` is `None` and
    /// that file exists), then `ENCORE_*` environment variables, and validates the result. A
    /// program with configuration sections of its own uses a [`Loader`] instead.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key: a missing file given explicitly, a syntax error, an
    /// unknown key (a top-level table that is not the clients' included), a value of the wrong
    /// type, a value [`validate`](Self::validate) refuses, or an `ENCORE_*` variable that looks
    /// meant for the configuration but is misspelled.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Ok(Loader::new().file(path).load()?.into_config())
    }

    /// Parses a TOML document over the defaults (no file, no environment) and validates it.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn from_toml_str(toml: &str) -> Result<Config, ConfigError> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(toml))
            .extract()
            .map_err(ConfigError::from_figment)?;
        config.validate()?;
        Ok(config)
    }
}

/// Where the configuration comes from, and which top-level tables besides the clients' it may
/// hold.
///
/// Layers, later winning: [`Config::default`] ← the file (`./encore.toml` when it exists, or
/// the path given, which must) ← `ENCORE_*` environment variables, `__` between levels
/// (`ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRIES=5`). Unknown keys are refused, naming the
/// key; so are `ENCORE_*` variables that look meant for a known table but use a single `_`
/// where `__` separates levels (`ENCORE_OPENAI_BASE_URL`). Other `ENCORE_*` variables
/// (`ENCORE_LOG`) are left alone.
///
/// ```
/// use encore_clients::config::Loader;
///
/// #[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
/// #[serde(default, deny_unknown_fields)]
/// struct Pipeline { check_template: bool }
///
/// # figment::Jail::expect_with(|jail| {
/// jail.create_file("encore.toml", "retries = false\n[pipeline]\ncheck_template = true\n")?;
/// let loaded = Loader::new().section("pipeline").load().unwrap();
/// assert!(!loaded.config().retries);
/// let pipeline: Pipeline = loaded.section("pipeline").unwrap();
/// assert!(pipeline.check_template);
///
/// jail.set_env("ENCORE_PIPELINE__CHECK_TEMPLATE", "maybe");
/// let err = Loader::new()
///     .section("pipeline")
///     .load()
///     .unwrap()
///     .section::<Pipeline>("pipeline")
///     .unwrap_err();
/// assert_eq!(err.key(), "pipeline.check_template");
/// assert!(err.to_string().contains("ENCORE_PIPELINE__CHECK_TEMPLATE"), "{err}");
/// # Ok(())
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct Loader {
    file: Option<PathBuf>,
    sections: Vec<&'static str>,
}

impl Loader {
    /// The defaults, `./encore.toml` if it exists, and the environment.
    pub fn new() -> Loader {
        Loader::default()
    }

    /// Reads `path` instead of `./encore.toml` (it must exist); `None` keeps `./encore.toml`.
    pub fn file(mut self, path: Option<&Path>) -> Loader {
        self.file = path.map(Path::to_path_buf);
        self
    }

    /// Registers a top-level table of another part of the program (`"pipeline"`): the file may
    /// hold it, `ENCORE_<NAME>__…` variables address it, and [`Loaded::section`] reads it.
    pub fn section(mut self, name: &'static str) -> Loader {
        if !self.sections.contains(&name) {
            self.sections.push(name);
        }
        self
    }

    /// Reads the file and the environment, and extracts and validates the clients' [`Config`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key: a registered section that is one of the clients' own
    /// tables, a missing file given explicitly, a syntax error, an unknown key, a value of the
    /// wrong type or one [`Config::validate`] refuses, or a misspelled `ENCORE_*` variable.
    pub fn load(self) -> Result<Loaded, ConfigError> {
        if let Some(name) = self.sections.iter().find(|s| SECTIONS.contains(s)) {
            return Err(ConfigError::new(
                *name,
                "is a table of the clients' own configuration, not a section of its own",
            ));
        }
        let file = match self.file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::new(
                    "",
                    format!("config file {} does not exist", path.display()),
                ));
            }
            Some(path) => Some(path),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        check_env_names(
            std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()),
            &self.sections,
        )?;
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &file {
            figment = figment.merge(Without {
                inner: Toml::file_exact(path),
                keys: self.sections.clone(),
            });
        }
        let config: Config = figment
            .merge(env_provider(SECTIONS.to_vec()))
            .extract()
            .map_err(ConfigError::from_figment)?;
        config.validate()?;
        Ok(Loaded {
            config,
            file,
            sections: self.sections,
        })
    }
}

/// A loaded configuration: the clients' [`Config`], and access to the registered sections.
#[derive(Debug, Clone)]
pub struct Loaded {
    config: Config,
    file: Option<PathBuf>,
    sections: Vec<&'static str>,
}

impl Loaded {
    /// The clients' configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The clients' configuration, by value.
    pub fn into_config(self) -> Config {
        self.config
    }

    /// The file that was read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Reads the registered section `name` into `T`: `T::default()` ← the file's `[name]`
    /// table ← `ENCORE_<NAME>__…` variables. Validating the values is `T`'s business.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the full key (`pipeline.song_poll.interval`) and where the value
    /// came from, as for the clients' keys; or one saying `name` was not registered.
    pub fn section<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let Some(name) = self.sections.iter().copied().find(|s| *s == name) else {
            return Err(ConfigError::new(
                name,
                "is not a registered section (see Loader::section)",
            ));
        };
        let mut figment = Figment::from(Serialized::default(name, T::default()));
        if let Some(path) = &self.file {
            figment = figment.merge(Toml::file_exact(path));
        }
        // Focused on the section, so that errors name keys from it; the section's name is put
        // in front of them here (figment's own `extract_inner` appends it instead).
        figment
            .merge(env_provider(vec![name]))
            .focus(name)
            .extract()
            .map_err(|mut e| {
                e.path.insert(0, name.to_owned());
                ConfigError::from_figment(e)
            })
    }
}

/// `ENCORE_*` variables of the given top-level tables, `__` between levels.
fn env_provider(sections: Vec<&'static str>) -> Env {
    // The filter sees the key before figment lowercases it.
    Env::prefixed(ENV_PREFIX).split("__").filter(move |key| {
        let section = key.as_str().split('.').next().unwrap_or_default();
        sections.iter().any(|s| s.eq_ignore_ascii_case(section))
    })
}

/// A provider with some top-level keys left out: the clients' [`Config`] is read from the file
/// without the tables that belong to other parts of the program.
struct Without<P> {
    inner: P,
    keys: Vec<&'static str>,
}

impl<P: Provider> Provider for Without<P> {
    fn metadata(&self) -> Metadata {
        self.inner.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut data = self.inner.data()?;
        for dict in data.values_mut() {
            for key in &self.keys {
                dict.remove(*key);
            }
        }
        Ok(data)
    }
}

/// Refuses `ENCORE_*` variables that look meant for a known table (the clients' or a
/// registered section) but use a single `_` where `__` separates levels
/// (`ENCORE_OPENAI_BASE_URL`): silently ignoring them would be worse.
fn check_env_names(
    names: impl Iterator<Item = String>,
    sections: &[&'static str],
) -> Result<(), ConfigError> {
    let known = || SECTIONS.iter().chain(sections);
    for name in names {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let section = lower.split("__").next().unwrap_or_default();
        if known().any(|s| *s == section) {
            continue;
        }
        if let Some(table) = known().find(|s| section.starts_with(&format!("{s}_"))) {
            let suggestion = format!(
                "{ENV_PREFIX}{}__{}",
                table.to_ascii_uppercase(),
                &rest[table.len() + 1..]
            );
            return Err(ConfigError::new(
                lower.replace("__", "."),
                format!("nested keys are separated by `__`: did you mean {suggestion}?"),
            )
            .with_origin(format!("environment variable {name}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Extra {
        poll: ExtraPoll,
        name: String,
    }

    #[derive(Debug, Default, PartialEq, Serialize, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct ExtraPoll {
        #[serde(with = "humantime_serde")]
        interval: Duration,
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns its own error"
    )]
    fn load_layers_file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "encore.toml",
                "[endpoints.suno_generate]\nmax_retries = 4\nbase_delay = \"2s\"\n",
            )?;
            // The file alone.
            let c = Config::load(None).unwrap();
            assert_eq!(c.endpoints.suno_generate.max_retries, 4);
            // Variables win over the file.
            jail.set_env("ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRIES", "5");
            jail.set_env("ENCORE_RETRIES", "false");
            jail.set_env("ENCORE_HTTP__CONNECT_TIMEOUT", "3s");
            jail.set_env("ENCORE_SUNO__MODEL", "V5");
            jail.set_env("ENCORE_LOG", "debug"); // not ours: ignored
            jail.set_env("ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS", "10");
            jail.set_env("ENCORE_SERVICES__SUNO__BUDGET__RATIO", "0.1");
            jail.set_env("ENCORE_SERVICES__SUNO__BREAKER__OPEN_FOR", "30s");
            jail.set_env("ENCORE_SERVICES__CREATOMATE__BREAKER__ENABLED", "false");
            let c = Config::load(None).unwrap();
            assert_eq!(c.services.suno.rate_limit.requests, 10);
            assert_eq!(c.services.suno.rate_limit.per, Duration::from_secs(10));
            assert!((c.services.suno.budget.ratio - 0.1).abs() < f64::EPSILON);
            assert_eq!(c.services.suno.breaker.open_for, Duration::from_secs(30));
            assert!(!c.services.creatomate.breaker.enabled);
            assert!(c.services.creatomate.rate_limit.enabled);
            assert_eq!(c.endpoints.suno_generate.max_retries, 5);
            assert_eq!(c.endpoints.suno_generate.base_delay, Duration::from_secs(2));
            assert!(!c.retries);
            assert_eq!(c.http.connect_timeout, Duration::from_secs(3));
            assert_eq!(c.suno.model, "V5");
            // An explicit path that does not exist is an error; so is a bad variable.
            let err = Config::load(Some(Path::new("nope.toml"))).unwrap_err();
            assert!(err.to_string().contains("nope.toml"), "{err}");
            jail.set_env("ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRY", "5");
            let err = Config::load(None).unwrap_err();
            assert_eq!(err.key(), "endpoints.suno_generate.max_retry");
            assert!(
                err.to_string()
                    .contains("ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRY"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns its own error"
    )]
    fn invalid_values_from_the_environment_and_files_name_their_origin() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "[endpoints.creatomate_render]\nbase_delay = \"45s\"\n",
            )?;
            let err = Config::load(Some(Path::new("custom.toml"))).unwrap_err();
            assert_eq!(err.key(), "endpoints.creatomate_render.base_delay");
            jail.create_file(
                "typo.toml",
                "[endpoints.creatomate_render]\nmax_retries = \"x\"\n",
            )?;
            let err = Config::load(Some(Path::new("typo.toml"))).unwrap_err();
            assert_eq!(err.key(), "endpoints.creatomate_render.max_retries");
            assert!(err.to_string().contains("typo.toml"), "{err}");
            jail.set_env("ENCORE_SERVICES__SUNO__RATE_LIMIT__PER", "soon");
            let err = Config::load(None).unwrap_err();
            assert_eq!(err.key(), "services.suno.rate_limit.per");
            assert!(
                err.to_string()
                    .contains("ENCORE_SERVICES__SUNO__RATE_LIMIT__PER"),
                "{err}"
            );
            jail.set_env("ENCORE_SERVICES__SUNO__RATE_LIMIT__PER", "10s");
            jail.set_env("ENCORE_SERVICES__SUNO__BREAKER__FAILURE_RATIO", "2");
            let err = Config::load(None).unwrap_err();
            assert_eq!(err.key(), "services.suno.breaker.failure_ratio");
            jail.set_env("ENCORE_SERVICES__SUNO__BREAKER__FAILURE_RATIO", "0.5");
            jail.set_env("ENCORE_ENDPOINTS__SUNO_STATUS__DEADLINE", "soon");
            let err = Config::load(None).unwrap_err();
            assert_eq!(err.key(), "endpoints.suno_status.deadline");
            assert!(
                err.to_string()
                    .contains("ENCORE_ENDPOINTS__SUNO_STATUS__DEADLINE"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn single_underscore_variables_are_refused_with_a_suggestion() {
        let names = [
            "ENCORE_LOG",
            "PATH",
            "ENCORE_SUNO__MODEL",
            "ENCORE_OPENAI_BASE_URL",
        ];
        let err = check_env_names(names.iter().map(|s| (*s).to_owned()), &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("did you mean ENCORE_OPENAI__BASE_URL?"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("environment variable ENCORE_OPENAI_BASE_URL")
        );
        let err = check_env_names(
            std::iter::once("ENCORE_SERVICES_SUNO__RATE_LIMIT__REQUESTS".to_owned()),
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("did you mean ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS?"),
            "{err}"
        );
        check_env_names(
            [
                "ENCORE_LOG",
                "ENCORE_RETRIES",
                "ENCORE_SERVICES__SUNO__BUDGET__ENABLED",
            ]
            .iter()
            .map(|s| (*s).to_owned()),
            &[],
        )
        .unwrap();
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns its own error"
    )]
    fn registered_sections_are_known_extracted_and_name_their_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "encore.toml",
                "retries = false\n[pipeline]\nname = \"a\"\n[pipeline.poll]\ninterval = \"2s\"\n",
            )?;
            // Unregistered, the table is an unknown key of the clients' configuration.
            let err = Loader::new().load().unwrap_err();
            assert_eq!(err.key(), "pipeline");
            assert!(err.to_string().contains("unknown key"), "{err}");
            // Registered, it is the section's.
            let loaded = Loader::new().section("pipeline").load().unwrap();
            assert!(!loaded.config().retries);
            assert_eq!(loaded.file(), Some(Path::new("encore.toml")));
            let extra: Extra = loaded.section("pipeline").unwrap();
            assert_eq!(extra.poll.interval, Duration::from_secs(2));
            assert_eq!(extra.name, "a");
            // Variables reach it, and win over the file.
            jail.set_env("ENCORE_PIPELINE__POLL__INTERVAL", "5s");
            let loaded = Loader::new().section("pipeline").load().unwrap();
            let extra: Extra = loaded.section("pipeline").unwrap();
            assert_eq!(extra.poll.interval, Duration::from_secs(5));
            // Its errors name the full key and the variable.
            jail.set_env("ENCORE_PIPELINE__POLL__INTERVAL", "soon");
            let loaded = Loader::new().section("pipeline").load().unwrap();
            let err = loaded.section::<Extra>("pipeline").unwrap_err();
            assert_eq!(err.key(), "pipeline.poll.interval");
            assert!(
                err.to_string().contains("ENCORE_PIPELINE__POLL__INTERVAL"),
                "{err}"
            );
            jail.set_env("ENCORE_PIPELINE__POLL__INTERVAL", "1s");
            jail.set_env("ENCORE_PIPELINE__POLL__INTERVL", "1s");
            let err = Loader::new()
                .section("pipeline")
                .load()
                .unwrap()
                .section::<Extra>("pipeline")
                .unwrap_err();
            assert_eq!(err.key(), "pipeline.poll.intervl");
            assert!(err.to_string().contains("unknown key"), "{err}");
            // A single `_` after a registered name is refused like the clients' own.
            jail.set_env("ENCORE_PIPELINE_NAME", "b");
            let err = Loader::new().section("pipeline").load().unwrap_err();
            assert!(
                err.to_string()
                    .contains("did you mean ENCORE_PIPELINE__NAME?"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns its own error"
    )]
    fn sections_must_be_registered_and_not_the_clients_own() {
        figment::Jail::expect_with(|_jail| {
            let err = Loader::new().section("endpoints").load().unwrap_err();
            assert_eq!(err.key(), "endpoints");
            let loaded = Loader::new().load().unwrap();
            let err = loaded.section::<Extra>("pipeline").unwrap_err();
            assert!(
                err.to_string().contains("not a registered section"),
                "{err}"
            );
            // A registered section the file does not hold gives its defaults.
            let loaded = Loader::new().section("serve").load().unwrap();
            assert_eq!(loaded.section::<Extra>("serve").unwrap(), Extra::default());
            Ok(())
        });
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns its own error"
    )]
    fn the_services_tables_are_read_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS", "abc");
            let err = Loader::new().load().unwrap_err();
            assert_eq!(err.key(), "services.suno.rate_limit.requests");
            assert!(
                err.to_string()
                    .contains("environment variable ENCORE_SERVICES__SUNO__RATE_LIMIT__REQUESTS"),
                "{err}"
            );
            Ok(())
        });
    }
}
