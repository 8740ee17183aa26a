//! Ownership (the directory lock, in this process and from another), file modes, refusing
//! foreign directories, read-only opening, closing, and the `use_native_file_auth_state` /
//! `load_credentials` / `save_credentials` helpers.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;

use wa_auth::{AuthCreds, AuthError, KeyKind, KeyValue, Persistence, PersistenceExt};
use wa_store_native::{
    NativeReader, NativeStore, NativeStoreOptions, load_credentials, save_credentials,
    use_native_file_auth_state,
};

const HOLD_ENV: &str = "WA_NATIVE_HOLD_LOCK_DIR";

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Not a test of its own: when `WA_NATIVE_HOLD_LOCK_DIR` is set (by
/// `a_second_process_gets_already_owned_with_the_pid`, which runs this binary again), opens the
/// store there, says so on stdout and holds it until stdin closes.
#[test]
fn hold_lock_child() {
    let Ok(dir) = std::env::var(HOLD_ENV) else {
        return;
    };
    let store = NativeStore::open_blocking(&dir, NativeStoreOptions::default()).expect("open");
    println!("LOCKED");
    std::io::stdout().flush().expect("flush");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ok();
    drop(store);
}

#[test]
fn a_second_process_gets_already_owned_with_the_pid() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "hold_lock_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("LOCKED"))),
        "the child did not lock"
    );
    match NativeStore::open_blocking(&dir, NativeStoreOptions::default()) {
        Err(AuthError::AlreadyOwned { resource, holder }) => {
            assert!(resource.contains("store"), "{resource}");
            assert_eq!(holder, Some(format!("pid {}", child.id())));
        }
        other => panic!("expected AlreadyOwned, got {other:?}"),
    }
    // Reading without the lock works meanwhile.
    assert!(NativeReader::open_blocking(&dir).is_ok());
    drop(child.stdin.take()); // the child closes the store and exits
    assert!(child.wait().expect("wait").success());
    NativeStore::open_blocking(&dir, NativeStoreOptions::default())
        .expect("the lock is released when its owner exits");
}

#[tokio::test]
async fn a_second_opener_in_this_process_gets_already_owned_until_the_first_closes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    let first = NativeStore::open(&dir).await.expect("open");
    match NativeStore::open(&dir).await {
        Err(AuthError::AlreadyOwned { holder, .. }) => {
            assert_eq!(holder, Some(format!("pid {}", std::process::id())));
        }
        other => panic!("expected AlreadyOwned, got {other:?}"),
    }
    first.close().await.expect("close");
    let err = first
        .put_one("a".into(), KeyValue::LidMapping("1".into()))
        .await
        .expect_err("a closed store refuses commits");
    assert!(matches!(err, AuthError::Closed), "{err}");
    let second = NativeStore::open(&dir).await.expect("reopen after close");
    drop(second);
    NativeStore::open(&dir).await.expect("reopen after drop");
}

#[tokio::test]
async fn files_are_0600_and_the_directory_0700() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    let store =
        NativeStore::open_with(&dir, NativeStoreOptions::default().compact_min_log_bytes(1))
            .await
            .expect("open");
    store
        .put_one("a".into(), KeyValue::LidMapping("1".into()))
        .await
        .expect("commit");
    store.compact().await.expect("compact");
    assert_eq!(mode(&dir), 0o700);
    for name in ["lock", "log", "snapshot"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    drop(store);
    // Loosened by someone: tightened again on open.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(dir.join("log"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let _store = NativeStore::open(&dir).await.expect("open");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("log")), 0o600);
    // Few files whatever the key count.
    let files = std::fs::read_dir(&dir).expect("read dir").count();
    assert_eq!(files, 3);
}

