//! The log: an append-only sequence of frames after a header. Each frame is one group commit:
//! one or more batches with consecutive sequence numbers, written with one `write` and made
//! durable with one `fdatasync` before any of its committers is acknowledged.
//!
//! Recovery tells a torn tail (the last, unacknowledged write, cut short by a crash) from
//! damage: see [`scan_log`].

use crate::format::{self, DecodeError, FILE_HEADER_LEN, FRAME_HEADER_LEN, FrameHeader, LOG_MAGIC};

/// A frame that passed its checks.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// Offset of the frame header in the file.
    pub offset: u64,
    pub header: FrameHeader,
    pub payload: &'a [u8],
}

/// The result of scanning a log.
#[derive(Debug)]
pub(crate) struct LogScan<'a> {
    /// Sequence number of the snapshot batch this log continues from.
    pub base_seq: u64,
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
/// Frames are read in order, each expected to continue the sequence numbers. At the first frame
/// that does not pass:
/// - fewer bytes than a frame header remain, or the header is valid and its payload runs past
///   the end of the file: a torn tail;
/// - the header is valid, the payload ends exactly at the end of the file and its checksum
///   fails: a torn tail (the last write reached the file only in part);
/// - the header is valid and the payload fails its checksum with more data after it: damage;
/// - the header is invalid (checksum, sequence number): damage if a valid frame follows
///   anywhere after it (that frame was written after this one was synced), else a torn tail.
///
/// A torn tail is never acknowledged data: every frame is synced before the next is written.
pub(crate) fn scan_log(bytes: &[u8]) -> Result<LogScan<'_>, DecodeError> {
    let base_seq = format::decode_file_header(bytes, &LOG_MAGIC)?;
    let mut scan = LogScan {
        base_seq,
        frames: Vec::new(),
        end: FILE_HEADER_LEN as u64,
        torn: None,
    };
    let mut pos = FILE_HEADER_LEN;
    let mut expected = base_seq
        .checked_add(1)
        .ok_or_else(|| DecodeError::corrupt(16, "sequence number overflow"))?;
    while pos < bytes.len() {
        if let Some((header, end)) = frame_at(bytes, pos, expected) {
            scan.frames.push(Frame {
                offset: pos as u64,
                header,
                payload: &bytes[pos + FRAME_HEADER_LEN..end],
            });
            expected = header
                .first_seq
                .checked_add(u64::from(header.count))
                .ok_or_else(|| DecodeError::corrupt(pos as u64, "sequence number overflow"))?;
            pos = end;
            scan.end = end as u64;
            continue;
        }
        let remaining = bytes.len() - pos;
        let torn = match FrameHeader::decode(&bytes[pos..]) {
            _ if remaining < FRAME_HEADER_LEN => true,
            Some(h) if h.first_seq == expected && h.count > 0 => {
                let end = FRAME_HEADER_LEN as u64 + u64::from(h.payload_len);
                if end >= remaining as u64 {
                    true
                } else {
                    return Err(DecodeError::corrupt(
                        pos as u64,
                        format!(
                            "frame of batches {}..={} fails its checksum and is followed by more data",
                            h.first_seq,
                            h.last_seq()
                        ),
                    ));
                }
            }
            _ => {
                if valid_frame_after(bytes, pos + 1, expected) {
                    return Err(DecodeError::corrupt(
                        pos as u64,
                        format!(
                            "invalid frame header where batch {expected} should start, followed by valid frames"
                        ),
                    ));
                }
                true
            }
        };
        debug_assert!(torn);
        scan.torn = Some(pos as u64);
        break;
    }
    Ok(scan)
}

/// The header of a log continuing from snapshot batch `base_seq`.
pub(crate) fn log_header(base_seq: u64) -> [u8; FILE_HEADER_LEN] {
    format::encode_file_header(&LOG_MAGIC, base_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first_seq: u64, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            payload_len: payload.len() as u32,
            count: 1,
            first_seq,
            payload_crc: crc32c::crc32c(payload),
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(payload);
        out
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
