//! `MemoryStore`: an in-memory [`Persistence`]. For tests, examples and short-lived tools; its
//! content is gone when the last handle is dropped (it can be shared through `Arc` or cloned
//! handles to model a reopen).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::batch::WriteBatch;
use crate::creds::AuthCreds;
use crate::error::{AuthError, Result};
use crate::key::{KeyId, KeyKind, KeyValue};
use crate::persistence::{Capabilities, Persistence, Snapshot};

/// An in-memory store. Cloning gives another (open) handle to the same data, as reopening
/// a file would: [`Persistence::close`] closes one handle, and the data lives on in the others.
#[derive(Default)]
pub struct MemoryStore {
    data: Arc<RwLock<Snapshot>>,
    closed: AtomicBool,
}

impl Clone for MemoryStore {
    fn clone(&self) -> Self {
        Self {
            data: self.data.clone(),
            closed: AtomicBool::new(false),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `snapshot`.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        Self {
            data: Arc::new(RwLock::new(snapshot)),
            closed: AtomicBool::new(false),
        }
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> Snapshot {
        self.data.read().clone()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AuthError::Closed);
        }
        Ok(())
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let data = self.data.read();
        f.debug_struct("MemoryStore")
            .field("has_creds", &data.creds.is_some())
            .field("keys", &data.key_count())
            .finish()
    }
}

#[async_trait]
impl Persistence for MemoryStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("memory").atomic_commit(true)
    }

    async fn load_creds(&self) -> Result<Option<AuthCreds>> {
        self.check_open()?;
        Ok(self.data.read().creds.clone())
    }

    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
        self.check_open()?;
        let data = self.data.read();
        let Some(entries) = data.keys.get(kind) else {
            return Ok(Vec::new());
        };
        let mut found: Vec<(KeyId, KeyValue)> = ids
            .iter()
            .filter_map(|id| entries.get(id).map(|v| (id.clone(), v.clone())))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        Ok(found)
    }

    async fn list(&self, kind: &KeyKind) -> Result<Vec<KeyId>> {
        self.check_open()?;
        Ok(self
            .data
            .read()
            .keys
            .get(kind)
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn kinds(&self) -> Result<Vec<KeyKind>> {
        self.check_open()?;
        Ok(self.data.read().keys.keys().cloned().collect())
    }

    async fn commit(&self, batch: WriteBatch) -> Result<()> {
        self.check_open()?;
        batch.validate()?;
        let (creds, changes) = batch.into_parts();
        let mut data = self.data.write();
        if let Some(creds) = creds {
            data.creds = Some(creds);
        }
        for (kind, entries) in changes {
            let stored = data.keys.entry(kind.clone()).or_default();
            for (id, value) in entries {
                match value {
                    Some(value) => {
                        stored.insert(id, value);
                    }
                    None => {
                        stored.remove(&id);
                    }
                }
            }
            if stored.is_empty() {
                data.keys.remove(&kind);
            }
        }
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        self.check_open()
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}
