//! A directory that holds something else (a Baileys folder) is refused with an error naming
//! what was found and how to migrate it; unreadable paths are errors, never "no creds".

use wa_auth::AuthError;
use wa_store_native::{NativeReader, NativeStore, NativeStoreOptions, load_credentials};

#[tokio::test]
async fn a_baileys_folder_is_refused_naming_its_files_and_the_migration() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let found = ["creds.json", "session-4915100000000.0.json"];
    for name in found {
        std::fs::write(dir.join(name), b"{}").expect("write");
    }
    for read_only in [false, true] {
        let err = if read_only {
            NativeReader::open(dir).await.map(drop)
        } else {
            NativeStore::open_with(dir, NativeStoreOptions::default())
                .await
                .map(drop)
        }
        .expect_err("a Baileys folder is no native store");
        let text = err.to_string();
        for name in found {
            assert!(text.contains(name), "{text}");
        }
        assert!(text.contains("cargo xtask migrate"), "{text}");
        println!("{text}");
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, found);
}

#[tokio::test]
async fn load_credentials_fails_on_a_path_it_cannot_examine() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A symlink loop: examining it fails with ELOOP (a permission error for a non-root user
    // behaves the same way), which is not "no store here".
    let path = tmp.path().join("loop");
    std::os::unix::fs::symlink(&path, &path).expect("symlink");
    let err = load_credentials(&path)
        .await
        .expect_err("an unreadable path is an error");
    assert!(matches!(err, AuthError::Io { .. }), "{err}");
    assert!(err.to_string().contains("loop"), "{err}");
    // A path that does not exist is no store: no creds.
    let missing = tmp.path().join("missing");
    assert_eq!(load_credentials(&missing).await.expect("missing"), None);
}
