//! [`NativeStore`]: opening (with recovery), the [`Persistence`] implementation, closing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;
use tracing::{info, warn};
use wa_auth::codec::decode_binary;
use wa_auth::{
    AuthCreds, AuthError, Capabilities, KeyId, KeyKind, KeyValue, Persistence, Result, WriteBatch,
};
use wa_store_fs::blocking::offload;
use wa_store_fs::{DirLock, GroupCommit, publish_file};

use crate::commit::{self, Committer, Log, LogWriter, Pending, Shared};
use crate::compaction::Compactions;
use crate::format::{self, FILE_HEADER_LEN, LOG_MAGIC, LOG_VERSION};
use crate::layout::{LOCK_FILE, Paths, is_own_file};
use crate::log::log_header;
use crate::options::{Durability, NativeStoreOptions};
use crate::recovery::{Names, Recovered, recover};
use crate::snapshot::{SnapshotData, read_snapshot};
use crate::state::{EncodedBatch, State};
use crate::stream::{STREAM_MIN_KEYS, StreamedBatch};
use wa_auth::dir_lock::ReleaseNotice;

/// Batches with more keys than this are encoded on a blocking thread, not on the async task.
const OFFLOAD_ENCODE_KEYS: usize = 256;

/// How often a read-only open retries when the owner compacts while it reads.
const READ_ONLY_ATTEMPTS: usize = 8;

/// A crash-safe store of one linked device's auth state in one directory.
///
/// Everything lives in memory (each value in its canonical binary encoding, decoded on
/// [`get`](Persistence::get)), so reads never touch the disk. Commits are appended to the
/// log and synced in groups, by the committers themselves (see the [crate docs](crate)).
/// The directory is locked while the store is open for writing.
///
/// End it with [`Persistence::close`]: it writes the commits already queued, stops a
/// compaction in progress, syncs, and releases the lock before it returns, without blocking the
/// async runtime (the work runs on tokio's blocking pool); later operations fail with
/// [`AuthError::Closed`]. Dropping the store does the same; inside an async runtime `drop`
/// does not wait for it (the work moves to the blocking pool), and a store opened again
/// meanwhile in this process waits for the lock's release. Outside a runtime `drop` waits.
pub struct NativeStore {
    paths: Arc<Paths>,
    options: NativeStoreOptions,
    state: Arc<RwLock<State>>,
    committer: Option<Arc<Committer>>,
    /// Tells same-process openers that a dropped store is releasing the lock.
    notice: Option<ReleaseNotice>,
    closed: AtomicBool,
}

impl std::fmt::Debug for NativeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.read();
        f.debug_struct("NativeStore")
            .field("dir", &self.paths.dir)
            .field("read_only", &self.options.read_only)
            .field("seq", &state.seq)
            .field("has_creds", &state.creds.is_some())
            .field("keys", &state.key_count())
            .finish()
    }
}

fn names(paths: &Paths) -> Names {
    Names {
        snapshot: paths.snapshot.display().to_string(),
        log: paths.log.display().to_string(),
    }
}

fn read_snapshot_file(path: &Path) -> Result<Option<SnapshotData>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuthError::io(path, e)),
    };
    let len = file.metadata().map_err(|e| AuthError::io(path, e))?.len();
    let reader = BufReader::with_capacity(256 << 10, file);
    read_snapshot(reader, len, &path.display().to_string()).map(Some)
}

fn read_log_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuthError::io(path, e)),
    }
}

