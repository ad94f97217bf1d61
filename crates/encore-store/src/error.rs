//! The store's error: a kind that callers branch on, a message that says what was being done
//! and to which database, and the database driver's error kept intact as the `source()`.

use std::fmt;
use std::io;
use std::time::Duration;

use sqlx::error::DatabaseError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, for callers that branch on it ([`Error::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The database cannot be reached: connection refused or lost, no connection within the
    /// acquire timeout, the server shutting down. Retryable; `/readyz` reports it.
    Unavailable,
    /// The SQLite file stayed locked by another writer for longer than the busy timeout (or
    /// PostgreSQL reported a lock or serialization conflict). Retryable.
    Busy,
    /// Another `encore serve` process holds the SQLite file's worker lock.
    WorkerLocked,
    /// This runner no longer holds the job's lease (it expired and another runner claimed the
    /// job, or the job was released, finished, cancelled or resolved): nothing was written.
    LeaseLost,
    /// The request contradicts what is stored: an idempotency key reused with another body, a
    /// job leased by another runner, a job whose status or step state does not allow the
    /// operation. The message says why.
    Conflict,
    /// No such job, step or callback.
    NotFound,
    /// The file or database is not one this encore can use: not an SQLite file, corrupt, another
    /// application's tables, migrations of another application, or a schema written by a newer
    /// encore. Nothing was changed.
    Incompatible,
    /// The database cannot be written: disk full, read-only file or file system, an I/O error.
    /// The transaction was rolled back: nothing was half-written.
    Storage,
    /// An argument was refused before anything was done (a quota of zero requests, a resubmit
    /// without accepting to pay twice, a database target that is neither a PostgreSQL URL nor a
    /// file path).
    Invalid,
    /// Any other database error (a bug in encore or an unexpected server state).
    Database,
}

impl ErrorKind {
    /// A short lowercase name: `unavailable`, `busy`, `worker_locked`, `lease_lost`,
    /// `conflict`, `not_found`, `incompatible`, `storage`, `invalid` or `database`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Busy => "busy",
            ErrorKind::WorkerLocked => "worker_locked",
            ErrorKind::LeaseLost => "lease_lost",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Incompatible => "incompatible",
            ErrorKind::Storage => "storage",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Database => "database",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A failed store operation.
///
/// The message is a lowercase fragment naming the operation and the database (a PostgreSQL URL
/// without its password, or the SQLite file's path); the driver's error, when there is one, is
/// the [`source`](std::error::Error::source).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
            }),
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Whether the same operation may succeed later unchanged (the database was unavailable or
    /// busy).
    pub fn is_retryable(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Unavailable | ErrorKind::Busy)
    }

    /// Whether the database could not be reached.
    pub fn is_unavailable(&self) -> bool {
        self.inner.kind == ErrorKind::Unavailable
    }

    /// Whether this runner's lease on the job is gone (nothing was written).
    pub fn is_lease_lost(&self) -> bool {
        self.inner.kind == ErrorKind::LeaseLost
    }

    /// Whether the job, step or callback does not exist.
    pub fn is_not_found(&self) -> bool {
        self.inner.kind == ErrorKind::NotFound
    }

    /// Whether the request contradicts what is stored.
    pub fn is_conflict(&self) -> bool {
        self.inner.kind == ErrorKind::Conflict
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An operation that got no answer within [`StoreOptions::query_timeout`](crate::StoreOptions):
/// the driver's I/O error of kind [`io::ErrorKind::TimedOut`] around this, so that the expiry
/// and the operation's own errors are one type, [`classify`] reads it as unavailable, and a
/// walk down the source chain finds a timeout.
#[derive(Debug)]
pub(crate) struct NoAnswer {
    within: Duration,
}

impl NoAnswer {
    pub(crate) fn within(within: Duration) -> NoAnswer {
        NoAnswer { within }
    }

    /// The expiry inside `err`, if it is one.
    pub(crate) fn find(err: &sqlx::Error) -> Option<&NoAnswer> {
        match err {
            sqlx::Error::Io(io) => io.get_ref()?.downcast_ref(),
            _ => None,
        }
    }
}

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the database did not answer within {}",
            humantime::format_duration(self.within)
        )
    }
}

impl std::error::Error for NoAnswer {}

impl From<NoAnswer> for sqlx::Error {
    fn from(no_answer: NoAnswer) -> sqlx::Error {
        sqlx::Error::Io(io::Error::new(io::ErrorKind::TimedOut, no_answer))
    }
}

/// What a database error means for the caller: the kind, and for storage and lock conditions
/// the condition in words.
///
/// Only the driver's classification is read (error codes, connection failures); the error
/// itself is kept whole as the source.
pub(crate) fn classify(err: &sqlx::Error) -> (ErrorKind, Option<&'static str>) {
    match err {
        // The connection broke or could not be made: the server is down, restarting, or cut
        // off. Retrying later can work.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => (ErrorKind::Unavailable, Some("database unavailable")),
        sqlx::Error::Database(db) => {
            if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                classify_sqlite_code(sqlite.code().and_then(|c| c.parse::<i32>().ok()))
            } else if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                classify_sqlstate(pg.code())
            } else {
                (ErrorKind::Database, None)
            }
        }
        _ => (ErrorKind::Database, None),
    }
}

/// SQLite's primary result codes (the low byte of the extended code).
fn classify_sqlite_code(code: Option<i32>) -> (ErrorKind, Option<&'static str>) {
    const SQLITE_PERM: i32 = 3;
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    const SQLITE_READONLY: i32 = 8;
    const SQLITE_IOERR: i32 = 10;
    const SQLITE_CORRUPT: i32 = 11;
    const SQLITE_FULL: i32 = 13;
    const SQLITE_CANTOPEN: i32 = 14;
    const SQLITE_NOTADB: i32 = 26;
    match code.map(|c| c & 0xff) {
        // Another connection held the write lock for longer than the busy timeout.
        Some(SQLITE_BUSY | SQLITE_LOCKED) => (
            ErrorKind::Busy,
            Some("locked by another writer for longer than the busy timeout"),
        ),
        // The file system or the disk refused the write; the transaction was rolled back.
        Some(SQLITE_FULL) => (ErrorKind::Storage, Some("disk full, nothing was written")),
        Some(SQLITE_READONLY | SQLITE_PERM) => (
            ErrorKind::Storage,
            Some("read-only (file or file system), nothing was written"),
        ),
        Some(SQLITE_IOERR) => (ErrorKind::Storage, Some("i/o error, nothing was written")),
        Some(SQLITE_CANTOPEN) => (
            ErrorKind::Storage,
            Some("cannot be opened (is its directory read-only?)"),
        ),
        // The bytes are not an SQLite database, or its pages are damaged.
        Some(SQLITE_NOTADB) => (ErrorKind::Incompatible, Some("not an SQLite database")),
        Some(SQLITE_CORRUPT) => (ErrorKind::Incompatible, Some("corrupt SQLite database")),
        _ => (ErrorKind::Database, None),
    }
}

/// PostgreSQL's SQLSTATE classes that mean something to a caller.
fn classify_sqlstate(code: &str) -> (ErrorKind, Option<&'static str>) {
    match code {
        // 08: connection exception; 57P01..57P03: the server is shutting down or starting;
        // 53300: too many connections. Another try later can work.
        c if c.starts_with("08") => (ErrorKind::Unavailable, Some("database unavailable")),
        "57P01" | "57P02" | "57P03" | "53300" => {
            (ErrorKind::Unavailable, Some("database unavailable"))
        }
        // Serialization failure, deadlock, lock not available: the transaction lost a race and
        // was rolled back.
        "40001" | "40P01" | "55P03" => (ErrorKind::Busy, Some("lost a lock race, rolled back")),
        // Disk full, out of memory on the server, read-only transaction (a standby).
        "53100" => (ErrorKind::Storage, Some("disk full, nothing was written")),
        "25006" => (
            ErrorKind::Storage,
            Some("read-only (a standby server?), nothing was written"),
        ),
        _ => (ErrorKind::Database, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn the_source_chain_is_intact() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::new(ErrorKind::Unavailable, "opening: database unavailable")
            .with_source(sqlx::Error::Io(io));
        let sqlx_err = err.source().expect("sqlx error");
        assert!(sqlx_err.downcast_ref::<sqlx::Error>().is_some());
        let io = sqlx_err.source().expect("io error");
        assert_eq!(
            io.downcast_ref::<std::io::Error>().unwrap().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        assert_eq!(err.to_string(), "opening: database unavailable");
        assert!(err.is_retryable() && err.is_unavailable());
    }

    #[test]
    fn the_error_is_small_and_sendable() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn an_operation_without_an_answer_is_unavailable_and_a_timeout() {
        let err: sqlx::Error = NoAnswer::within(Duration::from_millis(1500)).into();
        assert_eq!(classify(&err).0, ErrorKind::Unavailable);
        assert_eq!(
            NoAnswer::find(&err).unwrap().to_string(),
            "the database did not answer within 1s 500ms"
        );
        let err = Error::new(ErrorKind::Unavailable, "claiming a job").with_source(err);
        let io = err.source().unwrap().source().unwrap();
        assert_eq!(
            io.downcast_ref::<io::Error>().unwrap().kind(),
            io::ErrorKind::TimedOut
        );
        let refused = sqlx::Error::Io(io::ErrorKind::ConnectionRefused.into());
        assert!(NoAnswer::find(&refused).is_none());
    }

    #[test]
    fn connection_failures_are_unavailable_and_lock_waits_busy() {
        let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(classify(&refused).0, ErrorKind::Unavailable);
        assert_eq!(
            classify(&sqlx::Error::PoolTimedOut).0,
            ErrorKind::Unavailable
        );
        assert_eq!(classify_sqlite_code(Some(5)).0, ErrorKind::Busy);
        // SQLITE_BUSY_SNAPSHOT (517) is an extended code of SQLITE_BUSY.
        assert_eq!(classify_sqlite_code(Some(517)).0, ErrorKind::Busy);
        assert_eq!(classify_sqlite_code(Some(13)).0, ErrorKind::Storage);
        assert_eq!(classify_sqlite_code(Some(26)).0, ErrorKind::Incompatible);
        assert_eq!(classify_sqlstate("08006").0, ErrorKind::Unavailable);
        assert_eq!(classify_sqlstate("57P01").0, ErrorKind::Unavailable);
        assert_eq!(classify_sqlstate("40P01").0, ErrorKind::Busy);
        assert_eq!(classify_sqlstate("23505").0, ErrorKind::Database);
        assert_eq!(
            classify(&sqlx::Error::RowNotFound).0,
            ErrorKind::Database,
            "a missing row is the caller's to name"
        );
    }
}
