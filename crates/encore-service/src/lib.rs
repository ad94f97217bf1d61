//! encore as a service (`shared/design/service.md`): the job runner that `encore run` and
//! every `encore serve` worker share, on top of the durable job store.
//!
//! A job is a pipeline run persisted in [`encore_store`]: its steps are journaled as they
//! happen, so a crash, a Ctrl-C or a lost answer never throws away what was paid for. The
//! [`runner`] runs one job under a lease and stores how it ended; several workers on one
//! PostgreSQL store share the providers' per-account quotas through it ([`quota`]).
#![warn(missing_docs)]

mod input;
pub mod quota;
pub mod runner;
pub mod server;
mod steadfast;

pub use input::JobInput;
pub use quota::{StoreRateLimiter, share_quotas};
pub use runner::{Ended, Finished, JobRun, run_job};
