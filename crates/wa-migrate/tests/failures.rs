//! Failures never publish a partial state: faults injected at every step of a folder
//! migration (new and overwritten destinations) and of a store-to-store migration leave the
//! destination absent or unchanged, and a retry succeeds. Also: refusals (non-empty
//! destination, a busy destination, a destination whose owner is running), dry runs, and the
//! clean-up of what an interrupted migration left.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use common::{assert_holds, assert_same, compat_snapshot, migrate_ok, tree};
use wa_auth::{
    AuthCreds, Capabilities, KeyId, KeyKind, KeyValue, MemoryStore, Persistence, PersistenceExt,
    WriteBatch,
};
use wa_migrate::{
    FaultPoint, MigrateError, MigrateOptions, migrate, migrate_compat_json_to_native,
    recover_interrupted,
};
use wa_store_native::NativeStore;
use wa_testkit::fixtures::baileys_auth_folders;

/// The fixture folder with the most keys, and another one (a different account).
fn two_folders() -> (PathBuf, PathBuf) {
    let folders = baileys_auth_folders();
    let with_sessions: Vec<_> = folders
        .iter()
        .filter(|(name, _)| name.ends_with("paired-with-sessions"))
        .map(|(_, p)| p.clone())
        .collect();
    assert!(
        with_sessions.len() >= 2,
        "need two paired-with-sessions folders"
    );
    (with_sessions[0].clone(), with_sessions[1].clone())
}

