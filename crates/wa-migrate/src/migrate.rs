//! The migration itself: read the source completely (strict or lenient), write, re-read and
//! compare, publish. Generic over [`Persistence`]; folder targets are staged and renamed into
//! place (see [`staging`](crate::staging)), database targets written in one atomic commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use wa_auth::{AuthError, Persistence, Snapshot};
use wa_store_compat::Flavour;

use crate::error::{MigrateError, Result};
use crate::location::{Location, OpenMode, OpenStore, dir_size, is_entry_error, open_at};
use crate::options::{MigrateOptions, Stage};
use crate::pipeline::{self, DatabaseTarget, FolderTarget, OpenTarget, Published};
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
    /// The Baileys flavour of a compat source.
    pub flavour: Option<Flavour>,
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
        flavour: None,
    })
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
    summary.bytes_read = pipeline::encoded_size(&read.snapshot);
    if !target.capabilities().atomic_commit {
        summary.warnings.push(format!(
            "the {target_name} backend does not commit atomically: an interrupted migration may leave part of the state"
        ));
    }
    if options.dry_run {
        summary.replaced_existing =
            !pipeline::check_empty(target, "target", options.overwrite).await?;
    } else {
        let mut open = OpenTarget::new(target, "target");
        let published = pipeline::run(&mut open, &read.snapshot, options).await?;
        record(&mut summary, published);
        summary.bytes_written = summary.bytes_read;
    }
    summary.duration_ms = elapsed_ms(started);
    Ok(summary)
}

/// Records a publication in `summary`.
fn record(summary: &mut Summary, published: Published) {
    summary.replaced_existing = published.replaced;
    summary.published = true;
    summary.bytes_written = published.bytes;
    summary.warnings.extend(published.warnings);
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
    let dir_target = prepare_folder(to, options)?;
    let (read, mut summary) = read_source_at(from, options).await?;
    let flavour = flavour_for(options, read.flavour, &read.snapshot);
    write_prepared(
        &read.snapshot,
        to,
        dir_target,
        flavour,
        options,
        &mut summary,
    )
    .await?;
    summary.duration_ms = elapsed_ms(started);
    Ok(summary)
}

/// Writes `snapshot` (e.g. decoded from a backup) to `to` through the same staged, verified
/// path as [`migrate_between`]: a folder is staged, re-read and renamed into place, a
/// database written in one commit and re-read; a non-empty destination is refused unless
/// [`overwrite`](MigrateOptions::overwrite). `source` names where the state came from in the
/// summary.
pub async fn write_snapshot(
    snapshot: &Snapshot,
    source: Endpoint,
    to: &Location,
    options: &MigrateOptions,
) -> Result<Summary> {
    let started = Instant::now();
    let dir_target = prepare_folder(to, options)?;
    let mut summary = Summary::new(source, Endpoint::at(to), options.dry_run);
    let read = SourceRead {
        snapshot: snapshot.clone(),
        skipped: Vec::new(),
        warnings: Vec::new(),
        flavour: None,
    };
    fill_counts(&mut summary, &read);
    summary.bytes_read = pipeline::encoded_size(snapshot);
    let flavour = flavour_for(options, None, snapshot);
    write_prepared(snapshot, to, dir_target, flavour, options, &mut summary).await?;
    summary.duration_ms = elapsed_ms(started);
    Ok(summary)
}

/// Reads the whole state at `from` (opened read-only, never modified, no lock or lease taken)
/// as one consistent snapshot: a native store's view of a prefix of its commits, a PostgreSQL
/// account's snapshot transaction, a Baileys folder whose files did not change while it was
/// read ([`MigrateError::ChangedWhileReading`] otherwise: retry). Strict unless
/// [`lenient`](MigrateOptions::lenient). What backups read.
pub async fn read_location(
    from: &Location,
    options: &MigrateOptions,
) -> Result<(Snapshot, Summary)> {
    read_location_once(from, options)
        .await
        .map_err(|e| match e {
            // The store's own detection of a concurrent writer, said once for every backend.
            MigrateError::Source {
                source: AuthError::ChangedWhileReading { .. },
                ..
            } => MigrateError::ChangedWhileReading {
                location: from.to_string(),
            },
            other => other,
        })
}

/// Opens the source at `from` read-only, reads it whole and closes it; a failed close is a
/// warning in the summary (the read is complete by then).
async fn read_source_at(
    from: &Location,
    options: &MigrateOptions,
) -> Result<(SourceRead, Summary)> {
    let source = open_at(from, None, OpenMode::source(options.lenient))
        .await
        .map_err(|source| MigrateError::Source {
            location: from.to_string(),
            source,
        })?;
    let read = read_open(&source, from, options).await;
    let closed = source.close().await;
    let (read, mut summary) = read?;
    if let Err(e) = closed {
        summary
            .warnings
            .push(format!("closing the source {from} failed: {e}"));
    }
    Ok((read, summary))
}

