//! Publishing a folder atomically: the new state is written and verified in a staging folder
//! next to the destination, then renamed into place. An existing destination (with
//! `overwrite`) is first renamed to a backup, which is restored if the swap fails, and deleted
//! only once the new state is durably in place (renamed to a trash name first, so that an
//! interrupted deletion is never mistaken for a backup). A migration lock next to the
//! destination keeps two migrations apart, and leftovers of an interrupted one are cleaned up
//! by the next. A backup is never deleted unless the destination holds the same files: when
//! a crash left one beside a destination with other content, it is kept under a new name.
//!
//! Names, for a destination `<parent>/<name>` (hidden, so Baileys never opens them):
//! `.<name>.wa-migrate-staging`, `.<name>.wa-migrate-backup`, `.<name>.wa-migrate-trash`,
//! `.<name>.wa-migrate.lock`, and `.<name>.wa-migrate-backup-<n>` for a kept backup.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use wa_auth::AuthError;
use wa_auth::dir_lock::DirLock;
use wa_store_compat::layout::FileClass;

use crate::error::{MigrateError, Result};
use crate::options::{FaultPoint, MigrateOptions};

/// The lock files of the built-in folder stores, which a live owner holds.
const OWNER_LOCKS: [&str; 2] = [
    wa_store_native::layout::LOCK_FILE,
    wa_store_compat::layout::LOCK_FILE,
];

/// A destination folder prepared for publishing; holds the migration lock until dropped.
#[derive(Debug)]
pub(crate) struct DirTarget {
    pub dest: PathBuf,
    pub staging: PathBuf,
    backup: PathBuf,
    trash: PathBuf,
    parent: PathBuf,
    name: String,
    /// The destination already holds something (to be replaced, with `overwrite`).
    pub existing: bool,
    /// What the clean-up of an earlier, interrupted migration did.
    pub warnings: Vec<String>,
    _lock: Option<DirLock>,
}

