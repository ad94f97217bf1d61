//! Hostile input (issue 6): property tests of the `Retry-After` parsers and of a
//! [`RetryPolicy`] read from arbitrary TOML. Every property states what the code promises for
//! *any* input: no panic, and either `None`/an error or a value inside the documented bounds.

use std::time::{Duration, SystemTime};

use encore_resilience::defaults::MAX_SANE_RETRY_AFTER;
use encore_resilience::retry_after::{parse_retry_after_ms, parse_retry_after_value};
use encore_resilience::{Jitter, RetryPolicy, parse_retry_after};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

/// The latest instant `httpdate` can format (9999-12-31T23:59:59Z), less a day of head-room.
const LAST_NOW: u64 = 253_402_300_799 - 86_400;

/// Whatever a server might put in a header: arbitrary text, and text that is almost a number
/// (signs, exponents, decimals, padding, `inf`/`nan` spellings, HTTP-date fragments).
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t]{0,2}[-+]?[0-9]{0,25}(\\.[0-9]{0,25})?([eE][-+]?[0-9]{1,4})?[ \t]{0,2}",
        "[-+]?(inf|infinity|nan|NaN|INF|Infinity)",
        "(Mon|Tue|Wed|Thu|Fri|Sat|Sun|Zun), [0-9]{1,2} (Jan|Feb|Nov|Dec|Foo) [0-9]{1,5} [0-9]{2}:[0-9]{2}:[0-9]{2} (GMT|UTC)",
        Just("1e-10".to_owned()),
        Just("0.0000000001".to_owned()),
    ]
}

