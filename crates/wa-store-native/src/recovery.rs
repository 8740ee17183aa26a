//! Rebuilding the state from a snapshot and a log: which combinations are valid, replaying the
//! log's batches after the snapshot, and deciding what is a torn tail and what is damage. Pure:
//! the caller reads the files and acts on the result (truncating a torn tail, rewriting a log).

use std::sync::Arc;

use bytes::Bytes;
use wa_auth::{AuthCreds, AuthError, CorruptItem, Result};

use crate::format::{Cursor, DecodeError, Entry, FILE_HEADER_LEN, LOG_VERSION, SEGMENT_CONTINUES};
use crate::log::{Frame, scan_log};
use crate::snapshot::SnapshotData;
use crate::state::{State, StoredCreds};

/// How the files are named in errors.
pub(crate) struct Names {
    pub snapshot: String,
    pub log: String,
}

/// What recovery found.
pub(crate) struct Recovered {
    pub state: State,
    /// Sequence number of the snapshot (0 when there is none).
    pub snapshot_seq: u64,
    /// Length of the snapshot file (0 when there is none).
    pub snapshot_len: u64,
    /// The log's base sequence number (None when there is no log).
    pub log_base: Option<u64>,
    /// The log's format version (the current one when there is no log).
    pub log_version: u32,
    /// Frames applied, and frames skipped because the snapshot already includes them.
    pub frames_applied: usize,
    pub frames_skipped: usize,
    /// Offset of the first frame after the snapshot's sequence number (the log's end if none).
    pub keep_from: u64,
    /// Offset just after the last good frame.
    pub log_end: u64,
    /// Where a torn tail starts, if there is one.
    pub torn: Option<u64>,
}

enum CredsOrigin {
    Snapshot(u64),
    Log(u64),
}

/// Rebuilds the state. `snapshot` and `log` are `None` when the file does not exist.
pub(crate) fn recover(
    snapshot: Option<SnapshotData>,
    log: Option<&[u8]>,
    names: &Names,
) -> Result<Recovered> {
    let mut out = Recovered {
        state: State::default(),
        snapshot_seq: 0,
        snapshot_len: 0,
        log_base: None,
        log_version: LOG_VERSION,
        frames_applied: 0,
        frames_skipped: 0,
        keep_from: FILE_HEADER_LEN as u64,
        log_end: FILE_HEADER_LEN as u64,
        torn: None,
    };
    let Some(snapshot) = check_files(snapshot, log, names)? else {
        return Ok(out);
    };
    let seq = snapshot.seq;
    out.snapshot_seq = seq;
    out.snapshot_len = snapshot.len;
    out.state.seq = seq;
    out.state.keys = snapshot.keys;
    let mut creds = snapshot
        .creds
        .map(|(raw, offset)| (raw, CredsOrigin::Snapshot(offset)));
    if let Some(log) = log {
        replay_log(log, seq, &mut out, &mut creds, names)?;
    }
    if let Some((raw, origin)) = creds {
        out.state.creds = Some(decode_creds(raw, origin, names)?);
    }
    Ok(out)
}

/// Which combinations of files are a store: none (a new store), a snapshot alone at batch 0,
/// or both. Returns the snapshot, if any.
fn check_files(
    snapshot: Option<SnapshotData>,
    log: Option<&[u8]>,
    names: &Names,
) -> Result<Option<SnapshotData>> {
    match (snapshot, log) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(AuthError::corrupt(
            CorruptItem::Store,
            names.snapshot.clone(),
            "the snapshot is missing while the log exists",
        )),
        (Some(snapshot), None) if snapshot.seq != 0 => Err(AuthError::corrupt(
            CorruptItem::Store,
            names.log.clone(),
            format!(
                "the log is missing while the snapshot is at batch {}",
                snapshot.seq
            ),
        )),
        (Some(snapshot), _) => Ok(Some(snapshot)),
    }
}

