//! Real interop with Baileys/libsignal-node: for every `paired-with-sessions` scenario, load
//! the account's Baileys folder through the codecs, decrypt every vector in order (1:1 `pkmsg`
//! and `msg`, group `skdm` + `skmsg`, including those Baileys itself cannot decrypt), writing
//! every touched record back through the Baileys JSON form after each message (as Baileys
//! persists it). Then encrypt replies (1:1 and group) and check that each peer, loaded from its
//! own saved Baileys state, decrypts them; and that our state decrypts each peer's answer.

mod common;

use std::collections::BTreeSet;

use common::{b64, flavour_of, load_auth, read_json, session_scenarios};
use futures::executor::block_on;
use serde_json::Value;
use wa_signal::record::PreKeyId;
use wa_signal::session::{PreKeyBundle, process_bundle};
use wa_signal::store::InMemoryStore;
use wa_signal::{SenderKeyName, SignalAddress, cipher, group};
use wa_store_compat::codec::{self, Flavour};

/// Writes a session record to Baileys JSON and reads it back, as a Baileys restart would.
fn persist_session(store: &mut InMemoryStore, address: &SignalAddress) {
    let record = store
        .session(address)
        .expect("session after decrypt")
        .clone();
    let json = codec::session::to_json(&record).expect("session to v1 JSON");
    let back = codec::session::from_json(&json).expect("session from v1 JSON");
    assert_eq!(back.encode(), {
        // v1 JSON does not carry our identity; compare what it does carry.
        let mut stripped = record.clone();
        for s in stripped.previous_mut().iter_mut() {
            s.local_identity = None;
            s.local_registration_id = None;
        }
        if let Some(s) = stripped.current_mut() {
            s.local_identity = None;
            s.local_registration_id = None;
        }
        stripped.encode()
    });
    store.put_session(address.clone(), back);
}

fn persist_sender_key(store: &mut InMemoryStore, name: &SenderKeyName, flavour: Flavour) {
    let record = store.sender_key(name).expect("sender key").clone();
    let json = codec::sender_key::to_json(&record, flavour).expect("sender key to JSON");
    let back = codec::sender_key::from_json(&json).expect("sender key from JSON");
    assert_eq!(back, record);
    store.put_sender_key(name.clone(), back);
}

fn text(m: &Value, key: &str) -> String {
    m[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key} missing"))
        .to_owned()
}

