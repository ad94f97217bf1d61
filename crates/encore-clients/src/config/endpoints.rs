//! The timeout and retry policy of every endpoint (`[endpoints.<key>]`): the seed plan's table.

use std::time::Duration;

use encore_resilience::{Jitter, RetryPolicy};
use serde::{Deserialize, Serialize};

use crate::defaults::{DEADLINE_ROUNDING, DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRY_AFTER};
use crate::endpoint::{Endpoint, endpoint_table};

/// The timeout and retry policy of one endpoint: the fields of
/// [`RetryPolicy`] plus [`retry_ambiguous`](Self::retry_ambiguous).
///
/// Durations are humantime strings in files and variables (`"500ms"`, `"2s"`, `"1m 30s"`).
/// The per-attempt timeout covers the whole attempt — pool wait, connect, sending the request
/// and reading the entire body — and sits inside the retry loop; the deadline sits outside it
/// and bounds every attempt and every wait together (and the wait for a rate-limit slot).
///
/// Every field is required when this type is deserialized on its own: load it through
/// [`Config::load`](crate::Config::load) or [`Config::from_toml_str`](crate::Config::from_toml_str),
/// which layer a partial table over the endpoint's own defaults ([`EndpointPolicy::default_for`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointPolicy {
    /// `false` makes exactly one attempt (this endpoint's rollback switch).
    pub enabled: bool,
    /// Retries on top of the first attempt.
    pub max_retries: u32,
    /// The wait before the first retry.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// The cap on one backoff wait.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Growth of the wait per retry.
    pub multiplier: f64,
    /// `none`, `full`, `equal` or `decorrelated`.
    pub jitter: Jitter,
    /// The bound on one attempt (connect, write, read and pool wait together).
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// The bound on the whole call, attempts and waits included.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// The longest server-requested wait (`Retry-After`) honoured; a longer one gives up.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Billed endpoints only: also retry after a failure that happened after the request may
    /// have been processed (attempt timeout, connection reset after sending, 5xx, garbled 2xx).
    /// Such a retry can pay twice. Ignored by reads, which are always replayed.
    pub retry_ambiguous: bool,
}

impl EndpointPolicy {
    /// The shipped default of `endpoint` (see the Defaults table on [`Config`](crate::Config)):
    /// its row of the endpoint table, with a deadline of the schedule's worst case —
    /// `attempts × attempt_timeout + waits` — rounded up to [`DEADLINE_ROUNDING`].
    pub const fn default_for(endpoint: Endpoint) -> EndpointPolicy {
        let d = endpoint.defaults();
        let attempts = d.retries as u64 + 1;
        let waits = d.base_delay_s * ((1 << d.retries) - 1);
        let worst = attempts * d.timeout_s + waits;
        let step = DEADLINE_ROUNDING.as_secs();
        EndpointPolicy {
            enabled: true,
            max_retries: d.retries,
            base_delay: Duration::from_secs(d.base_delay_s),
            max_delay: DEFAULT_MAX_DELAY,
            multiplier: 2.0,
            jitter: Jitter::None,
            attempt_timeout: Duration::from_secs(d.timeout_s),
            deadline: Duration::from_secs(worst.div_ceil(step) * step),
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            retry_ambiguous: d.retry_ambiguous,
        }
    }

    /// The [`RetryPolicy`] the resilience core runs; `global_retries = false` (the top-level
    /// `retries` switch) disables retries like `enabled = false` does.
    pub fn retry_policy(&self, global_retries: bool) -> RetryPolicy {
        RetryPolicy::new()
            .with_enabled(self.enabled && global_retries)
            .with_max_retries(self.max_retries)
            .with_base_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_multiplier(self.multiplier)
            .with_jitter(self.jitter)
            .with_attempt_timeout(self.attempt_timeout)
            .with_deadline(self.deadline)
            .with_max_retry_after(self.max_retry_after)
    }
}

/// Generates [`Endpoints`] from the rows of the endpoint table.
macro_rules! define_endpoints {
    ($($variant:ident {
        doc: $doc:literal, name: $name:literal, key: $key:ident, service: $service:ident,
        billing: $billing:expr, rate_limited: $rate_limited:expr, defaults: $defaults:expr $(,)?
    }),* $(,)?) => {
        /// The policies of every endpoint, keyed as in `[endpoints.<key>]`.
        #[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
        #[serde(deny_unknown_fields, default)]
        pub struct Endpoints {
            $(#[doc = concat!("`", $name, "`.")] pub $key: EndpointPolicy,)*
        }

        impl Default for Endpoints {
            fn default() -> Self {
                Endpoints {
                    $($key: EndpointPolicy::default_for(Endpoint::$variant),)*
                }
            }
        }

        impl Endpoints {
            /// The policy of `endpoint`.
            pub fn get(&self, endpoint: Endpoint) -> &EndpointPolicy {
                match endpoint {
                    $(Endpoint::$variant => &self.$key,)*
                }
            }

            /// The policy of `endpoint`, mutably.
            pub fn get_mut(&mut self, endpoint: Endpoint) -> &mut EndpointPolicy {
                match endpoint {
                    $(Endpoint::$variant => &mut self.$key,)*
                }
            }
        }
    };
}

endpoint_table!(define_endpoints);
