//! The snapshot: the whole state at one sequence number, one checksummed record per entry,
//! closed by an end record. Written to a temp file, synced, then renamed into place, so it is
//! never seen half-written: any damage in it is corruption, never a torn tail.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use wa_auth::{AuthError, Result};

use crate::format::{
    self, Cursor, DecodeError, Entry, FILE_HEADER_LEN, RECORD_HEADER_LEN, SNAPSHOT_MAGIC,
};
use crate::state::Keys;

/// A decoded snapshot.
pub(crate) struct SnapshotData {
    /// Sequence number of the last batch it includes.
    pub seq: u64,
    /// The creds bytes and the offset of their record.
    pub creds: Option<(Bytes, u64)>,
    pub keys: Keys,
    /// Length of the file.
    pub len: u64,
}

fn read_full(r: &mut impl Read, buf: &mut [u8], file: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| AuthError::io(file, e))
}

/// Reads a snapshot of `file_len` bytes from `r`; `file` names it in errors.
pub(crate) fn read_snapshot(mut r: impl Read, file_len: u64, file: &str) -> Result<SnapshotData> {
    let corrupt = |offset: u64, reason: &str| DecodeError::corrupt(offset, reason).into_auth(file);
    let mut header = [0u8; FILE_HEADER_LEN];
    let head_len = file_len.min(FILE_HEADER_LEN as u64) as usize;
    read_full(&mut r, &mut header[..head_len], file)?;
    let (seq, _) = format::decode_file_header(&header[..head_len], &SNAPSHOT_MAGIC)
        .map_err(|e| e.into_auth(file))?;
    let mut data = SnapshotData {
        seq,
        creds: None,
        keys: Keys::new(),
        len: file_len,
    };
    let mut pos = FILE_HEADER_LEN as u64;
    let mut records: u64 = 0;
    loop {
        if file_len - pos < RECORD_HEADER_LEN as u64 {
            return Err(corrupt(pos, "the snapshot ends without its end record"));
        }
        let mut head = [0u8; RECORD_HEADER_LEN];
        read_full(&mut r, &mut head, file)?;
        let len = u64::from(format::le_u32(&head[0..4]));
        let crc = format::le_u32(&head[4..8]);
        let body_at = pos + RECORD_HEADER_LEN as u64;
        if len > file_len - body_at {
            return Err(corrupt(pos, "record length runs past the end of the file"));
        }
        let mut buf = vec![0u8; len as usize];
        read_full(&mut r, &mut buf, file)?;
        if crc32c::crc32c(&buf) != crc {
            return Err(corrupt(pos, "record checksum mismatch"));
        }
        let buf = Bytes::from(buf);
        let mut cursor = Cursor::new(&buf, body_at);
        match cursor.entry().map_err(|e| e.into_auth(file))? {
            Entry::Put { kind, id, value } => {
                let value = buf.slice(value);
                if data
                    .keys
                    .entry(kind)
                    .or_default()
                    .insert(id, value)
                    .is_some()
                {
                    return Err(corrupt(pos, "a key appears twice"));
                }
            }
            Entry::Creds(range) => {
                if data.creds.is_some() {
                    return Err(corrupt(pos, "creds appear twice"));
                }
                data.creds = Some((buf.slice(range), pos));
            }
            Entry::Delete { .. } => return Err(corrupt(pos, "a delete entry in a snapshot")),
            Entry::End { records: count } => {
                if count != records {
                    return Err(corrupt(
                        pos,
                        &format!("end record counts {count} records, the snapshot has {records}"),
                    ));
                }
                if !cursor.is_empty() {
                    return Err(corrupt(cursor.offset(), "trailing bytes in the end record"));
                }
                let end = body_at + len;
                if end != file_len {
                    return Err(corrupt(end, "data after the end record"));
                }
                return Ok(data);
            }
        }
        if !cursor.is_empty() {
            return Err(corrupt(cursor.offset(), "trailing bytes in a record"));
        }
        records += 1;
        pos = body_at + len;
    }
}

/// Writes a snapshot of the given state to `path` (created 0600, truncated) and syncs it.
/// Checks `cancel` now and then and gives up (with `Interrupted`) when it is set. Returns the
/// file's length.
pub(crate) fn write_snapshot(
    path: &Path,
    seq: u64,
    creds: Option<&Bytes>,
    keys: &Keys,
    cancel: &AtomicBool,
) -> io::Result<u64> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&format::encode_file_header(&SNAPSHOT_MAGIC, seq))?;
    let mut len = FILE_HEADER_LEN as u64;
    let mut records: u64 = 0;
    let mut prefix = Vec::with_capacity(1100);
    // A record is `len`, `crc`, then the entry; a put's value is written straight from memory
    // after its prefix (opcode, kind, id, value length).
    let mut record = |out: &mut BufWriter<_>, prefix: &[u8], value: &[u8]| -> io::Result<()> {
        let body = prefix.len() + value.len();
        let body32 = u32::try_from(body)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
        let crc = crc32c::crc32c_append(crc32c::crc32c(prefix), value);
        out.write_all(&body32.to_le_bytes())?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(prefix)?;
        out.write_all(value)?;
        len += (RECORD_HEADER_LEN + body) as u64;
        Ok(())
    };
    if let Some(creds) = creds {
        format::encode_creds(&mut prefix, creds);
        record(&mut out, &prefix, &[])?;
        records += 1;
    }
    for (kind, entries) in keys {
        for (id, value) in entries {
            if records.is_multiple_of(1024) && cancel.load(Ordering::Relaxed) {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "compaction cancelled",
                ));
            }
            prefix.clear();
            format::encode_put_prefix(&mut prefix, kind, id, value.len());
            record(&mut out, &prefix, value)?;
            records += 1;
        }
    }
    prefix.clear();
    format::encode_end(&mut prefix, records);
    record(&mut out, &prefix, &[])?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_data()?;
    Ok(len)
}

/// The bytes of an empty snapshot at sequence number 0 (a new store).
pub(crate) fn empty_snapshot() -> Vec<u8> {
    let mut out = format::encode_file_header(&SNAPSHOT_MAGIC, 0).to_vec();
    let mut end = Vec::new();
    format::encode_end(&mut end, 0);
    out.extend_from_slice(&(end.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&end).to_le_bytes());
    out.extend_from_slice(&end);
    out
}
