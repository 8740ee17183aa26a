//! The commit path: the journal writer behind the store's [`GroupCommit`] (group commit: one
//! journal and one folder sync for every batch of a group). No dedicated writer thread: the
//! committers lead and follow on their own threads, as in the native store (see
//! [`wa_store_fs::group`]); a tokio caller's leader runs through [`wa_store_fs::blocking`], so
//! it never blocks a worker.
//!
//! A group is applied in three steps (see `docs/format-compat.md`):
//! 1. every new file is written under a temp name (and synced), and the hash of what each file
//!    it changes holds now is taken;
//! 2. the journal listing the renames and deletes, with the hashes of the old and the new
//!    contents, is written under a temp name, synced and renamed into place: from here on the
//!    commit has happened; the folder is synced;
//! 3. the renames and deletes are carried out, in order: key files, deletes, the registry,
//!    `creds.json` last.
//!
//! A batch that cannot be stored is refused alone, before anything is written (its committer
//! gets its own error; the rest of the group goes on). A failure before the commit point
//! removes what was written: nothing happened, and the store goes on. A failure after it (the
//! folder sync, a rename, a delete) leaves the journal and every temp file where they are, so
//! that the next open finishes the batch or drops it as a whole; until then the store is
//! failed: it refuses every commit and every read of a file the batch touches, since their
//! content is in doubt.
//!
//! The journal stays until the next commit replaces it; when the store is closed it is sealed
//! (the same id, no operations), which saves a second folder sync per commit and gives the
//! next open nothing to check.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tracing::{debug, error, warn};
use wa_auth::{AuthError, KeyId, KeyKind, Result, WriteBatch};
use wa_store_fs::{GroupCommit, GroupWriter};

use crate::fault::{self, FaultPoint};
use crate::fsio::{content_hash, read_regular, remove_if_exists, sync_dir, write_new};
use crate::journal::{Journal, Op};
use crate::layout::{CREDS_FILE, JOURNAL_FILE, REGISTRY_FILE, TEMP_PREFIX};
use crate::parallel;
use crate::plan::{Change, Plan, prepare};
use crate::recovery;
use crate::store::{Failure, Shared};

/// One committer's batch, with where the leader puts the error of a batch refused alone.
pub(crate) struct Pending {
    pub batch: WriteBatch,
    pub refused: Arc<OnceLock<AuthError>>,
}

/// The [`GroupWriter`] of the compat store.
pub(crate) struct JournalWriter(pub Arc<Shared>);

/// The store's commit queue.
pub(crate) type Committer = GroupCommit<JournalWriter>;

impl GroupWriter for JournalWriter {
    type Item = Pending;
    const BACKEND: &'static str = "compat";
    /// Most batches merged into one group commit.
    const MAX_ITEMS: usize = 64;
    /// Groups are bounded by their number of batches only.
    const MAX_WEIGHT: usize = usize::MAX;

    fn weight(_: &Pending) -> usize {
        1
    }

    fn write_group(&self, group: Vec<Pending>) -> Result<()> {
        let shared = &self.0;
        if let Some(failure) = shared.failure.read().as_ref() {
            return Err(unhealthy(&failure.reason));
        }
        // A panic half-way would leave the folder in doubt: the store then refuses commits
        // until reopened (which decides the journaled batch, if any).
        let written =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit_group(shared, group)));
        written.unwrap_or_else(|_| {
            let reason = "a commit panicked while writing the folder".to_owned();
            error!(dir = %shared.dir.display(), "{reason}; refusing further commits");
            let mut failure = shared.failure.write();
            failure.get_or_insert_with(|| Failure {
                reason: reason.clone(),
                names: BTreeSet::new(),
            });
            Err(unhealthy(&reason))
        })
    }
}

/// How a group commit failed.
enum Outcome {
    /// Before the commit point: nothing happened.
    NotCommitted(AuthError),
    /// After it: the store is failed until reopened.
    InDoubt(String),
}

fn unhealthy(reason: &str) -> AuthError {
    AuthError::Unhealthy {
        backend: "compat",
        reason: format!(
            "{reason}; the last commit is decided when the folder is reopened (applied as a whole, or not at all): reopen it to go on"
        ),
    }
}

/// Commits a group: each batch is planned (a batch that cannot be stored is refused alone,
/// in its [`Pending::refused`]), then the accepted ones are written together.
fn commit_group(shared: &Shared, group: Vec<Pending>) -> Result<()> {
    let mut plan = Plan::default();
    let mut accepted = 0;
    {
        let view = shared.view.read();
        for pending in group {
            match prepare(shared, &view, &mut plan, &pending.batch) {
                Ok(()) => accepted += 1,
                Err(e) => {
                    let _ = pending.refused.set(e);
                }
            }
        }
    }
    if accepted == 0 {
        return Ok(());
    }
    let outcome = execute(shared, plan);
    if !matches!(outcome, Err(Outcome::NotCommitted(_))) {
        shared.journaled.store(true, Ordering::SeqCst);
    }
    outcome.map_err(|outcome| match outcome {
        Outcome::InDoubt(reason) => unhealthy(&reason),
        Outcome::NotCommitted(e) => e,
    })
}

