//! The three services and their endpoints: one table ([`endpoint_table!`]) that everything else
//! about an endpoint is derived from — its name, configuration key, service, whether it is
//! billed, whether it takes a rate-limit slot, its default policy, and what to check when a
//! billed call's outcome is unknown. A new endpoint is one row here (and a client method that
//! calls it).

use std::fmt;

use serde::Serialize;

/// One of the three external services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// OpenAI (Responses API): lyrics.
    OpenAi,
    /// Suno via sunoapi.org: the song.
    Suno,
    /// Creatomate: the video.
    Creatomate,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 3] = [Service::OpenAi, Service::Suno, Service::Creatomate];

    /// `"openai"`, `"suno"` or `"creatomate"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Service::OpenAi => "openai",
            Service::Suno => "suno",
            Service::Creatomate => "creatomate",
        }
    }

    /// The position in [`Service::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a billed endpoint creates, for the error of a call whose outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Billing {
    /// What the lost request may have created: "the task may have been created".
    pub(crate) may_exist: &'static str,
    /// Where to look before running again, if anywhere: "the Suno dashboard".
    pub(crate) check: Option<&'static str>,
}

/// The default policy of an endpoint, in the seed plan's terms: attempt timeout (s), retries,
/// first wait (s, doubling), and whether a billed call is replayed after a failure that may
/// have created the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Defaults {
    pub(crate) timeout_s: u64,
    pub(crate) retries: u32,
    pub(crate) base_delay_s: u64,
    pub(crate) retry_ambiguous: bool,
}

/// The endpoint table, handed to `$then!` (the X-macro pattern): the enum below and the
/// per-endpoint configuration ([`Endpoints`](crate::config::Endpoints)) are both generated from
/// these rows, so they cannot disagree.
///
/// Columns: variant, doc, name (logs, errors), configuration key (`[endpoints.<key>]`),
/// service, billing (`None`: a read, replayed freely), whether it takes a rate-limit slot of its
/// service, and the default policy.
macro_rules! endpoint_table {
    ($then:ident) => {
        $then! {
            OpenAiResponses {
                doc: "`POST /v1/responses` — structured lyrics. Billed (cheaply) and not idempotent.",
                name: "openai.responses", key: openai_responses, service: OpenAi,
                // A lost response costs cents and the official SDK replays it; failing the
                // whole video costs a run. Hence replayed by default.
                billing: Some(Billing { may_exist: "the request may have been processed", check: None }),
                rate_limited: true,
                defaults: Defaults { timeout_s: 60, retries: 3, base_delay_s: 2, retry_ambiguous: true },
            },
            SunoGenerate {
                doc: "`POST /api/v1/generate` — creates a billed Suno task. Not idempotent.",
                name: "suno.generate", key: suno_generate, service: Suno,
                billing: Some(Billing { may_exist: "the task may have been created", check: Some("the Suno dashboard") }),
                // sunoapi.org documents its quota (20 per 10 s) for generate only.
                rate_limited: true,
                defaults: Defaults { timeout_s: 30, retries: 3, base_delay_s: 1, retry_ambiguous: false },
            },
            SunoStatus {
                doc: "`GET /api/v1/generate/record-info` — task status.",
                name: "suno.status", key: suno_status, service: Suno,
                billing: None, rate_limited: false,
                defaults: Defaults { timeout_s: 30, retries: 2, base_delay_s: 1, retry_ambiguous: false },
            },
            SunoTimestamps {
                doc: "`POST /api/v1/generate/get-timestamped-lyrics` — a read despite the POST.",
                name: "suno.timestamps", key: suno_timestamps, service: Suno,
                billing: None, rate_limited: false,
                defaults: Defaults { timeout_s: 120, retries: 2, base_delay_s: 2, retry_ambiguous: false },
            },
            SunoCredits {
                doc: "`GET /api/v1/generate/credit` — remaining credits.",
                name: "suno.credits", key: suno_credits, service: Suno,
                billing: None, rate_limited: false,
                defaults: Defaults { timeout_s: 30, retries: 2, base_delay_s: 1, retry_ambiguous: false },
            },
            CreatomateTemplates {
                doc: "`GET /v1/templates` and `GET /v1/templates/{id}`.",
                name: "creatomate.templates", key: creatomate_templates, service: Creatomate,
                // Creatomate's quota (30 per 10 s) counts every request, polling included.
                billing: None, rate_limited: true,
                defaults: Defaults { timeout_s: 30, retries: 2, base_delay_s: 1, retry_ambiguous: false },
            },
            CreatomateRender {
                doc: "`POST /v1/renders` — queues a billed render. Not idempotent.",
                name: "creatomate.render", key: creatomate_render, service: Creatomate,
                billing: Some(Billing { may_exist: "the render may have been queued", check: Some("the Creatomate dashboard") }),
                rate_limited: true,
                defaults: Defaults { timeout_s: 60, retries: 3, base_delay_s: 1, retry_ambiguous: false },
            },
            CreatomateStatus {
                doc: "`GET /v1/renders/{id}` — render status.",
                name: "creatomate.status", key: creatomate_status, service: Creatomate,
                billing: None, rate_limited: true,
                defaults: Defaults { timeout_s: 30, retries: 2, base_delay_s: 1, retry_ambiguous: false },
            },
        }
    };
}
pub(crate) use endpoint_table;

