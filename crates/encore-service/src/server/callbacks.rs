//! Provider callbacks as a running job sees them: its callback addresses, a wake-up when a
//! callback for one of its steps arrives (received by this process, or by another worker and
//! seen in the store), and the external ids callbacks have named.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_pipeline::job::{Millis, now_millis};
use encore_pipeline::{CallbackAddress, CallbackFuture, Callbacks, JournalError, StepName};
use encore_store::{JobId, Store};
use tokio::sync::Notify;

use super::token::CallbackSecret;

/// The path segment of a billed step's hook.
pub(crate) fn hook_segment(step: StepName) -> &'static str {
    match step {
        StepName::VideoSubmit => "creatomate",
        _ => "suno",
    }
}

/// What waits for a callback: a job's step.
type Waiting = HashMap<(JobId, StepName), Arc<Notify>>;

/// Wake-ups for steps waiting for callbacks, by (job, step).
#[derive(Debug, Clone, Default)]
pub(crate) struct Hub {
    waiting: Arc<Mutex<Waiting>>,
}

impl Hub {
    fn entry(&self, job: JobId, step: StepName) -> Arc<Notify> {
        let mut waiting = self.waiting.lock().expect("hub lock");
        Arc::clone(waiting.entry((job, step)).or_default())
    }

    /// Completes on the next [`notify`](Self::notify) for (job, step) after this call.
    pub(crate) fn arrival(
        &self,
        job: JobId,
        step: StepName,
    ) -> tokio::sync::futures::OwnedNotified {
        // Made now (not when first polled), so that a notification between this call and the
        // first poll is not missed.
        self.entry(job, step).notified_owned()
    }

    /// Wakes whatever waits for (job, step).
    pub(crate) fn notify(&self, job: JobId, step: StepName) {
        let notify = self
            .waiting
            .lock()
            .expect("hub lock")
            .get(&(job, step))
            .cloned();
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// Forgets a finished job's entries.
    pub(crate) fn forget(&self, job: JobId) {
        self.waiting
            .lock()
            .expect("hub lock")
            .retain(|(j, _), _| *j != job);
    }
}

/// Follows the callbacks every worker of the store receives and wakes this process's waiting
/// steps; runs until dropped.
pub(crate) async fn follow_callbacks(store: Store, hub: Hub, every: Duration) {
    let mut after: Millis = now_millis() - 1_000;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.callbacks_received_after(after, 500).await {
            Ok(callbacks) => {
                for callback in callbacks {
                    after = after.max(callback.received_at);
                    hub.notify(callback.job_id, callback.step);
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not read recent callbacks"),
        }
    }
}

/// The callbacks of one job, as its pipeline uses them.
#[derive(Debug)]
pub(crate) struct JobCallbacks {
    pub(crate) job: JobId,
    pub(crate) store: Store,
    pub(crate) hub: Hub,
    pub(crate) public_url: String,
    pub(crate) secret: CallbackSecret,
    pub(crate) window: Duration,
}

/// The callback address of `step` of `job`.
pub(crate) fn address(
    public_url: &str,
    secret: &CallbackSecret,
    job: JobId,
    step: StepName,
) -> CallbackAddress {
    let token = secret.token(job, step);
    CallbackAddress {
        url: format!(
            "{}/hooks/{}/{job}/{token}",
            public_url.trim_end_matches('/'),
            hook_segment(step)
        ),
        token,
    }
}

impl Callbacks for JobCallbacks {
    fn address(&self, step: StepName) -> CallbackAddress {
        address(&self.public_url, &self.secret, self.job, step)
    }

    fn arrival(&self, step: StepName) -> CallbackFuture<'_, ()> {
        Box::pin(self.hub.arrival(self.job, step))
    }

    fn candidates(&self, step: StepName) -> CallbackFuture<'_, Result<Vec<String>, JournalError>> {
        Box::pin(async move {
            let callbacks = self
                .store
                .unconsumed_callbacks(self.job)
                .await
                .map_err(|e| JournalError::new("could not read the job's callbacks", e))?;
            let mut ids: Vec<String> = Vec::new();
            for callback in callbacks.into_iter().filter(|c| c.step == step) {
                if !ids.contains(&callback.external_id) {
                    ids.push(callback.external_id);
                }
            }
            Ok(ids)
        })
    }

    fn reconcile_window(&self) -> Duration {
        self.window
    }
}