/// Replays the log's frames after snapshot batch `seq` into `out`, checking that the log
/// continues the snapshot; frames the snapshot already includes are decoded and skipped.
fn replay_log(
    log: &[u8],
    seq: u64,
    out: &mut Recovered,
    creds: &mut Option<(Bytes, CredsOrigin)>,
    names: &Names,
) -> Result<()> {
    let scan = scan_log(log).map_err(|e| e.into_auth(&names.log))?;
    let corrupt =
        |offset: u64, reason: String| DecodeError::corrupt(offset, reason).into_auth(&names.log);
    if scan.base_seq > seq {
        return Err(corrupt(
            16,
            format!(
                "the log continues from batch {} but the snapshot is at batch {seq}: batches are missing",
                scan.base_seq
            ),
        ));
    }
    if scan.last_seq() < seq {
        return Err(corrupt(
            scan.end,
            format!(
                "the log ends at batch {} but the snapshot is at batch {seq}",
                scan.last_seq()
            ),
        ));
    }
    out.log_base = Some(scan.base_seq);
    out.log_version = scan.version;
    out.log_end = scan.end;
    out.torn = scan.torn;
    out.keep_from = scan.end;
    let mut kept = false;
    for frame in &scan.frames {
        if frame.header.last_seq() <= seq {
            out.frames_skipped += 1;
            // Still decoded: a frame that passed its checksum must make sense.
            apply_frame(frame, &mut State::default(), &mut None, &names.log)?;
            continue;
        }
        if frame.header.first_seq <= seq {
            return Err(corrupt(
                frame.offset,
                format!("frame straddles the snapshot's batch {seq}"),
            ));
        }
        if !kept {
            out.keep_from = frame.offset;
            kept = true;
        }
        apply_frame(frame, &mut out.state, creds, &names.log)?;
        out.frames_applied += 1;
        out.state.seq = frame.header.last_seq();
    }
    Ok(())
}

/// Decodes the creds found last, naming where they were stored when they do not decode.
fn decode_creds(raw: Bytes, origin: CredsOrigin, names: &Names) -> Result<StoredCreds> {
    let decoded: AuthCreds = rmp_serde::from_slice(&raw).map_err(|e| {
        let (file, offset) = match origin {
            CredsOrigin::Snapshot(o) => (&names.snapshot, o),
            CredsOrigin::Log(o) => (&names.log, o),
        };
        AuthError::corrupt(CorruptItem::Creds, format!("{file} at offset {offset}"), e)
    })?;
    Ok(StoredCreds {
        decoded: Arc::new(decoded),
        raw,
    })
}

/// Applies every batch of a group: its parts' payloads hold the batches' segments in order (a
/// batch is one segment, or several whose entry counts but the last carry
/// [`SEGMENT_CONTINUES`]). Values are copied out of the log buffer.
fn apply_frame(
    frame: &Frame<'_>,
    state: &mut State,
    creds: &mut Option<(Bytes, CredsOrigin)>,
    file: &str,
) -> Result<()> {
    let err = |e: DecodeError| e.into_auth(file);
    let (mut batches, mut saw_creds, mut continues) = (0u32, false, false);
    for part in &frame.parts {
        let mut cursor = Cursor::new(part.payload, part.offset);
        while !cursor.is_empty() {
            let at = cursor.offset();
            if batches == frame.header.count {
                return Err(err(DecodeError::corrupt(
                    at,
                    "trailing bytes after the frame's batches",
                )));
            }
            let len = cursor.u32("batch length").map_err(err)?;
            let range = cursor.range(len as usize, "batch").map_err(err)?;
            let segment = Cursor::new(
                &part.payload[range.clone()],
                part.offset + range.start as u64,
            );
            continues = apply_segment(
                segment,
                &part.payload[range],
                state,
                creds,
                &mut saw_creds,
                at,
            )
            .map_err(err)?;
            if !continues {
                batches += 1;
                saw_creds = false;
            }
        }
    }
    if continues || batches != frame.header.count {
        return Err(err(DecodeError::corrupt(
            frame.offset,
            format!(
                "the frame holds {batches} whole batches where its header says {}",
                frame.header.count
            ),
        )));
    }
    Ok(())
}

/// Applies one segment of a batch (`bytes`, read through `entries`); returns whether the batch
/// continues in the next segment. `saw_creds` spans the batch's segments.
fn apply_segment(
    mut entries: Cursor<'_>,
    bytes: &[u8],
    state: &mut State,
    creds: &mut Option<(Bytes, CredsOrigin)>,
    saw_creds: &mut bool,
    at: u64,
) -> std::result::Result<bool, DecodeError> {
    let count = entries.u32("entry count")?;
    for _ in 0..count & !SEGMENT_CONTINUES {
        let entry_at = entries.offset();
        match entries.entry()? {
            Entry::Put { kind, id, value } => {
                state.put(kind, id, Bytes::copy_from_slice(&bytes[value]));
            }
            Entry::Delete { kind, id } => state.delete(&kind, &id),
            Entry::Creds(range) => {
                if std::mem::replace(saw_creds, true) {
                    return Err(DecodeError::corrupt(
                        entry_at,
                        "creds appear twice in one batch",
                    ));
                }
                *creds = Some((
                    Bytes::copy_from_slice(&bytes[range]),
                    CredsOrigin::Log(entry_at),
                ));
            }
            Entry::End { .. } => {
                return Err(DecodeError::corrupt(entry_at, "an end entry in the log"));
            }
        }
    }
    if !entries.is_empty() {
        return Err(DecodeError::corrupt(
            entries.offset(),
            format!("trailing bytes after the batch that starts at offset {at}"),
        ));
    }
    Ok(count & SEGMENT_CONTINUES != 0)
}
