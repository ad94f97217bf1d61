//! The job store of `encore run` and `encore jobs`: where it is, its settings (`[store]`), and
//! opening it.
//!
//! Every `encore run` is a job journaled in the store, so that `encore run --resume JOB`
//! continues it from its last stored step. The store is an SQLite file in the platform's data
//! directory unless `--db` or `store.path` names another file (or a `postgres://` URL, e.g. to
//! look at an `encore serve` cluster's jobs).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use encore_store::Store;
use serde::{Deserialize, Serialize};

use crate::args::StoreArgs;
use crate::error::CliError;

/// The file name of the job store in the data directory.
pub const DB_FILE: &str = "jobs.db";

/// Default for [`StoreSettings::lease_ttl`]: 30 s. `encore run` renews its lease every third of
/// it; a run killed on this host is taken over at once (its process is gone), so the lifetime
/// only bounds the wait for a runner whose liveness cannot be checked (another host).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// The shortest `store.lease_ttl`: renewals every 333 ms, still far above a write's time.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(1);
/// The longest `store.lease_ttl`.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3600);

/// The `[store]` table.
///
/// # Defaults
///
/// | key | default | meaning |
/// |---|---|---|
/// | `path` | `""` | the job store: an SQLite file (or a `postgres://` URL); empty: `jobs.db` in the platform's data directory (`~/.local/share/encore` on Linux) |
/// | `lease_ttl` | `30s` | how long `encore run`'s claim on its job lasts unless renewed (renewed every third of it), 1 s to 1 h |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// The store's file or URL; empty for the default file.
    pub path: String,
    /// The lifetime of `encore run`'s lease on its job.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            path: String::new(),
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

impl StoreSettings {
    /// Refuses a lease lifetime outside 1 s to 1 h, naming the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.lease_ttl < MIN_LEASE_TTL || self.lease_ttl > MAX_LEASE_TTL {
            return Err((
                "lease_ttl",
                format!(
                    "{} is outside 1s to 1h",
                    humantime::format_duration(self.lease_ttl)
                ),
            ));
        }
        Ok(())
    }
}

/// The default store: `jobs.db` in the platform's data directory for encore
/// (`$XDG_DATA_HOME/encore` or `~/.local/share/encore` on Linux, `~/Library/Application
/// Support/encore` on macOS, `%APPDATA%\encore\data` on Windows).
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "encore").map(|dirs| dirs.data_dir().join(DB_FILE))
}

/// The store to use: `--db`, else `store.path`, else the default file.
pub fn target(args: &StoreArgs, settings: &StoreSettings) -> Result<String, CliError> {
    if let Some(db) = &args.db {
        return Ok(db.clone());
    }
    if !settings.path.trim().is_empty() {
        return Ok(settings.path.trim().to_owned());
    }
    let path = default_path().ok_or_else(|| {
        CliError::bad_input(anyhow!(
            "no data directory for the job store (no home directory): give one with --db PATH or store.path"
        ))
    })?;
    path.into_os_string().into_string().map_err(|path| {
        CliError::bad_input(anyhow!(
            "the data directory {} is not valid UTF-8: give the job store with --db PATH",
            PathBuf::from(path).display()
        ))
    })
}

/// Whether `target` names a file (not a database URL).
fn is_file(target: &str) -> bool {
    !target.contains("://")
}

/// Opens (creating if needed) the store at `target`, for `encore run`.
pub async fn open(target: &str) -> Result<Store, CliError> {
    Store::open(target).await.map_err(CliError::from)
}

/// Opens the store at `target` for reading or resolving jobs: a missing file is refused
/// instead of created (a mistyped `--db` would otherwise show an empty list).
pub async fn open_existing(target: &str) -> Result<Store, CliError> {
    if is_file(target) && !std::path::Path::new(target).exists() {
        return Err(CliError::bad_input(anyhow!(
            "no job store at {target}: no job was run with it (`encore run` creates it; --db or store.path names another)"
        )));
    }
    open(target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_defaults_are_the_defaults() {
        let defaults = StoreSettings::default();
        assert_eq!(defaults.lease_ttl, DEFAULT_LEASE_TTL);
        assert!(defaults.path.is_empty());
        let source = include_str!("store.rs");
        let rows: Vec<Vec<&str>> = source
            .lines()
            .skip_while(|l| *l != "/// # Defaults")
            .take_while(|l| l.starts_with("///"))
            .filter(|l| l.starts_with("/// | `"))
            .map(|l| l.split('|').map(str::trim).collect())
            .collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0][1], "`path`");
        assert_eq!(rows[0][2], format!("`{:?}`", defaults.path));
        assert_eq!(rows[1][1], "`lease_ttl`");
        assert_eq!(
            rows[1][2],
            format!("`{}`", humantime::format_duration(defaults.lease_ttl))
        );
        assert!(defaults.validate().is_ok());
    }

    #[test]
    fn lease_lifetimes_outside_the_range_are_refused() {
        for (ttl, ok) in [
            (Duration::from_millis(999), false),
            (MIN_LEASE_TTL, true),
            (MAX_LEASE_TTL, true),
            (MAX_LEASE_TTL + Duration::from_secs(1), false),
        ] {
            let settings = StoreSettings {
                lease_ttl: ttl,
                ..StoreSettings::default()
            };
            assert_eq!(settings.validate().is_ok(), ok, "{ttl:?}");
        }
    }

    #[test]
    fn db_wins_over_the_setting_which_wins_over_the_default() {
        let settings = StoreSettings {
            path: "/srv/encore/jobs.db".into(),
            ..StoreSettings::default()
        };
        let flag = StoreArgs {
            db: Some("/tmp/other.db".into()),
        };
        assert_eq!(target(&flag, &settings).unwrap(), "/tmp/other.db");
        let none = StoreArgs { db: None };
        assert_eq!(target(&none, &settings).unwrap(), "/srv/encore/jobs.db");
        let default = target(&none, &StoreSettings::default()).unwrap();
        assert!(default.ends_with(DB_FILE), "{default}");
    }
}
