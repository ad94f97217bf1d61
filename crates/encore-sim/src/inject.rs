//! Applying faults: the middleware that asks the [fault engine](crate::fault_engine) for a
//! decision and turns it into a (mis)behaving answer.
//!
//! Connection-level faults need the connection: the server puts a [`ConnKill`] in
//! every request's extensions, and a fault that must drop the connection triggers it and
//! never answers. In memory (the [`Router`](axum::Router) called as a tower service, no
//! socket) the same faults answer with a body that fails with an `io::Error`
//! (`ConnectionReset` or `UnexpectedEof`) and carry a [`ConnectionDropped`] extension.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use http::{HeaderName, HeaderValue, StatusCode, header};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::creatomate::error as creatomate;
use crate::fault::Fault;
use crate::ledger::{AnswerFacts, EnvelopeCode, RateLimitMark};
use crate::openai::error as openai;
use crate::request_ctx::RequestCtx;
use crate::route::{RouteId, Upstream};
use crate::state::{SimState, lock};
use crate::suno::envelope as suno;

/// Marks an in-memory answer whose connection a fault would have dropped (over TCP the
/// client gets a connection reset instead). Its body fails with `ConnectionReset`.
///
/// An in-memory transport can turn this into its own connection error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionDropped {
    /// Whether the request had been processed (a billed job may exist).
    pub processed: bool,
}

/// A connection's kill switch: triggering it makes the server drop the connection with a
/// TCP reset.
#[derive(Clone, Debug)]
pub(crate) struct ConnKill {
    tx: Arc<watch::Sender<bool>>,
}

impl ConnKill {
    pub(crate) fn new() -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (ConnKill { tx: Arc::new(tx) }, rx)
    }

    pub(crate) fn kill(&self) {
        self.tx.send_replace(true);
    }
}

enum Outcome {
    Respond(Response),
    Drop { processed: bool },
}

/// The fault middleware, layered on every service route with its [`RouteId`].
pub(crate) async fn middleware(
    State((state, route)): State<(SimState, RouteId)>,
    mut req: Request,
    next: Next,
) -> Response {
    let kill = req.extensions().get::<ConnKill>().cloned();
    let decision = lock(&state.inner.faults).decide(route, state.virtual_secs());
    let label = decision.label();
    let attempt = decision.attempt;
    let seq = lock(&state.inner.ledger).start_request(
        route,
        req.uri().path(),
        attempt,
        label.clone(),
        state.at_ms(),
    );
    let base_url = state.base_url(req.headers());
    req.extensions_mut().insert(RequestCtx { seq, base_url });
    let started = Instant::now();
    let fault = decision.into_fault();
    let outcome = apply(&state, route, fault, req, next).await;
    let facts = match &outcome {
        Outcome::Respond(resp) => answer_facts(resp),
        Outcome::Drop { .. } => AnswerFacts::default(),
    };
    let status = facts.status;
    lock(&state.inner.ledger).finish_request(seq, facts);
    tracing::info!(
        route = %route,
        attempt,
        status = status.unwrap_or(0),
        dropped = status.is_none(),
        fault = label.as_deref().unwrap_or("-"),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "encore-sim request"
    );
    match outcome {
        Outcome::Respond(resp) => resp,
        Outcome::Drop { processed } => match kill {
            Some(kill) => {
                kill.kill();
                // The connection task drops this future together with the connection.
                std::future::pending().await
            }
            None => dropped_response(processed),
        },
    }
}

/// What the ledger keeps about an answer: its status, and the marks its builder left.
fn answer_facts(resp: &Response) -> AnswerFacts {
    let status = resp.status().as_u16();
    let mark = resp.extensions().get::<RateLimitMark>().map(|m| m.0);
    AnswerFacts {
        status: Some(status),
        rate_limited: mark.unwrap_or(status == 429),
        body_code: resp.extensions().get::<EnvelopeCode>().map(|c| c.0),
    }
}

