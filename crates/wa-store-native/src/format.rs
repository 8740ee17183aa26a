//! The on-disk encoding shared by the snapshot and the log: file headers, log frames and
//! entries. Pure functions over byte slices; `docs/format-native.md` is the specification.

use std::fmt;

use wa_auth::{AuthError, CorruptItem, KeyId, KeyKind};

/// Magic bytes opening a log file.
pub(crate) const LOG_MAGIC: [u8; 8] = *b"WANATLOG";
/// Magic bytes opening a snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"WANATSNP";
/// The snapshot format version this build writes and reads.
pub(crate) const SNAPSHOT_VERSION: u32 = 1;
/// The log format version this build writes. Version 2 adds frames written in parts and
/// batches written in segments (see [`FrameHeader::more`] and [`SEGMENT_CONTINUES`]).
pub(crate) const LOG_VERSION: u32 = 2;
/// The oldest log format version this build reads (and upgrades when it opens it for writing).
pub(crate) const OLDEST_LOG_VERSION: u32 = 1;
/// In a frame header's `count` field: the frame continues in the next frame (log version 2).
const FRAME_CONTINUES: u32 = 1 << 31;
/// In a segment's entry count: the batch continues in the next segment (log version 2).
pub(crate) const SEGMENT_CONTINUES: u32 = 1 << 31;
/// Length of a file header (both files).
pub(crate) const FILE_HEADER_LEN: usize = 32;
/// Length of a log frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 24;
/// Length of a snapshot record header (`len`, `crc`).
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// Largest encoded batch accepted (a frame's length is a `u32`; this leaves room for grouping).
pub(crate) const MAX_BATCH_LEN: usize = 1 << 30;

/// Entry opcodes.
pub(crate) const OP_PUT: u8 = 1;
pub(crate) const OP_DELETE: u8 = 2;
pub(crate) const OP_CREDS: u8 = 3;
pub(crate) const OP_END: u8 = 0x7f;

/// Kind code of a kind this version does not know: followed by its name.
const KIND_OTHER: u8 = 0xff;

/// Why bytes could not be decoded, with the absolute offset in the file.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Damaged or inconsistent bytes.
    Corrupt { offset: u64, reason: String },
    /// A file header with a version this build does not read.
    Version { found: u32, supported: String },
}

impl DecodeError {
    pub(crate) fn corrupt(offset: u64, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            offset,
            reason: reason.into(),
        }
    }

    /// The [`AuthError`] for this error in `file`.
    pub(crate) fn into_auth(self, file: &str) -> AuthError {
        match self {
            DecodeError::Corrupt { offset, reason } => AuthError::corrupt(
                CorruptItem::Store,
                format!("{file} at offset {offset}"),
                reason,
            ),
            DecodeError::Version { found, supported } => AuthError::UnsupportedVersion {
                what: file.to_owned(),
                version: found.to_string(),
                supported,
            },
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Corrupt { offset, reason } => write!(f, "at offset {offset}: {reason}"),
            DecodeError::Version { found, .. } => {
                write!(f, "unsupported format version {found}")
            }
        }
    }
}

/// The versions of the file with `magic` that this build reads, oldest first; the last is the
/// one it writes.
fn versions(magic: &[u8; 8]) -> std::ops::RangeInclusive<u32> {
    match magic {
        &LOG_MAGIC => OLDEST_LOG_VERSION..=LOG_VERSION,
        _ => SNAPSHOT_VERSION..=SNAPSHOT_VERSION,
    }
}

