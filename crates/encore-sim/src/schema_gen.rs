//! Generates a JSON value that validates against a JSON Schema, deterministically from an
//! RNG, with text chosen by property name (lyrics, titles, style tags…).
//!
//! Supported: `type` (single or list, incl. `"null"`), `properties`/`required`,
//! `additionalProperties`, `items`/`prefixItems`/`minItems`/`maxItems`/`uniqueItems`,
//! `enum`, `const`, `minLength`/`maxLength`, common `format`s, `minimum`/`maximum`/
//! `exclusiveMinimum`/`exclusiveMaximum`/`multipleOf`, `$ref` into `$defs`/`definitions`,
//! `anyOf`/`oneOf`/`allOf`. Not supported: `pattern` (ignored), `not`, `if`/`then`.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};

use crate::ids;
use crate::text::{self, TextCtx};

const MAX_DEPTH: usize = 24;

/// Generates an instance of `schema` (`$ref`s resolve against `schema` itself).
pub(crate) fn generate(schema: &Value, rng: &mut StdRng, ctx: &TextCtx) -> Value {
    let mut g = Generator {
        root: schema,
        rng,
        ctx,
    };
    g.value(schema, "", 0)
}

struct Generator<'a> {
    root: &'a Value,
    rng: &'a mut StdRng,
    ctx: &'a TextCtx,
}

fn resolve<'v>(root: &'v Value, reference: &str) -> Option<&'v Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    root.pointer(pointer)
}

fn types_of(map: &Map<String, Value>) -> Vec<&str> {
    match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_null_schema(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| types_of(m) == ["null"] || m.get("const") == Some(&Value::Null))
}

fn u64_of(map: &Map<String, Value>, key: &str) -> Option<u64> {
    map.get(key).and_then(Value::as_u64)
}

fn f64_of(map: &Map<String, Value>, key: &str) -> Option<f64> {
    map.get(key).and_then(Value::as_f64)
}

/// Singular-ish element name for array items: `lines` → `line`.
fn item_name(name: &str) -> String {
    name.strip_suffix("ies").map_or_else(
        || name.strip_suffix('s').unwrap_or(name).to_owned(),
        |stem| format!("{stem}y"),
    )
}

