//! What the runner of a job gives the pipeline besides the input: where the job journals, how
//! provider callbacks reach it, and when to stop.
//!
//! `encore run` gives a journal (the job store) and a stop signal (Ctrl-C); `encore serve` also
//! gives [`Callbacks`], so that a lost answer of a billed call is resolved by the provider's
//! callback instead of being reported, and waits are woken by callbacks instead of the next
//! poll.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

use crate::job::{Journal, JournalError, StepName};

/// The address a provider reports to for one billed step of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAddress {
    /// The full URL (Suno `callBackUrl`, Creatomate `webhook_url`).
    pub url: String,
    /// The token in it that names the job and step (stored with the step before the request is
    /// sent, as its correlation token).
    pub token: String,
}

/// A boxed future, as [`Callbacks`] returns them.
pub type CallbackFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Provider callbacks for one job, as the server receives them.
///
/// The pipeline never trusts a callback by itself: before it adopts an external id a callback
/// named, it reads the task or render from the provider (a free call) and checks that it is the
/// one this job's request created (Suno: the task's `callBackUrl` is this step's address;
/// Creatomate: the render's `metadata` is the one this job sent).
pub trait Callbacks: Send + Sync {
    /// Where the provider should report on `step` (a billed step) of this job.
    fn address(&self, step: StepName) -> CallbackAddress;

    /// Completes when a callback for `step` has arrived since this future was made (a step that
    /// waits for the provider then looks at once instead of at its next poll). It may also
    /// complete spuriously; the pipeline then just looks again.
    fn arrival(&self, step: StepName) -> CallbackFuture<'_, ()>;

    /// The external ids that callbacks for `step` have named so far, newest first.
    fn candidates(&self, step: StepName) -> CallbackFuture<'_, Result<Vec<String>, JournalError>>;

    /// How long a billed step whose outcome is unknown waits for a callback before the job
    /// needs an operator's attention.
    fn reconcile_window(&self) -> Duration;
}

/// Tells a running pipeline to stop at the next safe point: between steps, or during a wait or a
/// free call. A billed request already sent is never abandoned: its answer is awaited and stored
/// first, so that it is not lost.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Option<watch::Receiver<bool>>);

impl StopSignal {
    /// A signal that never fires.
    pub const fn never() -> StopSignal {
        StopSignal(None)
    }

    /// A signal that fires when `receiver` sees `true`.
    pub fn new(receiver: watch::Receiver<bool>) -> StopSignal {
        StopSignal(Some(receiver))
    }

    /// Whether it has fired.
    pub fn is_stopped(&self) -> bool {
        self.0.as_ref().is_some_and(|r| *r.borrow())
    }

    /// Completes when it fires (never, for [`StopSignal::never`] or when its sender is gone
    /// without firing).
    pub async fn stopped(&self) {
        let Some(receiver) = &self.0 else {
            return std::future::pending().await;
        };
        let mut receiver = receiver.clone();
        if receiver.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One job run's surroundings: its id, its journal, its callbacks (if any) and its stop signal.
#[derive(Clone, Copy)]
pub struct JobContext<'a> {
    /// The job's id, named in the render's metadata and in errors.
    pub job_id: &'a str,
    /// Where the steps are stored.
    pub journal: &'a dyn Journal,
    /// Provider callbacks for this job (`encore serve` with a public URL), or none.
    pub callbacks: Option<&'a dyn Callbacks>,
    /// When to stop.
    pub stop: &'a StopSignal,
}

impl std::fmt::Debug for JobContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("job_id", &self.job_id)
            .field("callbacks", &self.callbacks.is_some())
            .field("stop", &self.stop.is_stopped())
            .finish_non_exhaustive()
    }
}
