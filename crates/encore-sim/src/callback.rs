//! Outbound callbacks (Suno `callBackUrl`, Creatomate `webhook_url`): a JSON POST at a given
//! instant, 15 s timeout, failures ignored, never blocking a handler. Only plain `http://`
//! URLs are delivered (the simulator has no TLS client); others are skipped with a debug log.

use std::time::Duration;

use http::{Request, Uri, header};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Upstream's documented callback timeout.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(15);

/// Spawns a POST of `body` to `url` at `when`.
pub(crate) fn post_at(url: String, body: Value, when: Instant) {
    let Ok(uri) = url.parse::<Uri>() else {
        tracing::debug!("callback skipped: unparsable URL");
        return;
    };
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        tracing::debug!(scheme = ?uri.scheme_str(), "callback skipped: only http:// is delivered");
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep_until(when).await;
        match tokio::time::timeout(CALLBACK_TIMEOUT, post(&uri, &body)).await {
            Ok(Ok(status)) => tracing::debug!(%status, host = ?uri.host(), "callback delivered"),
            Ok(Err(e)) => tracing::debug!(error = %e, "callback failed (ignored)"),
            Err(_) => tracing::debug!("callback timed out (ignored)"),
        }
    });
}

async fn post(
    uri: &Uri,
    body: &Value,
) -> Result<http::StatusCode, Box<dyn std::error::Error + Send + Sync>> {
    let host = uri.host().ok_or("no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let request = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "encore-sim")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = sender.send_request(request).await?;
    Ok(response.status())
}
