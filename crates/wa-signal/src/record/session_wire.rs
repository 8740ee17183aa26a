//! The `RecordStructure` protobuf written straight from a [`SessionRecord`]'s fields, byte for
//! byte what encoding the owned `proto` form gives, without building that form: no per-field
//! allocation, no copies of secrets left in freed memory. Encoding sessions is most of the
//! cost of a bulk commit (10,000 sessions).
//!
//! A nested message is written after a 5-byte hole for its length (the largest varint of a
//! `u32`), then moved back over the part of the hole its length does not need.

use super::session::{ChainState, MessageKeyMaterial, SESSION_VERSION, SessionState};

const VARINT: u32 = 0;
const LENGTH_DELIMITED: u32 = 2;

fn varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn key(buf: &mut Vec<u8>, tag: u32, wire_type: u32) {
    varint(buf, u64::from(tag << 3 | wire_type));
}

fn uint(buf: &mut Vec<u8>, tag: u32, value: u64) {
    key(buf, tag, VARINT);
    varint(buf, value);
}

/// An `int32` field: negative values are sign-extended to 64 bits, as protobuf requires.
fn int32(buf: &mut Vec<u8>, tag: u32, value: i32) {
    key(buf, tag, VARINT);
    varint(buf, i64::from(value) as u64);
}

fn bytes(buf: &mut Vec<u8>, tag: u32, data: &[u8]) {
    key(buf, tag, LENGTH_DELIMITED);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

fn message(buf: &mut Vec<u8>, tag: u32, body: impl FnOnce(&mut Vec<u8>)) {
    const HOLE: usize = 5;
    key(buf, tag, LENGTH_DELIMITED);
    let hole = buf.len();
    buf.extend_from_slice(&[0; HOLE]);
    body(buf);
    let len = buf.len() - hole - HOLE;
    let mut prefix_bytes = [0u8; HOLE];
    let mut n = 0;
    let mut value = len as u64;
    while value >= 0x80 {
        prefix_bytes[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    prefix_bytes[n] = value as u8;
    n += 1;
    buf[hole..hole + n].copy_from_slice(&prefix_bytes[..n]);
    buf.copy_within(hole + HOLE.., hole + n);
    buf.truncate(buf.len() - (HOLE - n));
}

/// Encodes a record's sessions (the current one, then the archived ones).
pub(super) fn encode_record(current: Option<&SessionState>, previous: &[SessionState]) -> Vec<u8> {
    let keys: usize = current
        .into_iter()
        .chain(previous)
        .map(|s| {
            let receiving = s.receiver_chains.iter().map(|c| c.chain.message_keys.len());
            let sending = s.sender_chain.as_ref().map_or(0, |c| c.message_keys.len());
            receiving.sum::<usize>() + sending
        })
        .sum();
    let sessions = usize::from(current.is_some()) + previous.len();
    let mut buf = Vec::with_capacity(sessions * 512 + keys * 96);
    if let Some(session) = current {
        message(&mut buf, 1, |b| session_fields(b, session));
    }
    for session in previous {
        message(&mut buf, 2, |b| session_fields(b, session));
    }
    buf
}

/// A `SessionStructure`'s fields, in field-number order.
fn session_fields(b: &mut Vec<u8>, s: &SessionState) {
    uint(b, 1, u64::from(SESSION_VERSION));
    if let Some(identity) = &s.local_identity {
        bytes(b, 2, &identity.serialize());
    }
    bytes(b, 3, &s.remote_identity.serialize());
    bytes(b, 4, s.root_key.as_bytes());
    uint(b, 5, u64::from(s.previous_counter));
    message(b, 6, |b| {
        bytes(b, 1, &s.our_ratchet_key.public.serialize());
        bytes(b, 2, s.our_ratchet_key.private.as_bytes());
        if let Some(chain) = &s.sender_chain {
            chain_fields(b, chain);
        }
    });
    for receiver in &s.receiver_chains {
        message(b, 7, |b| {
            bytes(b, 1, &receiver.ratchet_key.serialize());
            chain_fields(b, &receiver.chain);
        });
    }
    if let Some(pending) = &s.pending_pre_key {
        message(b, 9, |b| {
            if let Some(id) = pending.pre_key_id {
                uint(b, 1, u64::from(id.0));
            }
            bytes(b, 2, &pending.base_key.serialize());
            // Declared int32 by libsignal: the id travels as its 32-bit pattern.
            int32(b, 3, pending.signed_pre_key_id.0 as i32);
        });
    }
    uint(b, 10, u64::from(s.remote_registration_id));
    if let Some(id) = s.local_registration_id {
        uint(b, 11, u64::from(id));
    }
    bytes(b, 13, &s.base_key.serialize());
    if let Some(key) = &s.their_ratchet_key {
        bytes(b, 100, &key.serialize());
    }
    uint(b, 101, u64::from(s.base_key_type.to_number()));
    uint(b, 102, s.created);
    uint(b, 103, s.used);
    if let Some(closed) = s.closed {
        uint(b, 104, closed);
    }
}

/// A `Chain`'s `chain_key` and `message_keys`.
fn chain_fields(b: &mut Vec<u8>, chain: &ChainState) {
    message(b, 3, |b| {
        uint(b, 1, u64::from(chain.next_index));
        if let Some(key) = &chain.key {
            bytes(b, 2, key.as_bytes());
        }
    });
    for stored in &chain.message_keys {
        message(b, 4, |b| {
            // Borrowed when stored: a copy would cost a clone and a zeroizing drop per key.
            let derived;
            let keys = match &stored.material {
                MessageKeyMaterial::Keys(keys) => keys,
                MessageKeyMaterial::Seed(seed) => {
                    derived = seed.derive();
                    &derived
                }
            };
            uint(b, 1, u64::from(stored.index));
            bytes(b, 2, &keys.cipher_key);
            bytes(b, 3, &keys.mac_key);
            bytes(b, 4, &keys.iv);
            if let MessageKeyMaterial::Seed(seed) = &stored.material {
                bytes(b, 100, seed.as_bytes());
            }
        });
    }
}
