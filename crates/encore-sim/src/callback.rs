//! Outbound callbacks (Suno `callBackUrl`, Creatomate `webhook_url`): JSON POSTs at the
//! virtual instants a job's stages happen, made hostile by a scenario's
//! [`CallbackFaults`], each recorded in the ledger as a
//! [`CallbackRecord`](crate::CallbackRecord).
//!
//! One task per job delivers its callbacks in order, never blocking a handler; a stopped
//! server cancels the deliveries still due. Each POST
//! has a [`CALLBACK_TIMEOUT`] (real time). Suno retries a failed delivery (an error or a
//! non-2xx answer) up to [`SUNO_CALLBACK_RETRIES`] times, [`CALLBACK_RETRY_DELAY_S`] virtual
//! seconds apart, and then deliveries that task no more callbacks ("if 3 consecutive retries
//! fail, the system will stop sending callbacks"); Creatomate documents no retries, so a
//! webhook is tried once. Only plain `http://` URLs are delivered (the simulator has no TLS
//! client): deliveries to other URLs are recorded with an error and not retried.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Uri, header};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::ids;
use crate::ledger::CallbackRecord;
use crate::outcome::CallbackFaults;
use crate::route::Upstream;
use crate::state::{SimState, lock};

/// Upstream's documented callback timeout (Suno; real time, not scaled).
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(15);
/// Retries of a failed Suno callback (documented: "3 consecutive retries").
pub const SUNO_CALLBACK_RETRIES: u32 = 3;
/// Virtual seconds between a failed callback and its retry (UNCONFIRMED upstream).
pub const CALLBACK_RETRY_DELAY_S: f64 = 10.0;

/// One stage's callback, planned when the job is created.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    /// Suno `callbackType`, or the render status for Creatomate.
    pub(crate) stage: String,
    /// Virtual seconds after creation at which the stage happens.
    pub(crate) stage_virtual_s: f64,
    /// The JSON body.
    pub(crate) body: Value,
}

/// All callbacks of one job.
#[derive(Debug)]
pub(crate) struct JobCallbacks {
    pub(crate) service: Upstream,
    pub(crate) job_id: String,
    pub(crate) url: String,
    /// The instant the job's timeline starts.
    pub(crate) created: Instant,
    /// In stage order.
    pub(crate) planned: Vec<Planned>,
    pub(crate) faults: CallbackFaults,
}

/// One POST (or withheld POST) on a job's delivery schedule.
#[derive(Clone, Debug)]
struct Delivery {
    /// Virtual seconds after creation.
    due_s: f64,
    rank: f64,
    stage: String,
    stage_virtual_s: f64,
    body: Arc<Value>,
    copy: u32,
    attempt: u32,
    late: bool,
    out_of_order: bool,
    dropped: bool,
}

/// Applies the faults to a job's planned callbacks: the deliveries, in the order they go
/// out. Draws four numbers per callback (drop, late, out of order, duplicate) whatever their
/// probabilities, so changing one probability does not reshuffle the others.
fn schedule(planned: Vec<Planned>, faults: &CallbackFaults, rng: &mut impl Rng) -> Vec<Delivery> {
    let mut deliveries: Vec<Delivery> = Vec::with_capacity(planned.len());
    let mut duplicate = Vec::with_capacity(planned.len());
    for (i, p) in planned.into_iter().enumerate() {
        let draws: [f64; 4] = [rng.random(), rng.random(), rng.random(), rng.random()];
        let dropped = draws[0] < faults.drop;
        let late = !dropped && draws[1] < faults.late;
        deliveries.push(Delivery {
            due_s: p.stage_virtual_s + if late { faults.late_by_s } else { 0.0 },
            rank: i as f64,
            stage: p.stage,
            stage_virtual_s: p.stage_virtual_s,
            body: Arc::new(p.body),
            copy: 1,
            attempt: 1,
            late,
            out_of_order: !dropped && draws[2] < faults.out_of_order,
            dropped,
        });
        duplicate.push(!dropped && draws[3] < faults.duplicate);
    }
    // Hold each out-of-order callback until just after the next one (from the last back,
    // so a chain of them keeps its reversed order); the last one has no successor.
    let n = deliveries.len();
    for i in (0..n).rev() {
        if !deliveries[i].out_of_order {
            continue;
        }
        if i + 1 == n {
            deliveries[i].out_of_order = false;
            continue;
        }
        let (due, rank) = (deliveries[i + 1].due_s, deliveries[i + 1].rank);
        deliveries[i].due_s = deliveries[i].due_s.max(due);
        deliveries[i].rank = rank + 0.5;
    }
    let mut order: Vec<(Delivery, bool)> = deliveries.into_iter().zip(duplicate).collect();
    order.sort_by(|(a, _), (b, _)| a.due_s.total_cmp(&b.due_s).then(a.rank.total_cmp(&b.rank)));
    let mut out = Vec::with_capacity(order.len() * 2);
    for (delivery, dup) in order {
        if dup {
            let mut copy = delivery.clone();
            copy.copy = 2;
            out.push(delivery);
            out.push(copy);
        } else {
            out.push(delivery);
        }
    }
    out
}

