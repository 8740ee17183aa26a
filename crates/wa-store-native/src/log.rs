//! The log: an append-only sequence of frames after a header. Each frame is one group commit:
//! one or more batches with consecutive sequence numbers, made durable with one `fdatasync`
//! before any of its committers is acknowledged. A group is written as one frame, or (log
//! version 2, a big batch written while it is encoded) as several parts, one after the other;
//! nothing is written after a group until it is synced.
//!
//! Recovery tells a torn tail (the last, unacknowledged write, cut short by a crash) from
//! damage: see [`scan_log`].

use crate::format::{self, DecodeError, FILE_HEADER_LEN, FRAME_HEADER_LEN, FrameHeader, LOG_MAGIC};

/// A group commit whose frames passed their checks.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// Offset of the (first) frame header in the file.
    pub offset: u64,
    /// The group's header (the last part's).
    pub header: FrameHeader,
    /// The payload of each part, in order; one for a group written as one frame.
    pub parts: Vec<Part<'a>>,
}

/// One frame's payload.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    /// Offset of the payload in the file.
    pub offset: u64,
    pub payload: &'a [u8],
}

/// The result of scanning a log.
#[derive(Debug)]
pub(crate) struct LogScan<'a> {
    /// Sequence number of the snapshot batch this log continues from.
    pub base_seq: u64,
    /// The log's format version.
    pub version: u32,
    pub frames: Vec<Frame<'a>>,
    /// Offset just after the last good frame (the file's length when there is no torn tail).
    pub end: u64,
    /// Where a torn tail starts, if there is one (it runs to the end of the file).
    pub torn: Option<u64>,
}

impl LogScan<'_> {
    /// Sequence number of the last batch in the log.
    pub(crate) fn last_seq(&self) -> u64 {
        self.frames
            .last()
            .map_or(self.base_seq, |f| f.header.last_seq())
    }
}

/// Checks the frame at `pos`, expected to start with batch `expected`. `Ok(None)` when no
/// complete, valid frame with that sequence number is there.
fn frame_at(bytes: &[u8], pos: usize, expected: u64) -> Option<(FrameHeader, usize)> {
    let header = FrameHeader::decode(bytes.get(pos..)?)?;
    if header.first_seq != expected || header.count == 0 {
        return None;
    }
    let end = (pos + FRAME_HEADER_LEN).checked_add(header.payload_len as usize)?;
    let payload = bytes.get(pos + FRAME_HEADER_LEN..end)?;
    (crc32c::crc32c(payload) == header.payload_crc).then_some((header, end))
}

/// Whether a complete, valid frame starting with batch `min_seq` or later exists at any offset
/// from `from` on: then the bad bytes before it are damage, not a torn tail.
fn valid_frame_after(bytes: &[u8], from: usize, min_seq: u64) -> bool {
    let last = bytes.len().saturating_sub(FRAME_HEADER_LEN);
    (from..=last).any(|pos| {
        // Cheap filter before any checksum: a plausible sequence number.
        let seq = format::le_u64(&bytes[pos + 8..pos + 16]);
        seq >= min_seq
            && seq - min_seq < (1 << 40)
            && FrameHeader::decode(&bytes[pos..])
                .is_some_and(|h| frame_at(bytes, pos, h.first_seq).is_some())
    })
}

/// Scans a whole log file.
///
/// Frames are read in order, each expected to continue the sequence numbers (the parts of a
/// group all start with the group's first batch). At the first frame that does not pass:
/// - inside a group whose last part is missing: damage if a valid frame of a later group
///   follows anywhere after it, else a torn tail from the group's first part (the parts are
///   synced together, so any of them may be missing after a power loss);
/// - fewer bytes than a frame header remain, or the header is valid and its payload runs past
///   the end of the file: a torn tail;
/// - the header is valid, the payload ends exactly at the end of the file and its checksum
///   fails: a torn tail (the last write reached the file only in part);
/// - the header is valid, opens a group written in parts, and its payload fails its
///   checksum: as inside a group;
/// - the header is valid and the payload fails its checksum with more data after it: damage;
/// - the header is invalid (checksum, sequence number): damage if a valid frame of a later
///   batch follows anywhere after it (that frame was written after this one was synced), else
///   a torn tail.
///
/// A torn tail is never acknowledged data: every group is synced before the next is written.
pub(crate) fn scan_log(bytes: &[u8]) -> Result<LogScan<'_>, DecodeError> {
    let (base_seq, version) = format::decode_file_header(bytes, &LOG_MAGIC)?;
    let mut scan = LogScan {
        base_seq,
        version,
        frames: Vec::new(),
        end: FILE_HEADER_LEN as u64,
        torn: None,
    };
    let mut pos = FILE_HEADER_LEN;
    let mut expected = base_seq
        .checked_add(1)
        .ok_or_else(|| DecodeError::corrupt(16, "sequence number overflow"))?;
    // A group whose parts so far passed, waiting for its last part.
    let mut open: Option<Frame<'_>> = None;
    while pos < bytes.len() {
        let Some((header, end)) =
            frame_at(bytes, pos, expected).filter(|(h, _)| continues(h, open.as_ref(), version))
        else {
            scan.torn = Some(torn_at(bytes, pos, expected, open.as_ref())?);
            return Ok(scan);
        };
        let part = Part {
            offset: (pos + FRAME_HEADER_LEN) as u64,
            payload: &bytes[pos + FRAME_HEADER_LEN..end],
        };
        pos = end;
        let frame = open.get_or_insert_with(|| Frame {
            offset: (part.offset as usize - FRAME_HEADER_LEN) as u64,
            header,
            parts: Vec::with_capacity(1),
        });
        frame.parts.push(part);
        if header.more {
            continue;
        }
        frame.header = header;
        expected = header
            .first_seq
            .checked_add(u64::from(header.count))
            .ok_or_else(|| DecodeError::corrupt(frame.offset, "sequence number overflow"))?;
        scan.end = end as u64;
        scan.frames.extend(open.take());
    }
    // The file ends inside a group: its last part never reached the file.
    scan.torn = open.map(|group| group.offset);
    Ok(scan)
}

