//! I/O failures outside the commit path (fault injection, `wa_auth::fault`): creating a store
//! directory syncs the folders holding it, and a compaction that failed once does not delay the
//! compactions after the next successful one.

#![cfg(debug_assertions)] // fault injection exists only in builds with debug assertions

use std::path::Path;

use wa_auth::fault::{Fault, Op};
use wa_auth::{AuthError, KeyKind, KeyValue, Persistence, WriteBatch};
use wa_store_native::{NativeStore, NativeStoreOptions};

#[tokio::test]
async fn creating_a_store_directory_syncs_every_folder_that_gained_an_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let outer = tmp.path().join("accounts");
    let dir = outer.join("device");
    // Each folder that gains an entry is synced: a failed sync of either fails the open.
    for parent in [tmp.path(), outer.as_path()] {
        let _ = std::fs::remove_dir_all(&outer);
        let fault = Fault::new(Op::SyncDir, parent);
        let err = NativeStore::open(&dir)
            .await
            .expect_err("the folder holding the new directory must be synced");
        assert!(matches!(err, AuthError::Io { .. }), "{err}");
        assert_eq!(fault.failed(), 1, "{}", parent.display());
    }
    NativeStore::open(&dir)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
}

const MIN_LOG: u64 = 32 << 10;
/// The log file's header, which the threshold does not count (docs/format-native.md).
const LOG_HEADER: u64 = 32;

fn log_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("log")).unwrap().len()
}

/// Commits a ~1 KiB value under one of 8 ids (so the snapshot stays far below `MIN_LOG`) and
/// returns the log's length afterwards.
async fn commit_one(store: &NativeStore, dir: &Path, n: u64) -> u64 {
    let mut batch = WriteBatch::new();
    let kind = KeyKind::from_name("filler").unwrap();
    let value = KeyValue::Other(serde_json::json!({ "n": n, "pad": "x".repeat(1000) }));
    batch.put(kind, format!("k{}", n % 8), value);
    store.commit(batch).await.unwrap();
    log_len(dir)
}

/// Commits until the log shrinks (a compaction was published); returns the longest the log
/// was before. The first time the log's frames pass `MIN_LOG` it stops committing for a while, so
/// that a compaction started at the normal threshold is published before the log grows on
/// (however slowly a loaded machine runs the compaction thread); a compaction that does not
/// start there leaves the log to grow with the commits that follow.
async fn commit_until_compacted(store: &NativeStore, dir: &Path, n: &mut u64) -> u64 {
    let (mut last, mut longest, mut waited) = (log_len(dir), 0, false);
    for _ in 0..1000 {
        *n += 1;
        let mut len = commit_one(store, dir, *n).await;
        if len - LOG_HEADER > MIN_LOG && !waited {
            waited = true;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while log_len(dir) >= len && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            longest = longest.max(len);
            len = log_len(dir);
        }
        if len < last {
            return longest;
        }
        (last, longest) = (len, longest.max(len));
    }
    panic!("no compaction after 1000 commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_compaction_does_not_delay_compactions_after_a_successful_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let options = NativeStoreOptions::default()
        .compact_min_log_bytes(MIN_LOG)
        .compact_log_ratio(1.0);
    let store = NativeStore::open_with(&dir, options).await.unwrap();
    let mut n = 0;

    // 1. The first compaction fails (its snapshot cannot be renamed into place).
    let fault = Fault::new(Op::Rename, dir.join("snapshot.tmp"));
    while fault.failed() == 0 {
        n += 1;
        assert!(n < 1000, "no compaction was attempted");
        commit_one(&store, &dir, n).await;
    }
    drop(fault);

    // 2. A later attempt succeeds: the log shrinks.
    commit_until_compacted(&store, &dir, &mut n).await;
    // 3. From then on the log is compacted at the normal threshold again.
    let longest = commit_until_compacted(&store, &dir, &mut n).await;
    assert!(
        longest < MIN_LOG + MIN_LOG / 2,
        "the log grew to {longest} bytes before compacting; the threshold is {MIN_LOG}"
    );
    store.close().await.unwrap();
}
