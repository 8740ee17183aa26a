//! [`MigrateOptions`] and the [`Progress`] callback.

use std::fmt;
use std::sync::Arc;

use wa_store_compat::Flavour;

/// A stage of a migration, for progress reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Reading and decoding the source.
    Read,
    /// Writing the staging copy (or the database).
    Write,
    /// Re-reading what was written and comparing it with the source.
    Verify,
    /// Moving the verified copy into place.
    Publish,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Read => "reading",
            Stage::Write => "writing",
            Stage::Verify => "verifying",
            Stage::Publish => "publishing",
        })
    }
}

/// Receives progress. Called from the migrating task; keep it cheap.
pub trait Progress: Send + Sync {
    /// A stage starts; `total` keys are to be handled in it (0 when not counted).
    fn stage(&self, stage: Stage, total: u64);
    /// `done` more keys of the current stage are handled.
    fn advance(&self, done: u64);
}

/// Where a test makes a migration fail on purpose (feature `fault-injection`; without it the
/// points are checked by nothing and the type is not exported).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
pub enum FaultPoint {
    /// After the target (or staging copy) is written, before it is verified.
    AfterWrite,
    /// After verification, before publishing.
    AfterVerify,
    /// Folders with `overwrite`: after the old destination was moved to its backup, before the
    /// new one is moved into place.
    AfterBackup,
    /// Folders with `overwrite`: the process stops right after the old destination was moved
    /// to its backup, as a crash would (nothing is undone; the error is returned at once).
    CrashAfterBackup,
    /// Folders: syncing the parent folder after the new state was moved into place fails.
    SyncAfterPublish,
}

/// How to migrate. The defaults are the safe choices: strict, no overwrite, really write.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct MigrateOptions {
    /// Replace a destination that already holds auth state (default `false`: refused). The old
    /// state is kept as a backup until the new one is verified and in place, and restored if
    /// anything fails.
    pub overwrite: bool,
    /// Skip unreadable keys and list them in [`Summary::skipped`](crate::Summary::skipped)
    /// instead of failing on the first (default `false`). Unreadable creds always fail.
    pub lenient: bool,
    /// Read and check everything, report what would be migrated, write nothing (default
    /// `false`).
    pub dry_run: bool,
    /// The Baileys flavour to write to a compat folder (default: the source's own, else
    /// decided from the state: Baileys 7 kinds or a LID identity mean Baileys 7).
    pub compat_flavour: Option<Flavour>,
    /// Progress callback (default none).
    pub progress: Option<Arc<dyn Progress>>,
    /// Testing only (feature `fault-injection`): fail on purpose at this point.
    #[cfg(feature = "fault-injection")]
    pub fault: Option<FaultPoint>,
}

impl fmt::Debug for MigrateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrateOptions")
            .field("overwrite", &self.overwrite)
            .field("lenient", &self.lenient)
            .field("dry_run", &self.dry_run)
            .field("compat_flavour", &self.compat_flavour)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl MigrateOptions {
    /// Sets [`overwrite`](Self::overwrite).
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }

    /// Sets [`lenient`](Self::lenient).
    pub fn lenient(mut self, yes: bool) -> Self {
        self.lenient = yes;
        self
    }

    /// Sets [`dry_run`](Self::dry_run).
    pub fn dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }

    /// Sets [`compat_flavour`](Self::compat_flavour).
    pub fn compat_flavour(mut self, flavour: Flavour) -> Self {
        self.compat_flavour = Some(flavour);
        self
    }

    /// Sets [`progress`](Self::progress).
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Testing only (feature `fault-injection`): sets the fault point.
    #[cfg(feature = "fault-injection")]
    pub fn inject_fault(mut self, point: FaultPoint) -> Self {
        self.fault = Some(point);
        self
    }

    pub(crate) fn stage(&self, stage: Stage, total: u64) {
        if let Some(progress) = &self.progress {
            progress.stage(stage, total);
        }
    }

    pub(crate) fn advance(&self, done: u64) {
        if let Some(progress) = &self.progress {
            progress.advance(done);
        }
    }

    /// Fails at `point` when a test armed it (feature `fault-injection`; else never).
    pub(crate) fn check_fault(&self, point: FaultPoint) -> crate::Result<()> {
        #[cfg(feature = "fault-injection")]
        if self.fault == Some(point) {
            return Err(crate::MigrateError::Injected(point));
        }
        let _ = point;
        Ok(())
    }

    /// Whether `error` is the simulated crash of [`FaultPoint::CrashAfterBackup`], after which
    /// nothing may be cleaned up (as after a real crash).
    pub(crate) fn is_simulated_crash(error: &crate::MigrateError) -> bool {
        #[cfg(feature = "fault-injection")]
        if matches!(
            error,
            crate::MigrateError::Injected(FaultPoint::CrashAfterBackup)
        ) {
            return true;
        }
        let _ = error;
        false
    }
}
