//! [`CompatStore`]: the [`Persistence`] over a Baileys folder.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tracing::{info, warn};
use wa_auth::dir_lock::{DirLock, ReleaseNotice};
use wa_auth::{
    AuthCreds, AuthError, Capabilities, CorruptItem, Durability, KeyId, KeyKind, KeyValue,
    Persistence, Result, WriteBatch,
};
use wa_store_fs::GroupCommit;

use crate::codec::{self, CompatError, Flavour};
use crate::fault::{self, FaultPoint};
use crate::folder::{Token, View, current_token, open_folder, read_indexed, refuse_other_backends};
use crate::fsio::sync_parent;
use crate::journal::JournalId;
use crate::layout::{CREDS_FILE, LOCK_FILE, key_file_name};
use crate::options::{CompatStoreOptions, ReadMode};
use crate::parallel;
use crate::report::{FlavourSource, FolderReport, Recovery, SkippedFile, UnrecognisedFile};
use crate::writer::{self, Committer, JournalWriter, Pending};

/// A commit that failed after its commit point: its outcome is decided when the folder is
/// reopened, and until then the files it touches cannot be read.
pub(crate) struct Failure {
    pub reason: String,
    pub names: BTreeSet<String>,
}

/// State shared by the store handle, its blocking reads and its commit queue's leaders.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub options: CompatStoreOptions,
    pub flavour: Flavour,
    pub flavour_source: FlavourSource,
    pub recovery: Recovery,
    pub registry_error: Option<String>,
    /// The folder's index. Reads hold it shared while they read files; the writer holds it
    /// exclusively while it renames a commit's files into place, so a read sees a commit
    /// entirely or not at all.
    pub view: RwLock<View>,
    /// The `creds.json` being replaced, as read: a rewrite keeps its field order.
    pub creds_template: Mutex<Option<Value>>,
    /// The id of the folder's last journal; the writer's next commit takes the next one.
    pub journal_id: Mutex<JournalId>,
    /// For a read-only view: the state it indexed. Every read checks it is still current.
    pub token: Token,
    /// Set when a commit failed after its commit point (see [`Failure`]).
    pub failure: RwLock<Option<Failure>>,
    /// Files skipped in lenient mode, by name.
    pub skipped: Mutex<BTreeMap<String, SkippedFile>>,
    /// Without fsync: the files renamed into place since the last flush, which syncs them.
    pub unsynced: Mutex<BTreeSet<String>>,
    /// A journal was written since the store opened: closing seals it.
    pub journaled: AtomicBool,
    /// Held while the store is open for writing; released by [`writer::close`].
    pub lock: Mutex<Option<DirLock>>,
}

impl Shared {
    /// Fails when the file `name` belongs to a commit whose outcome is in doubt.
    fn check_not_in_doubt(&self, name: &str) -> Result<()> {
        match self.failure.read().as_ref() {
            Some(failure) if failure.names.contains(name) => Err(AuthError::Unhealthy {
                backend: "compat",
                reason: format!(
                    "{name} belongs to a commit whose outcome is decided when the folder is reopened ({})",
                    failure.reason
                ),
            }),
            _ => Ok(()),
        }
    }

    /// For a read-only view: fails when the folder no longer is in the state the view
    /// indexed (its owner committed since), so nothing read from a later state is returned.
    fn check_unchanged(&self) -> Result<()> {
        if !self.options.read_only || current_token(&self.dir)? == self.token {
            return Ok(());
        }
        Err(AuthError::ChangedWhileReading {
            resource: self.dir.display().to_string(),
            reason: "its owner committed since this read-only view was opened".into(),
        })
    }
}

/// A [`Persistence`] over a Baileys `useMultiFileAuthState` folder, keeping it readable by
/// Baileys (see the [crate docs](crate)).
///
/// Opening lists the folder once into an index; values are read from their files when asked
/// for (so opening a 10 000-session folder takes milliseconds) and not cached (an
/// [`AuthState`](wa_auth::AuthState) over the store caches). Commits are written in groups by
/// the committers themselves (one journal and one folder sync per group, see the
/// [crate docs](crate)); reads run on tokio's blocking pool. [`Persistence::close`] writes the
/// commits already queued, seals the journal and releases the folder's lock before it
/// returns, without blocking the async runtime; dropping the store does the same, but inside
/// an async runtime `drop` does not wait for it (the work moves to the blocking pool, and a
/// store opened again meanwhile in this process waits for the lock's release). Outside a
/// runtime `drop` waits.
pub struct CompatStore {
    shared: Arc<Shared>,
    committer: Option<Arc<Committer>>,
    /// Tells same-process openers that a dropped store is releasing the lock.
    notice: Option<ReleaseNotice>,
    closed: AtomicBool,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    wa_store_fs::blocking::offload("compat", f).await
}

