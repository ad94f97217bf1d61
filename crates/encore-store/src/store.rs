//! Opening a store: the target, the connection settings, the compatibility check and the
//! migrations, and the pool every operation uses.

use std::fmt;
use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::defaults::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_BUSY_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_QUERY_TIMEOUT,
    POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT,
};
use crate::error::{NoAnswer, classify};
use crate::schema;
use crate::target::Target;
use crate::{Error, ErrorKind};

/// How a [`Store`] connects.
///
/// # Defaults
///
/// | field | default | meaning |
/// |---|---|---|
/// | `busy_timeout` | 5 s ([`DEFAULT_BUSY_TIMEOUT`](crate::defaults::DEFAULT_BUSY_TIMEOUT)) | SQLite: how long a write waits for another process's write lock before [`ErrorKind::Busy`] |
/// | `max_connections` | 8 ([`DEFAULT_MAX_CONNECTIONS`](crate::defaults::DEFAULT_MAX_CONNECTIONS)) | connections in the pool |
/// | `acquire_timeout` | 5 s ([`DEFAULT_ACQUIRE_TIMEOUT`](crate::defaults::DEFAULT_ACQUIRE_TIMEOUT)) | how long an operation waits for a connection before [`ErrorKind::Unavailable`] |
/// | `query_timeout` | 15 s ([`DEFAULT_QUERY_TIMEOUT`](crate::defaults::DEFAULT_QUERY_TIMEOUT)) | the bound on a whole operation (waiting for a connection, its queries, the commit) before [`ErrorKind::Unavailable`] |
///
/// `query_timeout` must be longer than `acquire_timeout` and, on SQLite, than `busy_timeout`,
/// so that their clearer errors come first ([`Store::open_with`] refuses other values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// SQLite: how long a write waits for the file's write lock.
    pub busy_timeout: Duration,
    /// Connections in the pool (at least 1).
    pub max_connections: u32,
    /// How long an operation waits to connect or for a free connection.
    pub acquire_timeout: Duration,
    /// How long an operation may take in all before it fails as [`ErrorKind::Unavailable`]
    /// ("claiming a job: …: the database did not answer within 15s"). A database cut off
    /// without a reset (a partition that drops packets, a host that died) would otherwise keep
    /// a query waiting until the kernel gives up on the connection, many minutes later; neither
    /// the pool's acquire timeout nor PostgreSQL's `statement_timeout` covers a query whose
    /// packets never arrive. Also bounds opening (the migrations) and the test of a connection
    /// returned to the pool.
    pub query_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
        }
    }
}

impl StoreOptions {
    /// Refuses options whose bounds contradict each other (before anything is opened).
    fn validate(&self, target: &Target) -> Result<(), Error> {
        let invalid = |message: String| Err(Error::new(ErrorKind::Invalid, message));
        if self.max_connections == 0 {
            return invalid("max_connections must be at least 1".to_owned());
        }
        let shown = |d: Duration| humantime::format_duration(d).to_string();
        if self.query_timeout <= self.acquire_timeout {
            return invalid(format!(
                "query_timeout ({}) must be longer than acquire_timeout ({}): an operation that waits for a connection fails with the pool's error first",
                shown(self.query_timeout),
                shown(self.acquire_timeout)
            ));
        }
        if matches!(target, Target::Sqlite(_)) && self.query_timeout <= self.busy_timeout {
            return invalid(format!(
                "query_timeout ({}) must be longer than busy_timeout ({}): a write that waits for the SQLite file's lock fails as busy first",
                shown(self.query_timeout),
                shown(self.busy_timeout)
            ));
        }
        Ok(())
    }
}

/// Which database a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file: one serving process ([`Store::lock_worker`]), any number of readers and
    /// `encore run` processes.
    Sqlite,
    /// PostgreSQL: any number of workers on any number of machines.
    Postgres,
}

