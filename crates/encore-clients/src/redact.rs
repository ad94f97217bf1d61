//! Keeping API keys out of errors: a server that echoes the key (in a message, an error code,
//! or a body that ends up in a decode error) must not carry it into a log line.

use std::error::Error as StdError;
use std::fmt;

use crate::error::Error;
use crate::secret::ApiKey;

/// Removes `key` from every text `error` carries; a source whose text contains it is replaced
/// by its redacted text (the only case where a cause is turned into a string).
pub(crate) fn redact(mut error: Error, key: &ApiKey) -> Error {
    for text in error.texts_mut().into_iter().flatten() {
        if key.is_in(text) {
            *text = key.redact(text);
        }
    }
    let source = error.source_mut();
    if let Some(inner) = source.as_deref() {
        let mut text = String::new();
        let mut next: Option<&(dyn StdError + 'static)> = Some(inner);
        while let Some(e) = next {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&e.to_string());
            next = e.source();
        }
        if key.is_in(&text) || key.is_in(&format!("{inner:?}")) {
            *source = Some(Box::new(Redacted(key.redact(&text))));
        }
    }
    error
}

/// A cause whose text contained an API key, kept as its redacted text.
#[derive(Debug)]
struct Redacted(String);

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Redacted {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::Class;
    use crate::error::ErrorKind;

    #[test]
    fn redaction_reaches_messages_codes_and_sources() {
        let key = ApiKey::new("sk-SENTINEL-42").unwrap();
        let err = Error::new(
            ErrorKind::Unauthorized,
            Class::Permanent,
            "http 401 Unauthorized: bad key sk-SENTINEL-42",
        )
        .with_api(
            Some("code-sk-SENTINEL-42".into()),
            Some("bad key sk-SENTINEL-42".into()),
        )
        .with_source(std::io::Error::other("echo sk-SENTINEL-42"));
        let err = redact(err, &key);
        let all = format!(
            "{err} {err:?} {} {:?}",
            err.source().unwrap(),
            err.api_code()
        );
        assert!(!all.contains("SENTINEL"), "{all}");
        assert!(all.contains("bad key ***"), "{all}");
        assert_eq!(err.api_code(), Some("code-***"));
        // A clean source is kept as it is, its type intact.
        let clean = redact(
            Error::new(ErrorKind::Transport, Class::Permanent, "x")
                .with_source(std::io::Error::other("reset")),
            &key,
        );
        assert!(clean.source().unwrap().is::<std::io::Error>());
    }
}
