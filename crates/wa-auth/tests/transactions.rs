//! AuthState transaction semantics: isolation, rollback, nesting, failed commits, parallelism,
//! canonical locks, loading rules, events, the flush-before-send rule, and a cache that never
//! serves an older value than the store's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use wa_auth::{
    AuthCreds, AuthError, AuthEvent, AuthState, AuthStateOptions, Capabilities, CorruptItem,
    Durability, KeyId, KeyKind, KeyValue, LockKey, MemoryStore, Persistence, PersistenceExt,
    Transaction, WriteBatch,
};
use wa_signal::SignalAddress;

/// A MemoryStore that counts calls and can be told to fail, or to hold its next commit (once
/// applied) until `release` is notified.
#[derive(Debug, Default)]
struct Instrumented {
    inner: MemoryStore,
    fail_commits: AtomicBool,
    hold_next: AtomicBool,
    landed: Notify,
    release: Notify,
    corrupt_creds: AtomicBool,
    write_behind: bool,
    commits: AtomicUsize,
    gets: AtomicUsize,
    flushes: AtomicUsize,
}

#[async_trait]
impl Persistence for Instrumented {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("instrumented")
            .atomic_commit(true)
            .durability(if self.write_behind {
                Durability::OnFlush
            } else {
                Durability::OnCommit
            })
    }
    async fn load_creds(&self) -> wa_auth::Result<Option<AuthCreds>> {
        if self.corrupt_creds.load(Ordering::SeqCst) {
            return Err(AuthError::corrupt(
                CorruptItem::Creds,
                "creds.json",
                "truncated",
            ));
        }
        self.inner.load_creds().await
    }
    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> wa_auth::Result<Vec<(KeyId, KeyValue)>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(kind, ids).await
    }
    async fn list(&self, kind: &KeyKind) -> wa_auth::Result<Vec<KeyId>> {
        self.inner.list(kind).await
    }
    async fn kinds(&self) -> wa_auth::Result<Vec<KeyKind>> {
        self.inner.kinds().await
    }
    async fn commit(&self, batch: WriteBatch) -> wa_auth::Result<()> {
        if self.fail_commits.load(Ordering::SeqCst) {
            return Err(AuthError::backend("instrumented", "injected failure"));
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(batch).await?;
        if self.hold_next.swap(false, Ordering::SeqCst) {
            self.landed.notify_one();
            self.release.notified().await;
        }
        Ok(())
    }
    async fn flush(&self) -> wa_auth::Result<()> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn close(&self) -> wa_auth::Result<()> {
        self.inner.close().await
    }
}

async fn setup() -> (Arc<Instrumented>, AuthState) {
    let store = Arc::new(Instrumented::default());
    let state = AuthState::load(store.clone()).await.expect("load");
    (store, state)
}

fn counter(value: &Option<KeyValue>) -> u64 {
    match value {
        Some(KeyValue::LidMapping(n)) => n.parse().expect("number"),
        None => 0,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_on_one_key_are_isolated() {
    let (store, state) = setup().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                state
                    .transaction("counter", async |tx: &mut Transaction<'_>| {
                        let id = KeyId::from("counter");
                        let n = counter(&tx.get_one(&KeyKind::LidMapping, &id).await?);
                        tokio::task::yield_now().await; // invite a lost update
                        tx.put(
                            KeyKind::LidMapping,
                            id,
                            KeyValue::LidMapping((n + 1).to_string()),
                        );
                        Ok::<_, AuthError>(())
                    })
                    .await
                    .expect("transaction");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let stored = store
        .inner
        .get_one(&KeyKind::LidMapping, &"counter".into())
        .await
        .unwrap();
    assert_eq!(counter(&stored), 200, "every increment must survive");
}

#[tokio::test]
async fn a_failing_transaction_writes_nothing() {
    let (store, state) = setup().await;
    state
        .set({
            let mut b = WriteBatch::new();
            b.put(
                KeyKind::LidMapping,
                "keep",
                KeyValue::LidMapping("1".into()),
            );
            b
        })
        .await
        .unwrap();
    let commits_before = store.commits.load(Ordering::SeqCst);
    let creds_before = state.creds();
    let mut events = state.subscribe();
    let result = state
        .transaction("x", async |tx: &mut Transaction<'_>| {
            tx.put(KeyKind::LidMapping, "new", KeyValue::LidMapping("2".into()));
            tx.delete(KeyKind::LidMapping, "keep");
            tx.update_creds(|c| c.next_pre_key_id = 999).await?;
            assert_eq!(
                tx.get_one(&KeyKind::LidMapping, &"keep".into()).await?,
                None,
                "reads see own deletes"
            );
            Err::<(), _>(AuthError::invalid("test", "abort"))
        })
        .await;
    assert!(result.is_err());
    assert_eq!(
        store.commits.load(Ordering::SeqCst),
        commits_before,
        "nothing committed"
    );
    assert_eq!(
        state
            .get_one(&KeyKind::LidMapping, &"keep".into())
            .await
            .unwrap(),
        Some(KeyValue::LidMapping("1".into()))
    );
    assert_eq!(
        state
            .get_one(&KeyKind::LidMapping, &"new".into())
            .await
            .unwrap(),
        None
    );
    assert_eq!(state.creds(), creds_before);
    assert!(
        events.try_recv().is_err(),
        "no event for a rolled-back transaction"
    );
}

