//! The in-memory image of one instance: loaded once at open, updated by every commit, and the
//! source of every read.
//!
//! Keys loaded at open are kept in their stored form ([`Slot::Stored`]) and decoded when read:
//! an open costs one pass over the rows, not a decode of every Signal record, and a loaded key
//! takes about its stored size in memory. Committed values are kept decoded. A stored value
//! that cannot be decoded is [`AuthError::Corrupt`] naming the key and instance whenever it is
//! read; the row is never rewritten and the other keys stay readable — unreadable is never
//! treated as absent. Corrupt creds likewise fail `load_creds`.

use std::collections::{BTreeMap, HashMap, HashSet};

use wa_auth::{AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Result};

use crate::budget::Cache;
use crate::queue::{Data, Encoded};

/// One key.
#[derive(Clone, Debug)]
pub(crate) enum Slot {
    /// A committed value.
    Value(Box<KeyValue>),
    /// A value as loaded from its row, decoded when read.
    Stored(Data),
}

/// The creds as loaded.
#[derive(Clone, Debug)]
pub(crate) enum CredsSlot {
    Value(Box<AuthCreds>),
    /// Unreadable: the error every read of the creds returns.
    Corrupt(AuthError),
}

/// Every key and the creds of one instance; in budgeted mode, sessions and sender keys are in
/// `cache` instead of `keys` (see [`crate::budget`]).
#[derive(Debug, Default)]
pub(crate) struct Memory {
    pub creds: Option<CredsSlot>,
    pub keys: HashMap<KeyKind, HashMap<KeyId, Slot>>,
    pub cache: Option<Cache>,
}

impl Memory {
    /// Whether `kind` is read through the cache (budgeted mode, a cached kind).
    pub(crate) fn is_cached(&self, kind: &KeyKind) -> bool {
        self.cache.as_ref().is_some_and(|cache| cache.caches(kind))
    }

    pub(crate) fn load_creds(&self) -> Result<Option<AuthCreds>> {
        match &self.creds {
            None => Ok(None),
            Some(CredsSlot::Value(creds)) => Ok(Some(AuthCreds::clone(creds))),
            Some(CredsSlot::Corrupt(error)) => Err(error.clone()),
        }
    }

    /// The slots of those `ids` that exist, each once. Callers decode them with
    /// [`Memory::decode`] after releasing the lock, so a slow decode never holds up commits.
    pub(crate) fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Vec<(KeyId, Slot)> {
        let Some(entries) = self.keys.get(kind) else {
            return Vec::new();
        };
        let mut seen = HashSet::with_capacity(ids.len());
        ids.iter()
            .filter(|id| seen.insert(*id))
            .filter_map(|id| entries.get(id).map(|slot| (id.clone(), slot.clone())))
            .collect()
    }

    /// The value in `slot`, decoding a stored one; a value that does not decode is
    /// [`AuthError::Corrupt`] naming the key and the instance.
    pub(crate) fn decode(
        instance: &str,
        kind: &KeyKind,
        id: &KeyId,
        slot: Slot,
    ) -> Result<KeyValue> {
        match slot {
            Slot::Value(value) => Ok(*value),
            Slot::Stored(data) => data
                .decode(kind, id)
                .map_err(|e| e.located(|| format!("PostgreSQL instance {instance}"))),
        }
    }

    pub(crate) fn list(&self, kind: &KeyKind) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = self
            .keys
            .get(kind)
            .map(|entries| entries.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub(crate) fn kinds(&self) -> Vec<KeyKind> {
        let mut kinds: Vec<KeyKind> = self
            .keys
            .iter()
            .filter(|(_, entries)| !entries.is_empty())
            .map(|(kind, _)| kind.clone())
            .collect();
        kinds.sort();
        kinds
    }

    /// The stored (JSON) size of what is held in stored form, plus ids: what a loaded account
    /// costs in memory, give or take the maps' overhead.
    pub(crate) fn stored_bytes(&self) -> usize {
        let keys: usize = self
            .keys
            .values()
            .flat_map(HashMap::iter)
            .map(|(id, slot)| {
                let value = match slot {
                    Slot::Stored(Data::Text(text) | Data::Json(text)) => text.len(),
                    Slot::Value(_) => 0,
                };
                id.as_str().len() + value
            })
            .sum();
        keys + usize::from(self.creds.is_some()) * 2048
    }

    pub(crate) fn key_count(&self) -> usize {
        self.keys.values().map(HashMap::len).sum()
    }

    /// Applies a validated batch's parts (commit `seq`, encoded as `encoded`).
    pub(crate) fn apply(
        &mut self,
        creds: Option<AuthCreds>,
        keys: BTreeMap<KeyKind, BTreeMap<KeyId, Option<KeyValue>>>,
        seq: u64,
        encoded: &Encoded,
    ) {
        if let Some(creds) = creds {
            self.creds = Some(CredsSlot::Value(Box::new(creds)));
        }
        for (kind, entries) in keys {
            if let Some(cache) = &mut self.cache
                && cache.caches(&kind)
            {
                cache.apply(&kind, entries, seq, encoded);
                continue;
            }
            let stored = self.keys.entry(kind.clone()).or_default();
            for (id, value) in entries {
                match value {
                    Some(value) => {
                        stored.insert(id, Slot::Value(Box::new(value)));
                    }
                    None => {
                        stored.remove(&id);
                    }
                }
            }
            if stored.is_empty() {
                self.keys.remove(&kind);
            }
        }
    }

    /// Inserts a loaded key.
    pub(crate) fn insert_loaded(&mut self, kind: KeyKind, id: KeyId, slot: Slot) {
        self.keys.entry(kind).or_default().insert(id, slot);
    }
}
