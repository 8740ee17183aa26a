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

/// When a committed batch survives an operating-system crash or a power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Once [`Persistence::commit`] returns, the batch is on stable storage.
    OnCommit,
    /// `commit` returns once the batch is accepted (queued, or written without syncing);
    /// [`Persistence::flush`] is the barrier: once it returns, every batch committed before the
    /// call is on stable storage. What was committed is readable at once, and (for a
    /// persistent store) survives a crash of the process only once flushed or once the store
    /// says so in its own documentation.
    OnFlush,
    /// Nothing is made durable beyond the process (an in-memory store, or a store whose
    /// durability lies outside this contract); `flush` is a no-op.
    None,
}

/// What a backend guarantees. Callers (AuthState, migrations) and the
/// [`conformance`](crate#conformance) suite adapt to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// A short backend name (`memory`, `native`, `compat`, `postgres`, ...).
    pub backend: &'static str,
    /// A committed batch lands entirely or not at all, across crashes.
    pub atomic_commit: bool,
    /// When a committed batch is durable.
    pub durability: Durability,
    /// The store survives the process (false for the in-memory store).
    pub persistent: bool,
    /// A read-only view: every `commit` fails with [`AuthError::ReadOnly`](crate::AuthError::ReadOnly).
    pub read_only: bool,
}

impl Capabilities {
    /// Capabilities of a backend named `backend`, with every guarantee off (durability
    /// [`Durability::None`]); switch on what the backend provides with the builder methods.
    pub const fn new(backend: &'static str) -> Self {
        Self {
            backend,
            atomic_commit: false,
            durability: Durability::None,
            persistent: false,
            read_only: false,
        }
    }

    /// Sets [`Capabilities::atomic_commit`].
    pub const fn atomic_commit(mut self, yes: bool) -> Self {
        self.atomic_commit = yes;
        self
    }

    /// Sets [`Capabilities::durability`].
    pub const fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`Capabilities::persistent`].
    pub const fn persistent(mut self, yes: bool) -> Self {
        self.persistent = yes;
        self
    }

    /// Sets [`Capabilities::read_only`].
    pub const fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// Whether `commit` only queues or writes without syncing, and [`Persistence::flush`] is
    /// needed before a batch counts as durable.
    pub const fn needs_flush(&self) -> bool {
        matches!(self.durability, Durability::OnFlush)
    }
}

/// The backend seam: where creds and keys live.
///
/// Rules every implementation keeps. The conformance suite (`wa_auth::conformance`, feature
/// `conformance`) checks each
/// of them (the tests checking a rule are named with it), and checks nothing else; the rules
/// it cannot check from outside a store say which tests check them instead:
///
/// - **Round trip** (`creds_round_trip`, `round_trip_every_kind`, `many_keys_and_unusual_ids`):
///   creds, with unknown fields ([`AuthCreds::extra`]), are returned exactly as committed and
///   replaced as a whole; a fresh store holds nothing; a value of every [`KeyKind`], including
///   unknown ones ([`KeyKind::Other`]), under any valid id (any characters, `.` and `..`,
///   hundreds of them; thousands of keys in one batch) is returned exactly as committed.
/// - **Unreadable is not absent**: a value or creds that cannot be decoded is
///   [`AuthError::Corrupt`](crate::AuthError::Corrupt) naming the item and where it lies,
///   never `None`. Only a read-only view may offer to report such a key as absent (a store
///   that writes must not: [`AuthState`](crate::AuthState) would re-create state over it).
///   (Checked by each backend's own corruption tests: the suite cannot damage a store.)
/// - **All or nothing** (`batch_is_atomic`): `commit` calls [`WriteBatch::validate`] (which
///   rejects, e.g., an empty id or a value of another kind) and then applies the batch entirely
///   or not at all; a rejected batch changes nothing, creds included.
/// - **Deletes** (`delete_semantics`): a delete removes the key; deleting a missing key is
///   not an error; within one batch the last change to a key wins; an empty batch commits;
///   keys a batch does not name are unchanged.
/// - **`get`** (`get_duplicates_and_missing`): returns only the ids that exist under the kind
///   asked for, each at most once, in any order, whatever duplicates and missing ids were
///   asked for (nothing for no ids).
/// - **`list` and `kinds`** (`list_and_kinds`, `many_keys_and_unusual_ids`): `list` returns
///   every stored id of a kind exactly once; `kinds` every kind with at least one key, and no
///   kind whose keys were all deleted.
/// - **Concurrency** (`concurrent_commits`): commits from many tasks at once all land, each
///   whole; concurrent creds saves leave one of them, not a mix.
/// - **Reopen** (`reopen_after_close`): what was committed is there when the store is closed
///   and opened again.
/// - **Durability** (`durability_as_declared`): as [`Capabilities::durability`] says: `flush`
///   succeeds on a healthy store; a persistent store durable [`OnCommit`](Durability::OnCommit)
///   dropped without `flush` or `close` holds every committed batch when reopened, and one
///   durable [`OnFlush`](Durability::OnFlush) every batch committed before a `flush`. (What
///   survives an operating-system crash is checked by each backend's crash tests.)
/// - **Read-only** (`read_only_refuses_writes`): a store opened for writing does not say
///   [`read_only`](Capabilities::read_only); a read-only view says so, reads what was
///   committed, refuses every commit with [`AuthError::ReadOnly`](crate::AuthError::ReadOnly)
///   and changes nothing.
/// - **Close** (`close_semantics`): [`close`](Persistence::close) makes everything committed
///   durable, releases the store (a new handle can open it at once) and is idempotent; after
///   it every other operation fails with [`AuthError::Closed`](crate::AuthError::Closed).
///   Dropping a store without closing it never blocks an async runtime's worker thread
///   (a rule the suite cannot observe; the built-in stores only signal their writer in `Drop`
///   and a reopen in the same process waits for the release).
/// - A backend that cannot tell whether a failed commit was applied says so with
///   [`AuthError::CommitUnknown`](crate::AuthError::CommitUnknown) (then the batch is found
///   whole or not at all once the store is reopened); any other commit error means "not
///   applied". (Checked by each backend's fault-injection tests.)
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

    /// Durability barrier for [`Durability::OnFlush`] backends: returns once every batch
    /// committed before the call is durable. A no-op for the others.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Ends the store: makes every committed batch durable (as `flush`), stops its background
    /// work and releases what it owns (a folder lock, a database lease) before returning, so
    /// that the store can be opened again at once. Idempotent: a second call returns `Ok`.
    /// Afterwards every other operation fails with [`AuthError::Closed`](crate::AuthError::Closed).
    async fn close(&self) -> Result<()>;
}