/// The job store (cheap to clone: clones share one connection pool).
///
/// Opened on a `postgres://` URL or an SQLite file path; see the [crate] docs for an example.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    target: Target,
    options: StoreOptions,
}

/// The SQLite stores open in this process, by the file's canonical path. A second
/// [`Store::open`] of an open file gets the same store: opening the file again (the header
/// check, the migrations' connection) and closing it would drop every POSIX lock this process
/// holds on it — SQLite's own included, which it keeps across connections of one process — so
/// another process could take the file from under the first store.
static OPEN_SQLITE: std::sync::Mutex<Vec<(std::path::PathBuf, std::sync::Weak<Inner>)>> =
    std::sync::Mutex::new(Vec::new());
/// Held while an SQLite store is looked up, opened and registered, so that two first opens of
/// one file in one process do not both open it.
static OPENING_SQLITE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The open store of the SQLite file at `path` in this process, if any (not closed).
fn open_sqlite_store(path: &Path) -> Option<Arc<Inner>> {
    let path = std::fs::canonicalize(path).ok()?;
    let mut open = OPEN_SQLITE.lock().expect("the open stores' lock");
    open.retain(|(_, inner)| inner.strong_count() > 0);
    open.iter()
        .filter(|(p, _)| *p == path)
        .find_map(|(_, inner)| inner.upgrade())
        .filter(|inner| match &inner.pool {
            Pool::Sqlite(pool) => !pool.is_closed(),
            Pool::Postgres(_) => false,
        })
}

pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

impl Store {
    /// Opens the store at `target` with the default [`StoreOptions`].
    ///
    /// `target` is a `postgres://` (or `postgresql://`) URL — the tables live in the URL's
    /// database, in the schema its `search_path` names (`?options=-c%20search_path%3Dencore`) —
    /// or the path of an SQLite file, created with its directory if missing. An SQLite file
    /// this process has open already gives that same store (clones share one pool): opening
    /// the file a second time and closing it would drop the POSIX locks SQLite holds on it.
    ///
    /// # Errors
    ///
    /// Nothing is changed when the store is refused:
    /// - [`ErrorKind::Incompatible`]: the file is not an SQLite database (foreign or corrupt
    ///   bytes); the database holds other tables and no encore migrations; its migrations are
    ///   another application's; it was written by a newer encore (`schema N > M`);
    /// - [`ErrorKind::Busy`]: the SQLite file stayed locked past the busy timeout;
    /// - [`ErrorKind::Storage`]: disk full, read-only file, the file or directory cannot be
    ///   created;
    /// - [`ErrorKind::Unavailable`]: PostgreSQL cannot be reached;
    /// - [`ErrorKind::Invalid`]: `target` is neither.
    pub async fn open(target: &str) -> Result<Store, Error> {
        Store::open_with(target, StoreOptions::default()).await
    }

