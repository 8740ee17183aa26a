//! The read cache of an `AuthState`: values and known-absent keys (negative entries).

use std::collections::HashMap;

use crate::key::{KeyId, KeyKind, KeyValue};

/// Cached key states. A generation counter, bumped by every applied commit, lets a reader that
/// fetched from the store while a commit landed skip caching what may already be stale.
pub(crate) struct Cache {
    entries: HashMap<(KeyKind, KeyId), Option<KeyValue>>,
    generation: u64,
    capacity: usize,
}

#[allow(clippy::large_enum_variant)] // short-lived, never stored
pub(crate) enum Lookup {
    /// Cached: the value, or `None` when known to be absent.
    Hit(Option<KeyValue>),
    Miss,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            generation: 0,
            capacity,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn lookup(&self, kind: &KeyKind, id: &KeyId) -> Lookup {
        if self.capacity == 0 {
            return Lookup::Miss;
        }
        // The tuple key needs owned parts; ids are short strings, so this clone is cheap.
        match self.entries.get(&(kind.clone(), id.clone())) {
            Some(state) => Lookup::Hit(state.clone()),
            None => Lookup::Miss,
        }
    }

    /// Caches values fetched from the store at `generation`, unless a commit happened since.
    pub(crate) fn fill(
        &mut self,
        generation: u64,
        kind: &KeyKind,
        fetched: impl IntoIterator<Item = (KeyId, Option<KeyValue>)>,
    ) {
        if generation != self.generation || self.capacity == 0 {
            return;
        }
        for (id, state) in fetched {
            self.insert(kind.clone(), id, state);
        }
    }

    /// Records a committed change and starts a new generation.
    pub(crate) fn apply(
        &mut self,
        changes: impl IntoIterator<Item = (KeyKind, KeyId, Option<KeyValue>)>,
    ) {
        self.generation += 1;
        if self.capacity == 0 {
            return;
        }
        for (kind, id, state) in changes {
            self.insert(kind, id, state);
        }
    }

    fn insert(&mut self, kind: KeyKind, id: KeyId, state: Option<KeyValue>) {
        if self.entries.len() >= self.capacity
            && !self.entries.contains_key(&(kind.clone(), id.clone()))
        {
            // Evict about half; what stays is arbitrary, which is fine for a cache whose
            // misses are served by the store.
            let keep = self.capacity / 2;
            let mut seen = 0;
            self.entries.retain(|_, _| {
                seen += 1;
                seen <= keep
            });
        }
        self.entries.insert((kind, id), state);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
