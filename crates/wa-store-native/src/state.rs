//! The live data, all in memory: creds and every key's encoded value, so reads never touch the
//! disk. Also the encoded form of a batch on its way to the log.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use wa_auth::codec::encode_binary;
use wa_auth::{AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Result, WriteBatch};

/// Decoded values the threads encoding a streamed batch kept, freed once it is committed.
type Decoded = Vec<Vec<KeyValue>>;

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

    /// Applies an encoded batch (already durable) as batch number `seq`. The values it
    /// replaces or deletes go to `spent`, for the caller to free once the state is unlocked
    /// (see [`free_spent`]).
    pub(crate) fn apply(&mut self, batch: EncodedBatch, seq: u64, spent: &mut Vec<Bytes>) {
        if let Some(creds) = batch.creds {
            self.creds = Some(creds);
        }
        let mut runs = batch.runs;
        while let Some(first) = runs.first() {
            // A kind's runs follow each other, their ids ascending from one run to the next.
            let kind = first.kind.clone();
            let same = runs.iter().take_while(|r| r.kind == kind).count();
            let count = runs[..same].iter().map(|r| r.entries.len()).sum();
            let changes = runs.drain(..same).flat_map(|r| r.entries);
            self.apply_kind(kind, count, changes, spent);
        }
        self.seq = seq;
    }

    /// Applies one kind's `count` changes, sorted by id: one by one when they are few against
    /// the kind's keys, else by merging both sorted sequences and building the map anew (O(n),
    /// against a lookup per change: 10,000 inserts one by one cost about 3 ms).
    fn apply_kind(
        &mut self,
        kind: KeyKind,
        count: usize,
        changes: impl Iterator<Item = (KeyId, Option<Bytes>)>,
        spent: &mut Vec<Bytes>,
    ) {
        let entries = self.keys.entry(kind.clone()).or_default();
        if count >= MERGE_MIN_CHANGES && count.saturating_mul(MERGE_RATIO) >= entries.len() {
            let old = std::mem::take(entries);
            *entries = merge(old, count, changes, spent);
        } else {
            for (id, value) in changes {
                spent.extend(match value {
                    Some(value) => entries.insert(id, value),
                    None => entries.remove(&id),
                });
            }
        }
        if entries.is_empty() {
            self.keys.remove(&kind);
        }
    }
}

/// Changes to a kind are merged into its keys (see [`State::apply_kind`]) when there are at
/// least this many, and at least one per `MERGE_RATIO` keys of the kind.
const MERGE_MIN_CHANGES: usize = 64;
const MERGE_RATIO: usize = 8;

/// The keys `old` with the sorted `changes` (`count` of them) applied; replaced and deleted
/// values go to `spent`.
fn merge(
    old: BTreeMap<KeyId, Bytes>,
    count: usize,
    changes: impl Iterator<Item = (KeyId, Option<Bytes>)>,
    spent: &mut Vec<Bytes>,
) -> BTreeMap<KeyId, Bytes> {
    let mut merged = Vec::with_capacity(old.len() + count);
    let mut old = old.into_iter().peekable();
    for (id, value) in changes {
        while let Some(kept) = old.next_if(|(k, _)| *k < id) {
            merged.push(kept);
        }
        if let Some((_, replaced)) = old.next_if(|(k, _)| *k == id) {
            spent.push(replaced);
        }
        if let Some(value) = value {
            merged.push((id, value));
        }
    }
    merged.extend(old);
    // Already sorted: collecting checks that in one pass and builds the tree bottom-up.
    merged.into_iter().collect()
}

/// Below this many, replaced values are freed on the spot; more go to a background thread
/// (freeing 10,000 values takes about a millisecond that no committer should wait for).
const FREE_LATER_MIN: usize = 256;

/// Frees the values [`State::apply`] replaced and the decoded values the encoding kept (see
/// [`EncodedBatch::take_decoded`]), on a background thread when they are many.
pub(crate) fn free_spent(spent: Vec<Bytes>, decoded: Decoded) {
    let decoded_count: usize = decoded.iter().map(Vec::len).sum();
    if spent.len() + decoded_count >= FREE_LATER_MIN {
        free_later((spent, decoded));
    }
}

