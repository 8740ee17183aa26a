//! [`DirLock`]: exclusive ownership of a store folder, for file-based backends (the built-in
//! native and compat stores, and third-party ones). An OS file lock (`flock`) on a lock file in
//! the folder, which also holds the owner's pid so a second opener can say who holds it. The
//! kernel drops the lock when the process dies, so a crash never leaves a stale lock.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{AuthError, Result};

/// Held while a store is open for writing; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock file `file_name` of `dir` (created 0600 when missing), or fails with
    /// [`AuthError::AlreadyOwned`] naming the holder's pid when another handle (in this process
    /// or another) holds it.
    pub fn acquire(dir: &Path, file_name: &str) -> Result<Self> {
        let path = dir.join(file_name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| AuthError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse::<u32>().ok())
                    .map(|pid| format!("pid {pid}"));
                return Err(AuthError::AlreadyOwned {
                    resource: dir.display().to_string(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(AuthError::io(&path, e)),
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
            .map_err(|e| AuthError::io(&path, e))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_owns_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "lock").unwrap();
        match DirLock::acquire(dir.path(), "lock") {
            Err(AuthError::AlreadyOwned { holder, .. }) => {
                assert_eq!(holder, Some(format!("pid {}", std::process::id())));
            }
            other => panic!("expected AlreadyOwned, got {other:?}"),
        }
        drop(first);
        DirLock::acquire(dir.path(), "lock").unwrap();
    }
}
