//! The single-process rule for SQLite: one `encore serve` per database file.
//!
//! SQLite serializes writers safely, but a serving process assumes it is the only worker (its
//! quotas, its lease renewals, its callbacks); a second one on the same file is refused with a
//! clear error instead. The lock is an OS advisory lock (`flock`) on a sibling file,
//! `<database>.serve-lock`, holding the server's pid: the OS releases it when the process
//! exits, however it exits (kill -9 included), so it never goes stale. `encore run` and readers
//! (`encore jobs list`) do not take it. PostgreSQL needs none: any number of workers may serve
//! one database.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::target::Target;
use crate::{Error, ErrorKind, Store};

/// The worker lock of a store, held until dropped (see [`Store::lock_worker`]).
pub struct WorkerLock {
    /// The locked file (SQLite), or nothing (PostgreSQL needs no lock).
    held: Option<(File, PathBuf)>,
}

impl WorkerLock {
    /// The lock file, for an SQLite store.
    pub fn path(&self) -> Option<&Path> {
        self.held.as_ref().map(|(_, path)| path.as_path())
    }
}

impl fmt::Debug for WorkerLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerLock")
            .field("path", &self.path())
            .finish()
    }
}

/// The lock file beside an SQLite database.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".serve-lock");
    PathBuf::from(name)
}

impl Store {
    /// Takes the exclusive worker lock that `encore serve` holds while it serves an SQLite
    /// file; on PostgreSQL it takes nothing and always succeeds. Released when the returned
    /// [`WorkerLock`] is dropped or the process exits.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WorkerLocked`] when another process serves the file (naming its pid);
    /// [`ErrorKind::Storage`] when the lock file cannot be created or locked.
    pub fn lock_worker(&self) -> Result<WorkerLock, Error> {
        let Target::Sqlite(database) = self.target() else {
            return Ok(WorkerLock { held: None });
        };
        let path = lock_path(database);
        let storage = |e: std::io::Error| {
            Error::new(
                ErrorKind::Storage,
                format!("taking the worker lock {}", path.display()),
            )
            .with_source(e)
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(storage)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(storage)?;
                file.rewind().map_err(storage)?;
                writeln!(file, "{}", std::process::id()).map_err(storage)?;
                tracing::debug!(lock = %path.display(), "worker lock taken");
                Ok(WorkerLock {
                    held: Some((file, path)),
                })
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // The holder's pid, if it was written yet; the refusal stands without it.
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                Err(Error::new(
                    ErrorKind::WorkerLocked,
                    format!(
                        "another encore serve{holder} is serving {}: one serving process per SQLite file (lock {}); use PostgreSQL for several workers",
                        database.display(),
                        path.display()
                    ),
                ))
            }
            Err(TryLockError::Error(e)) => Err(storage(e)),
        }
    }
}
