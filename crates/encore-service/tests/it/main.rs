//! The job runner against a real SQLite store and the simulator over real loopback HTTP (real
//! time at a fast simulator time scale: the store's I/O must not meet paused time).

mod hostile;
mod outage;
mod page;
mod pg;
mod quota;
mod runner;
mod server;
