//! What the store refuses to open: symlinks and directories named like the files of the
//! layout (never treated as absent, never replaced) and a directory holding another backend's
//! store. A refused folder is left exactly as it was.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use wa_auth::{AuthCreds, AuthError, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch};
use wa_store_compat::layout::{CREDS_FILE, REGISTRY_FILE, key_file_name};
use wa_store_compat::{
    CompatReader, CompatStore, CompatStoreOptions, ReadMode, use_multi_file_auth_state,
};

fn lid(value: &str) -> KeyValue {
    KeyValue::LidMapping(value.to_owned())
}

/// A folder written by the store: creds, two LID mappings and the registry.
async fn folder() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("auth");
    let store = CompatStore::open(&dir).await.unwrap();
    let mut batch = WriteBatch::new();
    batch.set_creds(AuthCreds::generate());
    batch.put(KeyKind::LidMapping, "a", lid("1"));
    batch.put(KeyKind::LidMapping, "b", lid("1"));
    store.commit(batch).await.unwrap();
    store.close().await.unwrap();
    (tmp, dir)
}

/// Every entry under `root` (symlinks not followed): what it is and what it holds.
fn entries(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link to {}", std::fs::read_link(&path).unwrap().display())
        } else if meta.is_dir() {
            out.extend(entries(&path));
            "dir".to_owned()
        } else {
            format!("{:?}", std::fs::read(&path).unwrap())
        };
        out.insert(path, what);
    }
    out
}

/// Opens `dir` every way there is; each must fail naming `name`, and change nothing under
/// `root` (the folder and whatever links point to).
async fn refused_every_way(root: &Path, dir: &Path, name: &str) {
    let before = entries(root);
    let mut errors = Vec::new();
    // Lenient reads exist only on read-only views.
    for (mode, read_only) in [
        (ReadMode::Strict, false),
        (ReadMode::Strict, true),
        (ReadMode::Lenient, true),
    ] {
        let options = CompatStoreOptions::default().mode(mode);
        let opened = if read_only {
            CompatReader::open_with(dir, options).await.map(drop)
        } else {
            CompatStore::open_with(dir, options).await.map(drop)
        };
        match opened {
            Ok(()) => panic!("{name}: opened ({mode:?}, read-only {read_only})"),
            Err(e) => errors.push(e),
        }
    }
    match use_multi_file_auth_state(dir).await {
        Ok(_) => panic!("{name}: use_multi_file_auth_state opened the folder"),
        Err(e) => errors.push(e),
    }
    for err in errors {
        assert!(err.to_string().contains(name), "{name}: {err}");
        println!("{name}: {err}");
    }
    assert_eq!(entries(root), before, "{name}: something was changed");
}

#[tokio::test]
async fn symlinks_and_directories_named_like_auth_files_are_refused_at_open() {
    let key = key_file_name(&KeyKind::LidMapping, &"a".into());
    let new_key = key_file_name(&KeyKind::Session, &"4915100000000.0".into());
    for name in [CREDS_FILE, key.as_str(), new_key.as_str(), REGISTRY_FILE] {
        for as_dir in [false, true] {
            let (tmp, dir) = folder().await;
            let path = dir.join(name);
            if as_dir {
                std::fs::remove_file(&path).ok();
                std::fs::create_dir(&path).unwrap();
                std::fs::write(path.join("inside"), b"x").unwrap();
            } else {
                // The link points at a real copy: following it would "work", and replacing it
                // would write through it or drop it.
                let elsewhere = tmp.path().join("elsewhere");
                std::fs::copy(dir.join(CREDS_FILE), &elsewhere).unwrap();
                std::fs::remove_file(&path).ok();
                symlink(&elsewhere, &path).unwrap();
            }
            refused_every_way(tmp.path(), &dir, name).await;
        }
    }
}

#[tokio::test]
async fn a_directory_appearing_at_a_key_name_fails_that_commit_before_it_happens() {
    let (_tmp, dir) = folder().await;
    let store = CompatStore::open(&dir).await.unwrap();
    let name = key_file_name(&KeyKind::LidMapping, &"c".into());
    std::fs::create_dir(dir.join(&name)).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(KeyKind::LidMapping, "c", lid("2"));
    batch.put(KeyKind::LidMapping, "a", lid("2"));
    let err = store.commit(batch.clone()).await.unwrap_err();
    assert!(err.to_string().contains(&name), "{err}");
    assert!(!matches!(err, AuthError::Unhealthy { .. }), "{err}");
    // Nothing of it was applied, and the store goes on once the directory is gone.
    assert_eq!(
        store
            .get_one(&KeyKind::LidMapping, &"a".into())
            .await
            .unwrap(),
        Some(lid("1"))
    );
    std::fs::remove_dir(dir.join(&name)).unwrap();
    store.commit(batch).await.unwrap();
    assert_eq!(
        store
            .get_one(&KeyKind::LidMapping, &"c".into())
            .await
            .unwrap(),
        Some(lid("2"))
    );
}

#[tokio::test]
async fn a_directory_holding_another_backends_store_is_refused() {
    // The native store's files (only their names matter).
    let native = ["snapshot", "log", "lock"];
    for present in [&native[..], &native[..1], &native[1..2]] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("native");
        std::fs::create_dir(&dir).unwrap();
        for name in present {
            std::fs::write(dir.join(name), b"WANAT").unwrap();
        }
        let before = entries(tmp.path());
        let mut errors = Vec::new();
        errors.push(CompatStore::open(&dir).await.unwrap_err());
        errors.push(CompatReader::open(&dir).await.unwrap_err());
        errors.push(use_multi_file_auth_state(&dir).await.unwrap_err());
        for err in errors {
            let text = err.to_string();
            for name in present {
                assert!(text.contains(name), "{present:?}: {text}");
            }
            assert!(text.contains("cargo xtask migrate"), "{text}");
            println!("{present:?}: {text}");
        }
        assert_eq!(entries(tmp.path()), before, "{present:?}: changed");
    }
}
