//! Small blocking file helpers. Called only from a commit group's leader, from close and from
//! tokio's blocking pool.

use std::fs::{File, FileType, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};
use wa_auth::{AuthError, Result};

use crate::codec::CompatError;
use crate::fault::{self, FaultPoint};

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

/// Syncs a directory, making renames and deletes in it durable (the shared
/// [`wa_store_fs::sync_dir`], with the error naming the folder).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    wa_store_fs::sync_dir(dir).map_err(|e| wa_store_fs::io_error(dir, e))
}

/// What a directory entry that is not a regular file is, for messages.
pub(crate) fn entry_type(kind: FileType) -> &'static str {
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// The error for `path`, which is `what` (a symbolic link, ...) where a file belongs.
pub(crate) fn not_a_file(path: &Path, what: &str) -> AuthError {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    AuthError::corrupt(
        crate::layout::corrupt_item(&name),
        path.display().to_string(),
        CompatError::NotAFile {
            entries: format!("{name} is {what}"),
        },
    )
}

/// Reads the regular file `path`: `None` when it does not exist; an error when it is anything
/// else (a symbolic link is never followed) or cannot be read.
pub(crate) fn read_regular(path: &Path) -> Result<Option<Vec<u8>>> {
    // Looked at without following links, then opened; if a rename replaced it in between
    // (a commit of the owner), look again.
    for _ in 0..3 {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuthError::io(path, e)),
        };
        if !meta.file_type().is_file() {
            return Err(not_a_file(path, entry_type(meta.file_type())));
        }
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuthError::io(path, e)),
        };
        let opened = file.metadata().map_err(|e| AuthError::io(path, e))?;
        if opened.ino() != meta.ino() || opened.dev() != meta.dev() {
            continue;
        }
        let mut bytes = Vec::with_capacity(opened.len() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| AuthError::io(path, e))?;
        return Ok(Some(bytes));
    }
    Err(AuthError::ChangedWhileReading {
        resource: path.display().to_string(),
        reason: "it was replaced again and again while being opened".into(),
    })
}

/// Removes a file; absent is fine. Returns whether it existed.
pub(crate) fn remove_if_exists(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(AuthError::io(path, e)),
    }
}

/// The SHA-256 of `bytes`, in lowercase hex: how the journal names a file's content.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Syncs the parent of `path` (a folder of the store `dir`).
pub(crate) fn sync_parent(dir: &Path, path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fault::check(dir, FaultPoint::SyncParent).map_err(|e| AuthError::io(parent, e))?;
    sync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn links_and_directories_are_never_read_as_files() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(read_regular(&file).unwrap(), Some(b"x".to_vec()));
        assert_eq!(read_regular(&tmp.path().join("none")).unwrap(), None);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        for path in [link, tmp.path().to_path_buf()] {
            let err = read_regular(&path).unwrap_err();
            assert!(matches!(err, AuthError::Corrupt { .. }), "{err}");
        }
    }
}
