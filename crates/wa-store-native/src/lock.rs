//! Exclusive ownership of a store directory: an OS file lock (`flock`) on its `lock` file,
//! which also holds the owner's pid so a second opener can say who holds it.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use wa_auth::{AuthError, Result};

/// Name of the lock file inside a store directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// Held while a store is open for writing; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir`, or fails with [`AuthError::AlreadyOwned`] naming the holder's
    /// pid when another handle (in this process or another) holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
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
