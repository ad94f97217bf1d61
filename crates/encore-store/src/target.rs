//! Where a store lives: a PostgreSQL URL or an SQLite file path, and how it is named in
//! messages (a URL's password never is).

use std::fmt;
use std::path::PathBuf;

use crate::{Error, ErrorKind};

/// A parsed database target. Its `Debug` and `Display` show the redacted form only.
#[derive(Clone)]
pub(crate) enum Target {
    Sqlite(PathBuf),
    Postgres {
        /// The URL as given, secrets included: only ever handed to the driver.
        url: String,
        /// The URL with any password replaced by `***`.
        redacted: String,
    },
}

impl Target {
    /// `postgres://…` or `postgresql://…` is PostgreSQL; anything else without a `://` is a file
    /// path.
    pub(crate) fn parse(target: &str) -> Result<Target, Error> {
        let target = target.trim();
        if target.is_empty() {
            return Err(Error::new(
                ErrorKind::Invalid,
                "no database given: expected a postgres:// url or an sqlite file path",
            ));
        }
        if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            return Ok(Target::Postgres {
                url: target.to_owned(),
                redacted: redact_url(target),
            });
        }
        if let Some((scheme, _)) = target.split_once("://") {
            // Only the scheme is repeated: the rest may hold a password.
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "unsupported database url scheme {scheme:?}: expected a postgres:// url or an sqlite file path"
                ),
            ));
        }
        Ok(Target::Sqlite(PathBuf::from(target)))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Sqlite(path) => write!(f, "{}", path.display()),
            Target::Postgres { redacted, .. } => f.write_str(redacted),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Target::Postgres { redacted, .. } => f.debug_tuple("Postgres").field(redacted).finish(),
        }
    }
}

/// The URL with the password of its user info and any `password` / `sslpassword` query
/// parameter replaced by `***`. An unparsable URL is not repeated at all.
pub(crate) fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparsable postgres url>".to_owned();
    };
    if parsed.password().is_some() {
        // Setting a password only fails for URLs that cannot have one, which this one had.
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret =
                    k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword");
                let v = if secret {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_everywhere() {
        let target = Target::parse(
            "postgres://encore:hunter2@db.example:5432/jobs?password=hunter3&application_name=x",
        )
        .unwrap();
        let shown = format!("{target} {target:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("encore:***@db.example:5432/jobs"), "{shown}");
        assert!(shown.contains("application_name=x"), "{shown}");
    }

    #[test]
    fn a_url_without_password_is_unchanged() {
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
    }

    #[test]
    fn paths_and_other_schemes() {
        assert!(matches!(
            Target::parse("/var/lib/encore/jobs.db").unwrap(),
            Target::Sqlite(_)
        ));
        let err = Target::parse("mysql://root:secret@host/db").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(Target::parse(" ").unwrap_err().kind(), ErrorKind::Invalid);
    }
}