/// Whether a valid frame can come next: the next part of the `open` group (same batches), or
/// any frame when no group is open; parts exist from log version 2 on.
fn continues(header: &FrameHeader, open: Option<&Frame<'_>>, version: u32) -> bool {
    if header.more && version < 2 {
        return false;
    }
    open.is_none_or(|group| group.header.count == header.count)
}

/// Decides what the bytes at `pos`, where no valid frame is, are: a torn tail (where it
/// starts), or damage (see [`scan_log`]).
fn torn_at(
    bytes: &[u8],
    pos: usize,
    expected: u64,
    open: Option<&Frame<'_>>,
) -> Result<u64, DecodeError> {
    let remaining = bytes.len() - pos;
    let header = FrameHeader::decode(&bytes[pos..]).filter(|h| h.first_seq == expected);
    let (group, later) = match (open, header) {
        (Some(group), _) => (
            group.offset,
            group
                .header
                .first_seq
                .saturating_add(u64::from(group.header.count)),
        ),
        (None, _) if remaining < FRAME_HEADER_LEN => return Ok(pos as u64),
        (None, Some(h)) if h.count > 0 => {
            let runs_to_end =
                FRAME_HEADER_LEN as u64 + u64::from(h.payload_len) >= remaining as u64;
            if runs_to_end {
                return Ok(pos as u64);
            }
            if !h.more {
                return Err(DecodeError::corrupt(
                    pos as u64,
                    format!(
                        "frame of batches {}..={} fails its checksum and is followed by more data",
                        h.first_seq,
                        h.last_seq()
                    ),
                ));
            }
            (pos as u64, h.first_seq.saturating_add(u64::from(h.count)))
        }
        (None, _) => (pos as u64, expected.saturating_add(1)),
    };
    if valid_frame_after(bytes, pos, later) {
        return Err(DecodeError::corrupt(
            pos as u64,
            format!(
                "no valid frame where batch {expected} should continue, followed by valid frames of later batches"
            ),
        ));
    }
    Ok(group)
}