fn leftovers(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("staging") || n.contains("backup"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_step_publishes_nothing_new_folder() {
    let (auth, _) = two_folders();
    for point in [FaultPoint::AfterWrite, FaultPoint::AfterVerify] {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("native");
        let err = migrate_compat_json_to_native(
            &auth,
            &dest,
            &MigrateOptions::default().inject_fault(point),
        )
        .await
        .expect_err("the fault must fail the migration");
        assert!(
            matches!(err, MigrateError::Injected(p) if p == point),
            "{err}"
        );
        assert!(!dest.exists(), "{point:?}: destination published");
        assert!(
            leftovers(tmp.path()).is_empty(),
            "{point:?}: {:?}",
            leftovers(tmp.path())
        );
        // A retry succeeds.
        migrate_ok(&auth, &dest).await;
        assert_holds("retry", &dest, &auth).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_step_leaves_an_overwritten_destination_unchanged() {
    let (old_source, new_source) = two_folders();
    for point in [
        FaultPoint::AfterWrite,
        FaultPoint::AfterVerify,
        FaultPoint::AfterBackup,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("native");
        migrate_ok(&old_source, &dest).await;
        let before = tree(&dest);
        let err = migrate_compat_json_to_native(
            &new_source,
            &dest,
            &MigrateOptions::default()
                .overwrite(true)
                .inject_fault(point),
        )
        .await
        .expect_err("the fault must fail the migration");
        assert!(matches!(err, MigrateError::Injected(_)), "{err}");
        assert_eq!(tree(&dest), before, "{point:?}: destination changed");
        assert!(
            leftovers(tmp.path()).is_empty(),
            "{point:?}: {:?}",
            leftovers(tmp.path())
        );

        let summary = migrate_compat_json_to_native(
            &new_source,
            &dest,
            &MigrateOptions::default().overwrite(true),
        )
        .await
        .unwrap();
        assert!(summary.replaced_existing && summary.published);
        assert_holds("overwrite", &dest, &new_source).await;
        assert!(leftovers(tmp.path()).is_empty(), "backup not removed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_empty_destinations_are_refused_and_dry_runs_write_nothing() {
    let (old_source, new_source) = two_folders();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");

    let dry =
        migrate_compat_json_to_native(&old_source, &dest, &MigrateOptions::default().dry_run(true))
            .await
            .unwrap();
    assert!(dry.dry_run && !dry.published && dry.total_keys > 0);
    assert!(!dest.exists(), "dry run wrote the destination");

    migrate_ok(&old_source, &dest).await;
    let before = tree(&dest);
    let err = migrate_compat_json_to_native(&new_source, &dest, &MigrateOptions::default())
        .await
        .expect_err("non-empty destination");
    assert!(
        matches!(err, MigrateError::DestinationNotEmpty { .. }),
        "{err}"
    );
    // The library names no CLI flag; the hint says what can be done.
    assert!(!err.to_string().contains("--"), "{err}");
    assert_eq!(err.hint(), Some(wa_migrate::Hint::Overwrite));
    let dry = migrate_compat_json_to_native(
        &new_source,
        &dest,
        &MigrateOptions::default().overwrite(true).dry_run(true),
    )
    .await
    .unwrap();
    assert!(dry.replaced_existing && !dry.published);
    assert_eq!(
        tree(&dest),
        before,
        "refused or dry-run migration changed the destination"
    );

    // An empty destination folder is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    migrate_ok(&old_source, &empty).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_in_use_is_not_swapped() {
    let (old_source, new_source) = two_folders();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");
    migrate_ok(&old_source, &dest).await;
    let owner = NativeStore::open(&dest).await.unwrap();
    let err = migrate_compat_json_to_native(
        &new_source,
        &dest,
        &MigrateOptions::default().overwrite(true),
    )
    .await
    .expect_err("the destination is owned");
    assert!(
        matches!(
            err,
            MigrateError::Target {
                source: wa_auth::AuthError::AlreadyOwned { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(leftovers(tmp.path()).is_empty());
    let state = owner.load_all().await.unwrap();
    owner.close().await.unwrap();
    assert_same("owner", &compat_snapshot(&old_source).await, &state);
    assert_holds("dest", &dest, &old_source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_an_interrupted_migration_are_cleaned_up() {
    let (old_source, new_source) = two_folders();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");
    migrate_ok(&old_source, &dest).await;
    let old = tree(&dest);
    // As if killed between moving the old state aside and moving the new one in.
    let backup = tmp.path().join(".native.wa-migrate-backup");
    let staging = tmp.path().join(".native.wa-migrate-staging");
    std::fs::rename(&dest, &backup).unwrap();
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("log"), b"half written").unwrap();

    let done = recover_interrupted(&dest).unwrap();
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(leftovers(tmp.path()).is_empty());
    let restored: Vec<_> = tree(&dest).into_values().collect();
    assert_eq!(
        restored,
        old.into_values().collect::<Vec<_>>(),
        "restored state differs"
    );

    // A completed swap whose deletion of the replaced state was interrupted: the rest of it
    // (in the trash folder; the new state was durably in place) is removed, and reported.
    let trash = tmp.path().join(".native.wa-migrate-trash");
    std::fs::create_dir(&trash).unwrap();
    std::fs::write(trash.join("log"), b"half removed").unwrap();
    let summary = migrate_compat_json_to_native(
        &new_source,
        &dest,
        &MigrateOptions::default().overwrite(true),
    )
    .await
    .unwrap();
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.contains("wa-migrate-trash")),
        "{summary}"
    );
    assert!(leftovers(tmp.path()).is_empty());
}

/// The old state moved aside by a migration that crashed, then the destination recreated by
/// the application (fresh creds, as `use_native_file_auth_state` does on an empty folder).
async fn crash_after_backup_then_recreate(old_source: &Path, new_source: &Path, dest: &Path) {
    migrate_ok(old_source, dest).await;
    let err = migrate_compat_json_to_native(
        new_source,
        dest,
        &MigrateOptions::default()
            .overwrite(true)
            .inject_fault(FaultPoint::CrashAfterBackup),
    )
    .await
    .expect_err("crashed");
    assert!(matches!(err, MigrateError::Injected(_)), "{err}");
    assert!(!dest.exists(), "the crash came after the backup step");
    drop(
        wa_store_native::use_native_file_auth_state(dest)
            .await
            .unwrap(),
    );
}

/// The one backup kept beside `dest`, which must hold the state of `source`; it is named in
/// `messages`.
async fn assert_kept_backup(parent: &Path, source: &Path, messages: &[String]) {
    let kept: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("wa-migrate-backup-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let named = kept[0].display().to_string();
    assert!(
        messages.iter().any(|m| m.contains(&named)),
        "{named} is not named in {messages:?}"
    );
    assert_holds("the kept backup", &kept[0], source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_beside_a_recreated_destination_is_kept_not_deleted() {
    let (old_source, new_source) = two_folders();

    // Recovered by the next migration.
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");
    crash_after_backup_then_recreate(&old_source, &new_source, &dest).await;
    let summary = migrate_compat_json_to_native(
        &new_source,
        &dest,
        &MigrateOptions::default().overwrite(true),
    )
    .await
    .unwrap();
    assert_holds("migrated", &dest, &new_source).await;
    assert_kept_backup(tmp.path(), &old_source, &summary.warnings).await;

    // Recovered by `recover_interrupted`, which says where the backup went.
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");
    crash_after_backup_then_recreate(&old_source, &new_source, &dest).await;
    let done = recover_interrupted(&dest).unwrap();
    assert_kept_backup(tmp.path(), &old_source, &done).await;
    assert!(
        recover_interrupted(&dest).unwrap().is_empty(),
        "nothing left to do"
    );

    // A backup holding the same files as the destination is redundant: removed.
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");
    migrate_ok(&old_source, &dest).await;
    common::copy_dir(&dest, &tmp.path().join(".native.wa-migrate-backup"));
    let done = recover_interrupted(&dest).unwrap();
    assert!(done.iter().any(|m| m.contains("same files")), "{done:?}");
    assert!(leftovers(tmp.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_after_publishing_is_reported_as_published_with_a_warning() {
    let (old_source, new_source) = two_folders();
    let faulty = MigrateOptions::default().inject_fault(FaultPoint::SyncAfterPublish);

    // A new destination.
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");
    let summary = migrate_compat_json_to_native(&old_source, &dest, &faulty)
        .await
        .expect("the new state is in place: not a failure");
    assert!(summary.published, "{summary}");
    assert!(
        summary.warnings.iter().any(|w| w.contains("power loss")),
        "{summary}"
    );
    assert_holds("published", &dest, &old_source).await;

    // Over an existing one: the old state is kept, and the warning says where.
    let summary = migrate_compat_json_to_native(&new_source, &dest, &faulty.overwrite(true))
        .await
        .expect("the new state is in place: not a failure");
    assert!(summary.published && summary.replaced_existing, "{summary}");
    let backup = tmp.path().join(".native.wa-migrate-backup");
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.contains("power loss") && w.contains(&backup.display().to_string())),
        "{summary}"
    );
    assert_holds("published", &dest, &new_source).await;
    assert_holds("kept", &backup, &old_source).await;
}

/// Creating the destination's parent folders syncs the folders holding them.
#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_destination_parent_syncs_the_folder_holding_it() {
    use wa_auth::fault::{Fault, Op};
    let (auth, _) = two_folders();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("new-parent").join("native");
    let fault = Fault::new(Op::SyncDir, tmp.path());
    let err = migrate_compat_json_to_native(&auth, &dest, &MigrateOptions::default())
        .await
        .expect_err("the folder holding the new parent must be synced");
    assert!(matches!(err, MigrateError::Io { .. }), "{err}");
    assert_eq!(fault.failed(), 1);
    drop(fault);
    migrate_ok(&auth, &dest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_migration_to_the_same_destination_waits_its_turn() {
    let (auth, _) = two_folders();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");
    let lock = std::fs::File::create(tmp.path().join(".native.wa-migrate.lock")).unwrap();
    lock.lock().unwrap();
    let err = migrate_compat_json_to_native(&auth, &dest, &MigrateOptions::default())
        .await
        .expect_err("busy");
    assert!(matches!(err, MigrateError::Busy { .. }), "{err}");
    assert!(!dest.exists());
}

/// A backend that loses one key on the way (what verification is for).
#[derive(Debug)]
struct Lossy {
    inner: MemoryStore,
    hide: KeyId,
}

#[async_trait]
impl Persistence for Lossy {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn load_creds(&self) -> wa_auth::Result<Option<AuthCreds>> {
        self.inner.load_creds().await
    }
    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> wa_auth::Result<Vec<(KeyId, KeyValue)>> {
        let mut found = self.inner.get(kind, ids).await?;
        if *kind == KeyKind::Session {
            found.retain(|(id, _)| *id != self.hide);
        }
        Ok(found)
    }
    async fn list(&self, kind: &KeyKind) -> wa_auth::Result<Vec<KeyId>> {
        self.inner.list(kind).await
    }
    async fn kinds(&self) -> wa_auth::Result<Vec<KeyKind>> {
        self.inner.kinds().await
    }
    async fn commit(&self, batch: WriteBatch) -> wa_auth::Result<()> {
        self.inner.commit(batch).await
    }
    async fn close(&self) -> wa_auth::Result<()> {
        self.inner.close().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_to_store_failures_restore_the_target() {
    let (old_source, new_source) = two_folders();
    let old = compat_snapshot(&old_source).await;
    let new = compat_snapshot(&new_source).await;
    let source = MemoryStore::new();
    source.commit(new.to_batch()).await.unwrap();

    // An injected fault after the write: the target's previous state is put back.
    let target = MemoryStore::new();
    target.commit(old.to_batch()).await.unwrap();
    let err = migrate(
        &source,
        &target,
        &MigrateOptions::default()
            .overwrite(true)
            .inject_fault(FaultPoint::AfterWrite),
    )
    .await
    .expect_err("fault");
    assert!(matches!(err, MigrateError::Injected(_)), "{err}");
    assert_same("restored", &old, &target.load_all().await.unwrap());

    // A target that reads back something else fails verification and is restored.
    let hide = new.keys[&KeyKind::Session]
        .keys()
        .find(|id| !old.keys[&KeyKind::Session].contains_key(*id))
        .expect("the accounts have different sessions")
        .clone();
    let lossy = Lossy {
        inner: MemoryStore::new(),
        hide,
    };
    lossy.inner.commit(old.to_batch()).await.unwrap();
    let err = migrate(&source, &lossy, &MigrateOptions::default().overwrite(true))
        .await
        .expect_err("verification must catch the lost key");
    assert!(
        matches!(&err, MigrateError::Verification { what, .. } if what.starts_with("session")),
        "{err}"
    );
    assert_same("restored", &old, &lossy.inner.load_all().await.unwrap());

    // And the happy path, into an empty store.
    let target = Arc::new(MemoryStore::new());
    let summary = migrate(&source, target.as_ref(), &MigrateOptions::default())
        .await
        .unwrap();
    assert!(summary.published && summary.total_keys == new.key_count());
    assert_same("migrated", &new, &target.load_all().await.unwrap());
    let err = migrate(&source, target.as_ref(), &MigrateOptions::default())
        .await
        .expect_err("not empty");
    assert!(matches!(err, MigrateError::DestinationNotEmpty { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_refuses_a_destination_holding_other_files() {
    let (old_source, new_source) = two_folders();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("auth");
    common::copy_dir(&old_source, &dest);
    std::fs::write(dest.join("notes.txt"), b"my notes").unwrap();
    let before = tree(&dest);
    let err = wa_migrate::migrate_between(
        &wa_migrate::Location::Compat(new_source.clone()),
        &wa_migrate::Location::Compat(dest.clone()),
        &MigrateOptions::default().overwrite(true),
    )
    .await
    .expect_err("notes.txt would be lost");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(tree(&dest), before);

    // A dry run creates nothing at all, not even the migration lock.
    let fresh = tmp.path().join("new-parent").join("native");
    migrate_compat_json_to_native(
        &new_source,
        &fresh,
        &MigrateOptions::default().dry_run(true),
    )
    .await
    .unwrap();
    assert!(!tmp.path().join("new-parent").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_inside_the_source_is_refused() {
    let (auth, _) = two_folders();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("auth");
    common::copy_dir(&auth, &source);
    let before = tree(&source);
    for dest in [
        source.join("native"),
        source.clone(),
        tmp.path().to_path_buf(),
    ] {
        let err = migrate_compat_json_to_native(&source, &dest, &MigrateOptions::default())
            .await
            .expect_err("overlapping folders");
        assert!(
            matches!(
                err,
                MigrateError::Overlap { .. } | MigrateError::SameLocation { .. }
            ),
            "{}: {err}",
            dest.display()
        );
    }
    assert_eq!(tree(&source), before, "the source changed");
}
