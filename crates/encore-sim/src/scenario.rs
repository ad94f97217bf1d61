//! Scenarios: which faults each route suffers, and how simulated jobs end.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::fault::Fault;
use crate::outcome::{CreatomateScenario, OpenaiScenario, SunoScenario};
use crate::route::RouteId;

/// A fault plan for the whole simulator: per-route [`FaultRule`]s plus the outcomes of
/// OpenAI responses, Suno tasks and Creatomate renders, and hostile callback delivery.
///
/// The default (`Scenario::default()`, the `calm` scenario) injects nothing.
///
/// # Scenario file format (TOML)
///
/// ```
/// # use encore_sim::{Fault, RouteId, Scenario};
/// let scenario = Scenario::from_toml(r#"
/// name = "my-scenario"                 # optional
/// description = "what this exercises"  # optional
///
/// ## Route ids: openai.responses, suno.generate, suno.record_info, suno.timestamped_lyrics,
/// ## suno.credit, creatomate.render, creatomate.render_status, creatomate.templates,
/// ## creatomate.template
/// [routes."suno.generate"]
/// ## the 1st call gets a body-code 430, the 2nd is normal, the 3rd is reset after
/// ## processing; then the mix (if any) applies
/// sequence = [{ kind = "suno_code", code = 430 }, "ok", "reset_after_processing"]
///
/// [routes."openai.responses"]
/// ## after the sequence, each call draws from the mix (seeded); p values sum to <= 1
/// mix = [
///   { p = 0.10, fault = { kind = "latency", ms = 150 } },
///   { p = 0.05, fault = { kind = "openai_rate_limit", retry_after_ms = 200 } },
/// ]
///
/// [routes."creatomate.render_status"]
/// ## every call in this window of *virtual* seconds since start fails (default: "outage" = 503)
/// outage = { from_s = 0, to_s = 60, fault = "reset_before_request" }
///
/// [openai]
/// ## the nth created response ends like the nth entry, later ones complete:
/// ## completed | reasoning | refusal | failed_server_error | failed_invalid_prompt |
/// ## incomplete_max_output_tokens | incomplete_content_filter
/// outcomes = ["failed_server_error", "refusal"]
///
/// [suno]
/// ## the nth created task ends like the nth entry, later ones succeed:
/// ## success | skip_stages | create_task_failed | generate_audio_failed |
/// ## sensitive_word_error | callback_exception | callback_exception_before_audio | failed
/// outcomes = ["generate_audio_failed", "success"]
/// ## the nth timestamped-lyrics answer with data, then normal:
/// ## normal | null_timings | missing_timings | no_waveform | loose
/// timestamped_lyrics = ["loose"]
///
/// [suno.callbacks]                     # hostile callback delivery, seeded per task
/// duplicate = 0.5                      # probabilities 0..=1
/// out_of_order = 0.5
/// late = 0.0
/// late_by_s = 60                       # virtual seconds
/// drop = 0.0
///
/// [creatomate]
/// outcomes = ["failed"]                # succeeded | failed
/// failure_message = "Source file could not be downloaded"
///
/// [creatomate.callbacks]               # the same knobs except out_of_order
/// drop = 1.0
/// "#).unwrap();
///
/// let rule = &scenario.routes[&RouteId::SunoGenerate];
/// assert_eq!(rule.sequence[0], Fault::suno_code(430));
/// assert!((scenario.suno.callbacks.duplicate - 0.5).abs() < f64::EPSILON);
/// ```
///
/// Fault kinds (see [`Fault`]): `ok`, `status`, `openai_rate_limit`,
/// `openai_insufficient_quota`, `suno_code`, `creatomate_rate_limit`, `server_error`,
/// `latency`, `stall_body`, `reset_before_request`, `reset_after_processing`,
/// `malformed_json`, `truncated_body`, `outage`. Unknown keys anywhere are rejected with an
/// error naming the key.
///
/// Counting: the *n*th call of a route (its attempt number in the ledger) gets the *n*th
/// `sequence` entry, whether or not an outage window was active for it. Mix draws use one
/// seeded random stream per route, so they depend only on the seed and that route's call
/// order. Outage windows are measured in virtual seconds (real seconds divided by
/// `time_scale`) since the simulator state was created.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Per-route fault rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<RouteId, FaultRule>,
    /// How OpenAI responses end.
    #[serde(default, skip_serializing_if = "OpenaiScenario::is_empty")]
    pub openai: OpenaiScenario,
    /// How Suno tasks end, timestamped-lyrics shapes, callback delivery.
    #[serde(default, skip_serializing_if = "SunoScenario::is_empty")]
    pub suno: SunoScenario,
    /// How Creatomate renders end, webhook delivery.
    #[serde(default, skip_serializing_if = "CreatomateScenario::is_empty")]
    pub creatomate: CreatomateScenario,
}