/// Makes sure `path` is a directory with mode 0700 (creating it when allowed).
fn prepare_dir(path: &Path, options: &NativeStoreOptions) -> Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let mode = meta.permissions().mode() & 0o777;
            if !options.read_only && mode & 0o077 != 0 {
                warn!(dir = %path.display(), mode = format!("{mode:o}"), "tightening the store directory to 0700");
                fs::set_permissions(path, fs::Permissions::from_mode(0o700))
                    .map_err(|e| AuthError::io(path, e))?;
            }
            Ok(())
        }
        Ok(_) => Err(AuthError::invalid(
            format!("native store path {}", path.display()),
            "is not a directory",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if options.read_only || !options.create {
                return Err(AuthError::NotFound {
                    what: format!("native store directory {}", path.display()),
                });
            }
            // The new directory (and any parent created with it) must survive a power loss
            // before files are put in it: the folders holding them are synced.
            wa_auth::folder::create_dir_durably(path, 0o700)
                .map(|_| ())
                .map_err(|e| AuthError::io(path, e))
        }
        Err(e) => Err(AuthError::io(path, e)),
    }
}

/// Makes an existing store file 0600.
fn tighten_file(path: &Path) -> Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            warn!(file = %path.display(), "tightening a store file to 0600");
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .map_err(|e| AuthError::io(path, e))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AuthError::io(path, e)),
    }
}

