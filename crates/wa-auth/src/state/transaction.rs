//! The transaction handle.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::AuthState;
use super::lock::{LockGuard, LockKey};
use crate::batch::WriteBatch;
use crate::creds::AuthCreds;
use crate::error::{AuthError, Result};
use crate::key::{KeyId, KeyKind, KeyValue};

/// A transaction in progress: reads see the transaction's own buffered writes, writes are
/// buffered until the outermost transaction ends. Created by [`AuthState::transaction`].
pub struct Transaction<'s> {
    state: &'s AuthState,
    pending: WriteBatch,
    held: Vec<(LockKey, LockGuard)>,
    flush_before_send: bool,
}

impl<'s> Transaction<'s> {
    pub(super) fn new(state: &'s AuthState, lock: LockKey, guard: LockGuard) -> Self {
        Self {
            state,
            pending: WriteBatch::new(),
            held: vec![(lock, guard)],
            flush_before_send: false,
        }
    }

    /// The buffered batch and whether a flush was requested; the locks are released when the
    /// handle is dropped, after the caller committed.
    pub(super) fn finish(&mut self) -> (WriteBatch, bool) {
        (std::mem::take(&mut self.pending), self.flush_before_send)
    }

    /// The auth state this transaction belongs to.
    pub fn state(&self) -> &'s AuthState {
        self.state
    }

    /// Whether this transaction holds `lock`.
    pub fn holds(&self, lock: &LockKey) -> bool {
        self.held.iter().any(|(held, _)| held == lock)
    }

    /// Values of `kind` for those `ids` that exist, seeing this transaction's own writes.
    pub async fn get(&mut self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
        let mut found = Vec::with_capacity(ids.len());
        let mut misses = Vec::new();
        for id in ids {
            match self.pending.get(kind, id) {
                Some(Some(value)) => found.push((id.clone(), value.clone())),
                Some(None) => {}
                None => misses.push(id.clone()),
            }
        }
        if !misses.is_empty() {
            found.extend(self.state.get(kind, &misses).await?);
        }
        Ok(found)
    }

    /// One value, if it exists.
    pub async fn get_one(&mut self, kind: &KeyKind, id: &KeyId) -> Result<Option<KeyValue>> {
        Ok(self
            .get(kind, std::slice::from_ref(id))
            .await?
            .pop()
            .map(|(_, v)| v))
    }

    /// Buffers a put of `value` under `kind`/`id` (checked when the batch commits).
    pub fn put(&mut self, kind: KeyKind, id: impl Into<KeyId>, value: KeyValue) {
        self.pending.put(kind, id, value);
    }

    /// Buffers a put of a typed value under its own kind.
    pub fn put_value(&mut self, id: impl Into<KeyId>, value: KeyValue) -> Result<()> {
        self.pending.put_value(id, value).map(|_| ())
    }

    /// Buffers a delete.
    pub fn delete(&mut self, kind: KeyKind, id: impl Into<KeyId>) {
        self.pending.delete(kind, id);
    }

    /// The creds as this transaction sees them (its own pending change, or the current creds).
    pub fn creds(&self) -> Arc<AuthCreds> {
        match self.pending.creds() {
            Some(creds) => Arc::new(creds.clone()),
            None => self.state.creds(),
        }
    }

    /// Changes the creds within this transaction. Takes the creds lock first (held until the
    /// transaction ends), so concurrent creds updates never overwrite each other.
    pub async fn update_creds(&mut self, update: impl FnOnce(&mut AuthCreds)) -> Result<()> {
        self.acquire(LockKey::creds()).await;
        let mut creds = match self.pending.creds() {
            Some(creds) => creds.clone(),
            None => AuthCreds::clone(&self.state.creds()),
        };
        update(&mut creds);
        self.pending.set_creds(creds);
        Ok(())
    }

    /// Asks that the commit be durable before the transaction returns, also on write-behind
    /// backends: required before sending anything whose counters this transaction advanced.
    pub fn require_flush_before_send(&mut self) {
        self.flush_before_send = true;
    }

    /// Runs `work` as a nested transaction: it shares this transaction's buffer and commits
    /// with it. `lock` is taken if this transaction does not hold it yet (and held until the
    /// outermost transaction ends). If `work` fails, its writes are rolled back and the outer
    /// transaction may continue.
    pub async fn transaction<T, E, F>(&mut self, lock: impl Into<LockKey>, work: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut Transaction<'s>) -> Result<T, E>,
        E: From<AuthError>,
    {
        self.acquire(lock.into()).await;
        let savepoint = self.pending.clone();
        let flush = self.flush_before_send;
        let outcome = work(self).await;
        if outcome.is_err() {
            self.pending = savepoint;
            self.flush_before_send = flush;
        }
        outcome
    }

    /// The number of buffered key changes.
    pub fn pending_changes(&self) -> usize {
        self.pending.key_count()
    }

    async fn acquire(&mut self, lock: LockKey) {
        if !self.holds(&lock) {
            let guard = self.state.acquire_lock(&lock).await;
            self.held.push((lock, guard));
        }
    }
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: BTreeMap<&KeyKind, usize> =
            self.pending
                .entries()
                .fold(BTreeMap::new(), |mut acc, (kind, _, _)| {
                    *acc.entry(kind).or_default() += 1;
                    acc
                });
        f.debug_struct("Transaction")
            .field(
                "locks",
                &self.held.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("pending", &counts)
            .field("creds_changed", &self.pending.creds().is_some())
            .finish()
    }
}
