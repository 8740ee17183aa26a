//! Loading Baileys auth folders through the codecs (shared by the integration tests).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use wa_signal::record::PreKeyId;
use wa_signal::store::InMemoryStore;
use wa_signal::{SenderKeyName, SignalAddress};
use wa_store_compat::codec::{self, Flavour};

/// The flavour of a fixture version folder name (`v6.17.16` -> Baileys 6).
pub fn flavour_of(version: &str) -> Flavour {
    if version.starts_with("v6") {
        Flavour::Baileys6
    } else {
        Flavour::Baileys7
    }
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

/// The key files of an auth folder: `(kind, id, path)`, where the id undoes Baileys'
/// `fixFileName` (`/` -> `__`, `:` -> `-`) for sessions and sender keys.
pub fn key_files(auth: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(auth)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", auth.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        for kind in ["sender-key-memory", "sender-key", "session", "pre-key"] {
            if let Some(id) = stem.strip_prefix(&format!("{kind}-")) {
                let id = match kind {
                    "sender-key" => id.replace("--", "::"),
                    _ => id.to_owned(),
                };
                out.push((kind.to_owned(), id, path.clone()));
                break;
            }
        }
    }
    out
}

/// An account (or peer) loaded from its Baileys folder.
pub struct Loaded {
    pub store: InMemoryStore,
    pub sessions: usize,
    pub sender_keys: usize,
    pub pre_keys: usize,
}

/// Loads creds (identity, registration id, signed pre-key), sessions, pre-keys and sender
/// keys of an auth folder into an in-memory protocol store, through the codecs.
pub fn load_auth(auth: &Path) -> Loaded {
    let creds = read_json(&auth.join("creds.json"));
    let identity = codec::pre_key::key_pair_from_json(&creds["signedIdentityKey"])
        .unwrap_or_else(|e| panic!("{}: signedIdentityKey: {e}", auth.display()));
    let registration_id = creds["registrationId"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .expect("registrationId");
    let signed = codec::pre_key::signed_pre_key_from_json(&creds["signedPreKey"])
        .unwrap_or_else(|e| panic!("{}: signedPreKey: {e}", auth.display()));
    assert!(
        signed.verify(&identity.public),
        "{}: signed pre-key signature does not verify",
        auth.display()
    );
    let mut store = InMemoryStore::new(identity, registration_id);
    store.add_signed_pre_key(signed);
    let (mut sessions, mut sender_keys, mut pre_keys) = (0, 0, 0);
    for (kind, id, path) in key_files(auth) {
        let value = read_json(&path);
        match kind.as_str() {
            "session" => {
                let address = SignalAddress::parse(&id).expect("session id");
                let record = codec::session::from_json(&value)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                store.put_session(address, record);
                sessions += 1;
            }
            "sender-key" => {
                let name = SenderKeyName::parse(&id).expect("sender key id");
                let record = codec::sender_key::from_json(&value)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                store.put_sender_key(name, record);
                sender_keys += 1;
            }
            "pre-key" => {
                let id = PreKeyId(id.parse().expect("pre-key id"));
                let record = codec::pre_key::pre_key_from_json(id, &value)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                store.add_pre_key(record);
                pre_keys += 1;
            }
            _ => {}
        }
    }
    Loaded {
        store,
        sessions,
        sender_keys,
        pre_keys,
    }
}

/// Every `paired-with-sessions` scenario: `(name, version, dir)`. Panics when none is found.
pub fn session_scenarios() -> Vec<(String, String, PathBuf)> {
    let found: Vec<_> = wa_testkit::fixtures::baileys_versions()
        .into_iter()
        .map(|v| {
            let version = v.file_name().unwrap().to_string_lossy().into_owned();
            let dir = v.join("paired-with-sessions");
            (format!("{version}/paired-with-sessions"), version, dir)
        })
        .filter(|(_, _, dir)| dir.join("expected/vectors.json").is_file())
        .collect();
    assert!(!found.is_empty(), "no paired-with-sessions scenario found");
    found
}

/// Every auth folder of the fixtures: the scenarios' `auth/` and every peer's `auth/`.
pub fn all_auth_folders() -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    for (name, auth) in wa_testkit::fixtures::baileys_auth_folders() {
        let version = name.split('/').next().unwrap_or_default().to_owned();
        let scenario = auth.parent().expect("scenario dir").to_path_buf();
        out.push((name.clone(), version.clone(), auth));
        let peers = scenario.join("peers");
        if peers.is_dir() {
            for peer in wa_testkit::fixtures::sorted_dirs(&peers) {
                let auth = peer.join("auth");
                if auth.join("creds.json").is_file() {
                    let pname = peer.file_name().unwrap().to_string_lossy().into_owned();
                    out.push((format!("{name}/peers/{pname}"), version.clone(), auth));
                }
            }
        }
    }
    out
}

pub fn b64(text: &str) -> Vec<u8> {
    codec::buffer_json::decode_base64(text, "vector").expect("vector base64")
}

pub type Counts = BTreeMap<String, usize>;