/// Generates [`Endpoint`] and its table lookups from the rows of [`endpoint_table!`].
macro_rules! define_endpoint {
    ($($variant:ident {
        doc: $doc:literal, name: $name:literal, key: $key:ident, service: $service:ident,
        billing: $billing:expr, rate_limited: $rate_limited:expr, defaults: $defaults:expr $(,)?
    }),* $(,)?) => {
        /// One remote operation with its own timeout and retry policy (a row of the seed plan's
        /// table).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Endpoint {
            $(#[doc = $doc] $variant,)*
        }

        impl Endpoint {
            /// Every endpoint, in the order of the Defaults table.
            pub const ALL: [Endpoint; [$(stringify!($variant)),*].len()] = [$(Endpoint::$variant),*];

            /// The row of this endpoint.
            const fn row(self) -> Row {
                match self {
                    $(Endpoint::$variant => Row {
                        name: $name,
                        key: stringify!($key),
                        service: Service::$service,
                        billing: $billing,
                        rate_limited: $rate_limited,
                        defaults: $defaults,
                    },)*
                }
            }
        }
    };
}

/// One row of the endpoint table.
struct Row {
    name: &'static str,
    key: &'static str,
    service: Service,
    billing: Option<Billing>,
    rate_limited: bool,
    defaults: Defaults,
}

endpoint_table!(define_endpoint);

impl Endpoint {
    /// The service the endpoint belongs to.
    pub const fn service(self) -> Service {
        self.row().service
    }

    /// The name used in logs and errors, e.g. `"suno.generate"`.
    pub const fn name(self) -> &'static str {
        self.row().name
    }

    /// The key under `[endpoints]` in `encore.toml`, e.g. `"suno_generate"`.
    pub const fn config_key(self) -> &'static str {
        self.row().key
    }

    /// Whether a processed call is billed and a replay would be billed again (a non-idempotent
    /// POST): OpenAI responses, Suno generate and Creatomate render. Failures after which such a
    /// call "may have run" are only retried when the endpoint's
    /// [`retry_ambiguous`](crate::config::EndpointPolicy::retry_ambiguous) is set.
    pub const fn is_billed(self) -> bool {
        self.row().billing.is_some()
    }

    /// Whether a request to this endpoint takes a slot of its service's client-side rate limit:
    /// every OpenAI and Creatomate request (Creatomate's quota counts polling too), and Suno's
    /// `generate` only, the one endpoint sunoapi.org documents a limit for.
    pub const fn counts_toward_rate_limit(self) -> bool {
        self.row().rate_limited
    }

    /// What a billed call may have created, and where to check.
    pub(crate) const fn billing(self) -> Option<Billing> {
        self.row().billing
    }

    /// The default policy's numbers.
    pub(crate) const fn defaults(self) -> Defaults {
        self.row().defaults
    }

    /// The position in [`Endpoint::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keys_and_positions_agree() {
        for (i, e) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(e.name().replace('.', "_"), e.config_key());
            assert_eq!(e.to_string(), e.name());
            assert!(e.name().starts_with(e.service().as_str()));
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::json!(e.name())
            );
        }
        for (i, s) in Service::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
        }
        assert_eq!(
            Service::ALL.map(Service::as_str),
            ["openai", "suno", "creatomate"]
        );
        assert_eq!(serde_json::to_value(Service::OpenAi).unwrap(), "openai");
    }

    #[test]
    fn billed_and_rate_limited_endpoints() {
        let billed: Vec<_> = Endpoint::ALL
            .into_iter()
            .filter(|e| e.is_billed())
            .collect();
        assert_eq!(
            billed,
            [
                Endpoint::OpenAiResponses,
                Endpoint::SunoGenerate,
                Endpoint::CreatomateRender
            ]
        );
        // Suno documents a quota on generate only; Creatomate's counts every request.
        let unlimited: Vec<_> = Endpoint::ALL
            .into_iter()
            .filter(|e| !e.counts_toward_rate_limit())
            .collect();
        assert_eq!(
            unlimited,
            [
                Endpoint::SunoStatus,
                Endpoint::SunoTimestamps,
                Endpoint::SunoCredits
            ]
        );
        // Only billed endpoints replay ambiguous failures by default, and only OpenAI does.
        for e in Endpoint::ALL {
            assert_eq!(e.defaults().retry_ambiguous, e == Endpoint::OpenAiResponses);
        }
    }
}
