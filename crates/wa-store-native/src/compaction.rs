//! Compaction: when the log outgrows its threshold, a helper thread copies the live state
//! (cheap: values are reference-counted) under the log's lock, then writes it as the snapshot's
//! temp file and syncs it while commits go on. The helper then takes the log's lock, renames
//! the snapshot into place (and syncs the directory), and rewrites the log to hold only the
//! frames written since the copy (temp file, synced, renamed, directory synced). Every instant
//! in between recovers to the same state: see `recovery`.

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::{info, warn};
use wa_auth::{AuthError, Result};
use wa_store_fs::{replace_file, sync_dir};

use crate::commit::{Log, Shared};
use crate::fault::{self, Op};
use crate::format::FILE_HEADER_LEN;
use crate::log::log_header;
use crate::snapshot::write_snapshot;
use crate::state::Keys;

type Waiter = oneshot::Sender<Result<()>>;

/// The compaction in progress, if any, and when to try again after a failed one.
#[derive(Default)]
pub(crate) struct Compactions {
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    running: Option<Running>,
    /// The log size past which to retry after a failed compaction (0: the normal threshold).
    retry_at: u64,
    /// The store is closing: no compaction starts or publishes.
    closed: bool,
}

struct Running {
    /// The batch the snapshot is taken at, and the log's length then (set by the compaction
    /// thread when it copies the state).
    seq: u64,
    log_offset: u64,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    waiters: Vec<Waiter>,
    started: Instant,
}