/// Closes the store for writing: refuses new commits, writes those already queued, seals the
/// journal, syncs what a store without fsync left unsynced, and releases the folder's lock
/// (also when the sync fails, which is then returned). Blocking; idempotent.
pub(crate) fn close(committer: &Arc<Committer>) -> Result<()> {
    committer.close_blocking();
    let shared = &committer.writer().0;
    if shared.journaled.swap(false, Ordering::SeqCst) && shared.failure.read().is_none() {
        seal(shared);
    }
    let synced = if shared.options.fsync {
        Ok(())
    } else {
        sync_unsynced(shared)
    };
    if shared.lock.lock().take().is_some() {
        debug!(dir = %shared.dir.display(), "compat store closed");
    }
    synced
}

/// Closed cleanly: every commit is applied; the journal is sealed. A failure only costs the
/// next open a check of the journal.
fn seal(shared: &Shared) {
    let dir = shared.dir.as_path();
    let fsync = shared.options.fsync;
    let journal = Journal {
        id: shared.journal_id.lock().clone(),
        ops: Vec::new(),
    };
    let sealed = (if fsync { sync_dir(dir) } else { Ok(()) })
        .and_then(|()| recovery::seal(dir, &journal, fsync));
    if let Err(e) = sealed {
        warn!(error = %e, "cannot seal the journal on close (the next open checks it)");
    }
}

/// Syncs the files renamed into place since the last flush, then the folder (for a store
/// without fsync, whose commits are not synced one by one).
pub(crate) fn sync_unsynced(shared: &Shared) -> Result<()> {
    let names = std::mem::take(&mut *shared.unsynced.lock());
    if names.is_empty() {
        return Ok(());
    }
    let synced = names.iter().try_for_each(|name| {
        let path = shared.dir.join(name);
        match std::fs::File::open(&path).and_then(|file| file.sync_all()) {
            Ok(()) => Ok(()),
            // Deleted by a later commit: the folder sync below makes that durable.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AuthError::io(&path, e)),
        }
    });
    let synced = synced.and_then(|()| sync_dir(&shared.dir));
    if synced.is_err() {
        // Synced again by the next flush.
        shared.unsynced.lock().extend(names);
    }
    synced
}

fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{TEMP_PREFIX}{}-{nanos}-{}-",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A group's files written under temp names, and the operations that apply them.
struct Staged {
    ops: Vec<Op>,
    temps: Vec<String>,
    journal_temp: String,
    /// The index changes: a name, and its kind and id (`None`: deleted).
    index: Vec<(String, Option<(KeyKind, KeyId)>)>,
}

fn execute(shared: &Shared, plan: Plan) -> std::result::Result<(), Outcome> {
    let dir = shared.dir.as_path();
    let fsync = shared.options.fsync;
    let staged = stage(shared, &plan).map_err(Outcome::NotCommitted)?;
    let journal = Journal {
        id: shared.journal_id.lock().next(),
        ops: staged.ops,
    };
    if let Err(e) = recovery::install_journal(dir, &journal, &staged.journal_temp, fsync) {
        for temp in staged.temps.iter().chain([&staged.journal_temp]) {
            let _ = remove_if_exists(&dir.join(temp));
        }
        error!(error = %e, "commit failed before its journal; nothing applied");
        return Err(Outcome::NotCommitted(e));
    }
    *shared.journal_id.lock() = journal.id.clone();

    // The commit has happened: apply it. A failure from here on leaves everything in place.
    let synced = if fsync {
        fault::check(dir, FaultPoint::SyncAfterJournal)
            .map_err(|e| AuthError::io(dir, e))
            .and_then(|()| sync_dir(dir))
    } else {
        Ok(())
    };
    let mut view = shared.view.write();
    if let Err(e) = synced.and_then(|()| apply(shared, &journal.ops)) {
        error!(error = %e, "commit journaled but not applied; refusing further commits");
        let names: BTreeSet<String> = journal.ops.iter().map(|o| o.target().to_owned()).collect();
        let reason = format!("the commit was journaled but not applied: {e}");
        *shared.failure.write() = Some(Failure {
            reason: reason.clone(),
            names,
        });
        return Err(Outcome::InDoubt(reason));
    }
    for (name, change) in staged.index {
        view.unrecognised.remove(&name);
        match change {
            Some((kind, id)) => view.insert(name, kind, id, None),
            None => view.remove(&name),
        }
    }
    if let Some(registry) = plan.registry {
        view.registry = registry;
        view.registry_on_disk = true;
    }
    if let Some((_, json)) = plan.creds {
        view.creds = Some(None);
        *shared.creds_template.lock() = Some(json);
    }
    if !fsync {
        // Synced by the next flush.
        let renamed = journal.ops.iter().filter_map(|op| match op {
            Op::Rename { target, .. } => Some(target.clone()),
            Op::Delete { .. } => None,
        });
        let mut unsynced = shared.unsynced.lock();
        unsynced.extend(renamed);
        unsynced.insert(JOURNAL_FILE.to_owned());
    }
    debug!(ops = journal.ops.len(), "commit applied");
    Ok(())
}