    /// Opens the store at `target` with `options` (see [`Store::open`]).
    ///
    /// # Errors
    ///
    /// Those of [`Store::open`], and [`ErrorKind::Invalid`] for options that contradict each
    /// other (naming the option): `max_connections` of 0, a `query_timeout` not longer than
    /// `acquire_timeout` or (SQLite) `busy_timeout`.
    pub async fn open_with(target: &str, options: StoreOptions) -> Result<Store, Error> {
        let target = Target::parse(target)?;
        options.validate(&target)?;
        let path = match &target {
            Target::Postgres { url, .. } => {
                let pool = open_postgres(&target, url, &options).await?;
                return Ok(Store::opened(pool, target, options));
            }
            Target::Sqlite(path) => path.clone(),
        };
        let _opening = OPENING_SQLITE.lock().await;
        if let Some(inner) = open_sqlite_store(&path) {
            if inner.options != options {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    format!(
                        "opening {target}: it is already open in this process with other options ({:?}); open it once and share the store",
                        inner.options
                    ),
                ));
            }
            tracing::debug!(database = %target, "job store already open in this process");
            return Ok(Store { inner });
        }
        let pool = open_sqlite(&target, &path, &options).await?;
        let store = Store::opened(pool, target, options);
        if let Ok(path) = std::fs::canonicalize(&path) {
            OPEN_SQLITE
                .lock()
                .expect("the open stores' lock")
                .push((path, Arc::downgrade(&store.inner)));
        }
        Ok(store)
    }

    fn opened(pool: Pool, target: Target, options: StoreOptions) -> Store {
        tracing::debug!(database = %target, "job store open");
        Store {
            inner: Arc::new(Inner {
                pool,
                target,
                options,
            }),
        }
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        match self.inner.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The database as named in messages: the SQLite file's path, or the PostgreSQL URL with
    /// its password replaced by `***`.
    pub fn database(&self) -> String {
        self.inner.target.to_string()
    }

    /// Checks that the database answers (for `/readyz`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when no connection can be had or the query fails.
    pub async fn ping(&self) -> Result<(), Error> {
        on_backend!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop))
        .map_err(|e| self.db_error("checking the database", e))
    }

    /// Closes the pool: waits for the connections in use to be returned, then closes them.
    /// A connection being returned at that very moment may stay open until the last clone of
    /// the store is dropped; drop the store too before relying on the file being closed.
    /// Every clone is closed with it, and so is the store a second open of the same SQLite
    /// file returned; the next open of that file opens it anew.
    pub async fn close(&self) {
        // Not bounded by `on_backend!`: closing waits for the connections in use, and each of
        // those is bounded already (its operation, then the test of its return).
        match self.pool() {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Runs one store operation within [`StoreOptions::query_timeout`] (`on_backend!` puts
    /// every operation here). On expiry the operation's future is dropped: its connection goes
    /// back to the pool, which tests it before anyone else uses it (see `open_postgres`), and
    /// a transaction it had begun is rolled back; the error is the driver's I/O error of kind
    /// `TimedOut` around [`NoAnswer`], which [`db_error`] turns into [`ErrorKind::Unavailable`]
    /// naming the operation and the bound.
    pub(crate) async fn bounded<T, E: From<sqlx::Error>>(
        &self,
        operation: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let within = self.inner.options.query_timeout;
        tokio::time::timeout(within, operation)
            .await
            .unwrap_or_else(|_| Err(E::from(NoAnswer::within(within).into())))
    }

    pub(crate) fn target(&self) -> &Target {
        &self.inner.target
    }

    /// A driver error as the store's error: the kind from the driver's classification, the
    /// operation and the database in the message, the driver's error as the source.
    pub(crate) fn db_error(&self, op: &str, err: sqlx::Error) -> Error {
        db_error(&self.inner.target, op, err)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("database", &self.inner.target)
            .finish_non_exhaustive()
    }
}

pub(crate) fn db_error(target: &Target, op: &str, err: sqlx::Error) -> Error {
    let (kind, condition) = classify(&err);
    let message = match (NoAnswer::find(&err), condition) {
        (Some(no_answer), _) => format!("{op}: {target}: {no_answer}"),
        (None, Some(condition)) => format!("{op}: {target}: {condition}"),
        (None, None) => format!("{op}: database error on {target}"),
    };
    if kind == ErrorKind::Unavailable || kind == ErrorKind::Busy {
        tracing::warn!(database = %target, error = %err, "{message}");
    }
    Error::new(kind, message).with_source(err)
}

async fn open_sqlite(target: &Target, path: &Path, options: &StoreOptions) -> Result<Pool, Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::new(
                ErrorKind::Storage,
                format!(
                    "opening {target}: cannot create directory {}",
                    dir.display()
                ),
            )
            .with_source(e)
        })?;
    }
    check_sqlite_header(target, path)?;
    check_writable(target, path)?;
    // The database is judged (and migrated) on a connection that sets no persistent setting:
    // WAL is recorded in the file's header, so setting it before the file is known to be
    // encore's would change another application's database that is then refused.
    let judge = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout);
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a committed write-ahead record (a billed step in flight) survives a power loss;
        // with NORMAL the last commits of a WAL database may not, and a lost `in_flight` record
        // would let the step be sent again.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout);
    let judged = async {
        let mut conn = SqliteConnection::connect_with(&judge)
            .await
            .map_err(|e| db_error(target, "opening", e))?;
        let mut migrated = schema::migrate_sqlite(target, &mut conn).await;
        if migrated.is_ok() {
            // Encore's database: WAL from now on, before any other connection uses it.
            migrated = sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut conn)
                .await
                .map(drop)
                .map_err(|e| db_error(target, "opening", e));
        }
        let closed = conn.close().await;
        migrated?;
        closed.map_err(|e| db_error(target, "opening", e))
    };
    opened_within(target, options.query_timeout, judged).await?;
    let pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .connect_lazy_with(connect);
    Ok(Pool::Sqlite(pool))
}

