//! Big batches written while they are encoded.
//!
//! Encoding 10,000 sessions takes longer than writing them, and a frame's header needs the
//! whole payload's length and checksum: written as one frame, the disk waits for the last
//! session to be encoded. A [`StreamedBatch`] is instead cut into segments of a few hundred
//! keys that threads encode in order while the group's leader writes each finished segment as
//! one part of the group's frame (log version 2, `docs/format-native.md`). The parts are
//! synced together and the batch is applied only once all are durable: still all or nothing.

use std::collections::BTreeMap;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use wa_auth::{AuthError, KeyId, KeyKind, KeyValue, Result, WriteBatch};

use crate::format::{self, MAX_BATCH_LEN, SEGMENT_CONTINUES};
use crate::state::{EncodedBatch, Run, StoredCreds, encode_stored_creds, too_large};

/// Batches with at least this many keys are streamed (smaller ones encode in a few
/// milliseconds at most, less than a part's extra write costs them).
pub(crate) const STREAM_MIN_KEYS: usize = 2048;

/// Keys per segment: about a megabyte of sessions, so the first part reaches the kernel soon.
const SEGMENT_KEYS: usize = 512;

/// An encoded segment and the decoded values it no longer needs, or why it could not be
/// encoded (a value too large for the format).
type Encoded = Result<(Run, Vec<KeyValue>)>;

/// A validated batch whose segments are being encoded by threads (see the module docs).
pub(crate) struct StreamedBatch {
    creds: Option<StoredCreds>,
    /// Each segment's outcome, in order, as its thread finishes it.
    segments: Vec<Receiver<Encoded>>,
}

/// A segment ready to write: `u32` length, `u32` entry count (with [`SEGMENT_CONTINUES`]
/// unless it is the batch's last), the creds entry in the first, then its run.
pub(crate) struct Segment {
    head: Vec<u8>,
    run: Run,
    decoded: Vec<KeyValue>,
    /// crc32c and length of the segment's bytes.
    pub crc: u32,
    pub len: usize,
}

impl StreamedBatch {
    /// Checks the batch ([`WriteBatch::validate`], before anything is written), then
    /// starts encoding its segments on threads.
    pub(crate) fn start(batch: WriteBatch) -> Result<Self> {
        debug_assert!(batch.key_count() > 0, "only batches with keys are streamed");
        batch.validate()?;
        let (creds, keys) = batch.into_parts();
        let creds = creds.map(encode_stored_creds).transpose()?;
        let jobs = cut_into_jobs(keys, SEGMENT_KEYS);
        let (senders, segments): (Vec<_>, Vec<_>) = jobs.iter().map(|_| sync_channel(1)).unzip();
        let work: Vec<(Job, SyncSender<Encoded>)> = jobs.into_iter().zip(senders).collect();
        spawn_encoders(work);
        Ok(Self { creds, segments })
    }

    /// Number of segments (at least one: only batches with keys are streamed).
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Waits for segment `index` and frames it. An error (a value or segment over the format's
    /// 1 GiB, known only once encoded) fails the group, whose earlier parts are cut off.
    ///
    /// # Panics
    /// When its encoding thread panicked (the leader's panic makes the store refuse writes,
    /// and the parts written so far are a torn tail).
    pub(crate) fn segment(&self, index: usize) -> io::Result<Segment> {
        let (run, decoded) = self.segments[index]
            .recv()
            .expect("a thread encoding a batch segment panicked")
            .map_err(invalid)?;
        let last = index + 1 >= self.segment_count();
        let creds = self.creds.as_ref().filter(|_| index == 0);
        let mut count = run.key_count() as u32 + u32::from(creds.is_some());
        if !last {
            count |= SEGMENT_CONTINUES;
        }
        let mut head = Vec::with_capacity(8 + creds.map_or(0, |c| 5 + c.raw.len()));
        head.extend_from_slice(&[0; 4]);
        head.extend_from_slice(&count.to_le_bytes());
        if let Some(creds) = creds {
            format::encode_creds(&mut head, &creds.raw);
        }
        let len = head.len() + run.len();
        if len > MAX_BATCH_LEN {
            return Err(invalid(too_large()));
        }
        head[..4].copy_from_slice(&((len - 4) as u32).to_le_bytes());
        let crc = crate::state::extend_crc(crc32c::crc32c(&head), run.crc(), run.len(), |f| {
            run.for_each_piece(f)
        });
        Ok(Segment {
            head,
            run,
            decoded,
            crc,
            len,
        })
    }

    /// The batch to apply, from its written segments.
    pub(crate) fn finish(self, segments: Vec<Segment>) -> EncodedBatch {
        let len = segments.iter().map(|s| s.len).sum();
        let (runs, decoded) = segments.into_iter().map(|s| (s.run, s.decoded)).unzip();
        EncodedBatch::from_segments(self.creds, runs, decoded, len)
    }
}

impl Segment {
    /// Calls `f` with the segment's bytes in order.
    pub(crate) fn for_each_piece<'a>(&'a self, mut f: impl FnMut(&'a [u8])) {
        f(&self.head);
        self.run.for_each_piece(f);
    }
}

/// One kind's entries, to encode as one segment.
type Job = (KeyKind, BTreeMap<KeyId, Option<KeyValue>>);

/// Cuts each kind's entries into jobs of at most `keys` entries, in order: each cut is where
/// the next job starts, so no entry is moved or copied.
fn cut_into_jobs(
    kinds: BTreeMap<KeyKind, BTreeMap<KeyId, Option<KeyValue>>>,
    keys: usize,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (kind, mut rest) in kinds {
        while let Some(at) = rest.keys().nth(keys).cloned() {
            let tail = rest.split_off(&at);
            jobs.push((kind.clone(), rest));
            rest = tail;
        }
        jobs.push((kind, rest));
    }
    jobs
}

/// Threads to encode a big batch on: one per core, at most 8.
fn encode_threads() -> usize {
    // Asked once: `available_parallelism` reads cgroup files.
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// Encodes the jobs on up to one thread per core, the earliest jobs first, each sending its
/// run to its segment's receiver. A thread that cannot be started leaves its jobs to others;
/// when none can, they are encoded here and now.
fn spawn_encoders(work: Vec<(Job, SyncSender<Encoded>)>) {
    let threads = encode_threads().min(work.len());
    let queue = Arc::new(Mutex::new(work.into_iter()));
    let started = (0..threads)
        .filter(|_| {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("wa-native-encode".into())
                .spawn(move || encode_jobs(&queue))
                .is_ok()
        })
        .count();
    if started == 0 {
        encode_jobs(&queue);
    }
}

fn encode_jobs(queue: &Mutex<impl Iterator<Item = (Job, SyncSender<Encoded>)>>) {
    loop {
        let next = queue.lock().ok().and_then(|mut q| q.next());
        let Some(((kind, entries), sender)) = next else {
            return;
        };
        let mut decoded = Vec::with_capacity(entries.len());
        let run = Run::encode(kind, entries, |v| decoded.push(v));
        // The receiver is gone when the group failed: nothing waits for the rest.
        let _ = sender.send(run.map(|run| (run, decoded)));
    }
}

/// A batch that turned out not to fit the format, as the write error that fails its group.
fn invalid(e: AuthError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}