/// The header of a log continuing from snapshot batch `base_seq`.
pub(crate) fn log_header(base_seq: u64) -> [u8; FILE_HEADER_LEN] {
    format::encode_file_header(&LOG_MAGIC, base_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(first_seq: u64, payload: &[u8], more: bool) -> Vec<u8> {
        let header = FrameHeader {
            payload_len: payload.len() as u32,
            count: 1,
            first_seq,
            payload_crc: crc32c::crc32c(payload),
            more,
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn frame(first_seq: u64, payload: &[u8]) -> Vec<u8> {
        part(first_seq, payload, false)
    }

    /// A log at base 10: batch 11 in one frame, batch 12 in three parts, then (when
    /// `later`) batch 13 in one frame. Returns it and where batch 12's parts start.
    fn log_with_parts(later: bool) -> (Vec<u8>, [usize; 3]) {
        let mut out = log_header(10).to_vec();
        out.extend(frame(11, b"aaaa"));
        let mut starts = [0; 3];
        for (i, payload) in [&b"first"[..], b"second part", b"end"]
            .into_iter()
            .enumerate()
        {
            starts[i] = out.len();
            out.extend(part(12, payload, i < 2));
        }
        if later {
            out.extend(frame(13, b"later"));
        }
        (out, starts)
    }

    #[test]
    fn a_group_in_parts_scans_as_one_frame() {
        let (bytes, starts) = log_with_parts(true);
        let scan = scan_log(&bytes).unwrap();
        assert_eq!(scan.version, format::LOG_VERSION);
        assert_eq!(scan.torn, None);
        assert_eq!(scan.end, bytes.len() as u64);
        let seqs: Vec<_> = scan.frames.iter().map(|f| f.header.first_seq).collect();
        assert_eq!(seqs, [11, 12, 13]);
        let group = &scan.frames[1];
        assert_eq!(group.offset, starts[0] as u64);
        assert!(!group.header.more);
        let payloads: Vec<&[u8]> = group.parts.iter().map(|p| p.payload).collect();
        assert_eq!(payloads, [&b"first"[..], b"second part", b"end"]);
        for (part, start) in group.parts.iter().zip(starts) {
            assert_eq!(part.offset, (start + FRAME_HEADER_LEN) as u64);
        }
    }

    /// A crash or power loss while a group's parts were written (they are synced together):
    /// cut short anywhere, any of its bytes damaged or never written, the whole group is a
    /// torn tail, from its first part on.
    #[test]
    fn a_group_missing_or_damaging_any_part_is_a_torn_tail() {
        let (bytes, starts) = log_with_parts(false);
        let torn = |damaged: &[u8], what: &str| {
            let scan = scan_log(damaged).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(scan.frames.len(), 1, "{what}");
            assert_eq!(scan.torn, Some(starts[0] as u64), "{what}");
            assert_eq!(scan.end, starts[0] as u64, "{what}");
        };
        for len in starts[0] + 1..bytes.len() {
            torn(&bytes[..len], &format!("cut at {len}"));
        }
        for offset in starts[0]..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x04;
            torn(&damaged, &format!("flipped byte {offset}"));
        }
        for i in 0..3 {
            let end = starts.get(i + 1).copied().unwrap_or(bytes.len());
            let mut lost = bytes.clone();
            lost[starts[i]..end].fill(0);
            torn(&lost, &format!("part {i} never written"));
        }
    }

    /// Damage in a group that a later group follows is damage: the later group was written
    /// after this one was synced.
    #[test]
    fn damage_in_a_group_followed_by_a_later_one_is_corruption() {
        let (bytes, starts) = log_with_parts(true);
        let later = bytes.len() - FRAME_HEADER_LEN - 5;
        for offset in starts[0]..later {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x40;
            let err = scan_log(&damaged).expect_err("damage before a later frame");
            assert!(
                matches!(err, DecodeError::Corrupt { .. }),
                "{offset}: {err}"
            );
        }
    }

    /// Version 1 logs have no parts: a frame marked as continuing is not a valid frame there.
    #[test]
    fn parts_are_not_frames_in_a_version_1_log() {
        let (mut bytes, starts) = log_with_parts(false);
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..28]);
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
        let scan = scan_log(&bytes).unwrap();
        assert_eq!(scan.version, 1);
        assert_eq!(scan.frames.len(), 1);
        assert_eq!(scan.torn, Some(starts[0] as u64));
    }

    fn log(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = log_header(10).to_vec();
        for (i, payload) in frames.iter().enumerate() {
            out.extend(frame(11 + i as u64, payload));
        }
        out
    }

    #[test]
    fn clean_log_scans_fully() {
        let bytes = log(&[b"aaaa", b"bbbbbb", b"c"]);
        let scan = scan_log(&bytes).unwrap();
        assert_eq!(scan.frames.len(), 3);
        assert_eq!(scan.torn, None);
        assert_eq!(scan.end, bytes.len() as u64);
        assert_eq!(scan.last_seq(), 13);
    }

    #[test]
    fn truncation_anywhere_in_the_last_frame_is_a_torn_tail() {
        let bytes = log(&[b"aaaa", b"bbbbbb"]);
        let second = FILE_HEADER_LEN + FRAME_HEADER_LEN + 4;
        for len in second + 1..bytes.len() {
            let scan = scan_log(&bytes[..len]).unwrap();
            assert_eq!(scan.frames.len(), 1, "len {len}");
            assert_eq!(scan.torn, Some(second as u64));
        }
    }

    #[test]
    fn damage_before_valid_frames_is_corruption() {
        let bytes = log(&[b"aaaa", b"bbbbbb", b"c"]);
        let second = FILE_HEADER_LEN + FRAME_HEADER_LEN + 4;
        for offset in second..second + FRAME_HEADER_LEN + 6 {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x10;
            let err = scan_log(&damaged).unwrap_err();
            assert!(
                matches!(err, DecodeError::Corrupt { offset: o, .. } if o == second as u64),
                "{offset}: {err}"
            );
        }
    }

    #[test]
    fn damage_in_the_last_frame_is_a_torn_tail() {
        let bytes = log(&[b"aaaa", b"bbbbbb"]);
        let second = FILE_HEADER_LEN + FRAME_HEADER_LEN + 4;
        for offset in second..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x01;
            let scan = scan_log(&damaged).unwrap();
            assert_eq!(scan.frames.len(), 1);
            assert_eq!(scan.torn, Some(second as u64));
        }
    }
}
