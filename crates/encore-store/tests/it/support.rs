//! Test databases: an SQLite file in a temporary directory, or a PostgreSQL schema of its own
//! (created on `ENCORE_TEST_PG_URL`, dropped afterwards), so that tests run in parallel.

use std::net::SocketAddr;
use std::process::{Command, Output};

use encore_store::{NewJob, Origin, Store, StoreOptions};

pub use crate::pg::{Relay, TestSchema, pg_admin, pg_base_url, pg_socket_addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One test's database.
pub struct TestDb {
    pub kind: Kind,
    target: String,
    /// The SQLite file's directory, removed when the test database is dropped.
    _dir: Option<tempfile::TempDir>,
    schema: Option<TestSchema>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let target = dir.path().join("jobs.db").to_str().unwrap().to_owned();
        TestDb {
            kind: Kind::Sqlite,
            target,
            _dir: Some(dir),
            schema: None,
        }
    }

    pub async fn postgres() -> TestDb {
        let schema = TestSchema::new().await;
        TestDb {
            kind: Kind::Postgres,
            target: schema.target(),
            _dir: None,
            schema: Some(schema),
        }
    }

    /// The target `Store::open` takes.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The SQLite file (SQLite only).
    pub fn path(&self) -> std::path::PathBuf {
        assert_eq!(self.kind, Kind::Sqlite);
        std::path::PathBuf::from(&self.target)
    }

    /// The PostgreSQL schema (PostgreSQL only).
    pub fn schema(&self) -> &str {
        self.schema
            .as_ref()
            .expect("a PostgreSQL test database")
            .name()
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.target).await.expect("open the store")
    }

    pub async fn open_with(&self, options: StoreOptions) -> Store {
        Store::open_with(&self.target, options)
            .await
            .expect("open the store")
    }

    /// The same PostgreSQL database through another address (a [`Relay`]), with `password`.
    pub fn target_via(&self, addr: SocketAddr, password: &str) -> String {
        let mut url = url::Url::parse(&self.target).unwrap();
        url.set_ip_host(addr.ip()).unwrap();
        url.set_port(Some(addr.port())).unwrap();
        url.set_password(Some(password)).unwrap();
        url.to_string()
    }
}

/// Runs each named `async fn(&TestDb)` on a fresh SQLite file and on a fresh PostgreSQL schema:
/// `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = crate::support::TestDb::sqlite();
                super::$name(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = crate::support::TestDb::postgres().await;
                super::$name(&db).await;
            }
        }
    )+};
}
pub(crate) use on_both_backends;

/// A queued job of `origin` with a small input.
pub async fn queued(store: &Store, origin: Origin) -> encore_store::Job {
    store
        .create_job(&NewJob::new(
            origin,
            serde_json::json!({"business": "a bakery", "name": "Haneul"}),
        ))
        .await
        .expect("create a job")
        .job
}

/// The environment variable that makes this test binary play a child's part.
pub const CHILD_ROLE: &str = "ENCORE_STORE_TEST_CHILD";

/// A command running this test binary's test `test` alone, as a child with `role`.
pub fn child_command(test: &str, role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, role);
    command
}

/// The child's role, if this process is one.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ROLE).ok()
}

/// A child's output, for a failed assertion.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every event of a job, read page by page.
pub async fn all_events(store: &Store, job: encore_store::JobId) -> Vec<encore_store::JobEvent> {
    let mut events: Vec<encore_store::JobEvent> = Vec::new();
    loop {
        let after = events.last().map_or(0, |e| e.seq);
        let page = store
            .events_after(job, after, 1000)
            .await
            .expect("read events");
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}
