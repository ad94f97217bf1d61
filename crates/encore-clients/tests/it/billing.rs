//! Never pay twice: under every fault kind of the simulator, once or forever, a logical Suno
//! generate or Creatomate render leaves exactly one billed job — or none, and then the error
//! says whether one may exist. In memory on paused time; `sockets.rs` repeats the
//! connection-level faults over real TCP.

use encore_clients::Error;
use encore_clients::creatomate::RenderRequest;
use encore_clients::suno::GenerateRequest;
use encore_sim::{DEMO_TEMPLATE_ID, Fault, Ledger, RouteId};

use crate::support::{Clients, always, clients, defaults, in_memory, sequence, sim_with};

/// One fault of every kind the simulator has (several variants of some).
pub const FAULTS: &[&str] = &[
    "\"ok\"",
    "{ kind = \"status\", status = 400 }",
    "{ kind = \"status\", status = 408 }",
    "{ kind = \"status\", status = 429 }",
    "{ kind = \"status\", status = 500 }",
    "{ kind = \"status\", status = 500, after_processing = true }",
    "{ kind = \"status\", status = 503, headers = { \"x-should-retry\" = \"true\" } }",
    "{ kind = \"status\", status = 200, body = \"not json\" }",
    "{ kind = \"openai_rate_limit\", retry_after_ms = 200 }",
    "\"openai_insufficient_quota\"",
    "{ kind = \"suno_code\", code = 405 }",
    "{ kind = \"suno_code\", code = 430 }",
    "{ kind = \"suno_code\", code = 455 }",
    "{ kind = \"suno_code\", code = 429 }",
    "{ kind = \"suno_code\", code = 500 }",
    "{ kind = \"suno_code\", code = 400 }",
    "{ kind = \"creatomate_rate_limit\", retry_after_s = 1 }",
    "{ kind = \"creatomate_rate_limit\", retry_after_s = 2, http_date = true }",
    "{ kind = \"server_error\", status = 502 }",
    "{ kind = \"server_error\", status = 503, should_retry = true }",
    "{ kind = \"server_error\", status = 500, after_processing = true }",
    "{ kind = \"latency\", ms = 150 }",
    "{ kind = \"latency\", ms = 100000000 }",
    "{ kind = \"stall_body\", after_bytes = 4, ms = 150 }",
    "{ kind = \"stall_body\", after_bytes = 4, ms = 100000000 }",
    "\"reset_before_request\"",
    "\"reset_after_processing\"",
    "\"malformed_json\"",
    "\"truncated_body\"",
    "\"outage\"",
];

#[test]
fn the_fault_list_covers_every_kind() {
    for kind in Fault::KIND_NAMES {
        assert!(
            FAULTS.iter().any(|f| f.contains(&format!("\"{kind}\""))),
            "no case for fault kind {kind}"
        );
    }
}

pub async fn billed_call(c: &Clients, route: &str) -> Result<String, Error> {
    if route == "suno.generate" {
        c.suno
            .generate(&GenerateRequest::custom("[Verse]\nla", "pop", "Song"))
            .await
    } else {
        c.creatomate
            .render(&RenderRequest::new(DEMO_TEMPLATE_ID))
            .await
            .map(|r| r.id)
    }
}

/// The invariant, from the server's side.
pub fn check(route: &str, what: &str, result: &Result<String, Error>, ledger: &Ledger) {
    let route_id: RouteId = route.parse().unwrap();
    let jobs = if route_id == RouteId::SunoGenerate {
        ledger.suno_tasks
    } else {
        ledger.creatomate_renders
    };
    assert!(
        jobs <= 1,
        "{route} {what}: {jobs} billed jobs for one logical call"
    );
    match result {
        Ok(id) => {
            assert_eq!(jobs, 1, "{route} {what}: success without a job");
            assert!(
                ledger.jobs.iter().any(|j| &j.id == id),
                "{route} {what}: the job returned is the one billed"
            );
        }
        Err(e) => {
            if jobs == 1 {
                assert!(
                    e.may_have_run(),
                    "{route} {what}: a job exists but the error denies it: {e}"
                );
            }
            if !e.may_have_run() {
                assert_eq!(jobs, 0, "{route} {what}: {e}");
            }
            if e.may_have_run() && !e.is_exhausted() {
                assert!(e.to_string().contains("dashboard"), "{route} {what}: {e}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_fault_kind_once_or_forever_leaves_at_most_one_job_and_the_error_tells() {
    let mut ran = 0;
    for route in ["suno.generate", "creatomate.render"] {
        for fault in FAULTS {
            for forever in [false, true] {
                for mirrored in [false, true] {
                    if mirrored && !(route == "suno.generate" && fault.contains("suno_code")) {
                        continue;
                    }
                    let scenario = if forever {
                        always(route, fault)
                    } else {
                        sequence(route, fault)
                    };
                    let state = sim_with(&scenario, |c| c.suno_errors_as_http_status = mirrored);
                    let c = clients(&in_memory(&state), &defaults());
                    let result = billed_call(&c, route).await;
                    let what = format!("{fault} forever={forever} mirrored={mirrored}");
                    check(route, &what, &result, &state.ledger());
                    if let (false, Err(e)) = (forever, &result) {
                        // One fault then normal behaviour: only permanent errors and "may have
                        // run" refusals may fail the call.
                        assert!(e.is_permanent() || e.may_have_run(), "{route} {what}: {e}");
                    }
                    ran += 1;
                }
            }
        }
    }
    assert!(ran > 100);
}

#[tokio::test(start_paused = true)]
async fn the_hostile_scenario_creates_one_task_and_says_so() {
    let scenario = encore_sim::Scenario::named_source("hostile").unwrap();
    let state = sim_with(scenario, |_| {});
    let c = clients(&in_memory(&state), &defaults());
    let result = billed_call(&c, "suno.generate").await;
    let err = result.as_ref().unwrap_err();
    assert!(err.may_have_run(), "{err}");
    assert!(
        err.to_string().contains("check the Suno dashboard"),
        "{err}"
    );
    check("suno.generate", "hostile", &result, &state.ledger());
    assert_eq!(state.ledger().suno_tasks, 1);
}
