//! API keys: sent only in the `Authorization` header, never shown anywhere else.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

use crate::error::{Error, ErrorKind};

/// An API key (bearer token).
///
/// Its `Debug` and `Display` print `ApiKey(***)`, so it can sit in structs that are logged or
/// printed. The key itself is only ever written into the `Authorization` header (marked
/// [sensitive](HeaderValue::set_sensitive)); server messages that echo it back are redacted
/// before they reach an error or a log line.
///
/// ```
/// use encore_clients::ApiKey;
///
/// let key = ApiKey::new("sk-live-123").unwrap();
/// assert_eq!(format!("{key:?} {key}"), "ApiKey(***) ApiKey(***)");
/// assert!(ApiKey::new("  ").is_err());
/// ```
#[derive(Clone)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// Wraps a key, refusing an empty (or all-whitespace) one and one that cannot be sent in an
    /// HTTP header (control characters such as a trailing newline are trimmed first).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::MissingKey`] when the key is empty; [`ErrorKind::Config`] when it contains
    /// characters that are not allowed in a header (the error does not show the key).
    pub fn new(key: impl Into<String>) -> Result<ApiKey, Error> {
        let key: String = key.into();
        let trimmed = key.trim();
        if trimmed.is_empty() {
            return Err(Error::local(ErrorKind::MissingKey, "the API key is empty"));
        }
        if HeaderValue::from_str(&format!("Bearer {trimmed}")).is_err() {
            return Err(Error::local(
                ErrorKind::Config,
                "the API key contains characters that cannot be sent in an HTTP header",
            ));
        }
        Ok(ApiKey(Arc::from(trimmed)))
    }

    /// Reads a key from the environment variable `var`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::MissingKey`] naming the variable when it is unset, empty or not Unicode.
    pub fn from_env(var: &str) -> Result<ApiKey, Error> {
        match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => ApiKey::new(value).map_err(|e| {
                Error::local(
                    e.kind().clone(),
                    format!("environment variable {var}: {}", e.detail()),
                )
            }),
            Ok(_) => Err(Error::local(
                ErrorKind::MissingKey,
                format!("environment variable {var} is empty"),
            )),
            Err(std::env::VarError::NotPresent) => Err(Error::local(
                ErrorKind::MissingKey,
                format!("environment variable {var} is not set"),
            )),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::local(
                ErrorKind::MissingKey,
                format!("environment variable {var} is not valid Unicode"),
            )),
        }
    }

    /// The `Authorization: Bearer …` header value, marked sensitive.
    pub(crate) fn bearer(&self) -> HeaderValue {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", self.0)).expect("checked in ApiKey::new");
        value.set_sensitive(true);
        value
    }

    /// Replaces every occurrence of the key in `text` with `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(&*self.0, "***")
    }

    /// Whether `text` contains the key.
    pub(crate) fn is_in(&self, text: &str) -> bool {
        text.contains(&*self.0)
    }

    /// A name for the account this key belongs to that does not reveal the key: the first 96
    /// bits of a SHA-256 of it (with a fixed label), in hex. Keys are long random strings, so
    /// the fingerprint cannot be turned back into one; it names per-account state shared by
    /// several processes (a request quota in a database) without storing the key.
    ///
    /// ```
    /// use encore_clients::ApiKey;
    ///
    /// let key = ApiKey::new("sk-live-123").unwrap();
    /// let fingerprint = key.fingerprint();
    /// assert_eq!(fingerprint.len(), 24);
    /// assert!(!fingerprint.contains("sk-live-123"));
    /// assert_eq!(fingerprint, ApiKey::new("sk-live-123\n").unwrap().fingerprint());
    /// assert_ne!(fingerprint, ApiKey::new("sk-live-124").unwrap().fingerprint());
    /// ```
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        use std::fmt::Write as _;

        let digest = Sha256::new()
            .chain_update(b"encore account fingerprint\0")
            .chain_update(self.0.as_bytes())
            .finalize();
        digest[..12].iter().fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENTINEL: &str = "sk-SENTINEL-0123456789";

    #[test]
    fn never_printed() {
        let key = ApiKey::new(SENTINEL).unwrap();
        for text in [
            format!("{key}"),
            format!("{key:?}"),
            format!("{key:#?}"),
            format!("{:?}", key.bearer()),
        ] {
            assert!(!text.contains(SENTINEL), "{text}");
        }
        assert!(key.bearer().is_sensitive());
    }

    #[test]
    fn empty_and_unsendable_keys_are_refused_without_showing_them() {
        assert_eq!(*ApiKey::new("").unwrap_err().kind(), ErrorKind::MissingKey);
        assert_eq!(
            *ApiKey::new(" \n").unwrap_err().kind(),
            ErrorKind::MissingKey
        );
        let err = ApiKey::new("sk-SECRET\u{7}bell").unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Config);
        assert!(!format!("{err} {err:?}").contains("SECRET"));
        // Surrounding whitespace (a pasted newline) is trimmed.
        let key = ApiKey::new(format!("{SENTINEL}\n")).unwrap();
        assert_eq!(key.bearer().to_str().unwrap(), format!("Bearer {SENTINEL}"));
    }

    #[test]
    fn redaction() {
        let key = ApiKey::new(SENTINEL).unwrap();
        assert_eq!(
            key.redact(&format!("Incorrect API key provided: {SENTINEL}.")),
            "Incorrect API key provided: ***."
        );
        assert!(key.is_in(SENTINEL));
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns its own error"
    )]
    fn from_env_names_the_variable() {
        let err = ApiKey::from_env("ENCORE_TEST_SURELY_UNSET_KEY_VARIABLE").unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::MissingKey);
        assert!(
            err.to_string()
                .contains("ENCORE_TEST_SURELY_UNSET_KEY_VARIABLE is not set"),
            "{err}"
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("ENCORE_TEST_KEY_SET", SENTINEL);
            jail.set_env("ENCORE_TEST_KEY_EMPTY", "");
            let key = ApiKey::from_env("ENCORE_TEST_KEY_SET").unwrap();
            assert!(key.is_in(SENTINEL));
            let err = ApiKey::from_env("ENCORE_TEST_KEY_EMPTY").unwrap_err();
            assert!(err.to_string().contains("ENCORE_TEST_KEY_EMPTY is empty"));
            Ok(())
        });
    }
}
