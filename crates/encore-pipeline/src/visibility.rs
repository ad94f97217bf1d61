//! "Not found" right after creation: a job the provider just created may not be readable yet.
//!
//! A billed POST answered with an id, so the task or render exists and is paid for; a status
//! read that answers "not found" a moment later is far more likely a read that has not caught up
//! (an eventually consistent gateway or store) than a job that vanished. Neither provider
//! documents it either way (`shared/reference/apis.md` 5.2: "404 right after create could be
//! eventual consistency — UNCONFIRMED"), so for a short grace (`pipeline.not_found_grace`) the
//! waits treat it as "not visible yet"; after that, the run stops and names the id, because
//! running again would create and pay for a second job while the first may still appear.

use encore_clients::Error;

/// Whether a status read failed because the provider does not know the task or render: the
/// client's [`Error::is_not_found`] (HTTP 404 — Creatomate's answer for an unknown render —
/// Suno's envelope code 404, and Suno's 400 to a `record-info` read, whose one parameter is the
/// task id). The client makes such a read one permanent attempt that counts as the service
/// being up, so looking again within the grace burns neither the endpoint's retries nor the
/// breaker; our own refusals (circuit open, no rate-limit slot) are never "not found".
pub(crate) fn is_not_found(e: &Error) -> bool {
    e.is_not_found()
}
