//! Durable folder operations for file-based backends: a file system makes the creation, rename
//! or removal of an entry durable only once the folder holding it is synced.

use std::fs::{DirBuilder, File};
use std::io::{self, ErrorKind};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::fault::{self, Op};

/// Syncs the folder `dir`, making the creations, renames and removals of entries in it
/// durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fault::check(Op::SyncDir, dir)?;
    File::open(dir)?.sync_all()
}

/// Creates the folder `path`, and any missing parent folder, with `mode` (less the umask), and
/// syncs the folder holding each one it created, so that they survive a power loss. Returns
/// whether `path` was created (`false`: it existed). A path that exists but is not a folder is
/// an error.
pub fn create_dir_durably(path: &Path, mode: u32) -> io::Result<bool> {
    create_dir_durably_with(path, mode, sync_dir)
}

/// [`create_dir_durably`] with the caller's step for making each new folder's entry durable:
/// `sync_parent` is called with the folder holding each one created, outermost first (a store
/// that can skip syncs, or checks its own fault hooks first, passes its own; the plain step is
/// [`sync_dir`]).
pub fn create_dir_durably_with(
    path: &Path,
    mode: u32,
    mut sync_parent: impl FnMut(&Path) -> io::Result<()>,
) -> io::Result<bool> {
    let missing = missing_folders(path)?;
    if missing.is_empty() {
        return Ok(false);
    }
    DirBuilder::new().recursive(true).mode(mode).create(path)?;
    // Outermost first: each new folder's entry is durable before anything is put in it.
    for created in missing.iter().rev() {
        sync_parent(parent_of(created))?;
    }
    Ok(true)
}

/// `path` and those of its ancestors that do not exist, innermost first.
fn missing_folders(path: &Path) -> io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut current = path;
    loop {
        match std::fs::metadata(current) {
            Ok(meta) if meta.is_dir() => return Ok(missing),
            Ok(_) => {
                return Err(io::Error::new(
                    ErrorKind::NotADirectory,
                    format!("{} exists and is not a folder", current.display()),
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => missing.push(current.to_path_buf()),
            Err(e) => return Err(e),
        }
        match current.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => current = parent,
            _ => return Ok(missing),
        }
    }
}

/// The folder holding `path` (`.` for a bare relative name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_missing_parents_with_the_mode_and_reports_an_existing_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a").join("b");
        assert!(create_dir_durably(&path, 0o700).unwrap());
        for dir in [tmp.path().join("a"), path.clone()] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        assert!(!create_dir_durably(&path, 0o700).unwrap());
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(create_dir_durably(&file.join("sub"), 0o700).is_err());
    }

    #[test]
    fn the_callers_step_runs_for_each_created_folders_parent_outermost_first() {
        let tmp = tempfile::tempdir().unwrap();
        let inner = tmp.path().join("a").join("b");
        let mut synced = Vec::new();
        let created = create_dir_durably_with(&inner, 0o700, |parent| {
            synced.push(parent.to_path_buf());
            Ok(())
        })
        .unwrap();
        assert!(created);
        assert_eq!(synced, vec![tmp.path().to_path_buf(), tmp.path().join("a")]);
        // A failing step fails the creation (the folders stay: a later open syncs again).
        let other = tmp.path().join("c");
        let err = create_dir_durably_with(&other, 0o700, |_| Err(io::Error::other("no")));
        assert!(err.is_err());
        assert!(other.is_dir());
    }

    #[cfg(all(feature = "fault-injection", debug_assertions))]
    #[test]
    fn the_folder_holding_each_created_one_is_synced() {
        let tmp = tempfile::tempdir().unwrap();
        let outer = tmp.path().join("outer");
        let inner = outer.join("inner");
        // A failed sync of either parent fails the creation: both are synced.
        for parent in [tmp.path(), outer.as_path()] {
            let _ = std::fs::remove_dir_all(&outer);
            let fault = fault::Fault::new(Op::SyncDir, parent);
            assert!(create_dir_durably(&inner, 0o700).is_err());
            assert_eq!(fault.failed(), 1, "{}", parent.display());
        }
    }
}
