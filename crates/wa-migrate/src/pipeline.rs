//! The one write path of every migration and restore: **write → verify → publish, or undo**,
//! expressed once ([`run`]) over a small [`Target`] abstraction. Three targets exist:
//!
//! - [`OpenTarget`]: a store the caller already opened ([`migrate`](crate::migrate())): one
//!   commit, re-read through the same store, the previous state committed back on failure;
//! - [`FolderTarget`]: a staging folder beside the destination, re-read through a fresh
//!   store, renamed into place; on failure the staging folder is discarded;
//! - [`DatabaseTarget`]: one commit through a new connection, re-read through another, the
//!   previous state committed back on failure.

use std::collections::BTreeMap;

use wa_auth::{AuthError, Persistence, PersistenceExt, Snapshot, WriteBatch};
use wa_store_compat::Flavour;

use crate::error::{MigrateError, Result};
use crate::location::{Location, OpenMode, dir_size, open_at};
use crate::options::{FaultPoint, MigrateOptions, Stage};
use crate::staging::DirTarget;

/// What a target reports once the new state is in place.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// The target held state that was replaced.
    pub replaced: bool,
    /// Bytes the target holds now.
    pub bytes: u64,
    /// Things worth knowing that did not stop the publication.
    pub warnings: Vec<String>,
}

/// A place a verified state is published to. [`run`] calls `write`, then (after the
/// `AfterWrite` fault point) `verify`, then (after `AfterVerify`) `publish`; on any failure,
/// `undo` once, whatever step failed.
pub(crate) trait Target {
    /// Writes `snapshot` where it is not yet visible as the destination's state (a staging
    /// folder), or where it can be taken back (a database with its previous state kept).
    async fn write(&mut self, snapshot: &Snapshot, options: &MigrateOptions) -> Result<()>;
    /// Re-reads what was written (through a fresh store where the backend allows) and
    /// compares it with `snapshot`.
    async fn verify(&mut self, snapshot: &Snapshot, options: &MigrateOptions) -> Result<()>;
    /// Makes the verified state the destination's.
    async fn publish(&mut self, options: &MigrateOptions) -> Result<Published>;
    /// Puts the destination back as it was before `write`; returns `failure`, with whatever
    /// the undo could not do added to it.
    async fn undo(&mut self, snapshot: &Snapshot, failure: MigrateError) -> MigrateError;
}

/// Write → verify → publish, or undo: the pipeline every migration and restore goes through.
pub(crate) async fn run<T: Target>(
    target: &mut T,
    snapshot: &Snapshot,
    options: &MigrateOptions,
) -> Result<Published> {
    let outcome = async {
        options.stage(Stage::Write, snapshot.key_count() as u64);
        target.write(snapshot, options).await?;
        options.advance(snapshot.key_count() as u64);
        options.check_fault(FaultPoint::AfterWrite)?;
        options.stage(Stage::Verify, snapshot.key_count() as u64);
        target.verify(snapshot, options).await?;
        options.advance(snapshot.key_count() as u64);
        options.check_fault(FaultPoint::AfterVerify)?;
        options.stage(Stage::Publish, 0);
        target.publish(options).await
    }
    .await;
    match outcome {
        Ok(published) => Ok(published),
        Err(failure) => Err(target.undo(snapshot, failure).await),
    }
}

