//! Who holds a job while `encore run` runs it, and whether that process still exists.
//!
//! `encore run` claims its job under the name `cli@<host> pid <pid>`. A run killed with
//! SIGKILL (or a power cut) leaves its lease live until it expires; `encore run --resume` does
//! not wait for that when the holder is an `encore run` of this host whose process no longer
//! exists: it takes the job over at once, through the store's conditional
//! [`Store::take_over`](encore_store::Store::take_over). A holder on another host, or whose
//! liveness cannot be checked, is waited for until its lease expires (`store.lease_ttl`).
//!
//! A wrong "gone" (a reused pid makes a dead holder look alive, which only means waiting; a
//! holder in another pid namespace with the same host name could look gone while alive) cannot
//! pay twice: taking over bumps the job's fencing number, so the old holder's next write — the
//! `in_flight` record that comes before any billed request included — is refused, and a billed
//! step it had in flight becomes `unknown`, never resent.

use std::fmt;

/// An `encore run` process that holds (or held) a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    host: String,
    pid: u32,
}

/// What can be said about a lease holder's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// An `encore run` of this host whose process no longer exists.
    Gone,
    /// An `encore run` of this host whose process exists.
    Alive,
    /// Not an `encore run` of this host (another host, a server), or not checkable here.
    Unknown,
}

impl Runner {
    /// This process.
    pub fn this_process() -> Runner {
        Runner {
            host: host_name(),
            pid: std::process::id(),
        }
    }

    /// The lease owner name: `cli@<host> pid <pid>`.
    pub fn owner(&self) -> String {
        self.to_string()
    }

    /// The runner named by a lease owner, when it is an `encore run`'s name.
    pub fn parse(owner: &str) -> Option<Runner> {
        let (host, pid) = owner.strip_prefix("cli@")?.rsplit_once(" pid ")?;
        if host.is_empty() {
            return None;
        }
        Some(Runner {
            host: host.to_owned(),
            pid: pid.parse().ok()?,
        })
    }

    /// Whether the process that holds a lease under `owner` still exists.
    pub fn liveness(owner: &str) -> Liveness {
        match Runner::parse(owner) {
            Some(runner) if runner.host == host_name() => process_liveness(runner.pid),
            _ => Liveness::Unknown,
        }
    }
}

impl fmt::Display for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cli@{} pid {}", self.host, self.pid)
    }
}

#[cfg(unix)]
pub(crate) fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

#[cfg(not(unix))]
pub(crate) fn host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "localhost".to_owned())
}

/// `kill(pid, 0)`: no such process (`ESRCH`) is gone; a process we may not signal (`EPERM`)
/// exists.
#[cfg(unix)]
fn process_liveness(pid: u32) -> Liveness {
    use rustix::io::Errno;
    use rustix::process::{Pid, test_kill_process};
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Liveness::Unknown;
    };
    match test_kill_process(pid) {
        Ok(()) | Err(Errno::PERM) => Liveness::Alive,
        Err(Errno::SRCH) => Liveness::Gone,
        Err(_) => Liveness::Unknown,
    }
}

#[cfg(not(unix))]
fn process_liveness(_pid: u32) -> Liveness {
    Liveness::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_names_round_trip() {
        let me = Runner::this_process();
        assert_eq!(Runner::parse(&me.owner()), Some(me.clone()));
        assert!(me.owner().starts_with("cli@"));
        assert_eq!(
            Runner::parse("cli@build-7 pid 4242"),
            Some(Runner {
                host: "build-7".into(),
                pid: 4242
            })
        );
        for other in [
            "worker-1",
            "serve@host pid 3",
            "cli@ pid 3",
            "cli@host pid x",
            "cli@host",
        ] {
            assert_eq!(Runner::parse(other), None, "{other}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_gone() {
        assert_eq!(
            Runner::liveness(&Runner::this_process().owner()),
            Liveness::Alive
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Runner {
            host: host_name(),
            pid,
        };
        assert_eq!(Runner::liveness(&gone.owner()), Liveness::Gone);
        let elsewhere = Runner {
            host: format!("{}-elsewhere", host_name()),
            pid,
        };
        assert_eq!(Runner::liveness(&elsewhere.owner()), Liveness::Unknown);
        assert_eq!(Runner::liveness("worker-1"), Liveness::Unknown);
    }
}
