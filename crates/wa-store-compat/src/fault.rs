//! I/O fault injection for the crate's own tests (feature `fault-injection`, off by default).
//!
//! A test arms a [`FaultPoint`] for a folder; the next time the store reaches that point in
//! that folder, the operation fails with an injected `EIO` instead of being carried out. The
//! hooks exist only in builds with debug assertions and the feature: in any other build
//! the store's check is an empty inline function, so release builds carry none of this.

use std::path::Path;

/// Where a fault can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultPoint {
    /// Writing one of a commit's temp files (before the commit point).
    TempWrite,
    /// Renaming the journal into place (the commit point itself: it does not happen).
    JournalRename,
    /// Syncing the folder right after the journal was renamed into place (after the commit
    /// point).
    SyncAfterJournal,
    /// The `n`-th (0-based) rename or delete that applies a commit (after the commit point).
    ApplyOp(usize),
    /// Syncing the parent of a folder the store has just created.
    SyncParent,
}

#[cfg(all(feature = "fault-injection", debug_assertions))]
mod active {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use super::FaultPoint;

    static ARMED: Mutex<Vec<(PathBuf, FaultPoint)>> = Mutex::new(Vec::new());

    /// Makes the next occurrence of `point` in the folder `dir` fail (once).
    pub fn arm(dir: &Path, point: FaultPoint) {
        let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
        armed.push((dir.to_path_buf(), point));
    }

    pub(crate) fn check(dir: &Path, point: FaultPoint) -> std::io::Result<()> {
        let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
        match armed.iter().position(|(d, p)| d == dir && *p == point) {
            Some(i) => {
                armed.remove(i);
                Err(std::io::Error::other(format!(
                    "injected fault at {point:?} (EIO)"
                )))
            }
            None => Ok(()),
        }
    }
}

#[cfg(all(feature = "fault-injection", debug_assertions))]
pub use active::arm;

/// Fails when `point` is armed for `dir` (see the module docs).
#[cfg(all(feature = "fault-injection", debug_assertions))]
pub(crate) fn check(dir: &Path, point: FaultPoint) -> std::io::Result<()> {
    active::check(dir, point)
}

/// Never fails: fault injection is compiled out of this build.
#[cfg(not(all(feature = "fault-injection", debug_assertions)))]
#[inline(always)]
pub(crate) fn check(_dir: &Path, _point: FaultPoint) -> std::io::Result<()> {
    Ok(())
}
