//! "Not found" right after creation: a job the provider just created may not be readable yet.
//!
//! A billed POST answered with an id, so the task or render exists and is paid for; a status
//! read that answers "not found" a moment later is far more likely a read that has not caught up
//! (an eventually consistent gateway or store) than a job that vanished. Neither provider
//! documents it either way (`shared/reference/apis.md` 5.2: "404 right after create could be
//! eventual consistency — UNCONFIRMED"), so for a short grace (`pipeline.not_found_grace`) the
//! waits treat it as "not visible yet"; after that, the run stops and names the id, because
//! running again would create and pay for a second job while the first may still appear.

use encore_clients::{Error, ErrorKind, Service};

/// Whether a status read failed because the provider does not know the task or render.
///
/// - HTTP 404: Creatomate's answer for an unknown render (`{hint}` body), and Suno's when a
///   gateway mirrors its body code into the status.
/// - Suno envelope code 404 or 400: sunoapi.org documents no "unknown task" answer; 400
///   ("Invalid parameters") is what a read whose only parameter is the task id gets when that
///   id is not known, and the simulator's default (`suno_unknown_task_code`). A status read of
///   our own, well-formed request has no other invalid parameter, so within the grace it is
///   read as "not yet".
///
/// Our own refusals (circuit open, no rate-limit slot) are not "not found": nothing was asked.
pub(crate) fn is_not_found(e: &Error) -> bool {
    if matches!(
        e.kind(),
        ErrorKind::CircuitOpen | ErrorKind::Throttled | ErrorKind::MissingKey | ErrorKind::Config
    ) {
        return false;
    }
    if e.status().is_some_and(|s| s.as_u16() == 404) {
        return true;
    }
    e.service() == Some(Service::Suno) && matches!(e.api_code(), Some("400" | "404"))
}