#[tokio::test]
async fn nested_transactions_share_one_commit_and_roll_back_alone() {
    let (store, state) = setup().await;
    let commits_before = store.commits.load(Ordering::SeqCst);
    state
        .transaction("outer", async |tx: &mut Transaction<'_>| {
            tx.put(
                KeyKind::LidMapping,
                "a",
                KeyValue::LidMapping("outer".into()),
            );
            // Same lock: reused, no deadlock.
            tx.transaction("outer", async |tx: &mut Transaction<'_>| {
                tx.put(
                    KeyKind::LidMapping,
                    "b",
                    KeyValue::LidMapping("nested".into()),
                );
                Ok::<_, AuthError>(())
            })
            .await?;
            // Another lock, failing: its writes roll back, the outer goes on.
            let failed = tx
                .transaction("other", async |tx: &mut Transaction<'_>| {
                    tx.put(
                        KeyKind::LidMapping,
                        "c",
                        KeyValue::LidMapping("rolled back".into()),
                    );
                    tx.delete(KeyKind::LidMapping, "a");
                    Err::<(), _>(AuthError::invalid("nested", "abort"))
                })
                .await;
            assert!(failed.is_err());
            assert!(tx.holds(&LockKey::new("other")));
            assert_eq!(
                tx.get_one(&KeyKind::LidMapping, &"a".into()).await?,
                Some(KeyValue::LidMapping("outer".into()))
            );
            Ok::<_, AuthError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        store.commits.load(Ordering::SeqCst),
        commits_before + 1,
        "exactly one commit"
    );
    let got = store
        .inner
        .get(&KeyKind::LidMapping, &["a".into(), "b".into(), "c".into()])
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(id, _)| id.as_str() != "c"));
}

#[tokio::test]
async fn reentering_a_held_lock_is_an_error_not_a_deadlock() {
    let (_, state) = setup().await;
    let inner_state = state.clone();
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        state.transaction("k", async |_tx: &mut Transaction<'_>| {
            inner_state
                .transaction(
                    "k",
                    async |_tx: &mut Transaction<'_>| Ok::<_, AuthError>(()),
                )
                .await
        }),
    )
    .await
    .expect("must not deadlock");
    assert!(matches!(outcome, Err(AuthError::Invalid { .. })));
}

