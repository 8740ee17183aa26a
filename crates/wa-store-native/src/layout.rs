//! The store directory's layout: the only place that spells the store's file names.

use std::path::{Path, PathBuf};

/// The snapshot: the whole state at one batch.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// The log: the batches committed since the snapshot.
pub const LOG_FILE: &str = "log";
/// The lock file held while the store is open for writing (with the owner's pid).
pub const LOCK_FILE: &str = "lock";
/// The snapshot being written by a compaction.
const SNAPSHOT_TMP_FILE: &str = "snapshot.tmp";
/// The log being rewritten after a compaction.
const LOG_TMP_FILE: &str = "log.tmp";

/// Whether `name` is one of the files the store writes in its directory (its data, its lock,
/// its temp files).
pub fn is_store_file(name: &str) -> bool {
    matches!(
        name,
        LOCK_FILE | SNAPSHOT_FILE | LOG_FILE | SNAPSHOT_TMP_FILE | LOG_TMP_FILE
    )
}

/// Whether a store directory may hold `name`: the store's files and hidden files. Anything
/// else means the directory is something else (a Baileys folder, say) and must not be turned
/// into a store.
pub fn is_own_file(name: &str) -> bool {
    is_store_file(name) || name.starts_with('.')
}

/// Whether directory `dir` holds a native store (its snapshot or its log).
pub fn holds_store(dir: &Path) -> bool {
    dir.join(SNAPSHOT_FILE).exists() || dir.join(LOG_FILE).exists()
}

/// The files of a store directory.
#[derive(Debug)]
pub(crate) struct Paths {
    pub dir: PathBuf,
    pub snapshot: PathBuf,
    pub snapshot_tmp: PathBuf,
    pub log: PathBuf,
    pub log_tmp: PathBuf,
}

impl Paths {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            snapshot: dir.join(SNAPSHOT_FILE),
            snapshot_tmp: dir.join(SNAPSHOT_TMP_FILE),
            log: dir.join(LOG_FILE),
            log_tmp: dir.join(LOG_TMP_FILE),
            dir,
        }
    }
}