/// Encodes a file header: magic, version (the newest for `magic`), flags (0), sequence
/// number, reserved (0), crc32c.
pub(crate) fn encode_file_header(magic: &[u8; 8], seq: u64) -> [u8; FILE_HEADER_LEN] {
    let mut out = [0u8; FILE_HEADER_LEN];
    out[0..8].copy_from_slice(magic);
    out[8..12].copy_from_slice(&versions(magic).end().to_le_bytes());
    out[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&out[..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a file header and returns its sequence number and version. The version is checked
/// before the checksum, because another version may lay its header out differently.
pub(crate) fn decode_file_header(bytes: &[u8], magic: &[u8; 8]) -> Result<(u64, u32), DecodeError> {
    if bytes.len() < 12 || &bytes[0..8] != magic {
        return Err(DecodeError::corrupt(
            0,
            format!(
                "missing file header (expected magic {:?})",
                String::from_utf8_lossy(magic)
            ),
        ));
    }
    let version = le_u32(&bytes[8..12]);
    let readable = versions(magic);
    if !readable.contains(&version) {
        let supported = readable.map(|v| v.to_string()).collect::<Vec<_>>();
        return Err(DecodeError::Version {
            found: version,
            supported: supported.join(", "),
        });
    }
    if bytes.len() < FILE_HEADER_LEN {
        return Err(DecodeError::corrupt(0, "truncated file header"));
    }
    let crc = le_u32(&bytes[28..32]);
    if crc32c::crc32c(&bytes[..28]) != crc {
        return Err(DecodeError::corrupt(0, "file header checksum mismatch"));
    }
    let flags = le_u32(&bytes[12..16]);
    if flags != 0 || le_u32(&bytes[24..28]) != 0 {
        return Err(DecodeError::corrupt(
            0,
            format!("unknown header flags 0x{flags:08x}"),
        ));
    }
    Ok((le_u64(&bytes[16..24]), version))
}

/// The header of a log frame: a group of batches with consecutive sequence numbers, or one
/// part of such a group (log version 2: the parts of a group have the same `count` and
/// `first_seq`, each its own payload, and all but the last have `more` set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Length of the payload after the header.
    pub payload_len: u32,
    /// Number of batches in the group.
    pub count: u32,
    /// Sequence number of the first batch.
    pub first_seq: u64,
    /// crc32c of the payload.
    pub payload_crc: u32,
    /// The group continues in the next frame.
    pub more: bool,
}

impl FrameHeader {
    /// Encodes the header with its own checksum.
    pub(crate) fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[0..4].copy_from_slice(&self.payload_len.to_le_bytes());
        let count = self.count | if self.more { FRAME_CONTINUES } else { 0 };
        out[4..8].copy_from_slice(&count.to_le_bytes());
        out[8..16].copy_from_slice(&self.first_seq.to_le_bytes());
        out[16..20].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&out[..20]);
        out[20..24].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a header; `None` when its checksum does not match.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..FRAME_HEADER_LEN)?;
        if crc32c::crc32c(&bytes[..20]) != le_u32(&bytes[20..24]) {
            return None;
        }
        let count = le_u32(&bytes[4..8]);
        Some(Self {
            payload_len: le_u32(&bytes[0..4]),
            count: count & !FRAME_CONTINUES,
            first_seq: le_u64(&bytes[8..16]),
            payload_crc: le_u32(&bytes[16..20]),
            more: count & FRAME_CONTINUES != 0,
        })
    }

    /// Sequence number of the last batch.
    pub(crate) fn last_seq(&self) -> u64 {
        self.first_seq
            .saturating_add(u64::from(self.count))
            .saturating_sub(1)
    }
}

pub(crate) fn le_u32(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(b)
}

pub(crate) fn le_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(b)
}

fn kind_code(kind: &KeyKind) -> u8 {
    match kind {
        KeyKind::PreKey => 0,
        KeyKind::Session => 1,
        KeyKind::SenderKey => 2,
        KeyKind::SenderKeyMemory => 3,
        KeyKind::AppStateSyncKey => 4,
        KeyKind::AppStateSyncVersion => 5,
        KeyKind::LidMapping => 6,
        KeyKind::DeviceList => 7,
        KeyKind::TcToken => 8,
        KeyKind::IdentityKey => 9,
        KeyKind::Other(_) => KIND_OTHER,
    }
}

fn kind_from_code(code: u8) -> Option<KeyKind> {
    Some(match code {
        0 => KeyKind::PreKey,
        1 => KeyKind::Session,
        2 => KeyKind::SenderKey,
        3 => KeyKind::SenderKeyMemory,
        4 => KeyKind::AppStateSyncKey,
        5 => KeyKind::AppStateSyncVersion,
        6 => KeyKind::LidMapping,
        7 => KeyKind::DeviceList,
        8 => KeyKind::TcToken,
        9 => KeyKind::IdentityKey,
        _ => return None,
    })
}

