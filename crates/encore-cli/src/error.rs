//! The one error type of the commands: what went wrong, with its causes, and the exit code it
//! earns.

use std::fmt;
use std::io::{self, Write};

use encore_pipeline::{FailureClass, PipelineError};

use crate::exit::Exit;

/// A command that did not succeed.
///
/// `main` prints it once, as `error: …` followed by one `Caused by: …` line per cause, and exits
/// with its [`Exit`] code. A broken pipe on stdout (the reader went away, as with `| head`) is
/// not a failure: it exits 0 and prints nothing.
#[derive(Debug)]
pub struct CliError {
    exit: Exit,
    error: anyhow::Error,
    /// What to do about it, printed after the causes (replaces the generic note of an unknown
    /// outcome).
    note: Option<String>,
}

impl CliError {
    /// `error`, exiting with `exit`.
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        debug_assert_ne!(exit, Exit::Success, "a failure cannot exit 0");
        CliError {
            exit,
            error: error.into(),
            note: None,
        }
    }

    /// The same error, with `note` saying what to do about it (printed as `note: …`).
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Input or configuration refused before any call was made (exit 3).
    pub fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        CliError::new(Exit::BadInput, error)
    }

    /// A failure that running again will not fix (exit 1).
    pub fn permanent(error: impl Into<anyhow::Error>) -> Self {
        CliError::new(Exit::Permanent, error)
    }

    /// Ctrl-C (exit 130).
    pub fn interrupted() -> Self {
        CliError::new(
            Exit::Interrupted,
            anyhow::anyhow!("interrupted: jobs already submitted keep running on the services"),
        )
    }

    /// Stdout could not be written.
    pub fn output(error: io::Error) -> Self {
        CliError::permanent(anyhow::Error::new(error).context("cannot write to stdout"))
    }

    /// The exit code: the class it was made with, or success for a broken pipe.
    pub fn exit(&self) -> Exit {
        if self.is_broken_pipe() {
            Exit::Success
        } else {
            self.exit
        }
    }

    /// Whether a cause is a broken pipe (the reader of our output went away).
    pub fn is_broken_pipe(&self) -> bool {
        self.error.chain().any(|cause| {
            cause
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        })
    }

    /// Writes `error: …`, a `Caused by: …` line per cause (skipping a cause whose text an
    /// earlier line already shows, as transparent wrappers repeat it), and for an unknown
    /// outcome a note on what to do.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut shown = self.error.to_string();
        writeln!(out, "error: {shown}")?;
        for cause in self.error.chain().skip(1) {
            let line = cause.to_string();
            if !shown.contains(&line) {
                writeln!(out, "  Caused by: {line}")?;
                shown.push('\n');
                shown.push_str(&line);
            }
        }
        if let Some(note) = &self.note {
            writeln!(out, "note: {note}")?;
        } else if self.exit == Exit::OutcomeUnknown {
            writeln!(
                out,
                "note: a billed job may have been created; check the service's dashboard before running again"
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

/// The exit a job store's refusal or failure earns, by its kind: a file or database that
/// cannot be used (not encore's, corrupt, newer, read-only, full, locked), a job that does not
/// exist and an invalid argument are bad input (3); an unreachable PostgreSQL may pass (2); a
/// conflict with the job's state, a lost lease and anything else are permanent (1).
pub fn store_exit(error: &encore_store::Error) -> Exit {
    use encore_store::ErrorKind;
    match error.kind() {
        ErrorKind::Incompatible
        | ErrorKind::Storage
        | ErrorKind::Busy
        | ErrorKind::WorkerLocked
        | ErrorKind::NotFound
        | ErrorKind::Invalid => Exit::BadInput,
        ErrorKind::Unavailable => Exit::GaveUp,
        _ => Exit::Permanent,
    }
}

impl From<encore_store::Error> for CliError {
    fn from(error: encore_store::Error) -> Self {
        CliError::new(store_exit(&error), error)
    }
}

impl From<PipelineError> for CliError {
    fn from(error: PipelineError) -> Self {
        let class: FailureClass = error.class();
        CliError::new(Exit::for_class(class), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] io::Error);

    fn printed(error: &CliError) -> String {
        let mut out = Vec::new();
        error.write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prints_the_error_then_each_new_cause_once() {
        let inner = io::Error::new(io::ErrorKind::AddrInUse, "address in use");
        let error = CliError::permanent(
            anyhow::Error::new(inner).context("could not listen on 127.0.0.1:8080"),
        );
        assert_eq!(
            printed(&error),
            "error: could not listen on 127.0.0.1:8080\n  Caused by: address in use\n"
        );
        // A cause whose text the error already shows is not repeated.
        let error = CliError::permanent(Repeats(io::Error::other("disk full")));
        assert_eq!(printed(&error), "error: outer: disk full\n");
        assert_eq!(error.exit(), Exit::Permanent);
    }

    #[test]
    fn an_unknown_outcome_says_what_to_check() {
        let error = CliError::new(
            Exit::OutcomeUnknown,
            anyhow::anyhow!("suno.generate: reset"),
        );
        assert!(printed(&error).contains("note: a billed job may have been created"));
        assert!(!printed(&CliError::interrupted()).contains("note:"));
    }

    #[test]
    fn a_note_replaces_the_generic_one() {
        let error = CliError::new(Exit::OutcomeUnknown, anyhow::anyhow!("song.submit: lost"))
            .with_note("resolve it: `encore jobs resolve J --adopt TASK_ID`");
        let text = printed(&error);
        assert!(
            text.ends_with("note: resolve it: `encore jobs resolve J --adopt TASK_ID`\n"),
            "{text}"
        );
        assert!(!text.contains("dashboard"), "{text}");
    }

    #[test]
    fn a_broken_pipe_anywhere_in_the_chain_exits_0() {
        let error = CliError::output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(error.is_broken_pipe());
        assert_eq!(error.exit(), Exit::Success);
        let error = CliError::output(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!error.is_broken_pipe());
        assert_eq!(error.exit(), Exit::Permanent);
    }

    #[test]
    fn pipeline_failures_keep_their_class() {
        let input = encore_pipeline::InputError::new("name", "must not be empty".to_owned());
        let error = CliError::from(PipelineError::from(input));
        assert_eq!(error.exit(), Exit::BadInput);
        assert_eq!(error.to_string(), "invalid input: name must not be empty");
    }
}
