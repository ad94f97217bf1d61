//! Test databases: an SQLite file in a temporary directory, or a PostgreSQL schema of its own
//! (created on `ENCORE_TEST_PG_URL`, dropped afterwards), so that tests run in parallel.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use encore_store::{NewJob, Origin, Store, StoreOptions};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The PostgreSQL server the tests use.
pub const PG_URL_VAR: &str = "ENCORE_TEST_PG_URL";
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn pg_base_url() -> String {
    std::env::var(PG_URL_VAR).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// A connection to the test server, or a failed test that says how to point it elsewhere.
pub async fn pg_admin() -> PgConnection {
    let url = pg_base_url();
    match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "PostgreSQL tests need a server: cannot connect to {} ({e}); start one or set {PG_URL_VAR}",
            encore_store_redacted(&url)
        ),
        Err(elapsed) => panic!(
            "PostgreSQL tests need a server: no answer from {} ({elapsed}); start one or set {PG_URL_VAR}",
            encore_store_redacted(&url)
        ),
    }
}

fn encore_store_redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable url>".to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One test's database.
pub struct TestDb {
    pub kind: Kind,
    target: String,
    dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let target = dir.path().join("jobs.db").to_str().unwrap().to_owned();
        TestDb {
            kind: Kind::Sqlite,
            target,
            dir: Some(dir),
            schema: None,
        }
    }

    pub async fn postgres() -> TestDb {
        let schema = format!("{SCHEMA_PREFIX}{}", uuid::Uuid::now_v7().simple());
        let mut admin = pg_admin().await;
        if !SWEPT.swap(true, Ordering::SeqCst) {
            sweep_stale_schemas(&mut admin).await;
        }
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .expect("create the test schema");
        let _ = admin.close().await;
        let target = with_search_path(&pg_base_url(), &schema);
        TestDb {
            kind: Kind::Postgres,
            target,
            dir: None,
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
        self.schema.as_deref().expect("a PostgreSQL test database")
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.target).await.expect("open the store")
    }

    pub async fn open_with(&self, options: StoreOptions) -> Store {
        Store::open_with(&self.target, options)
            .await
            .expect("open the store")
    }

    /// The same PostgreSQL database through another address (a [`Proxy`]), with `password`.
    pub fn target_via(&self, addr: SocketAddr, password: &str) -> String {
        let mut url = url::Url::parse(&self.target).unwrap();
        url.set_ip_host(addr.ip()).unwrap();
        url.set_port(Some(addr.port())).unwrap();
        url.set_password(Some(password)).unwrap();
        url.to_string()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = self.schema.take() {
            // Dropping happens inside a runtime; a thread with its own runtime does the I/O.
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        let mut admin = PgConnection::connect(&pg_base_url()).await?;
                        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&mut admin)
                            .await?;
                        admin.close().await
                    })
            })
            .join();
            assert!(
                matches!(dropped, Ok(Ok(()))) || std::thread::panicking(),
                "could not drop the test schema: {dropped:?}"
            );
        }
        drop(self.dir.take());
    }
}

const SCHEMA_PREFIX: &str = "encore_test_";
static SWEPT: AtomicBool = AtomicBool::new(false);

/// Drops the schemas that test runs killed before they could clean up (their names hold the
/// UUIDv7 of their creation): those older than an hour.
async fn sweep_stale_schemas(admin: &mut PgConnection) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'encore\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    .expect("list test schemas");
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for name in names {
        let Some(created) = name
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .and_then(|id| id.get_timestamp())
        else {
            continue;
        };
        let (secs, nanos) = created.to_unix();
        let created = std::time::UNIX_EPOCH + Duration::new(secs, nanos);
        if created < hour_ago {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&mut *admin)
                .await
                .expect("drop a stale test schema");
        }
    }
}

fn with_search_path(base: &str, schema: &str) -> String {
    let mut url = url::Url::parse(base).expect("ENCORE_TEST_PG_URL is a URL");
    url.query_pairs_mut()
        .append_pair("options", &format!("-c search_path={schema}"));
    url.to_string()
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

/// A TCP relay to PostgreSQL that a test can cut (every connection dropped, new ones refused)
/// and restore: a database that goes away and comes back.
pub struct Proxy {
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0_u64);
        let task = {
            let down = down.clone();
            let generation = generation.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        return;
                    };
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let mut cut = generation.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Proxy {
            addr,
            down,
            generation,
            task,
        }
    }

    /// Drops every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// The address of the test server, for a [`Proxy`].
pub fn pg_socket_addr() -> SocketAddr {
    let url = url::Url::parse(&pg_base_url()).unwrap();
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port().unwrap_or(5432);
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .unwrap()
        .next()
        .unwrap()
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
