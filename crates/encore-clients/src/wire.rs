//! Lenient deserializers for response fields: servers send `null` where a string is documented,
//! numbers as strings, and new enum values without notice.

use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string that may be missing, `null`, or a number or bool (kept as its text); an array or an
/// object is kept as its JSON text. Read straight from the input (no intermediate `Value` for
/// the common cases: every field of every answer goes through here).
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(Lenient)
}

struct Lenient;

impl<'de> Visitor<'de> for Lenient {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number, a bool or null")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        string(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        // As serde_json writes the number (a non-finite one cannot come from JSON).
        Ok(serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<String, A::Error> {
        Ok(Value::deserialize(SeqAccessDeserializer::new(seq))?.to_string())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<String, A::Error> {
        Ok(Value::deserialize(MapAccessDeserializer::new(map))?.to_string())
    }
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

/// An optional bool: `true`/`false` (or those words as a string); anything else — missing,
/// `null`, a number, an object — is `None` rather than a failed answer.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// An optional list of numbers (numeric strings accepted): `None` when missing, `null`, not a
/// list, or holding anything that is not a number — a field worth having only whole.
pub(crate) fn opt_f64_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
    let Value::Array(items) = Value::deserialize(d)? else {
        return Ok(None);
    };
    Ok(items
        .into_iter()
        .map(|item| match item {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .collect())
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
    fn strings_read_like_their_json_value() {
        for text in [
            r#""a""#,
            "null",
            "12",
            "-3",
            "1.5",
            "1e300",
            "true",
            "[1,\"x\"]",
            r#"{"k":[null]}"#,
            "18446744073709551615",
            "0.1",
        ] {
            let direct = super::string(&mut serde_json::Deserializer::from_str(text)).unwrap();
            let via_value = match serde_json::from_str::<serde_json::Value>(text).unwrap() {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            assert_eq!(direct, via_value, "{text}");
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Optional {
        #[serde(default, deserialize_with = "super::opt_bool")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "super::opt_f64_list")]
        l: Option<Vec<f64>>,
    }

    #[test]
    fn optional_fields_never_fail_the_answer() {
        for (text, b, l) in [
            (
                r#"{"b":true,"l":[0,1,0.5]}"#,
                Some(true),
                Some(vec![0.0, 1.0, 0.5]),
            ),
            (
                r#"{"b":"false","l":["0.25"]}"#,
                Some(false),
                Some(vec![0.25]),
            ),
            ("{}", None, None),
            (r#"{"b":null,"l":null}"#, None, None),
            (r#"{"b":1,"l":"0,1"}"#, None, None),
            (r#"{"b":{},"l":[0,null,1]}"#, None, None),
            (r#"{"l":[]}"#, None, Some(vec![])),
        ] {
            let o: Optional = serde_json::from_str(text).unwrap();
            assert_eq!(o, Optional { b, l }, "{text}");
        }
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
