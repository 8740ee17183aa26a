//! I/O fault injection for the tests of the file-based backends. Not part of the API.
//!
//! The file stores call [`check`] before the I/O operations a disk can fail (a write, an
//! `fdatasync`, a truncation, a rename, a folder sync). Tests arm a `Fault` for an operation
//! on one path; while it is armed, matching calls fail with `EIO` as a failing disk would.
//! Faults live in a process-wide table, so a test binary that kills a child process arms them
//! in the child.
//!
//! Compiled in only with the `fault-injection` feature **and** debug assertions: in any other
//! build [`check`] is a no-op that the optimiser removes and `Fault` does not exist.

// Without the feature only wa-auth itself checks (folder syncs); the other operations are
// for the file stores, which then carry their own inert hooks.
#![cfg_attr(not(feature = "fault-injection"), allow(dead_code))]

/// An I/O operation that a test can make fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Writing to a file (callers may write part of the data before failing, as a disk that
    /// fills up does).
    Write,
    /// `fdatasync`/`fsync` of a file.
    SyncFile,
    /// Truncating a file.
    Truncate,
    /// Renaming `path` (the source of the rename).
    Rename,
    /// `fsync` of a folder (making creations, renames and deletions in it durable).
    SyncDir,
}

/// Fails when a test armed a `Fault` for `op` on `path`.
#[cfg(not(all(feature = "fault-injection", debug_assertions)))]
#[inline(always)]
pub fn check(_op: Op, _path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(feature = "fault-injection", debug_assertions))]
pub use armed::{Fault, check};

#[cfg(all(feature = "fault-injection", debug_assertions))]
mod armed {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::Op;

    struct Entry {
        id: u64,
        op: Op,
        path: PathBuf,
        /// Matching calls still to let through before failing.
        skip: usize,
        /// Matching calls still to fail (`usize::MAX`: until disarmed).
        remaining: usize,
        failed: usize,
    }

    static TABLE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    fn table() -> std::sync::MutexGuard<'static, Vec<Entry>> {
        TABLE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fails when a test armed a `Fault` for `op` on `path`.
    pub fn check(op: Op, path: &Path) -> io::Result<()> {
        let mut table = table();
        let Some(entry) = table
            .iter_mut()
            .find(|e| e.op == op && e.path == path && e.remaining > 0)
        else {
            return Ok(());
        };
        if entry.skip > 0 {
            entry.skip -= 1;
            return Ok(());
        }
        entry.remaining = entry.remaining.saturating_sub(1);
        entry.failed += 1;
        Err(io::Error::other(format!(
            "injected fault: {op:?} on {} (EIO)",
            path.display()
        )))
    }

    /// An armed fault; disarmed when dropped.
    #[derive(Debug)]
    pub struct Fault {
        id: u64,
    }

    impl Fault {
        /// Makes every call of `op` on `path` fail until the fault is dropped.
        pub fn new(op: Op, path: impl AsRef<Path>) -> Self {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            table().push(Entry {
                id,
                op,
                path: path.as_ref().to_path_buf(),
                skip: 0,
                remaining: usize::MAX,
                failed: 0,
            });
            Self { id }
        }

        /// Lets the first `calls` matching calls succeed.
        pub fn skip(self, calls: usize) -> Self {
            self.edit(|e| e.skip = calls);
            self
        }

        /// Fails only `calls` matching calls, then lets the rest succeed.
        pub fn times(self, calls: usize) -> Self {
            self.edit(|e| e.remaining = calls);
            self
        }

        /// How many calls this fault has failed so far.
        pub fn failed(&self) -> usize {
            table()
                .iter()
                .find(|e| e.id == self.id)
                .map_or(0, |e| e.failed)
        }

        fn edit(&self, change: impl FnOnce(&mut Entry)) {
            if let Some(entry) = table().iter_mut().find(|e| e.id == self.id) {
                change(entry);
            }
        }
    }

    impl Drop for Fault {
        fn drop(&mut self) {
            table().retain(|e| e.id != self.id);
        }
    }
}

#[cfg(all(test, feature = "fault-injection", debug_assertions))]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn an_armed_fault_fails_matching_calls_only_while_armed() {
        let path = Path::new("/nonexistent/fault-test");
        check(Op::SyncFile, path).unwrap();
        let fault = Fault::new(Op::SyncFile, path).skip(1).times(2);
        check(Op::SyncFile, path).unwrap(); // skipped
        check(Op::SyncDir, path).unwrap(); // another operation
        check(Op::SyncFile, Path::new("/other")).unwrap(); // another path
        assert!(check(Op::SyncFile, path).is_err());
        assert!(check(Op::SyncFile, path).is_err());
        check(Op::SyncFile, path).unwrap(); // only twice
        assert_eq!(fault.failed(), 2);
        drop(fault);
        let _again = Fault::new(Op::SyncFile, path);
        assert!(check(Op::SyncFile, path).is_err());
    }
}
