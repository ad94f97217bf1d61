//! PostgreSQL for the tests: a schema of its own per test on `ENCORE_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, what `.ci/postgres` starts), dropped
//! afterwards; and a TCP relay that a test can cut and restore (a database that goes away).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub const PG_URL_VAR: &str = "ENCORE_TEST_PG_URL";
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const SCHEMA_PREFIX: &str = "encore_test_";

pub fn pg_base_url() -> String {
    std::env::var(PG_URL_VAR).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

async fn admin() -> PgConnection {
    match tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect(&pg_base_url()),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        other => panic!(
            "PostgreSQL tests need a server ({other:?}): start one (.ci/postgres) or set {PG_URL_VAR}"
        ),
    }
}

/// A PostgreSQL schema for one test, dropped with it.
pub struct TestPg {
    schema: String,
}

impl TestPg {
    pub async fn new() -> TestPg {
        let schema = format!("{SCHEMA_PREFIX}{}", uuid::Uuid::now_v7().simple());
        let mut admin = admin().await;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .expect("create the test schema");
        let _ = admin.close().await;
        TestPg { schema }
    }

    /// The store target (a URL whose connections use the schema).
    pub fn target(&self) -> String {
        self.target_at(None)
    }

    /// The same database through another address (a [`Relay`]).
    pub fn target_at(&self, addr: Option<SocketAddr>) -> String {
        let mut url = url::Url::parse(&pg_base_url()).expect("a PostgreSQL URL");
        if let Some(addr) = addr {
            url.set_ip_host(addr.ip()).unwrap();
            url.set_port(Some(addr.port())).unwrap();
        }
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={}", self.schema));
        url.to_string()
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // A runtime of its own: drop may run inside or outside the test's.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut admin = admin().await;
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut admin)
                    .await;
            });
        })
        .join();
    }
}

/// The address of the test server.
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
/// new ones; [`restore`](Self::restore) relays again.
pub struct Relay {
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(upstream: SocketAddr) -> Relay {
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
        Relay {
            addr,
            down,
            generation,
            task,
        }
    }

    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