/// Schedules a job's callbacks (seeded by the simulator seed and the job id) and spawns the
/// task that delivers them.
pub(crate) fn deliver(state: &SimState, job: JobCallbacks) {
    let label = match job.service {
        Upstream::Suno => "callbacks.suno",
        Upstream::Creatomate => "callbacks.creatomate",
        Upstream::Openai => "callbacks.openai",
    };
    let mut rng = ids::rng_for_content(state.config().seed, label, job.job_id.as_bytes());
    let deliveries = schedule(job.planned, &job.faults, &mut rng);
    let retries = match job.service {
        Upstream::Suno => SUNO_CALLBACK_RETRIES,
        Upstream::Creatomate | Upstream::Openai => 0,
    };
    let target = Target::parse(&job.url);
    tokio::spawn(run(
        state.clone(),
        job.service,
        job.job_id,
        job.created,
        target,
        deliveries,
        retries,
    ));
}

/// Where callbacks go: a deliverable `http://` URI, or why not.
#[derive(Debug)]
struct Target {
    path: String,
    uri: Result<Uri, &'static str>,
}

impl Target {
    fn parse(url: &str) -> Self {
        match url.parse::<Uri>() {
            Ok(uri) => Target {
                path: uri.path().to_owned(),
                uri: if uri.scheme_str() == Some("http") && uri.host().is_some() {
                    Ok(uri)
                } else {
                    Err("not delivered: encore-sim delivers only http:// URLs")
                },
            },
            Err(_) => Target {
                path: String::new(),
                uri: Err("not delivered: the URL does not parse"),
            },
        }
    }
}

