//! What a failed attempt means, decided per service by its pure `classify` function: the
//! client's own three-way answer, before the endpoint turns it into a retry decision.

use std::time::Duration;

/// What a failed attempt means for a replay of the same request.
///
/// The request path's [`EndpointRules`](crate::request::EndpointRules) turn it into the core's
/// [`Decision`](encore_resilience::Decision): `Transient` is retried; `MayHaveRun` is retried
/// for reads and for billed endpoints that set `retry_ambiguous`, and stops otherwise;
/// `Permanent` stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    /// Retrying is safe: the request provably was not processed (connect failure, 408, 429, a
    /// rate-limit body code), optionally after a server-requested wait.
    Transient { after: Option<Duration> },
    /// The request may have been processed (attempt timeout, reset after sending, 5xx, garbled
    /// success body). Replaying a read is free; replaying a billed call may pay twice.
    MayHaveRun { after: Option<Duration> },
    /// Sending the same request again cannot succeed.
    Permanent,
}
