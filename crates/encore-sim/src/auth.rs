//! Bearer-token checks shared by the three services. Keys are never logged.

use http::HeaderMap;

use crate::config::SimConfig;

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No `Authorization: Bearer …` header (or an empty key).
    Missing,
    /// A key that is not in `api_keys`.
    Invalid,
}

/// The caller's API key, if it is acceptable.
pub(crate) fn check(config: &SimConfig, headers: &HeaderMap) -> Result<String, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::Missing)?;
    let mut parts = value.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let key = parts.next().unwrap_or_default().trim();
    if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
        return Err(AuthError::Missing);
    }
    match &config.api_keys {
        Some(keys) if !keys.iter().any(|k| k == key) => Err(AuthError::Invalid),
        _ => Ok(key.to_owned()),
    }
}

/// A short, non-reversible tag for a key, for logs: `"key#1a2b"`.
pub(crate) fn key_tag(key: &str) -> String {
    format!("key#{:04x}", crate::ids::fnv1a(key.as_bytes()) & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn bearer_rules() {
        let open = SimConfig::default();
        assert_eq!(check(&open, &headers("Bearer sk-1")).unwrap(), "sk-1");
        assert_eq!(check(&open, &headers("bearer  sk-1 ")).unwrap(), "sk-1");
        assert_eq!(check(&open, &HeaderMap::new()), Err(AuthError::Missing));
        assert_eq!(check(&open, &headers("Bearer ")), Err(AuthError::Missing));
        assert_eq!(check(&open, &headers("Basic abc")), Err(AuthError::Missing));
        let closed = SimConfig {
            api_keys: Some(vec!["good".into()]),
            ..SimConfig::default()
        };
        assert!(check(&closed, &headers("Bearer good")).is_ok());
        assert_eq!(
            check(&closed, &headers("Bearer bad")),
            Err(AuthError::Invalid)
        );
    }
}
