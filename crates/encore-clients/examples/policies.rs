//! Prints the timeout and retry policy of every endpoint, after `encore.toml` and `ENCORE_*`.
//!
//! ```sh
//! ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRIES=5 cargo run -p encore-clients --example policies
//! ```

use encore_clients::Config;
use encore_resilience::fmt_duration;

fn main() {
    let config = match Config::load(None) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "{:<22} {:>8} {:>9} {:<16} {:>9} {:>9}",
        "endpoint", "timeout", "attempts", "waits", "deadline", "ambiguous"
    );
    for (endpoint, policy, retry_ambiguous) in config.policy_table() {
        let waits: Vec<String> = policy.backoff_seeded(0).map(fmt_duration).collect();
        let waits = if waits.is_empty() {
            "-".to_owned()
        } else {
            waits.join(" → ")
        };
        let ambiguous = if !endpoint.is_billed() {
            "n/a (read)"
        } else if retry_ambiguous {
            "replayed"
        } else {
            "refused"
        };
        println!(
            "{:<22} {:>8} {:>9} {:<16} {:>9} {:>9}",
            endpoint.name(),
            fmt_duration(policy.attempt_timeout),
            policy.max_attempts(),
            waits,
            fmt_duration(policy.deadline),
            ambiguous
        );
    }
}
