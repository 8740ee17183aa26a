//! The commit path: the log writer behind the store's [`GroupCommit`].
//!
//! A committer encodes its batch on its own task, then joins the open group; the leader of a
//! group (the first committer to find no write in progress, see [`wa_store_fs::group`]) writes
//! the whole group as ONE log frame with one `write` and one `fdatasync`, applies its batches to
//! the in-memory state in order and only then lets its members return. No dedicated writer
//! thread, no hop to one and back: a lone committer pays its encoding, one write and one sync.
//! A big batch joins while threads still encode it ([`crate::stream`]): its group is written
//! in parts, each segment as it is ready, and synced once.
//!
//! A frame that cannot be written or synced is cut off again and the store refuses further
//! writes until reopened (see [`LogWriter::fail_group`]). Compaction (`crate::compaction`)
//! takes the log's lock to start (a consistent copy of the state) and to publish.

use std::fs::File;
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use tracing::{debug, error};
use wa_auth::{AuthError, Result};
use wa_store_fs::write::{WRITEBACK_PIECE, write_all_vectored, write_all_with_writeback};
use wa_store_fs::{DirLock, GroupCommit, GroupWriter};

use crate::compaction::Compactions;
use crate::fault::{self, Op};
use crate::format::{FRAME_HEADER_LEN, FrameHeader};
use crate::layout::Paths;
use crate::options::{Durability, NativeStoreOptions};
use crate::state::{EncodedBatch, State, extend_crc, free_spent};
use crate::stream::{Segment, StreamedBatch};

/// The log file and what goes with it; guarded by [`Shared::log`], held by the leader of a
/// group while it writes, and by compaction while it starts or publishes.
pub(crate) struct Log {
    /// The log, positioned at its end (`len`).
    pub file: File,
    pub len: u64,
    pub snapshot_len: u64,
    pub next_seq: u64,
    /// Written but not yet synced (with [`Durability::NoSync`]).
    pub unsynced: bool,
    /// Set when a write failed: the store refuses writes until reopened.
    pub failed: Option<String>,
}

/// What the leader, compaction and close share.
pub(crate) struct Shared {
    pub paths: Arc<Paths>,
    pub options: NativeStoreOptions,
    pub state: Arc<RwLock<State>>,
    pub log: Mutex<Log>,
    pub compactions: Compactions,
    /// Held while the store is open for writing; released by [`close`].
    pub lock: Mutex<Option<DirLock>>,
}

impl Shared {
    pub(crate) fn unhealthy(reason: &str) -> AuthError {
        AuthError::Unhealthy {
            backend: "native",
            reason: format!("{reason}; reopen the store"),
        }
    }

    /// Refuses further writes.
    pub(crate) fn fail(&self, log: &mut Log, reason: String) {
        error!(dir = %self.paths.dir.display(), %reason, "native store refuses further writes");
        log.failed = Some(reason);
    }

    /// Syncs what was written without a sync ([`Durability::NoSync`]).
    pub(crate) fn sync(&self, log: &mut Log) -> io::Result<()> {
        if log.unsynced {
            let synced =
                fault::check(Op::SyncFile, &self.paths.log).and_then(|()| log.file.sync_data());
            if let Err(e) = synced {
                self.fail(log, format!("syncing the log failed: {e}"));
                return Err(e);
            }
            log.unsynced = false;
        }
        Ok(())
    }
}

/// The [`GroupWriter`] of the native store.
pub(crate) struct LogWriter(pub Arc<Shared>);

/// What a committer hands its group: a batch encoded whole, or a big one being encoded while
/// it is written.
pub(crate) enum Pending {
    Encoded(EncodedBatch),
    Streamed(StreamedBatch),
}

/// The store's commit queue.
pub(crate) type Committer = GroupCommit<LogWriter>;

impl GroupWriter for LogWriter {
    type Item = Pending;
    const BACKEND: &'static str = "native";
    /// Most batches in one frame.
    const MAX_ITEMS: usize = 512;
    /// A group stops taking batches once it holds this many bytes (a frame's length is a
    /// `u32`: this plus one batch of at most `MAX_BATCH_LEN` fits).
    const MAX_WEIGHT: usize = 64 << 20;

    fn weight(item: &Pending) -> usize {
        match item {
            Pending::Encoded(batch) => batch.len,
            // Its length is known once it is written: it closes its group.
            Pending::Streamed(_) => Self::MAX_WEIGHT,
        }
    }

    fn write_group(&self, batches: Vec<Pending>) -> Result<()> {
        let shared = &self.0;
        let mut log = shared.log.lock();
        if let Some(reason) = &log.failed {
            return Err(Shared::unhealthy(reason));
        }
        // A panic half-way (the log lock does not poison) would leave the log and the state
        // in doubt: the store then refuses writes, as after a failed cut-off.
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write_and_apply(shared, &mut log, batches)
        }));
        written.unwrap_or_else(|_| {
            let reason = "a commit panicked while writing the log".to_owned();
            shared.fail(&mut log, reason.clone());
            Err(commit_unknown(&reason))
        })
    }
}

