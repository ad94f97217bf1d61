//! Prints the timeout and retry policy of every endpoint and the protections of every service,
//! after `encore.toml` and `ENCORE_*`.
//!
//! ```sh
//! ENCORE_ENDPOINTS__SUNO_GENERATE__MAX_RETRIES=5 cargo run -p encore-clients --example policies
//! ```

use encore_clients::{Config, Service};
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
    println!();
    println!(
        "{:<11} {:>14} {:>22} {:>18}",
        "service", "retry budget", "breaker", "rate limit"
    );
    for service in Service::ALL {
        let p = config.service(service);
        let budget = if p.budget.enabled {
            format!(
                "{:.0}% + {}/s",
                p.budget.ratio * 100.0,
                p.budget.min_per_sec
            )
        } else {
            "off".to_owned()
        };
        let breaker = if p.breaker.enabled {
            format!(
                "{} fails, open {}",
                p.breaker.consecutive_failures,
                fmt_duration(p.breaker.open_for)
            )
        } else {
            "off".to_owned()
        };
        let limit = if p.rate_limit.enabled {
            format!(
                "{} per {}",
                p.rate_limit.requests,
                fmt_duration(p.rate_limit.per)
            )
        } else {
            "off".to_owned()
        };
        println!(
            "{:<11} {budget:>14} {breaker:>22} {limit:>18}",
            service.as_str()
        );
    }
}
