//! The live data, all in memory: creds and every key's encoded value, so reads never touch the
//! disk. Also the encoded form of a batch on its way to the log.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use wa_auth::codec::encode_binary;
use wa_auth::{AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Result, WriteBatch};

use crate::format::{self, MAX_BATCH_LEN};

/// Stored creds: decoded for readers, and the exact bytes for the next snapshot.
#[derive(Clone)]
pub(crate) struct StoredCreds {
    pub decoded: Arc<AuthCreds>,
    pub raw: Bytes,
}

/// Every key's value in the canonical binary encoding, by kind then id.
pub(crate) type Keys = BTreeMap<KeyKind, BTreeMap<KeyId, Bytes>>;

/// The live state of a store.
#[derive(Default)]
pub(crate) struct State {
    /// Sequence number of the last batch applied.
    pub seq: u64,
    pub creds: Option<StoredCreds>,
    pub keys: Keys,
}

impl State {
    pub(crate) fn put(&mut self, kind: KeyKind, id: KeyId, value: Bytes) {
        self.keys.entry(kind).or_default().insert(id, value);
    }

    pub(crate) fn delete(&mut self, kind: &KeyKind, id: &KeyId) {
        if let Some(entries) = self.keys.get_mut(kind) {
            entries.remove(id);
            if entries.is_empty() {
                self.keys.remove(kind);
            }
        }
    }

    /// Number of keys.
    pub(crate) fn key_count(&self) -> usize {
        self.keys.values().map(BTreeMap::len).sum()
    }

    /// Applies an encoded batch (already durable) as batch number `seq`.
    pub(crate) fn apply(&mut self, batch: &EncodedBatch, seq: u64) {
        if let Some(creds) = &batch.creds {
            self.creds = Some(creds.clone());
        }
        for (kind, changes) in &batch.changes {
            for (id, value) in changes {
                match value {
                    Some(value) => self.put(kind.clone(), id.clone(), value.clone()),
                    None => self.delete(kind, id),
                }
            }
        }
        self.seq = seq;
    }
}

/// A validated batch, encoded for the log, with the changes to apply once it is durable.
pub(crate) struct EncodedBatch {
    /// `u32 len`, `u32 entry count`, entries: exactly the bytes the log stores for the batch.
    pub bytes: Vec<u8>,
    pub creds: Option<StoredCreds>,
    #[allow(clippy::type_complexity)]
    pub changes: Vec<(KeyKind, Vec<(KeyId, Option<Bytes>)>)>,
}

/// Encodes creds in their stored form (MessagePack with named fields).
pub(crate) fn encode_creds(creds: &AuthCreds) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(creds).map_err(|e| AuthError::invalid("creds", e.to_string()))
}

impl EncodedBatch {
    /// Encodes `batch`, which the caller has validated.
    pub(crate) fn encode(batch: WriteBatch) -> Result<Self> {
        let (creds, keys) = batch.into_parts();
        let creds = match creds {
            Some(creds) => {
                let raw = Bytes::from(encode_creds(&creds)?);
                Some(StoredCreds {
                    decoded: Arc::new(creds),
                    raw,
                })
            }
            None => None,
        };
        // Encode every value first, so the batch buffer is allocated once at its final size.
        let mut total = 8 + creds.as_ref().map_or(0, |c| 5 + c.raw.len());
        let mut entry_count: u32 = u32::from(creds.is_some());
        let mut changes = Vec::with_capacity(keys.len());
        for (kind, entries) in keys {
            let encoded = encode_values(entries.into_iter().collect());
            for (id, value) in &encoded {
                total += format::put_len_bound(&kind, id, value.as_ref().map_or(0, Bytes::len));
                entry_count = entry_count.checked_add(1).ok_or_else(too_large)?;
            }
            changes.push((kind, encoded));
        }
        if total > MAX_BATCH_LEN {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(total);
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&entry_count.to_le_bytes());
        if let Some(creds) = &creds {
            format::encode_creds(&mut bytes, &creds.raw);
        }
        for (kind, entries) in &changes {
            for (id, value) in entries {
                match value {
                    Some(value) => format::encode_put(&mut bytes, kind, id, value),
                    None => format::encode_delete(&mut bytes, kind, id),
                }
            }
        }
        let len = (bytes.len() - 4) as u32;
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        Ok(Self {
            bytes,
            creds,
            changes,
        })
    }

    /// Number of key changes.
    pub(crate) fn key_count(&self) -> usize {
        self.changes.iter().map(|(_, c)| c.len()).sum()
    }
}

/// Values of one kind above which encoding is spread over the machine's cores.
const PARALLEL_ENCODE: usize = 2048;

/// Encodes values (dropping the decoded ones as it goes), on several threads for big batches:
/// protobuf encoding of 10,000 sessions takes longer than writing them.
fn encode_values(entries: Vec<(KeyId, Option<KeyValue>)>) -> Vec<(KeyId, Option<Bytes>)> {
    fn encode(entries: Vec<(KeyId, Option<KeyValue>)>) -> Vec<(KeyId, Option<Bytes>)> {
        entries
            .into_iter()
            .map(|(id, value)| (id, value.map(|v| Bytes::from(encode_binary(&v)))))
            .collect()
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if entries.len() < PARALLEL_ENCODE || threads < 2 {
        return encode(entries);
    }
    let chunk = entries.len().div_ceil(threads);
    let mut rest = entries;
    let mut parts = Vec::with_capacity(threads);
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        parts.push(rest);
        rest = tail;
    }
    parts.push(rest);
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || encode(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(encoded) => encoded,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

fn too_large() -> AuthError {
    AuthError::invalid(
        "batch",
        format!("encodes to more than {MAX_BATCH_LEN} bytes; split it"),
    )
}