/// Entries of one kind, encoded: their prefixes (opcode, kind, id, value length) in one
/// buffer, each put's value as encoded (it is also what the state keeps), so the log write
/// takes the values from where they are instead of from a copy.
pub(crate) struct Run {
    kind: KeyKind,
    prefixes: Vec<u8>,
    /// For each entry, where its prefix ends in `prefixes`.
    ends: Vec<u32>,
    entries: Vec<(KeyId, Option<Bytes>)>,
    /// crc32c and length of the run's bytes.
    crc: u32,
    len: usize,
}

impl Run {
    /// Encodes `entries` (checked by the caller), handing each decoded value to `spent` once
    /// encoded. A value too long for the format fails the run.
    pub(crate) fn encode(
        kind: KeyKind,
        entries: BTreeMap<KeyId, Option<KeyValue>>,
        mut spent: impl FnMut(KeyValue),
    ) -> Result<Self> {
        let bound: usize = entries
            .keys()
            .map(|id| format::entry_prefix_bound(&kind, id))
            .sum();
        let mut run = Self {
            prefixes: Vec::with_capacity(bound),
            ends: Vec::with_capacity(entries.len()),
            entries: Vec::with_capacity(entries.len()),
            crc: 0,
            len: 0,
            kind,
        };
        // The checksum is taken as the bytes are made, while they are in the cache.
        let mut crc = 0;
        for (id, value) in entries {
            let value = match value {
                Some(v) => {
                    let encoded = Bytes::from(encode_binary(&v));
                    spent(v);
                    // Its length must fit the entry's `u32` (and a segment's).
                    if encoded.len() > MAX_BATCH_LEN {
                        return Err(too_large());
                    }
                    Some(encoded)
                }
                None => None,
            };
            let start = run.prefixes.len();
            match &value {
                Some(v) => format::encode_put_prefix(&mut run.prefixes, &run.kind, &id, v.len()),
                None => format::encode_delete(&mut run.prefixes, &run.kind, &id),
            }
            crc = crc32c::crc32c_append(crc, &run.prefixes[start..]);
            if let Some(v) = &value {
                crc = crc32c::crc32c_append(crc, v);
                run.len += v.len();
            }
            run.ends.push(run.prefixes.len() as u32);
            run.entries.push((id, value));
        }
        run.len += run.prefixes.len();
        run.crc = crc;
        Ok(run)
    }

    /// Length of the run's bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// crc32c of the run's bytes.
    pub(crate) fn crc(&self) -> u32 {
        self.crc
    }

    /// Number of entries.
    pub(crate) fn key_count(&self) -> usize {
        self.entries.len()
    }

    /// Calls `f` with the run's bytes in order, in as few pieces as there are values.
    pub(crate) fn for_each_piece<'a>(&'a self, mut f: impl FnMut(&'a [u8])) {
        let mut start = 0;
        for (end, (_, value)) in self.ends.iter().zip(&self.entries) {
            if let Some(value) = value {
                f(&self.prefixes[start..*end as usize]);
                f(value);
                start = *end as usize;
            }
        }
        if start < self.prefixes.len() {
            f(&self.prefixes[start..]);
        }
    }
}

/// A validated batch, encoded for the log, with the changes to apply once it is durable.
pub(crate) struct EncodedBatch {
    /// `u32 len`, `u32 entry count` and the creds entry, if any: the start of the batch's
    /// bytes in the log, which the runs continue.
    head: Vec<u8>,
    runs: Vec<Run>,
    creds: Option<StoredCreds>,
    /// The decoded values of a streamed batch, kept for [`free_spent`].
    decoded: Decoded,
    /// crc32c and length of the batch's bytes in the log.
    pub crc: u32,
    pub len: usize,
}

/// Encodes creds in their stored form (MessagePack with named fields).
pub(crate) fn encode_creds(creds: &AuthCreds) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(creds).map_err(|e| AuthError::invalid("creds", e.to_string()))
}

/// Creds as the state keeps them: decoded, and encoded for the log.
pub(crate) fn encode_stored_creds(creds: AuthCreds) -> Result<StoredCreds> {
    let raw = Bytes::from(encode_creds(&creds)?);
    Ok(StoredCreds {
        decoded: Arc::new(creds),
        raw,
    })
}

