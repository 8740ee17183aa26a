//! Commits go through `wa-store-fs`'s leader/follower group commit on the committers' own
//! threads: no writer thread of the store's own exists, concurrent committers (on a
//! multi-thread and on a current-thread runtime) share groups, and a batch the folder cannot
//! hold is refused alone while the rest of its group is written. A dropped store releases its
//! lock without blocking the runtime; an opener in the same process waits for it.

use std::sync::Arc;

use wa_auth::{AuthError, KeyId, KeyKind, KeyValue, Persistence, WriteBatch};
use wa_store_compat::CompatStore;
use wa_store_compat::layout::key_file_name;

fn lid(value: &str) -> KeyValue {
    KeyValue::LidMapping(value.to_owned())
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Two ids of one batch that the Baileys layout stores in the same file: the batch is refused.
fn colliding_batch(n: usize) -> WriteBatch {
    let (a, b) = (format!("c{n}:1"), format!("c{n}-1"));
    assert_eq!(
        key_file_name(&KeyKind::LidMapping, &KeyId::new(a.clone())),
        key_file_name(&KeyKind::LidMapping, &KeyId::new(b.clone())),
        "the two ids must share a file for this test"
    );
    let mut batch = WriteBatch::new();
    batch.put(KeyKind::LidMapping, a, lid("1"));
    batch.put(KeyKind::LidMapping, b, lid("2"));
    batch
}

/// Commits 48 batches at once, every 6th refused; returns the ids that must be stored.
async fn commit_concurrently(store: &Arc<CompatStore>) -> Vec<String> {
    let tasks: Vec<_> = (0..48)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let batch = if n % 6 == 5 {
                    colliding_batch(n)
                } else {
                    let mut batch = WriteBatch::new();
                    batch.put(KeyKind::LidMapping, format!("k{n}"), lid(&n.to_string()));
                    batch
                };
                (n, store.commit(batch).await)
            })
        })
        .collect();
    let mut stored = Vec::new();
    for task in tasks {
        let (n, result) = task.await.unwrap();
        if n % 6 == 5 {
            let err = result.expect_err("a batch the layout cannot hold is refused");
            assert!(
                matches!(&err, AuthError::Invalid { reason, .. } if reason.contains("same file")),
                "batch {n}: {err}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("batch {n}: {e}"));
            stored.push(format!("k{n}"));
        }
    }
    stored.sort();
    stored
}

async fn check_stored(dir: &std::path::Path, expected: &[String]) {
    let store = CompatStore::open(dir).await.unwrap();
    let mut ids: Vec<String> = store
        .list(&KeyKind::LidMapping)
        .await
        .unwrap()
        .iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, expected);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committers_write_their_groups_and_a_refused_batch_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("auth");
    let store = Arc::new(CompatStore::open(&dir).await.unwrap());
    let stored = commit_concurrently(&store).await;
    let names = thread_names();
    assert!(
        !names.iter().any(|n| n.starts_with("wa-store-compat")),
        "a writer thread of the store's own: {names:?}"
    );
    store.close().await.unwrap();
    store.close().await.unwrap(); // idempotent
    assert!(matches!(
        store.commit(WriteBatch::new()).await,
        Err(AuthError::Closed)
    ));
    check_stored(&dir, &stored).await;
}

#[test]
fn a_current_thread_runtime_commits_and_a_dropped_store_is_reopened_in_process() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("auth");
    runtime.block_on(async {
        for round in 0..3 {
            let store = Arc::new(CompatStore::open(&dir).await.unwrap());
            let mut batch = WriteBatch::new();
            batch.put(KeyKind::LidMapping, format!("r{round}"), lid("1"));
            store.commit(batch).await.unwrap();
            // Dropped inside the runtime: the closing work moves to the blocking pool, and
            // the next open in this process waits for the lock instead of failing.
            drop(store);
        }
        let store = Arc::new(CompatStore::open(&dir).await.unwrap());
        let stored = commit_concurrently(&store).await;
        drop(store);
        let mut expected: Vec<String> = (0..3).map(|r| format!("r{r}")).collect();
        expected.extend(stored);
        expected.sort();
        check_stored(&dir, &expected).await;
    });
}