/// An arbitrary `now` that `httpdate` can format a day ahead of, with or without a fraction.
fn any_now() -> impl Strategy<Value = SystemTime> {
    (0..LAST_NOW, prop_oneof![Just(0_u32), 0..1_000_000_000_u32])
        .prop_map(|(secs, nanos)| SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

fn assert_sane(parsed: Option<Duration>, input: &dyn std::fmt::Debug) {
    if let Some(d) = parsed {
        assert!(d > Duration::ZERO, "{input:?} parsed to a zero wait");
        assert!(
            d <= MAX_SANE_RETRY_AFTER,
            "{input:?} parsed to {d:?}, above MAX_SANE_RETRY_AFTER"
        );
    }
}

/// A header value from arbitrary bytes, when `http` accepts those bytes at all.
fn header_value() -> impl Strategy<Value = Option<HeaderValue>> {
    prop_oneof![
        header_text().prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
    .prop_map(|bytes| HeaderValue::from_bytes(&bytes).ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text as `Retry-After` or `retry-after-ms`: never panics; a wait, when there is one,
    /// is positive and at most `MAX_SANE_RETRY_AFTER`.
    #[test]
    fn any_text_parses_to_none_or_a_sane_wait(text in header_text(), now in any_now()) {
        assert_sane(parse_retry_after_value(&text, now), &text);
        assert_sane(parse_retry_after_ms(&text), &text);
    }

    /// Any bytes in either header: never panics, the wait is sane, and the header-level parser
    /// agrees with the value-level ones (`retry-after-ms` first, values that are not visible
    /// ASCII ignored).
    #[test]
    fn any_header_bytes_parse_to_none_or_a_sane_wait(
        ms in header_value(),
        secs in header_value(),
        now in any_now(),
    ) {
        let mut headers = HeaderMap::new();
        if let Some(v) = &ms {
            headers.insert("retry-after-ms", v.clone());
        }
        if let Some(v) = &secs {
            headers.insert("retry-after", v.clone());
        }
        let parsed = parse_retry_after(&headers, now);
        assert_sane(parsed, &headers);
        let text = |v: &Option<HeaderValue>| v.as_ref().and_then(|v| v.to_str().ok().map(str::to_owned));
        let expected = text(&ms)
            .and_then(|t| parse_retry_after_ms(&t))
            .or_else(|| text(&secs).and_then(|t| parse_retry_after_value(&t, now)));
        prop_assert_eq!(parsed, expected);
    }

    /// Whole seconds 1..=86400, padded or not, are exactly that many seconds, also as a header.
    #[test]
    fn whole_seconds_parse_exactly(
        n in 1..=86_400_u64,
        pad in "[ \t]{0,3}",
        now in any_now(),
    ) {
        let text = format!("{pad}{n}{pad}");
        prop_assert_eq!(parse_retry_after_value(&text, now), Some(Duration::from_secs(n)));
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_str(&text).unwrap());
        prop_assert_eq!(parse_retry_after(&headers, now), Some(Duration::from_secs(n)));
    }

    /// Anything above a day, or zero and below, is ignored rather than slept on.
    #[test]
    fn out_of_range_seconds_are_ignored(n in prop_oneof![86_401..u64::MAX, Just(0)], neg in any::<bool>()) {
        let text = if neg { format!("-{n}") } else { n.to_string() };
        prop_assert_eq!(parse_retry_after_value(&text, SystemTime::now()), None);
    }

    /// Whole milliseconds 1..=86_400_000 are that many milliseconds (to within a microsecond:
    /// the value goes through an `f64` of seconds).
    #[test]
    fn whole_milliseconds_parse(n in 1..=86_400_000_u64) {
        let d = parse_retry_after_ms(&n.to_string()).expect("a valid wait");
        let want = Duration::from_millis(n);
        prop_assert!(d.abs_diff(want) <= Duration::from_micros(1), "{} ms -> {:?}", n, d);
    }

    /// An HTTP-date `k` seconds after a whole-second `now` parses back to exactly `k` seconds.
    #[test]
    fn http_dates_ahead_parse_back_exactly(secs in 0..LAST_NOW, k in 1..86_400_u64) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(k));
        prop_assert_eq!(parse_retry_after_value(&date, now), Some(Duration::from_secs(k)), "{}", date);
    }

    /// With a fractional `now` the date (whole seconds) lies up to a second earlier, so the wait
    /// is in `(k - 1, k]`, still positive.
    #[test]
    fn http_dates_ahead_of_a_fractional_now(now in any_now(), k in 1..86_400_u64) {
        let date = httpdate::fmt_http_date(now + Duration::from_secs(k));
        let d = parse_retry_after_value(&date, now).expect("a future date");
        prop_assert!(d <= Duration::from_secs(k) && d > Duration::from_secs(k - 1), "{} -> {:?}", date, d);
    }

    /// Dates at or before `now` are no wait at all.
    #[test]
    fn http_dates_in_the_past_are_ignored(now in any_now(), k in 0..86_400_u64) {
        let past = now.checked_sub(Duration::from_secs(k)).unwrap_or(SystemTime::UNIX_EPOCH);
        let date = httpdate::fmt_http_date(past);
        prop_assert_eq!(parse_retry_after_value(&date, now), None, "{}", date);
    }
}

// ---------------------------------------------------------------------------------------------
// RetryPolicy from arbitrary TOML
// ---------------------------------------------------------------------------------------------

/// A humantime-ish duration, from sane to absurd (`u64::MAX` seconds, years, garbage units).
fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0..100_000_u64, "(ns|us|ms|s|m|h|d|w|y)").prop_map(|(n, u)| format!("{n}{u}")),
        1 => (any::<u64>(), "(ns|ms|s|m|h|d|y)").prop_map(|(n, u)| format!("{n}{u}")),
        3 => Just(format!("{}s", u64::MAX)),
        1 => Just("584942417355y".to_owned()),
        1 => "[0-9]{1,3}(s|m) [0-9]{1,3}(ms|s)",
        1 => any::<String>(),
    ]
}

/// A TOML value of any type.
fn any_toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        duration_text().prop_map(|s| toml_string(&s)),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(toml_float),
        prop_oneof![
            Just("nan"),
            Just("inf"),
            Just("-inf"),
            Just("1e308"),
            Just("-0.0")
        ]
        .prop_map(str::to_owned),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{ a = 1 }".to_owned()),
    ]
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn toml_float(f: f64) -> String {
    toml::Value::Float(f).to_string()
}

/// A value for `key`: usually of the right type (so that many documents pass `validate` and
/// reach the schedule), sometimes of any type.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let typed: BoxedStrategy<String> = match key {
        "enabled" => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        "max_retries" => prop_oneof![0..=100_u32, any::<u32>()]
            .prop_map(|n| n.to_string())
            .boxed(),
        "multiplier" => prop_oneof![
            (1.0..1e6_f64).prop_map(toml_float),
            any::<f64>().prop_map(toml_float),
            Just("1e308".to_owned()),
        ]
        .boxed(),
        "jitter" => {
            proptest::sample::select(&["none", "full", "equal", "decorrelated", "lots"][..])
                .prop_map(toml_string)
                .boxed()
        }
        _ => duration_text().prop_map(|s| toml_string(&s)).boxed(),
    };
    prop_oneof![4 => typed, 1 => any_toml_value()].boxed()
}