#[tokio::test]
async fn a_directory_holding_other_files_is_not_turned_into_a_store() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::write(dir.join("creds.json"), b"{}").expect("write");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    match NativeStore::open(dir).await {
        Err(AuthError::Invalid { reason, .. }) => {
            assert!(reason.contains("creds.json"), "{reason}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // Untouched: no store files, no lock file, the mode as it was.
    let names: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["creds.json"]);
    assert_eq!(mode(dir), 0o755);
    // And `create(false)` never creates one.
    let empty = tmp.path().join("empty");
    match NativeStore::open_with(&empty, NativeStoreOptions::default().create(false)).await {
        Err(AuthError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(!empty.exists());
}

#[tokio::test]
async fn read_only_sees_a_consistent_state_and_refuses_commits() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    let owner = NativeStore::open(&dir).await.expect("open");
    owner
        .put_one("a".into(), KeyValue::LidMapping("1".into()))
        .await
        .expect("commit");
    let reader = NativeReader::open(&dir)
        .await
        .expect("read-only open while owned");
    assert_eq!(
        reader
            .get_one(&KeyKind::LidMapping, &"a".into())
            .await
            .expect("get"),
        Some(KeyValue::LidMapping("1".into()))
    );
    let err = reader
        .put_one("b".into(), KeyValue::LidMapping("2".into()))
        .await
        .expect_err("read-only commit");
    assert!(matches!(err, AuthError::ReadOnly { .. }), "{err}");
    assert!(reader.capabilities().persistent);
    assert!(reader.capabilities().read_only);
    // The owner compacting and committing while readers open: every read sees a valid state.
    for i in 0..20 {
        owner
            .put_one(format!("k{i}").into(), KeyValue::LidMapping(i.to_string()))
            .await
            .expect("commit");
        if i % 5 == 0 {
            owner.compact().await.expect("compact");
        }
        let reader = NativeReader::open(&dir).await.expect("read-only open");
        assert!(reader.list(&KeyKind::LidMapping).await.expect("list").len() >= i + 2);
    }
    match NativeReader::open(tmp.path().join("missing")).await {
        Err(AuthError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn helpers_create_load_and_save_credentials() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("device");
    assert_eq!(load_credentials(&dir).await.expect("load"), None);
    let state = use_native_file_auth_state(&dir).await.expect("state");
    let creds = state.creds();
    assert_eq!(state.capabilities().backend, "native");
    assert_eq!(
        state.capabilities().durability,
        wa_auth::Durability::OnCommit
    );
    // Readable while owned, and a second owner is refused.
    assert_eq!(
        load_credentials(&dir).await.expect("load").as_ref(),
        Some(&*creds)
    );
    match use_native_file_auth_state(&dir).await {
        Err(AuthError::AlreadyOwned { .. }) => {}
        Err(other) => panic!("expected AlreadyOwned, got {other}"),
        Ok(_) => panic!("expected AlreadyOwned, got a second state"),
    }
    match save_credentials(&dir, &creds).await {
        Err(AuthError::AlreadyOwned { .. }) => {}
        other => panic!("expected AlreadyOwned, got {other:?}"),
    }
    drop(state);
    let state = use_native_file_auth_state(&dir).await.expect("reopen");
    assert_eq!(state.creds(), creds, "reopening keeps the creds");
    drop(state);
    let other = AuthCreds::generate();
    save_credentials(&dir, &other).await.expect("save");
    assert_eq!(load_credentials(&dir).await.expect("load"), Some(other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_lands_whole_and_survives_reopen() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    let store: Arc<dyn Persistence> = Arc::new(NativeStore::open(&dir).await.expect("open"));
    let mut batch = wa_auth::WriteBatch::new();
    let mut rng = common::rng(7, 7);
    for i in 0..2000 {
        batch.put(
            KeyKind::Session,
            format!("{i}.0"),
            KeyValue::Session(common::session(&mut rng)),
        );
    }
    store.commit(batch).await.expect("bulk commit");
    let expected = store.load_all().await.expect("load");
    drop(store);
    let reopened = NativeStore::open(&dir).await.expect("reopen");
    assert_eq!(reopened.load_all().await.expect("load"), expected);
    assert_eq!(
        reopened.list(&KeyKind::Session).await.expect("list").len(),
        2000
    );
}

/// A store dropped inside the runtime while compactions run and NoSync commits are unsynced
/// hands its closing work to the blocking pool; a reopen in this process waits for the lock
/// and finds every commit.
#[tokio::test(flavor = "current_thread")]
async fn a_store_dropped_in_the_runtime_mid_compaction_is_reopened_whole() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    let options = NativeStoreOptions::default()
        .durability(wa_store_native::Durability::NoSync)
        .compact_min_log_bytes(1);
    let store = NativeStore::open_with(&dir, options.clone())
        .await
        .expect("open");
    let ids: Vec<String> = (0..64).map(|i| format!("{i}@lid")).collect();
    for (n, id) in ids.iter().enumerate() {
        store
            .put_one(id.as_str().into(), KeyValue::LidMapping(n.to_string()))
            .await
            .expect("commit");
    }
    drop(store);
    let reopened = NativeStore::open_with(&dir, options)
        .await
        .expect("a reopen waits for the dropped store's lock");
    let ids: Vec<_> = ids.iter().map(|id| id.as_str().into()).collect();
    let found = reopened.get(&KeyKind::LidMapping, &ids).await.expect("get");
    assert_eq!(found.len(), ids.len(), "every commit survives the drop");
    reopened.close().await.expect("close");
    reopened.close().await.expect("close is idempotent");
    let err = reopened.kinds().await.expect_err("reads after close fail");
    assert!(matches!(err, AuthError::Closed), "{err}");
}
