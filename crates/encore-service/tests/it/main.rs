//! The job runner against a real SQLite store and the simulator over real loopback HTTP (real
//! time at a fast simulator time scale: the store's I/O must not meet paused time).

mod hostile;
mod outage;
mod page;
#[allow(
    dead_code,
    reason = "shared with the store's tests; this binary uses a part"
)]
#[path = "../../../encore-store/testing/pg.rs"]
mod pg;
mod quota;
mod runner;
mod server;
