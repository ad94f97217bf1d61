//! The documented exit codes.

use std::process::ExitCode;

use encore_pipeline::FailureClass;

/// The video was made (or the command did what it was asked).
pub const SUCCESS: u8 = 0;
/// A permanent failure: the request, account or job itself is wrong; running again will not help.
pub const PERMANENT: u8 = 1;
/// Transient faults outlasted the retries or a deadline; running again later may work.
pub const GAVE_UP: u8 = 2;
/// Bad input, bad configuration or a missing API key, refused before any call was made.
pub const BAD_INPUT: u8 = 3;
/// A billed call may have run but its answer was lost: check the service before running again.
pub const OUTCOME_UNKNOWN: u8 = 4;
/// Interrupted (Ctrl-C).
pub const INTERRUPTED: u8 = 130;

/// The exit code for a failure class.
pub fn for_class(class: FailureClass) -> u8 {
    match class {
        FailureClass::Permanent => PERMANENT,
        FailureClass::GaveUp => GAVE_UP,
        FailureClass::BadInput => BAD_INPUT,
        FailureClass::OutcomeUnknown => OUTCOME_UNKNOWN,
        FailureClass::Interrupted => INTERRUPTED,
    }
}

pub(crate) fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}