impl Compactions {
    /// Stops a compaction in progress (its temp file is removed) and waits for its thread;
    /// no compaction starts afterwards.
    pub(crate) fn cancel_and_join(&self) {
        let thread = {
            let mut slot = self.slot.lock();
            slot.closed = true;
            slot.running.as_mut().and_then(|running| {
                running.cancel.store(true, Ordering::Relaxed);
                running.thread.take()
            })
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Starts a compaction when the log (`log`, locked by the caller) outgrew its threshold.
pub(crate) fn maybe_start(shared: &Arc<Shared>, log: &mut Log) {
    if log.failed.is_some() {
        return;
    }
    let mut slot = shared.compactions.slot.lock();
    if slot.running.is_some() || slot.closed {
        return;
    }
    let threshold = shared
        .options
        .compaction_threshold(log.snapshot_len)
        .max(slot.retry_at);
    if log.len - FILE_HEADER_LEN as u64 > threshold {
        start(shared, log, &mut slot, Vec::new());
    }
}

/// Compacts now; `reply` is told once the snapshot is published (or why not).
pub(crate) fn request(shared: &Arc<Shared>, reply: Waiter) {
    let log = shared.log.lock();
    if let Some(reason) = &log.failed {
        let _ = reply.send(Err(Shared::unhealthy(reason)));
        return;
    }
    let mut slot = shared.compactions.slot.lock();
    if slot.closed {
        let _ = reply.send(Err(AuthError::Closed));
    } else if let Some(running) = &mut slot.running {
        running.waiters.push(reply);
    } else {
        start(shared, &log, &mut slot, vec![reply]);
    }
}

fn start(shared: &Arc<Shared>, log: &Log, slot: &mut Slot, waiters: Vec<Waiter>) {
    let cancel = Arc::new(AtomicBool::new(false));
    let thread_cancel = cancel.clone();
    let thread_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("wa-native-compact".into())
        .spawn(move || {
            let shared = thread_shared;
            if thread_cancel.load(Ordering::Relaxed) {
                let cancelled = io::Error::new(io::ErrorKind::Interrupted, "compaction cancelled");
                return finish(&shared, Err(cancelled));
            }
            let (seq, creds, keys) = copy_state(&shared);
            let tmp = &shared.paths.snapshot_tmp;
            let result = write_snapshot(tmp, seq, creds.as_ref(), &keys, &thread_cancel);
            drop(keys);
            finish(&shared, result);
        });
    match spawned {
        Ok(thread) => {
            // Where the copy is taken is known once the thread has it (see `copy_state`).
            slot.running = Some(Running {
                seq: 0,
                log_offset: log.len,
                cancel,
                thread: Some(thread),
                waiters,
                started: Instant::now(),
            });
        }
        Err(e) => {
            warn!(error = %e, "could not start the compaction thread");
            let error = AuthError::io(&shared.paths.snapshot_tmp, e);
            for reply in waiters {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// On the compaction thread: copies the live state (values are reference-counted, the ids
/// are copied) under the log's lock, where it is exactly the log's content up to `log.len`,
/// and records that point in the running compaction. Done here, not by the committer whose
/// commit started the compaction: its commit would wait for the copy (2–5 ms for 10,000 keys).
fn copy_state(shared: &Shared) -> (u64, Option<Bytes>, Keys) {
    let log = shared.log.lock();
    let (seq, creds, keys) = {
        let state = shared.state.read();
        let creds = state.creds.as_ref().map(|c| c.raw.clone());
        (state.seq, creds, state.keys.clone())
    };
    if let Some(running) = &mut shared.compactions.slot.lock().running {
        running.seq = seq;
        running.log_offset = log.len;
    }
    info!(
        dir = %shared.paths.dir.display(),
        seq,
        log_bytes = log.len,
        snapshot_bytes = log.snapshot_len,
        "compacting the log into a new snapshot"
    );
    (seq, creds, keys)
}

/// On the compaction thread, once the snapshot's temp file is written (or not): publishes it
/// under the log's lock and tells the waiters.
fn finish(shared: &Shared, result: io::Result<u64>) {
    let mut log = shared.log.lock();
    let (running, closed) = {
        let mut slot = shared.compactions.slot.lock();
        (slot.running.take(), slot.closed)
    };
    let Some(running) = running else {
        return;
    };
    let tmp = &shared.paths.snapshot_tmp;
    let outcome = match result {
        // A store that refuses writes (or is closing) publishes nothing.
        Ok(_) if log.failed.is_some() || closed => {
            let _ = fs::remove_file(tmp);
            Err(match &log.failed {
                Some(reason) => Shared::unhealthy(reason),
                None => AuthError::Closed,
            })
        }
        Ok(snapshot_len) => publish(shared, &mut log, &running, snapshot_len),
        Err(e) => {
            let _ = fs::remove_file(tmp);
            Err(AuthError::io(tmp, e))
        }
    };
    let mut slot = shared.compactions.slot.lock();
    match &outcome {
        Ok(()) => {
            // Back to the normal threshold after a failed attempt raised it.
            slot.retry_at = 0;
            info!(
                dir = %shared.paths.dir.display(),
                seq = running.seq,
                snapshot_bytes = log.snapshot_len,
                log_bytes = log.len,
                millis = running.started.elapsed().as_millis() as u64,
                "compaction done"
            );
        }
        Err(e) => {
            // The store stays correct (every state in between recovers); try again later.
            slot.retry_at = (log.len - FILE_HEADER_LEN as u64)
                + shared.options.compaction_threshold(log.snapshot_len);
            warn!(dir = %shared.paths.dir.display(), error = %e, "compaction failed");
        }
    }
    let outcome = outcome.map_err(|e| match e {
        AuthError::Closed => AuthError::Closed,
        e => AuthError::backend("native", format!("compaction failed: {e}")),
    });
    for reply in running.waiters {
        let _ = reply.send(outcome.clone());
    }
}

/// Publishes the snapshot (of `snapshot_len` bytes) of the running compaction, then rewrites
/// the log to start after it.
fn publish(shared: &Shared, log: &mut Log, running: &Running, snapshot_len: u64) -> Result<()> {
    let (seq, log_offset) = (running.seq, running.log_offset);
    let paths = &shared.paths;
    let io_err = |path: &std::path::Path| {
        let path = path.to_owned();
        move |e: io::Error| AuthError::io(path, e)
    };
    // The snapshot must never be ahead of the durable log (matters with NoSync).
    shared.sync(log).map_err(io_err(&paths.log))?;
    let renamed = fault::check(Op::Rename, &paths.snapshot_tmp)
        .and_then(|()| fs::rename(&paths.snapshot_tmp, &paths.snapshot));
    if let Err(e) = renamed {
        let _ = fs::remove_file(&paths.snapshot_tmp);
        return Err(AuthError::io(&paths.snapshot, e));
    }
    // Until the rename is durable the old log must keep every frame: stop here on error.
    sync_dir(&paths.dir).map_err(io_err(&paths.dir))?;
    log.snapshot_len = snapshot_len;

    let mut tail = vec![0u8; (log.len - log_offset) as usize];
    log.file
        .read_exact_at(&mut tail, log_offset)
        .map_err(io_err(&paths.log))?;
    let header = log_header(seq);
    let file =
        replace_file(&paths.log_tmp, &paths.log, &[&header, &tail]).map_err(io_err(&paths.log))?;
    if let Err(e) = sync_dir(&paths.dir) {
        // Whether `log` is the old or the new file after a power loss is unknown, and new
        // frames would go to only one of them: stop writing.
        shared.fail(
            log,
            format!("syncing the directory after rewriting the log failed: {e}"),
        );
        return Err(AuthError::io(&paths.dir, e));
    }
    log.file = file;
    log.len = (FILE_HEADER_LEN + tail.len()) as u64;
    Ok(())
}
