//! Read-only views beside a live owner: everything a view returns comes from one state, the
//! state after a prefix of the owner's commits, or the read fails with
//! `AuthError::ChangedWhileReading` (open the view again and retry). Never a mix, never a
//! file that vanished read as absent.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wa_auth::{
    AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt, Snapshot,
    WriteBatch,
};
use wa_store_compat::layout::{CREDS_FILE, key_file_name};
use wa_store_compat::{CompatReader, CompatStore, CompatStoreOptions};

const KEYS: u32 = 24;

fn lid(value: &str) -> KeyValue {
    KeyValue::LidMapping(value.to_owned())
}

/// The folder opened read-only, or for writing.
async fn open_either(dir: &Path, read_only: bool) -> wa_auth::Result<Box<dyn Persistence>> {
    Ok(if read_only {
        Box::new(CompatReader::open(dir).await?)
    } else {
        Box::new(CompatStore::open(dir).await?)
    })
}

/// Commit `n`: every key holds `n`, the creds count `n`, and key `odd` exists only after odd
/// commits. Any state a reader sees can be checked against this.
fn commit_n(n: u32, creds: &AuthCreds) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for k in 0..KEYS {
        batch.put(KeyKind::LidMapping, format!("k{k}"), lid(&n.to_string()));
    }
    if n % 2 == 1 {
        batch.put(KeyKind::LidMapping, "odd", lid(&n.to_string()));
    } else {
        batch.delete(KeyKind::LidMapping, "odd");
    }
    let mut creds = creds.clone();
    creds.account_sync_counter = n;
    batch.set_creds(creds);
    batch
}

/// The commit a snapshot is exactly the state after; panics when it is no such state.
fn which_commit(snapshot: &Snapshot) -> u32 {
    let creds = snapshot.creds.as_ref().expect("creds");
    let n = creds.account_sync_counter;
    let keys = &snapshot.keys[&KeyKind::LidMapping];
    for k in 0..KEYS {
        let id = KeyId::new(format!("k{k}"));
        assert_eq!(
            keys.get(&id),
            Some(&lid(&n.to_string())),
            "k{k} in state {n}"
        );
    }
    let odd = keys.get(&KeyId::new("odd"));
    assert_eq!(odd.is_some(), n % 2 == 1, "odd key in state {n}");
    assert_eq!(keys.len() as u32, KEYS + n % 2, "keys in state {n}");
    n
}

async fn owned_folder() -> (tempfile::TempDir, PathBuf, CompatStore, AuthCreds) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("auth");
    let creds = AuthCreds::generate();
    // Without fsync: durability plays no part here, and commits come faster.
    let owner = CompatStore::open_with(&dir, CompatStoreOptions::default().fsync(false))
        .await
        .unwrap();
    owner.commit(commit_n(1, &creds)).await.unwrap();
    (tmp, dir, owner, creds)
}

fn changed(err: &AuthError) -> bool {
    matches!(err, AuthError::ChangedWhileReading { .. })
}

#[tokio::test]
async fn a_view_fails_instead_of_reading_a_later_commit() {
    let (_tmp, dir, owner, creds) = owned_folder().await;
    let view = CompatReader::open(&dir).await.unwrap();
    let k0 = KeyId::new("k0");
    assert_eq!(
        view.get_one(&KeyKind::LidMapping, &k0).await.unwrap(),
        Some(lid("1"))
    );
    owner.commit(commit_n(2, &creds)).await.unwrap();
    // Every later read would come from commit 2: refused.
    let err = view
        .get_one(&KeyKind::LidMapping, &"k1".into())
        .await
        .unwrap_err();
    assert!(changed(&err), "{err}");
    let err = view
        .get_one(&KeyKind::LidMapping, &"odd".into())
        .await
        .unwrap_err();
    assert!(changed(&err), "a key deleted by a later commit: {err}");
    let err = view.load_creds().await.unwrap_err();
    assert!(changed(&err), "{err}");
    println!("{err}");
    // A new view reads commit 2.
    let view = CompatReader::open(&dir).await.unwrap();
    assert_eq!(which_commit(&view.load_all().await.unwrap()), 2);
}

#[tokio::test]
async fn a_file_that_vanishes_is_never_read_as_absent() {
    let (_tmp, dir, owner, _creds) = owned_folder().await;
    owner.close().await.unwrap();
    for name in [
        CREDS_FILE.to_owned(),
        key_file_name(&KeyKind::LidMapping, &"k3".into()),
    ] {
        for read_only in [true, false] {
            let store = open_either(&dir, read_only).await.unwrap();
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            std::fs::remove_file(dir.join(&name)).unwrap();
            let err = if name == CREDS_FILE {
                store.load_creds().await.unwrap_err()
            } else {
                store.load_all().await.unwrap_err()
            };
            assert!(changed(&err), "{name}: {err}");
            assert!(err.to_string().contains(&name), "{name}: {err}");
            drop(store);
            std::fs::write(dir.join(&name), bytes).unwrap();
        }
    }
}

/// Reads `dir` read-only in a loop until `stop`; returns (consistent reads, refused reads).
fn reader(dir: &Path, stop: &AtomicBool) -> (usize, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (mut consistent, mut refused) = (0, 0);
    let mut last = 0;
    while !stop.load(Ordering::Relaxed) {
        let result = runtime.block_on(async {
            let view = CompatReader::open(dir).await?;
            view.load_all().await
        });
        match result {
            Ok(snapshot) => {
                let n = which_commit(&snapshot);
                assert!(n >= last, "went back from state {last} to {n}");
                last = n;
                consistent += 1;
            }
            Err(e) if changed(&e) => refused += 1,
            Err(e) => panic!("read failed: {e}"),
        }
    }
    (consistent, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_beside_a_committing_owner_see_a_prefix_or_fail() {
    let (_tmp, dir, owner, creds) = owned_folder().await;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (dir, stop) = (dir.clone(), stop.clone());
            std::thread::spawn(move || reader(&dir, &stop))
        })
        .collect();
    let started = Instant::now();
    let mut n = 1;
    while started.elapsed() < Duration::from_secs(2) || n < 50 {
        n += 1;
        owner.commit(commit_n(n, &creds)).await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (mut consistent, mut refused) = (0, 0);
    for r in readers {
        let (c, f) = r.join().expect("reader");
        consistent += c;
        refused += f;
    }
    println!("{n} commits; {consistent} consistent reads, {refused} refused");
    assert!(consistent > 0, "no read got through");
}
