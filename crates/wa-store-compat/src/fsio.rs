//! Small blocking file helpers. Called only from the writer thread and tokio's blocking pool.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use wa_auth::{AuthError, Result};

/// Writes a new file (failing if it exists), 0600, synced when `fsync`.
pub(crate) fn write_new(path: &Path, bytes: &[u8], fsync: bool) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AuthError::io(path, e))?;
    file.write_all(bytes).map_err(|e| AuthError::io(path, e))?;
    if fsync {
        file.sync_all().map_err(|e| AuthError::io(path, e))?;
    }
    Ok(())
}

/// Syncs a directory, making renames and deletes in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuthError::io(dir, e))
}

/// Reads a file; `None` when it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuthError::io(path, e)),
    }
}

/// Removes a file; absent is fine. Returns whether it existed.
pub(crate) fn remove_if_exists(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(AuthError::io(path, e)),
    }
}
