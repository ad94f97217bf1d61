//! `encore lyrics`, `song` and `video`: each stage alone, chained by hand, against a simulator.

use serde_json::Value;

use crate::keys::sim_with;
use crate::{encore, json_output};

/// `encore` pointed at the simulator at `base`, with fast polling.
fn stage(base: &str, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = encore();
    cmd.env("ENCORE_PIPELINE__SONG_POLL__INTERVAL", "100ms")
        .env("ENCORE_PIPELINE__VIDEO_POLL__INTERVAL", "100ms")
        .args(args)
        .args(["--sim", base, "--json"]);
    cmd
}

fn succeeded(doc: &Value) -> &Value {
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    assert_eq!(doc["exit_code"], 0, "{doc:#}");
    assert!(
        doc["error"].is_null() && doc["error_class"].is_null(),
        "{doc:#}"
    );
    &doc["result"]
}

#[test]
fn the_three_stages_chain_into_a_video() {
    let (rt, sim) = sim_with("calm");
    let base = sim.base_url();
    let lyrics = json_output(
        &mut stage(
            &base,
            &[
                "lyrics",
                "--business",
                "a bakery",
                "--name",
                "Haneul",
                "--lang",
                "en",
            ],
        ),
        0,
    );
    let lyrics = succeeded(&lyrics);
    let (title, style, text) = (
        lyrics["title"].as_str().unwrap(),
        lyrics["style"].as_str().unwrap(),
        lyrics["lyrics"].as_str().unwrap(),
    );
    let song = json_output(
        &mut stage(
            &base,
            &["song", "--title", title, "--style", style, "--lyrics", text],
        ),
        0,
    );
    let song = succeeded(&song);
    let audio_url = song["audio_url"].as_str().unwrap();
    assert!(audio_url.starts_with(&base), "{song:#}");
    let video = json_output(
        &mut stage(
            &base,
            &[
                "video",
                "--audio-url",
                audio_url,
                "--title",
                title,
                "--captions",
                text,
            ],
        ),
        0,
    );
    let video = succeeded(&video);
    assert!(
        video["url"]
            .as_str()
            .unwrap()
            .contains("/__sim/files/renders/"),
        "{video:#}"
    );
    let ledger = sim.state().ledger();
    assert_eq!(
        (
            ledger.openai_responses,
            ledger.suno_tasks,
            ledger.creatomate_renders
        ),
        (1, 1, 1)
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn a_failed_stage_says_why_in_its_document_and_its_exit_code() {
    let (rt, sim) = sim_with("calm");
    let base = sim.base_url();
    // The simulator has no such template: Creatomate answers 404, a permanent failure.
    let mut cmd = stage(
        &base,
        &["video", "--audio-url", "http://x/a.mp3", "--title", "t"],
    );
    cmd.env(
        "CREATOMATE_TEMPLATE_ID",
        "00000000-0000-0000-0000-000000000000",
    );
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["status"], "failed", "{doc:#}");
    assert!(doc["result"].is_null(), "{doc:#}");
    assert_eq!(doc["error_class"], "permanent", "{doc:#}");
    assert_eq!(doc["exit_code"], 1, "{doc:#}");
    let error = doc["error"].as_str().unwrap();
    assert!(stderr.contains(&format!("error: {error}")), "{stderr}");
    assert_eq!(sim.state().ledger().creatomate_renders, 0);
    rt.block_on(sim.shutdown());
}