impl EncodedBatch {
    /// Checks ([`WriteBatch::validate`]) and encodes `batch` on the calling thread (batches
    /// big enough to be worth threads are written while encoded: `crate::stream`).
    pub(crate) fn encode(batch: WriteBatch) -> Result<Self> {
        batch.validate()?;
        let (creds, keys) = batch.into_parts();
        let creds = creds.map(encode_stored_creds).transpose()?;
        let mut entry_count = u32::from(creds.is_some());
        for entries in keys.values() {
            let count = u32::try_from(entries.len()).map_err(|_| too_large())?;
            entry_count = entry_count.checked_add(count).ok_or_else(too_large)?;
        }
        let runs = keys
            .into_iter()
            .map(|(kind, entries)| Run::encode(kind, entries, drop))
            .collect::<Result<Vec<_>>>()?;
        let mut head = Vec::with_capacity(8 + creds.as_ref().map_or(0, |c| 5 + c.raw.len()));
        head.extend_from_slice(&[0; 4]);
        head.extend_from_slice(&entry_count.to_le_bytes());
        if let Some(creds) = &creds {
            format::encode_creds(&mut head, &creds.raw);
        }
        let len = head.len() + runs.iter().map(|r| r.len).sum::<usize>();
        if len > MAX_BATCH_LEN {
            return Err(too_large());
        }
        head[..4].copy_from_slice(&((len - 4) as u32).to_le_bytes());
        let crc = runs.iter().fold(crc32c::crc32c(&head), |crc, run| {
            extend_crc(crc, run.crc, run.len, |f| run.for_each_piece(f))
        });
        Ok(Self {
            head,
            runs,
            creds,
            decoded: Vec::new(),
            crc,
            len,
        })
    }

    /// A batch written in segments (`crate::stream`): what applying it takes.
    pub(crate) fn from_segments(
        creds: Option<StoredCreds>,
        runs: Vec<Run>,
        decoded: Decoded,
        len: usize,
    ) -> Self {
        Self {
            head: Vec::new(),
            runs,
            creds,
            decoded,
            crc: 0,
            len,
        }
    }

    /// The decoded values the encoding kept, to free after the commit (freeing them during it
    /// would take a core from the write on a small machine).
    pub(crate) fn take_decoded(&mut self) -> Decoded {
        std::mem::take(&mut self.decoded)
    }

    /// Calls `f` with the batch's bytes in the log, in order.
    pub(crate) fn for_each_piece<'a>(&'a self, mut f: impl FnMut(&'a [u8])) {
        f(&self.head);
        for run in &self.runs {
            run.for_each_piece(&mut f);
        }
    }

    /// Number of key changes.
    pub(crate) fn key_count(&self) -> usize {
        self.runs.iter().map(|r| r.entries.len()).sum()
    }
}

/// Below this many bytes, extending a checksum over bytes costs less than combining it with
/// their checksum (`crc32c_combine` takes about 15 µs whatever the length).
const COMBINE_MIN_LEN: usize = 1 << 20;

/// The crc32c of bytes with checksum `crc` followed by `len` bytes with checksum `next_crc`,
/// which `pieces` calls its argument with: computed over the bytes when they are few.
pub(crate) fn extend_crc<'a>(
    crc: u32,
    next_crc: u32,
    len: usize,
    pieces: impl FnOnce(&mut dyn FnMut(&'a [u8])),
) -> u32 {
    if len >= COMBINE_MIN_LEN {
        return crc32c::crc32c_combine(crc, next_crc, len);
    }
    let mut crc = crc;
    pieces(&mut |piece| crc = crc32c::crc32c_append(crc, piece));
    crc
}

/// Frees `values` on a background thread (here, when no thread can be started: the refused
/// closure is dropped with them).
fn free_later<T: Send + 'static>(values: T) {
    let _ = std::thread::Builder::new()
        .name("wa-native-free".into())
        .spawn(move || drop(values));
}

