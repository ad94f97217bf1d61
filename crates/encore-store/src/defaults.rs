//! The defaults of [`StoreOptions`], each with its reason.

use std::time::Duration;

#[cfg(doc)]
use crate::{ErrorKind, StoreOptions};

/// Default for [`StoreOptions::busy_timeout`]: 5 s, long enough for another process's write
/// transaction (milliseconds) to finish, short enough that a stuck writer is reported.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`StoreOptions::max_connections`]: 8, enough for a worker's claim loop, lease
/// renewals, API reads and quota takes at once without crowding a shared PostgreSQL.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// Default for [`StoreOptions::acquire_timeout`]: 5 s to connect (or get a pooled connection)
/// before the operation fails as [`ErrorKind::Unavailable`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL's `idle_in_transaction_session_timeout` for encore's connections (unless the URL's
/// `options` set one): 10 s. A worker that stalls in the middle of a transaction (SIGSTOP, a
/// partition) would hold its job's row lock, and no other worker could take the job over when
/// its lease expires; the server ends such a session instead (encore's transactions last
/// milliseconds), and the stalled worker's late commit fails.
pub const POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT: &str = "10s";