/// The error of a group whose frame may or may not be in the log.
fn commit_unknown(reason: &str) -> AuthError {
    AuthError::CommitUnknown {
        backend: "native",
        reason: format!("{reason}; reopen the store: the batch is then there whole or not at all"),
    }
}

/// Writes the group's frame, then applies its batches to the state in order.
fn write_and_apply(shared: &Arc<Shared>, log: &mut Log, items: Vec<Pending>) -> Result<()> {
    let started = Instant::now();
    let first_seq = log.next_seq;
    let (mut batches, written) = match write_group_frames(shared, log, items) {
        Ok(done) => done,
        Err(e) => return Err(fail_group(shared, log, e)),
    };
    log.unsynced = shared.options.durability != Durability::Full;
    log.len += written;
    log.next_seq += batches.len() as u64;
    let payload_len: usize = batches.iter().map(|b| b.len).sum();
    let (count, keys) = (
        batches.len(),
        batches.iter().map(EncodedBatch::key_count).sum::<usize>(),
    );
    let decoded: Vec<_> = batches
        .iter_mut()
        .flat_map(EncodedBatch::take_decoded)
        .collect();
    let mut spent = Vec::new();
    {
        let mut state = shared.state.write();
        for (seq, batch) in (first_seq..).zip(batches) {
            state.apply(batch, seq, &mut spent);
        }
    }
    free_spent(spent, decoded);
    debug!(
        first_seq,
        batches = count,
        keys,
        bytes = payload_len,
        micros = started.elapsed().as_micros() as u64,
        "group committed"
    );
    crate::compaction::maybe_start(shared, log);
    Ok(())
}

/// Appends the group to the log and, with [`Durability::Full`], syncs it with one
/// `fdatasync`: as ONE frame written with one `write` when every batch is encoded, else in
/// parts, each streamed segment written as soon as it is encoded (with the batches before it).
/// Returns the batches to apply, in order, and the bytes written.
fn write_group_frames(
    shared: &Shared,
    log: &mut Log,
    items: Vec<Pending>,
) -> io::Result<(Vec<EncodedBatch>, u64)> {
    let streamed = items.iter().any(|i| matches!(i, Pending::Streamed(_)));
    let mut frames = FrameWriter {
        shared,
        start: log.len,
        end: log.len,
        first_seq: log.next_seq,
        count: items.len() as u32,
        early_writeback: streamed && shared.options.durability == Durability::Full,
        log,
    };
    let last = items.len().saturating_sub(1);
    let (mut done, mut pending) = (Vec::with_capacity(items.len()), Vec::new());
    for (i, item) in items.into_iter().enumerate() {
        let streamed = match item {
            Pending::Encoded(batch) => {
                pending.push(batch);
                continue;
            }
            Pending::Streamed(streamed) => streamed,
        };
        let mut segments = Vec::with_capacity(streamed.segment_count());
        for k in 0..streamed.segment_count() {
            let segment = streamed.segment(k)?;
            let more = k + 1 < streamed.segment_count() || i < last;
            frames.write(&pending, Some(&segment), more)?;
            done.append(&mut pending);
            segments.push(segment);
        }
        done.push(streamed.finish(segments));
    }
    if !pending.is_empty() {
        frames.write(&pending, None, false)?;
        done.append(&mut pending);
    }
    frames.sync()?;
    Ok((done, frames.end - frames.start))
}

/// Writes the frames of one group after the log's end.
struct FrameWriter<'a> {
    shared: &'a Shared,
    log: &'a mut Log,
    /// Where the group starts, and where its next frame goes.
    start: u64,
    end: u64,
    first_seq: u64,
    count: u32,
    /// Start the writeback of every part as it is written (a group in parts is big).
    early_writeback: bool,
}

