//! What the single-stage commands (`lyrics`, `song`, `video`) share: a pipeline with a progress
//! display, and their output.

use encore_pipeline::{Pipeline, PipelineError};
use serde::Serialize;

use crate::error::CliError;
use crate::json::StageJson;
use crate::output;
use crate::setup::Setup;

/// The pipeline a stage command runs, with its events shown.
pub fn pipeline(setup: &Setup) -> Pipeline {
    crate::progress::attach(setup.pipeline(), String::new(), true)
}

/// Prints the stage's result (as `--json`, or with `human`) and returns its error, if any.
pub fn finish<T: Serialize>(
    result: Result<T, PipelineError>,
    json: bool,
    human: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    if json {
        output::json(&StageJson::new(&result))?;
    } else if let Ok(value) = &result {
        output::text(&human(value))?;
    }
    result.map(drop).map_err(CliError::from)
}
