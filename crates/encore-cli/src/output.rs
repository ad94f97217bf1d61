//! Writing results to stdout: text, or with `--json` one JSON document and nothing else.
//!
//! Write errors come back as a [`CliError`] instead of a panic, so a reader that went away
//! (`encore config show | head -1`) ends the command quietly with exit 0.

use std::io::Write;

use serde::Serialize;

use crate::error::CliError;

/// Writes `text` to stdout as it is.
pub fn text(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::output)
}

/// Writes `document` to stdout as pretty JSON and a newline.
pub fn json(document: &impl Serialize) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(document)
        .map_err(|e| CliError::permanent(anyhow::Error::new(e).context("cannot write JSON")))?;
    text.push('\n');
    self::text(&text)
}