/// Implements [`Persistence`] for a type by forwarding every method of the trait
/// (`capabilities`, `load_creds`, `get`, `list`, `kinds`, `commit`, `flush`, `close`) to one
/// of its fields, a `Persistence` itself: `forward_persistence!(NativeReader => store)`.
///
/// For a wrapper that adds nothing to the backend contract, such as a read-only view that
/// holds a store opened read-only (which refuses commits itself). The calling crate needs
/// nothing besides `wa-auth` (the expansion names `async_trait` through `wa-auth`).
///
/// ```
/// use wa_auth::MemoryStore;
///
/// /// A store under another name.
/// #[derive(Debug)]
/// struct Renamed {
///     inner: MemoryStore,
/// }
///
/// wa_auth::forward_persistence!(Renamed => inner);
/// ```
///
/// The `@impl` form is internal (it also forwards `Arc<P>` and `Box<P>`): it takes the impl's
/// generics, the type, the `self` token and the expression (in parentheses) to forward to.
#[macro_export]
macro_rules! forward_persistence {
    ($type:ty => $field:ident) => {
        $crate::forward_persistence!(@impl [] $type, self, (self.$field));
    };
    (@impl [$($generics:tt)*] $type:ty, $this:tt, ($($target:tt)+)) => {
        #[$crate::__private::async_trait]
        impl<$($generics)*> $crate::Persistence for $type {
            fn capabilities(&$this) -> $crate::Capabilities {
                $($target)+.capabilities()
            }
            async fn load_creds(&$this) -> $crate::Result<::std::option::Option<$crate::AuthCreds>> {
                $($target)+.load_creds().await
            }
            async fn get(
                &$this,
                kind: &$crate::KeyKind,
                ids: &[$crate::KeyId],
            ) -> $crate::Result<::std::vec::Vec<($crate::KeyId, $crate::KeyValue)>> {
                $($target)+.get(kind, ids).await
            }
            async fn list(&$this, kind: &$crate::KeyKind) -> $crate::Result<::std::vec::Vec<$crate::KeyId>> {
                $($target)+.list(kind).await
            }
            async fn kinds(&$this) -> $crate::Result<::std::vec::Vec<$crate::KeyKind>> {
                $($target)+.kinds().await
            }
            async fn commit(&$this, batch: $crate::WriteBatch) -> $crate::Result<()> {
                $($target)+.commit(batch).await
            }
            async fn flush(&$this) -> $crate::Result<()> {
                $($target)+.flush().await
            }
            async fn close(&$this) -> $crate::Result<()> {
                $($target)+.close().await
            }
        }
    };
}

// `Arc<dyn Persistence>` and `Box<dyn Persistence>` are backends too.
crate::forward_persistence!(@impl [P: Persistence + ?Sized] Arc<P>, self, ((**self)));
crate::forward_persistence!(@impl [P: Persistence + ?Sized] Box<P>, self, ((**self)));

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
