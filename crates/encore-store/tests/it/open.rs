//! Opening a store: what is refused (and left untouched), locks, and an unreachable or lost
//! PostgreSQL.

use std::time::{Duration, Instant};

use encore_pipeline::StepName;
use encore_store::{ErrorKind, Origin, SCHEMA_VERSION, Store, StoreOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection};

use crate::support::{Relay, TestDb, on_both_backends, pg_admin, pg_socket_addr, queued};

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = format!("{err} / {err:?}");
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(&format!(" / {e} / {e:?}"));
        source = e.source();
    }
    text
}

#[tokio::test]
async fn a_file_of_random_bytes_is_named_and_left_alone() {
    let db = TestDb::sqlite();
    // Deterministic "random" bytes (a xorshift), with no SQLite header.
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    let bytes: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(db.path(), &bytes).unwrap();
    let err = Store::open(db.target()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Incompatible);
    assert!(err.to_string().contains(db.target()), "{err}");
    assert!(err.to_string().contains("not an SQLite database"), "{err}");
    assert!(
        std::fs::read(db.path()).unwrap() == bytes,
        "the file changed"
    );
}

#[tokio::test]
async fn a_corrupt_sqlite_file_is_refused() {
    let db = TestDb::sqlite();
    // The header of an SQLite file, then garbage: SQLite itself says it is not a database.
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xA5_u8, 4096));
    std::fs::write(db.path(), &bytes).unwrap();
    let err = Store::open(db.target()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Incompatible, "{err}");
    assert!(err.to_string().contains(db.target()), "{err}");
    assert!(
        std::fs::read(db.path()).unwrap() == bytes,
        "the file changed"
    );
}

/// Another application's database (tables, no encore migrations) is refused untouched.
async fn a_foreign_database_is_refused(db: &TestDb) {
    match db.kind {
        crate::support::Kind::Sqlite => {
            let mut conn = SqliteConnectOptions::new()
                .filename(db.path())
                .create_if_missing(true)
                .connect()
                .await
                .unwrap();
            sqlx::query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        crate::support::Kind::Postgres => {
            let mut admin = pg_admin().await;
            sqlx::query(&format!(
                "CREATE TABLE {}.users (id BIGINT PRIMARY KEY, name TEXT)",
                db.schema()
            ))
            .execute(&mut admin)
            .await
            .unwrap();
        }
    }
    // The SQLite file's bytes (its journal mode in the header included) stay as they were.
    let bytes =
        (db.kind == crate::support::Kind::Sqlite).then(|| std::fs::read(db.path()).unwrap());
    let err = Store::open(db.target()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Incompatible, "{err}");
    assert!(
        err.to_string()
            .contains("holds other tables (users) and no encore migrations"),
        "{err}"
    );
    if let Some(bytes) = bytes {
        assert!(
            std::fs::read(db.path()).unwrap() == bytes,
            "the file changed"
        );
    }
    assert_eq!(tables(db).await, ["users"], "nothing was created");
}

async fn tables(db: &TestDb) -> Vec<String> {
    match db.kind {
        crate::support::Kind::Sqlite => {
            let mut conn = SqliteConnectOptions::new()
                .filename(db.path())
                .connect()
                .await
                .unwrap();
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(&mut conn)
                .await
                .unwrap()
        }
        crate::support::Kind::Postgres => {
            let mut admin = pg_admin().await;
            sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = $1 ORDER BY table_name",
            )
            .bind(db.schema())
            .fetch_all(&mut admin)
            .await
            .unwrap()
        }
    }
}

