//! Replacing a file atomically: the new content goes to a temp file (0600) that is synced and
//! renamed over the target, then the folder is synced. A reader (or a crash) sees the old
//! content or the new, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::fault::{self, Op};
use wa_auth::folder::sync_dir;

/// Publishes `content` (its parts written in order) at `path` atomically: `tmp` written
/// (0600), synced, renamed over `path`, folder `dir` synced. Returns the open file, positioned
/// at its end.
pub fn publish_file(dir: &Path, tmp: &Path, path: &Path, content: &[&[u8]]) -> io::Result<File> {
    let file = replace_file(tmp, path, content)?;
    sync_dir(dir)?;
    Ok(file)
}

/// [`publish_file`] without the folder sync, for callers that must treat its failure
/// differently: `tmp` written (0600), synced and renamed over `path`; `tmp` is removed when a
/// step fails.
pub fn replace_file(tmp: &Path, path: &Path, content: &[&[u8]]) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)?;
    let written = fault::check(Op::Write, tmp)
        .and_then(|()| content.iter().try_for_each(|part| file.write_all(part)))
        .and_then(|()| fault::check(Op::SyncFile, tmp))
        .and_then(|()| file.sync_data())
        .and_then(|()| fault::check(Op::Rename, tmp))
        .and_then(|()| fs::rename(tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn publishes_the_parts_in_order_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, path) = (dir.path().join("f.tmp"), dir.path().join("f"));
        fs::write(&path, b"old").unwrap();
        publish_file(dir.path(), &tmp, &path, &[b"ab", b"", b"cd"]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abcd");
        assert!(!tmp.exists());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_failed_rename_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("f.tmp");
        // Renaming a file over a non-empty folder fails.
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("x"), b"x").unwrap();
        assert!(replace_file(&tmp, &path, &[b"new"]).is_err());
        assert!(!tmp.exists());
        assert!(path.join("x").exists());
    }
}
