//! `encore config show|check`: the effective configuration, as tables or JSON.

use clap::Subcommand;
use encore_clients::config::ServicePolicy;
use encore_clients::{Config, Endpoint, Service};
use encore_resilience::fmt_duration;

use crate::args::ConfigArgs;
use crate::error::CliError;
use crate::json::{ConfigCheckJson, ConfigShowJson};
use crate::output;
use crate::setup::load_settings;

/// `encore config …`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective per-endpoint policy table and each service's retry budget, circuit
    /// breaker and rate limit.
    Show(ConfigArgs),
    /// Validate the configuration (file and ENCORE_* variables) and exit.
    Check(ConfigArgs),
}

/// Shows or checks the configuration; an invalid one is bad input (exit 3).
pub fn run(action: ConfigAction) -> Result<(), CliError> {
    match action {
        ConfigAction::Check(args) => {
            load_settings(&args)?;
            if args.json {
                output::json(&ConfigCheckJson { status: "ok" })
            } else {
                output::text("configuration ok\n")
            }
        }
        ConfigAction::Show(args) => {
            let settings = load_settings(&args)?;
            if args.json {
                output::json(&ConfigShowJson {
                    clients: &settings.clients,
                    pipeline: &settings.pipeline,
                })
            } else {
                output::text(&format!(
                    "{}\n{}",
                    policy_table(&settings.clients),
                    services_table(&settings.clients)
                ))
            }
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The effective per-endpoint policy table, as text.
fn policy_table(config: &Config) -> String {
    let mut out = format!(
        "retries: {}    http.connect_timeout: {}\n\n{:<22} {:<8} {:>8} {:>7}  {:<18} {:>8}  {}\n",
        if config.retries {
            "on"
        } else {
            "OFF (rollback)"
        },
        fmt_duration(config.http.connect_timeout),
        "endpoint",
        "retries",
        "timeout",
        "tries",
        "waits",
        "deadline",
        "replay if ambiguous"
    );
    for endpoint in Endpoint::ALL {
        let settings = config.endpoint(endpoint);
        let policy = settings.retry_policy(config.retries);
        let waits: Vec<String> = policy.backoff_seeded(0).map(fmt_duration).collect();
        out.push_str(&format!(
            "{:<22} {:<8} {:>8} {:>7}  {:<18} {:>8}  {}\n",
            endpoint.name(),
            on_off(policy.enabled),
            fmt_duration(policy.attempt_timeout),
            policy.max_attempts(),
            if waits.is_empty() {
                "-".to_owned()
            } else {
                waits.join(" → ")
            },
            fmt_duration(policy.deadline),
            if settings.retry_ambiguous {
                "yes"
            } else {
                "no"
            },
        ));
    }
    out
}

/// Each service's shared protections (`[services.<service>]`), one row per key.
fn services_table(config: &Config) -> String {
    type Row = (&'static str, fn(&ServicePolicy) -> String);
    let rows: [Row; 16] = [
        ("budget.enabled", |p| on_off(p.budget.enabled).to_owned()),
        ("budget.ratio", |p| p.budget.ratio.to_string()),
        ("budget.min_per_sec", |p| p.budget.min_per_sec.to_string()),
        ("budget.window", |p| fmt_duration(p.budget.window)),
        ("breaker.enabled", |p| on_off(p.breaker.enabled).to_owned()),
        ("breaker.consecutive_failures", |p| {
            p.breaker.consecutive_failures.to_string()
        }),
        ("breaker.failure_ratio", |p| {
            p.breaker.failure_ratio.to_string()
        }),
        ("breaker.min_calls", |p| p.breaker.min_calls.to_string()),
        ("breaker.window", |p| fmt_duration(p.breaker.window)),
        ("breaker.open_for", |p| fmt_duration(p.breaker.open_for)),
        ("breaker.max_open_for", |p| {
            fmt_duration(p.breaker.max_open_for)
        }),
        ("breaker.half_open_probes", |p| {
            p.breaker.half_open_probes.to_string()
        }),
        ("rate_limit.enabled", |p| {
            on_off(p.rate_limit.enabled).to_owned()
        }),
        ("rate_limit.requests", |p| p.rate_limit.requests.to_string()),
        ("rate_limit.per", |p| fmt_duration(p.rate_limit.per)),
        ("rate_limit.burst", |p| p.rate_limit.burst.to_string()),
    ];
    let mut out = format!("{:<30}", "services");
    for service in Service::ALL {
        out.push_str(&format!(" {:>10}", service.as_str()));
    }
    out.push('\n');
    for (key, value) in rows {
        out.push_str(&format!("{key:<30}"));
        for service in Service::ALL {
            out.push_str(&format!(" {:>10}", value(config.service(service))));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of a `[services.<service>]` table, from its serialized form.
    fn service_keys() -> Vec<String> {
        let value = serde_json::to_value(ServicePolicy::default_for(Service::Suno)).unwrap();
        let mut keys = Vec::new();
        for (part, table) in value.as_object().unwrap() {
            for key in table.as_object().unwrap().keys() {
                keys.push(format!("{part}.{key}"));
            }
        }
        keys
    }

    #[test]
    fn the_services_table_has_a_row_for_every_key() {
        let table = services_table(&Config::default());
        let mut shown: Vec<String> = table
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().next().unwrap().to_owned())
            .collect();
        let mut keys = service_keys();
        shown.sort();
        keys.sort();
        assert_eq!(shown, keys);
    }
}
