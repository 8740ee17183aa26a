//! `cargo xtask interop`: real Baileys reads what `wa-store-compat` writes.
//!
//! For every Baileys version found under `$WA_FIXTURES/baileys` (default `fixtures/baileys`)
//! with a `paired-with-sessions` scenario:
//!
//! 1. installs that Baileys from the npm registry into `.interop-cache/v<version>/` (outside
//!    git), with `overrides` pinning libsignal 6.0.0 and `npm install --ignore-scripts`, unless
//!    it is already there;
//! 2. copies the account's folder and the peers' folders to a temp dir; opens the account with
//!    `wa-store-compat` (the fixture's flavour), decrypts every future message of the vectors
//!    in order through `AuthState` transactions, encrypts a 1:1 reply to every peer with a
//!    session and a group message in every group where a peer holds the account's sender key,
//!    and closes the folder;
//! 3. runs `xtask/interop/check.mjs`, which loads the account folder with Baileys'
//!    `useMultiFileAuthState` and checks that Baileys reads every key, that each peer (loaded
//!    with Baileys from its own folder) decrypts the replies, and that Baileys, running the
//!    account from our folder, continues our sessions and sender keys.
//!
//! Options: `--keep` leaves the temp folders in place (their path is printed); `--offline`
//! fails instead of installing when a Baileys version is missing from the cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use wa_auth::{AuthError, AuthState, KeyKind, SystemProvider, Transaction};
use wa_signal::{SenderKeyName, SignalAddress, cipher, group};
use wa_store_compat::{CompatStoreOptions, Flavour, use_multi_file_auth_state_with};

/// The libsignal-node version every fixture was generated with.
const LIBSIGNAL: &str = "6.0.0";

