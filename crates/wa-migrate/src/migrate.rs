//! The migration itself: read the source completely (strict or lenient), write, re-read and
//! compare, publish. Generic over [`Persistence`]; folder targets are staged and renamed into
//! place (see [`staging`](crate::staging)), database targets written in one atomic commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use wa_auth::{AuthError, Persistence, PersistenceExt, Snapshot, WriteBatch};
use wa_store_compat::Flavour;

use crate::error::{MigrateError, Result};
use crate::location::{Location, OpenMode, OpenStore, dir_size, is_entry_error, open_at};
use crate::options::{FaultPoint, MigrateOptions, Stage};
use crate::staging::DirTarget;
use crate::summary::{Endpoint, Entry, Summary};

/// Keys read per `get` call: large enough to amortise a round trip, small enough for steady
/// progress output.
const READ_CHUNK: usize = 1024;

/// The source, read completely.
pub(crate) struct SourceRead {
    pub snapshot: Snapshot,
    pub skipped: Vec<Entry>,
    pub warnings: Vec<String>,
}

/// Reads the creds and every key of `source`. Strict: the first unreadable key fails, naming
/// it. Lenient: unreadable keys are left out and listed; unreadable creds still fail.
pub(crate) async fn read_source(
    source: &dyn Persistence,
    location: &str,
    options: &MigrateOptions,
) -> Result<SourceRead> {
    let failed = |source: AuthError| MigrateError::Source {
        location: location.to_owned(),
        source,
    };
    let creds = source.load_creds().await.map_err(failed)?;
    let mut warnings = Vec::new();
    if creds.is_none() {
        if !options.lenient {
            return Err(MigrateError::NoCreds {
                location: location.to_owned(),
            });
        }
        warnings.push(format!(
            "{location} holds no creds; only keys were migrated"
        ));
    }
    let mut listed = Vec::new();
    for kind in source.kinds().await.map_err(failed)? {
        let ids = source.list(&kind).await.map_err(failed)?;
        listed.push((kind, ids));
    }
    let total: usize = listed.iter().map(|(_, ids)| ids.len()).sum();
    options.stage(Stage::Read, total as u64);
    let mut keys = BTreeMap::new();
    let mut skipped = Vec::new();
    for (kind, ids) in listed {
        let mut values = BTreeMap::new();
        for chunk in ids.chunks(READ_CHUNK) {
            match source.get(&kind, chunk).await {
                Ok(found) => values.extend(found),
                Err(e) if options.lenient && is_entry_error(&e) => {
                    // Find the bad ones, one by one.
                    for id in chunk {
                        match source.get(&kind, std::slice::from_ref(id)).await {
                            Ok(found) => values.extend(found),
                            Err(e) if is_entry_error(&e) => skipped.push(Entry {
                                what: format!("{kind} {id}"),
                                reason: e.to_string(),
                            }),
                            Err(e) => return Err(failed(e)),
                        }
                    }
                }
                Err(e) => return Err(failed(e)),
            }
            options.advance(chunk.len() as u64);
        }
        if !values.is_empty() {
            keys.insert(kind, values);
        }
    }
    Ok(SourceRead {
        snapshot: Snapshot { creds, keys },
        skipped,
        warnings,
    })
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

/// The flavour to write to a compat target: the option, else the source folder's own, else
/// what the state shows (kinds only Baileys 7 writes, or a LID as our signal identity).
fn flavour_for(options: &MigrateOptions, source: Option<Flavour>, snapshot: &Snapshot) -> Flavour {
    if let Some(flavour) = options.compat_flavour.or(source) {
        return flavour;
    }
    if Flavour::BAILEYS7_KINDS
        .iter()
        .any(|k| snapshot.keys.contains_key(k))
    {
        return Flavour::Baileys7;
    }
    snapshot
        .creds
        .as_ref()
        .and_then(|c| c.signal_identities.first())
        .and_then(|identity| Flavour::of_own_identity(&identity.identifier.name))
        .unwrap_or(Flavour::Baileys7)
}

fn fill_counts(summary: &mut Summary, read: &SourceRead) {
    summary.creds_migrated = read.snapshot.creds.is_some();
    summary.keys = read
        .snapshot
        .keys
        .iter()
        .map(|(kind, ids)| (kind.to_string(), ids.len()))
        .collect();
    summary.total_keys = read.snapshot.key_count();
    summary.skipped.extend(read.skipped.iter().cloned());
    summary.warnings.extend(read.warnings.iter().cloned());
}

/// Bytes of the canonical encoding of a snapshot (what a database stores).
fn encoded_size(snapshot: &Snapshot) -> u64 {
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

/// Writes `snapshot` into `target` in one atomic commit, replacing what it held (deleting
/// keys the source does not have). Returns what it held before, to restore on failure.
async fn write_all(
    target: &dyn Persistence,
    location: &str,
    snapshot: &Snapshot,
    overwrite: bool,
) -> Result<Option<Snapshot>> {
    let failed = |source: AuthError| MigrateError::Target {
        location: location.to_owned(),
        source,
    };
    let existing = if target.is_empty().await.map_err(failed)? {
        None
    } else if overwrite {
        Some(target.load_all().await.map_err(failed)?)
    } else {
        return Err(MigrateError::DestinationNotEmpty {
            location: location.to_owned(),
        });
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

/// Re-reads `reader` and compares it with `expected`.
async fn verify(
    reader: &dyn Persistence,
    location: &str,
    expected: &Snapshot,
    options: &MigrateOptions,
) -> Result<()> {
    options.stage(Stage::Verify, expected.key_count() as u64);
    let got = reader
        .load_all()
        .await
        .map_err(|source| MigrateError::Target {
            location: location.to_owned(),
            source,
        })?;
    options.advance(expected.key_count() as u64);
    match compare(expected, &got) {
        None => Ok(()),
        Some((what, detail)) => Err(MigrateError::Verification {
            location: location.to_owned(),
            what,
            detail,
        }),
    }
}

/// Puts `target` back as `backup` (or empties its keys when there was none) after a failed
/// verification; `failure` is returned, with the restore's own failure appended if any.
async fn restore(
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

/// Migrates everything in `source` into `target`, both already open.
///
/// The source is read completely first (strict: the first unreadable key fails; lenient:
/// unreadable keys are skipped and listed). A target that is not empty is refused unless
/// `overwrite`. Everything is written in ONE commit (all or nothing on backends with
/// [`atomic_commit`](wa_auth::Capabilities::atomic_commit)), flushed, read back and compared
/// with the source; on a difference the target is put back as it was. The re-read goes
/// through `target` itself: a backend that caches what it wrote should be reopened and checked
/// again by the caller ([`migrate_between`] does so for the built-in backends).
pub async fn migrate(
    source: &dyn Persistence,
    target: &dyn Persistence,
    options: &MigrateOptions,
) -> Result<Summary> {
    let started = Instant::now();
    let source_name = source.capabilities().backend;
    let target_name = target.capabilities().backend;
    let mut summary = Summary::new(
        Endpoint::new(source_name, "source"),
        Endpoint::new(target_name, "target"),
        options.dry_run,
    );
    let read = read_source(source, "source", options).await?;
    fill_counts(&mut summary, &read);
    summary.bytes_read = encoded_size(&read.snapshot);
    if !target.capabilities().atomic_commit {
        summary.warnings.push(format!(
            "the {target_name} backend does not commit atomically: an interrupted migration may leave part of the state"
        ));
    }
    if options.dry_run {
        check_empty(target, "target", options.overwrite, &mut summary).await?;
        summary.duration_ms = elapsed_ms(started);
        return Ok(summary);
    }
    options.stage(Stage::Write, read.snapshot.key_count() as u64);
    let backup = write_all(target, "target", &read.snapshot, options.overwrite).await?;
    options.advance(read.snapshot.key_count() as u64);
    let checked = async {
        options.check_fault(FaultPoint::AfterWrite)?;
        verify(target, "target", &read.snapshot, options).await?;
        options.check_fault(FaultPoint::AfterVerify)
    }
    .await;
    if let Err(failure) = checked {
        return Err(restore(target, "target", backup.as_ref(), &read.snapshot, failure).await);
    }
    summary.replaced_existing = backup.is_some();
    summary.published = true;
    summary.bytes_written = summary.bytes_read;
    summary.duration_ms = elapsed_ms(started);
    Ok(summary)
}

async fn check_empty(
    target: &dyn Persistence,
    location: &str,
    overwrite: bool,
    summary: &mut Summary,
) -> Result<()> {
    let empty = target
        .is_empty()
        .await
        .map_err(|source| MigrateError::Target {
            location: location.to_owned(),
            source,
        })?;
    if !empty && !overwrite {
        return Err(MigrateError::DestinationNotEmpty {
            location: location.to_owned(),
        });
    }
    summary.replaced_existing = !empty;
    Ok(())
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Migrates between two locations of the built-in backends: a Baileys folder, a native
/// store, a PostgreSQL account (feature `postgres`).
///
/// The source is opened read-only and never modified. A folder target is written to a
/// staging folder beside the destination, re-opened and compared with the source, then
/// renamed into place; with `overwrite`, an existing destination is kept as a backup until the
/// swap is done and restored if it fails. A database target is written in one commit, then
/// re-read through a fresh connection and compared; on a difference its previous state is
/// restored. Either way the destination is, at every moment, absent, as before, or complete.
pub async fn migrate_between(
    from: &Location,
    to: &Location,
    options: &MigrateOptions,
) -> Result<Summary> {
    let started = Instant::now();
    check_apart(from, to)?;
    // Folder targets: lock and clean up first, so a busy or non-empty destination is reported
    // before the (possibly long) read.
    let dir_target = match to.path() {
        Some(dest) => {
            let target = DirTarget::prepare(dest, !options.dry_run)?;
            if target.existing && !options.overwrite {
                return Err(MigrateError::DestinationNotEmpty {
                    location: to.to_string(),
                });
            }
            Some(target)
        }
        None => None,
    };
    let source = open_at(from, None, OpenMode::source(options.lenient))
        .await
        .map_err(|source| MigrateError::Source {
            location: from.to_string(),
            source,
        })?;
    let result = migrate_from_open(&source, from, to, dir_target, options).await;
    let closed = source.close().await;
    let mut summary = result?;
    if let Err(e) = closed {
        summary
            .warnings
            .push(format!("closing the source {from} failed: {e}"));
    }
    summary.duration_ms = elapsed_ms(started);
    Ok(summary)
}

async fn migrate_from_open(
    source: &OpenStore,
    from: &Location,
    to: &Location,
    dir_target: Option<DirTarget>,
    options: &MigrateOptions,
) -> Result<Summary> {
    let mut source_end = Endpoint::at(from);
    let mut source_flavour = None;
    let mut unrecognised = Vec::new();
    if let Some(report) = source.folder_report() {
        source_flavour = Some(report.flavour);
        source_end.flavour = Some(report.flavour.to_string());
        unrecognised = report
            .unrecognised
            .iter()
            .map(|u| Entry {
                what: u.file.clone(),
                reason: u.reason.to_string(),
            })
            .collect();
    }
    tracing::info!(from = %from, to = %to, dry_run = options.dry_run, "migration: reading the source");
    let read = read_source(source.persistence(), &from.to_string(), options).await?;
    tracing::info!(
        keys = read.snapshot.key_count(),
        skipped = read.skipped.len(),
        creds = read.snapshot.creds.is_some(),
        "migration: source read"
    );
    let mut target_end = Endpoint::at(to);
    let flavour = flavour_for(options, source_flavour, &read.snapshot);
    if to.format() == crate::Format::Compat {
        target_end.flavour = Some(flavour.to_string());
    }
    let mut summary = Summary::new(source_end, target_end, options.dry_run);
    fill_counts(&mut summary, &read);
    // Lenient compat reads skip unreadable files inside the store; list them too.
    let skipped_files = source
        .folder_report()
        .map(|report| report.skipped)
        .unwrap_or_default();
    summary
        .skipped
        .extend(skipped_files.into_iter().map(|s| Entry {
            what: s.file,
            reason: s.reason,
        }));
    summary.unrecognised = unrecognised;
    summary.bytes_read = match from.path() {
        Some(dir) => dir_size(dir),
        None => encoded_size(&read.snapshot),
    };
    match dir_target {
        Some(target) => {
            migrate_into_folder(&target, to, &read.snapshot, flavour, options, &mut summary)
                .await?;
            Ok(summary)
        }
        None => {
            migrate_into_database(to, &read.snapshot, options, &mut summary).await?;
            Ok(summary)
        }
    }
}

/// The folder half of [`migrate_between`]: stage, verify and publish (unless a dry run),
/// recording the outcome in `summary`.
async fn migrate_into_folder(
    target: &DirTarget,
    to: &Location,
    snapshot: &Snapshot,
    flavour: Flavour,
    options: &MigrateOptions,
    summary: &mut Summary,
) -> Result<()> {
    summary.warnings.extend(target.warnings.iter().cloned());
    summary.replaced_existing = target.existing;
    if options.dry_run {
        return Ok(());
    }
    match stage_and_publish(target, to, snapshot, flavour, options).await {
        Ok((bytes, warnings)) => {
            summary.bytes_written = bytes;
            summary.warnings.extend(warnings);
            summary.published = true;
            Ok(())
        }
        Err(e) => {
            // A simulated crash leaves everything as a crash would.
            if !MigrateOptions::is_simulated_crash(&e) {
                target.discard_staging();
            }
            Err(e)
        }
    }
}

/// Writes the staging folder, verifies it through a fresh store, publishes it.
async fn stage_and_publish(
    target: &DirTarget,
    to: &Location,
    snapshot: &Snapshot,
    flavour: Flavour,
    options: &MigrateOptions,
) -> Result<(u64, Vec<String>)> {
    let staging_name = target.staging.display().to_string();
    let failed = |source: AuthError| MigrateError::Target {
        location: staging_name.clone(),
        source,
    };
    // A fresh staging folder (any leftover was removed by `prepare`).
    options.stage(Stage::Write, snapshot.key_count() as u64);
    let store = open_at(to, Some(&target.staging), OpenMode::target(Some(flavour)))
        .await
        .map_err(failed)?;
    let committed = async {
        if snapshot.creds.is_some() || snapshot.key_count() > 0 {
            store.persistence().commit(snapshot.to_batch()).await?;
        }
        store.persistence().flush().await
    }
    .await;
    let closed = store.close().await;
    committed.and(closed).map_err(failed)?;
    options.advance(snapshot.key_count() as u64);
    tracing::info!(staging = %staging_name, "migration: staging copy written; verifying");
    options.check_fault(FaultPoint::AfterWrite)?;

    // Re-read through a new store: what is on disk, not what a cache remembers.
    let reader = open_at(to, Some(&target.staging), OpenMode::source(false))
        .await
        .map_err(failed)?;
    let verified = verify(reader.persistence(), &staging_name, snapshot, options).await;
    let closed = reader.close().await;
    verified?;
    closed.map_err(failed)?;
    options.check_fault(FaultPoint::AfterVerify)?;

    let bytes = dir_size(&target.staging);
    options.stage(Stage::Publish, 0);
    let warnings = target.publish(options)?;
    tracing::info!(dest = %target.dest.display(), replaced = target.existing, "migration: published");
    Ok((bytes, warnings))
}

async fn migrate_into_database(
    to: &Location,
    snapshot: &Snapshot,
    options: &MigrateOptions,
    summary: &mut Summary,
) -> Result<()> {
    let location = to.to_string();
    let failed = |source: AuthError| MigrateError::Target {
        location: location.clone(),
        source,
    };
    if options.dry_run {
        // Looked at as a source is (a snapshot): no lease taken, no schema migrated.
        return match open_at(to, None, OpenMode::source(false)).await {
            Ok(reader) => {
                let checked =
                    check_empty(reader.persistence(), &location, options.overwrite, summary).await;
                reader.close().await.map_err(failed)?;
                checked
            }
            Err(AuthError::UnsupportedVersion { what, version, .. }) if version == "0" => {
                summary.warnings.push(format!(
                    "{what} does not exist yet; the migration would create it"
                ));
                Ok(())
            }
            Err(e) => Err(failed(e)),
        };
    }
    let writer = open_at(to, None, OpenMode::target(None))
        .await
        .map_err(failed)?;
    options.stage(Stage::Write, snapshot.key_count() as u64);
    let written = write_all(writer.persistence(), &location, snapshot, options.overwrite).await;
    let closed = writer.close().await;
    let backup = written?;
    closed.map_err(failed)?;
    options.advance(snapshot.key_count() as u64);
    tracing::info!(target = %location, "migration: written; verifying through a new connection");

    // Re-read through a new store (and new connections): what the database holds.
    let reader = open_at(to, None, OpenMode::target(None))
        .await
        .map_err(failed)?;
    let checked = async {
        options.check_fault(FaultPoint::AfterWrite)?;
        verify(reader.persistence(), &location, snapshot, options).await?;
        options.check_fault(FaultPoint::AfterVerify)
    }
    .await;
    let outcome = match checked {
        Ok(()) => Ok(()),
        Err(failure) => Err(restore(
            reader.persistence(),
            &location,
            backup.as_ref(),
            snapshot,
            failure,
        )
        .await),
    };
    let closed = reader.close().await;
    outcome?;
    closed.map_err(failed)?;
    tracing::info!(target = %location, replaced = backup.is_some(), "migration: verified");
    summary.replaced_existing = backup.is_some();
    summary.published = true;
    summary.bytes_written = encoded_size(snapshot);
    Ok(())
}

/// Source and destination must be different places, and folders must not nest (the staging
/// folder and the destination would land inside the source).
fn check_apart(from: &Location, to: &Location) -> Result<()> {
    match (from.path(), to.path()) {
        (Some(a), Some(b)) => {
            let (a, b) = (real_path(a), real_path(b));
            if a == b {
                Err(MigrateError::SameLocation {
                    location: from.to_string(),
                })
            } else if a.starts_with(&b) || b.starts_with(&a) {
                Err(MigrateError::Overlap {
                    source_dir: from.to_string(),
                    destination: to.to_string(),
                })
            } else {
                Ok(())
            }
        }
        _ if from == to => Err(MigrateError::SameLocation {
            location: from.to_string(),
        }),
        _ => Ok(()),
    }
}

/// `path` made absolute with symbolic links resolved as far as it exists.
fn real_path(path: &Path) -> std::path::PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(real) = std::fs::canonicalize(&absolute) {
        return real;
    }
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => real_path(parent).join(name),
        _ => absolute,
    }
}

/// Migrates a Baileys JSON folder (`useMultiFileAuthState`) into a native store directory.
/// See [`migrate_between`].
pub async fn migrate_compat_json_to_native(
    source_dir: impl AsRef<Path>,
    target_dir: impl AsRef<Path>,
    options: &MigrateOptions,
) -> Result<Summary> {
    migrate_between(
        &Location::Compat(source_dir.as_ref().to_path_buf()),
        &Location::Native(target_dir.as_ref().to_path_buf()),
        options,
    )
    .await
}

/// Migrates a native store directory back into a Baileys JSON folder (a rollback). The
/// Baileys flavour is [`MigrateOptions::compat_flavour`] or decided from the state. See
/// [`migrate_between`].
pub async fn migrate_native_to_compat_json(
    source_dir: impl AsRef<Path>,
    target_dir: impl AsRef<Path>,
    options: &MigrateOptions,
) -> Result<Summary> {
    migrate_between(
        &Location::Native(source_dir.as_ref().to_path_buf()),
        &Location::Compat(target_dir.as_ref().to_path_buf()),
        options,
    )
    .await
}
