//! Shared helpers: in-memory calls to the router, a plain reqwest client, loose JSON equality.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use encore_sim::{SimConfig, SimState, app};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const KEY: &str = "sk-test-key-123456";

/// A collected in-memory answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Result<Bytes, String>,
    pub dropped: Option<encore_sim::ConnectionDropped>,
}

impl Reply {
    pub fn bytes(&self) -> &Bytes {
        self.body.as_ref().expect("body read")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(self.bytes())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(self.bytes())))
    }
}

pub fn sim(config: SimConfig) -> (SimState, Router) {
    let state = SimState::new(config);
    let router = app(state.clone());
    (state, router)
}

pub fn fast() -> SimConfig {
    SimConfig {
        time_scale: 0.001,
        ..SimConfig::default()
    }
}

pub async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    let req = match body {
        Some(v) => builder
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let dropped = resp
        .extensions()
        .get::<encore_sim::ConnectionDropped>()
        .copied();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| {
            let mut io = None;
            let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = cur {
                if let Some(ioe) = err.downcast_ref::<std::io::Error>() {
                    io = Some(ioe.kind());
                }
                cur = err.source();
            }
            format!("{e} ({io:?})")
        });
    Reply {
        status,
        headers,
        body,
        dropped,
    }
}

/// A reqwest client for plain-http loopback tests.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// JSON equality where numbers compare by value (`1` == `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-9
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[track_caller]
pub fn assert_json_eq(a: &Value, b: &Value) {
    assert!(
        json_eq(a, b),
        "JSON differs:\n left: {}\nright: {}",
        serde_json::to_string_pretty(a).unwrap(),
        serde_json::to_string_pretty(b).unwrap()
    );
}

/// Round-trips documented JSON through a type.
#[track_caller]
pub fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &str) -> T {
    let original: Value = serde_json::from_str(doc).expect("documented JSON parses");
    let typed: T = serde_json::from_value(original.clone()).expect("type accepts the doc");
    let back = serde_json::to_value(&typed).unwrap();
    assert_json_eq(&back, &original);
    typed
}
