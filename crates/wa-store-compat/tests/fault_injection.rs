//! I/O faults around the commit point (feature `fault-injection`): whatever fails, and
//! wherever the process then dies (a child process, this test binary re-run on the same test,
//! that exits without any clean-up right after the failed commit), the reopened folder holds
//! either no trace of the batch or the whole batch. File times play no part in recovery.

#![cfg(debug_assertions)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use wa_auth::{
    AuthCreds, AuthError, KeyKind, KeyValue, MemoryStore, Persistence, PersistenceExt, Snapshot,
    WriteBatch,
};
use wa_signal::{KeyPair, PreKeyId, PreKeyRecord};
use wa_store_compat::fault::{FaultPoint, arm};
use wa_store_compat::{CompatStore, Recovery};

const JOURNAL: &str = ".wa-store-compat.journal";
const TEMP_PREFIX: &str = ".wa-store-compat.tmp-";
/// Set (to the folder) in a child process; the point to fail is in `CHILD_POINT`.
const CHILD_DIR: &str = "WA_COMPAT_FAULT_CHILD_DIR";
const CHILD_POINT: &str = "WA_COMPAT_FAULT_CHILD_POINT";

fn lid(value: &str) -> KeyValue {
    KeyValue::LidMapping(value.to_owned())
}

fn pre_key(id: u32) -> KeyValue {
    KeyValue::PreKey(PreKeyRecord {
        id: PreKeyId(id),
        key_pair: KeyPair::generate(&mut wa_auth::SystemProvider::new()),
    })
}

fn point_name(point: FaultPoint) -> String {
    match point {
        FaultPoint::ApplyOp(n) => format!("op:{n}"),
        FaultPoint::SyncAfterJournal => "sync".into(),
        other => panic!("no child for {other:?}"),
    }
}

/// In a child process: commits the batch under test to the folder with the point armed, then
/// dies without cleaning anything up. Returns in the parent.
async fn act_as_child_if_asked() {
    let Some(dir) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    let point = match std::env::var(CHILD_POINT).expect("point").as_str() {
        "sync" => FaultPoint::SyncAfterJournal,
        op => FaultPoint::ApplyOp(op.strip_prefix("op:").expect("op").parse().expect("n")),
    };
    let store = CompatStore::open(&dir).await.expect("child open");
    let creds = store.load_creds().await.expect("creds").expect("creds");
    arm(&dir, point);
    let code = match store.commit(under_test(&creds)).await {
        Ok(()) => 3, // the point was not reached
        Err(_) => 0,
    };
    std::process::exit(code); // no destructor runs: the process dies here
}

/// Runs the batch under test in a child that dies right after `point` failed it; false when
/// the point was never reached.
fn commit_in_dying_child(test: &str, dir: &Path, point: FaultPoint) -> bool {
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_POINT, point_name(point))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("child");
    match status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => panic!("child failed: {status}"),
    }
}

/// The state a folder starts from: creds, pre-keys and LID mappings.
fn initial(creds: &AuthCreds) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.set_creds(creds.clone());
    for id in 1..=4 {
        batch.put(KeyKind::PreKey, id.to_string(), pre_key(id));
    }
    batch.put(KeyKind::LidMapping, "a", lid("1"));
    batch.put(KeyKind::LidMapping, "b", lid("1"));
    batch
}

/// The batch under test: updates, a new file, a new kind (so the registry changes), deletes
/// and a creds change: every kind of operation a commit applies.
fn under_test(creds: &AuthCreds) -> WriteBatch {
    let mut creds = creds.clone();
    creds.next_pre_key_id += 10;
    let mut batch = WriteBatch::new();
    batch.set_creds(creds);
    batch.put(KeyKind::LidMapping, "a", lid("2"));
    batch.put(KeyKind::LidMapping, "new", lid("2"));
    batch.put(
        KeyKind::from_name("fault-kind").unwrap(),
        "x/y:z",
        KeyValue::Other(serde_json::json!({"n": 2})),
    );
    batch.delete(KeyKind::PreKey, "1");
    batch.delete(KeyKind::PreKey, "2");
    batch
}