/// The faults of one route. All parts are optional and combine: an active outage window
/// wins, then the `sequence` entry for this attempt, then a draw from `mix`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The *n*th call gets the *n*th entry (`"ok"` = normal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence: Vec<Fault>,
    /// Probability mix drawn for calls after the sequence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mix: Vec<MixEntry>,
    /// A window during which every call fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<OutageWindow>,
}

/// One entry of a probability mix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// Probability in `0.0..=1.0`.
    pub p: f64,
    /// The fault applied when drawn.
    pub fault: Fault,
}

/// A window of virtual seconds since start during which every call of a route gets `fault`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageWindow {
    /// Start, virtual seconds (default 0).
    #[serde(default)]
    pub from_s: f64,
    /// End (exclusive), virtual seconds; `None` = forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_s: Option<f64>,
    /// The fault (default [`Fault::Outage`], a 503).
    #[serde(default = "outage_fault")]
    pub fault: Fault,
}

fn outage_fault() -> Fault {
    Fault::Outage
}

impl OutageWindow {
    /// An outage for the whole run.
    pub fn forever() -> Self {
        OutageWindow {
            from_s: 0.0,
            to_s: None,
            fault: Fault::Outage,
        }
    }

    /// Whether `virtual_s` lies inside the window.
    pub fn contains(&self, virtual_s: f64) -> bool {
        virtual_s >= self.from_s && self.to_s.is_none_or(|to| virtual_s < to)
    }
}

impl FaultRule {
    /// A rule with only a sequence.
    pub fn sequence(faults: impl IntoIterator<Item = Fault>) -> Self {
        FaultRule {
            sequence: faults.into_iter().collect(),
            ..FaultRule::default()
        }
    }

    /// A rule with only a mix.
    pub fn mix(entries: impl IntoIterator<Item = (f64, Fault)>) -> Self {
        FaultRule {
            mix: entries
                .into_iter()
                .map(|(p, fault)| MixEntry { p, fault })
                .collect(),
            ..FaultRule::default()
        }
    }

    /// A rule with only an outage window.
    pub fn outage(window: OutageWindow) -> Self {
        FaultRule {
            outage: Some(window),
            ..FaultRule::default()
        }
    }

    /// Every fault this rule can produce.
    pub fn faults(&self) -> impl Iterator<Item = &Fault> {
        self.sequence
            .iter()
            .chain(self.mix.iter().map(|m| &m.fault))
            .chain(self.outage.iter().map(|o| &o.fault))
    }
}

/// Why a scenario could not be loaded. The message names the offending key.
#[derive(Debug)]
pub struct ScenarioError {
    kind: ScenarioErrorKind,
}

#[derive(Debug)]
enum ScenarioErrorKind {
    Toml(toml::de::Error),
    Json(serde_json::Error),
    Invalid { key: String, reason: String },
}

impl ScenarioError {
    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ScenarioError {
            kind: ScenarioErrorKind::Invalid {
                key: key.into(),
                reason: reason.into(),
            },
        }
    }

    /// The dotted key of a value that parsed but is out of range (`None` for syntax errors,
    /// whose message names the key instead).
    pub fn key(&self) -> Option<&str> {
        match &self.kind {
            ScenarioErrorKind::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ScenarioErrorKind::Toml(e) => write!(f, "invalid scenario TOML: {}", e.message()),
            ScenarioErrorKind::Json(e) => write!(f, "invalid scenario JSON: {e}"),
            ScenarioErrorKind::Invalid { key, reason } => {
                write!(f, "invalid scenario value at `{key}`: {reason}")
            }
        }
    }
}

impl std::error::Error for ScenarioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ScenarioErrorKind::Toml(e) => Some(e),
            ScenarioErrorKind::Json(e) => Some(e),
            ScenarioErrorKind::Invalid { .. } => None,
        }
    }
}

const CALM: &str = include_str!("scenarios/calm.toml");
const FLAKY: &str = include_str!("scenarios/flaky.toml");
const OUTAGE: &str = include_str!("scenarios/outage.toml");
const HOSTILE: &str = include_str!("scenarios/hostile.toml");

impl Scenario {
    /// Names accepted by [`Scenario::named`].
    pub const NAMES: &[&str] = &["calm", "flaky", "outage", "hostile"];

    /// A shipped scenario:
    /// - `calm`: no faults;
    /// - `flaky`: a realistic mix a correct client must survive (only provably unprocessed
    ///   faults on billed POSTs, short waits);
    /// - `outage`: Creatomate answers 503 to every call for the whole run;
    /// - `hostile`: every fault kind somewhere, including a reset after processing on the
    ///   first Suno generate.
    pub fn named(name: &str) -> Option<Scenario> {
        let text = match name {
            "calm" => CALM,
            "flaky" => FLAKY,
            "outage" => OUTAGE,
            "hostile" => HOSTILE,
            _ => return None,
        };
        Some(Scenario::from_toml(text).expect("shipped scenarios are valid"))
    }

