//! The one way encore writes durations and attempt counts for people.

use std::fmt;
use std::time::Duration;

/// Formats a duration for people: `250ms`, `2s`, `1.5s`, `2m 5s`, `60m`.
///
/// Below a second: whole milliseconds. Below a minute: seconds rounded to a tenth, without a
/// trailing `.0`. From a minute on: minutes and seconds, rounded to the second. Every message of encore (errors,
/// log lines, the CLI) writes durations this way.
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::fmt_duration;
///
/// assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
/// assert_eq!(fmt_duration(Duration::from_millis(7100)), "7.1s");
/// assert_eq!(fmt_duration(Duration::from_secs(125)), "2m 5s");
/// ```
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    // Tenths of a second, rounded half up.
    let tenths = (ms + 50) / 100;
    if tenths < 600 {
        let (s, t) = (tenths / 10, tenths % 10);
        return if t == 0 {
            format!("{s}s")
        } else {
            format!("{s}.{t}s")
        };
    }
    // Whole seconds, rounded half up.
    let secs = (ms + 500) / 1000;
    let (m, s) = (secs / 60, secs % 60);
    if s == 0 {
        format!("{m}m")
    } else {
        format!("{m}m {s}s")
    }
}

/// `gave up after 1 attempt in 250ms`, `gave up after 4 attempts in 7.1s`: how every message
/// that reports giving up says so.
///
/// ```
/// use std::time::Duration;
/// use encore_resilience::fmt::GaveUp;
///
/// let text = GaveUp { attempts: 1, elapsed: Duration::from_millis(250) }.to_string();
/// assert_eq!(text, "gave up after 1 attempt in 250ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GaveUp {
    /// Attempts made.
    pub attempts: u32,
    /// Time from the first attempt to giving up.
    pub elapsed: Duration,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "gave up after {} attempt{plural} in {}",
            self.attempts,
            fmt_duration(self.elapsed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_for_people() {
        let ms = Duration::from_millis;
        for (d, text) in [
            (Duration::ZERO, "0ms"),
            (ms(250), "250ms"),
            (ms(999), "999ms"),
            (ms(1000), "1s"),
            (ms(1049), "1s"),
            (ms(1050), "1.1s"),
            (Duration::from_secs(2), "2s"),
            (ms(7100), "7.1s"),
            (ms(59_940), "59.9s"),
            (ms(59_960), "1m"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(125), "2m 5s"),
            (Duration::from_secs(3600), "60m"),
        ] {
            assert_eq!(fmt_duration(d), text, "{d:?}");
        }
    }

    #[test]
    fn giving_up_counts_attempts_in_words() {
        let text = |attempts, ms| {
            GaveUp {
                attempts,
                elapsed: Duration::from_millis(ms),
            }
            .to_string()
        };
        assert_eq!(text(1, 250), "gave up after 1 attempt in 250ms");
        assert_eq!(text(4, 7100), "gave up after 4 attempts in 7.1s");
    }
}
