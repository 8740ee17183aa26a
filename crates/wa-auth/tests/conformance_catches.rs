//! The conformance suite can fail: stores that break one rule each make the test of that rule
//! panic (and a correct store passes the same test).

use std::sync::Arc;

use async_trait::async_trait;
use wa_auth::conformance::{self, Harness};
use wa_auth::{
    AuthCreds, Capabilities, Durability, KeyId, KeyKind, KeyValue, MemoryStore, Persistence,
    Result, WriteBatch,
};

/// Which rule a [`Broken`] store breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    None,
    /// `get` returns an id once per time it was asked for.
    GetDuplicates,
    /// Stays usable after `close`.
    IgnoresClose,
    /// Says it is durable on commit, but a reopen after a drop finds nothing.
    ForgetsOnDrop,
    /// Applies the puts of a batch before validating it.
    PartialCommit,
    /// A read-only view that accepts commits.
    WritableView,
}

/// A MemoryStore handle with one flaw.
#[derive(Debug)]
struct Broken {
    inner: MemoryStore,
    flaw: Flaw,
    read_only: bool,
}

#[async_trait]
impl Persistence for Broken {
    fn capabilities(&self) -> Capabilities {
        let durability = match self.flaw {
            Flaw::ForgetsOnDrop => Durability::OnCommit,
            _ => Durability::None,
        };
        Capabilities::new("broken")
            .atomic_commit(true)
            .durability(durability)
            .persistent(self.flaw == Flaw::ForgetsOnDrop)
            .read_only(self.read_only)
    }
    async fn load_creds(&self) -> Result<Option<AuthCreds>> {
        self.inner.load_creds().await
    }
    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
        if self.flaw != Flaw::GetDuplicates {
            return self.inner.get(kind, ids).await;
        }
        let mut found = Vec::new();
        for id in ids {
            found.extend(self.inner.get(kind, std::slice::from_ref(id)).await?);
        }
        Ok(found)
    }
    async fn list(&self, kind: &KeyKind) -> Result<Vec<KeyId>> {
        self.inner.list(kind).await
    }
    async fn kinds(&self) -> Result<Vec<KeyKind>> {
        self.inner.kinds().await
    }
    async fn commit(&self, batch: WriteBatch) -> Result<()> {
        if self.read_only && self.flaw != Flaw::WritableView {
            return Err(wa_auth::AuthError::ReadOnly {
                resource: "broken".into(),
            });
        }
        if self.flaw == Flaw::PartialCommit {
            let (_, changes) = batch.clone().into_parts();
            for (kind, entries) in changes {
                for (id, value) in entries.into_iter().take(5) {
                    if let Some(value) = value.filter(|v| v.kind().as_ref() == Some(&kind)) {
                        let mut one = WriteBatch::new();
                        one.put(kind.clone(), id, value);
                        self.inner.commit(one).await?;
                    }
                }
            }
        }
        self.inner.commit(batch).await
    }
    async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }
    async fn close(&self) -> Result<()> {
        if self.flaw == Flaw::IgnoresClose {
            return Ok(());
        }
        self.inner.close().await
    }
}

struct BrokenHarness {
    data: MemoryStore,
    flaw: Flaw,
}

impl BrokenHarness {
    fn handle(&self, read_only: bool) -> Arc<dyn Persistence> {
        let inner = if self.flaw == Flaw::ForgetsOnDrop {
            MemoryStore::new()
        } else {
            self.data.clone()
        };
        Arc::new(Broken {
            inner,
            flaw: self.flaw,
            read_only,
        })
    }
}

#[async_trait]
impl Harness for BrokenHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        self.handle(false)
    }
    async fn open_read_only(&self) -> Option<Arc<dyn Persistence>> {
        Some(self.handle(true))
    }
}

/// One test per flaw: the conformance test `$test` passes on a correct store and panics on
/// one with `$flaw` (each run on its own task, so a panic is caught as a `JoinError`).
macro_rules! caught {
    ($name:ident, $flaw:expr, $test:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let run = |flaw: Flaw| {
                tokio::spawn(async move {
                    let harness = BrokenHarness {
                        data: MemoryStore::new(),
                        flaw,
                    };
                    conformance::$test(&harness).await;
                })
            };
            let correct = run(Flaw::None).await;
            assert!(
                correct.is_ok(),
                "a correct store must pass {}",
                stringify!($test)
            );
            let broken = run($flaw).await;
            assert!(
                broken.is_err_and(|e| e.is_panic()),
                "{} must catch {:?}",
                stringify!($test),
                $flaw
            );
        }
    };
}

caught!(
    duplicates_from_get,
    Flaw::GetDuplicates,
    get_duplicates_and_missing
);
caught!(
    a_store_usable_after_close,
    Flaw::IgnoresClose,
    close_semantics
);
caught!(
    a_store_that_is_not_durable_as_declared,
    Flaw::ForgetsOnDrop,
    durability_as_declared
);
caught!(
    a_batch_applied_in_part,
    Flaw::PartialCommit,
    batch_is_atomic
);
caught!(
    a_view_that_writes,
    Flaw::WritableView,
    read_only_refuses_writes
);