impl CompatStore {
    /// Opens (or creates) the folder `path` with default options: detected flavour, strict
    /// reads, fsync on, locked for writing.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, CompatStoreOptions::default()).await
    }

    /// Opens the folder `path` with `options`. Fails with
    /// [`AuthError::AlreadyOwned`] when another handle owns it (unless read-only), and with
    /// [`AuthError::Corrupt`] only for this store's own metadata (journal, registry);
    /// unreadable creds and key files are reported when read.
    pub async fn open_with(path: impl AsRef<Path>, options: CompatStoreOptions) -> Result<Self> {
        let dir = path.as_ref().to_path_buf();
        blocking(move || Self::open_blocking(dir, options)).await
    }

    fn open_blocking(dir: PathBuf, options: CompatStoreOptions) -> Result<Self> {
        if options.mode == ReadMode::Lenient && !options.read_only {
            // A skipped key would look absent to an AuthState, which could write new state
            // over the damaged one.
            return Err(AuthError::invalid(
                format!("options for {}", dir.display()),
                "lenient reads are for read-only views; open a CompatReader to skip unreadable keys",
            ));
        }
        prepare_folder(&dir, &options)?;
        // Before anything is created in it (the lock file).
        refuse_other_backends(&dir)?;
        let lock = if options.read_only {
            None
        } else {
            // Baileys never opens a name starting with `.`, so the lock file is invisible to
            // it; it does not take the lock either, so only owners using this store are kept
            // out, not a Baileys process writing the same folder.
            Some(DirLock::acquire(&dir, LOCK_FILE)?)
        };
        let opened = open_folder(&dir, &options)?;
        let scan = opened.scan;
        info!(
            dir = %dir.display(),
            keys = scan.view.files.len(),
            unrecognised = scan.view.unrecognised.len(),
            flavour = %scan.flavour,
            recovery = ?opened.recovery,
            "opened Baileys folder"
        );
        for (file, why) in &scan.view.unrecognised {
            warn!(file = %file, reason = %why, "unrecognised file left alone");
        }
        let notice = lock.as_ref().map(DirLock::notice);
        let shared = Arc::new(Shared {
            dir,
            options,
            flavour: scan.flavour,
            flavour_source: scan.flavour_source,
            recovery: opened.recovery,
            registry_error: scan.registry_error,
            view: RwLock::new(scan.view),
            creds_template: Mutex::new(scan.creds_template),
            journal_id: Mutex::new(opened.journal_id),
            token: opened.token,
            failure: RwLock::new(None),
            skipped: Mutex::new(BTreeMap::new()),
            unsynced: Mutex::new(BTreeSet::new()),
            journaled: AtomicBool::new(false),
            lock: Mutex::new(lock),
        });
        let committer = notice
            .is_some()
            .then(|| Arc::new(GroupCommit::new(JournalWriter(shared.clone()))));
        Ok(Self {
            shared,
            committer,
            notice,
            closed: AtomicBool::new(false),
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// The Baileys layout this store writes.
    pub fn flavour(&self) -> Flavour {
        self.shared.flavour
    }

    /// What the store found in its folder so far: unrecognised files, files skipped in lenient
    /// mode, the flavour and how it was decided, what recovery did.
    pub fn report(&self) -> FolderReport {
        let view = self.shared.view.read();
        FolderReport {
            flavour: self.shared.flavour,
            flavour_source: self.shared.flavour_source,
            recovery: self.shared.recovery.clone(),
            unrecognised: view
                .unrecognised
                .iter()
                .map(|(file, reason)| UnrecognisedFile {
                    file: file.clone(),
                    reason: reason.clone(),
                })
                .collect(),
            skipped: self.shared.skipped.lock().values().cloned().collect(),
            creds_error: None,
            registry_error: self.shared.registry_error.clone(),
            key_files: view.files.len(),
        }
    }

    /// Reads and decodes the creds and every key file, and reports every problem instead of
    /// failing (whatever the read mode): [`FolderReport::skipped`] lists every unreadable key
    /// file, [`FolderReport::creds_error`] says why the creds cannot be read. Nothing is
    /// changed. For migration tools, before they copy a folder.
    pub async fn scan(&self) -> Result<FolderReport> {
        self.check_open()?;
        let shared = self.shared.clone();
        let (creds_error, unreadable) = blocking(move || {
            let creds_error = match read_creds(&shared) {
                Ok(_) => None,
                Err(e) if entry_error(&e) => Some(e.to_string()),
                Err(e) => return Err(e),
            };
            Ok((creds_error, unreadable_keys(&shared)?))
        })
        .await?;
        let mut report = self.report();
        report.creds_error = creds_error;
        let mut skipped: BTreeMap<String, SkippedFile> = report
            .skipped
            .into_iter()
            .map(|s| (s.file.clone(), s))
            .collect();
        for s in unreadable {
            skipped.insert(s.file.clone(), s);
        }
        report.skipped = skipped.into_values().collect();
        Ok(report)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AuthError::Closed);
        }
        Ok(())
    }
}