#[tokio::test]
async fn a_failed_commit_leaves_cache_and_store_consistent() {
    let (store, state) = setup().await;
    let id = KeyId::from("k");
    state
        .set({
            let mut b = WriteBatch::new();
            b.put(
                KeyKind::LidMapping,
                id.clone(),
                KeyValue::LidMapping("old".into()),
            );
            b
        })
        .await
        .unwrap();
    assert_eq!(
        state.get_one(&KeyKind::LidMapping, &id).await.unwrap(),
        Some(KeyValue::LidMapping("old".into()))
    );
    let creds_before = state.creds();
    store.fail_commits.store(true, Ordering::SeqCst);
    let result = state
        .transaction("k", async |tx: &mut Transaction<'_>| {
            tx.put(KeyKind::LidMapping, "k", KeyValue::LidMapping("new".into()));
            tx.put(
                KeyKind::LidMapping,
                "other",
                KeyValue::LidMapping("new".into()),
            );
            tx.update_creds(|c| c.registered = !c.registered).await?;
            Ok::<_, AuthError>(())
        })
        .await;
    assert!(matches!(result, Err(AuthError::Backend { .. })));
    // Cache (AuthState reads) and store agree on the old state.
    assert_eq!(
        state.get_one(&KeyKind::LidMapping, &id).await.unwrap(),
        Some(KeyValue::LidMapping("old".into()))
    );
    assert_eq!(
        state
            .get_one(&KeyKind::LidMapping, &"other".into())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .inner
            .get_one(&KeyKind::LidMapping, &id)
            .await
            .unwrap(),
        Some(KeyValue::LidMapping("old".into()))
    );
    assert_eq!(state.creds(), creds_before);
    store.fail_commits.store(false, Ordering::SeqCst);
    state
        .update_creds(|c| c.account_sync_counter = 7)
        .await
        .unwrap();
    assert_eq!(
        store
            .inner
            .load_creds()
            .await
            .unwrap()
            .unwrap()
            .account_sync_counter,
        7
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_on_different_keys_run_in_parallel() {
    let (_, state) = setup().await;
    let (tx_a, rx_a) = tokio::sync::oneshot::channel::<()>();
    let state_a = state.clone();
    // A holds "a" until B (on "b") signals it: serialised transactions would deadlock.
    let a = tokio::spawn(async move {
        state_a
            .transaction("a", async |_tx: &mut Transaction<'_>| {
                rx_a.await.expect("signal from b");
                Ok::<_, AuthError>(())
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b = state.transaction("b", async |_tx: &mut Transaction<'_>| {
        tx_a.send(()).expect("a waits");
        Ok::<_, AuthError>(())
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        b.await.unwrap();
        a.await.unwrap().unwrap()
    })
    .await
    .expect("different keys must not block each other");
}

#[tokio::test]
async fn pn_and_lid_addresses_share_one_lock_once_mapped() {
    let (_, state) = setup().await;
    let pn = SignalAddress::new("4915112345678", 5).unwrap();
    let lid = SignalAddress::new("123456789012345_1", 5).unwrap();
    assert_ne!(
        state.lock_key_for(&pn).await.unwrap(),
        state.lock_key_for(&lid).await.unwrap()
    );
    state
        .set({
            let mut b = WriteBatch::new();
            b.put(
                KeyKind::LidMapping,
                "4915112345678",
                KeyValue::LidMapping("123456789012345".into()),
            );
            b
        })
        .await
        .unwrap();
    assert_eq!(
        state.lock_key_for(&pn).await.unwrap(),
        state.lock_key_for(&lid).await.unwrap()
    );
    assert_eq!(
        state.lock_key_for(&lid).await.unwrap().as_str(),
        "123456789012345_1.5"
    );
    let hosted = SignalAddress::new("4915112345678_128", 2).unwrap();
    assert_eq!(
        state.lock_key_for(&hosted).await.unwrap().as_str(),
        "123456789012345_129.2"
    );
}

#[tokio::test]
async fn load_creates_creds_only_in_an_empty_store() {
    let store = Arc::new(Instrumented::default());
    let state = AuthState::load(store.clone()).await.unwrap();
    assert_eq!(
        store.inner.load_creds().await.unwrap().as_ref(),
        Some(&*state.creds()),
        "fresh creds are persisted"
    );
    let again = AuthState::load(store.clone()).await.unwrap();
    assert_eq!(again.creds(), state.creds(), "a reload keeps the identity");

    let keys_only = MemoryStore::new();
    keys_only
        .put_one("15550100001".into(), KeyValue::LidMapping("1".into()))
        .await
        .unwrap();
    let err = AuthState::load(Arc::new(keys_only)).await.unwrap_err();
    assert!(matches!(err, AuthError::NotFound { .. }), "{err}");

    let corrupt = Arc::new(Instrumented::default());
    corrupt.corrupt_creds.store(true, Ordering::SeqCst);
    let err = AuthState::load(corrupt.clone()).await.unwrap_err();
    assert!(matches!(err, AuthError::Corrupt { .. }));
    assert_eq!(
        corrupt.commits.load(Ordering::SeqCst),
        0,
        "corrupt creds are never replaced"
    );
}

#[tokio::test]
async fn creds_updates_emit_events_and_persist_unless_opted_out() {
    let (store, state) = setup().await;
    let mut events = state.subscribe();
    state
        .update_creds(|c| c.platform = Some("smba".into()))
        .await
        .unwrap();
    match events.recv().await.unwrap() {
        AuthEvent::CredsUpdated(creds) => assert_eq!(creds.platform.as_deref(), Some("smba")),
        other => panic!("unexpected event {other:?}"),
    }
    assert_eq!(
        store
            .inner
            .load_creds()
            .await
            .unwrap()
            .unwrap()
            .platform
            .as_deref(),
        Some("smba")
    );

    let manual_store = Arc::new(Instrumented::default());
    manual_store
        .inner
        .save_creds(&AuthCreds::generate())
        .await
        .unwrap();
    let manual = AuthState::load_with(
        manual_store.clone(),
        AuthStateOptions::default().auto_persist_creds(false),
    )
    .await
    .unwrap();
    let mut events = manual.subscribe();
    manual
        .transaction("t", async |tx: &mut Transaction<'_>| {
            tx.update_creds(|c| c.platform = Some("android".into()))
                .await?;
            tx.put(KeyKind::LidMapping, "x", KeyValue::LidMapping("y".into()));
            Ok::<_, AuthError>(())
        })
        .await
        .unwrap();
    assert!(matches!(
        events.recv().await.unwrap(),
        AuthEvent::CredsUpdated(_)
    ));
    assert_eq!(manual.creds().platform.as_deref(), Some("android"));
    let stored = manual_store.inner.load_creds().await.unwrap().unwrap();
    assert_eq!(
        stored.platform, None,
        "with auto-persist off, saving creds is the caller's job"
    );
    assert!(
        manual_store
            .inner
            .get_one(&KeyKind::LidMapping, &"x".into())
            .await
            .unwrap()
            .is_some()
    );
    manual.save_creds().await.unwrap();
    assert_eq!(
        manual_store
            .inner
            .load_creds()
            .await
            .unwrap()
            .unwrap()
            .platform
            .as_deref(),
        Some("android")
    );
}

#[tokio::test]
async fn reads_are_cached_including_absent_keys() {
    let (store, state) = setup().await;
    let missing = KeyId::from("missing");
    assert_eq!(
        state.get_one(&KeyKind::Session, &missing).await.unwrap(),
        None
    );
    let gets = store.gets.load(Ordering::SeqCst);
    assert_eq!(
        state.get_one(&KeyKind::Session, &missing).await.unwrap(),
        None
    );
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        gets,
        "a known-absent key is served from the cache"
    );
    state
        .transaction("s", async |tx: &mut Transaction<'_>| {
            tx.put(
                KeyKind::LidMapping,
                "missing",
                KeyValue::LidMapping("now here".into()),
            );
            Ok::<_, AuthError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        state.get_one(&KeyKind::LidMapping, &missing).await.unwrap(),
        Some(KeyValue::LidMapping("now here".into()))
    );
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        gets,
        "a committed write is served from the cache"
    );
}

