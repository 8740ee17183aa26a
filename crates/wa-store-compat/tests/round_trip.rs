//! Load a Baileys folder and write everything to a new folder through the store: the same file
//! names, and JSON values equal to Baileys' own (modulo key order), for every fixture folder of
//! Baileys 6 and 7 (accounts and peers).

mod common;

use common::{all_auth_folders, folder_files};
use serde_json::Value;
use wa_auth::{Persistence, PersistenceExt};
use wa_store_compat::{CompatReader, CompatStore, CompatStoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_folder_is_written_back_as_baileys_wrote_it() {
    let mut folders = 0;
    let mut files = 0;
    let mut identical = 0;
    for (name, _version, auth) in all_auth_folders() {
        let source = CompatReader::open(&auth)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let snapshot = source
            .load_all()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let tmp = tempfile::tempdir().expect("temp dir");
        let target_dir = tmp.path().join("auth");
        let target = CompatStore::open_with(
            &target_dir,
            CompatStoreOptions::default()
                .flavour(source.flavour())
                .fsync(false),
        )
        .await
        .expect("open target");
        target.commit(snapshot.to_batch()).await.expect("write all");
        // What the target reads back is what was written.
        assert_eq!(target.load_all().await.unwrap(), snapshot, "{name}");
        drop(target);

        let original = folder_files(&auth);
        let written = folder_files(&target_dir);
        assert_eq!(
            written.keys().collect::<Vec<_>>(),
            original.keys().collect::<Vec<_>>(),
            "{name}: file names differ"
        );
        for (file, bytes) in &original {
            let expected: Value = serde_json::from_slice(bytes).expect("fixture JSON");
            let got: Value = serde_json::from_slice(&written[file]).expect("written JSON");
            assert_eq!(got, expected, "{name}/{file}: value differs from Baileys'");
            files += 1;
            if written[file] == *bytes {
                identical += 1;
            } else {
                println!("{name}/{file}: same value, other key order");
            }
        }
        // Reopened with detection, the written folder has the source's flavour.
        let reopened = CompatStore::open(&target_dir).await.expect("reopen");
        assert_eq!(reopened.flavour(), source.flavour(), "{name}");
        folders += 1;
        println!(
            "{name}: {} files written as Baileys wrote them",
            original.len()
        );
    }
    println!("{folders} folders, {files} files, {identical} of them byte for byte");
    assert!(folders > 0 && files > 0);
}
