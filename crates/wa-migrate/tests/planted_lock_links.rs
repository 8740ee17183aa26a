//! Lock files planted as symbolic links: the native store's `lock`, the compat store's
//! `.wa-store-compat.lock` and a migration's `.<name>.wa-migrate.lock` are never followed.
//! Opening (or migrating) is refused with an error naming the lock file, and the file the
//! link points at keeps its bytes.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_dir, migrate_ok, tree};
use wa_auth::Persistence;
use wa_migrate::{MigrateOptions, migrate_compat_json_to_native};
use wa_store_compat::CompatStore;
use wa_store_native::NativeStore;
use wa_testkit::fixtures::baileys_auth_folders;

/// A file outside the store that a planted link points at.
fn precious(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("precious.txt");
    let bytes = b"not a lock file: must never be truncated".to_vec();
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn plant(link: &Path, target: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// The error names the lock file and says why; the link and its target are as they were.
fn assert_refused(err: &dyn std::fmt::Display, link: &Path, target: &(PathBuf, Vec<u8>)) {
    let text = err.to_string();
    let name = link.file_name().unwrap().to_string_lossy();
    assert!(
        text.contains(name.as_ref()) && text.contains("symbolic link"),
        "{text}"
    );
    assert!(
        link.symlink_metadata().unwrap().is_symlink(),
        "the link was replaced"
    );
    assert_eq!(
        std::fs::read(&target.0).unwrap(),
        target.1,
        "the target changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_store_lock_planted_as_a_link_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = precious(tmp.path());
    // In a new store directory, and in an existing store.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    plant(&fresh.join("lock"), &target.0);
    let err = NativeStore::open(&fresh).await.expect_err("refused");
    assert_refused(&err, &fresh.join("lock"), &target);

    let existing = tmp.path().join("existing");
    NativeStore::open(&existing)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    std::fs::remove_file(existing.join("lock")).unwrap();
    plant(&existing.join("lock"), &target.0);
    let err = NativeStore::open(&existing).await.expect_err("refused");
    assert_refused(&err, &existing.join("lock"), &target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compat_store_lock_planted_as_a_link_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = precious(tmp.path());
    for (name, auth) in baileys_auth_folders() {
        let folder = tmp.path().join(name.replace('/', "-"));
        copy_dir(&auth, &folder);
        let link = folder.join(".wa-store-compat.lock");
        plant(&link, &target.0);
        let before = tree(&folder);
        let err = CompatStore::open(&folder).await.expect_err("refused");
        assert_refused(&err, &link, &target);
        assert_eq!(tree(&folder), before, "{name}: the folder changed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_lock_planted_as_a_link_is_refused() {
    let (_, auth) = baileys_auth_folders().into_iter().next().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = precious(tmp.path());
    let dest = tmp.path().join("native");
    let link = tmp.path().join(".native.wa-migrate.lock");
    plant(&link, &target.0);
    let err = migrate_compat_json_to_native(&auth, &dest, &MigrateOptions::default())
        .await
        .expect_err("refused");
    assert_refused(&err, &link, &target);
    assert!(!dest.exists(), "published despite the refused lock");

    // The owner lock of a destination being replaced is refused the same way.
    std::fs::remove_file(&link).unwrap();
    migrate_ok(&auth, &dest).await;
    std::fs::remove_file(dest.join("lock")).unwrap();
    plant(&dest.join("lock"), &target.0);
    let before = tree(&dest);
    let err =
        migrate_compat_json_to_native(&auth, &dest, &MigrateOptions::default().overwrite(true))
            .await
            .expect_err("refused");
    assert_refused(&err, &dest.join("lock"), &target);
    assert_eq!(tree(&dest), before, "the destination changed");
}