#[tokio::test]
async fn write_behind_backends_flush_before_send() {
    let store = Arc::new(Instrumented {
        write_behind: true,
        ..Default::default()
    });
    let state = AuthState::load(store.clone()).await.unwrap();
    state
        .transaction("receive", async |tx: &mut Transaction<'_>| {
            tx.put(KeyKind::LidMapping, "r", KeyValue::LidMapping("1".into()));
            Ok::<_, AuthError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        store.flushes.load(Ordering::SeqCst),
        0,
        "receiving does not need a flush"
    );
    state
        .transaction("send", async |tx: &mut Transaction<'_>| {
            tx.put(KeyKind::LidMapping, "s", KeyValue::LidMapping("1".into()));
            tx.require_flush_before_send();
            Ok::<_, AuthError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        store.flushes.load(Ordering::SeqCst),
        1,
        "a send flushes before returning"
    );
}

#[tokio::test]
async fn an_invalid_batch_is_rejected_before_the_store() {
    let (store, state) = setup().await;
    let commits = store.commits.load(Ordering::SeqCst);
    let result = state
        .transaction("t", async |tx: &mut Transaction<'_>| {
            tx.put(
                KeyKind::Session,
                "x",
                KeyValue::LidMapping("wrong kind".into()),
            );
            Ok::<_, AuthError>(())
        })
        .await;
    assert!(matches!(result, Err(AuthError::Invalid { .. })));
    assert_eq!(store.commits.load(Ordering::SeqCst), commits);
}

