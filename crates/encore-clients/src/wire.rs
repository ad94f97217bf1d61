//! Lenient deserializers for response fields: servers send `null` where a string is documented,
//! numbers as strings, and new enum values without notice.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string that may be missing, `null`, or a number or bool (kept as its text).
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    })
}

/// An optional string that may also be a number (kept as its text); `null` and `""` are `None`.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = string(d)?;
    Ok((!s.is_empty()).then_some(s))
}

/// A number that may be `null`, missing, or a numeric string.
pub(crate) fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// An integer that may be `null`, missing, a float with no fraction, or a numeric string.
pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A non-negative integer, lenient like [`opt_i64`].
pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(opt_i64(d)?.and_then(|n| u64::try_from(n).ok()))
}

/// A bool that may be `null` or missing (then `false`).
pub(crate) fn bool_or_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or_default())
}

/// A value that may be `null` (then its default).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Probe {
        #[serde(default, deserialize_with = "super::string")]
        s: String,
        #[serde(default, deserialize_with = "super::opt_f64")]
        f: Option<f64>,
        #[serde(default, deserialize_with = "super::opt_i64")]
        i: Option<i64>,
        #[serde(default, deserialize_with = "super::null_default")]
        v: Vec<u8>,
    }

    #[test]
    fn tolerant() {
        let p: Probe = serde_json::from_str(r#"{"s":null,"f":"1.5","i":3.0,"v":null}"#).unwrap();
        assert_eq!(
            p,
            Probe {
                s: String::new(),
                f: Some(1.5),
                i: Some(3),
                v: vec![]
            }
        );
        let p: Probe = serde_json::from_str(r#"{"s":12,"f":null,"i":"x"}"#).unwrap();
        assert_eq!(p.s, "12");
        assert_eq!((p.f, p.i), (None, None));
        let p: Probe = serde_json::from_str("{}").unwrap();
        assert_eq!(p.s, "");
    }
}
