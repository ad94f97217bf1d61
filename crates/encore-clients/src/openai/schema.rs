//! JSON Schemas for OpenAI structured outputs in strict mode, derived with `schemars`.
//!
//! Strict mode accepts a subset of JSON Schema: every object lists all its properties in
//! `required` and sets `additionalProperties: false`; optional values are expressed as a union
//! with `null` (which `schemars` already does for `Option<T>`); `oneOf` is not accepted but
//! `anyOf` is; validation keywords such as `format: "uint32"`, `minimum`, `default` are not
//! accepted. [`make_strict`] rewrites a `schemars` schema accordingly and refuses what strict
//! mode cannot express (free-form maps, `serde_json::Value`, a non-object root).

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// Keywords strict mode does not accept; removed wherever they appear in a schema.
const UNSUPPORTED: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contentEncoding",
    "contentMediaType",
];

/// A type whose schema strict mode cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the schema cannot be used in strict mode at `{path}`: {reason}")]
pub struct SchemaError {
    path: String,
    reason: String,
}

impl SchemaError {
    fn new(path: &str, reason: impl Into<String>) -> SchemaError {
        SchemaError {
            path: if path.is_empty() {
                "#".to_owned()
            } else {
                path.to_owned()
            },
            reason: reason.into(),
        }
    }

    /// A JSON pointer to the offending subschema (`#` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// The strict-mode schema of `T` (sub-schemas inlined; recursive types keep `$defs`).
///
/// ```
/// use encore_clients::openai::strict_schema;
///
/// #[derive(schemars::JsonSchema, serde::Deserialize)]
/// struct Song {
///     /// The title.
///     title: String,
///     verses: Vec<String>,
///     bpm: Option<u32>,
/// }
///
/// let schema = strict_schema::<Song>().unwrap();
/// assert_eq!(schema["type"], "object");
/// assert_eq!(schema["additionalProperties"], false);
/// assert_eq!(schema["required"].as_array().unwrap().len(), 3, "every property is required");
/// assert_eq!(schema["properties"]["bpm"]["type"], serde_json::json!(["integer", "null"]));
/// assert!(schema["properties"]["bpm"].get("format").is_none());
/// ```
///
/// # Errors
///
/// A [`SchemaError`] when `T` is not a struct-like object or contains free-form data.
pub fn strict_schema<T: JsonSchema>() -> Result<Value, SchemaError> {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    make_strict(generator.into_root_schema_for::<T>().to_value())
}

/// Rewrites a JSON Schema for strict mode (see the module docs).
///
/// # Errors
///
/// A [`SchemaError`] naming the place strict mode cannot express.
pub fn make_strict(mut schema: Value) -> Result<Value, SchemaError> {
    walk(&mut schema, "")?;
    let root_is_object = schema.get("type").is_some_and(|t| t == "object");
    if !root_is_object {
        return Err(SchemaError::new(
            "",
            "the root must be an object (derive the schema from a struct)",
        ));
    }
    Ok(schema)
}

fn walk(schema: &mut Value, path: &str) -> Result<(), SchemaError> {
    let map = match schema {
        Value::Object(map) => map,
        Value::Bool(true) => {
            return Err(SchemaError::new(
                path,
                "any value is allowed here (serde_json::Value?); use a concrete type",
            ));
        }
        _ => return Err(SchemaError::new(path, "not a schema object")),
    };
    for key in UNSUPPORTED {
        map.remove(*key);
    }
    if let Some(one_of) = map.remove("oneOf") {
        if map.contains_key("anyOf") {
            return Err(SchemaError::new(path, "both oneOf and anyOf"));
        }
        map.insert("anyOf".to_owned(), one_of);
    }
    merge_single_all_of(map, path)?;

    let is_object = match map.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => map.contains_key("properties"),
    };
    if is_object {
        match map.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(_) => {
                return Err(SchemaError::new(
                    path,
                    "maps with arbitrary keys are not supported; use a struct",
                ));
            }
        }
        for key in [
            "patternProperties",
            "propertyNames",
            "minProperties",
            "maxProperties",
        ] {
            if map.contains_key(key) {
                return Err(SchemaError::new(path, format!("`{key}` is not supported")));
            }
        }
        let properties = map
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(properties) = properties else {
            return Err(SchemaError::new(path, "`properties` is not an object"));
        };
        let names: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
        for (name, sub) in properties.iter_mut() {
            walk(sub, &format!("{path}/properties/{name}"))?;
        }
        map.insert("required".to_owned(), Value::Array(names));
        map.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    if let Some(items) = map.get_mut("items") {
        walk(items, &format!("{path}/items"))?;
    }
    if map.contains_key("prefixItems") {
        return Err(SchemaError::new(
            path,
            "tuples (`prefixItems`) are not supported",
        ));
    }
    if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
        for (i, branch) in branches.iter_mut().enumerate() {
            walk(branch, &format!("{path}/anyOf/{i}"))?;
        }
    }
    for defs in ["$defs", "definitions"] {
        if let Some(Value::Object(defs_map)) = map.get_mut(defs) {
            for (name, sub) in defs_map.iter_mut() {
                walk(sub, &format!("{path}/{defs}/{name}"))?;
            }
        }
    }
    for key in [
        "not",
        "if",
        "then",
        "else",
        "dependentSchemas",
        "dependentRequired",
    ] {
        if map.contains_key(key) {
            return Err(SchemaError::new(path, format!("`{key}` is not supported")));
        }
    }
    Ok(())
}