/// Refuses a file that is not an SQLite database before SQLite sees it (an empty file is a new
/// database to SQLite, and a missing one is created).
fn check_sqlite_header(target: &Target, path: &Path) -> Result<(), Error> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Storage,
                format!("opening {target}: cannot be read"),
            )
            .with_source(e));
        }
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    file.by_ref()
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(|e| {
            Error::new(
                ErrorKind::Storage,
                format!("opening {target}: cannot be read"),
            )
            .with_source(e)
        })?;
    if !header.is_empty() && header != SQLITE_HEADER {
        return Err(Error::new(
            ErrorKind::Incompatible,
            format!(
                "opening {target}: not an SQLite database (foreign or corrupt bytes); refusing to touch it"
            ),
        ));
    }
    Ok(())
}

/// Refuses a database file that cannot be written (a read-only file or file system) before
/// SQLite, which would only say that it "cannot be opened".
fn check_writable(target: &Target, path: &Path) -> Result<(), Error> {
    match std::fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            Err(Error::new(
                ErrorKind::Storage,
                format!("opening {target}: the file is read-only (or on a read-only file system); encore writes to it"),
            )
            .with_source(e))
        }
        Err(e) => Err(
            Error::new(ErrorKind::Storage, format!("opening {target}: cannot be opened for writing"))
                .with_source(e),
        ),
    }
}

async fn open_postgres(target: &Target, url: &str, options: &StoreOptions) -> Result<Pool, Error> {
    let mut connect = PgConnectOptions::from_str(url).map_err(|e| {
        Error::new(
            ErrorKind::Invalid,
            format!("opening {target}: invalid postgres url"),
        )
        .with_source(e)
    })?;
    if !connect
        .get_options()
        .is_some_and(|o| o.contains("idle_in_transaction_session_timeout"))
    {
        connect = connect.options([(
            "idle_in_transaction_session_timeout",
            POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT,
        )]);
    }
    let mut conn = tokio::time::timeout(
        options.acquire_timeout,
        PgConnection::connect_with(&connect),
    )
    .await
    .map_err(|_| {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "opening: {target}: database unavailable (no connection within {:?})",
                options.acquire_timeout
            ),
        )
    })?
    .map_err(|e| db_error(target, "opening", e))?;
    let judged = async {
        let migrated = schema::migrate_postgres(target, &mut conn).await;
        let closed = conn.close().await;
        migrated?;
        closed.map_err(|e| db_error(target, "opening", e))
    };
    opened_within(target, options.query_timeout, judged).await?;
    let test_within = options.query_timeout;
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        // A connection whose operation was abandoned (`Store::bounded` dropped it mid-query)
        // comes back here. sqlx then tests it before putting it back in the pool
        // (sqlx-core 0.8 `pool/connection.rs`, `Floating::return_to_pool`, calls `ping`;
        // sqlx-postgres `connection/mod.rs`: `ping` sends a `Sync` after what is queued — the
        // `ROLLBACK` that a dropped transaction queues (`transaction.rs`, `start_rollback`) —
        // and reads every answer still owed; a connection that fails it is closed, never
        // reused half-read). But that test has no time limit: over a
        // connection whose packets are dropped it waits as long as the kernel does, many
        // minutes, holding one of `max_connections` all that time (a failover to another host
        // behind the same address leaves every such connection stuck while new ones would
        // work). The same test first, within `query_timeout`: a connection that does not pass
        // it is closed without a goodbye (an error here makes sqlx drop it) and its slot freed.
        // It costs a round trip per returned connection, after the operation has its answer
        // (sqlx's own test, which follows, is then quick).
        // SQLite needs none: its connections are threads of this process, and an abandoned
        // statement runs to its end (within the busy timeout) before the test.
        .after_release(move |conn, _| {
            Box::pin(async move {
                match tokio::time::timeout(test_within, conn.ping()).await {
                    Ok(tested) => tested.map(|()| true),
                    Err(_) => Err(NoAnswer::within(test_within).into()),
                }
            })
        })
        .connect_lazy_with(connect);
    Ok(Pool::Postgres(pool))
}