fn put_kind_and_id(out: &mut Vec<u8>, kind: &KeyKind, id: &KeyId) {
    let code = kind_code(kind);
    out.push(code);
    if code == KIND_OTHER {
        // Other kind names are 1..=64 bytes (validated by wa-auth).
        let name = kind.as_str().as_bytes();
        out.push(name.len() as u8);
        out.extend_from_slice(name);
    }
    // Ids are at most 1024 bytes (validated by `WriteBatch::validate` before encoding).
    let id = id.as_str().as_bytes();
    out.extend_from_slice(&(id.len() as u16).to_le_bytes());
    out.extend_from_slice(id);
}

/// Appends a put entry up to its value (`value_len` bytes, which the caller writes next).
pub(crate) fn encode_put_prefix(out: &mut Vec<u8>, kind: &KeyKind, id: &KeyId, value_len: usize) {
    out.push(OP_PUT);
    put_kind_and_id(out, kind, id);
    // Values are at most MAX_BATCH_LEN bytes (checked by the batch encoder).
    out.extend_from_slice(&(value_len as u32).to_le_bytes());
}

/// Appends a delete entry.
pub(crate) fn encode_delete(out: &mut Vec<u8>, kind: &KeyKind, id: &KeyId) {
    out.push(OP_DELETE);
    put_kind_and_id(out, kind, id);
}

/// Appends a creds entry.
pub(crate) fn encode_creds(out: &mut Vec<u8>, creds: &[u8]) {
    out.push(OP_CREDS);
    out.extend_from_slice(&(creds.len() as u32).to_le_bytes());
    out.extend_from_slice(creds);
}

/// Appends the end entry of a snapshot.
pub(crate) fn encode_end(out: &mut Vec<u8>, records: u64) {
    out.push(OP_END);
    out.extend_from_slice(&records.to_le_bytes());
}

/// Upper bound of the encoded size of a put or delete, value excluded (for buffer sizing).
pub(crate) fn entry_prefix_bound(kind: &KeyKind, id: &KeyId) -> usize {
    1 + 1 + 1 + kind.as_str().len() + 2 + id.as_str().len() + 4
}

/// A decoded entry. Put values are given as their range within the decoded slice, so callers
/// can keep them without copying.
#[derive(Debug)]
pub(crate) enum Entry {
    Put {
        kind: KeyKind,
        id: KeyId,
        value: std::ops::Range<usize>,
    },
    Delete {
        kind: KeyKind,
        id: KeyId,
    },
    Creds(std::ops::Range<usize>),
    End {
        records: u64,
    },
}

