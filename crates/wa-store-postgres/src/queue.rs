//! The write-behind queue: committed batches, encoded to their JSON text at commit time and
//! coalesced per key (the last write wins, deletes included) until the flusher writes them.
//!
//! Every commit gets a sequence number. The queue always holds whole batches: a flush writes
//! everything queued up to some sequence number in one transaction, so the database always
//! holds the state after a prefix of the commits, never part of a batch.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;
use wa_auth::codec::{decode_json, encode_json};
use wa_auth::{AuthError, Result, WriteBatch};
use wa_auth::{KeyId, KeyKind, KeyValue};

/// A key's value as the database receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Data {
    /// A value whose canonical JSON is a string (sessions, sender keys, identity keys and LID
    /// mappings): the string itself, stored with `to_jsonb(text)`. Saves serialising and
    /// parsing JSON for the most common and largest values.
    Text(String),
    /// Any other value: its JSON text, stored with `::jsonb`.
    Json(String),
}

impl Data {
    fn of(json: Value) -> Self {
        match json {
            Value::String(text) => Data::Text(text),
            other => Data::Json(other.to_string()),
        }
    }

    /// The length of the stored text.
    pub(crate) fn len(&self) -> usize {
        match self {
            Data::Text(text) | Data::Json(text) => text.len(),
        }
    }

    /// Decodes the value of `kind` stored under `id` ([`AuthError::Corrupt`] when it cannot).
    pub(crate) fn decode(&self, kind: &KeyKind, id: &KeyId) -> Result<KeyValue> {
        let json = match self {
            Data::Text(text) => Value::String(text.clone()),
            Data::Json(text) => {
                serde_json::from_str(text).map_err(|e| AuthError::corrupt_key(kind, id, "", e))?
            }
        };
        decode_json(kind, id, &json)
    }
}

/// A batch in the form the database receives; `None` for a delete.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub creds: Option<String>,
    pub keys: Vec<(KeyKind, KeyId, Option<Data>)>,
}

impl Encoded {
    /// Encodes a validated batch. Refuses values PostgreSQL cannot store (a NUL character in
    /// any JSON string or object key), so that no batch can poison the queue.
    pub(crate) fn of(batch: &WriteBatch) -> Result<Self> {
        let creds = match batch.creds() {
            Some(creds) => {
                let json = serde_json::to_value(creds)
                    .map_err(|e| AuthError::invalid("creds", e.to_string()))?;
                if has_nul(&json) {
                    return Err(AuthError::invalid(
                        "creds",
                        "PostgreSQL cannot store a NUL character (\\u0000) in JSON text",
                    ));
                }
                Some(json.to_string())
            }
            None => None,
        };
        let mut keys = Vec::with_capacity(batch.key_count());
        for (kind, id, value) in batch.entries() {
            let data = match value {
                Some(value) => {
                    let json = encode_json(value);
                    if has_nul(&json) {
                        return Err(AuthError::invalid(
                            format!("{kind} {id}"),
                            "PostgreSQL cannot store a NUL character (\\u0000) in JSON text",
                        ));
                    }
                    Some(Data::of(json))
                }
                None => None,
            };
            keys.push((kind.clone(), id.clone(), data));
        }
        Ok(Self { creds, keys })
    }

    /// Number of changes (keys, plus one for creds).
    pub(crate) fn len(&self) -> usize {
        self.keys.len() + usize::from(self.creds.is_some())
    }
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Coalesced changes of a run of consecutive batches.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The newest creds, if any batch set them.
    pub creds: Option<String>,
    /// The newest change per key, or `None` for a delete.
    pub keys: HashMap<(KeyKind, KeyId), Option<Data>>,
    /// How many batches were merged.
    pub batches: u64,
    /// The sequence number of the newest merged batch.
    pub last_seq: u64,
    /// When the oldest merged batch was committed.
    pub since: Option<Instant>,
}

impl Pending {
    /// Merges batch `seq` (newer than everything merged so far).
    pub(crate) fn push(&mut self, batch: Encoded, seq: u64, now: Instant) {
        if let Some(creds) = batch.creds {
            self.creds = Some(creds);
        }
        self.keys.reserve(batch.keys.len());
        for (kind, id, data) in batch.keys {
            self.keys.insert((kind, id), data);
        }
        self.batches += 1;
        self.last_seq = seq;
        self.since.get_or_insert(now);
    }

    /// Merges `newer`, whose batches all follow this one's.
    pub(crate) fn absorb(&mut self, newer: Pending) {
        if newer.is_empty() {
            return;
        }
        if newer.creds.is_some() {
            self.creds = newer.creds;
        }
        if self.keys.is_empty() {
            self.keys = newer.keys;
        } else {
            self.keys.extend(newer.keys);
        }
        self.batches += newer.batches;
        self.last_seq = newer.last_seq;
        if self.since.is_none() {
            self.since = newer.since;
        }
    }

    /// Keys and creds waiting (what the queue capacity counts).
    pub(crate) fn len(&self) -> usize {
        self.keys.len() + usize::from(self.creds.is_some())
    }

    /// Whether no batch was merged.
    pub(crate) fn is_empty(&self) -> bool {
        self.batches == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lid(batch: &mut WriteBatch, id: &str, value: &str) {
        batch.put(KeyKind::LidMapping, id, KeyValue::LidMapping(value.into()));
    }

    #[test]
    fn last_write_wins_across_batches_and_deletes_are_kept() {
        let now = Instant::now();
        let mut pending = Pending::default();
        let mut a = WriteBatch::new();
        lid(&mut a, "1", "a");
        lid(&mut a, "2", "a");
        pending.push(Encoded::of(&a).unwrap(), 1, now);
        let mut b = WriteBatch::new();
        lid(&mut b, "1", "b");
        b.delete(KeyKind::LidMapping, "2");
        b.delete(KeyKind::LidMapping, "3");
        let mut newer = Pending::default();
        newer.push(Encoded::of(&b).unwrap(), 2, now);
        pending.absorb(newer);
        assert_eq!(pending.len(), 3);
        assert_eq!(pending.batches, 2);
        assert_eq!(pending.last_seq, 2);
        let key = |id: &str| (KeyKind::LidMapping, KeyId::new(id));
        assert_eq!(pending.keys[&key("1")], Some(Data::Text("b".into())));
        assert_eq!(pending.keys[&key("2")], None);
        assert_eq!(pending.keys[&key("3")], None);
    }

    #[test]
    fn nul_characters_are_refused_before_queueing() {
        let mut batch = WriteBatch::new();
        batch.put(
            KeyKind::from_name("future-kind").unwrap(),
            "x",
            KeyValue::Other(serde_json::json!({"a": ["ok", "bad\u{0}"]})),
        );
        assert!(matches!(
            Encoded::of(&batch),
            Err(AuthError::Invalid { .. })
        ));
        let mut key_nul = WriteBatch::new();
        key_nul.put(
            KeyKind::from_name("future-kind").unwrap(),
            "x",
            KeyValue::Other(serde_json::json!({"k\u{0}": 1})),
        );
        assert!(Encoded::of(&key_nul).is_err());
    }
}
