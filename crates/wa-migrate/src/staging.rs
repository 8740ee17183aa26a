//! Publishing a folder atomically: the new state is written and verified in a staging folder
//! next to the destination, then renamed into place. An existing destination (with
//! `overwrite`) is first renamed to a backup, which is restored if the swap fails and removed
//! only once the new state is in place. A migration lock next to the destination keeps two
//! migrations apart, and leftovers of an interrupted one are cleaned up by the next.
//!
//! Names, for a destination `<parent>/<name>` (hidden, so Baileys never opens them):
//! `.<name>.wa-migrate-staging`, `.<name>.wa-migrate-backup`, `.<name>.wa-migrate.lock`.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use wa_auth::AuthError;
use wa_auth::dir_lock::DirLock;
use wa_store_compat::layout::FileClass;

use crate::error::{MigrateError, Result};
use crate::options::{FaultPoint, MigrateOptions};

/// The lock files of the built-in folder stores, which a live owner holds.
const OWNER_LOCKS: [&str; 2] = ["lock", ".wa-store-compat.lock"];

/// A destination folder prepared for publishing; holds the migration lock until dropped.
#[derive(Debug)]
pub(crate) struct DirTarget {
    pub dest: PathBuf,
    pub staging: PathBuf,
    backup: PathBuf,
    parent: PathBuf,
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
            dest,
            parent,
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
            let native = matches!(
                name.as_str(),
                "snapshot" | "log" | "lock" | "snapshot.tmp" | "log.tmp"
            );
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
    /// published (removed); a backup without a destination is the old state of an
    /// interrupted swap (restored); a backup beside a destination is the old state of a
    /// completed swap, which that migration was removing (removed).
    fn recover(&self, repair: bool) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        if !repair {
            for leftover in [&self.staging, &self.backup]
                .into_iter()
                .filter(|p| p.exists())
            {
                warnings.push(format!(
                    "{} was left by an interrupted migration; the next migration cleans it up",
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
        if self.backup.exists() {
            if self.dest.exists() {
                // Both exist only after the swap: the migration completed and was removing
                // the state it replaced (possibly half-removed by now).
                remove_dir_all(&self.backup)?;
                warnings.push(format!(
                    "removed {}: the state an interrupted but completed migration to {} replaced",
                    self.backup.display(),
                    self.dest.display()
                ));
            } else {
                rename(&self.backup, &self.dest)?;
                sync_dir(&self.parent)?;
                warnings.push(format!(
                    "restored {} from {} (a migration was interrupted while replacing it)",
                    self.dest.display(),
                    self.backup.display()
                ));
            }
        }
        Ok(warnings)
    }

    /// Removes the staging folder (after a failure; the destination is untouched).
    pub(crate) fn discard_staging(&self) {
        if let Err(e) = remove_dir_all(&self.staging) {
            tracing::warn!(staging = %self.staging.display(), error = %e, "could not remove the staging folder");
        }
    }

    /// Moves the verified staging folder into place. Returns warnings (a backup that could not
    /// be removed).
    pub(crate) fn publish(&self, options: &MigrateOptions) -> Result<Vec<String>> {
        sync_dir(&self.staging)?;
        if !self.existing {
            // An empty destination folder is replaced; a missing one is created by the rename.
            match std::fs::remove_dir(&self.dest) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(MigrateError::io(&self.dest, e)),
            }
            rename(&self.staging, &self.dest)?;
            sync_dir(&self.parent)?;
            return Ok(Vec::new());
        }
        // A live owner of the destination (this library's stores lock their folder) must not
        // have its folder swapped from under it; the locks are held until the swap is done.
        let _owner_locks = self.lock_owner()?;
        rename(&self.dest, &self.backup)?;
        sync_dir(&self.parent)?;
        let swapped = options
            .check_fault(FaultPoint::AfterBackup)
            .and_then(|()| rename(&self.staging, &self.dest));
        if let Err(e) = swapped {
            rename(&self.backup, &self.dest)?;
            sync_dir(&self.parent)?;
            return Err(e);
        }
        sync_dir(&self.parent)?;
        drop(_owner_locks);
        let mut warnings = Vec::new();
        if let Err(e) = remove_dir_all(&self.backup) {
            warnings.push(format!(
                "the new state is in place but the backup {} could not be removed: {e}",
                self.backup.display()
            ));
        }
        Ok(warnings)
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

/// Takes the migration lock beside `dest` (creating the parent folder).
fn take_lock(dest: &Path, parent: &Path, name: &str) -> Result<DirLock> {
    std::fs::create_dir_all(parent).map_err(|e| MigrateError::io(parent, e))?;
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
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MigrateError::io(dir, e))
}
