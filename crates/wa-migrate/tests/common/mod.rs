//! Helpers shared by the migration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use wa_auth::protocol::MessageKind;
use wa_auth::{AuthState, Persistence, PersistenceExt, Snapshot};
use wa_signal::{SenderKeyName, SignalAddress};

/// Every file under `dir` (recursively) with its bytes: what "unchanged" means.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(tree(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).expect("read"));
        }
    }
    out
}

/// Copies a folder (files and sub-folders).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let dest = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).expect("copy");
        }
    }
}

/// Everything in a native store directory.
pub async fn native_snapshot(dir: &Path) -> Snapshot {
    let store = wa_store_native::NativeReader::open(dir)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let snapshot = store.load_all().await.expect("load native");
    store.close().await.expect("close");
    snapshot
}

/// Everything in a Baileys folder (strict).
pub async fn compat_snapshot(dir: &Path) -> Snapshot {
    let store = wa_store_compat::CompatReader::open(dir)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let snapshot = store.load_all().await.expect("load compat");
    store.close().await.expect("close");
    snapshot
}

/// Asserts two snapshots are equal, naming the first difference.
pub fn assert_same(what: &str, expected: &Snapshot, got: &Snapshot) {
    assert!(expected.creds == got.creds, "{what}: creds differ");
    assert_eq!(expected.counts(), got.counts(), "{what}: key counts differ");
    for (kind, ids) in &expected.keys {
        for (id, value) in ids {
            assert!(
                got.keys.get(kind).and_then(|g| g.get(id)) == Some(value),
                "{what}: {kind} {id} differs or is missing"
            );
        }
    }
}

/// Asserts the native store at `native` holds exactly what the Baileys folder `baileys` holds.
pub async fn assert_holds(what: &str, native: &Path, baileys: &Path) {
    assert_same(
        what,
        &compat_snapshot(baileys).await,
        &native_snapshot(native).await,
    );
}

/// Migrates a Baileys folder into a new native store with the default options.
pub async fn migrate_ok(baileys: &Path, native: &Path) {
    wa_migrate::migrate_compat_json_to_native(
        baileys,
        native,
        &wa_migrate::MigrateOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{} -> {}: {e}", baileys.display(), native.display()));
}

fn b64(m: &Value, field: &str) -> Vec<u8> {
    wa_testkit::vectors::b64(&m[field])
}

/// Decrypts every future message of a scenario's `expected/vectors.json` through an auth
/// state over `store`; returns how many decrypted, or the failures.
pub async fn decrypt_vectors(
    scenario: &str,
    vectors: &Value,
    store: Arc<dyn Persistence>,
) -> Result<usize, Vec<String>> {
    let state = AuthState::load(store).await.expect("load auth state");
    let mut failures = Vec::new();
    let mut decrypted = 0;
    for m in vectors["messages"].as_array().into_iter().flatten() {
        let n = &m["n"];
        let kind = m["type"].as_str().unwrap_or_default();
        let outcome: Result<Vec<u8>, String> = match kind {
            "pkmsg" | "msg" => {
                let address = SignalAddress::parse(m["session_key_id"].as_str().expect("address"))
                    .expect("address");
                let kind = if kind == "pkmsg" {
                    MessageKind::PreKey
                } else {
                    MessageKind::Whisper
                };
                state
                    .decrypt_message(&address, kind, &b64(m, "ciphertext_b64"))
                    .await
                    .map(|r| r.plaintext)
                    .map_err(|e| e.to_string())
            }
            "skdm" => {
                let name =
                    SenderKeyName::parse(m["sender_key_id"].as_str().expect("name")).expect("name");
                match state
                    .process_sender_key_distribution(&name, &b64(m, "skdm_b64"))
                    .await
                {
                    Ok(()) => {
                        continue;
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            "skmsg" => {
                let name =
                    SenderKeyName::parse(m["sender_key_id"].as_str().expect("name")).expect("name");
                state
                    .decrypt_group_message(&name, &b64(m, "ciphertext_b64"))
                    .await
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("unknown vector type {other}")),
        };
        match outcome {
            Ok(plaintext) if plaintext == b64(m, "plaintext_b64") => decrypted += 1,
            Ok(_) => failures.push(format!("{scenario} #{n} ({kind}): plaintext differs")),
            Err(e) => failures.push(format!("{scenario} #{n} ({kind}): {e}")),
        }
    }
    if failures.is_empty() {
        Ok(decrypted)
    } else {
        Err(failures)
    }
}
