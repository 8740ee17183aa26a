//! Real interop with Baileys/libsignal-node, through this store: for every
//! `paired-with-sessions` scenario found in the fixtures, open a copy of the account's Baileys
//! folder with [`use_multi_file_auth_state`] and decrypt every vector in order (1:1 `pkmsg` and
//! `msg`, group `skdm` + `skmsg`, including those Baileys itself cannot decrypt) inside
//! `AuthState` transactions, each committed to the folder as one batch (a consumed one-time
//! pre-key is deleted in the same commit as the session it created). Then restart (reopen
//! the folder), encrypt replies (1:1 and group) and check that each peer, opened from its own
//! saved Baileys folder the same way, decrypts them, and that we decrypt each peer's answer.
//!
//! The two last tests check protocol facts at the codec level (an in-memory store loaded
//! through the codecs).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{b64, flavour_of, load_auth, read_json, session_scenarios, temp_copy};
use futures::executor::block_on;
use serde_json::Value;
use wa_auth::{
    AuthError, AuthState, KeyKind, Persistence, PersistenceExt, SystemProvider, Transaction,
};
use wa_signal::record::PreKeyId;
use wa_signal::session::{PreKeyBundle, process_bundle};
use wa_signal::store::InMemoryStore;
use wa_signal::{SenderKeyName, SignalAddress, cipher, group};
use wa_store_compat::codec::{self, Flavour};
use wa_store_compat::{CompatStoreOptions, use_multi_file_auth_state_with};

/// Writes a session record to Baileys JSON and reads it back, as a Baileys restart would.
fn persist_session(store: &mut InMemoryStore, address: &SignalAddress) {
    let record = store
        .session(address)
        .expect("session after decrypt")
        .clone();
    let json = codec::session::to_json(&record).expect("session to v1 JSON");
    let back = codec::session::from_json(&json).expect("session from v1 JSON");
    assert_eq!(back, record);
    store.put_session(address.clone(), back);
}

fn text(m: &Value, key: &str) -> String {
    m[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key} missing"))
        .to_owned()
}

async fn open(auth: &Path, flavour: Flavour) -> AuthState {
    use_multi_file_auth_state_with(auth, CompatStoreOptions::default().flavour(flavour))
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", auth.display()))
}

/// Decrypts one 1:1 message in a transaction; deletes a consumed pre-key in the same commit.
async fn decrypt_1to1(
    state: &AuthState,
    address: &SignalAddress,
    bytes: &[u8],
    pre_key_message: bool,
) -> Result<cipher::Decrypted, AuthError> {
    let lock = state.lock_key_for(address).await?;
    state
        .transaction(lock, async |tx: &mut Transaction<'_>| {
            let decrypted = if pre_key_message {
                cipher::decrypt_pre_key_message(tx, &mut SystemProvider::new(), address, bytes)
                    .await?
            } else {
                cipher::decrypt_message(tx, &mut SystemProvider::new(), address, bytes).await?
            };
            if let Some(id) = decrypted.consumed_pre_key {
                tx.delete(KeyKind::PreKey, id.0.to_string());
            }
            Ok::<_, AuthError>(decrypted)
        })
        .await
}