/// Carries out the operations of a journaled commit, in order.
fn apply(shared: &Shared, ops: &[Op]) -> Result<()> {
    let dir = shared.dir.as_path();
    for (n, op) in ops.iter().enumerate() {
        fault::check(dir, FaultPoint::ApplyOp(n)).map_err(|e| AuthError::io(dir, e))?;
        match op {
            Op::Rename { temp, target, .. } => std::fs::rename(dir.join(temp), dir.join(target))
                .map_err(|e| AuthError::io(dir.join(target), e))?,
            Op::Delete { target, .. } => {
                remove_if_exists(&dir.join(target))?;
            }
        }
    }
    Ok(())
}

/// Step 1: writes the group's new files under temp names and builds its operations (key
/// renames, deletes, the registry, the creds), each with the hash of what its file holds now.
/// On failure, removes what it wrote.
fn stage(shared: &Shared, plan: &Plan) -> Result<Staged> {
    let dir = shared.dir.as_path();
    let prefix = unique_prefix();
    let registry = plan.registry.as_ref().map(|r| r.to_bytes());
    let mut puts: Vec<(&str, &[u8])> = Vec::new();
    let mut deletes: Vec<&str> = Vec::new();
    let mut index = Vec::new();
    for (name, change) in &plan.files {
        match change {
            Change::Put { kind, id, bytes } => {
                puts.push((name, bytes));
                index.push((name.clone(), Some((kind.clone(), id.clone()))));
            }
            Change::Delete => {
                deletes.push(name);
                index.push((name.clone(), None));
            }
        }
    }
    puts.extend(registry.as_deref().map(|b| (REGISTRY_FILE, b)));
    puts.extend(plan.creds.as_ref().map(|(b, _)| (CREDS_FILE, b.as_slice())));
    let temps: Vec<String> = (0..puts.len()).map(|n| format!("{prefix}{n}")).collect();
    let written = write_temps(shared, &puts, &temps);
    let olds = written
        .and_then(|()| old_hashes(dir, puts.iter().map(|p| p.0).chain(deletes.iter().copied())));
    let olds = match olds {
        Ok(olds) => olds,
        Err(e) => {
            for temp in &temps {
                let _ = remove_if_exists(&dir.join(temp));
            }
            return Err(e);
        }
    };
    let (put_olds, delete_olds) = olds.split_at(puts.len());
    let mut renames: Vec<Op> = puts
        .iter()
        .zip(&temps)
        .zip(put_olds)
        .map(|(((target, bytes), temp), old)| Op::Rename {
            temp: temp.clone(),
            target: (*target).to_owned(),
            new: content_hash(bytes),
            old: old.clone(),
        })
        .collect();
    // Keys first, then deletes, then the registry and creds (the last renames).
    let meta = renames.split_off(
        puts.len() - usize::from(registry.is_some()) - usize::from(plan.creds.is_some()),
    );
    let mut ops = renames;
    ops.extend(deletes.iter().zip(delete_olds).filter_map(|(target, old)| {
        // Gone already (removed by someone else): nothing to delete.
        old.clone().map(|old| Op::Delete {
            target: (*target).to_owned(),
            old,
        })
    }));
    ops.extend(meta);
    let journal_temp = format!("{prefix}journal");
    Ok(Staged {
        ops,
        temps,
        journal_temp,
        index,
    })
}

/// Writes (and syncs) the temp files, in parallel for large groups.
fn write_temps(shared: &Shared, puts: &[(&str, &[u8])], temps: &[String]) -> Result<()> {
    let dir = shared.dir.as_path();
    let fsync = shared.options.fsync;
    let threads = if fsync {
        parallel::SYNC_THREADS
    } else {
        parallel::cpu_threads()
    };
    let writes: Vec<(&String, &[u8])> = temps.iter().zip(puts.iter().map(|p| p.1)).collect();
    parallel::map(&writes, threads, |(temp, bytes)| {
        fault::check(dir, FaultPoint::TempWrite).map_err(|e| AuthError::io(dir.join(temp), e))?;
        write_new(&dir.join(temp), bytes, fsync)
    })
    .into_iter()
    .collect()
}

/// The hash of what each of `names` holds now (`None`: nothing). A name that is not a regular
/// file fails the commit here, before its commit point.
fn old_hashes<'a>(
    dir: &std::path::Path,
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<Option<String>>> {
    let names: Vec<&str> = names.collect();
    parallel::map(&names, parallel::cpu_threads(), |name| {
        Ok(read_regular(&dir.join(name))?.map(|bytes| content_hash(&bytes)))
    })
    .into_iter()
    .collect()
}