impl Generator<'_> {
    fn value(&mut self, schema: &Value, name: &str, depth: usize) -> Value {
        let Some(map) = schema.as_object() else {
            // `true` / `{}`-like schemas accept anything
            return Value::String(text::phrase(self.ctx, self.rng));
        };
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        if let Some(Value::String(reference)) = map.get("$ref")
            && let Some(target) = resolve(self.root, reference)
        {
            let target = target.clone();
            return self.value(&target, name, depth + 1);
        }
        if let Some(c) = map.get("const") {
            return c.clone();
        }
        if let Some(Value::Array(options)) = map.get("enum")
            && !options.is_empty()
        {
            let non_null: Vec<&Value> = options.iter().filter(|v| !v.is_null()).collect();
            return (*non_null.choose(self.rng).unwrap_or(&&options[0])).clone();
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = map.get(key)
                && !branches.is_empty()
            {
                let non_null: Vec<&Value> =
                    branches.iter().filter(|b| !is_null_schema(b)).collect();
                let branch = if non_null.is_empty() || self.rng.random_bool(0.1) {
                    branches.choose(self.rng).expect("non-empty")
                } else {
                    non_null.choose(self.rng).expect("non-empty")
                };
                let branch = branch.clone();
                return self.value(&branch, name, depth + 1);
            }
        }
        if let Some(Value::Array(parts)) = map.get("allOf")
            && !parts.is_empty()
        {
            let merged = self.merge_all_of(map, parts);
            return self.value(&merged, name, depth + 1);
        }
        let types = types_of(map);
        let ty = if types.is_empty() {
            if map.contains_key("properties") || map.contains_key("additionalProperties") {
                "object"
            } else if map.contains_key("items") || map.contains_key("prefixItems") {
                "array"
            } else if map.contains_key("minimum") || map.contains_key("maximum") {
                "number"
            } else {
                "string"
            }
        } else {
            let non_null: Vec<&str> = types.iter().copied().filter(|t| *t != "null").collect();
            if non_null.is_empty() || (types.contains(&"null") && self.rng.random_bool(0.1)) {
                "null"
            } else {
                non_null.choose(self.rng).copied().expect("non-empty")
            }
        };
        match ty {
            "object" => self.object(map, depth),
            "array" => self.array(map, name, depth),
            "integer" => self.integer(map, name),
            "number" => self.number(map, name),
            "boolean" => Value::Bool(self.rng.random_bool(0.5)),
            "null" => Value::Null,
            _ => Value::String(self.string(map, name)),
        }
    }

    fn merge_all_of(&self, map: &Map<String, Value>, parts: &[Value]) -> Value {
        let mut merged = map.clone();
        merged.remove("allOf");
        let mut props = Map::new();
        let mut required: Vec<Value> = Vec::new();
        for part in parts {
            let part = match part.get("$ref").and_then(Value::as_str) {
                Some(r) => resolve(self.root, r).cloned().unwrap_or(Value::Null),
                None => part.clone(),
            };
            let Some(part) = part.as_object() else {
                continue;
            };
            for (k, v) in part {
                match k.as_str() {
                    "properties" => {
                        if let Some(p) = v.as_object() {
                            props.extend(p.clone());
                        }
                    }
                    "required" => {
                        if let Some(r) = v.as_array() {
                            required.extend(r.iter().cloned());
                        }
                    }
                    _ => {
                        merged.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        if let Some(p) = map.get("properties").and_then(Value::as_object) {
            props.extend(p.clone());
        }
        if let Some(r) = map.get("required").and_then(Value::as_array) {
            required.extend(r.iter().cloned());
        }
        if !props.is_empty() {
            merged.insert("properties".into(), Value::Object(props));
        }
        if !required.is_empty() {
            merged.insert("required".into(), Value::Array(required));
        }
        Value::Object(merged)
    }

    fn object(&mut self, map: &Map<String, Value>, depth: usize) -> Value {
        let mut out = Map::new();
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let empty = Map::new();
        let props = map
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for (key, sub) in props {
            if required.contains(&key.as_str()) || self.rng.random_bool(0.75) {
                let v = self.value(sub, key, depth + 1);
                out.insert(key.clone(), v);
            }
        }
        // required keys without a property schema: anything goes
        for key in required {
            if !out.contains_key(key) {
                let v = Value::String(text::phrase(self.ctx, self.rng));
                out.insert(key.to_owned(), v);
            }
        }
        if props.is_empty()
            && let Some(extra @ Value::Object(_)) = map.get("additionalProperties")
        {
            let n = self.rng.random_range(1..=2);
            for i in 1..=n {
                let v = self.value(extra, "value", depth + 1);
                out.insert(format!("key{i}"), v);
            }
        }
        Value::Object(out)
    }

    fn array(&mut self, map: &Map<String, Value>, name: &str, depth: usize) -> Value {
        let prefix: Vec<Value> = map
            .get("prefixItems")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let min = u64_of(map, "minItems").unwrap_or(0) as usize;
        let max = u64_of(map, "maxItems").map(|m| m as usize);
        let lo = min.max(prefix.len()).max(max.map_or(2, |m| m.min(2)));
        let hi = max.unwrap_or(lo + 4).max(lo).min(lo + 4);
        let count = self.rng.random_range(lo..=hi);
        let unique = map.get("uniqueItems") == Some(&Value::Bool(true));
        let items = map.get("items").cloned().unwrap_or(Value::Bool(true));
        let child = item_name(name);
        let mut out: Vec<Value> = Vec::with_capacity(count);
        for i in 0..count {
            let schema = prefix.get(i).unwrap_or(&items);
            let mut v = self.value(schema, &child, depth + 1);
            let mut tries = 0;
            while unique && out.contains(&v) && tries < 16 {
                v = self.value(schema, &child, depth + 1);
                tries += 1;
            }
            // when uniqueness is impossible, minItems wins
            if unique && out.contains(&v) && out.len() >= min {
                break;
            }
            out.push(v);
        }
        Value::Array(out)
    }

    fn int_bounds(map: &Map<String, Value>, name: &str) -> (i64, i64) {
        let lo = f64_of(map, "minimum")
            .map(|v| v.ceil() as i64)
            .or_else(|| f64_of(map, "exclusiveMinimum").map(|v| v.floor() as i64 + 1));
        let hi = f64_of(map, "maximum")
            .map(|v| v.floor() as i64)
            .or_else(|| f64_of(map, "exclusiveMaximum").map(|v| v.ceil() as i64 - 1));
        let (dlo, dhi) = default_range(name);
        let (dlo, dhi) = (dlo as i64, dhi as i64);
        match (lo, hi) {
            (Some(lo), Some(hi)) => (lo, hi.max(lo)),
            (Some(lo), None) => {
                let l = dlo.max(lo);
                (l, if dhi >= l { dhi } else { l + 100 })
            }
            (None, Some(hi)) => {
                let h = dhi.min(hi);
                (if dlo <= h { dlo } else { h - 100 }, h)
            }
            (None, None) => (dlo, dhi),
        }
    }

    fn integer(&mut self, map: &Map<String, Value>, name: &str) -> Value {
        let (lo, hi) = Self::int_bounds(map, name);
        let mut v = self.rng.random_range(lo..=hi);
        if let Some(step) = f64_of(map, "multipleOf").filter(|s| *s >= 1.0) {
            let step = step as i64;
            let snapped = (v / step) * step;
            v = if snapped >= lo {
                snapped
            } else {
                snapped + step
            };
        }
        json!(v)
    }

    fn number(&mut self, map: &Map<String, Value>, name: &str) -> Value {
        let (dlo, dhi) = default_range(name);
        let min = f64_of(map, "minimum");
        let max = f64_of(map, "maximum");
        let xmin = f64_of(map, "exclusiveMinimum");
        let xmax = f64_of(map, "exclusiveMaximum");
        let lo = min
            .or(xmin)
            .unwrap_or(if max.or(xmax).is_some_and(|h| h < dlo) {
                max.or(xmax).unwrap_or(0.0) - 100.0
            } else {
                dlo
            });
        let hi = max
            .or(xmax)
            .unwrap_or(if lo > dhi { lo + 100.0 } else { dhi });
        let hi = hi.max(lo);
        if let Some(step) = f64_of(map, "multipleOf").filter(|s| *s > 0.0) {
            let first = (lo / step).ceil() as i64;
            let last = (hi / step).floor() as i64;
            let k = if last >= first {
                self.rng.random_range(first..=last)
            } else {
                first
            };
            let mut v = k as f64 * step;
            if xmin.is_some_and(|x| v <= x) {
                v += step;
            }
            if xmax.is_some_and(|x| v >= x) {
                v -= step;
            }
            return json!(v);
        }
        let mut v = lo + (hi - lo) * self.rng.random::<f64>();
        v = (v * 100.0).round() / 100.0;
        let span = hi - lo;
        if v < lo || xmin.is_some_and(|x| v <= x) {
            v = lo + span / 2.0;
        }
        if v > hi || xmax.is_some_and(|x| v >= x) {
            v = lo + span / 2.0;
        }
        if (xmin.is_some() || xmax.is_some()) && span == 0.0 {
            v = lo;
        }
        json!(v)
    }

    fn string(&mut self, map: &Map<String, Value>, name: &str) -> String {
        let min = u64_of(map, "minLength").unwrap_or(0) as usize;
        let max = u64_of(map, "maxLength").map(|m| m as usize);
        let ctx = self.ctx;
        let rng = &mut *self.rng;
        if let Some(format) = map.get("format").and_then(Value::as_str)
            && let Some(s) = formatted(format, rng)
        {
            return s;
        }
        let n = name.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
        let raw = if n == "lyric" || has(&["line", "caption", "hook", "slogan", "tagline"]) {
            text::lyric_line(ctx, rng)
        } else if has(&["lyric"]) {
            return text::lyrics(ctx, rng, min, max);
        } else if has(&["title", "name"]) {
            text::title(ctx, rng)
        } else if has(&["style", "tag", "genre"]) {
            text::style(ctx, rng)
        } else if has(&["mood", "emotion", "vibe"]) {
            text::mood(rng)
        } else if has(&["colour", "color"]) {
            format!("#{}", ids::hex(rng, 6))
        } else if has(&["url", "link", "href"]) {
            format!("https://example.com/{}", ids::hex(rng, 8))
        } else if has(&["language", "lang", "locale"]) {
            (if ctx.korean { "ko" } else { "en" }).to_owned()
        } else if n == "id" || n.ends_with("_id") || name.ends_with("Id") {
            ids::hex(rng, 16)
        } else if has(&[
            "description",
            "summary",
            "concept",
            "prompt",
            "reason",
            "explanation",
            "story",
            "theme",
            "idea",
            "text",
        ]) {
            text::sentence(ctx, rng)
        } else {
            text::phrase(ctx, rng)
        };
        text::fit(raw, min, max, rng, ctx)
    }
}

fn formatted(format: &str, rng: &mut StdRng) -> Option<String> {
    let day = rng.random_range(1..=28);
    Some(match format {
        "date-time" => format!("2025-06-{day:02}T12:00:00Z"),
        "date" => format!("2025-06-{day:02}"),
        "time" => "12:00:00Z".to_owned(),
        "email" => "hello@example.com".to_owned(),
        "uri" | "url" | "iri" => format!("https://example.com/{}", ids::hex(rng, 8)),
        "uuid" => ids::uuid(rng),
        "hostname" => "example.com".to_owned(),
        "ipv4" => "192.0.2.1".to_owned(),
        "ipv6" => "2001:db8::1".to_owned(),
        "duration" => "PT3M".to_owned(),
        _ => return None,
    })
}

/// Plausible default ranges by property name.
fn default_range(name: &str) -> (f64, f64) {
    let n = name.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    if has(&["bpm", "tempo"]) {
        (80.0, 128.0)
    } else if has(&["year"]) {
        (2020.0, 2026.0)
    } else if has(&["duration", "second", "length", "time"]) {
        (30.0, 240.0)
    } else if has(&["score", "confidence", "probability", "weight", "ratio"]) {
        (0.0, 1.0)
    } else if has(&["count", "number", "index"]) {
        (1.0, 8.0)
    } else {
        (1.0, 100.0)
    }
}

/// A violation of OpenAI's strict structured-output rules: every object must set
/// `additionalProperties: false` and list all its properties in `required`.
/// Returns `(context path, message)`.
pub(crate) fn strict_violation(schema: &Value) -> Option<(String, String)> {
    fn walk(v: &Value, path: &mut Vec<String>) -> Option<(String, String)> {
        let map = v.as_object()?;
        let is_object = types_of(map).contains(&"object") || map.contains_key("properties");
        if is_object {
            let ctx = format!(
                "({})",
                path.iter()
                    .map(|p| format!("'{p}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if map.get("additionalProperties") != Some(&Value::Bool(false)) {
                return Some((
                    ctx,
                    "'additionalProperties' is required to be supplied and to be false".into(),
                ));
            }
            let required: Vec<&str> = map
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = map.get("properties").and_then(Value::as_object)
                && let Some(missing) = props.keys().find(|k| !required.contains(&k.as_str()))
            {
                return Some((
                    ctx,
                    format!(
                        "'required' is required to be supplied and to be an array including every key in properties. Missing '{missing}'"
                    ),
                ));
            }
        }
        for key in ["properties", "$defs", "definitions"] {
            if let Some(children) = map.get(key).and_then(Value::as_object) {
                for (name, child) in children {
                    path.push(key.to_owned());
                    path.push(name.clone());
                    let found = walk(child, path);
                    path.truncate(path.len() - 2);
                    if found.is_some() {
                        return found;
                    }
                }
            }
        }
        if let Some(items) = map.get("items") {
            path.push("items".into());
            let found = walk(items, path);
            path.pop();
            if found.is_some() {
                return found;
            }
        }
        for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
            if let Some(list) = map.get(key).and_then(Value::as_array) {
                for (i, child) in list.iter().enumerate() {
                    path.push(key.to_owned());
                    path.push(i.to_string());
                    let found = walk(child, path);
                    path.truncate(path.len() - 2);
                    if found.is_some() {
                        return found;
                    }
                }
            }
        }
        None
    }
    walk(schema, &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn simple_plan() {
        let schema = json!({
            "type": "object",
            "properties": {
                "title": { "type": "string", "maxLength": 40 },
                "style": { "type": "string" },
                "lyrics": { "type": "string", "minLength": 50, "maxLength": 600 },
                "bpm": { "type": "integer", "minimum": 60, "maximum": 180 },
                "mood": { "type": "string", "enum": ["happy", "calm"] },
                "explicit": { "type": "boolean" },
                "subtitle": { "type": ["string", "null"] }
            },
            "required": ["title", "style", "lyrics", "bpm", "mood", "explicit", "subtitle"],
            "additionalProperties": false
        });
        let ctx = TextCtx::from_prompt("Sunrise Bakery");
        for seed in 0..20 {
            let v = generate(&schema, &mut StdRng::seed_from_u64(seed), &ctx);
            let lyrics = v["lyrics"].as_str().unwrap();
            assert!(lyrics.starts_with("[Verse]"), "{lyrics}");
            assert!(lyrics.chars().count() <= 600);
            assert!(v["title"].as_str().unwrap().chars().count() <= 40);
            let bpm = v["bpm"].as_i64().unwrap();
            assert!((60..=180).contains(&bpm));
        }
        assert!(strict_violation(&schema).is_none());
    }

    #[test]
    fn deterministic_per_rng() {
        let schema =
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        let ctx = TextCtx::default();
        let a = generate(&schema, &mut StdRng::seed_from_u64(5), &ctx);
        let b = generate(&schema, &mut StdRng::seed_from_u64(5), &ctx);
        assert_eq!(a, b);
    }

    #[test]
    fn strict_rules() {
        let loose = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let (ctx, msg) = strict_violation(&loose).unwrap();
        assert_eq!(ctx, "()");
        assert!(msg.contains("additionalProperties"));
        let missing = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "required": ["a"], "additionalProperties": false});
        assert!(
            strict_violation(&missing)
                .unwrap()
                .1
                .contains("Missing 'b'")
        );
        let nested = json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/X"}}, "required": ["x"],
            "additionalProperties": false, "$defs": {"X": {"type": "object", "properties": {}}}});
        assert_eq!(strict_violation(&nested).unwrap().0, "('$defs', 'X')");
    }

    #[test]
    fn item_names() {
        assert_eq!(item_name("lines"), "line");
        assert_eq!(item_name("stories"), "story");
        assert_eq!(item_name("lyrics"), "lyric");
    }
}
