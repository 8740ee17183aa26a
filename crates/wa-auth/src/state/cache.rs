//! The read cache of an `AuthState`: values and known-absent keys (negative entries).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::key::{KeyId, KeyKind, KeyValue};

/// A key change of a commit: the new value, or `None` for a delete.
pub(crate) type Change = (KeyKind, KeyId, Option<KeyValue>);

/// Cached key states. A generation counter, bumped by every applied commit, lets a reader that
/// fetched from the store while a commit landed skip caching what may already be stale.
///
/// Commits of one key under different lock keys can return in another order than the one in
/// which the store applied them, so a key written by two commits in flight at once is evicted
/// when they return instead of updated: the next read asks the store.
pub(crate) struct Cache {
    entries: HashMap<(KeyKind, KeyId), Option<KeyValue>>,
    generation: u64,
    capacity: usize,
    /// Keys of the commits in flight: how many commits write each, and whether two overlapped.
    in_flight: HashMap<(KeyKind, KeyId), (usize, bool)>,
}

/// The keys of one commit, registered with the cache while the commit is in flight. Dropped
/// without [`InFlight::committed`] (the commit failed, or its task was cancelled), it leaves
/// the cached values as they were.
pub(crate) struct InFlight<'a> {
    cache: &'a Mutex<Cache>,
    changes: Option<Vec<Change>>,
}

impl<'a> InFlight<'a> {
    /// Registers `changes` as in flight.
    pub(crate) fn begin(cache: &'a Mutex<Cache>, changes: Vec<Change>) -> Self {
        let mut locked = cache.lock();
        for (kind, id, _) in &changes {
            let entry = locked
                .in_flight
                .entry((kind.clone(), id.clone()))
                .or_insert((0, false));
            entry.0 += 1;
            entry.1 |= entry.0 > 1;
        }
        drop(locked);
        Self {
            cache,
            changes: Some(changes),
        }
    }

    /// The commit is in the store: cache its changes.
    pub(crate) fn committed(mut self) {
        if let Some(changes) = self.changes.take() {
            self.cache.lock().end(changes, true);
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(changes) = self.changes.take() {
            self.cache.lock().end(changes, false);
        }
    }
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
            in_flight: HashMap::new(),
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

    /// Ends an in-flight commit: when `committed`, records its changes (evicting the keys
    /// another commit wrote meanwhile) and starts a new generation.
    fn end(&mut self, changes: Vec<Change>, committed: bool) {
        if committed {
            self.generation += 1;
        }
        for (kind, id, state) in changes {
            let key = (kind, id);
            let overlapped = match self.in_flight.get_mut(&key) {
                Some((count, overlapped)) => {
                    *count -= 1;
                    let overlapped = *overlapped;
                    if *count == 0 {
                        self.in_flight.remove(&key);
                    }
                    overlapped
                }
                None => false,
            };
            if !committed || self.capacity == 0 {
                continue;
            }
            if overlapped {
                self.entries.remove(&key);
            } else {
                self.insert(key.0, key.1, state);
            }
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