/// Commits `id` = `value` (a lid-mapping) in a transaction under `lock`.
async fn put_lid(state: &AuthState, lock: &str, id: &KeyId, value: &str) -> wa_auth::Result<()> {
    let (id, value) = (id.clone(), KeyValue::LidMapping(value.into()));
    state
        .transaction(lock, async move |tx: &mut Transaction<'_>| {
            tx.put(KeyKind::LidMapping, id, value);
            Ok::<_, AuthError>(())
        })
        .await
}

#[tokio::test]
async fn commits_that_return_out_of_order_never_leave_the_older_value_cached() {
    let (store, state) = setup().await;
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
        async move { put_lid(&state, "lock-a", &id, older).await }
    });
    store.landed.notified().await;
    // ...while a second one, under another lock, lands after it and returns first.
    put_lid(&state, "lock-b", &id, newer).await.unwrap();
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

#[tokio::test]
async fn close_flushes_closes_the_store_and_refuses_what_follows() {
    let (store, state) = setup().await;
    state
        .transaction("a", async |tx: &mut Transaction<'_>| {
            tx.put(KeyKind::LidMapping, "1", KeyValue::LidMapping("2".into()));
            Ok::<_, AuthError>(())
        })
        .await
        .unwrap();
    let flushes = store.flushes.load(Ordering::SeqCst);
    state.close().await.expect("close");
    assert_eq!(
        store.flushes.load(Ordering::SeqCst),
        flushes + 1,
        "close flushes first"
    );
    assert!(
        matches!(store.inner.load_creds().await, Err(AuthError::Closed)),
        "close closes the store"
    );
    state.close().await.expect("a second close is Ok");
    assert!(matches!(
        state.get(&KeyKind::LidMapping, &["1".into()]).await,
        Err(AuthError::Closed)
    ));
    let tx = state
        .transaction("a", async |_: &mut Transaction<'_>| Ok::<_, AuthError>(()))
        .await;
    assert!(matches!(tx, Err(AuthError::Closed)), "{tx:?}");
    assert!(matches!(state.flush().await, Err(AuthError::Closed)));
}

/// Commits creds whose `account_sync_counter` is `counter`, outside any transaction.
async fn set_counter(state: &AuthState, counter: u32) -> wa_auth::Result<()> {
    let mut creds = (*state.creds()).clone();
    creds.account_sync_counter = counter;
    let mut batch = WriteBatch::new();
    batch.set_creds(creds);
    state.set(batch).await
}

#[tokio::test]
async fn creds_commits_that_race_leave_the_creds_the_store_holds() {
    let (store, state) = setup().await;
    let older = state.creds().account_sync_counter + 1;
    let newer = older + 1;

    // The first creds commit lands in the store, then is slow to return...
    store.hold_next.store(true, Ordering::SeqCst);
    let first = tokio::spawn({
        let state = state.clone();
        async move { set_counter(&state, older).await }
    });
    store.landed.notified().await;
    // ...while a second one, outside any transaction, is started meanwhile.
    let second = tokio::spawn({
        let state = state.clone();
        async move { set_counter(&state, newer).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.release.notify_one();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();

    let stored = store.inner.load_creds().await.unwrap().unwrap();
    assert_eq!(
        state.creds().account_sync_counter,
        stored.account_sync_counter,
        "the creds in memory are the creds in the store"
    );
    assert_eq!(stored.account_sync_counter, newer, "the later commit wins");
}