impl DirTarget {
    /// Takes the migration lock of `dest`, cleans up after an interrupted migration (only
    /// reports what it would do unless `repair`), and finds whether `dest` holds anything.
    pub(crate) fn prepare(dest: &Path, repair: bool) -> Result<Self> {
        let dest = std::path::absolute(dest).map_err(|e| MigrateError::io(dest, e))?;
        let name = dest
            .file_name()
            .ok_or_else(|| MigrateError::Usage(format!("{} has no folder name", dest.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        // A dry run creates nothing, the lock file included.
        let lock = if repair {
            Some(take_lock(&dest, &parent, &name)?)
        } else {
            None
        };
        let mut target = Self {
            staging: parent.join(format!(".{name}.wa-migrate-staging")),
            backup: parent.join(format!(".{name}.wa-migrate-backup")),
            trash: parent.join(format!(".{name}.wa-migrate-trash")),
            dest,
            parent,
            name,
            existing: false,
            warnings: Vec::new(),
            _lock: lock,
        };
        target.warnings = target.recover(repair)?;
        target.existing = match std::fs::read_dir(&target.dest) {
            Ok(mut entries) => entries.next().is_some(),
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                return Err(MigrateError::Usage(format!(
                    "{} is a file, not a folder",
                    target.dest.display()
                )));
            }
            Err(e) => return Err(MigrateError::io(&target.dest, e)),
        };
        if target.existing {
            target.check_replaceable()?;
        }
        Ok(target)
    }

    /// An existing destination is replaced as a whole: refuse when it holds files that are
    /// not auth state (notes, backups, another program's files), which would be lost.
    fn check_replaceable(&self) -> Result<()> {
        let names = wa_store_compat::layout::Names::default();
        let mut foreign = Vec::new();
        for entry in std::fs::read_dir(&self.dest).map_err(|e| MigrateError::io(&self.dest, e))? {
            let entry = entry.map_err(|e| MigrateError::io(&self.dest, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let native = wa_store_native::layout::is_store_file(&name);
            let compat = !is_dir && !matches!(names.classify(&name), FileClass::Unrecognised(_));
            if is_dir || !(native || compat) {
                foreign.push(if is_dir { format!("{name}/") } else { name });
            }
        }
        if foreign.is_empty() {
            return Ok(());
        }
        foreign.sort();
        Err(MigrateError::Usage(format!(
            "{} holds files that are not auth state ({}); --overwrite replaces the whole folder, \
             so move them elsewhere first",
            self.dest.display(),
            foreign.join(", ")
        )))
    }

    /// Finishes or undoes what an interrupted migration left: a staging folder was never
    /// published (removed); a trash folder is the replaced state of a completed migration,
    /// which it was deleting (removed); a backup is handled by [`Self::recover_backup`].
    fn recover(&self, repair: bool) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        if !repair {
            for leftover in [&self.staging, &self.backup, &self.trash]
                .into_iter()
                .filter(|p| p.exists())
            {
                warnings.push(format!(
                    "{} was left by an interrupted migration; the next migration cleans it up \
                     (a backup is restored or kept, never deleted while it may be needed)",
                    leftover.display()
                ));
            }
            return Ok(warnings);
        }
        if self.staging.exists() {
            remove_dir_all(&self.staging)?;
            warnings.push(format!(
                "removed {} left by an interrupted migration (it was never published)",
                self.staging.display()
            ));
        }
        if self.trash.exists() {
            remove_dir_all(&self.trash)?;
            warnings.push(format!(
                "removed {}: the state a completed migration to {} replaced, which it was deleting",
                self.trash.display(),
                self.dest.display()
            ));
        }
        if self.backup.exists() {
            warnings.push(self.recover_backup()?);
        }
        Ok(warnings)
    }

    /// A backup left by an interrupted swap may be the only copy of what the destination held:
    /// restored when the destination is missing or empty, removed only when the destination
    /// holds the same files, otherwise kept under a new name (the swap may have completed, or
    /// the application recreated the destination after the crash).
    fn recover_backup(&self) -> Result<String> {
        let (dest, backup) = (self.dest.display(), self.backup.display());
        if is_missing_or_empty(&self.dest)? {
            remove_empty_dir(&self.dest)?;
            rename(&self.backup, &self.dest)?;
            sync_dir(&self.parent)?;
            return Ok(format!(
                "restored {dest} from {backup} (a migration was interrupted while replacing it)"
            ));
        }
        if same_files(&self.backup, &self.dest) {
            remove_dir_all(&self.backup)?;
            return Ok(format!(
                "removed {backup}: a backup left by an interrupted migration, holding the same files as {dest}"
            ));
        }
        let kept = self.free_backup_name();
        rename(&self.backup, &kept)?;
        sync_dir(&self.parent)?;
        tracing::warn!(backup = %kept.display(), dest = %dest, "kept the backup of an interrupted migration");
        Ok(format!(
            "kept {}: what {dest} held before an interrupted migration replaced it; {dest} holds \
             other state now (that migration completed, or the folder was recreated since). \
             Remove it once you know you do not need it",
            kept.display()
        ))
    }

    /// The first `.<name>.wa-migrate-backup-<n>` not taken.
    fn free_backup_name(&self) -> PathBuf {
        (1u32..)
            .map(|n| {
                self.parent
                    .join(format!(".{}.wa-migrate-backup-{n}", self.name))
            })
            .find(|path| std::fs::symlink_metadata(path).is_err())
            .expect("a free name")
    }

    /// Removes the staging folder (after a failure; the destination is untouched).
    pub(crate) fn discard_staging(&self) {
        if let Err(e) = remove_dir_all(&self.staging) {
            tracing::warn!(staging = %self.staging.display(), error = %e, "could not remove the staging folder");
        }
    }

    /// Moves the verified staging folder into place. Returns warnings: a new state in place
    /// whose parent folder could not be synced, a replaced state that could not be removed.
    pub(crate) fn publish(&self, options: &MigrateOptions) -> Result<Vec<String>> {
        sync_dir(&self.staging)?;
        if !self.existing {
            // An empty destination folder is replaced; a missing one is created by the rename.
            remove_empty_dir(&self.dest)?;
            rename(&self.staging, &self.dest)?;
            return Ok(self.sync_published(options).into_iter().collect());
        }
        // A live owner of the destination (this library's stores lock their folder) must not
        // have its folder swapped from under it; the locks are held until the swap is done.
        let owner_locks = self.lock_owner()?;
        self.swap(options)?;
        drop(owner_locks);
        if let Some(warning) = self.sync_published(options) {
            return Ok(vec![warning]);
        }
        Ok(self.discard_backup().into_iter().collect())
    }

    /// Moves the destination to the backup and the staging folder into its place; on failure
    /// the backup is moved back.
    fn swap(&self, options: &MigrateOptions) -> Result<()> {
        rename(&self.dest, &self.backup)?;
        // Testing only: stop here as a crash would, nothing undone.
        options.check_fault(FaultPoint::CrashAfterBackup)?;
        let swapped = sync_dir(&self.parent)
            .and_then(|()| options.check_fault(FaultPoint::AfterBackup))
            .and_then(|()| rename(&self.staging, &self.dest));
        let Err(failure) = swapped else {
            return Ok(());
        };
        if let Err(e) = std::fs::rename(&self.backup, &self.dest) {
            return Err(MigrateError::io(
                &self.backup,
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} could not be replaced ({failure}), and moving its old state back \
                         failed ({e}): the old state is in {}",
                        self.dest.display(),
                        self.backup.display()
                    ),
                ),
            ));
        }
        if let Err(e) = sync_dir(&self.parent) {
            tracing::warn!(dest = %self.dest.display(), error = %e, "the old state is back in place but its folder could not be synced");
        }
        Err(failure)
    }

