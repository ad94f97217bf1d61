//! Serving the router on a real socket, with connection-level faults.
//!
//! The accept loop is hand-written (tokio listener + hyper `http1::serve_connection`) so a
//! fault can kill a connection: every request carries a kill switch, and killing closes the
//! socket with `SO_LINGER 0`, i.e. a TCP reset.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::inject::ConnKill;
use crate::ledger::Ledger;
use crate::state::SimState;

/// How long [`RunningSim::shutdown`] lets open connections finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// A simulator serving on a socket. Dropping it stops the server (like a guard); call
/// [`RunningSim::shutdown`] to stop it gracefully and wait. A stopped server also cancels
/// the callbacks and webhooks still due.
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    state: SimState,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningSim {
    /// The bound address (the real port when 0 was requested).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (OpenAI base = `{base}/v1`, Suno base = `{base}/api/v1`,
    /// Creatomate base = `{base}/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared state.
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// Shortcut for `state().ledger()`.
    pub fn ledger(&self) -> Ledger {
        self.state.ledger()
    }

    /// Stops accepting, lets open connections finish for up to [`SHUTDOWN_GRACE`], then
    /// closes the rest.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let _ = self.task.await;
    }
}

/// Binds `addr` (port 0 = any free port), spawns the server on the current tokio runtime
/// and returns at once.
pub async fn serve(state: SimState, addr: SocketAddr) -> io::Result<RunningSim> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    state.set_bound(addr);
    let router = crate::app(state.clone());
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, router, rx, state.clone()));
    tracing::info!(%addr, "encore-sim listening on http://{addr}");
    Ok(RunningSim {
        addr,
        state,
        shutdown: tx,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    state: SimState,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    conns.spawn(connection(stream, router.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "encore-sim accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // a stopped simulator sends no more callbacks
    state.stop_callbacks();
    let drain = async { while conns.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, drain).await;
    conns.abort_all();
    tracing::info!("encore-sim stopped");
}

async fn connection(stream: TcpStream, router: Router, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    // A second handle on the socket, to set SO_LINGER 0 when a fault kills the connection
    // (closing with linger 0 sends a RST instead of a FIN).
    let (stream, linger_handle) = match stream.into_std().and_then(|s| {
        let dup = s.try_clone()?;
        Ok((TcpStream::from_std(s)?, dup))
    }) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(error = %e, "encore-sim could not prepare a connection");
            return;
        }
    };
    let (kill, mut killed) = ConnKill::new();
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(kill.clone());
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let reset = || {
        let _ = socket2::SockRef::from(&linger_handle).set_linger(Some(Duration::ZERO));
    };
    tokio::select! {
        _ = conn.as_mut() => return,
        Ok(_) = killed.wait_for(|k| *k) => {
            reset();
            return;
        }
        _ = shutdown.changed() => conn.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = conn.as_mut() => {}
        Ok(_) = killed.wait_for(|k| *k) => reset(),
    }
}
