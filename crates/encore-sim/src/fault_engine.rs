//! Deciding faults: per-route call counters, the live scenario's rules and seeded mix
//! streams. The fault middleware (`inject`) applies the decision.

use std::collections::HashMap;

use rand::Rng;
use rand::rngs::StdRng;

use crate::fault::Fault;
use crate::ids;
use crate::route::RouteId;
use crate::scenario::Scenario;

/// Where a fault came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Window,
    Sequence,
    Mix,
}

/// The fault chosen for one call.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) attempt: u64,
    fault: Option<(Fault, Source)>,
}

impl Decision {
    /// The ledger label of the fault (`None` = no fault), e.g. `"window:outage"`.
    pub(crate) fn label(&self) -> Option<String> {
        self.fault.as_ref().map(|(f, source)| match source {
            Source::Window => format!("window:{}", f.label()),
            Source::Sequence | Source::Mix => f.label(),
        })
    }

    /// The fault to apply, if any.
    pub(crate) fn into_fault(self) -> Option<Fault> {
        self.fault.map(|(f, _)| f)
    }
}

#[derive(Debug)]
struct RouteCalls {
    count: u64,
    rng: StdRng,
}

/// Per-route call counters and seeded mix streams for the live scenario.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    scenario: Scenario,
    seed: u64,
    calls: HashMap<RouteId, RouteCalls>,
}

impl FaultEngine {
    pub(crate) fn new(scenario: Scenario, seed: u64) -> Self {
        FaultEngine {
            scenario,
            seed,
            calls: HashMap::new(),
        }
    }

    pub(crate) fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Counts the call and picks its fault: an active outage window, else the sequence
    /// entry for this attempt, else a draw from the mix.
    pub(crate) fn decide(&mut self, route: RouteId, virtual_s: f64) -> Decision {
        let seed = self.seed;
        let calls = self.calls.entry(route).or_insert_with(|| RouteCalls {
            count: 0,
            rng: ids::rng_for(seed, &format!("faults/{route}")),
        });
        calls.count += 1;
        let attempt = calls.count;
        let Some(rule) = self.scenario.routes.get(&route) else {
            return Decision {
                attempt,
                fault: None,
            };
        };
        let picked = if let Some(window) = rule.outage.as_ref().filter(|w| w.contains(virtual_s)) {
            Some((window.fault.clone(), Source::Window))
        } else if let Some(fault) = usize::try_from(attempt - 1)
            .ok()
            .and_then(|i| rule.sequence.get(i))
        {
            Some((fault.clone(), Source::Sequence))
        } else if rule.mix.is_empty() {
            None
        } else {
            let u: f64 = calls.rng.random();
            let mut acc = 0.0;
            rule.mix.iter().find_map(|entry| {
                acc += entry.p;
                (u < acc).then(|| (entry.fault.clone(), Source::Mix))
            })
        };
        Decision {
            attempt,
            fault: picked.filter(|(f, _)| *f != Fault::Ok),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{FaultRule, OutageWindow};

    #[test]
    fn engine_follows_sequence_then_mix_and_is_deterministic() {
        let scenario = Scenario::default().with_route(
            RouteId::SunoRecordInfo,
            FaultRule {
                sequence: vec![Fault::Outage, Fault::Ok, Fault::MalformedJson],
                mix: vec![crate::scenario::MixEntry {
                    p: 0.5,
                    fault: Fault::latency(1),
                }],
                outage: None,
            },
        );
        let run = |seed| {
            let mut e = FaultEngine::new(scenario.clone(), seed);
            (0..40)
                .map(|_| e.decide(RouteId::SunoRecordInfo, 0.0).label())
                .collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a[0].as_deref(), Some("outage"));
        assert_eq!(a[1], None);
        assert_eq!(a[2].as_deref(), Some("malformed_json"));
        let mixed = a[3..].iter().filter(|l| l.is_some()).count();
        assert!((5..35).contains(&mixed), "{mixed}");
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        let mut e = FaultEngine::new(scenario, 1);
        assert!(e.decide(RouteId::SunoGenerate, 0.0).fault.is_none());
    }

    #[test]
    fn window_wins_and_counts_attempts() {
        let scenario = Scenario::default().with_route(
            RouteId::CreatomateRender,
            FaultRule {
                sequence: vec![Fault::MalformedJson],
                outage: Some(OutageWindow {
                    from_s: 10.0,
                    to_s: Some(20.0),
                    fault: Fault::Outage,
                }),
                ..FaultRule::default()
            },
        );
        let mut e = FaultEngine::new(scenario, 1);
        let d = e.decide(RouteId::CreatomateRender, 15.0);
        assert_eq!(
            (d.attempt, d.label().as_deref()),
            (1, Some("window:outage"))
        );
        let d = e.decide(RouteId::CreatomateRender, 25.0);
        assert_eq!((d.attempt, d.label()), (2, None));
    }
}