async fn read_location_once(
    from: &Location,
    options: &MigrateOptions,
) -> Result<(Snapshot, Summary)> {
    let fingerprint = from.path().map(folder_fingerprint).transpose()?;
    let (read, summary) = read_source_at(from, options).await?;
    if let (Some(before), Some(dir)) = (fingerprint, from.path())
        && before != folder_fingerprint(dir)?
    {
        return Err(MigrateError::ChangedWhileReading {
            location: from.to_string(),
        });
    }
    Ok((read.snapshot, summary))
}

/// Names, sizes and modification times of the files of `dir`: equal before and after a read
/// means no commit landed in between.
fn folder_fingerprint(
    dir: &Path,
) -> Result<Vec<(std::ffi::OsString, u64, Option<std::time::SystemTime>)>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| MigrateError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| MigrateError::io(dir, e))?;
        // A file removed between listing and stat is a change too: record it as absent.
        let meta = entry.metadata().ok();
        files.push((
            entry.file_name(),
            meta.as_ref().map_or(u64::MAX, |m| m.len()),
            meta.and_then(|m| m.modified().ok()),
        ));
    }
    files.sort();
    Ok(files)
}

/// Locks and cleans up a folder destination; a non-empty one is refused unless `overwrite`.
fn prepare_folder(to: &Location, options: &MigrateOptions) -> Result<Option<DirTarget>> {
    let Some(dest) = to.path() else {
        return Ok(None);
    };
    let target = DirTarget::prepare(dest, !options.dry_run)?;
    if target.existing && !options.overwrite {
        return Err(MigrateError::DestinationNotEmpty {
            location: to.to_string(),
        });
    }
    Ok(Some(target))
}

/// Reads the open source completely, with the summary of what was read.
async fn read_open(
    source: &OpenStore,
    from: &Location,
    options: &MigrateOptions,
) -> Result<(SourceRead, Summary)> {
    let mut source_end = Endpoint::at(from);
    let mut unrecognised = Vec::new();
    let mut flavour = None;
    if let Some(report) = source.folder_report() {
        flavour = Some(report.flavour);
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
    tracing::info!(from = %from, dry_run = options.dry_run, "migration: reading the source");
    let mut read = read_source(source.persistence(), &from.to_string(), options).await?;
    read.flavour = flavour;
    tracing::info!(
        keys = read.snapshot.key_count(),
        skipped = read.skipped.len(),
        creds = read.snapshot.creds.is_some(),
        "migration: source read"
    );
    let mut summary = Summary::new(source_end, Endpoint::at(from), options.dry_run);
    fill_counts(&mut summary, &read);
    // Lenient compat reads skip unreadable files inside the store; list them too.
    if let Some(report) = source.folder_report() {
        summary
            .skipped
            .extend(report.skipped.into_iter().map(|s| Entry {
                what: s.file,
                reason: s.reason,
            }));
    }
    summary.unrecognised = unrecognised;
    summary.bytes_read = match from.path() {
        Some(dir) => dir_size(dir),
        None => pipeline::encoded_size(&read.snapshot),
    };
    Ok((read, summary))
}

/// Runs the pipeline into a prepared destination (or, for a dry run, only checks it).
async fn write_prepared(
    snapshot: &Snapshot,
    to: &Location,
    dir_target: Option<DirTarget>,
    flavour: Flavour,
    options: &MigrateOptions,
    summary: &mut Summary,
) -> Result<()> {
    summary.target = Endpoint::at(to);
    if to.format() == crate::Format::Compat {
        summary.target.flavour = Some(flavour.to_string());
    }
    match &dir_target {
        Some(dir) => {
            summary.warnings.extend(dir.warnings.iter().cloned());
            summary.replaced_existing = dir.existing;
            if !options.dry_run {
                let mut target = FolderTarget { dir, to, flavour };
                record(
                    summary,
                    pipeline::run(&mut target, snapshot, options).await?,
                );
            }
        }
        None if options.dry_run => check_database(to, options, summary).await?,
        None => {
            let mut target = DatabaseTarget::new(to);
            record(
                summary,
                pipeline::run(&mut target, snapshot, options).await?,
            );
            summary.bytes_written = pipeline::encoded_size(snapshot);
        }
    }
    Ok(())
}

/// A dry run's look at a database target, as a source is looked at (a snapshot): no lease
/// taken, no schema migrated.
async fn check_database(
    to: &Location,
    options: &MigrateOptions,
    summary: &mut Summary,
) -> Result<()> {
    let location = to.to_string();
    let failed = |source: AuthError| MigrateError::Target {
        location: location.clone(),
        source,
    };
    match open_at(to, None, OpenMode::source(false)).await {
        Ok(reader) => {
            let checked =
                pipeline::check_empty(reader.persistence(), &location, options.overwrite).await;
            reader.close().await.map_err(failed)?;
            summary.replaced_existing = !checked?;
            Ok(())
        }
        Err(AuthError::UnsupportedVersion { what, version, .. }) if version == "0" => {
            summary.warnings.push(format!(
                "{what} does not exist yet; the migration would create it"
            ));
            Ok(())
        }
        Err(e) => Err(failed(e)),
    }
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
