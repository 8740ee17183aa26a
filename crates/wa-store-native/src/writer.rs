//! The writer thread: the only code that writes the log. It owns the log file and the
//! directory lock, takes commits from a channel, and makes them durable in groups.
//!
//! Group commit: the thread blocks for the first message, then takes every message already
//! queued (up to [`MAX_GROUP`] batches or [`MAX_GROUP_BYTES`]) without waiting for more, writes
//! them as ONE frame with one `write`, makes it durable with one `fdatasync`, applies the batches
//! to the in-memory state in order and only then acknowledges each committer. While it syncs,
//! new commits queue up and form the next group, so N concurrent committers share a sync instead
//! of waiting for N of them. No task of the async runtime ever blocks on the disk.
//!
//! Compaction: when the log outgrows its threshold, the thread copies the live state (cheap:
//! values are reference-counted) and a helper thread writes it as `snapshot.tmp` and syncs it,
//! while commits go on. Back on the writer thread, the snapshot is renamed into place (and the
//! directory synced), then the log is rewritten to hold only the frames written since the copy
//! (`log.tmp`, synced, renamed, directory synced). Every instant in between recovers to the same
//! state: see `recovery`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::fault::{self, Op};
use parking_lot::RwLock;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};
use wa_auth::folder::sync_dir;
use wa_auth::{AuthError, Result};

use crate::format::{FILE_HEADER_LEN, FRAME_HEADER_LEN, FrameHeader};
use crate::log::{log_header, write_all_vectored};
use crate::options::{Durability, NativeStoreOptions};
use crate::snapshot::write_snapshot;
use crate::state::{EncodedBatch, State};
use wa_auth::dir_lock::DirLock;

/// Most batches in one frame.
pub(crate) const MAX_GROUP: usize = 512;
/// A group stops taking batches once it holds this many bytes.
pub(crate) const MAX_GROUP_BYTES: usize = 64 << 20;

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
            snapshot: dir.join("snapshot"),
            snapshot_tmp: dir.join("snapshot.tmp"),
            log: dir.join("log"),
            log_tmp: dir.join("log.tmp"),
            dir,
        }
    }
}

/// Publishes `content` at `path` atomically: `tmp` written (0600), synced, renamed over `path`,
/// directory synced. Returns the open file (positioned at its end).
pub(crate) fn publish_file(
    dir: &std::path::Path,
    tmp: &std::path::Path,
    path: &std::path::Path,
    content: &[&[u8]],
) -> io::Result<File> {
    let file = replace_file(tmp, path, content)?;
    sync_dir(dir)?;
    Ok(file)
}

