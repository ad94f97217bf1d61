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
/// Default for [`StoreOptions::query_timeout`]: 15 s for a whole operation. Longer than
/// [`DEFAULT_ACQUIRE_TIMEOUT`] and [`DEFAULT_BUSY_TIMEOUT`], so that their clearer errors come
/// first, and than [`POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT`] (10 s), so that a write waiting for
/// a row lock that a stalled worker's transaction holds gets it when the server ends that
/// session; shorter than half the default lease (30 s, renewed every 10 s), so that a renewal
/// that gets no answer is asked again on a new connection before the lease expires. Encore's
/// operations take milliseconds: only a database that does not answer at all reaches it.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(15);
/// PostgreSQL's `idle_in_transaction_session_timeout` for encore's connections (unless the URL's
/// `options` set one): 10 s. A worker that stalls in the middle of a transaction (SIGSTOP, a
/// partition) would hold its job's row lock, and no other worker could take the job over when
/// its lease expires; the server ends such a session instead (encore's transactions last
/// milliseconds), and the stalled worker's late commit fails.
pub const POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT: &str = "10s";