    /// The TOML text of a shipped scenario, for users who want a starting point.
    pub fn named_source(name: &str) -> Option<&'static str> {
        match name {
            "calm" => Some(CALM),
            "flaky" => Some(FLAKY),
            "outage" => Some(OUTAGE),
            "hostile" => Some(HOSTILE),
            _ => None,
        }
    }

    /// Parses and validates a TOML scenario (format in the type docs).
    pub fn from_toml(s: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(s).map_err(|e| ScenarioError {
            kind: ScenarioErrorKind::Toml(e),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Parses and validates a JSON scenario (same structure as the TOML form).
    pub fn from_json(s: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = serde_json::from_str(s).map_err(|e| ScenarioError {
            kind: ScenarioErrorKind::Json(e),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Serializes to TOML (round-trips through [`Scenario::from_toml`]).
    ///
    /// # Errors
    ///
    /// If a `status` fault's JSON `body` contains `null`, which TOML cannot express (use
    /// JSON, or a string body with a `content-type` header).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Sets the rule of one route (builder style).
    pub fn with_route(mut self, route: RouteId, rule: FaultRule) -> Self {
        self.routes.insert(route, rule);
        self
    }

    /// The rule of a route, if any.
    pub fn rule(&self, route: RouteId) -> Option<&FaultRule> {
        self.routes.get(&route)
    }

    /// Checks ranges that serde cannot: probabilities, windows, statuses.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.suno.callbacks.validate().map_err(|(field, reason)| {
            ScenarioError::invalid(format!("suno.callbacks.{field}"), reason)
        })?;
        self.creatomate
            .callbacks
            .validate()
            .map_err(|(field, reason)| {
                ScenarioError::invalid(format!("creatomate.callbacks.{field}"), reason)
            })?;
        if self.creatomate.callbacks.out_of_order != 0.0 {
            return Err(ScenarioError::invalid(
                "creatomate.callbacks.out_of_order",
                "a render has one webhook, so it cannot come out of order (use duplicate or late)",
            ));
        }
        for (route, rule) in &self.routes {
            let base = format!("routes.\"{route}\"");
            for (i, fault) in rule.sequence.iter().enumerate() {
                fault
                    .validate()
                    .map_err(|r| ScenarioError::invalid(format!("{base}.sequence[{i}]"), r))?;
            }
            let mut total = 0.0;
            for (i, entry) in rule.mix.iter().enumerate() {
                let key = format!("{base}.mix[{i}]");
                if !(0.0..=1.0).contains(&entry.p) {
                    return Err(ScenarioError::invalid(
                        format!("{key}.p"),
                        format!("probability {} is not in 0..=1", entry.p),
                    ));
                }
                total += entry.p;
                entry
                    .fault
                    .validate()
                    .map_err(|r| ScenarioError::invalid(format!("{key}.fault"), r))?;
            }
            if total > 1.0 + 1e-9 {
                return Err(ScenarioError::invalid(
                    format!("{base}.mix"),
                    format!("probabilities sum to {total} (must be <= 1)"),
                ));
            }
            if let Some(window) = &rule.outage {
                let key = format!("{base}.outage");
                if !window.from_s.is_finite() || window.from_s < 0.0 {
                    return Err(ScenarioError::invalid(
                        format!("{key}.from_s"),
                        "must be a finite number >= 0",
                    ));
                }
                if let Some(to) = window.to_s
                    && (to.is_nan() || to < window.from_s)
                {
                    return Err(ScenarioError::invalid(
                        format!("{key}.to_s"),
                        "must be >= from_s",
                    ));
                }
                window
                    .fault
                    .validate()
                    .map_err(|r| ScenarioError::invalid(format!("{key}.fault"), r))?;
            }
        }
        Ok(())
    }

    /// Every fault the scenario can produce, with its route.
    pub fn faults(&self) -> impl Iterator<Item = (RouteId, &Fault)> {
        self.routes
            .iter()
            .flat_map(|(route, rule)| rule.faults().map(move |f| (*route, f)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn named_scenarios_parse() {
        for name in Scenario::NAMES {
            let s = Scenario::named(name).unwrap();
            assert_eq!(s.name.as_deref(), Some(*name));
            let again = Scenario::from_toml(&s.to_toml().unwrap()).unwrap();
            assert_eq!(again, s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(Scenario::from_json(&json).unwrap(), s);
        }
        assert!(Scenario::named("nope").is_none());
        assert_eq!(Scenario::named("calm").unwrap().routes.len(), 0);
    }

    #[test]
    fn hostile_covers_every_fault_kind() {
        let s = Scenario::named("hostile").unwrap();
        let kinds: BTreeSet<_> = s.faults().map(|(_, f)| f.kind_name()).collect();
        for kind in Fault::KIND_NAMES {
            assert!(kinds.contains(kind), "hostile lacks {kind}");
        }
        assert!(s.routes.values().any(|r| r.outage.is_some()));
        assert!(
            s.faults()
                .any(|(r, f)| r.is_billed() && *f == Fault::ResetAfterProcessing)
        );
    }

    #[test]
    fn flaky_only_injects_unprocessed_faults_on_billed_posts() {
        let s = Scenario::named("flaky").unwrap();
        for (route, fault) in s.faults() {
            if route == RouteId::SunoGenerate || route == RouteId::CreatomateRender {
                assert!(
                    !fault.processes_request() || *fault == Fault::Ok,
                    "{route}: {fault:?} may run the job"
                );
                assert_ne!(*fault, Fault::ResetBeforeRequest, "{route}");
            }
            if let Fault::CreatomateRateLimit {
                retry_after_s: Some(s),
                ..
            }
            | Fault::OpenaiRateLimit {
                retry_after_s: Some(s),
                ..
            } = fault
            {
                assert!(*s <= 2, "{route}: Retry-After {s} too long for a demo");
            }
        }
    }

    #[test]
    fn outage_takes_creatomate_down() {
        let s = Scenario::named("outage").unwrap();
        let rule = s.rule(RouteId::CreatomateRender).unwrap();
        assert!(rule.outage.as_ref().unwrap().contains(1e9));
    }

    #[test]
    fn errors_name_the_bad_key() {
        let err = Scenario::from_toml("bogus = 1").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = Scenario::from_toml("[routes.\"suno.nope\"]\nsequence = []").unwrap_err();
        assert!(err.to_string().contains("suno.nope"), "{err}");
        let err = Scenario::from_toml("[routes.\"suno.generate\"]\nsequense = []").unwrap_err();
        assert!(err.to_string().contains("sequense"), "{err}");
        let err = Scenario::from_toml(
            "[routes.\"suno.generate\"]\nmix = [{ p = 0.7, fault = \"outage\" }, { p = 0.7, fault = \"ok\" }]",
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("routes.\"suno.generate\".mix"));
        let err = Scenario::from_toml(
            "[routes.\"suno.credit\"]\nsequence = [{ kind = \"status\", status = 99 }]",
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("routes.\"suno.credit\".sequence[0]"));
        let err = Scenario::from_json(r#"{"suno": {"outcomes": ["melted"]}}"#).unwrap_err();
        assert!(err.to_string().contains("melted"), "{err}");
        let err =
            Scenario::from_toml("[routes.\"suno.credit\"]\noutage = { from_s = 5, to_s = 1 }")
                .unwrap_err();
        assert_eq!(err.key(), Some("routes.\"suno.credit\".outage.to_s"));
    }

    #[test]
    fn job_sections_parse_and_errors_name_their_keys() {
        let s = Scenario::from_toml(
            "[openai]\noutcomes = [\"refusal\"]\n[suno]\noutcomes = [\"failed\"]\ntimestamped_lyrics = [\"loose\"]\n[suno.callbacks]\ndrop = 0.5\n[creatomate.callbacks]\nlate = 1.0\nlate_by_s = 5",
        )
        .unwrap();
        assert_eq!(s.openai.outcomes, [crate::OpenaiOutcome::Refusal]);
        assert_eq!(s.suno.outcomes, [crate::SunoOutcome::Failed]);
        assert!((s.suno.callbacks.drop - 0.5).abs() < f64::EPSILON);
        assert!((s.creatomate.callbacks.late_by_s - 5.0).abs() < f64::EPSILON);
        assert_eq!(Scenario::from_toml(&s.to_toml().unwrap()).unwrap(), s);
        let err = Scenario::from_toml("[suno.callbacks]\ndrop = 2").unwrap_err();
        assert_eq!(err.key(), Some("suno.callbacks.drop"));
        let err = Scenario::from_toml("[creatomate.callbacks]\nout_of_order = 0.5").unwrap_err();
        assert_eq!(err.key(), Some("creatomate.callbacks.out_of_order"));
        let err = Scenario::from_toml("[openai]\noutcomes = [\"exploded\"]").unwrap_err();
        assert!(err.to_string().contains("exploded"), "{err}");
        let err = Scenario::from_toml("[suno.callbacks]\nduplicates = 1").unwrap_err();
        assert!(err.to_string().contains("duplicates"), "{err}");
    }

    #[test]
    fn window_contains() {
        let w = OutageWindow {
            from_s: 1.0,
            to_s: Some(2.0),
            fault: Fault::Outage,
        };
        assert!(!w.contains(0.5));
        assert!(w.contains(1.0));
        assert!(!w.contains(2.0));
        assert!(OutageWindow::forever().contains(0.0));
    }
}