/// [`publish_file`] without the directory sync, for callers that must treat its failure
/// differently: `tmp` written (0600), synced and renamed over `path` (removed on failure).
fn replace_file(
    tmp: &std::path::Path,
    path: &std::path::Path,
    content: &[&[u8]],
) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)?;
    let written = fault::check(Op::Write, tmp)
        .and_then(|()| content.iter().try_for_each(|part| file.write_all(part)))
        .and_then(|()| fault::check(Op::SyncFile, tmp))
        .and_then(|()| file.sync_data())
        .and_then(|()| fault::check(Op::Rename, tmp))
        .and_then(|()| fs::rename(tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    Ok(file)
}

/// A message to the writer thread.
pub(crate) enum Msg {
    /// Make a batch durable and apply it.
    Commit {
        batch: EncodedBatch,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Sync the log (for [`Durability::NoSync`]).
    Flush { reply: oneshot::Sender<Result<()>> },
    /// Compact now; reply when the new snapshot is published.
    Compact { reply: oneshot::Sender<Result<()>> },
    /// The compaction thread finished writing `snapshot.tmp`.
    Compacted { result: io::Result<u64> },
    /// Stop after the messages queued before this one.
    Shutdown,
}

struct Compaction {
    seq: u64,
    log_offset: u64,
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    waiters: Vec<oneshot::Sender<Result<()>>>,
    started: Instant,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub paths: Arc<Paths>,
    pub options: NativeStoreOptions,
    pub state: Arc<RwLock<State>>,
    pub rx: Receiver<Msg>,
    pub tx: Sender<Msg>,
    /// The log, positioned at its end (`log_len`).
    pub log: File,
    pub log_len: u64,
    pub snapshot_len: u64,
    pub next_seq: u64,
    pub lock: DirLock,
    unsynced: bool,
    failed: Option<String>,
    compaction: Option<Compaction>,
    retry_compaction_at: u64,
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        paths: Arc<Paths>,
        options: NativeStoreOptions,
        state: Arc<RwLock<State>>,
        (tx, rx): (Sender<Msg>, Receiver<Msg>),
        log: File,
        log_len: u64,
        snapshot_len: u64,
        lock: DirLock,
    ) -> Self {
        let next_seq = state.read().seq + 1;
        Self {
            paths,
            options,
            state,
            rx,
            tx,
            log,
            log_len,
            snapshot_len,
            next_seq,
            lock,
            unsynced: false,
            failed: None,
            compaction: None,
            retry_compaction_at: 0,
        }
    }

    /// Runs until shutdown (or until every store handle is gone).
    pub(crate) fn run(mut self) {
        self.maybe_compact();
        while let Ok(first) = self.rx.recv() {
            let mut commits = Vec::new();
            let mut flushes = Vec::new();
            let mut group_bytes = 0;
            let mut shutdown = false;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Commit { batch, reply } => {
                        group_bytes += batch.bytes.len();
                        commits.push((batch, reply));
                    }
                    Msg::Flush { reply } => flushes.push(reply),
                    Msg::Compact { reply } => self.request_compaction(reply),
                    Msg::Compacted { result } => self.finish_compaction(result),
                    Msg::Shutdown => {
                        shutdown = true;
                        break;
                    }
                }
                if commits.len() >= MAX_GROUP || group_bytes >= MAX_GROUP_BYTES {
                    break;
                }
                next = self.rx.try_recv().ok();
            }
            if !commits.is_empty() {
                self.commit_group(commits);
            }
            if !flushes.is_empty() {
                let result = self.sync().map_err(|e| AuthError::io(&self.paths.log, e));
                for reply in flushes {
                    let _ = reply.send(result.clone());
                }
            }
            if shutdown {
                break;
            }
            self.maybe_compact();
        }
        self.shutdown();
    }

    fn unhealthy(&self) -> Option<AuthError> {
        self.failed.as_ref().map(|reason| AuthError::Unhealthy {
            backend: "native",
            reason: format!("{reason}; reopen the store"),
        })
    }

    fn fail(&mut self, reason: String) {
        error!(dir = %self.paths.dir.display(), %reason, "native store refuses further writes");
        self.failed = Some(reason);
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            let synced =
                fault::check(Op::SyncFile, &self.paths.log).and_then(|()| self.log.sync_data());
            if let Err(e) = synced {
                self.fail(format!("syncing the log failed: {e}"));
                return Err(e);
            }
            self.unsynced = false;
        }
        Ok(())
    }

    fn commit_group(&mut self, commits: Vec<(EncodedBatch, oneshot::Sender<Result<()>>)>) {
        if let Some(err) = self.unhealthy() {
            for (_, reply) in commits {
                let _ = reply.send(Err(err.clone()));
            }
            return;
        }
        let started = Instant::now();
        let first_seq = self.next_seq;
        let count = commits.len();
        let payload_len: usize = commits.iter().map(|(batch, _)| batch.bytes.len()).sum();
        if let Err(e) = self.write_frame(&commits, first_seq) {
            self.fail_group(commits, e);
            return;
        }
        self.unsynced = self.options.durability != Durability::Full;
        self.log_len += (FRAME_HEADER_LEN + payload_len) as u64;
        self.next_seq += count as u64;
        {
            let mut state = self.state.write();
            for (i, (batch, _)) in commits.iter().enumerate() {
                state.apply(batch, first_seq + i as u64);
            }
        }
        let keys: usize = commits.iter().map(|(b, _)| b.key_count()).sum();
        for (_, reply) in commits {
            let _ = reply.send(Ok(()));
        }
        debug!(
            first_seq,
            batches = count,
            keys,
            bytes = payload_len,
            micros = started.elapsed().as_micros() as u64,
            "group committed"
        );
    }

    /// Appends `commits` to the log as ONE frame with one `write` and, with
    /// [`Durability::Full`], one `fdatasync`.
    fn write_frame(
        &mut self,
        commits: &[(EncodedBatch, oneshot::Sender<Result<()>>)],
        first_seq: u64,
    ) -> io::Result<()> {
        let mut payload_crc = 0;
        let mut payload_len = 0usize;
        for (batch, _) in commits {
            payload_crc = crc32c::crc32c_append(payload_crc, &batch.bytes);
            payload_len += batch.bytes.len();
        }
        let header = FrameHeader {
            // A group holds at most MAX_GROUP_BYTES plus one batch of at most MAX_BATCH_LEN.
            payload_len: payload_len as u32,
            count: commits.len() as u32,
            first_seq,
            payload_crc,
        }
        .encode();
        let mut slices = Vec::with_capacity(commits.len() + 1);
        slices.push(IoSlice::new(&header));
        slices.extend(commits.iter().map(|(batch, _)| IoSlice::new(&batch.bytes)));
        if let Err(e) = fault::check(Op::Write, &self.paths.log) {
            // As a disk that fills up mid-write: part of the frame reaches the file.
            let frame: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
            let _ = self.log.write_all(&frame[..frame.len() / 2]);
            return Err(e);
        }
        write_all_vectored(&mut self.log, &mut slices)?;
        if self.options.durability == Durability::Full {
            fault::check(Op::SyncFile, &self.paths.log)?;
            self.log.sync_data()?;
        }
        Ok(())
    }

    /// A frame could not be written or synced: cut it off, refuse further writes, and tell each
    /// committer the truth. With the cut-off durable, the batches are gone for good (`Io`);
    /// when it fails too, they may be found (whole) after a reopen (`CommitUnknown`).
    fn fail_group(
        &mut self,
        commits: Vec<(EncodedBatch, oneshot::Sender<Result<()>>)>,
        e: io::Error,
    ) {
        let cut_off = self.cut_off();
        let reason = match &cut_off {
            Ok(()) => format!("writing the log failed: {e}"),
            Err(cut) => {
                format!("writing the log failed: {e}; removing the failed write failed too: {cut}")
            }
        };
        self.fail(reason.clone());
        let not_applied = AuthError::io(&self.paths.log, e);
        for (_, reply) in commits {
            let error = match &cut_off {
                Ok(()) => not_applied.clone(),
                Err(_) => AuthError::CommitUnknown {
                    backend: "native",
                    reason: format!(
                        "{reason}; reopen the store: the batch is then there whole or not at all"
                    ),
                },
            };
            let _ = reply.send(Err(error));
        }
    }

    /// Truncates the log back to the end of its last good frame and syncs the truncation, so
    /// that nothing of a failed write can reappear after a crash or power loss.
    fn cut_off(&mut self) -> io::Result<()> {
        fault::check(Op::Truncate, &self.paths.log)?;
        self.log.set_len(self.log_len)?;
        self.log.seek(SeekFrom::Start(self.log_len))?;
        fault::check(Op::SyncFile, &self.paths.log)?;
        self.log.sync_all()
    }

    fn maybe_compact(&mut self) {
        if self.failed.is_some() || self.compaction.is_some() {
            return;
        }
        let threshold = self
            .options
            .compaction_threshold(self.snapshot_len)
            .max(self.retry_compaction_at);
        if self.log_len - FILE_HEADER_LEN as u64 > threshold {
            self.start_compaction(Vec::new());
        }
    }

    fn request_compaction(&mut self, reply: oneshot::Sender<Result<()>>) {
        if let Some(err) = self.unhealthy() {
            let _ = reply.send(Err(err));
        } else if let Some(compaction) = &mut self.compaction {
            compaction.waiters.push(reply);
        } else {
            self.start_compaction(vec![reply]);
        }
    }

    fn start_compaction(&mut self, waiters: Vec<oneshot::Sender<Result<()>>>) {
        let (seq, creds, keys) = {
            let state = self.state.read();
            (
                state.seq,
                state.creds.as_ref().map(|c| c.raw.clone()),
                state.keys.clone(),
            )
        };
        info!(
            dir = %self.paths.dir.display(),
            seq,
            log_bytes = self.log_len,
            snapshot_bytes = self.snapshot_len,
            "compacting the log into a new snapshot"
        );
        let cancel = Arc::new(AtomicBool::new(false));
        let thread_cancel = cancel.clone();
        let tx = self.tx.clone();
        let tmp = self.paths.snapshot_tmp.clone();
        let spawned = std::thread::Builder::new()
            .name("wa-native-compact".into())
            .spawn(move || {
                let result = write_snapshot(&tmp, seq, creds.as_ref(), &keys, &thread_cancel);
                drop(keys);
                let _ = tx.send(Msg::Compacted { result });
            });
        match spawned {
            Ok(thread) => {
                self.compaction = Some(Compaction {
                    seq,
                    log_offset: self.log_len,
                    cancel,
                    thread,
                    waiters,
                    started: Instant::now(),
                });
            }
            Err(e) => {
                warn!(error = %e, "could not start the compaction thread");
                let error = AuthError::io(&self.paths.snapshot_tmp, e);
                for reply in waiters {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }

    fn finish_compaction(&mut self, result: io::Result<u64>) {
        let Some(compaction) = self.compaction.take() else {
            return;
        };
        let _ = compaction.thread.join();
        let outcome = match result {
            // A store that refuses writes publishes nothing either.
            Ok(_) if self.failed.is_some() => {
                let _ = fs::remove_file(&self.paths.snapshot_tmp);
                Err(self.unhealthy().unwrap_or(AuthError::Closed))
            }
            Ok(snapshot_len) => self.publish(compaction.seq, compaction.log_offset, snapshot_len),
            Err(e) => {
                let _ = fs::remove_file(&self.paths.snapshot_tmp);
                Err(AuthError::io(&self.paths.snapshot_tmp, e))
            }
        };
        match &outcome {
            Ok(()) => {
                // Back to the normal threshold after a failed attempt raised it.
                self.retry_compaction_at = 0;
                info!(
                    dir = %self.paths.dir.display(),
                    seq = compaction.seq,
                    snapshot_bytes = self.snapshot_len,
                    log_bytes = self.log_len,
                    millis = compaction.started.elapsed().as_millis() as u64,
                    "compaction done"
                );
            }
            Err(e) => {
                // The store stays correct (every state in between recovers); try again later.
                self.retry_compaction_at = (self.log_len - FILE_HEADER_LEN as u64)
                    + self.options.compaction_threshold(self.snapshot_len);
                warn!(dir = %self.paths.dir.display(), error = %e, "compaction failed");
            }
        }
        for reply in compaction.waiters {
            let _ = reply.send(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(AuthError::backend(
                    "native",
                    format!("compaction failed: {e}"),
                )),
            });
        }
    }

    /// Publishes the snapshot of batch `seq` (taken when the log was `log_offset` long), then
    /// rewrites the log to start after it.
    fn publish(&mut self, seq: u64, log_offset: u64, snapshot_len: u64) -> Result<()> {
        let paths = self.paths.clone();
        let io_err = |path: &std::path::Path| {
            let path = path.to_owned();
            move |e: io::Error| AuthError::io(path, e)
        };
        // The snapshot must never be ahead of the durable log (matters with NoSync).
        self.sync().map_err(io_err(&paths.log))?;
        let renamed = fault::check(Op::Rename, &paths.snapshot_tmp)
            .and_then(|()| fs::rename(&paths.snapshot_tmp, &paths.snapshot));
        if let Err(e) = renamed {
            let _ = fs::remove_file(&paths.snapshot_tmp);
            return Err(AuthError::io(&paths.snapshot, e));
        }
        // Until the rename is durable the old log must keep every frame: stop here on error.
        sync_dir(&paths.dir).map_err(io_err(&paths.dir))?;
        self.snapshot_len = snapshot_len;

        let mut tail = vec![0u8; (self.log_len - log_offset) as usize];
        self.log
            .read_exact_at(&mut tail, log_offset)
            .map_err(io_err(&paths.log))?;
        let header = log_header(seq);
        let file = replace_file(&paths.log_tmp, &paths.log, &[&header, &tail])
            .map_err(io_err(&paths.log))?;
        if let Err(e) = sync_dir(&paths.dir) {
            // Whether `log` is the old or the new file after a power loss is unknown, and new
            // frames would go to only one of them: stop writing.
            self.fail(format!(
                "syncing the directory after rewriting the log failed: {e}"
            ));
            return Err(AuthError::io(&paths.dir, e));
        }
        self.log = file;
        self.log_len = (FILE_HEADER_LEN + tail.len()) as u64;
        Ok(())
    }

    fn shutdown(mut self) {
        if let Some(compaction) = self.compaction.take() {
            compaction.cancel.store(true, Ordering::Relaxed);
            let _ = compaction.thread.join();
            let _ = fs::remove_file(&self.paths.snapshot_tmp);
            for reply in compaction.waiters {
                let _ = reply.send(Err(AuthError::Closed));
            }
        }
        if self.failed.is_none()
            && let Err(e) = self.sync()
        {
            warn!(error = %e, "syncing the log at close failed");
        }
        debug!(dir = %self.paths.dir.display(), "native store writer stopped");
        drop(self.lock);
    }
}