/// A folder holding the initial state; the states before and after the batch under test
/// (which depends only on the creds, so a child process builds the same one).
async fn prepared() -> (tempfile::TempDir, PathBuf, WriteBatch, Snapshot, Snapshot) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("auth");
    let creds = AuthCreds::generate();
    let model = MemoryStore::new();
    let store = CompatStore::open(&dir).await.unwrap();
    let start = initial(&creds);
    for target in [&store as &dyn Persistence, &model] {
        target.commit(start.clone()).await.unwrap();
    }
    // Closed, not dropped: a child process opens the folder next.
    store.close().await.unwrap();
    let before = model.snapshot();
    let batch = under_test(&creds);
    model.commit(batch.clone()).await.unwrap();
    (tmp, dir, batch, before, model.snapshot())
}

/// Reopens the folder and checks it holds exactly `before` or exactly `after`; returns which.
async fn reopened_state(dir: &Path, before: &Snapshot, after: &Snapshot) -> &'static str {
    let store = CompatStore::open(dir)
        .await
        .unwrap_or_else(|e| panic!("reopen: {e}"));
    let got = store.load_all().await.expect("load after reopen");
    let which = if got == *after {
        "after"
    } else if got == *before {
        "before"
    } else {
        panic!(
            "torn batch after recovery ({:?}): keys {:?}, creds changed: {}",
            store.report().recovery,
            got.keys
                .keys()
                .map(|k| (k, got.keys[k].len()))
                .collect::<Vec<_>>(),
            got.creds != before.creds
        );
    };
    let leftovers: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(TEMP_PREFIX))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    which
}

/// Commits the batch under test with `point` armed: the commit fails; after the commit point
/// the store refuses every later commit.
async fn failing_commit(dir: &Path, batch: WriteBatch, point: FaultPoint) -> Option<CompatStore> {
    let store = CompatStore::open(dir).await.unwrap();
    arm(dir, point);
    match store.commit(batch).await {
        Ok(()) => return None, // the point was never reached
        Err(e) => println!("{point:?}: {e}"),
    }
    Some(store)
}

#[tokio::test]
async fn a_failed_folder_sync_after_the_journal_rename_leaves_the_store_failed() {
    let (_tmp, dir, batch, before, after) = prepared().await;
    let store = failing_commit(&dir, batch, FaultPoint::SyncAfterJournal)
        .await
        .expect("the sync after the journal is reached");
    // The outcome is open until the folder is reopened: no further commit, no read of what
    // the batch touched.
    let err = store.put_one("c".into(), lid("3")).await.unwrap_err();
    assert!(matches!(err, AuthError::Unhealthy { .. }), "{err}");
    let err = store.load_creds().await.unwrap_err();
    assert!(matches!(err, AuthError::Unhealthy { .. }), "{err}");
    let err = store
        .get_one(&KeyKind::PreKey, &"1".into())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unhealthy { .. }), "{err}");
    // Untouched keys still read.
    assert_eq!(
        store
            .get_one(&KeyKind::LidMapping, &"b".into())
            .await
            .unwrap(),
        Some(lid("1"))
    );
    drop(store);
    let which = reopened_state(&dir, &before, &after).await;
    println!("reopened: {which}");
}

#[tokio::test]
async fn a_process_dying_after_a_failed_folder_sync_leaves_all_or_nothing() {
    act_as_child_if_asked().await;
    let (_tmp, dir, _batch, before, after) = prepared().await;
    let test = "a_process_dying_after_a_failed_folder_sync_leaves_all_or_nothing";
    assert!(commit_in_dying_child(
        test,
        &dir,
        FaultPoint::SyncAfterJournal
    ));
    let which = reopened_state(&dir, &before, &after).await;
    println!("reopened: {which}");
}