impl FrameWriter<'_> {
    /// Appends one frame holding `batches` then `segment`, `more` when the group continues in
    /// the next frame. The bytes go to the kernel from where they were encoded (their checksums
    /// were computed then too: here they are only combined). A big frame, or any part, has its
    /// writeback started as it is written, so that the sync waits for less
    /// ([`write_all_with_writeback`]).
    fn write(
        &mut self,
        batches: &[EncodedBatch],
        segment: Option<&Segment>,
        more: bool,
    ) -> io::Result<()> {
        let mut payload = (0, 0);
        for batch in batches {
            append_crc(&mut payload, batch.crc, batch.len, |f| {
                batch.for_each_piece(f)
            });
        }
        if let Some(segment) = segment {
            append_crc(&mut payload, segment.crc, segment.len, |f| {
                segment.for_each_piece(f)
            });
        }
        let (payload_crc, payload_len) = payload;
        let header = FrameHeader {
            payload_len: u32::try_from(payload_len).map_err(|_| too_long())?,
            count: self.count,
            first_seq: self.first_seq,
            payload_crc,
            more,
        }
        .encode();
        let mut slices = Vec::with_capacity(1 + 4 * batches.len());
        slices.push(IoSlice::new(&header));
        for batch in batches {
            batch.for_each_piece(|piece| slices.push(IoSlice::new(piece)));
        }
        if let Some(segment) = segment {
            segment.for_each_piece(|piece| slices.push(IoSlice::new(piece)));
        }
        self.write_slices(&mut slices, FRAME_HEADER_LEN + payload_len)
    }

    fn write_slices(&mut self, slices: &mut [IoSlice<'_>], len: usize) -> io::Result<()> {
        let path = &self.shared.paths.log;
        let file = &mut self.log.file;
        if let Err(e) = fault::check(Op::Write, path) {
            // As a disk that fills up mid-write: part of the frame reaches the file.
            let frame: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
            let _ = file.write_all(&frame[..frame.len() / 2]);
            return Err(e);
        }
        let durable = self.shared.options.durability == Durability::Full;
        if self.early_writeback || (durable && len >= 2 * WRITEBACK_PIECE) {
            // The disk starts on the first pieces while the rest is copied.
            write_all_with_writeback(file, self.end, slices)?;
        } else {
            write_all_vectored(file, slices)?;
        }
        self.end += len as u64;
        Ok(())
    }

    /// Makes the group durable, with [`Durability::Full`].
    fn sync(&mut self) -> io::Result<()> {
        if self.shared.options.durability == Durability::Full {
            fault::check(Op::SyncFile, &self.shared.paths.log)?;
            self.log.file.sync_data()?;
        }
        Ok(())
    }
}

/// Extends `acc`, the crc32c and length of a payload so far, by `len` bytes with checksum
/// `crc` (which `pieces` calls its argument with).
fn append_crc<'a>(
    acc: &mut (u32, usize),
    crc: u32,
    len: usize,
    pieces: impl FnOnce(&mut dyn FnMut(&'a [u8])),
) {
    acc.0 = match acc.1 {
        0 => crc,
        _ => extend_crc(acc.0, crc, len, pieces),
    };
    acc.1 += len;
}

/// A frame's payload did not fit its `u32` length (a streamed segment of more than 4 GiB).
fn too_long() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "a log frame would exceed 4 GiB; split the batch",
    )
}

/// A frame could not be written or synced: cut it off, refuse further writes, and tell each
/// committer the truth. With the cut-off durable, the batches are gone for good (`Io`); when
/// it fails too, they may be found (whole) after a reopen (`CommitUnknown`).
fn fail_group(shared: &Shared, log: &mut Log, e: io::Error) -> AuthError {
    match cut_off(shared, log) {
        Ok(()) => {
            shared.fail(log, format!("writing the log failed: {e}"));
            AuthError::io(&shared.paths.log, e)
        }
        Err(cut) => {
            let reason =
                format!("writing the log failed: {e}; removing the failed write failed too: {cut}");
            shared.fail(log, reason.clone());
            commit_unknown(&reason)
        }
    }
}

/// Truncates the log back to the end of its last good frame and syncs the truncation, so that
/// nothing of a failed write can reappear after a crash or power loss.
fn cut_off(shared: &Shared, log: &mut Log) -> io::Result<()> {
    let path = &shared.paths.log;
    fault::check(Op::Truncate, path)?;
    log.file.set_len(log.len)?;
    log.file.seek(SeekFrom::Start(log.len))?;
    fault::check(Op::SyncFile, path)?;
    log.file.sync_all()
}

/// Syncs the log (for [`Durability::NoSync`]): everything committed so far becomes durable.
pub(crate) fn flush(shared: &Shared) -> Result<()> {
    let mut log = shared.log.lock();
    if let Some(reason) = &log.failed {
        return Err(Shared::unhealthy(reason));
    }
    shared
        .sync(&mut log)
        .map_err(|e| AuthError::io(&shared.paths.log, e))
}

/// Closes the store for writing: refuses new commits, writes those already queued, stops a
/// compaction in progress, syncs the log and releases the directory lock (also when the sync
/// fails, which is then returned). Blocking; idempotent.
pub(crate) fn close(committer: &Arc<Committer>) -> Result<()> {
    committer.close_blocking();
    let shared = &committer.writer().0;
    shared.compactions.cancel_and_join();
    let synced = {
        let mut log = shared.log.lock();
        match log.failed {
            Some(_) => Ok(()),
            None => shared
                .sync(&mut log)
                .map_err(|e| AuthError::io(&shared.paths.log, e)),
        }
    };
    if shared.lock.lock().take().is_some() {
        debug!(dir = %shared.paths.dir.display(), "native store closed");
    }
    synced
}