pub(crate) fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("bad JSON in {}: {e}", path.display()))
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("mkdir {}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("copy {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

pub(crate) fn tool_version(tool: &str) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Installs `baileys@<version>` into `<cache>/v<version>` unless it is there; returns the
/// package's folder.
pub(crate) fn ensure_baileys(
    cache: &Path,
    version: &str,
    offline: bool,
) -> Result<PathBuf, String> {
    let dir = cache.join(format!("v{version}"));
    let package = dir.join("node_modules/baileys");
    let installed = |name: &str| -> Option<String> {
        let path = dir.join("node_modules").join(name).join("package.json");
        read_json(&path).ok()?["version"]
            .as_str()
            .map(str::to_owned)
    };
    if installed("baileys").as_deref() == Some(version)
        && installed("libsignal").as_deref() == Some(LIBSIGNAL)
    {
        println!("baileys {version}: already installed in {}", dir.display());
        return Ok(package);
    }
    if offline {
        return Err(format!(
            "baileys {version} is not installed in {} (run without --offline)",
            dir.display()
        ));
    }
    let manifest = json!({
        "name": format!("wa-interop-baileys-{version}"),
        "private": true,
        "dependencies": {"baileys": version},
        "overrides": {"libsignal": LIBSIGNAL, "@whiskeysockets/eslint-config": "1.0.0"}
    });
    npm_install(&dir, &manifest, &format!("baileys {version}"))?;
    match (installed("baileys"), installed("libsignal")) {
        (Some(b), Some(l)) if b == version && l == LIBSIGNAL => Ok(package),
        other => Err(format!(
            "after npm install, found baileys/libsignal versions {other:?}, expected {version}/{LIBSIGNAL}"
        )),
    }
}

/// Writes `manifest` as `dir`'s package.json and runs `npm install` there (scripts off);
/// `what` names the install in messages.
pub(crate) fn npm_install(dir: &Path, manifest: &Value, what: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    std::fs::write(dir.join("package.json"), manifest.to_string())
        .map_err(|e| format!("write package.json: {e}"))?;
    println!("{what}: npm install into {} ...", dir.display());
    let out = Command::new("npm")
        .args(["install", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm install of {what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn text<'a>(m: &'a Value, key: &str) -> Result<&'a str, String> {
    m[key]
        .as_str()
        .ok_or_else(|| format!("vector field {key} missing in {m}"))
}

fn b64(text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .map_err(|e| format!("bad base64 in the vectors: {e}"))
}

/// Decrypts every vector of `vectors` in order through `state`, one transaction each.
async fn decrypt_vectors(state: &AuthState, vectors: &Value) -> Result<usize, String> {
    let messages = vectors["messages"]
        .as_array()
        .ok_or("no messages in the vectors")?;
    for m in messages {
        let n = &m["n"];
        let kind = text(m, "type")?;
        let plaintext = match kind {
            "pkmsg" | "msg" => {
                let address =
                    SignalAddress::parse(text(m, "session_key_id")?).map_err(|e| e.to_string())?;
                let bytes = b64(text(m, "ciphertext_b64")?)?;
                let lock = state
                    .lock_key_for(&address)
                    .await
                    .map_err(|e| e.to_string())?;
                let decrypted = state
                    .transaction(lock, async |tx: &mut Transaction<'_>| {
                        let provider = &mut SystemProvider::new();
                        let d = if kind == "pkmsg" {
                            cipher::decrypt_pre_key_message(tx, provider, &address, &bytes).await?
                        } else {
                            cipher::decrypt_message(tx, provider, &address, &bytes).await?
                        };
                        if let Some(id) = d.consumed_pre_key {
                            tx.delete(KeyKind::PreKey, id.0.to_string());
                        }
                        Ok::<_, AuthError>(d)
                    })
                    .await
                    .map_err(|e| format!("vector #{n} ({kind} from {address}): {e}"))?;
                Some(decrypted.plaintext)
            }
            "skdm" => {
                let name =
                    SenderKeyName::parse(text(m, "sender_key_id")?).ok_or("bad sender key id")?;
                let bytes = b64(text(m, "skdm_b64")?)?;
                state
                    .transaction(
                        name.group_id().to_owned(),
                        async |tx: &mut Transaction<'_>| {
                            group::process_distribution_bytes(tx, &name, &bytes).await?;
                            Ok::<_, AuthError>(())
                        },
                    )
                    .await
                    .map_err(|e| format!("vector #{n} (skdm {name}): {e}"))?;
                None
            }
            "skmsg" => {
                let name =
                    SenderKeyName::parse(text(m, "sender_key_id")?).ok_or("bad sender key id")?;
                let bytes = b64(text(m, "ciphertext_b64")?)?;
                let pt = state
                    .transaction(
                        name.group_id().to_owned(),
                        async |tx: &mut Transaction<'_>| {
                            Ok::<_, AuthError>(group::decrypt(tx, &name, &bytes).await?)
                        },
                    )
                    .await
                    .map_err(|e| format!("vector #{n} (skmsg {name}): {e}"))?;
                Some(pt)
            }
            other => return Err(format!("vector #{n}: unknown type {other}")),
        };
        if let Some(pt) = plaintext
            && pt != b64(text(m, "plaintext_b64")?)?
        {
            return Err(format!("vector #{n} ({kind}): plaintext differs"));
        }
    }
    Ok(messages.len())
}

/// The account's session id for a peer: named by the vectors, else the peer's LID or PN
/// address, whichever session exists.
async fn session_for(state: &AuthState, peer: &Value, vectors: &Value) -> Option<SignalAddress> {
    let jid = peer["jid"].as_str()?;
    let named = vectors["messages"].as_array()?.iter().find_map(|m| {
        (m["jid"].as_str() == Some(jid))
            .then(|| m["session_key_id"].as_str())
            .flatten()
    });
    if let Some(id) = named {
        return SignalAddress::parse(id).ok();
    }
    let address = |jid: &str| -> Option<String> {
        let (user_device, server) = jid.split_once('@')?;
        let (user, device) = user_device.split_once(':').unwrap_or((user_device, "0"));
        Some(match server {
            "lid" => format!("{user}_1.{device}"),
            _ => format!("{user}.{device}"),
        })
    };
    for id in [peer["lid"].as_str(), Some(jid)]
        .into_iter()
        .flatten()
        .filter_map(address)
    {
        let exists = state
            .get_one(&KeyKind::Session, &id.as_str().into())
            .await
            .ok()
            .flatten()
            .is_some();
        if exists {
            return SignalAddress::parse(&id).ok();
        }
    }
    None
}

/// Runs the Rust side for one version; returns the check script's config.
async fn rust_side(
    version: &str,
    scenario: &Path,
    work: &Path,
    baileys: &Path,
) -> Result<Value, String> {
    let vectors = read_json(&scenario.join("expected/vectors.json"))?;
    let index = read_json(&scenario.join("peers/index.json"))?;
    let auth = work.join("auth");
    copy_dir(&scenario.join("auth"), &auth)?;
    copy_dir(&scenario.join("peers"), &work.join("peers"))?;
    let flavour = if version.starts_with('6') {
        Flavour::Baileys6
    } else {
        Flavour::Baileys7
    };
    let state =
        use_multi_file_auth_state_with(&auth, CompatStoreOptions::default().flavour(flavour))
            .await
            .map_err(|e| format!("open {}: {e}", auth.display()))?;
    let decrypted = decrypt_vectors(&state, &vectors).await?;
    println!("baileys {version}: Rust decrypted {decrypted} vectors through the compat store");

    let mut replies = Vec::new();
    let mut groups: Vec<(String, Value)> = Vec::new();
    let peers = index["peers"]
        .as_object()
        .ok_or("no peers in peers/index.json")?;
    for (name, peer) in peers {
        let peer_auth = work.join(peer["auth_dir"].as_str().ok_or("peer without auth_dir")?);
        if let Some(account_jid) = peer["account_jid"].as_str() {
            let to = session_for(&state, peer, &vectors)
                .await
                .ok_or_else(|| format!("no session with peer {name}"))?;
            let plaintext = format!("reply from wa-store-compat to {name}").into_bytes();
            let lock = state.lock_key_for(&to).await.map_err(|e| e.to_string())?;
            let sent = state
                .transaction(lock, async |tx: &mut Transaction<'_>| {
                    let provider = &mut SystemProvider::new();
                    Ok::<_, AuthError>(cipher::encrypt(tx, provider, &to, &plaintext).await?)
                })
                .await
                .map_err(|e| format!("encrypt to {name}: {e}"))?;
            let to_jid = to.to_jid().map_err(|e| e.to_string())?.to_string();
            replies.push(json!({
                "peer": name,
                "peer_auth": peer_auth,
                "account_jid": account_jid,
                "to_jid": to_jid,
                "type": sent.wa_type(),
                "ciphertext_b64": STANDARD.encode(sent.serialized()),
                "plaintext_b64": STANDARD.encode(&plaintext),
            }));
        }
        for (group_id, g) in peer["groups"].as_object().into_iter().flatten() {
            if g["has_account_sender_key"].as_bool() != Some(true) {
                continue;
            }
            let entry = match groups.iter_mut().find(|(id, _)| id == group_id) {
                Some((_, entry)) => entry,
                None => {
                    let key_id = g["account_sender_key_id"]
                        .as_str()
                        .ok_or("no sender key id")?;
                    let key = SenderKeyName::parse(key_id).ok_or("bad sender key id")?;
                    let plaintext = format!("group message from wa-store-compat in {group_id}");
                    let sent = state
                        .transaction(group_id.clone(), async |tx: &mut Transaction<'_>| {
                            let provider = &mut SystemProvider::new();
                            Ok::<_, AuthError>(
                                group::encrypt(tx, provider, &key, plaintext.as_bytes()).await?,
                            )
                        })
                        .await
                        .map_err(|e| format!("group encrypt in {group_id}: {e}"))?;
                    groups.push((
                        group_id.clone(),
                        json!({
                            "group": group_id,
                            "author_jid": g["account_author_jid"],
                            "ciphertext_b64": STANDARD.encode(sent.serialized()),
                            "plaintext_b64": STANDARD.encode(plaintext.as_bytes()),
                            "peers": [],
                        }),
                    ));
                    &mut groups.last_mut().ok_or("unreachable")?.1
                }
            };
            if let Some(list) = entry["peers"].as_array_mut() {
                list.push(json!({"peer": name, "peer_auth": peer_auth}));
            }
        }
    }
    let creds = state.creds();
    drop(state); // closes the folder
    println!(
        "baileys {version}: Rust encrypted {} replies and {} group messages and saved the folder",
        replies.len(),
        groups.len()
    );
    Ok(json!({
        "version": version,
        "baileys_dir": baileys,
        "auth": auth,
        "expected": {
            "registration_id": creds.registration_id,
            "me": creds.me.as_ref().map(|m| m.id.clone()),
        },
        "replies": replies,
        "group_replies": groups.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    }))
}