#[tokio::test]
async fn a_process_dying_after_any_failed_operation_leaves_all_or_nothing() {
    act_as_child_if_asked().await;
    let test = "a_process_dying_after_any_failed_operation_leaves_all_or_nothing";
    let mut failed = 0;
    for n in 0.. {
        let (_tmp, dir, batch, before, after) = prepared().await;
        // In this process: the store refuses to go on.
        let store = failing_commit(&dir, batch, FaultPoint::ApplyOp(n)).await;
        let Some(store) = store else { break };
        let err = store.put_one("c".into(), lid("3")).await.unwrap_err();
        assert!(matches!(err, AuthError::Unhealthy { .. }), "op {n}: {err}");
        drop(store);
        println!(
            "op {n} failed; reopened: {}",
            reopened_state(&dir, &before, &after).await
        );
        // In a process that dies there.
        let (_tmp, dir, _batch, before, after) = prepared().await;
        assert!(commit_in_dying_child(test, &dir, FaultPoint::ApplyOp(n)));
        println!(
            "op {n} failed, process died; reopened: {}",
            reopened_state(&dir, &before, &after).await
        );
        failed += 1;
    }
    // Key renames, deletes, the registry and the creds: every one was made to fail.
    assert!(failed >= 6, "only {failed} operations");
}

#[tokio::test]
async fn a_failure_before_the_commit_point_changes_nothing_and_the_store_goes_on() {
    for point in [FaultPoint::TempWrite, FaultPoint::JournalRename] {
        let (_tmp, dir, batch, before, after) = prepared().await;
        let store = failing_commit(&dir, batch.clone(), point)
            .await
            .expect("reached");
        assert_eq!(store.load_all().await.unwrap(), before, "{point:?}");
        // Healthy: the same batch goes through now.
        store.commit(batch).await.unwrap();
        assert_eq!(store.load_all().await.unwrap(), after, "{point:?}");
        drop(store);
        assert_eq!(reopened_state(&dir, &before, &after).await, "after");
    }
}

/// Sets the modification time of `path`.
fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(time))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A clock stepping back and forth: the journal in the future, every other file in the past
/// or the future, alternately.
fn scramble_times(dir: &Path) {
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    for (i, path) in names.iter().enumerate() {
        let time = if path.ends_with(JOURNAL) || i % 2 == 0 {
            now + hour
        } else {
            now - hour
        };
        set_mtime(path, time);
    }
}

/// The folder copied without preserving times, journal first: everything else is newer.
fn copy_journal_first(dir: &Path) {
    let copy = dir.with_extension("copy");
    std::fs::create_dir(&copy).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort_by_key(|n| n != JOURNAL);
    for name in names {
        std::fs::copy(dir.join(&name), copy.join(&name)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::rename(&copy, dir).unwrap();
}

#[tokio::test]
async fn recovery_decides_per_batch_from_content_never_from_file_times() {
    act_as_child_if_asked().await;
    let test = "recovery_decides_per_batch_from_content_never_from_file_times";
    type Mangle = fn(&Path);
    let manglers: [(&str, Mangle); 2] = [
        ("clock stepped", scramble_times),
        ("copied without times", copy_journal_first),
    ];
    for (what, mangle) in manglers {
        for n in [1, 3] {
            let (_tmp, dir, _batch, before, after) = prepared().await;
            assert!(commit_in_dying_child(test, &dir, FaultPoint::ApplyOp(n)));
            mangle(&dir);
            let which = reopened_state(&dir, &before, &after).await;
            assert_eq!(
                which, "after",
                "{what}, op {n}: every new content was there"
            );
        }
    }
}

#[tokio::test]
async fn a_new_folder_is_made_durable_in_its_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new/auth");
    arm(&dir, FaultPoint::SyncParent);
    let err = CompatStore::open(&dir).await.unwrap_err();
    assert!(matches!(err, AuthError::Io { .. }), "{err}");
    assert!(err.to_string().contains("injected"), "{err}");
    // The folder exists now, but its entry may not be durable: every writable open syncs the
    // parent again.
    arm(&dir, FaultPoint::SyncParent);
    let err = CompatStore::open(&dir).await.unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    let store = CompatStore::open(&dir).await.unwrap();
    assert_eq!(store.report().recovery, Recovery::Clean);
}
