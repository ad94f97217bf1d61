//! The worker: claims queued jobs (at most `concurrency` at once), runs each under its lease,
//! and on shutdown stops claiming, lets running jobs reach a stored state within the grace
//! period, and releases what it holds.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use encore_pipeline::StopSignal;
use encore_store::Lease;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Shared;
use super::callbacks::JobCallbacks;
use crate::{Ended, JobRun, run_job};

/// Claims and runs jobs until shutdown; then waits for the running ones (up to the grace).
pub(crate) async fn run(shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(shared.config.concurrency));
    let mut running = JoinSet::new();
    let mut shutdown = shared.shutdown.subscribe();
    let mut backoff = Duration::from_millis(200);
    loop {
        while running.try_join_next().is_some() {}
        if *shutdown.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
            _ = shutdown.changed() => break,
        };
        match shared
            .store
            .claim_next(&shared.owner, shared.config.lease_ttl)
            .await
        {
            Ok(Some(lease)) => {
                shared.store_ok.store(true, Ordering::Relaxed);
                backoff = Duration::from_millis(200);
                let shared = Arc::clone(&shared);
                running.spawn(async move {
                    run_one(&shared, lease).await;
                    drop(permit);
                });
            }
            Ok(None) => {
                shared.store_ok.store(true, Ordering::Relaxed);
                drop(permit);
                tokio::select! {
                    () = tokio::time::sleep(shared.config.claim_interval) => {}
                    () = shared.new_job.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                drop(permit);
                if e.is_unavailable() || e.is_retryable() {
                    shared.store_ok.store(false, Ordering::Relaxed);
                }
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "could not claim a job");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    let grace = shared.config.shutdown_grace;
    tracing::info!(
        running = running.len(),
        grace_ms = grace.as_millis() as u64,
        "worker stopping"
    );
    let drained = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = running.len(),
            "shutdown grace over: leaving the rest to expire their leases"
        );
        running.abort_all();
    }
}

/// Runs one claimed job to its end, or to a stored state on shutdown.
async fn run_one(shared: &Shared, lease: Lease) {
    let job = lease.job_id();
    let pipeline = shared.pipeline().on_event(shared.metrics.step_timer());
    let callbacks = shared.public_url.as_ref().map(|public_url| JobCallbacks {
        job,
        store: shared.store.clone(),
        hub: shared.hub.clone(),
        public_url: public_url.clone(),
        secret: shared.secret.clone(),
        window: shared.config.reconcile_window,
    });
    let stop = StopSignal::new(shared.stop_jobs.subscribe());
    tracing::info!(job = %job, "job claimed");
    let finished = run_job(JobRun {
        lease,
        pipeline,
        callbacks: callbacks
            .as_ref()
            .map(|c| c as &dyn encore_pipeline::Callbacks),
        stop,
        lease_ttl: shared.config.lease_ttl,
    })
    .await;
    shared.hub.forget(job);
    match finished {
        // What this runner knew and could not store (a task id a billed request just returned)
        // is in the error: the runner that took the job over may need it.
        Ok(finished) if finished.ended == Ended::LeaseLost => tracing::warn!(
            job = %job,
            error = finished.report.error.as_ref().map(ToString::to_string),
            "job run ended: another runner holds the job now"
        ),
        Ok(finished) => tracing::info!(job = %job, ended = ?finished.ended, "job run ended"),
        Err(e) => tracing::error!(job = %job, error = %e, "could not store how the job ended"),
    }
}