/// Entry point: `cargo xtask interop [--keep] [--offline]`.
pub fn main(args: &[String]) -> Result<(), String> {
    let keep = args.iter().any(|a| a == "--keep");
    let offline = args.iter().any(|a| a == "--offline");
    if let Some(other) = args.iter().find(|a| *a != "--keep" && *a != "--offline") {
        return Err(format!(
            "unknown argument {other:?} (accepted: --keep, --offline)"
        ));
    }
    let (Some(node), Some(npm)) = (tool_version("node"), tool_version("npm")) else {
        return Err("node and npm are needed (install Node.js 20 or later)".into());
    };
    println!("node {node}, npm {npm}");
    let root = wa_testkit::fixtures::workspace_root();
    let baileys_fixtures = wa_testkit::fixtures::fixtures_dir().join("baileys");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(&baileys_fixtures)
        .map_err(|e| format!("cannot read {}: {e}", baileys_fixtures.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("paired-with-sessions/peers/index.json").is_file())
        .collect();
    versions.sort();
    if versions.is_empty() {
        return Err(format!(
            "no Baileys version with paired-with-sessions/peers under {}",
            baileys_fixtures.display()
        ));
    }
    let cache = root.join(".interop-cache");
    let script = root.join("xtask/interop/check.mjs");
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let mut failed = Vec::new();
    for dir in &versions {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let version = name.trim_start_matches('v').to_owned();
        println!("\n== Baileys {version}");
        let baileys = ensure_baileys(&cache, &version, offline)?;
        let work = tempfile::Builder::new()
            .prefix(&format!("wa-interop-{version}-"))
            .tempdir()
            .map_err(|e| e.to_string())?;
        let config = match runtime.block_on(rust_side(
            &version,
            &dir.join("paired-with-sessions"),
            work.path(),
            &baileys,
        )) {
            Ok(config) => config,
            Err(e) => {
                failed.push(format!("Baileys {version}: Rust side: {e}"));
                continue;
            }
        };
        let config_path = work.path().join("interop.json");
        std::fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
        let status = Command::new("node")
            .arg(&script)
            .arg(&config_path)
            .status()
            .map_err(|e| format!("cannot run node: {e}"))?;
        if !status.success() {
            failed.push(format!(
                "Baileys {version}: check.mjs failed ({status}); see above"
            ));
        }
        if keep {
            let kept = work.keep();
            println!("kept {}", kept.display());
        }
    }
    if failed.is_empty() {
        println!(
            "\ninterop: real Baileys read everything wa-store-compat wrote ({} versions)",
            versions.len()
        );
        Ok(())
    } else {
        Err(format!("interop failed:\n  {}", failed.join("\n  ")))
    }
}
