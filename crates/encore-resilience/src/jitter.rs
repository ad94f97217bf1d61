//! How much randomness is mixed into each backoff delay.

use serde::{Deserialize, Serialize};

/// How a nominal backoff delay `d` is randomised.
///
/// Jitter spreads the retries of many clients apart so that they do not hit a recovering server
/// in lock-step (see the AWS Architecture Blog, "Exponential Backoff and Jitter").
///
/// | kind | delay before retry *k* |
/// |---|---|
/// | `none` | `d = min(base · multiplier^k, max)` exactly |
/// | `full` | uniform in `[0, d]` |
/// | `equal` | uniform in `[d/2, d]` |
/// | `decorrelated` | uniform in `[base, 3 · previous]`, capped at `max` (the first previous is `base`) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// No randomness: the schedule is exactly the exponential one (the seed plan's behaviour).
    #[default]
    None,
    /// "Full jitter": anywhere between zero and the nominal delay.
    Full,
    /// "Equal jitter": half the nominal delay plus a random half.
    Equal,
    /// "Decorrelated jitter": each delay is drawn from `[base, 3 × previous delay]`.
    Decorrelated,
}

impl Jitter {
    /// The lowercase name used in configuration files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

impl std::fmt::Display for Jitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_displayed_name_is_the_configuration_name() {
        for (jitter, name) in [
            (Jitter::None, "none"),
            (Jitter::Full, "full"),
            (Jitter::Equal, "equal"),
            (Jitter::Decorrelated, "decorrelated"),
        ] {
            assert_eq!(jitter.to_string(), name);
            assert_eq!(
                serde_json::to_string(&jitter).unwrap(),
                format!("\"{name}\"")
            );
        }
    }
}
