//! `Persistence`: the backend seam. What a store crate implements, kept minimal and object
//! safe (`Arc<dyn Persistence>`); conveniences live in [`PersistenceExt`], which backends cannot
//! override, so atomicity never depends on a backend remembering to override a default.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::batch::WriteBatch;
use crate::creds::AuthCreds;
use crate::error::Result;
use crate::key::{KeyId, KeyKind, KeyValue};

/// What a backend guarantees. Callers (AuthState, migrations) adapt to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// A short backend name (`memory`, `native`, `compat`, `postgres`, ...).
    pub backend: &'static str,
    /// A committed batch lands entirely or not at all, across crashes.
    pub atomic_commit: bool,
    /// A batch is durable (on disk / in the database) when `commit` returns.
    pub durable_on_commit: bool,
    /// `commit` only queues the batch; [`Persistence::flush`] is the durability barrier.
    pub write_behind: bool,
    /// The store survives the process (false for the in-memory store).
    pub persistent: bool,
}

impl Capabilities {
    /// Capabilities of a backend named `backend`, with every guarantee off; switch on what the
    /// backend provides with the builder methods.
    pub const fn new(backend: &'static str) -> Self {
        Self {
            backend,
            atomic_commit: false,
            durable_on_commit: false,
            write_behind: false,
            persistent: false,
        }
    }

    /// Sets [`Capabilities::atomic_commit`].
    pub const fn atomic_commit(mut self, yes: bool) -> Self {
        self.atomic_commit = yes;
        self
    }

    /// Sets [`Capabilities::durable_on_commit`].
    pub const fn durable_on_commit(mut self, yes: bool) -> Self {
        self.durable_on_commit = yes;
        self
    }

    /// Sets [`Capabilities::write_behind`].
    pub const fn write_behind(mut self, yes: bool) -> Self {
        self.write_behind = yes;
        self
    }

    /// Sets [`Capabilities::persistent`].
    pub const fn persistent(mut self, yes: bool) -> Self {
        self.persistent = yes;
        self
    }
}

/// The backend seam: where creds and keys live.
///
/// Rules every implementation keeps (the `conformance` suite, `wa_auth::conformance` with the `conformance` feature, checks them):
/// - Unreadable is not absent: a value or creds that cannot be decoded is
///   [`AuthError::Corrupt`](crate::AuthError::Corrupt) naming the file/key, never `None`.
/// - `commit` calls [`WriteBatch::validate`] and then applies the batch all or nothing.
/// - `get` returns only the ids that exist, each at most once, in any order.
/// - Unknown kinds ([`KeyKind::Other`]) and unknown creds fields are stored and returned intact.
#[async_trait]
pub trait Persistence: Send + Sync + Debug {
    /// What this backend guarantees.
    fn capabilities(&self) -> Capabilities;

    /// The stored creds, or `None` when the store holds none.
    async fn load_creds(&self) -> Result<Option<AuthCreds>>;

    /// The values stored under `kind` for those of `ids` that exist.
    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>>;

    /// Every id stored under `kind`.
    async fn list(&self, kind: &KeyKind) -> Result<Vec<KeyId>>;

    /// Every kind with at least one stored key (including unknown kinds).
    async fn kinds(&self) -> Result<Vec<KeyKind>>;

    /// Applies `batch` (creds, puts, deletes) atomically. A backend that cannot tell whether a
    /// failed commit was applied returns [`AuthError::CommitUnknown`](crate::AuthError::CommitUnknown)
    /// (the batch is then found whole or not at all once the store is reopened), so that other
    /// errors can mean "not applied".
    async fn commit(&self, batch: WriteBatch) -> Result<()>;

    /// Durability barrier for write-behind backends: returns once every batch committed before
    /// the call is durable. A no-op for backends that are durable on commit.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// Forwards `Persistence` through a smart pointer, so `Arc<dyn Persistence>` and
/// `Box<dyn Persistence>` are backends too.
macro_rules! forward_persistence {
    ($($pointer:ident),+) => {$(
        #[async_trait]
        impl<P: Persistence + ?Sized> Persistence for $pointer<P> {
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn load_creds(&self) -> Result<Option<AuthCreds>> {
                (**self).load_creds().await
            }
            async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
                (**self).get(kind, ids).await
            }
            async fn list(&self, kind: &KeyKind) -> Result<Vec<KeyId>> {
                (**self).list(kind).await
            }
            async fn kinds(&self) -> Result<Vec<KeyKind>> {
                (**self).kinds().await
            }
            async fn commit(&self, batch: WriteBatch) -> Result<()> {
                (**self).commit(batch).await
            }
            async fn flush(&self) -> Result<()> {
                (**self).flush().await
            }
        }
    )+};
}

forward_persistence!(Arc, Box);

/// Everything a store holds, loaded at once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The creds, if stored.
    pub creds: Option<AuthCreds>,
    /// Every key, by kind then id.
    pub keys: BTreeMap<KeyKind, BTreeMap<KeyId, KeyValue>>,
}

impl Snapshot {
    /// Number of keys per kind.
    pub fn counts(&self) -> BTreeMap<KeyKind, usize> {
        self.keys
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }

    /// Total number of keys.
    pub fn key_count(&self) -> usize {
        self.keys.values().map(BTreeMap::len).sum()
    }

    /// A batch that writes this whole snapshot into a store.
    pub fn to_batch(&self) -> WriteBatch {
        let mut batch = WriteBatch::new();
        if let Some(creds) = &self.creds {
            batch.set_creds(creds.clone());
        }
        for (kind, entries) in &self.keys {
            for (id, value) in entries {
                batch.put(kind.clone(), id.clone(), value.clone());
            }
        }
        batch
    }
}

/// Conveniences over any [`Persistence`]. Implemented for every backend; not overridable.
#[async_trait]
pub trait PersistenceExt: Persistence {
    /// One value, if it exists.
    async fn get_one(&self, kind: &KeyKind, id: &KeyId) -> Result<Option<KeyValue>> {
        let mut found = self.get(kind, std::slice::from_ref(id)).await?;
        Ok(found.pop().map(|(_, value)| value))
    }

    /// Commits a single put of a typed value under its own kind.
    async fn put_one(&self, id: KeyId, value: KeyValue) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put_value(id, value)?;
        self.commit(batch).await
    }

    /// Commits the deletion of `ids` under `kind`, atomically.
    async fn delete_many(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for id in ids {
            batch.delete(kind.clone(), id.clone());
        }
        self.commit(batch).await
    }

    /// Commits new creds alone.
    async fn save_creds(&self, creds: &AuthCreds) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.set_creds(creds.clone());
        self.commit(batch).await
    }

    /// Every value of `kind`.
    async fn load_kind(&self, kind: &KeyKind) -> Result<BTreeMap<KeyId, KeyValue>> {
        let ids = self.list(kind).await?;
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(512) {
            out.extend(self.get(kind, chunk).await?);
        }
        Ok(out)
    }

    /// The creds and every key of every kind.
    async fn load_all(&self) -> Result<Snapshot> {
        let creds = self.load_creds().await?;
        let mut keys = BTreeMap::new();
        for kind in self.kinds().await? {
            let values = self.load_kind(&kind).await?;
            if !values.is_empty() {
                keys.insert(kind, values);
            }
        }
        Ok(Snapshot { creds, keys })
    }

    /// Whether the store holds neither creds nor any key.
    async fn is_empty(&self) -> Result<bool> {
        if self.load_creds().await?.is_some() {
            return Ok(false);
        }
        for kind in self.kinds().await? {
            if !self.list(&kind).await?.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl<P: Persistence + ?Sized> PersistenceExt for P {}
