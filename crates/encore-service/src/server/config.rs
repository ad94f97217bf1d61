//! `[serve]`: the server's settings.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A secret from the configuration (API token, callback secret): never shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    /// The secret.
    pub fn new(text: impl Into<String>) -> SecretText {
        SecretText(text.into())
    }

    /// The secret's text (to compare or to sign with; never to print).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How `encore serve` runs (the `[serve]` table of `encore.toml`, `ENCORE_SERVE__…`).
///
/// # Defaults
///
/// | key | default | meaning |
/// |---|---|---|
/// | `listen` | `127.0.0.1:8080` | where the HTTP API listens; a non-loopback address needs `api_token` |
/// | `public_url` | none | the URL providers reach this server at, for callbacks (`{public_url}/hooks/…`); none: no callbacks, polling only |
/// | `api_token` | none | bearer token required on `/v1` and the status page |
/// | `callback_secret` | made once and kept in the store | signs callback URLs (at least 16 characters) |
/// | `concurrency` | `16` | jobs one process runs at once |
/// | `lease_ttl` | `30s` | how long a claim holds a job without renewal (renewed every third of it) |
/// | `claim_interval` | `1s` | how often an idle worker looks for queued jobs |
/// | `reconcile_window` | `15m` | how long a billed step whose answer was lost waits for the provider's callback before the job needs attention |
/// | `shutdown_grace` | `30s` | on SIGTERM, how long running jobs get to reach a stored state |
/// | `body_limit` | `65536` | largest request or callback body, in bytes |
/// | `request_timeout` | `30s` | longest time one API request may take (event streams excepted) |
/// | `retention` | none | remove succeeded and cancelled jobs whose last change is older than this (at least `1d`), at start and every hour; none: keep every job |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The URL providers reach this server at.
    pub public_url: Option<String>,
    /// Bearer token for `/v1` and `/`.
    pub api_token: Option<SecretText>,
    /// Signs callback URLs.
    pub callback_secret: Option<SecretText>,
    /// Jobs in flight per process.
    pub concurrency: usize,
    /// Lease lifetime.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// Idle claim interval.
    #[serde(with = "humantime_serde")]
    pub claim_interval: Duration,
    /// Wait for a callback naming a lost answer's job.
    #[serde(with = "humantime_serde")]
    pub reconcile_window: Duration,
    /// Time running jobs get on SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Largest body, in bytes.
    pub body_limit: usize,
    /// Longest API request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long finished jobs are kept.
    #[serde(with = "humantime_serde")]
    pub retention: Option<Duration>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            api_token: None,
            callback_secret: None,
            concurrency: 16,
            lease_ttl: Duration::from_secs(30),
            claim_interval: Duration::from_secs(1),
            reconcile_window: Duration::from_secs(15 * 60),
            shutdown_grace: Duration::from_secs(30),
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            retention: None,
        }
    }
}

/// A `[serve]` value that cannot be used: names the key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: serve.{key}: {reason}")]
pub struct ServeConfigError {
    /// The key under `[serve]`.
    pub key: &'static str,
    /// Why.
    pub reason: String,
}

impl ServeConfig {
    /// Checks every value (and that a non-loopback `listen` has an `api_token`).
    ///
    /// # Errors
    ///
    /// A [`ServeConfigError`] naming the key.
    pub fn validate(&self) -> Result<(), ServeConfigError> {
        let bad = |key, reason: &str| {
            Err(ServeConfigError {
                key,
                reason: reason.to_owned(),
            })
        };
        if !self.listen.ip().is_loopback() && self.api_token.is_none() {
            return bad(
                "api_token",
                &format!(
                    "is required to listen on {}, which is not a loopback address",
                    self.listen
                ),
            );
        }
        if let Some(token) = &self.api_token
            && (token.expose().len() < 16 || token.expose().chars().any(|c| !c.is_ascii_graphic()))
        {
            return bad(
                "api_token",
                "must be at least 16 printable ASCII characters",
            );
        }
        if let Some(secret) = &self.callback_secret
            && secret.expose().len() < 16
        {
            return bad("callback_secret", "must be at least 16 characters");
        }
        if let Some(url) = &self.public_url {
            let ok = url
                .parse::<http::Uri>()
                .ok()
                .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
                .is_some_and(|u| u.host().is_some() && u.query().is_none());
            if !ok {
                return bad(
                    "public_url",
                    "must be an http(s) URL with a host and no query",
                );
            }
        }
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return bad("concurrency", "must be between 1 and 10000");
        }
        if self.lease_ttl < Duration::from_millis(300) {
            return bad("lease_ttl", "must be at least 300ms");
        }
        for (key, value) in [
            ("claim_interval", self.claim_interval),
            ("reconcile_window", self.reconcile_window),
            ("request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                return bad(key, "must be greater than zero");
            }
        }
        if self.body_limit < 1024 {
            return bad("body_limit", "must be at least 1024 bytes");
        }
        if self
            .retention
            .is_some_and(|r| r < encore_store::Purge::MIN_AGE)
        {
            return bad(
                "retention",
                "must be at least 1d: a removed job's idempotency key goes with it, and a client retrying within a day must find its job",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        ServeConfig::default().validate().unwrap();
        let open = ServeConfig {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..ServeConfig::default()
        };
        assert_eq!(open.validate().unwrap_err().key, "api_token");
        let open = ServeConfig {
            api_token: Some(SecretText::new("a-token-of-16-chars")),
            ..open
        };
        open.validate().unwrap();
        assert_eq!(format!("{:?}", open.api_token), "Some(<redacted>)");
        let bad = ServeConfig {
            public_url: Some("ftp://x".into()),
            ..ServeConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "public_url");
        let bad = ServeConfig {
            concurrency: 0,
            ..ServeConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "invalid config: serve.concurrency: must be between 1 and 10000"
        );
        for (retention, ok) in [
            (Duration::from_secs(24 * 3600 - 1), false),
            (encore_store::Purge::MIN_AGE, true),
            (Duration::from_secs(90 * 24 * 3600), true),
        ] {
            let config = ServeConfig {
                retention: Some(retention),
                ..ServeConfig::default()
            };
            assert_eq!(
                config.validate().map_err(|e| e.key),
                if ok { Ok(()) } else { Err("retention") },
                "{retention:?}"
            );
        }
    }
}