/// A policy document: each known key present or not, with a value of (mostly) its type, plus
/// an occasional unknown key.
fn policy_toml() -> impl Strategy<Value = String> {
    let known: Vec<_> = [
        "enabled",
        "max_retries",
        "base_delay",
        "max_delay",
        "multiplier",
        "jitter",
        "attempt_timeout",
        "deadline",
        "max_retry_after",
    ]
    .into_iter()
    .map(|key| proptest::option::weighted(0.5, value_for(key)).prop_map(move |v| (key, v)))
    .collect();
    let unknown = proptest::option::weighted(0.05, ("[a-z_]{1,12}", any_toml_value()));
    (known, unknown).prop_map(|(known, unknown)| {
        let mut doc = String::new();
        for (key, value) in known {
            if let Some(value) = value {
                doc.push_str(&format!("{key} = {value}\n"));
            }
        }
        if let Some((key, value)) = unknown {
            doc.push_str(&format!("{key} = {value}\n"));
        }
        doc
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A policy read from any TOML: reading and `validate` never panic, and a policy that
    /// passes `validate` keeps every invariant `validate` documents. Its schedule can then be
    /// computed without panicking: exactly `max_retries` waits (none when disabled), none above
    /// `max_delay`, and `worst_case_waits` is at least their sum.
    #[test]
    fn policies_from_any_toml_validate_without_panicking(
        doc in prop_oneof![policy_toml(), any::<String>()],
        seed in any::<u64>(),
    ) {
        let Ok(policy) = toml::from_str::<RetryPolicy>(&doc) else { return Ok(()) };
        let Ok(()) = policy.validate() else { return Ok(()) };
        prop_assert!(policy.base_delay <= policy.max_delay);
        prop_assert!(policy.multiplier.is_finite() && policy.multiplier >= 1.0);
        prop_assert!(!policy.attempt_timeout.is_zero() && !policy.deadline.is_zero());
        prop_assert!(policy.attempt_timeout <= policy.deadline);
        prop_assert!(policy.max_retries <= encore_resilience::defaults::MAX_RETRIES_LIMIT);
        let waits: Vec<Duration> = policy.backoff_seeded(seed).collect();
        let expected = if policy.enabled { policy.max_retries as usize } else { 0 };
        prop_assert_eq!(waits.len(), expected);
        prop_assert!(waits.iter().all(|d| *d <= policy.max_delay), "{:?}", waits);
        let total = waits.iter().fold(Duration::ZERO, |a, b| a.saturating_add(*b));
        prop_assert!(policy.worst_case_waits() >= total);
        prop_assert_eq!(policy.max_attempts() as usize, expected + 1);
    }
}

/// Found by `policies_from_any_toml_validate_without_panicking`: a validated policy whose waits
/// add up past `Duration::MAX` made `worst_case_waits` panic ("overflow when adding durations").
#[test]
fn worst_case_waits_saturates_for_absurd_but_valid_policies() {
    let policy: RetryPolicy = toml::from_str(&format!(
        "max_delay = \"{}s\"\njitter = \"decorrelated\"",
        u64::MAX
    ))
    .unwrap();
    policy.validate().unwrap();
    assert_eq!(policy.worst_case_waits(), Duration::MAX);
    assert_eq!(
        RetryPolicy::new()
            .with_jitter(Jitter::None)
            .worst_case_waits(),
        Duration::from_secs(7)
    );
}

/// Found by `any_text_parses_to_none_or_a_sane_wait`: a positive value below a nanosecond
/// (`1e-10` seconds, `1e-7` ms) was accepted as a wait of zero.
#[test]
fn sub_nanosecond_waits_are_ignored() {
    let now = SystemTime::now();
    for text in ["1e-10", "0.0000000001", "5e-324"] {
        assert_eq!(parse_retry_after_value(text, now), None, "{text}");
        assert_eq!(parse_retry_after_ms(text), None, "{text} ms");
    }
    assert_eq!(parse_retry_after_ms("1e-7"), None);
    assert_eq!(
        parse_retry_after_value("1e-9", now),
        Some(Duration::from_nanos(1))
    );
}
