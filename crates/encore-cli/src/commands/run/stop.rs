//! Running a job until it ends, with Ctrl-C: the first one stops the job at its next safe
//! point (a billed request already sent is awaited and its answer stored first) and queues it
//! again; the second exits at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use encore_pipeline::{Event, Pipeline, StepName, StepState, StopSignal};
use encore_service::{Finished, JobRun, run_job};
use encore_store::Lease;
use tokio::sync::watch;

use super::in_flight_name;
use crate::error::{CliError, store_exit};
use crate::exit::Exit;
use crate::interrupt::Interrupts;
use crate::progress::Progress;

/// Runs the job `lease` holds with `pipeline` (renewing the lease every third of `ttl`) until
/// it ends, or until a second Ctrl-C.
pub async fn run_until_done(
    lease: Lease,
    pipeline: Pipeline,
    ttl: Duration,
    progress: &Progress,
) -> Result<Finished, CliError> {
    let id = lease.job_id();
    let in_flight = Arc::new(Mutex::new(None::<StepName>));
    let pipeline = {
        let in_flight = in_flight.clone();
        pipeline.on_event(move |event| track_billed(&in_flight, event))
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut interrupts = Interrupts::listen()?;
    let run = run_job(JobRun {
        lease,
        pipeline,
        callbacks: None,
        stop: StopSignal::new(stop_rx),
        lease_ttl: ttl,
    });
    tokio::pin!(run);
    let mut stopping = false;
    loop {
        tokio::select! {
            finished = &mut run => {
                return finished.map_err(|e| {
                    let exit = store_exit(&e);
                    CliError::new(exit, anyhow::Error::new(e).context(format!("job {id}: how it ended could not be stored")))
                        .with_note(format!("its last stored step stays; `encore run --resume {id}` continues from there"))
                });
            }
            () = interrupts.next() => {
                let billed = *in_flight.lock().expect("in-flight lock");
                if stopping {
                    let abandoned = billed.map_or_else(String::new, |step| {
                        format!("; the {} in flight was abandoned, its outcome is unknown", in_flight_name(step))
                    });
                    return Err(CliError::new(
                        Exit::Interrupted,
                        anyhow::anyhow!("interrupted again: job {id} stopped at once{abandoned}"),
                    )
                    .with_note(format!(
                        "its last stored step stays; `encore run --resume {id}` continues it (at once: this process is gone)"
                    )));
                }
                stopping = true;
                let _ = stop_tx.send(true);
                progress.line(&match billed {
                    Some(step) => format!(
                        "stopping after the {} in flight is stored; Ctrl-C again to exit now",
                        in_flight_name(step)
                    ),
                    None => "stopping at the next safe point; Ctrl-C again to exit now".to_owned(),
                });
            }
        }
    }
}

/// Keeps the billed step whose request may be on the wire, from the journal's step events.
fn track_billed(in_flight: &Mutex<Option<StepName>>, event: &Event) {
    if let Event::StepChanged { step, state, .. } = event
        && step.is_billed()
    {
        let mut current = in_flight.lock().expect("in-flight lock");
        if *state == StepState::InFlight {
            *current = Some(*step);
        } else if *current == Some(*step) {
            *current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(step: StepName, state: StepState) -> Event {
        Event::StepChanged {
            step,
            state,
            attempt: 1,
            external_id: None,
            error: None,
        }
    }

    #[test]
    fn only_a_billed_step_in_flight_is_tracked() {
        let in_flight = Mutex::new(None);
        track_billed(&in_flight, &changed(StepName::Lyrics, StepState::InFlight));
        assert_eq!(*in_flight.lock().unwrap(), None);
        track_billed(
            &in_flight,
            &changed(StepName::SongSubmit, StepState::InFlight),
        );
        assert_eq!(*in_flight.lock().unwrap(), Some(StepName::SongSubmit));
        track_billed(&in_flight, &changed(StepName::SongSubmit, StepState::Done));
        assert_eq!(*in_flight.lock().unwrap(), None);
        track_billed(
            &in_flight,
            &changed(StepName::VideoSubmit, StepState::InFlight),
        );
        track_billed(
            &in_flight,
            &changed(StepName::VideoSubmit, StepState::Unknown),
        );
        assert_eq!(*in_flight.lock().unwrap(), None);
    }
}