/// Decrypts every vector through the auth state; returns a line per message and the failures.
async fn decrypt_vectors(
    scenario: &str,
    vectors: &Value,
    state: &AuthState,
    auth: &Path,
) -> (Vec<String>, Vec<String>) {
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut consumed = BTreeSet::new();
    let messages = vectors["messages"].as_array().expect("messages");
    assert!(!messages.is_empty(), "{scenario}: no vectors");
    for m in messages {
        let n = m["n"].as_u64().expect("n");
        let kind = text(m, "type");
        let workaround = m
            .get("requires_workaround")
            .and_then(Value::as_str)
            .map(|w| format!(" [requires_workaround: {w}]"))
            .unwrap_or_default();
        let outcome: Result<String, String> = match kind.as_str() {
            "pkmsg" | "msg" => {
                let address = SignalAddress::parse(&text(m, "session_key_id")).expect("address");
                let bytes = b64(&text(m, "ciphertext_b64"));
                match decrypt_1to1(state, &address, &bytes, kind == "pkmsg").await {
                    Ok(d) if d.plaintext == b64(&text(m, "plaintext_b64")) => {
                        let mut note = String::new();
                        if let Some(id) = d.consumed_pre_key {
                            consumed.insert(id.0);
                            note =
                                format!(", consumed pre-key {} deleted in the same commit", id.0);
                        }
                        let expected = m["pre_key_id"]
                            .as_u64()
                            .and_then(|id| u32::try_from(id).ok());
                        let session_file = auth.join(format!("session-{address}.json"));
                        if let Some(id) = expected.filter(|id| !consumed.contains(id)) {
                            Err(format!(
                                "one-time pre-key {id} was not reported as consumed"
                            ))
                        } else if let Some(id) =
                            expected.filter(|id| auth.join(format!("pre-key-{id}.json")).exists())
                        {
                            Err(format!("consumed pre-key {id} is still in the folder"))
                        } else if !session_file.is_file() {
                            Err(format!("{} was not written", session_file.display()))
                        } else {
                            Ok(format!("{kind} from {address} decrypted{note}"))
                        }
                    }
                    Ok(_) => Err("plaintext differs".into()),
                    Err(e) => Err(format!("{e}")),
                }
            }
            "skdm" => {
                let name = SenderKeyName::parse(&text(m, "sender_key_id")).expect("name");
                let bytes = b64(&text(m, "skdm_b64"));
                let result = state
                    .transaction(
                        name.group_id().to_owned(),
                        async |tx: &mut Transaction<'_>| {
                            group::process_distribution_bytes(tx, &name, &bytes).await?;
                            Ok::<_, AuthError>(())
                        },
                    )
                    .await;
                match result {
                    Ok(()) => Ok(format!("skdm for {name} processed")),
                    Err(e) => Err(format!("{e}")),
                }
            }
            "skmsg" => {
                let name = SenderKeyName::parse(&text(m, "sender_key_id")).expect("name");
                let bytes = b64(&text(m, "ciphertext_b64"));
                let result = state
                    .transaction(
                        name.group_id().to_owned(),
                        async |tx: &mut Transaction<'_>| {
                            Ok::<_, AuthError>(group::decrypt(tx, &name, &bytes).await?)
                        },
                    )
                    .await;
                match result {
                    Ok(pt) if pt == b64(&text(m, "plaintext_b64")) => {
                        Ok(format!("skmsg from {name} decrypted"))
                    }
                    Ok(_) => Err("plaintext differs".into()),
                    Err(e) => Err(format!("{e}")),
                }
            }
            other => Err(format!("unknown vector type {other}")),
        };
        match outcome {
            Ok(line) => report.push(format!("{scenario} #{n}: ok, {line}{workaround}")),
            Err(e) => {
                let line = format!("{scenario} #{n} ({kind}): FAILED: {e}{workaround}");
                report.push(line.clone());
                failures.push(line);
            }
        }
    }
    (report, failures)
}