async fn run(
    state: SimState,
    service: Upstream,
    job_id: String,
    created: Instant,
    target: Target,
    mut queue: Vec<Delivery>,
    retries: u32,
) {
    let mut server_stopped = state.inner.callbacks_stopped.subscribe();
    let mut stopped = false;
    while !queue.is_empty() {
        let delivery = queue.remove(0);
        tokio::select! {
            () = tokio::time::sleep_until(created + state.scaled(delivery.due_s)) => {}
            _ = server_stopped.wait_for(|s| *s) => return,
        }
        let mut record = CallbackRecord {
            seq: 0,
            service,
            job_id: job_id.clone(),
            stage: delivery.stage.clone(),
            path: target.path.clone(),
            copy: delivery.copy,
            attempt: delivery.attempt,
            late: delivery.late,
            out_of_order: delivery.out_of_order,
            dropped: delivery.dropped || stopped,
            stage_virtual_s: delivery.stage_virtual_s,
            at_ms: state.at_ms(),
            status: None,
            error: None,
        };
        if delivery.dropped || stopped {
            record.error = Some(
                if delivery.dropped {
                    "dropped by the scenario"
                } else {
                    "not sent: Suno stops sending callbacks after a callback's retries failed"
                }
                .to_owned(),
            );
            lock(&state.inner.ledger).start_callback(record);
            continue;
        }
        let uri = match &target.uri {
            Ok(uri) => uri,
            Err(why) => {
                record.error = Some((*why).to_owned());
                lock(&state.inner.ledger).start_callback(record);
                continue;
            }
        };
        let seq = lock(&state.inner.ledger).start_callback(record);
        let (status, error) =
            match tokio::time::timeout(CALLBACK_TIMEOUT, post(uri, &delivery.body)).await {
                Ok(Ok(status)) => (Some(status.as_u16()), None),
                Ok(Err(e)) => (None, Some(e.to_string())),
                Err(_) => (None, Some("timed out".to_owned())),
            };
        tracing::debug!(
            ?service, job = %job_id, stage = %delivery.stage, ?status, ?error,
            "callback attempt"
        );
        lock(&state.inner.ledger).finish_callback(seq, status, error);
        let failed = !status.is_some_and(|s| (200..300).contains(&s));
        if failed && retries > 0 {
            if delivery.attempt <= retries {
                let due_s = state.virtual_since(created).min(1e12) + CALLBACK_RETRY_DELAY_S;
                let retry = Delivery {
                    due_s: due_s.max(delivery.due_s),
                    attempt: delivery.attempt + 1,
                    ..delivery
                };
                let at = queue.partition_point(|s| s.due_s <= retry.due_s);
                queue.insert(at, retry);
            } else {
                stopped = true;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn planned() -> Vec<Planned> {
        ["text", "first", "complete"]
            .iter()
            .zip([20.0, 35.0, 160.0])
            .map(|(stage, at)| Planned {
                stage: (*stage).to_owned(),
                stage_virtual_s: at,
                body: Value::Null,
            })
            .collect()
    }

    fn stages(deliveries: &[Delivery]) -> Vec<(&str, u32)> {
        deliveries
            .iter()
            .map(|s| (s.stage.as_str(), s.copy))
            .collect()
    }

    #[test]
    fn no_faults_keeps_stage_order_and_times() {
        let deliveries = schedule(
            planned(),
            &CallbackFaults::default(),
            &mut StdRng::seed_from_u64(1),
        );
        assert_eq!(
            stages(&deliveries),
            [("text", 1), ("first", 1), ("complete", 1)]
        );
        let dues: Vec<f64> = deliveries.iter().map(|s| s.due_s).collect();
        assert_eq!(dues, [20.0, 35.0, 160.0]);
        assert!(
            deliveries
                .iter()
                .all(|s| !s.late && !s.dropped && !s.out_of_order)
        );
    }

    #[test]
    fn every_fault_at_probability_one() {
        let rng = &mut StdRng::seed_from_u64(1);
        let dup = CallbackFaults {
            duplicate: 1.0,
            ..CallbackFaults::default()
        };
        assert_eq!(
            stages(&schedule(planned(), &dup, rng)),
            [
                ("text", 1),
                ("text", 2),
                ("first", 1),
                ("first", 2),
                ("complete", 1),
                ("complete", 2)
            ]
        );
        let ooo = CallbackFaults {
            out_of_order: 1.0,
            ..CallbackFaults::default()
        };
        let deliveries = schedule(planned(), &ooo, rng);
        // each one waits for the next: the reverse order, all at the last stage's time
        assert_eq!(
            stages(&deliveries),
            [("complete", 1), ("first", 1), ("text", 1)]
        );
        assert!(deliveries.iter().all(|s| (s.due_s - 160.0).abs() < 1e-9));
        assert!(
            !deliveries[0].out_of_order,
            "the last callback has no successor"
        );
        let late = CallbackFaults {
            late: 1.0,
            late_by_s: 5.0,
            ..CallbackFaults::default()
        };
        let dues: Vec<f64> = schedule(planned(), &late, rng)
            .iter()
            .map(|s| s.due_s)
            .collect();
        assert_eq!(dues, [25.0, 40.0, 165.0]);
        let drop = CallbackFaults {
            drop: 1.0,
            duplicate: 1.0,
            late: 1.0,
            ..CallbackFaults::default()
        };
        let deliveries = schedule(planned(), &drop, rng);
        assert_eq!(deliveries.len(), 3, "a dropped callback is not duplicated");
        assert!(deliveries.iter().all(|s| s.dropped && !s.late));
    }

    #[test]
    fn only_the_next_one_overtakes() {
        // out of order on "text" only: first, text, complete
        let faults = CallbackFaults {
            out_of_order: 0.5,
            ..CallbackFaults::default()
        };
        let mut found = false;
        for seed in 0..200 {
            let deliveries = schedule(planned(), &faults, &mut StdRng::seed_from_u64(seed));
            let flags: Vec<bool> = deliveries.iter().map(|s| s.out_of_order).collect();
            if stages(&deliveries) == [("first", 1), ("text", 1), ("complete", 1)] {
                assert_eq!(flags, [false, true, false]);
                assert!((deliveries[1].due_s - 35.0).abs() < 1e-9);
                found = true;
            }
        }
        assert!(found, "some seed delays only the text callback");
    }

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:9/hooks/suno/j1/tok?secret=1");
        assert_eq!(t.path, "/hooks/suno/j1/tok");
        assert!(t.uri.is_ok());
        let t = Target::parse("https://example.test/cb");
        assert_eq!(t.path, "/cb");
        assert!(t.uri.is_err());
        assert!(Target::parse("not a url").uri.is_err());
    }
}