/// The first difference between what should have been written and what was read back.
pub(crate) fn compare(expected: &Snapshot, got: &Snapshot) -> Option<(String, String)> {
    if expected.creds != got.creds {
        let detail = match (&expected.creds, &got.creds) {
            (Some(_), None) => "are missing",
            (None, Some(_)) => "are present but the source has none",
            _ => "differ",
        };
        return Some(("creds".into(), detail.into()));
    }
    let empty = BTreeMap::new();
    for (kind, want) in &expected.keys {
        let have = got.keys.get(kind).unwrap_or(&empty);
        for (id, value) in want {
            match have.get(id) {
                None => return Some((format!("{kind} {id}"), "is missing".into())),
                Some(found) if found != value => {
                    return Some((format!("{kind} {id}"), "differs".into()));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = have.keys().find(|id| !want.contains_key(*id)) {
            return Some((format!("{kind} {extra}"), "is not in the source".into()));
        }
    }
    if let Some((kind, ids)) = got
        .keys
        .iter()
        .find(|(kind, ids)| !ids.is_empty() && !expected.keys.contains_key(*kind))
    {
        let id = ids.keys().next().expect("not empty");
        return Some((format!("{kind} {id}"), "is not in the source".into()));
    }
    None
}

/// Reads everything `reader` holds and compares it with `expected`.
async fn check_read_back(
    reader: &dyn Persistence,
    location: &str,
    expected: &Snapshot,
) -> Result<()> {
    let got = reader
        .load_all()
        .await
        .map_err(|source| target_error(location, source))?;
    match compare(expected, &got) {
        None => Ok(()),
        Some((what, detail)) => Err(MigrateError::Verification {
            location: location.to_owned(),
            what,
            detail,
        }),
    }
}

fn target_error(location: &str, source: AuthError) -> MigrateError {
    MigrateError::Target {
        location: location.to_owned(),
        source,
    }
}

/// Bytes of the canonical encoding of a snapshot (what a database stores).
pub(crate) fn encoded_size(snapshot: &Snapshot) -> u64 {
    let creds = snapshot
        .creds
        .as_ref()
        .map_or(0, |c| serde_json::to_vec(c).map_or(0, |v| v.len()));
    let keys: usize = snapshot
        .keys
        .values()
        .flat_map(BTreeMap::values)
        .map(|v| wa_auth::codec::encode_binary(v).len())
        .sum();
    (creds + keys) as u64
}

/// Whether `target` is empty; a non-empty one is refused unless `overwrite`.
pub(crate) async fn check_empty(
    target: &dyn Persistence,
    location: &str,
    overwrite: bool,
) -> Result<bool> {
    let empty = target
        .is_empty()
        .await
        .map_err(|source| target_error(location, source))?;
    if !empty && !overwrite {
        return Err(MigrateError::DestinationNotEmpty {
            location: location.to_owned(),
        });
    }
    Ok(empty)
}

/// Writes `snapshot` into `target` in one atomic commit, replacing what it held (deleting
/// keys the source does not have). Returns what it held before, to restore on failure.
async fn replace_all(
    target: &dyn Persistence,
    location: &str,
    snapshot: &Snapshot,
    overwrite: bool,
) -> Result<Option<Snapshot>> {
    let failed = |source| target_error(location, source);
    let existing = if check_empty(target, location, overwrite).await? {
        None
    } else {
        Some(target.load_all().await.map_err(failed)?)
    };
    let mut batch = snapshot.to_batch();
    if let Some(old) = &existing {
        add_deletes(&mut batch, old, snapshot);
    }
    if !batch.is_empty() {
        target.commit(batch).await.map_err(failed)?;
    }
    target.flush().await.map_err(failed)?;
    Ok(existing)
}

/// Adds to `batch` the deletion of every key of `old` that `new` does not have.
fn add_deletes(batch: &mut WriteBatch, old: &Snapshot, new: &Snapshot) {
    for (kind, ids) in &old.keys {
        for id in ids.keys() {
            if !new.keys.get(kind).is_some_and(|n| n.contains_key(id)) {
                batch.delete(kind.clone(), id.clone());
            }
        }
    }
}

/// Puts `target` back as `backup` (or empties its keys when there was none) after a failure
/// that followed a write; `failure` is returned, with the restore's own failure appended.
async fn put_back(
    target: &dyn Persistence,
    location: &str,
    backup: Option<&Snapshot>,
    written: &Snapshot,
    failure: MigrateError,
) -> MigrateError {
    let empty = Snapshot::default();
    let old = backup.unwrap_or(&empty);
    let mut batch = old.to_batch();
    add_deletes(&mut batch, written, old);
    let restored = async {
        target.commit(batch).await?;
        target.flush().await
    }
    .await;
    match restored {
        Ok(()) if backup.is_none() && written.creds.is_some() => MigrateError::Usage(format!(
            "{failure}; the keys written to {location} were removed, the creds written remain \
             (this backend cannot delete creds): remove them before retrying"
        )),
        Ok(()) => failure,
        Err(e) => MigrateError::Usage(format!(
            "{failure}; restoring the previous state of {location} also failed: {e}"
        )),
    }
}

/// A store the caller opened: written, re-read and, on failure, put back through itself.
pub(crate) struct OpenTarget<'a> {
    pub store: &'a dyn Persistence,
    pub location: String,
    /// `Some(previous state)` once written.
    written: Option<Option<Snapshot>>,
}

impl<'a> OpenTarget<'a> {
    pub(crate) fn new(store: &'a dyn Persistence, location: impl Into<String>) -> Self {
        Self {
            store,
            location: location.into(),
            written: None,
        }
    }
}

impl Target for OpenTarget<'_> {
    async fn write(&mut self, snapshot: &Snapshot, options: &MigrateOptions) -> Result<()> {
        let backup = replace_all(self.store, &self.location, snapshot, options.overwrite).await?;
        self.written = Some(backup);
        Ok(())
    }

    async fn verify(&mut self, snapshot: &Snapshot, _options: &MigrateOptions) -> Result<()> {
        check_read_back(self.store, &self.location, snapshot).await
    }

    async fn publish(&mut self, _options: &MigrateOptions) -> Result<Published> {
        Ok(Published {
            replaced: matches!(self.written, Some(Some(_))),
            ..Published::default()
        })
    }

    async fn undo(&mut self, snapshot: &Snapshot, failure: MigrateError) -> MigrateError {
        match self.written.take() {
            Some(backup) => {
                put_back(
                    self.store,
                    &self.location,
                    backup.as_ref(),
                    snapshot,
                    failure,
                )
                .await
            }
            None => failure,
        }
    }
}

/// A destination folder: written to a staging folder beside it, re-read through a fresh store,
/// renamed into place.
pub(crate) struct FolderTarget<'a> {
    pub dir: &'a DirTarget,
    pub to: &'a Location,
    pub flavour: Flavour,
}