/// Decrypts every vector; returns a line per message and the failures.
fn decrypt_vectors(
    scenario: &str,
    flavour: Flavour,
    vectors: &Value,
    store: &mut InMemoryStore,
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
                let result = block_on(async {
                    if kind == "pkmsg" {
                        cipher::decrypt_pre_key_message(store, &address, &bytes).await
                    } else {
                        cipher::decrypt_message(store, &address, &bytes).await
                    }
                });
                match result {
                    Ok(d) if d.plaintext == b64(&text(m, "plaintext_b64")) => {
                        let mut note = String::new();
                        if let Some(id) = d.consumed_pre_key {
                            // The caller deletes the consumed pre-key in the same transaction.
                            assert!(store.remove_pre_key(id).is_some());
                            consumed.insert(id.0);
                            note = format!(", consumed pre-key {}", id.0);
                        }
                        let expected = m["pre_key_id"]
                            .as_u64()
                            .and_then(|id| u32::try_from(id).ok());
                        if let Some(id) = expected.filter(|id| !consumed.contains(id)) {
                            Err(format!(
                                "one-time pre-key {id} was not reported as consumed"
                            ))
                        } else {
                            persist_session(store, &address);
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
                match block_on(group::process_distribution_bytes(store, &name, &bytes)) {
                    Ok(()) => {
                        persist_sender_key(store, &name, flavour);
                        Ok(format!("skdm for {name} processed"))
                    }
                    Err(e) => Err(format!("{e}")),
                }
            }
            "skmsg" => {
                let name = SenderKeyName::parse(&text(m, "sender_key_id")).expect("name");
                let bytes = b64(&text(m, "ciphertext_b64"));
                match block_on(group::decrypt(store, &name, &bytes)) {
                    Ok(pt) if pt == b64(&text(m, "plaintext_b64")) => {
                        persist_sender_key(store, &name, flavour);
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
fn account_session_for(peer: &Value, vectors: &Value, store: &InMemoryStore) -> Option<String> {
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
    [peer["lid"].as_str(), Some(jid)]
        .into_iter()
        .flatten()
        .filter_map(to_address)
        .find(|id| SignalAddress::parse(id).is_ok_and(|a| store.session(&a).is_some()))
}

#[test]
fn decrypts_every_vector_and_peers_decrypt_our_replies() {
    let mut all_failures = Vec::new();
    let mut decrypted = 0usize;
    let mut replies = 0usize;
    for (scenario, version, dir) in session_scenarios() {
        let flavour = flavour_of(&version);
        let vectors = read_json(&dir.join("expected/vectors.json"));
        let mut account = load_auth(&dir.join("auth"));
        println!(
            "{scenario}: loaded {} sessions, {} sender keys, {} pre-keys",
            account.sessions, account.sender_keys, account.pre_keys
        );
        let (report, failures) = decrypt_vectors(&scenario, flavour, &vectors, &mut account.store);
        for line in &report {
            println!("{line}");
        }
        decrypted += report.len() - failures.len();
        all_failures.extend(failures);

        // Replies: 1:1 to every peer with a session, group to every peer holding our sender key.
        let peers = read_json(&dir.join("peers/index.json"));
        let peers = peers["peers"].as_object().expect("peers");
        assert!(!peers.is_empty());
        let mut group_messages: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
        for (peer_name, peer) in peers {
            let Some(account_address) = peer["account_signal_address"].as_str() else {
                continue;
            };
            let Some(session_id) = account_session_for(peer, &vectors, &account.store) else {
                all_failures.push(format!("{scenario} peer {peer_name}: no session found"));
                continue;
            };
            let to_peer = SignalAddress::parse(&session_id).expect("session id");
            let from_account = SignalAddress::parse(account_address).expect("account address");
            let plaintext = format!("reply from the account to {peer_name}").into_bytes();
            let sent = block_on(cipher::encrypt(&mut account.store, &to_peer, &plaintext))
                .unwrap_or_else(|e| panic!("{scenario}: encrypt to {to_peer}: {e}"));
            persist_session(&mut account.store, &to_peer);

            let mut peer_state = load_auth(&dir.join(peer["auth_dir"].as_str().expect("auth_dir")));
            let result = block_on(cipher::decrypt(&mut peer_state.store, &from_account, &sent));
            let line = format!(
                "{scenario} reply to {peer_name} ({to_peer}, {})",
                sent.wa_type()
            );
            match result {
                Ok(d) if d.plaintext == plaintext => {
                    println!("{line}: peer decrypted it");
                    replies += 1;
                }
                Ok(_) => all_failures.push(format!("{line}: plaintext differs")),
                Err(e) => all_failures.push(format!("{line}: peer failed: {e}")),
            }
            // And the peer answers on the same session; we decrypt it.
            let answer = b"answer from the peer".to_vec();
            match block_on(cipher::encrypt(
                &mut peer_state.store,
                &from_account,
                &answer,
            )) {
                Ok(msg) => {
                    let got = block_on(cipher::decrypt(&mut account.store, &to_peer, &msg));
                    match got {
                        Ok(d) if d.plaintext == answer => {
                            println!(
                                "{scenario} answer from {peer_name} ({}): decrypted",
                                msg.wa_type()
                            );
                            persist_session(&mut account.store, &to_peer);
                        }
                        other => all_failures.push(format!(
                            "{scenario} answer from {peer_name}: {:?}",
                            other.err()
                        )),
                    }
                }
                Err(e) => all_failures.push(format!("{scenario} peer {peer_name} encrypt: {e}")),
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
                        let ct = block_on(group::encrypt(&mut account.store, &name, &pt))
                            .unwrap_or_else(|e| panic!("{scenario}: group encrypt {name}: {e}"));
                        persist_sender_key(&mut account.store, &name, flavour);
                        let ct = ct.serialized().to_vec();
                        group_messages.push((key_id.to_owned(), pt.clone(), ct.clone()));
                        (pt, ct)
                    }
                };
                let line = format!("{scenario} group message in {group_id} to {peer_name}");
                match block_on(group::decrypt(&mut peer_state.store, &name, &message.1)) {
                    Ok(pt) if pt == message.0 => {
                        println!("{line}: peer decrypted it");
                        replies += 1;
                    }
                    Ok(_) => all_failures.push(format!("{line}: plaintext differs")),
                    Err(e) => all_failures.push(format!("{line}: peer failed: {e}")),
                }
            }
        }
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
        block_on(process_bundle(&mut account.store, &to_peer, &bundle)).unwrap();
        persist_session(&mut account.store, &to_peer);
        for i in 0..3 {
            let plaintext = format!("new session message {i}").into_bytes();
            let sent = block_on(cipher::encrypt(&mut account.store, &to_peer, &plaintext)).unwrap();
            assert_eq!(sent.wa_type(), "pkmsg");
            persist_session(&mut account.store, &to_peer);
            let got = block_on(cipher::decrypt(&mut peer_state.store, &from_account, &sent))
                .unwrap_or_else(|e| panic!("{scenario}: {peer_name} failed on pkmsg {i}: {e}"));
            assert_eq!(got.plaintext, plaintext);
            assert_eq!(got.consumed_pre_key, (i == 0).then_some(pre_key.id));
        }
        let answer =
            block_on(cipher::encrypt(&mut peer_state.store, &from_account, b"ok")).unwrap();
        assert_eq!(answer.wa_type(), "msg");
        let got = block_on(cipher::decrypt(&mut account.store, &to_peer, &answer)).unwrap();
        assert_eq!(got.plaintext, b"ok");
        persist_session(&mut account.store, &to_peer);
        let next = block_on(cipher::encrypt(&mut account.store, &to_peer, b"after")).unwrap();
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