impl NativeStore {
    /// Opens (or creates) the store in directory `path` with default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, NativeStoreOptions::default()).await
    }

    /// Opens the store in directory `path`. The file work runs on tokio's blocking pool.
    pub async fn open_with(path: impl AsRef<Path>, options: NativeStoreOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        offload("native", move || Self::open_blocking(path, options)).await
    }

    /// Opens the store in directory `path`, blocking the calling thread (for synchronous code
    /// and tools; from async code use [`NativeStore::open_with`]).
    ///
    /// Recovery: a torn tail of the log (a last write cut short by a crash, never acknowledged)
    /// is discarded and truncated away; any other damage is [`AuthError::Corrupt`] naming the
    /// file and offset, and an unknown format version is [`AuthError::UnsupportedVersion`].
    /// Left-over temp files are removed. A second opener for writing gets
    /// [`AuthError::AlreadyOwned`].
    pub fn open_blocking(path: impl AsRef<Path>, options: NativeStoreOptions) -> Result<Self> {
        let started = Instant::now();
        let paths = Arc::new(Paths::new(path.as_ref().to_path_buf()));
        if paths.dir.is_dir() && !paths.snapshot.exists() && !paths.log.exists() {
            // A directory that is something else (a Baileys folder) is refused before it is
            // touched (no lock file left in it, its mode unchanged) or read as an empty store.
            Self::refuse_other_files(&paths)?;
            if !options.read_only {
                Self::check_empty_dir(&paths, &options)?;
            }
        }
        prepare_dir(&paths.dir, &options)?;
        if options.read_only {
            return Self::open_read_only(paths, options, started);
        }
        let lock = DirLock::acquire(&paths.dir, LOCK_FILE)?;
        Self::remove_temp_files(&paths)?;
        for file in [&paths.snapshot, &paths.log] {
            tighten_file(file)?;
        }
        let snapshot = read_snapshot_file(&paths.snapshot)?;
        let log_bytes = read_log_file(&paths.log)?;
        let fresh = snapshot.is_none() && log_bytes.is_none();
        if fresh {
            Self::check_empty_dir(&paths, &options)?;
        }
        let recovered = recover(snapshot, log_bytes.as_deref(), &names(&paths))?;
        let snapshot_len = if fresh {
            Self::create_snapshot(&paths)?
        } else {
            recovered.snapshot_len
        };
        let (file, len) = Self::prepare_log(&paths, &recovered, log_bytes.as_deref())?;
        drop(log_bytes);
        info!(
            dir = %paths.dir.display(),
            seq = recovered.state.seq,
            keys = recovered.state.key_count(),
            has_creds = recovered.state.creds.is_some(),
            frames = recovered.frames_applied,
            snapshot_bytes = snapshot_len,
            log_bytes = len,
            millis = started.elapsed().as_millis() as u64,
            "opened native store"
        );
        let log = Log {
            file,
            len,
            snapshot_len,
            next_seq: recovered.state.seq + 1,
            unsynced: false,
            failed: None,
        };
        Ok(Self::start(paths, options, recovered.state, log, lock))
    }

    /// The store over recovered `state` and its `log`, ready for commits.
    fn start(
        paths: Arc<Paths>,
        options: NativeStoreOptions,
        state: State,
        log: Log,
        lock: DirLock,
    ) -> Self {
        let state = Arc::new(RwLock::new(state));
        let notice = lock.notice();
        let shared = Arc::new(Shared {
            paths: paths.clone(),
            options: options.clone(),
            state: state.clone(),
            log: Mutex::new(log),
            compactions: Compactions::default(),
            lock: Mutex::new(Some(lock)),
        });
        // A log left over its threshold (by a failed compaction) is compacted now.
        crate::compaction::maybe_start(&shared, &mut shared.log.lock());
        Self {
            paths,
            options,
            state,
            committer: Some(Arc::new(GroupCommit::new(LogWriter(shared)))),
            notice: Some(notice),
            closed: AtomicBool::new(false),
        }
    }

    /// Removes the temp files a crash may have left.
    fn remove_temp_files(paths: &Paths) -> Result<()> {
        for tmp in [&paths.snapshot_tmp, &paths.log_tmp] {
            match fs::remove_file(tmp) {
                Ok(()) => info!(file = %tmp.display(), "removed a left-over temp file"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(AuthError::io(tmp, e)),
            }
        }
        Ok(())
    }

    /// Publishes the empty snapshot of a new store; returns its length.
    fn create_snapshot(paths: &Paths) -> Result<u64> {
        let empty = crate::snapshot::empty_snapshot();
        publish_file(&paths.dir, &paths.snapshot_tmp, &paths.snapshot, &[&empty])
            .map_err(|e| AuthError::io(&paths.snapshot, e))?;
        info!(dir = %paths.dir.display(), "created a new native store");
        Ok(empty.len() as u64)
    }

    /// Refuses to create a store in a directory that holds other files.
    fn check_empty_dir(paths: &Paths, options: &NativeStoreOptions) -> Result<()> {
        Self::refuse_other_files(paths)?;
        if !options.create {
            return Err(AuthError::NotFound {
                what: format!("native store in {}", paths.dir.display()),
            });
        }
        Ok(())
    }

    /// Refuses a directory holding files that are not the store's, naming them and how to
    /// migrate what they hold.
    fn refuse_other_files(paths: &Paths) -> Result<()> {
        let entries = fs::read_dir(&paths.dir).map_err(|e| AuthError::io(&paths.dir, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| AuthError::io(&paths.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_own_file(&name) {
                found.push(name);
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        found.sort();
        let more = found.len().saturating_sub(5);
        found.truncate(5);
        let listed = if more > 0 {
            format!("{} and {more} more", found.join(", "))
        } else {
            found.join(", ")
        };
        let dir = paths.dir.display();
        Err(AuthError::invalid(
            format!("native store directory {dir}"),
            format!(
                "holds no native store but other files ({listed}); refusing to use it as one. A Baileys folder is opened with wa_store_compat, or its state copied into a native store with `cargo xtask migrate --from {dir} --to <new directory>`"
            ),
        ))
    }

    /// Makes the log match the recovered state: creates it, rewrites it when the snapshot is
    /// ahead of its base or when it has an older format version (frames of version 1 are
    /// frames of version 2; the new header lets batches be written in parts), or truncates a
    /// torn tail. Returns it open at its end.
    fn prepare_log(
        paths: &Paths,
        recovered: &Recovered,
        log: Option<&[u8]>,
    ) -> Result<(File, u64)> {
        let log_err = |e| AuthError::io(&paths.log, e);
        let seq = recovered.snapshot_seq;
        match (log, recovered.log_base) {
            (Some(bytes), Some(base)) if base == seq && recovered.log_version == LOG_VERSION => {
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&paths.log)
                    .map_err(log_err)?;
                if let Some(torn) = recovered.torn {
                    warn!(
                        file = %paths.log.display(),
                        offset = torn,
                        discarded_bytes = bytes.len() as u64 - torn,
                        "discarding the torn tail of the log (an unacknowledged write cut short)"
                    );
                    file.set_len(recovered.log_end).map_err(log_err)?;
                    file.sync_data().map_err(log_err)?;
                }
                file.seek(SeekFrom::Start(recovered.log_end))
                    .map_err(log_err)?;
                Ok((file, recovered.log_end))
            }
            (bytes, _) => {
                // No log yet, or the snapshot is ahead of its base (a compaction was cut short):
                // write the log anew with the frames after the snapshot.
                let tail = bytes
                    .map(|b| &b[recovered.keep_from as usize..recovered.log_end as usize])
                    .unwrap_or_default();
                if bytes.is_some() && recovered.log_version != LOG_VERSION {
                    info!(
                        file = %paths.log.display(),
                        from_version = recovered.log_version,
                        to_version = LOG_VERSION,
                        kept_bytes = tail.len(),
                        "upgrading the log's format version"
                    );
                } else if bytes.is_some() {
                    info!(
                        file = %paths.log.display(),
                        snapshot_seq = seq,
                        kept_bytes = tail.len(),
                        "rewriting the log after an interrupted compaction"
                    );
                }
                let file = publish_file(
                    &paths.dir,
                    &paths.log_tmp,
                    &paths.log,
                    &[&log_header(seq), tail],
                )
                .map_err(log_err)?;
                Ok((file, (FILE_HEADER_LEN + tail.len()) as u64))
            }
        }
    }

    fn open_read_only(
        paths: Arc<Paths>,
        options: NativeStoreOptions,
        started: Instant,
    ) -> Result<Self> {
        let mut attempt = 0;
        let recovered = loop {
            attempt += 1;
            let snapshot = read_snapshot_file(&paths.snapshot)?;
            let log = read_log_file(&paths.log)?;
            // The owner may have published a new snapshot and log between the two reads.
            let log_ahead = match (&snapshot, &log) {
                (Some(snapshot), Some(log)) => format::decode_file_header(log, &LOG_MAGIC)
                    .is_ok_and(|(base, _)| base > snapshot.seq),
                (None, Some(_)) => true,
                _ => false,
            };
            if log_ahead && attempt < READ_ONLY_ATTEMPTS {
                std::thread::sleep(std::time::Duration::from_millis(5 * attempt as u64));
                continue;
            }
            break recover(snapshot, log.as_deref(), &names(&paths))?;
        };
        info!(
            dir = %paths.dir.display(),
            seq = recovered.state.seq,
            keys = recovered.state.key_count(),
            torn_tail = recovered.torn.is_some(),
            millis = started.elapsed().as_millis() as u64,
            "opened native store read-only"
        );
        Ok(Self {
            paths,
            options,
            state: Arc::new(RwLock::new(recovered.state)),
            committer: None,
            notice: None,
            closed: AtomicBool::new(false),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.paths.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &NativeStoreOptions {
        &self.options
    }

    /// Sequence number of the last committed batch (0 for a new store). Counts every
    /// non-empty commit since the store was created.
    pub fn last_seq(&self) -> u64 {
        self.state.read().seq
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AuthError::Closed);
        }
        Ok(())
    }

    fn committer(&self) -> Result<&Arc<Committer>> {
        self.check_open()?;
        self.committer.as_ref().ok_or_else(|| AuthError::ReadOnly {
            resource: format!("native store {}", self.paths.dir.display()),
        })
    }

    /// Compacts now: writes a snapshot of the current state and starts a new log. Returns once
    /// the snapshot is published. Compaction also runs by itself (see [`NativeStoreOptions`]).
    pub async fn compact(&self) -> Result<()> {
        let committer = self.committer()?;
        if committer.is_closed() {
            return Err(AuthError::Closed);
        }
        let (reply, rx) = oneshot::channel();
        crate::compaction::request(&committer.writer().0, reply);
        rx.await.map_err(|_| AuthError::Closed)?
    }
}

/// Closes a dropped store; a failure has no one to go to but the log.
fn close_dropped(committer: &Arc<Committer>) {
    if let Err(e) = commit::close(committer) {
        warn!(error = %e, "closing a dropped native store failed");
    }
}

impl Drop for NativeStore {
    fn drop(&mut self) {
        let Some(committer) = self.committer.take() else {
            return;
        };
        if self.closed.swap(true, Ordering::SeqCst) {
            // `close` already did (or is doing) the work.
            return;
        }
        // Never blocks a runtime thread; an opener in this process waits for the lock.
        wa_store_fs::blocking::close_dropped(self.notice.as_ref(), move || {
            close_dropped(&committer);
        });
    }
}

#[async_trait]
impl Persistence for NativeStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("native")
            .atomic_commit(true)
            .durability(match self.options.durability {
                Durability::Full => wa_auth::Durability::OnCommit,
                Durability::NoSync => wa_auth::Durability::OnFlush,
            })
            .persistent(true)
            .read_only(self.committer.is_none())
    }

    async fn load_creds(&self) -> Result<Option<AuthCreds>> {
        self.check_open()?;
        Ok(self
            .state
            .read()
            .creds
            .as_ref()
            .map(|c| (*c.decoded).clone()))
    }

    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
        self.check_open()?;
        let mut found: Vec<(KeyId, Bytes)> = {
            let state = self.state.read();
            let Some(entries) = state.keys.get(kind) else {
                return Ok(Vec::new());
            };
            ids.iter()
                .filter_map(|id| entries.get_key_value(id))
                .map(|(id, value)| (id.clone(), value.clone()))
                .collect()
        };
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        found
            .into_iter()
            .map(|(id, bytes)| {
                let value = decode_binary(kind, &id, &bytes).map_err(|e| {
                    e.located(|| format!("native store {}", self.paths.dir.display()))
                })?;
                Ok((id, value))
            })
            .collect()
    }

    async fn list(&self, kind: &KeyKind) -> Result<Vec<KeyId>> {
        self.check_open()?;
        Ok(self
            .state
            .read()
            .keys
            .get(kind)
            .map(|entries| entries.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn kinds(&self) -> Result<Vec<KeyKind>> {
        self.check_open()?;
        Ok(self.state.read().keys.keys().cloned().collect())
    }

    async fn commit(&self, batch: WriteBatch) -> Result<()> {
        let committer = self.committer()?;
        if batch.is_empty() {
            return Ok(());
        }
        // Checked before joining a group. A small batch is encoded first too, so the group's
        // leader only writes; a big one is written while threads encode it (`crate::stream`).
        let keys = batch.key_count();
        let item = if keys >= STREAM_MIN_KEYS {
            Pending::Streamed(offload("native", move || StreamedBatch::start(batch)).await?)
        } else if keys > OFFLOAD_ENCODE_KEYS {
            Pending::Encoded(offload("native", move || EncodedBatch::encode(batch)).await?)
        } else {
            Pending::Encoded(EncodedBatch::encode(batch)?)
        };
        committer.commit(item).await
    }

    async fn flush(&self) -> Result<()> {
        self.check_open()?;
        let Some(committer) = &self.committer else {
            return Ok(());
        };
        if self.options.durability == Durability::Full {
            return Ok(());
        }
        if committer.is_closed() {
            return Err(AuthError::Closed);
        }
        let shared = committer.writer().0.clone();
        wa_store_fs::blocking::run("native", move || commit::flush(&shared)).await?
    }

    /// Writes the commits already queued, stops a compaction in progress, syncs the log and
    /// releases the directory lock before it returns; the work runs on tokio's blocking pool.
    /// Idempotent; later operations fail with [`AuthError::Closed`].
    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let Some(committer) = &self.committer else {
            return Ok(());
        };
        let committer = committer.clone();
        offload("native", move || commit::close(&committer)).await
    }
}
