//! Suno callbacks and Creatomate webhooks are POSTed to plain-http URLs on the virtual
//! timeline (real loopback, tiny time scale).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use encore_sim::suno::types::Callback;
use encore_sim::{DEMO_TEMPLATE_ID, SimConfig, SimState, serve};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{KEY, client};

async fn receiver() -> (
    String,
    mpsc::UnboundedReceiver<Value>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(tx): State<mpsc::UnboundedSender<Value>>, Json(v): Json<Value>| async move {
                    let _ = tx.send(v);
                    "ok"
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, rx, task)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a callback arrives")
        .unwrap()
}

#[tokio::test]
async fn suno_callbacks_and_creatomate_webhooks_are_delivered() {
    let (hook, mut rx, server) = receiver().await;
    let sim = serve(
        SimState::new(SimConfig {
            time_scale: 0.002,
            ..SimConfig::default()
        }),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let c = client();
    let created: Value = c
        .post(format!("{}/api/v1/generate", sim.base_url()))
        .bearer_auth(KEY)
        .json(&json!({ "customMode": false, "instrumental": false, "model": "V5", "callBackUrl": hook, "prompt": "a song about tea" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task = created["data"]["taskId"].as_str().unwrap().to_owned();
    let mut stages = Vec::new();
    for _ in 0..3 {
        let cb: Callback = serde_json::from_value(next(&mut rx).await).unwrap();
        assert_eq!(cb.data.task_id.as_deref(), Some(task.as_str()));
        stages.push(cb.data.callback_type.clone());
        if cb.data.callback_type == "complete" {
            let tracks = cb.data.data.unwrap();
            assert_eq!(tracks.len(), 2);
            assert!(
                tracks[0]
                    .audio_url
                    .as_deref()
                    .unwrap()
                    .contains("/__sim/files/audio/")
            );
        }
    }
    assert_eq!(stages, ["text", "first", "complete"]);

    let renders: Value = c
        .post(format!("{}/v1/renders", sim.base_url()))
        .bearer_auth(KEY)
        .json(&json!({ "template_id": DEMO_TEMPLATE_ID, "webhook_url": hook, "metadata": "m-1" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hooked = next(&mut rx).await;
    assert_eq!(hooked["id"], renders[0]["id"]);
    assert_eq!(hooked["status"], "succeeded");
    assert_eq!(hooked["metadata"], "m-1");
    sim.shutdown().await;
    server.abort();
}
