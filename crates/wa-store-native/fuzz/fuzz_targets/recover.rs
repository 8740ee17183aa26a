//! Fuzzes the snapshot and log decoders (the whole recovery, as opening runs it) through
//! `wa_store_native::inspect::inspect_bytes`. The first input byte picks how the rest is used:
//!
//! - raw: the rest is split into a snapshot and a log, as is (header and checksum checks);
//! - log frames: a valid snapshot and log header (version 1 or 2), then frames built from the
//!   input with their checksums fixed up, some of them parts of a group, so the fuzzer reaches
//!   group assembly, batch, segment and entry decoding;
//! - snapshot records: a valid snapshot header, then records built from the input with their
//!   checksums fixed up (entry decoding, counts, end record).
//!
//! Recovery must return `Ok` or an error, never panic, loop or allocate without bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_store_native::inspect::inspect_bytes;

fn file_header(magic: &[u8; 8], seq: u64, version: u32) -> Vec<u8> {
    let mut out = [0u8; 32];
    out[0..8].copy_from_slice(magic);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    out[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&out[..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out.to_vec()
}

fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn empty_snapshot(seq: u64) -> Vec<u8> {
    let mut out = file_header(b"WANATSNP", seq, 1);
    let mut end = vec![0x7f];
    end.extend_from_slice(&0u64.to_le_bytes());
    out.extend(record(&end));
    out
}

/// Splits `data` into chunks whose lengths come from the data itself.
fn chunks(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 2 && out.len() < 64 {
        let (tag, len) = (data[0], usize::from(data[1]));
        let len = len.min(data.len() - 2);
        out.push((tag, &data[2..2 + len]));
        data = &data[2 + len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let split = rest.first().map_or(0, |&b| usize::from(b)).min(rest.len());
            let (snapshot, log) = rest.split_at(split);
            let _ = inspect_bytes(Some(snapshot), Some(log));
            let _ = inspect_bytes(Some(rest), None);
            let _ = inspect_bytes(None, Some(rest));
        }
        1 => {
            let first = rest.first().copied().unwrap_or(0);
            let base = u64::from(first % 4);
            let snapshot = empty_snapshot(base);
            let mut log = file_header(b"WANATLOG", base, 1 + u32::from(first & 0x10 != 0));
            let mut seq = base + 1;
            for (tag, payload) in chunks(rest.get(1..).unwrap_or_default()) {
                // The tag picks the batch count, whether the group continues in the next frame
                // (a part), and now and then a wrong sequence number.
                let count = u32::from(tag % 4);
                let more = tag & 0x08 != 0;
                let first = if tag >= 0xf0 { seq + 1 } else { seq };
                let mut header = [0u8; 24];
                header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
                header[4..8].copy_from_slice(&(count | u32::from(more) << 31).to_le_bytes());
                header[8..16].copy_from_slice(&first.to_le_bytes());
                header[16..20].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
                let crc = crc32c::crc32c(&header[..20]);
                header[20..24].copy_from_slice(&crc.to_le_bytes());
                log.extend_from_slice(&header);
                log.extend_from_slice(payload);
                if !more {
                    seq += u64::from(count);
                }
            }
            let _ = inspect_bytes(Some(&snapshot), Some(&log));
        }
        _ => {
            let mut snapshot = file_header(b"WANATSNP", 0, 1);
            for (_, payload) in chunks(rest) {
                snapshot.extend(record(payload));
            }
            let log = file_header(b"WANATLOG", 0, 2);
            let _ = inspect_bytes(Some(&snapshot), Some(&log));
        }
    }
});