/// A database migrated by a newer encore (a migration this one does not know) is refused,
/// saying so; reopening an up-to-date one works and keeps the data.
async fn a_newer_schema_is_refused(db: &TestDb) {
    let store = db.open().await;
    let job = queued(&store, Origin::Api).await;
    store.close().await;
    assert_eq!(db.open().await.get_job(job.id).await.unwrap().job, job);

    let newer = SCHEMA_VERSION + 1;
    let insert = format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ({newer}, 'from the future', TRUE, X'00', 1)"
    );
    match db.kind {
        crate::support::Kind::Sqlite => {
            let mut conn = SqliteConnectOptions::new()
                .filename(db.path())
                .connect()
                .await
                .unwrap();
            sqlx::query(&insert).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        crate::support::Kind::Postgres => {
            let mut admin = pg_admin().await;
            sqlx::query(&format!("SET search_path = {}", db.schema()))
                .execute(&mut admin)
                .await
                .unwrap();
            sqlx::query(&insert.replace("X'00'", "'\\x00'::bytea"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }
    let err = Store::open(db.target()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Incompatible, "{err}");
    assert!(
        err.to_string().contains(&format!(
            "was written by a newer encore (schema {newer} > {SCHEMA_VERSION})"
        )),
        "{err}"
    );
}

on_both_backends!(a_foreign_database_is_refused, a_newer_schema_is_refused);

/// Another process holds the file's write lock past the busy timeout: the write fails as
/// busy, naming the file, and works once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_file_is_busy_past_the_timeout() {
    let db = TestDb::sqlite();
    let options = StoreOptions {
        busy_timeout: Duration::from_millis(300),
        ..StoreOptions::default()
    };
    let store = db.open_with(options.clone()).await;
    let mut locker = SqliteConnectOptions::new()
        .filename(db.path())
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();

    let started = Instant::now();
    let err = store
        .create_job(&encore_store::NewJob::new(
            Origin::Api,
            serde_json::json!({}),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(err.is_retryable());
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(err.to_string().contains(db.target()), "{err}");
    assert!(
        err.to_string().contains("locked by another writer"),
        "{err}"
    );
    // Readers are not blocked (WAL).
    assert!(
        store
            .list_jobs(&encore_store::JobQuery::default())
            .await
            .unwrap()
            .jobs
            .is_empty()
    );

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    queued(&store, Origin::Api).await;

    // A new file locked by another process while it would be created: refused as busy.
    let fresh = TestDb::sqlite();
    let mut locker = SqliteConnectOptions::new()
        .filename(fresh.path())
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    let err = Store::open_with(fresh.target(), options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(err.to_string().contains(fresh.target()), "{err}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_and_its_password_never_shown() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let url = "postgres://encore:hunter2-secret@127.0.0.1:1/jobs?password=hunter2-secret";
    let err = Store::open_with(
        url,
        StoreOptions {
            acquire_timeout: Duration::from_secs(2),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    let shown = error_chain(&err);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        err.to_string().contains("encore:***@127.0.0.1:1/jobs"),
        "{err}"
    );
    assert!(err.to_string().contains("database unavailable"), "{err}");
}

#[tokio::test]
async fn targets_that_are_neither_are_invalid() {
    let err = Store::open("mysql://root:pw@localhost/db")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(!error_chain(&err).contains("pw@"), "{err}");
}

/// The connection to PostgreSQL is lost and comes back: operations fail as "unavailable"
/// (retryable, distinct from lease lost / conflict / not found), `ping` says so, and both work
/// again afterwards; the URL's password appears nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_postgres_connection_is_unavailable_then_recovers() {
    let db = TestDb::postgres().await;
    db.open().await; // migrate
    let relay = Relay::start(pg_socket_addr()).await;
    let target = db.target_via(relay.addr, "sw0rdfish");
    let store = Store::open_with(
        &target,
        StoreOptions {
            acquire_timeout: Duration::from_millis(500),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    store.ping().await.unwrap();
    let job = queued(&store, Origin::Api).await;
    let lease = store
        .claim_next("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();

    relay.cut();
    let err = store.ping().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let err = store.get_job(job.id).await.unwrap_err();
    assert!(err.is_unavailable() && err.is_retryable(), "{err}");
    assert!(!err.is_lease_lost() && !err.is_conflict() && !err.is_not_found());
    let err = lease
        .append_event("retry", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "a lease write: {err}");
    let journal = encore_pipeline::Journal::start(&lease, StepName::Lyrics, None)
        .await
        .unwrap_err();
    assert!(!journal.is_lease_lost(), "{journal}");
    let shown = error_chain(&err);
    assert!(!shown.contains("sw0rdfish"), "{shown}");
    assert!(shown.contains("database unavailable"), "{shown}");
    assert!(!format!("{store:?} {lease:?}").contains("sw0rdfish"));

    relay.restore();
    store.ping().await.unwrap();
    lease
        .append_event("retry", &serde_json::json!({"after": "outage"}))
        .await
        .unwrap();
    assert_eq!(store.get_job(job.id).await.unwrap().job.id, job.id);
}

#[tokio::test]
async fn a_search_path_without_a_schema_is_named() {
    let mut url = url::Url::parse(&crate::support::pg_base_url()).unwrap();
    url.query_pairs_mut()
        .append_pair("options", "-c search_path=encore_no_such_schema");
    let err = Store::open(url.as_str()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(
        err.to_string().contains("names no existing schema"),
        "{err}"
    );
}

/// The descriptors this process has open on `path` (Linux).
fn descriptors_on(path: &std::path::Path) -> usize {
    let path = std::fs::canonicalize(path).unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| *target == path)
        .count()
}

/// A second open of an SQLite file this process has open gets the same store: opening the file
/// again and closing it would drop the POSIX locks SQLite holds on it for the first store. Other
/// options are refused, naming the file; once closed, the file opens anew.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_second_open_of_one_sqlite_file_shares_the_first() {
    let db = TestDb::sqlite();
    // One connection at most: a store of its own would need a second descriptor.
    let one = StoreOptions {
        max_connections: 1,
        ..StoreOptions::default()
    };
    let first = db.open_with(one.clone()).await;
    let job = queued(&first, Origin::Cli).await;
    let before = descriptors_on(&db.path());
    assert_eq!(before, 1, "the first store's one connection");

    // The same file by another spelling of its path.
    let other_spelling = db.path().parent().unwrap().join(".").join("jobs.db");
    let second = Store::open_with(other_spelling.to_str().unwrap(), one)
        .await
        .unwrap();
    assert_eq!(second.get_job(job.id).await.unwrap().job.id, job.id);
    queued(&second, Origin::Cli).await;
    assert_eq!(
        descriptors_on(&db.path()),
        before,
        "no connection of its own: the same pool"
    );

    let other = StoreOptions::default();
    let err = Store::open_with(db.target(), other).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(
        err.to_string().contains(db.target()) && err.to_string().contains("already open"),
        "{err}"
    );

    first.close().await;
    let reopened = db.open().await;
    assert_eq!(
        reopened
            .list_jobs(&encore_store::JobQuery::default())
            .await
            .unwrap()
            .jobs
            .len(),
        2
    );
}