/// The account's session id for a peer: from the vectors (they name the session key id per
/// jid), else derived from the peer's LID or PN jid, whichever session exists.
async fn account_session_for(peer: &Value, vectors: &Value, state: &AuthState) -> Option<String> {
    let jid = peer["jid"].as_str()?;
    if let Some(m) = vectors["messages"]
        .as_array()?
        .iter()
        .find(|m| m["jid"].as_str() == Some(jid) && m.get("session_key_id").is_some())
    {
        return m["session_key_id"].as_str().map(str::to_owned);
    }
    let to_address = |jid: &str| -> Option<String> {
        let (user_device, server) = jid.split_once('@')?;
        let (user, device) = user_device.split_once(':').unwrap_or((user_device, "0"));
        Some(if server == "lid" {
            format!("{user}_1.{device}")
        } else {
            format!("{user}.{device}")
        })
    };
    for id in [peer["lid"].as_str(), Some(jid)]
        .into_iter()
        .flatten()
        .filter_map(to_address)
    {
        if state
            .get_one(&KeyKind::Session, &id.as_str().into())
            .await
            .ok()
            .flatten()
            .is_some()
        {
            return Some(id);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decrypts_every_vector_through_auth_state_and_peers_decrypt_our_replies() {
    let mut all_failures = Vec::new();
    let mut decrypted = 0usize;
    let mut replies = 0usize;
    for (scenario, version, dir) in session_scenarios() {
        let flavour = flavour_of(&version);
        let vectors = read_json(&dir.join("expected/vectors.json"));
        let (_tmp, auth) = temp_copy(&dir.join("auth"));
        let state = open(&auth, flavour).await;
        let (report, failures) = decrypt_vectors(&scenario, &vectors, &state, &auth).await;
        for line in &report {
            println!("{line}");
        }
        decrypted += report.len() - failures.len();
        all_failures.extend(failures);

        // Restart: everything from here on is read back from the folder.
        drop(state);
        let state = open(&auth, flavour).await;

        // Replies: 1:1 to every peer with a session, group to every peer holding our sender key.
        let peers = read_json(&dir.join("peers/index.json"));
        let peers = peers["peers"].as_object().expect("peers");
        assert!(!peers.is_empty());
        let mut group_messages: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut peer_dirs = Vec::new();
        for (peer_name, peer) in peers {
            let (peer_tmp, peer_auth) =
                temp_copy(&dir.join(peer["auth_dir"].as_str().expect("auth_dir")));
            peer_dirs.push(peer_tmp);
            let peer_state = open(&peer_auth, flavour).await;
            if let Some(account_address) = peer["account_signal_address"].as_str() {
                let Some(session_id) = account_session_for(peer, &vectors, &state).await else {
                    all_failures.push(format!("{scenario} peer {peer_name}: no session found"));
                    continue;
                };
                let to_peer = SignalAddress::parse(&session_id).expect("session id");
                let from_account = SignalAddress::parse(account_address).expect("address");
                let plaintext = format!("reply from the account to {peer_name}").into_bytes();
                let lock = state.lock_key_for(&to_peer).await.expect("lock key");
                let sent = state
                    .transaction(lock.clone(), async |tx: &mut Transaction<'_>| {
                        Ok::<_, AuthError>(
                            cipher::encrypt(tx, &mut SystemProvider::new(), &to_peer, &plaintext)
                                .await?,
                        )
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{scenario}: encrypt to {to_peer}: {e}"));
                let line = format!(
                    "{scenario} reply to {peer_name} ({to_peer}, {})",
                    sent.wa_type()
                );
                let got = peer_state
                    .transaction(
                        from_account.to_string(),
                        async |tx: &mut Transaction<'_>| {
                            Ok::<_, AuthError>(
                                cipher::decrypt(
                                    tx,
                                    &mut SystemProvider::new(),
                                    &from_account,
                                    &sent,
                                )
                                .await?,
                            )
                        },
                    )
                    .await;
                match got {
                    Ok(d) if d.plaintext == plaintext => {
                        println!("{line}: peer decrypted it");
                        replies += 1;
                    }
                    Ok(_) => all_failures.push(format!("{line}: plaintext differs")),
                    Err(e) => all_failures.push(format!("{line}: peer failed: {e}")),
                }
                // The peer answers on the same session; we decrypt it.
                let answer = b"answer from the peer".to_vec();
                let msg = peer_state
                    .transaction(
                        from_account.to_string(),
                        async |tx: &mut Transaction<'_>| {
                            Ok::<_, AuthError>(
                                cipher::encrypt(
                                    tx,
                                    &mut SystemProvider::new(),
                                    &from_account,
                                    &answer,
                                )
                                .await?,
                            )
                        },
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{scenario}: {peer_name} encrypts: {e}"));
                let got = state
                    .transaction(lock, async |tx: &mut Transaction<'_>| {
                        Ok::<_, AuthError>(
                            cipher::decrypt(tx, &mut SystemProvider::new(), &to_peer, &msg).await?,
                        )
                    })
                    .await;
                match got {
                    Ok(d) if d.plaintext == answer => {
                        println!(
                            "{scenario} answer from {peer_name} ({}): decrypted",
                            msg.wa_type()
                        );
                    }
                    other => all_failures.push(format!(
                        "{scenario} answer from {peer_name}: {:?}",
                        other.err()
                    )),
                }
            }

            // Group messages from the account, one per group, checked by every peer with our key.
            for (group_id, g) in peer["groups"].as_object().into_iter().flatten() {
                if g["has_account_sender_key"].as_bool() != Some(true) {
                    continue;
                }
                let key_id = g["account_sender_key_id"].as_str().expect("sender key id");
                let name = SenderKeyName::parse(key_id).expect("sender key name");
                let message = match group_messages.iter().find(|(k, _, _)| k == key_id) {
                    Some((_, pt, ct)) => (pt.clone(), ct.clone()),
                    None => {
                        let pt = format!("group reply from the account in {group_id}").into_bytes();
                        let ct = state
                            .transaction(group_id.clone(), async |tx: &mut Transaction<'_>| {
                                Ok::<_, AuthError>(
                                    group::encrypt(tx, &mut SystemProvider::new(), &name, &pt)
                                        .await?,
                                )
                            })
                            .await
                            .unwrap_or_else(|e| panic!("{scenario}: group encrypt {name}: {e}"));
                        let ct = ct.serialized().to_vec();
                        group_messages.push((key_id.to_owned(), pt.clone(), ct.clone()));
                        (pt, ct)
                    }
                };
                let line = format!("{scenario} group message in {group_id} to {peer_name}");
                let got = peer_state
                    .transaction(group_id.clone(), async |tx: &mut Transaction<'_>| {
                        Ok::<_, AuthError>(group::decrypt(tx, &name, &message.1).await?)
                    })
                    .await;
                match got {
                    Ok(pt) if pt == message.0 => {
                        println!("{line}: peer decrypted it");
                        replies += 1;
                    }
                    Ok(_) => all_failures.push(format!("{line}: plaintext differs")),
                    Err(e) => all_failures.push(format!("{line}: peer failed: {e}")),
                }
            }
        }
        // Everything the account's folder now holds reads back strictly, nothing unrecognised.
        let store = state.store().clone();
        let all = store
            .load_all()
            .await
            .expect("strict load of the folder we wrote");
        assert!(all.creds.is_some());
        drop(store);
        drop(state);
        let reopened = wa_store_compat::CompatStore::open(&auth)
            .await
            .expect("reopen");
        let report = reopened.scan().await.expect("scan");
        assert!(report.is_clean(), "{scenario}: {report}");
        assert_eq!(reopened.flavour(), flavour, "{scenario}");
        assert_eq!(reopened.capabilities().backend, "compat");
    }
    println!("{decrypted} vectors decrypted, {replies} replies decrypted by peers");
    assert!(
        all_failures.is_empty(),
        "interop failures:\n{}",
        all_failures.join("\n")
    );
    assert!(decrypted > 0 && replies > 0);
}

