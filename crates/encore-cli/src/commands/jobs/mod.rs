//! `encore jobs list|show|resolve|purge`: the jobs of the job store, the operator's resolution
//! of a billed step whose outcome is unknown, and retention.

mod list;
mod purge;
mod resolve;
mod show;

use clap::{Args, Subcommand};
use encore_store::Store;

use crate::args::{ConfigArgs, StoreArgs};
use crate::error::CliError;
use crate::setup::load_settings;
use crate::store;

/// `encore jobs …`
#[derive(Debug, Subcommand)]
pub enum JobsAction {
    /// List jobs, newest first.
    List(list::ListArgs),
    /// Show a job: its steps (state, attempts, external ids, timings, errors), its result, and
    /// what it needs when it needs attention.
    Show(show::ShowArgs),
    /// Resolve a billed step whose outcome is unknown (the request may have been paid for but
    /// its answer was lost): adopt what the provider created, or resubmit knowingly.
    Resolve(resolve::ResolveArgs),
    /// Remove old finished jobs (succeeded and cancelled; failed with --include-failed) with
    /// their steps, events and callbacks. Jobs that need attention, are queued or running stay.
    Purge(purge::PurgeArgs),
}

/// The options every `encore jobs` command takes: the store and the configuration.
#[derive(Debug, Args, Clone, Default)]
pub struct JobsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

impl JobsArgs {
    /// The job store named by `--db`, `store.path` or the default; a missing file is refused.
    async fn open(&self) -> Result<Store, CliError> {
        let settings = load_settings(&self.config)?;
        store::open_existing(&store::target(&self.store, &settings.store)?).await
    }
}

/// Runs `action`.
pub async fn run(action: JobsAction) -> Result<(), CliError> {
    match action {
        JobsAction::List(args) => list::run(args).await,
        JobsAction::Show(args) => show::run(args).await,
        JobsAction::Resolve(args) => resolve::run(args).await,
        JobsAction::Purge(args) => purge::run(args).await,
    }
}

/// Reads job `id` with its steps; a job that does not exist is bad input naming the store.
async fn read(store: &Store, id: encore_store::JobId) -> Result<encore_store::JobDetail, CliError> {
    match store.get_job(id).await {
        Ok(detail) => Ok(detail),
        Err(e) if e.is_not_found() => Err(CliError::bad_input(anyhow::anyhow!(
            "no job {id} in {}",
            store.database()
        ))),
        Err(e) => Err(e.into()),
    }
}
