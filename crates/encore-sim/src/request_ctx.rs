//! The per-request context the fault middleware hands to every service handler.

/// Per-request context handlers read from the extensions.
#[derive(Clone, Debug)]
pub(crate) struct RequestCtx {
    /// Ledger sequence number.
    pub(crate) seq: u64,
    /// Base URL for generated URLs.
    pub(crate) base_url: String,
}
