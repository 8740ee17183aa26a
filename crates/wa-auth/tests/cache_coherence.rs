//! The `AuthState` read cache never serves a value older than the store's: two commits of one
//! key under different lock keys may return in the opposite order to the one in which they
//! landed in the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::Notify;
use wa_auth::{
    AuthCreds, AuthState, Capabilities, KeyId, KeyKind, KeyValue, MemoryStore, Persistence,
    PersistenceExt, Transaction, WriteBatch,
};

/// A MemoryStore whose next commit, once applied, waits for `release` before returning.
#[derive(Debug, Default)]
struct Gated {
    inner: MemoryStore,
    hold_next: AtomicBool,
    landed: Notify,
    release: Notify,
}

#[async_trait]
impl Persistence for Gated {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn load_creds(&self) -> wa_auth::Result<Option<AuthCreds>> {
        self.inner.load_creds().await
    }
    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> wa_auth::Result<Vec<(KeyId, KeyValue)>> {
        self.inner.get(kind, ids).await
    }
    async fn list(&self, kind: &KeyKind) -> wa_auth::Result<Vec<KeyId>> {
        self.inner.list(kind).await
    }
    async fn kinds(&self) -> wa_auth::Result<Vec<KeyKind>> {
        self.inner.kinds().await
    }
    async fn commit(&self, batch: WriteBatch) -> wa_auth::Result<()> {
        self.inner.commit(batch).await?;
        if self.hold_next.swap(false, Ordering::SeqCst) {
            self.landed.notify_one();
            self.release.notified().await;
        }
        Ok(())
    }
}

async fn put(state: &AuthState, lock: &str, id: &KeyId, value: &str) -> wa_auth::Result<()> {
    let (id, value) = (id.clone(), KeyValue::LidMapping(value.into()));
    state
        .transaction(lock, async move |tx: &mut Transaction<'_>| {
            tx.put(KeyKind::LidMapping, id, value);
            Ok::<_, wa_auth::AuthError>(())
        })
        .await
}

#[tokio::test]
async fn commits_that_return_out_of_order_never_leave_the_older_value_cached() {
    let store = Arc::new(Gated::default());
    let state = AuthState::load(store.clone()).await.unwrap();
    let id = KeyId::new("4915112345678");
    let older = "100000000000001";
    let newer = "100000000000002";
    // Cached before either commit, so a stale entry would be served.
    assert_eq!(
        state.get_one(&KeyKind::LidMapping, &id).await.unwrap(),
        None
    );

    // The first commit lands in the store, then is slow to return...
    store.hold_next.store(true, Ordering::SeqCst);
    let first = tokio::spawn({
        let (state, id) = (state.clone(), id.clone());
        async move { put(&state, "lock-a", &id, older).await }
    });
    store.landed.notified().await;
    // ...while a second one, under another lock, lands after it and returns first.
    put(&state, "lock-b", &id, newer).await.unwrap();
    store.release.notify_one();
    first.await.unwrap().unwrap();

    let want = Some(KeyValue::LidMapping(newer.into()));
    let stored = store
        .inner
        .get_one(&KeyKind::LidMapping, &id)
        .await
        .unwrap();
    assert_eq!(stored, want, "the store holds the later commit");
    assert_eq!(
        state.get_one(&KeyKind::LidMapping, &id).await.unwrap(),
        want,
        "the cache serves what the store holds"
    );
}
