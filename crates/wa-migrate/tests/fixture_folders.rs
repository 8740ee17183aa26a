//! Every Baileys fixture folder migrates to native without changing the source; the migrated
//! state decrypts the future messages recorded with it; native -> compat -> native is
//! lossless and keeps the Baileys flavour.

mod common;

use std::sync::Arc;

use common::{assert_same, compat_snapshot, decrypt_vectors, native_snapshot, tree};
use wa_migrate::{MigrateOptions, migrate_compat_json_to_native, migrate_native_to_compat_json};
use wa_store_native::NativeStore;
use wa_testkit::fixtures::{baileys_auth_folders, read_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_folder_migrates_to_native_and_decrypts_its_future_messages() {
    let mut decrypted = 0;
    let mut failures = Vec::new();
    for (name, auth) in baileys_auth_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("native");
        let before = tree(&auth);
        let summary = migrate_compat_json_to_native(&auth, &dest, &MigrateOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tree(&auth), before, "{name}: the source changed");
        assert!(
            summary.published && summary.creds_migrated,
            "{name}: {summary}"
        );
        assert!(summary.skipped.is_empty(), "{name}: {summary}");

        let source = compat_snapshot(&auth).await;
        let migrated = native_snapshot(&dest).await;
        assert_same(&name, &source, &migrated);
        assert_eq!(summary.total_keys, source.key_count(), "{name}");
        for (kind, count) in source.counts() {
            assert_eq!(
                summary.keys.get(kind.as_str()),
                Some(&count),
                "{name}: {kind}"
            );
        }
        assert!(
            !tmp.path().join(".native.wa-migrate-staging").exists(),
            "{name}: staging left behind"
        );

        let vectors_path = format!("baileys/{name}/expected/vectors.json");
        let vectors = read_json(&vectors_path);
        let store = NativeStore::open(&dest).await.expect("open migrated");
        match decrypt_vectors(&name, &vectors, Arc::new(store)).await {
            Ok(n) => decrypted += n,
            Err(f) => failures.extend(f),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(decrypted > 0, "no future message was decrypted");
    println!("{decrypted} future messages decrypted from migrated native stores");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_to_compat_to_native_is_lossless_and_keeps_the_flavour() {
    for (name, auth) in baileys_auth_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let first = tmp.path().join("first");
        let back = tmp.path().join("back");
        let second = tmp.path().join("second");
        let options = MigrateOptions::default();
        migrate_compat_json_to_native(&auth, &first, &options)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let summary = migrate_native_to_compat_json(&first, &back, &options)
            .await
            .unwrap_or_else(|e| panic!("{name}: rollback: {e}"));
        migrate_compat_json_to_native(&back, &second, &options)
            .await
            .unwrap_or_else(|e| panic!("{name}: again: {e}"));

        let original = native_snapshot(&first).await;
        assert_same(
            &format!("{name} compat"),
            &original,
            &compat_snapshot(&back).await,
        );
        assert_same(
            &format!("{name} native again"),
            &original,
            &native_snapshot(&second).await,
        );

        let source_flavour = wa_store_compat::CompatReader::open(&auth)
            .await
            .unwrap()
            .flavour();
        assert_eq!(
            summary.target.flavour.as_deref(),
            Some(source_flavour.as_str()),
            "{name}: rollback flavour"
        );
        // The rolled-back folder holds the same Baileys files as the source.
        let names = |dir: &std::path::Path| -> std::collections::BTreeSet<String> {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        };
        assert_eq!(names(&back), names(&auth), "{name}: file names");
    }
}