impl Drop for CompatStore {
    fn drop(&mut self) {
        let Some(committer) = self.committer.take() else {
            return;
        };
        if self.closed.swap(true, Ordering::SeqCst) {
            // `close` already did (or is doing) the work.
            return;
        }
        // Never blocks a runtime thread (see `wa_store_fs::blocking::close_dropped`).
        wa_store_fs::blocking::close_dropped(self.notice.as_ref(), move || {
            if let Err(e) = writer::close(&committer) {
                warn!(error = %e, "closing a dropped compat store failed");
            }
        });
    }
}

impl std::fmt::Debug for CompatStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompatStore")
            .field("dir", &self.shared.dir)
            .field("flavour", &self.shared.flavour)
            .field("read_only", &self.shared.options.read_only)
            .field("key_files", &self.shared.view.read().files.len())
            .finish_non_exhaustive()
    }
}

/// Makes sure `dir` is a folder: creates it (made durable in its parent) when allowed, and
/// otherwise syncs its parent for a writable open, in case an earlier creation could not.
fn prepare_folder(dir: &Path, options: &CompatStoreOptions) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if options.fsync && !options.read_only {
                sync_parent(dir, dir)?;
            }
            Ok(())
        }
        Ok(_) => Err(AuthError::invalid(
            dir.display().to_string(),
            "exists and is not a directory",
        )),
        Err(e) if e.kind() == ErrorKind::NotFound && options.create && !options.read_only => {
            // The shared creation, with this store's fault hook before each parent sync (and
            // no sync without fsync).
            let fsync = options.fsync;
            wa_store_fs::create_dir_durably_with(dir, 0o700, |parent| {
                if !fsync {
                    return Ok(());
                }
                fault::check(dir, FaultPoint::SyncParent)?;
                wa_store_fs::sync_dir(parent)
            })
            .map(|_| ())
            .map_err(|e| AuthError::io(dir, e))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Err(AuthError::NotFound {
            what: format!("auth folder {}", dir.display()),
        }),
        Err(e) => Err(AuthError::io(dir, e)),
    }
}

fn corrupt(item: CorruptItem, dir: &Path, name: &str, source: CompatError) -> AuthError {
    AuthError::corrupt(item, dir.join(name).display().to_string(), source)
}

/// Reads the creds: `None` when there are none. Always strict. A read-only view checks the
/// folder is still in the state it indexed.
fn read_creds(shared: &Shared) -> Result<Option<AuthCreds>> {
    let view = shared.view.read();
    // Checked under the index lock: a commit failing meanwhile is seen.
    shared.check_not_in_doubt(CREDS_FILE)?;
    let Some(pending) = view.creds.as_ref() else {
        return Ok(None);
    };
    let bytes = read_indexed(&shared.dir, CREDS_FILE, pending.as_ref())?;
    drop(view);
    shared.check_unchanged()?;
    let creds = CompatError::parse(&bytes)
        .and_then(|value| codec::creds::from_json(&value))
        .map_err(|e| corrupt(CorruptItem::Creds, &shared.dir, CREDS_FILE, e))?;
    Ok(Some(creds))
}

/// Reads one key: `Ok(None)` when the index has no such key, `Err` (naming the file) when it
/// cannot be read. The caller checks a read-only view is still current.
fn read_key_in(
    shared: &Shared,
    view: &View,
    kind: &KeyKind,
    id: &KeyId,
) -> Result<Option<KeyValue>> {
    let name = key_file_name(kind, id);
    let Some(entry) = view.files.get(&name).filter(|e| &e.kind == kind) else {
        return Ok(None);
    };
    shared.check_not_in_doubt(&name)?;
    let bytes = read_indexed(&shared.dir, &name, entry.pending.as_ref())?;
    let location = || shared.dir.join(&name).display().to_string();
    let value = CompatError::parse(&bytes)
        .and_then(|json| codec::key_value::from_json(kind, id, &json))
        .map_err(|e| AuthError::corrupt_key(kind, id, location(), e))?;
    value
        .check_fits(kind, id)
        .map_err(|e| AuthError::corrupt_key(kind, id, location(), e))?;
    Ok(Some(value))
}