/// `allOf: [X]` (what `schemars` emits for some documented references) is merged into its
/// parent; a longer `allOf` is refused.
fn merge_single_all_of(map: &mut Map<String, Value>, path: &str) -> Result<(), SchemaError> {
    let Some(all_of) = map.remove("allOf") else {
        return Ok(());
    };
    match all_of {
        Value::Array(mut parts) if parts.len() == 1 => {
            if let Value::Object(part) = parts.remove(0) {
                for (k, v) in part {
                    map.entry(k).or_insert(v);
                }
                Ok(())
            } else {
                Err(SchemaError::new(path, "`allOf` holds a non-object schema"))
            }
        }
        _ => Err(SchemaError::new(
            path,
            "`allOf` with several schemas is not supported",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(JsonSchema, Deserialize)]
    #[expect(dead_code, reason = "only the schema of this type is used")]
    struct Lyrics {
        /// The song's title.
        title: String,
        sections: Vec<Section>,
        mood: Option<Mood>,
        #[serde(default)]
        bpm: u16,
        ratio: f64,
    }

    #[derive(JsonSchema, Deserialize)]
    #[expect(dead_code, reason = "only the schema of this type is used")]
    struct Section {
        label: String,
        lines: Vec<String>,
        note: Option<String>,
    }

    #[derive(JsonSchema, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Mood {
        Happy,
        /// Documented variants make schemars emit `oneOf`.
        Sad,
    }

    fn walk_all(v: &Value, f: &mut impl FnMut(&Map<String, Value>)) {
        if let Value::Object(m) = v {
            f(m);
            for (k, sub) in m {
                if k == "properties" {
                    if let Value::Object(props) = sub {
                        for p in props.values() {
                            walk_all(p, f);
                        }
                    }
                } else {
                    walk_all(sub, f);
                }
            }
        } else if let Value::Array(items) = v {
            for i in items {
                walk_all(i, f);
            }
        }
    }

    #[test]
    fn every_object_is_closed_and_fully_required() {
        let schema = strict_schema::<Lyrics>().unwrap();
        // (Key order follows serde_json's map: sorted unless `preserve_order` is on.)
        let sorted = |v: &Value| {
            let mut names: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            sorted(&schema["required"]),
            ["bpm", "mood", "ratio", "sections", "title"]
        );
        let section = &schema["properties"]["sections"]["items"];
        assert_eq!(sorted(&section["required"]), ["label", "lines", "note"]);
        assert_eq!(section["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["title"]["description"],
            "The song's title."
        );
        let mut objects = 0;
        walk_all(&schema, &mut |m| {
            for bad in UNSUPPORTED.iter().chain(&["oneOf", "allOf"]) {
                assert!(!m.contains_key(*bad), "{bad} left in {m:?}");
            }
            if m.contains_key("properties") {
                objects += 1;
                assert_eq!(m["additionalProperties"], false);
                let props: Vec<&String> = m["properties"].as_object().unwrap().keys().collect();
                let required: Vec<&str> = m["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                assert_eq!(props, required);
            }
        });
        assert_eq!(objects, 2);
        assert!(schema.get("$schema").is_none() && schema.get("title").is_none());
    }

    #[derive(JsonSchema)]
    #[expect(dead_code, reason = "only the schema of this type is used")]
    struct WithMap {
        tags: HashMap<String, String>,
    }

    #[derive(JsonSchema)]
    #[expect(dead_code, reason = "only the schema of this type is used")]
    struct WithValue {
        anything: serde_json::Value,
    }

    #[test]
    fn what_strict_mode_cannot_express_is_refused_with_its_path() {
        let err = strict_schema::<WithMap>().unwrap_err();
        assert_eq!(err.path(), "/properties/tags");
        assert!(
            err.to_string().contains("maps with arbitrary keys"),
            "{err}"
        );
        let err = strict_schema::<WithValue>().unwrap_err();
        assert_eq!(err.path(), "/properties/anything");
        let err = strict_schema::<Vec<String>>().unwrap_err();
        assert_eq!(err.path(), "#");
        assert!(err.to_string().contains("root must be an object"), "{err}");
    }

    #[test]
    fn one_of_becomes_any_of_and_single_all_of_is_merged() {
        let schema = make_strict(json!({
            "type": "object",
            "properties": {
                "x": {"oneOf": [{"const": "a"}, {"const": "b"}]},
                "y": {"allOf": [{"type": "object", "properties": {"z": {"type": "integer", "format": "int32"}}}], "description": "d"}
            }
        }))
        .unwrap();
        assert!(schema["properties"]["x"]["anyOf"].is_array());
        let y = &schema["properties"]["y"];
        assert_eq!(y["description"], "d");
        assert_eq!(y["additionalProperties"], false);
        assert_eq!(y["required"], json!(["z"]));
        assert!(y["properties"]["z"].get("format").is_none());
    }

    #[derive(JsonSchema, Deserialize)]
    #[expect(dead_code, reason = "only the schema of this type is used")]
    struct Tree {
        name: String,
        children: Vec<Tree>,
    }

    #[test]
    fn recursive_types_keep_defs_and_close_them() {
        let schema = strict_schema::<Tree>().unwrap();
        let text = schema.to_string();
        assert!(text.contains("$ref"), "{text}");
        walk_all(&schema, &mut |m| {
            if m.contains_key("properties") {
                assert_eq!(m["additionalProperties"], false);
            }
        });
    }
}
