//! `AuthState`: the runtime side of auth state. Creds in memory with change events, and a
//! cached, transactional key store over any [`Persistence`].
//!
//! Protocol code sees the key store through [`Transaction`], which implements wa-signal's store
//! traits, so a whole decrypt or encrypt is one unit of work committed as ONE [`WriteBatch`].

mod cache;
mod lock;
mod signal_store;
mod transaction;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::broadcast;
use tracing::{debug, info, warn};
use wa_signal::SignalAddress;

pub use lock::LockKey;
pub use transaction::Transaction;

use crate::batch::WriteBatch;
use crate::creds::AuthCreds;
use crate::error::{AuthError, Result};
use crate::key::{KeyId, KeyKind, KeyValue};
use crate::persistence::{Capabilities, Persistence, PersistenceExt};
use cache::{Cache, InFlight, Lookup};
use lock::KeyLocks;

/// Options of an [`AuthState`], with documented defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthStateOptions {
    /// Persist creds as part of every commit that changes them (default `true`). With `false`,
    /// creds changes stay in memory and are announced by [`AuthEvent::CredsUpdated`]; saving
    /// them is then the caller's job (and creds are no longer atomic with key changes).
    pub auto_persist_creds: bool,
    /// How many key states (values and known-absent keys) the read cache holds; 0 disables it
    /// (default 100 000).
    pub cache_capacity: usize,
    /// Capacity of the event channel (default 64). A subscriber that falls further behind
    /// misses events; each `CredsUpdated` carries the full creds, so the latest one suffices.
    pub event_capacity: usize,
}

impl Default for AuthStateOptions {
    fn default() -> Self {
        Self {
            auto_persist_creds: true,
            cache_capacity: 100_000,
            event_capacity: 64,
        }
    }
}

impl AuthStateOptions {
    /// Sets [`AuthStateOptions::auto_persist_creds`].
    pub fn auto_persist_creds(mut self, yes: bool) -> Self {
        self.auto_persist_creds = yes;
        self
    }

    /// Sets [`AuthStateOptions::cache_capacity`].
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }
}

/// Something that happened to the auth state.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AuthEvent {
    /// The creds changed (and, with auto-persist, were committed). Carries the new creds.
    CredsUpdated(Arc<AuthCreds>),
    /// A batch of key changes was committed: how many keys of each kind changed.
    KeysCommitted(BTreeMap<KeyKind, usize>),
}

/// The auth state of one linked device over a [`Persistence`]. Cheap to clone (a handle).
#[derive(Clone)]
pub struct AuthState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Persistence>,
    options: AuthStateOptions,
    creds: parking_lot::RwLock<Arc<AuthCreds>>,
    /// Held from the commit of a batch carrying creds until the in-memory creds are updated,
    /// so creds commits that race (e.g. `set` outside the creds lock) cannot return out of
    /// order and leave older creds in memory than in the store.
    creds_commits: tokio::sync::Mutex<()>,
    cache: parking_lot::Mutex<Cache>,
    locks: KeyLocks,
    events: broadcast::Sender<AuthEvent>,
    /// Set by [`AuthState::close`]: every later operation fails with [`AuthError::Closed`].
    closed: std::sync::atomic::AtomicBool,
}

tokio::task_local! {
    /// Lock keys held by the transactions running in the current task, to turn a re-entrant
    /// `AuthState::transaction` (a certain deadlock) into an error.
    static HELD_LOCKS: BTreeSet<LockKey>;
}

impl AuthState {
    /// Loads the auth state from `store` with default options. Creds are created (and
    /// committed) only when the store is completely empty; a store holding keys but no creds is
    /// an error, and unreadable creds are an error — never a reason to start over.
    pub async fn load(store: Arc<dyn Persistence>) -> Result<Self> {
        Self::load_with(store, AuthStateOptions::default()).await
    }

    /// [`AuthState::load`] with options.
    pub async fn load_with(store: Arc<dyn Persistence>, options: AuthStateOptions) -> Result<Self> {
        let creds = match store.load_creds().await? {
            Some(creds) => creds,
            None => {
                if !store.is_empty().await? {
                    return Err(AuthError::NotFound {
                        what: "creds in a store that holds keys (refusing to create a new identity over existing keys)"
                            .into(),
                    });
                }
                info!(
                    backend = store.capabilities().backend,
                    "empty store: creating fresh creds"
                );
                let creds = AuthCreds::generate();
                store.save_creds(&creds).await?;
                creds
            }
        };
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                cache: parking_lot::Mutex::new(Cache::new(options.cache_capacity)),
                options,
                creds: parking_lot::RwLock::new(Arc::new(creds)),
                creds_commits: tokio::sync::Mutex::new(()),
                locks: KeyLocks::default(),
                events,
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// The backend.
    pub fn store(&self) -> &Arc<dyn Persistence> {
        &self.inner.store
    }

    /// The backend's guarantees.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.store.capabilities()
    }