/// Whether an error is about the entry read (and lenient mode or a scan may report it) rather
/// than about the store or the folder as a whole.
fn entry_error(error: &AuthError) -> bool {
    matches!(error, AuthError::Corrupt { .. } | AuthError::Io { .. })
}

/// Reads and decodes every key file; returns those that cannot be read, with the reason.
fn unreadable_keys(shared: &Shared) -> Result<Vec<SkippedFile>> {
    let guard = shared.view.read();
    let view: &View = &guard;
    let entries: Vec<(&KeyKind, &KeyId)> = view.files.values().map(|e| (&e.kind, &e.id)).collect();
    let results = parallel::map(&entries, parallel::cpu_threads(), |(kind, id)| {
        read_key_in(shared, view, kind, id)
    });
    let mut unreadable = Vec::new();
    for ((kind, id), result) in entries.into_iter().zip(results) {
        match result {
            Ok(_) => {}
            Err(e) if entry_error(&e) => unreadable.push(SkippedFile {
                file: key_file_name(kind, id),
                kind: kind.clone(),
                id: id.clone(),
                reason: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    drop(guard);
    shared.check_unchanged()?;
    Ok(unreadable)
}

#[async_trait]
impl Persistence for CompatStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("compat")
            .atomic_commit(true)
            .durability(if self.shared.options.fsync {
                Durability::OnCommit
            } else {
                Durability::OnFlush
            })
            .persistent(true)
            .read_only(self.shared.options.read_only)
    }

    async fn load_creds(&self) -> Result<Option<AuthCreds>> {
        self.check_open()?;
        let shared = self.shared.clone();
        blocking(move || read_creds(&shared)).await
    }

    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
        self.check_open()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let shared = self.shared.clone();
        let kind = kind.clone();
        let ids: Vec<KeyId> = ids
            .iter()
            .cloned()
            .collect::<BTreeSet<KeyId>>()
            .into_iter()
            .collect();
        blocking(move || {
            let view = shared.view.read();
            let view: &View = &view;
            let read = parallel::map(&ids, parallel::cpu_threads(), |id| {
                read_key_in(&shared, view, &kind, id)
            });
            // Whatever was read, a view whose folder moved on returns none of it.
            shared.check_unchanged()?;
            let mut found = Vec::with_capacity(ids.len());
            for (id, result) in ids.into_iter().zip(read) {
                match result {
                    Ok(Some(value)) => found.push((id, value)),
                    Ok(None) => {}
                    Err(AuthError::Corrupt {
                        location, source, ..
                    }) if shared.options.mode == ReadMode::Lenient => {
                        warn!(file = %location, error = %source, "skipping an unreadable key file");
                        let file = key_file_name(&kind, &id);
                        shared.skipped.lock().insert(
                            file.clone(),
                            SkippedFile {
                                file,
                                kind: kind.clone(),
                                id,
                                reason: source.to_string(),
                            },
                        );
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(found)
        })
        .await
    }

    async fn list(&self, kind: &KeyKind) -> Result<Vec<KeyId>> {
        self.check_open()?;
        Ok(self
            .shared
            .view
            .read()
            .by_kind
            .get(kind)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn kinds(&self) -> Result<Vec<KeyKind>> {
        self.check_open()?;
        let mut kinds: Vec<KeyKind> = self.shared.view.read().by_kind.keys().cloned().collect();
        kinds.sort();
        Ok(kinds)
    }

    async fn commit(&self, batch: WriteBatch) -> Result<()> {
        self.check_open()?;
        if self.shared.options.read_only {
            return Err(AuthError::ReadOnly {
                resource: format!("Baileys folder {}", self.shared.dir.display()),
            });
        }
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        let Some(committer) = &self.committer else {
            return Err(AuthError::Closed);
        };
        let refused = Arc::new(OnceLock::new());
        let written = committer
            .commit(Pending {
                batch,
                refused: refused.clone(),
            })
            .await;
        // A batch refused alone says why, whatever became of the rest of its group.
        match refused.get() {
            Some(e) => Err(e.clone()),
            None => written,
        }
    }

    async fn flush(&self) -> Result<()> {
        self.check_open()?;
        if self.shared.options.fsync || self.shared.options.read_only {
            return Ok(());
        }
        let shared = self.shared.clone();
        blocking(move || writer::sync_unsynced(&shared)).await
    }

    /// Writes the commits already queued, seals the journal, syncs what a store without fsync
    /// left unsynced and releases the folder's lock before it returns; the work runs on
    /// tokio's blocking pool. Idempotent; later operations fail with [`AuthError::Closed`].
    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let Some(committer) = &self.committer else {
            return Ok(());
        };
        let committer = committer.clone();
        blocking(move || writer::close(&committer)).await
    }
}
