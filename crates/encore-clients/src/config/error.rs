//! A configuration that cannot be used: which key, why, and where the value came from.

use std::fmt;

use crate::defaults::ENV_PREFIX;

/// An invalid configuration: names the key (`endpoints.suno_generate.base_delay`) and why.
///
/// Displays as `invalid config: <key>: <reason>`, followed by where the value came from when
/// known (`(in environment variable ENCORE_…)`, `(in file encore.toml)`).
#[derive(Debug)]
pub struct ConfigError {
    key: String,
    reason: String,
    origin: Option<String>,
    source: Option<Box<figment::Error>>,
}

impl ConfigError {
    /// A refusal of `key` (dotted, as written in `encore.toml`) for `reason`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
            origin: None,
            source: None,
        }
    }

    /// The same refusal, saying where the value came from (`environment variable ENCORE_X`).
    pub fn with_origin(mut self, origin: impl Into<String>) -> ConfigError {
        self.origin = Some(origin.into());
        self
    }

    /// A figment error, named by its key.
    pub(crate) fn from_figment(error: figment::Error) -> ConfigError {
        use figment::error::Kind;
        // TOML datetimes travel through serde as a private one-key table; name the user's key.
        let mut path: Vec<String> = error
            .path
            .iter()
            .filter(|segment| !segment.starts_with("$__toml_private"))
            .cloned()
            .collect();
        let reason = match &error.kind {
            Kind::UnknownField(field, _) | Kind::UnknownVariant(field, _)
                if field.starts_with("$__toml_private") =>
            {
                "a date-time is not a valid value here".to_owned()
            }
            Kind::UnknownField(field, expected) => {
                if path.last() != Some(field) {
                    path.push(field.clone());
                }
                format!("unknown key (expected one of: {})", expected.join(", "))
            }
            Kind::MissingField(field) => {
                if path.last().map(String::as_str) != Some(field.as_ref()) {
                    path.push(field.to_string());
                }
                "missing key".to_owned()
            }
            other => other.to_string(),
        };
        let key = path.join(".");
        let origin = error.metadata.as_ref().map(|md| {
            if md.name.contains("environment") {
                format!(
                    "environment variable {ENV_PREFIX}{}",
                    key.to_ascii_uppercase().replace('.', "__")
                )
            } else if let Some(figment::Source::File(file)) = &md.source {
                format!("file {}", file.display())
            } else {
                md.name.to_string()
            }
        });
        ConfigError {
            key,
            reason,
            origin,
            source: Some(Box::new(error)),
        }
    }

    /// The dotted key, e.g. `endpoints.suno_generate.base_delay` (empty for a missing file).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Why the value was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Where the value came from (a file or an environment variable), when known.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid config: ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.reason)?;
        // Defaults are not an origin worth naming.
        match &self.origin {
            Some(origin) if !origin.contains("Serialized") => write!(f, " (in {origin})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
