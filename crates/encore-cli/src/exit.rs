//! The documented exit codes (README, "Exit codes").

use encore_pipeline::{FailureClass, Report};

/// How a command ended, as its exit code tells a script.
///
/// The order is the order of severity used when several pipelines end differently: the
/// highest wins (an unknown outcome beats a transient give-up, which beats a permanent failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: the video was made, or the command did what it was asked.
    Success,
    /// 1: the request, account or job itself is wrong; running again will not help.
    Permanent,
    /// 2: transient faults outlasted the retries or a deadline; running again later may work.
    GaveUp,
    /// 3: bad input (command line included), bad configuration or a missing API key, refused
    /// before any call was made.
    BadInput,
    /// 4: a billed call may have run but its answer was lost: check the service before running
    /// again, or it may be paid for twice.
    OutcomeUnknown,
    /// 130: interrupted (Ctrl-C).
    Interrupted,
}

impl Exit {
    /// Every exit, in order of severity.
    pub const ALL: [Exit; 6] = [
        Exit::Success,
        Exit::Permanent,
        Exit::GaveUp,
        Exit::BadInput,
        Exit::OutcomeUnknown,
        Exit::Interrupted,
    ];

    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Permanent => 1,
            Exit::GaveUp => 2,
            Exit::BadInput => 3,
            Exit::OutcomeUnknown => 4,
            Exit::Interrupted => 130,
        }
    }

    /// The exit a pipeline failure of `class` earns.
    pub const fn for_class(class: FailureClass) -> Exit {
        match class {
            FailureClass::Permanent => Exit::Permanent,
            FailureClass::GaveUp => Exit::GaveUp,
            FailureClass::BadInput => Exit::BadInput,
            FailureClass::OutcomeUnknown => Exit::OutcomeUnknown,
            FailureClass::Interrupted => Exit::Interrupted,
        }
    }

    /// The exit a pipeline run earns: success only with a video.
    pub fn for_report(report: &Report) -> Exit {
        match &report.error {
            Some(error) => Exit::for_class(error.class()),
            None if report.video.is_some() => Exit::Success,
            None => Exit::Permanent,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones_and_ordered_by_severity() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 130]);
        assert!(Exit::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            Exit::for_class(FailureClass::OutcomeUnknown),
            Exit::OutcomeUnknown
        );
        assert_eq!(Exit::for_class(FailureClass::GaveUp), Exit::GaveUp);
    }
}