#[test]
fn a_pre_key_message_names_its_pre_key_and_never_deletes_it() {
    for (scenario, _, dir) in session_scenarios() {
        let vectors = read_json(&dir.join("expected/vectors.json"));
        let mut account = load_auth(&dir.join("auth"));
        let m = vectors["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "pkmsg" && m.get("pre_key_id").is_some())
            .unwrap_or_else(|| panic!("{scenario}: no pkmsg with a one-time pre-key"));
        let id = PreKeyId(m["pre_key_id"].as_u64().unwrap() as u32);
        let address = SignalAddress::parse(m["session_key_id"].as_str().unwrap()).unwrap();
        let bytes = b64(m["ciphertext_b64"].as_str().unwrap());
        let d = block_on(cipher::decrypt_pre_key_message(
            &mut account.store,
            &mut SystemProvider::new(),
            &address,
            &bytes,
        ))
        .unwrap();
        assert_eq!(d.consumed_pre_key, Some(id));
        assert!(
            account.store.has_pre_key(id),
            "{scenario}: protocol deleted the pre-key"
        );
        // The same message again reuses the session by base key: a duplicate, no new consumption.
        let again = block_on(cipher::decrypt_pre_key_message(
            &mut account.store,
            &mut SystemProvider::new(),
            &address,
            &bytes,
        ));
        assert!(
            matches!(again, Err(wa_signal::SignalError::DuplicateMessage { .. })),
            "{scenario}: {again:?}"
        );
        // Without the pre-key (deleted by the caller), a fresh store cannot run X3DH again.
        let mut fresh = load_auth(&dir.join("auth"));
        fresh.store.remove_pre_key(id);
        let missing = block_on(cipher::decrypt_pre_key_message(
            &mut fresh.store,
            &mut SystemProvider::new(),
            &address,
            &bytes,
        ));
        assert!(
            matches!(missing, Err(wa_signal::SignalError::InvalidPreKeyId(n)) if n == id.0),
            "{scenario}: {missing:?}"
        );
    }
}

#[test]
fn a_session_we_start_from_a_peer_bundle_is_accepted_by_the_peer_state() {
    for (scenario, _, dir) in session_scenarios() {
        let vectors = read_json(&dir.join("expected/vectors.json"));
        let mut account = load_auth(&dir.join("auth"));
        let index = read_json(&dir.join("peers/index.json"));
        // A peer with no session with the account (a group-only sender): start one.
        let (peer_name, peer) = index["peers"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, p)| p["has_session_with_account"] == false)
            .unwrap_or_else(|| panic!("{scenario}: no peer without a session"));
        let auth = dir.join(peer["auth_dir"].as_str().unwrap());
        let mut peer_state = load_auth(&auth);
        let creds = read_json(&auth.join("creds.json"));
        let identity = codec::pre_key::key_pair_from_json(&creds["signedIdentityKey"]).unwrap();
        let signed = codec::pre_key::signed_pre_key_from_json(&creds["signedPreKey"]).unwrap();
        let (_, pre_key_file, pre_key_path) = common::key_files(&auth)
            .into_iter()
            .find(|(kind, _, _)| kind == "pre-key")
            .expect("peer pre-key");
        let pre_key = codec::pre_key::pre_key_from_json(
            PreKeyId(pre_key_file.parse().unwrap()),
            &read_json(&pre_key_path),
        )
        .unwrap();
        let bundle = PreKeyBundle {
            registration_id: peer_state.store.registration_id(),
            device_id: 0,
            pre_key: Some((pre_key.id, pre_key.key_pair.public)),
            signed_pre_key_id: signed.id,
            signed_pre_key: signed.key_pair.public,
            signed_pre_key_signature: signed.signature,
            identity_key: identity.public,
        };
        let to_peer = SignalAddress::new(format!("{peer_name}-test"), 0).unwrap();
        let from_account = SignalAddress::parse(
            vectors["account"]["me"]["id"]
                .as_str()
                .map(|jid| jid.split('@').next().unwrap().replace(':', "."))
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        block_on(process_bundle(
            &mut account.store,
            &mut SystemProvider::new(),
            &to_peer,
            &bundle,
        ))
        .unwrap();
        persist_session(&mut account.store, &to_peer);
        for i in 0..3 {
            let plaintext = format!("new session message {i}").into_bytes();
            let sent = block_on(cipher::encrypt(
                &mut account.store,
                &mut SystemProvider::new(),
                &to_peer,
                &plaintext,
            ))
            .unwrap();
            assert_eq!(sent.wa_type(), "pkmsg");
            persist_session(&mut account.store, &to_peer);
            let got = block_on(cipher::decrypt(
                &mut peer_state.store,
                &mut SystemProvider::new(),
                &from_account,
                &sent,
            ))
            .unwrap_or_else(|e| panic!("{scenario}: {peer_name} failed on pkmsg {i}: {e}"));
            assert_eq!(got.plaintext, plaintext);
            assert_eq!(got.consumed_pre_key, (i == 0).then_some(pre_key.id));
        }
        let answer = block_on(cipher::encrypt(
            &mut peer_state.store,
            &mut SystemProvider::new(),
            &from_account,
            b"ok",
        ))
        .unwrap();
        assert_eq!(answer.wa_type(), "msg");
        let got = block_on(cipher::decrypt(
            &mut account.store,
            &mut SystemProvider::new(),
            &to_peer,
            &answer,
        ))
        .unwrap();
        assert_eq!(got.plaintext, b"ok");
        persist_session(&mut account.store, &to_peer);
        let next = block_on(cipher::encrypt(
            &mut account.store,
            &mut SystemProvider::new(),
            &to_peer,
            b"after",
        ))
        .unwrap();
        assert_eq!(
            next.wa_type(),
            "msg",
            "{scenario}: pending pre-key not cleared by the reply"
        );
        println!(
            "{scenario}: new session with {peer_name} from its bundle: pkmsg x3, answer, msg ok"
        );
    }
}