    /// Syncs the parent folder once the new state is in place. A failure does not undo the
    /// migration (the verified state is in place) but the rename may not survive a power
    /// loss: it is reported as a warning, and the backup (if any) is kept.
    fn sync_published(&self, options: &MigrateOptions) -> Option<String> {
        let e = options
            .check_fault(FaultPoint::SyncAfterPublish)
            .and_then(|()| sync_dir(&self.parent))
            .err()?;
        tracing::warn!(dest = %self.dest.display(), error = %e, "published, but the parent folder could not be synced");
        let dest = self.dest.display();
        Some(if self.existing {
            format!(
                "the new state is in place at {dest}, but it may not survive a power loss \
                 ({e}); the old state is kept in {} (after a power loss, migrating again \
                 restores or keeps it)",
                self.backup.display()
            )
        } else {
            format!(
                "the new state is in place at {dest}, but it may not survive a power loss \
                 ({e}); check {dest} after one"
            )
        })
    }

    /// Deletes the replaced state now that the new one is durably in place: renamed to the
    /// trash name (durably) first, so an interrupted deletion is never taken for a backup.
    fn discard_backup(&self) -> Option<String> {
        if let Err(e) = rename(&self.backup, &self.trash) {
            return Some(format!(
                "the new state is in place but the old state in {} could not be removed: {e}",
                self.backup.display()
            ));
        }
        let removed = sync_dir(&self.parent).and_then(|()| remove_dir_all(&self.trash));
        removed.err().map(|e| {
            format!(
                "the new state is in place but the old state in {} could not be removed: {e}; \
                 the next migration to {} removes it",
                self.trash.display(),
                self.dest.display()
            )
        })
    }

    /// Takes the owner locks present in the destination, failing when a store holds one.
    fn lock_owner(&self) -> Result<Vec<DirLock>> {
        let mut held = Vec::new();
        for name in OWNER_LOCKS.iter().filter(|n| self.dest.join(n).exists()) {
            let lock =
                DirLock::acquire(&self.dest, name).map_err(|source| MigrateError::Target {
                    location: self.dest.display().to_string(),
                    source,
                })?;
            held.push(lock);
        }
        Ok(held)
    }
}

/// Cleans up after an interrupted migration to `dest` (see the module docs) and returns what
/// was done. Migrations do this themselves before they start; call it to repair a destination
/// without migrating again.
pub fn recover_interrupted(dest: impl AsRef<Path>) -> Result<Vec<String>> {
    Ok(DirTarget::prepare(dest.as_ref(), true)?.warnings)
}

/// Takes the migration lock beside `dest` (creating the parent folder, durably).
fn take_lock(dest: &Path, parent: &Path, name: &str) -> Result<DirLock> {
    wa_auth::folder::create_dir_durably(parent, 0o777).map_err(|e| MigrateError::io(parent, e))?;
    let lock_name = format!(".{name}.wa-migrate.lock");
    DirLock::acquire(parent, &lock_name).map_err(|e| match e {
        AuthError::AlreadyOwned { .. } => MigrateError::Busy {
            location: dest.display().to_string(),
            lock: parent.join(&lock_name),
        },
        AuthError::Io { path, source } => MigrateError::io(path, source),
        other => MigrateError::Target {
            location: dest.display().to_string(),
            source: other,
        },
    })
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| MigrateError::io(from, e))
}

fn remove_dir_all(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(MigrateError::io(dir, e)),
    }
}

/// Makes the renames and creations in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    wa_auth::folder::sync_dir(dir).map_err(|e| MigrateError::io(dir, e))
}

/// Removes `dir` if it is an empty folder (fine if it does not exist).
fn remove_empty_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(MigrateError::io(dir, e)),
    }
}

/// Whether `dir` does not exist or is an empty folder.
fn is_missing_or_empty(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
        Err(e) => Err(MigrateError::io(dir, e)),
    }
}

/// Whether two folders hold the same regular files with the same bytes (the owner locks,
/// which hold a pid, aside). Anything else (a sub-folder, a link, an unreadable file) makes
/// them not provably the same.
fn same_files(a: &Path, b: &Path) -> bool {
    let files = |dir: &Path| -> Option<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).ok()? {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            if OWNER_LOCKS.contains(&name.as_str()) {
                continue;
            }
            if !entry.file_type().ok()?.is_file() {
                return None;
            }
            out.push((name, entry.path()));
        }
        out.sort();
        Some(out)
    };
    let (Some(left), Some(right)) = (files(a), files(b)) else {
        return false;
    };
    left.len() == right.len()
        && left.iter().zip(&right).all(|((n1, p1), (n2, p2))| {
            n1 == n2 && matches!((std::fs::read(p1), std::fs::read(p2)), (Ok(x), Ok(y)) if x == y)
        })
}