impl FolderTarget<'_> {
    fn staging_name(&self) -> String {
        self.dir.staging.display().to_string()
    }
}

impl Target for FolderTarget<'_> {
    async fn write(&mut self, snapshot: &Snapshot, _options: &MigrateOptions) -> Result<()> {
        let name = self.staging_name();
        // A fresh staging folder (any leftover was removed by `DirTarget::prepare`).
        let mode = OpenMode::target(Some(self.flavour));
        let store = open_at(self.to, Some(&self.dir.staging), mode)
            .await
            .map_err(|e| target_error(&name, e))?;
        let committed = async {
            if snapshot.creds.is_some() || snapshot.key_count() > 0 {
                store.persistence().commit(snapshot.to_batch()).await?;
            }
            store.persistence().flush().await
        }
        .await;
        let closed = store.close().await;
        committed.and(closed).map_err(|e| target_error(&name, e))?;
        tracing::info!(staging = %name, "migration: staging copy written; verifying");
        Ok(())
    }

    async fn verify(&mut self, snapshot: &Snapshot, _options: &MigrateOptions) -> Result<()> {
        let name = self.staging_name();
        // Re-read through a new store: what is on disk, not what a cache remembers.
        let reader = open_at(self.to, Some(&self.dir.staging), OpenMode::source(false))
            .await
            .map_err(|e| target_error(&name, e))?;
        let verified = check_read_back(reader.persistence(), &name, snapshot).await;
        let closed = reader.close().await;
        verified?;
        closed.map_err(|e| target_error(&name, e))
    }

    async fn publish(&mut self, options: &MigrateOptions) -> Result<Published> {
        let bytes = dir_size(&self.dir.staging);
        let warnings = self.dir.publish(options)?;
        tracing::info!(dest = %self.dir.dest.display(), replaced = self.dir.existing, "migration: published");
        Ok(Published {
            replaced: self.dir.existing,
            bytes,
            warnings,
        })
    }

    async fn undo(&mut self, _snapshot: &Snapshot, failure: MigrateError) -> MigrateError {
        // A simulated crash leaves everything as a crash would.
        if !MigrateOptions::is_simulated_crash(&failure) {
            self.dir.discard_staging();
        }
        failure
    }
}

/// A database account: written through one store (its lease), re-read through a new one, its
/// previous state committed back on failure.
pub(crate) struct DatabaseTarget<'a> {
    pub to: &'a Location,
    /// `Some(previous state)` once written.
    written: Option<Option<Snapshot>>,
}

impl<'a> DatabaseTarget<'a> {
    pub(crate) fn new(to: &'a Location) -> Self {
        Self { to, written: None }
    }

    fn name(&self) -> String {
        self.to.to_string()
    }
}

impl Target for DatabaseTarget<'_> {
    async fn write(&mut self, snapshot: &Snapshot, options: &MigrateOptions) -> Result<()> {
        let name = self.name();
        let writer = open_at(self.to, None, OpenMode::target(None))
            .await
            .map_err(|e| target_error(&name, e))?;
        let written = replace_all(writer.persistence(), &name, snapshot, options.overwrite).await;
        let closed = writer.close().await;
        self.written = Some(written?);
        closed.map_err(|e| target_error(&name, e))?;
        tracing::info!(target = %name, "migration: written; verifying through a new connection");
        Ok(())
    }

    async fn verify(&mut self, snapshot: &Snapshot, _options: &MigrateOptions) -> Result<()> {
        let name = self.name();
        // Re-read as a snapshot through new connections: what the database holds.
        let reader = open_at(self.to, None, OpenMode::source(false))
            .await
            .map_err(|e| target_error(&name, e))?;
        let verified = check_read_back(reader.persistence(), &name, snapshot).await;
        let closed = reader.close().await;
        verified?;
        closed.map_err(|e| target_error(&name, e))
    }

    async fn publish(&mut self, _options: &MigrateOptions) -> Result<Published> {
        let replaced = matches!(self.written, Some(Some(_)));
        tracing::info!(target = %self.name(), replaced, "migration: verified");
        Ok(Published {
            replaced,
            ..Published::default()
        })
    }

    async fn undo(&mut self, snapshot: &Snapshot, failure: MigrateError) -> MigrateError {
        let Some(backup) = self.written.take() else {
            return failure;
        };
        let name = self.name();
        let writer = match open_at(self.to, None, OpenMode::target(None)).await {
            Ok(writer) => writer,
            Err(e) => {
                return MigrateError::Usage(format!(
                    "{failure}; restoring the previous state of {name} also failed: {e}"
                ));
            }
        };
        let failure = put_back(
            writer.persistence(),
            &name,
            backup.as_ref(),
            snapshot,
            failure,
        )
        .await;
        if let Err(e) = writer.close().await {
            tracing::warn!(target = %name, error = %e, "closing after restoring failed");
        }
        failure
    }
}
