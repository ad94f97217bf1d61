//! PostgreSQL for tests, shared by the store's and the service's test binaries (each includes
//! this file with `#[path]`; it is not part of any crate's API): a schema of its own per test on
//! `ENCORE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`, what
//! `.ci/postgres` starts), dropped afterwards, and a TCP relay that a test can cut, stall and
//! restore (a database that goes away, or stops answering, and comes back).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The PostgreSQL server the tests use.
pub const PG_URL_VAR: &str = "ENCORE_TEST_PG_URL";
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const SCHEMA_PREFIX: &str = "encore_test_";
static SWEPT: AtomicBool = AtomicBool::new(false);

pub fn pg_base_url() -> String {
    std::env::var(PG_URL_VAR).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// A connection to the test server, or a failed test that says how to point it elsewhere.
pub async fn pg_admin() -> PgConnection {
    let url = pg_base_url();
    match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "PostgreSQL tests need a server: cannot connect to {} ({e}); start one (.ci/postgres) or set {PG_URL_VAR}",
            redacted(&url)
        ),
        Err(elapsed) => panic!(
            "PostgreSQL tests need a server: no answer from {} ({elapsed}); start one (.ci/postgres) or set {PG_URL_VAR}",
            redacted(&url)
        ),
    }
}

fn redacted(url: &str) -> String {
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

/// A PostgreSQL schema for one test, dropped with it. The first one made in a process also
/// drops the schemas that killed test runs left behind (older than an hour).
pub struct TestSchema {
    name: String,
}

impl TestSchema {
    pub async fn new() -> TestSchema {
        let name = format!("{SCHEMA_PREFIX}{}", uuid::Uuid::now_v7().simple());
        let mut admin = pg_admin().await;
        if !SWEPT.swap(true, Ordering::SeqCst) {
            sweep_stale_schemas(&mut admin).await;
        }
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test schema");
        let _ = admin.close().await;
        TestSchema { name }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store target: a URL whose connections use the schema.
    pub fn target(&self) -> String {
        self.target_at(None)
    }

    /// The same database through another address (a [`Relay`]'s).
    pub fn target_at(&self, addr: Option<SocketAddr>) -> String {
        let mut url = url::Url::parse(&pg_base_url()).expect("ENCORE_TEST_PG_URL is a URL");
        if let Some(addr) = addr {
            url.set_ip_host(addr.ip()).unwrap();
            url.set_port(Some(addr.port())).unwrap();
        }
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={}", self.name));
        url.to_string()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let schema = self.name.clone();
        // Dropping may happen inside a runtime; a thread with its own runtime does the I/O.
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
}

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

/// The address of the test server, for a [`Relay`].
pub fn pg_socket_addr() -> SocketAddr {
    let url = url::Url::parse(&pg_base_url()).unwrap();
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432);
    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .unwrap()
        .next()
        .unwrap()
}

/// A TCP relay to PostgreSQL: [`cut`](Self::cut) drops every relayed connection and refuses
/// new ones; [`stall`](Self::stall) keeps every connection open but forwards nothing (a
/// partition that drops packets: no reset, no FIN), and
/// [`stall_open_connections`](Self::stall_open_connections) does so to the connections open
/// now only (a database host gone without a word, another one answering at its address);
/// [`restore`](Self::restore) relays again.
pub struct Relay {
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    stall: watch::Sender<Stall>,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// Which relayed connections forward nothing: all of them, or those numbered below `below`.
#[derive(Debug, Clone, Copy, Default)]
struct Stall {
    all: bool,
    below: u64,
}

impl Stall {
    fn holds(self, connection: u64) -> bool {
        self.all || connection < self.below
    }
}

impl Relay {
    pub async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0_u64);
        let (stall, _) = watch::channel(Stall::default());
        let connections = Arc::new(AtomicU64::new(0));
        let task = {
            let down = down.clone();
            let generation = generation.clone();
            let stall = stall.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let mut cut = generation.subscribe();
                    let mut flow = stall.subscribe();
                    let number = connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let relayed = async {
                            // A connection made during a stall is accepted (the kernel answers
                            // the handshake) but reaches the server only when it ends.
                            if flow.wait_for(|s| !s.holds(number)).await.is_err() {
                                return;
                            }
                            let Ok(server) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            let (client_read, client_write) = client.into_split();
                            let (server_read, server_write) = server.into_split();
                            tokio::join!(
                                pump(client_read, server_write, flow.clone(), number),
                                pump(server_read, client_write, flow, number),
                            );
                        };
                        tokio::select! {
                            () = relayed => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Relay {
            addr,
            down,
            generation,
            stall,
            connections,
            task,
        }
    }

    /// Drops every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Stops forwarding bytes, both ways, on every connection, and holds new ones: nothing is
    /// closed and nothing answers. What either side sends meanwhile waits in the sockets'
    /// buffers, as in a partition that TCP's retransmissions outlast.
    pub fn stall(&self) {
        self.stall.send_modify(|s| s.all = true);
    }

    /// Stalls the connections open now, as [`stall`](Self::stall) does, and relays new ones.
    pub fn stall_open_connections(&self) {
        let below = self.connections.load(Ordering::SeqCst);
        self.stall.send_modify(|s| s.below = below);
    }

    /// Ends a cut (new connections are relayed again) or a stall (what was held is delivered
    /// and the connections go on, as after a partition heals).
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
        self.stall.send_replace(Stall::default());
    }
}

/// Copies `from` to `to` except while the relay is stalled: then nothing is read (the sender's
/// bytes wait in the kernel), and bytes read just before the stall began are held until it
/// ends. An end of stream is passed on, after a stall too.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut flow: watch::Receiver<Stall>,
    number: u64,
) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        if flow.wait_for(|s| !s.holds(number)).await.is_err() {
            return;
        }
        let read = from.read(&mut buf).await;
        if flow.wait_for(|s| !s.holds(number)).await.is_err() {
            return;
        }
        match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