async fn apply(
    state: &SimState,
    route: RouteId,
    fault: Option<Fault>,
    req: Request,
    next: Next,
) -> Outcome {
    let Some(fault) = fault else {
        return Outcome::Respond(next.run(req).await);
    };
    match fault {
        Fault::Ok => Outcome::Respond(next.run(req).await),
        Fault::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Outcome::Respond(next.run(req).await)
        }
        Fault::ResetBeforeRequest => Outcome::Drop { processed: false },
        Fault::ResetAfterProcessing => {
            let resp = next.run(req).await;
            // Make sure the answer was fully produced (the job exists) before dropping it.
            let _ = collect(resp).await;
            Outcome::Drop { processed: true }
        }
        Fault::MalformedJson => {
            let (parts, bytes) = collect(next.run(req).await).await;
            let broken = malformed(&bytes);
            let len = broken.len();
            Outcome::Respond(with_body(parts, Body::from(broken), len))
        }
        Fault::TruncatedBody { after_bytes } => {
            let (parts, bytes) = collect(next.run(req).await).await;
            let len = bytes.len();
            let cut = after_bytes.unwrap_or(len / 2).min(len.saturating_sub(1));
            let head = bytes.slice(..cut);
            let body = stream::iter([Ok::<_, io::Error>(head)]).chain(stream::once(async {
                // let the partial chunk reach the socket before the connection closes
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "encore-sim fault: body truncated",
                ))
            }));
            Outcome::Respond(with_body(parts, Body::from_stream(body), len))
        }
        Fault::StallBody { after_bytes, ms } => {
            let (parts, bytes) = collect(next.run(req).await).await;
            let len = bytes.len();
            let cut = after_bytes.min(len);
            let (head, tail) = (bytes.slice(..cut), bytes.slice(cut..));
            let body = stream::iter([Ok::<_, io::Error>(head)]).chain(stream::once(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(tail)
            }));
            Outcome::Respond(with_body(parts, Body::from_stream(body), len))
        }
        Fault::Status {
            after_processing, ..
        }
        | Fault::ServerError {
            after_processing, ..
        } => {
            if after_processing {
                let _ = collect(next.run(req).await).await;
            }
            Outcome::Respond(fault_response(state, route, &fault))
        }
        other => Outcome::Respond(fault_response(state, route, &other)),
    }
}

/// The answer of a fault that answers instead of the handler.
pub(crate) fn fault_response(state: &SimState, route: RouteId, fault: &Fault) -> Response {
    match fault {
        Fault::Status {
            status,
            headers,
            body,
            ..
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut resp = match body {
                None => service_error(state, route.upstream(), status),
                Some(serde_json::Value::String(text)) => (
                    status,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    text.clone(),
                )
                    .into_response(),
                Some(value) => (status, axum::Json(value.clone())).into_response(),
            };
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    resp.headers_mut().insert(name, value);
                }
            }
            resp
        }
        Fault::OpenaiRateLimit {
            retry_after_s,
            retry_after_ms,
        } => openai::rate_limit_error(state, *retry_after_s, *retry_after_ms),
        Fault::OpenaiInsufficientQuota => openai::insufficient_quota(state),
        Fault::SunoCode { code, msg } => suno::envelope_error(state, *code, msg.as_deref()),
        Fault::CreatomateRateLimit {
            retry_after_s,
            http_date,
        } => creatomate::rate_limited(*retry_after_s, *http_date),
        Fault::ServerError {
            status,
            should_retry,
            ..
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = service_error(state, route.upstream(), status);
            if let Some(retry) = should_retry {
                resp.headers_mut().insert(
                    HeaderName::from_static("x-should-retry"),
                    HeaderValue::from_static(if *retry { "true" } else { "false" }),
                );
            }
            resp
        }
        Fault::Outage => service_error(state, route.upstream(), StatusCode::SERVICE_UNAVAILABLE),
        // Faults that damage a real answer are applied in `apply`; as a plain answer they
        // degrade to a 502 so nothing is silently normal.
        _ => service_error(state, route.upstream(), StatusCode::BAD_GATEWAY),
    }
}

/// An HTTP error with the service's default body for `status`.
pub(crate) fn service_error(state: &SimState, upstream: Upstream, status: StatusCode) -> Response {
    match upstream {
        Upstream::Openai => openai::default_error(state, status),
        Upstream::Suno => suno::http_error(status),
        Upstream::Creatomate => creatomate::hint(status, creatomate::default_hint(status)),
    }
}

async fn collect(resp: Response) -> (http::response::Parts, Bytes) {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    (parts, bytes)
}

fn with_body(mut parts: http::response::Parts, body: Body, len: usize) -> Response {
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Response::from_parts(parts, body)
}

/// Cuts the JSON in the middle and appends characters no JSON document may contain there.
fn malformed(bytes: &[u8]) -> Vec<u8> {
    let mut cut = bytes.len() / 2;
    while cut > 0 && !is_char_boundary(bytes, cut) {
        cut -= 1;
    }
    let mut out = bytes[..cut].to_vec();
    out.extend_from_slice(b"<<<\xe2\x80\xa6");
    out
}

fn is_char_boundary(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_none_or(|b| (*b & 0xC0) != 0x80)
}

fn dropped_response(processed: bool) -> Response {
    let body = Body::from_stream(stream::once(async {
        Err::<Bytes, _>(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "encore-sim fault: connection reset",
        ))
    }));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.extensions_mut()
        .insert(ConnectionDropped { processed });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_is_never_json() {
        for body in [
            &b""[..],
            b"{}",
            b"[1,2,3]",
            br#"{"a":"\u00e9\u00e9\u00e9"}"#,
            "{\"k\":\"é\"}".as_bytes(),
        ] {
            let out = malformed(body);
            assert!(serde_json::from_slice::<serde_json::Value>(&out).is_err());
            assert!(std::str::from_utf8(&out).is_ok());
        }
    }
}