    /// The current creds.
    pub fn creds(&self) -> Arc<AuthCreds> {
        self.inner.creds.read().clone()
    }

    /// Subscribes to [`AuthEvent`]s.
    pub fn subscribe(&self) -> broadcast::Receiver<AuthEvent> {
        self.inner.events.subscribe()
    }

    /// Changes the creds under the creds lock and commits them (unless auto-persist is off);
    /// returns the new creds. Nothing changes if the commit fails.
    pub async fn update_creds(
        &self,
        update: impl FnOnce(&mut AuthCreds) + Send,
    ) -> Result<Arc<AuthCreds>> {
        self.transaction(LockKey::creds(), async |tx: &mut Transaction<'_>| {
            tx.update_creds(update).await
        })
        .await?;
        Ok(self.creds())
    }

    /// Writes the current creds to the store (for callers that turned auto-persist off, or
    /// after a restore).
    pub async fn save_creds(&self) -> Result<()> {
        let creds = self.creds();
        self.inner.store.save_creds(&creds).await
    }

    /// Values of `kind` for those `ids` that exist, from the cache or the store.
    pub async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
        self.check_open()?;
        let mut found = Vec::with_capacity(ids.len());
        let mut misses = Vec::new();
        let generation = {
            let cache = self.inner.cache.lock();
            for id in ids {
                match cache.lookup(kind, id) {
                    Lookup::Hit(Some(value)) => found.push((id.clone(), value)),
                    Lookup::Hit(None) => {}
                    Lookup::Miss => misses.push(id.clone()),
                }
            }
            cache.generation()
        };
        if misses.is_empty() {
            return Ok(found);
        }
        misses.sort();
        misses.dedup();
        let fetched = self.inner.store.get(kind, &misses).await?;
        let mut by_id: BTreeMap<KeyId, KeyValue> = fetched.into_iter().collect();
        let states: Vec<(KeyId, Option<KeyValue>)> = misses
            .into_iter()
            .map(|id| {
                let v = by_id.remove(&id);
                (id, v)
            })
            .collect();
        self.inner
            .cache
            .lock()
            .fill(generation, kind, states.iter().cloned());
        found.extend(states.into_iter().filter_map(|(id, v)| v.map(|v| (id, v))));
        Ok(found)
    }

    /// One value, if it exists.
    pub async fn get_one(&self, kind: &KeyKind, id: &KeyId) -> Result<Option<KeyValue>> {
        Ok(self
            .get(kind, std::slice::from_ref(id))
            .await?
            .pop()
            .map(|(_, v)| v))
    }

    /// Commits `batch` directly, outside any transaction. Callers that may race on the same
    /// keys should use [`AuthState::transaction`] instead.
    pub async fn set(&self, batch: WriteBatch) -> Result<()> {
        self.apply(batch).await
    }

    /// Durability barrier: see [`Persistence::flush`].
    pub async fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.inner.store.flush().await
    }

    /// Flushes, then closes the store ([`Persistence::close`]): everything committed is
    /// durable and the store released when it returns. Idempotent; afterwards reads, writes
    /// and transactions of every handle of this state fail with [`AuthError::Closed`]. When
    /// the flush fails the store is still closed (and the flush's error returned).
    pub async fn close(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let flushed = self.inner.store.flush().await;
        let closed = self.inner.store.close().await;
        flushed.and(closed)
    }

    /// Fails with [`AuthError::Closed`] once [`AuthState::close`] was called.
    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AuthError::Closed);
        }
        Ok(())
    }

    /// Runs `work` as one transaction under `lock`: reads and writes go through the handle,
    /// writes are buffered, and when `work` succeeds they are committed as ONE batch. When
    /// `work` fails, or the commit fails, nothing is written and the cache is untouched.
    ///
    /// Transactions on the same lock key run one at a time, in arrival order; on different
    /// keys they run in parallel. Inside a transaction use the handle's
    /// [`Transaction::transaction`] to nest; calling this method again from inside for a key
    /// the task already holds returns an error instead of deadlocking.
    pub async fn transaction<T, E, F>(&self, lock: impl Into<LockKey>, work: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut Transaction<'_>) -> Result<T, E>,
        E: From<AuthError>,
    {
        let lock = lock.into();
        let mut held = HELD_LOCKS.try_with(Clone::clone).unwrap_or_default();
        if held.contains(&lock) {
            return Err(AuthError::invalid(
                format!("transaction on {lock}"),
                "this task already holds that lock; nest with Transaction::transaction instead",
            )
            .into());
        }
        self.check_open()?;
        let guard = self.inner.locks.acquire(&lock).await;
        held.insert(lock.clone());
        let mut tx = Transaction::new(self, lock, guard);
        let outcome = HELD_LOCKS.scope(held, work(&mut tx)).await;
        match outcome {
            Ok(value) => {
                let (batch, flush) = tx.finish();
                self.apply(batch).await?;
                if flush && self.capabilities().needs_flush() {
                    self.inner.store.flush().await?;
                }
                Ok(value)
            }
            Err(err) => {
                debug!("transaction failed; discarding its buffered writes");
                Err(err)
            }
        }
    }

    /// The canonical lock key of a Signal address: a phone-number address (plain or hosted)
    /// whose LID is known (a `lid-mapping` key exists) maps to the LID address, so both forms
    /// share one lock. Which addresses have a LID counterpart is wa-proto's rule
    /// ([`SignalAddress::to_lid`]).
    pub async fn lock_key_for(&self, address: &SignalAddress) -> Result<LockKey> {
        let as_given = || LockKey::new(address.to_string());
        let Some(phone_number) = address.phone_number_user() else {
            return Ok(as_given());
        };
        let mapping = self
            .get_one(&KeyKind::LidMapping, &KeyId::new(phone_number))
            .await?;
        Ok(match mapping {
            Some(KeyValue::LidMapping(lid)) => {
                address.to_lid(&lid).map_or_else(as_given, |lid_address| {
                    LockKey::new(lid_address.to_string())
                })
            }
            _ => as_given(),
        })
    }

    /// Commits a batch and, once it is in the store, updates the cache and creds and announces it.
    async fn apply(&self, batch: WriteBatch) -> Result<()> {
        self.check_open()?;
        if batch.is_empty() {
            return Ok(());
        }
        batch.validate()?;
        let new_creds = batch.creds().cloned();
        let mut counts = BTreeMap::new();
        let changes: Vec<(KeyKind, KeyId, Option<KeyValue>)> = batch
            .entries()
            .map(|(kind, id, value)| {
                *counts.entry(kind.clone()).or_insert(0usize) += 1;
                (kind.clone(), id.clone(), value.cloned())
            })
            .collect();

        let to_store = if self.inner.options.auto_persist_creds || new_creds.is_none() {
            batch
        } else {
            let (_, keys) = batch.into_parts();
            let mut stripped = WriteBatch::new();
            for (kind, entries) in keys {
                for (id, value) in entries {
                    match value {
                        Some(value) => stripped.put(kind.clone(), id, value),
                        None => stripped.delete(kind.clone(), id),
                    };
                }
            }
            stripped
        };
        let _creds_turn = match new_creds {
            Some(_) => Some(self.inner.creds_commits.lock().await),
            None => None,
        };
        let in_flight = InFlight::begin(&self.inner.cache, changes);
        if !to_store.is_empty()
            && let Err(err) = self.inner.store.commit(to_store).await
        {
            warn!(error = %err, "commit failed; cache and creds unchanged");
            return Err(err);
        }

        in_flight.committed();
        if let Some(creds) = new_creds {
            let creds = Arc::new(creds);
            *self.inner.creds.write() = creds.clone();
            let _ = self.inner.events.send(AuthEvent::CredsUpdated(creds));
        }
        if !counts.is_empty() {
            let _ = self.inner.events.send(AuthEvent::KeysCommitted(counts));
        }
        Ok(())
    }

    pub(crate) async fn acquire_lock(&self, lock: &LockKey) -> lock::LockGuard {
        self.inner.locks.acquire(lock).await
    }

    #[cfg(test)]
    pub(crate) fn cached_entries(&self) -> usize {
        self.inner.cache.lock().len()
    }
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("store", &self.inner.store)
            .field("me", &self.inner.creds.read().me)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    #[tokio::test]
    async fn the_cache_stays_within_its_capacity() {
        let store = Arc::new(MemoryStore::new());
        let state = AuthState::load_with(store, AuthStateOptions::default().cache_capacity(100))
            .await
            .unwrap();
        for i in 0..1000 {
            state
                .get_one(&KeyKind::Session, &KeyId::new(format!("{i}.0")))
                .await
                .unwrap();
        }
        assert!(
            state.cached_entries() <= 100,
            "cache grew to {}",
            state.cached_entries()
        );
        assert!(state.cached_entries() > 0);
    }
}
