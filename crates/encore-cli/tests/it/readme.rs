//! The README's contracts (exit codes, `--json` fields, `config show`) against the binary.

use encore_cli::exit::Exit;
use serde_json::Value;

use crate::{encore, json_output};

const README: &str = include_str!("../../../../README.md");

/// The README's lines under the heading `title` (`### Exit codes`), up to the next heading of
/// the same or a higher level outside code blocks.
fn section(title: &str) -> String {
    let level = title.split(' ').next().unwrap().len();
    let mut lines = README.lines().skip_while(|l| *l != title);
    assert_eq!(lines.next(), Some(title), "README has no {title:?}");
    let mut in_code = false;
    let mut out = String::new();
    for line in lines {
        in_code ^= line.starts_with("```");
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !in_code && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn the_exit_code_table_lists_every_exit_code() {
    let documented: Vec<u8> = section("### Exit codes")
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
    assert_eq!(documented, codes);
}

/// Every object key in `doc`, with its path (`calls[].endpoint`), except the per-route
/// request counts, whose keys are routes.
fn keys(doc: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match doc {
        Value::Object(map) if path != "ledger.requests" => {
            for (key, value) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.push((key.clone(), child.clone()));
                keys(value, &child, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                keys(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_json_field_is_documented_and_every_documented_field_exists() {
    let json = section("### `--json`");
    let one = json_output(encore().args(["demo", "--scenario", "calm", "--json"]), 0);
    let many = json_output(
        encore().args(["demo", "--scenario", "calm", "--pipelines", "2", "--json"]),
        0,
    );
    let mut found = Vec::new();
    keys(&one, "", &mut found);
    keys(&many, "", &mut found);
    for (key, path) in &found {
        assert!(
            json.contains(&format!("\"{key}\"")) || json.contains(&format!("`{key}`")),
            "{path} is not in the README's --json section"
        );
    }
    // The example's keys are real: each is a key of the one-pipeline document.
    let example = json
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an example document");
    let text = one.to_string();
    for piece in example.split('"').collect::<Vec<_>>().windows(2) {
        let (key, after) = (piece[0], piece[1]);
        if after.trim_start().starts_with(':') && !key.contains('…') {
            assert!(
                text.contains(&format!("\"{key}\":")),
                "the README's example has {key:?}, the document does not:\n{one:#}"
            );
        }
    }
}

#[test]
fn the_config_show_example_is_the_real_output() {
    let out = encore().args(["config", "show"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let section =
        section("### The per-endpoint policy table (the seed plan's, shipped as the defaults)");
    let example = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an example");
    assert_eq!(example, stdout);
}