pub(crate) fn too_large() -> AuthError {
    AuthError::invalid(
        "batch",
        format!("encodes to more than {MAX_BATCH_LEN} bytes; split it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Cursor, Entry};

    fn batch(keys: usize) -> WriteBatch {
        let mut batch = WriteBatch::new();
        batch.set_creds(AuthCreds::generate());
        for i in 0..keys {
            let id = format!("{i}");
            match i % 3 {
                0 => batch.delete(KeyKind::PreKey, id),
                1 => batch.put(
                    KeyKind::LidMapping,
                    id,
                    KeyValue::LidMapping(format!("{i}0")),
                ),
                _ => batch.put(
                    KeyKind::from_name("future").unwrap(),
                    id,
                    KeyValue::Other(serde_json::json!({ "x": i })),
                ),
            };
        }
        batch
    }

    /// Batches small and big: the pieces are the batch's log bytes, which decode
    /// to its entries, and the crc and length are theirs.
    #[test]
    fn pieces_crc_and_length_describe_the_batch() {
        for keys in [0, 1, 5, 4099] {
            let encoded = EncodedBatch::encode(batch(keys)).unwrap();
            let mut bytes = Vec::new();
            encoded.for_each_piece(|p| bytes.extend_from_slice(p));
            assert_eq!(bytes.len(), encoded.len, "{keys} keys");
            assert_eq!(crc32c::crc32c(&bytes), encoded.crc, "{keys} keys");
            assert_eq!(encoded.key_count(), keys);
            let mut cursor = Cursor::new(&bytes, 0);
            assert_eq!(cursor.u32("len").unwrap() as usize, bytes.len() - 4);
            let count = cursor.u32("count").unwrap() as usize;
            assert_eq!(count, keys + 1);
            let (mut puts, mut deletes, mut creds) = (0, 0, 0);
            for _ in 0..count {
                match cursor.entry().unwrap() {
                    Entry::Put { .. } => puts += 1,
                    Entry::Delete { .. } => deletes += 1,
                    Entry::Creds(_) => creds += 1,
                    Entry::End { .. } => panic!("end entry in a batch"),
                }
            }
            assert!(cursor.is_empty());
            assert_eq!((puts + deletes, creds), (keys, 1));
            assert_eq!(deletes, keys.div_ceil(3));
        }
    }

    /// Whichever way a kind's changes are applied (merged into its keys, or one by one), the
    /// state ends up as the changes made one by one say, and the replaced and deleted values
    /// are handed back.
    #[test]
    fn apply_merges_or_inserts_to_the_same_state() {
        let kind = KeyKind::LidMapping;
        let (mut state, mut model) = (State::default(), BTreeMap::<KeyId, Bytes>::new());
        // (changes, id stride): many changes into few keys (merged, one run or several) and
        // few into many (one by one), then everything deleted.
        let rounds = [(3000, 1), (5, 7), (4097, 3), (100, 2), (70, 1)];
        for (round, (changes, stride)) in rounds.into_iter().chain([(0, 0)]).enumerate() {
            let mut batch = WriteBatch::new();
            for i in 0..changes {
                let id = KeyId::new(format!("{:06}", i * stride));
                match (i + round) % 4 {
                    0 => batch.delete(kind.clone(), id),
                    _ => batch.put(
                        kind.clone(),
                        id,
                        KeyValue::LidMapping(format!("{round}-{i}")),
                    ),
                };
            }
            if changes == 0 {
                for id in model.keys() {
                    batch.delete(kind.clone(), id.clone());
                }
            }
            let mut replaced = 0;
            for (_, id, value) in batch.entries() {
                let old = match value {
                    Some(v) => model.insert(id.clone(), Bytes::from(encode_binary(v))),
                    None => model.remove(id),
                };
                replaced += usize::from(old.is_some());
            }
            let mut spent = Vec::new();
            let seq = round as u64 + 1;
            state.apply(EncodedBatch::encode(batch).unwrap(), seq, &mut spent);
            assert_eq!(spent.len(), replaced, "round {round}");
            assert_eq!(state.seq, seq);
            assert_eq!(state.keys.get(&kind), (!model.is_empty()).then_some(&model));
        }
        assert!(state.keys.is_empty());
    }
}