/// A bounds-checked reader over a slice that reports absolute file offsets.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf`, which starts at file offset `base`.
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Self {
        Self { buf, pos: 0, base }
    }

    /// The file offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                DecodeError::corrupt(
                    self.offset(),
                    format!("{what} ({n} bytes) runs past the end of its record"),
                )
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(le_u32(self.take(4, what)?))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(le_u64(self.take(8, what)?))
    }

    /// Takes `n` bytes and returns their range within the slice.
    pub(crate) fn range(
        &mut self,
        n: usize,
        what: &str,
    ) -> Result<std::ops::Range<usize>, DecodeError> {
        let start = self.pos;
        self.take(n, what)?;
        Ok(start..self.pos)
    }

    fn kind(&mut self) -> Result<KeyKind, DecodeError> {
        let at = self.offset();
        let code = self.u8("kind")?;
        if code == KIND_OTHER {
            let len = self.u8("kind name length")?;
            let name = self.take(usize::from(len), "kind name")?;
            let name = std::str::from_utf8(name)
                .map_err(|_| DecodeError::corrupt(at, "kind name is not UTF-8"))?;
            return KeyKind::from_name(name).map_err(|e| DecodeError::corrupt(at, e.to_string()));
        }
        kind_from_code(code)
            .ok_or_else(|| DecodeError::corrupt(at, format!("unknown kind code {code}")))
    }

    fn id(&mut self) -> Result<KeyId, DecodeError> {
        let at = self.offset();
        let len = self.u16("id length")?;
        let bytes = self.take(usize::from(len), "id")?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| DecodeError::corrupt(at, "key id is not UTF-8"))?;
        let id = KeyId::new(text);
        id.validate()
            .map_err(|e| DecodeError::corrupt(at, e.to_string()))?;
        Ok(id)
    }

    /// Decodes one entry.
    pub(crate) fn entry(&mut self) -> Result<Entry, DecodeError> {
        let at = self.offset();
        match self.u8("entry opcode")? {
            OP_PUT => {
                let kind = self.kind()?;
                let id = self.id()?;
                let len = self.u32("value length")?;
                let value = self.range(len as usize, "value")?;
                Ok(Entry::Put { kind, id, value })
            }
            OP_DELETE => {
                let kind = self.kind()?;
                let id = self.id()?;
                Ok(Entry::Delete { kind, id })
            }
            OP_CREDS => {
                let len = self.u32("creds length")?;
                Ok(Entry::Creds(self.range(len as usize, "creds")?))
            }
            OP_END => Ok(Entry::End {
                records: self.u64("record count")?,
            }),
            op => Err(DecodeError::corrupt(
                at,
                format!("unknown entry opcode {op}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let other = KeyKind::from_name("future-kind").unwrap();
        let mut buf = Vec::new();
        encode_put_prefix(&mut buf, &KeyKind::Session, &"1.0".into(), 5);
        buf.extend_from_slice(b"value");
        encode_delete(&mut buf, &other, &"x/y".into());
        encode_creds(&mut buf, b"creds");
        encode_end(&mut buf, 7);
        let mut c = Cursor::new(&buf, 100);
        match c.entry().unwrap() {
            Entry::Put { kind, id, value } => {
                assert_eq!(kind, KeyKind::Session);
                assert_eq!(id.as_str(), "1.0");
                assert_eq!(&buf[value], b"value");
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(c.entry().unwrap(), Entry::Delete { kind, .. } if kind == other));
        assert!(matches!(c.entry().unwrap(), Entry::Creds(r) if &buf[r.clone()] == b"creds"));
        assert!(matches!(c.entry().unwrap(), Entry::End { records: 7 }));
        assert!(c.is_empty());
        let err = Cursor::new(&buf[..3], 100).entry().unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt { offset: 100.., .. }));
    }

    #[test]
    fn headers_check_their_checksums() {
        let header = encode_file_header(&LOG_MAGIC, 42);
        assert_eq!(
            decode_file_header(&header, &LOG_MAGIC).unwrap(),
            (42, LOG_VERSION)
        );
        assert!(decode_file_header(&header, &SNAPSHOT_MAGIC).is_err());
        let mut bad = header;
        bad[17] ^= 1;
        assert!(decode_file_header(&bad, &LOG_MAGIC).is_err());
        let snapshot = encode_file_header(&SNAPSHOT_MAGIC, 7);
        assert_eq!(
            decode_file_header(&snapshot, &SNAPSHOT_MAGIC).unwrap(),
            (7, SNAPSHOT_VERSION)
        );
        for (magic, newest) in [(LOG_MAGIC, LOG_VERSION), (SNAPSHOT_MAGIC, SNAPSHOT_VERSION)] {
            let mut newer = encode_file_header(&magic, 1);
            newer[8] = newest as u8 + 1;
            assert!(matches!(
                decode_file_header(&newer, &magic),
                Err(DecodeError::Version { found, .. }) if found == newest + 1
            ));
        }
        for more in [false, true] {
            let frame = FrameHeader {
                payload_len: 10,
                count: 2,
                first_seq: 5,
                payload_crc: 9,
                more,
            };
            assert_eq!(FrameHeader::decode(&frame.encode()), Some(frame));
            assert_eq!(frame.last_seq(), 6);
        }
        let frame = FrameHeader {
            payload_len: 10,
            count: 2,
            first_seq: 5,
            payload_crc: 9,
            more: false,
        };
        let mut bad = frame.encode();
        bad[0] ^= 0x80;
        assert_eq!(FrameHeader::decode(&bad), None);
    }
}