/// Judging and migrating the database at open, within `query_timeout`.
async fn opened_within(
    target: &Target,
    within: Duration,
    judged: impl Future<Output = Result<(), Error>>,
) -> Result<(), Error> {
    tokio::time::timeout(within, judged)
        .await
        .unwrap_or_else(|_| Err(db_error(target, "opening", NoAnswer::within(within).into())))
}

/// Why a transaction's body stopped: a driver error (classified by [`Store::db_error`]), or a
/// refusal the body decided itself. Returning it drops the transaction: rolled back.
pub(crate) enum Fail {
    Db(sqlx::Error),
    Refused(Error),
}

impl From<sqlx::Error> for Fail {
    fn from(err: sqlx::Error) -> Fail {
        Fail::Db(err)
    }
}

impl From<Error> for Fail {
    fn from(err: Error) -> Fail {
        Fail::Refused(err)
    }
}

impl Store {
    /// Turns a transaction's failure into the store's error, naming the operation.
    pub(crate) fn fail(&self, op: &str, fail: Fail) -> Error {
        match fail {
            Fail::Db(err) => self.db_error(op, err),
            Fail::Refused(err) => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "# Defaults" table of [`StoreOptions`] says what `Default` gives.
    #[test]
    fn the_documented_defaults_are_the_defaults() {
        let defaults = StoreOptions::default();
        assert_eq!(
            defaults,
            StoreOptions {
                busy_timeout: DEFAULT_BUSY_TIMEOUT,
                max_connections: DEFAULT_MAX_CONNECTIONS,
                acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
                query_timeout: DEFAULT_QUERY_TIMEOUT,
            }
        );
        let source = include_str!("store.rs");
        let table: Vec<&str> = source
            .lines()
            .skip_while(|l| *l != "/// # Defaults")
            .take_while(|l| l.starts_with("///"))
            .filter(|l| l.starts_with("/// | `"))
            .collect();
        let expected = [
            (
                "busy_timeout",
                format!("{} s", defaults.busy_timeout.as_secs()),
            ),
            ("max_connections", defaults.max_connections.to_string()),
            (
                "acquire_timeout",
                format!("{} s", defaults.acquire_timeout.as_secs()),
            ),
            (
                "query_timeout",
                format!("{} s", defaults.query_timeout.as_secs()),
            ),
        ];
        assert_eq!(table.len(), expected.len(), "{table:?}");
        for (row, (field, value)) in table.iter().zip(expected) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells[1], format!("`{field}`"));
            assert!(cells[2].starts_with(&format!("{value} (")), "{row}");
        }
    }
}
