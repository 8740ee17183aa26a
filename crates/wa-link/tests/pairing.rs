//! Pairing against the vectors in `$WA_FIXTURES/pairing/`: the same creds updates and reply
//! nodes as Baileys (signatures checked by verification, since XEdDSA is randomized), and every
//! negative case rejected with creds unchanged — including a forged account signature, which
//! Baileys itself wrongly accepts. Every expectation comes from the vector files: what Baileys
//! produced, and (for the negative cases) which check the stanza fails, recomputed from the
//! vector's own keys.

use std::path::PathBuf;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use prost::Message;
use serde_json::Value;
use sha2::Sha256;
use wa_auth::creds::{Contact, SignalIdentity, SignedDeviceIdentity};
use wa_auth::{AuthCreds, AuthEvent, AuthState, MemoryStore, Persistence, PersistenceExt};
use wa_link::{
    BaileysProfile, LinkError, PairingRejection, handle_pair_success, process_pair_success,
};
use wa_proto::proto::{AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac};
use wa_proto::{Content, Node};
use wa_signal::PublicKey;
use wa_signal::provider::TestProvider;
use wa_testkit::fixtures;
use wa_testkit::vectors::{Failures, b64, debufferize, node_from_json, same_bytes};

fn vector_files() -> Vec<PathBuf> {
    let dir = fixtures::fixtures_dir().join("pairing");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no pairing vectors under {}",
        dir.display()
    );
    files
}

fn creds_from(json: &Value) -> AuthCreds {
    serde_json::from_value(debufferize(json.clone())).expect("creds_before parses")
}

fn profile_of(version: &str) -> BaileysProfile {
    if version.starts_with("v6.") {
        BaileysProfile::Baileys6
    } else {
        BaileysProfile::Baileys7
    }
}

/// The reply's `device-identity` bytes, decoded.
fn reply_identity(reply: &Node) -> (String, AdvSignedDeviceIdentity) {
    let node = reply
        .child_at(&["pair-device-sign", "device-identity"])
        .expect("device-identity in reply");
    let bytes = node.content_bytes().expect("binary content");
    (
        node.attr("key-index").unwrap_or_default().to_owned(),
        AdvSignedDeviceIdentity::decode(bytes).expect("decodes"),
    )
}

/// Every vector file, parsed.
fn vectors() -> Vec<Value> {
    vector_files()
        .iter()
        .map(|file| serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap())
        .collect()
}

fn check_accepted(
    vector: &Value,
    version: &str,
    result: &Value,
    creds: &AuthCreds,
) -> Result<(), String> {
    let stanza = node_from_json(&vector["pair_success"]["node"]);
    let rng = &mut TestProvider::new(1);
    let outcome = process_pair_success(&stanza, creds, profile_of(version), rng)
        .map_err(|e| format!("rejected: {e}"))?;
    let update = &result["creds_update"];

    // me, platform and signalIdentities are exactly Baileys'.
    let me: Value = serde_json::to_value(&outcome.me).unwrap();
    if me != update["me"] {
        return Err(format!("me {me} != {}", update["me"]));
    }
    if outcome.platform.as_deref() != update["platform"].as_str() {
        return Err(format!(
            "platform {:?} != {}",
            outcome.platform, update["platform"]
        ));
    }
    let identities = debufferize(update["signalIdentities"].clone());
    let ours = serde_json::to_value(vec![&outcome.signal_identity]).unwrap();
    if ours != identities {
        return Err(format!("signalIdentities {ours} != {identities}"));
    }

    // The account equals Baileys' except the (randomized) device signature, which must verify
    // over the same message with our identity key.
    let expected: SignedDeviceIdentity =
        serde_json::from_value(update["account"]["json"].clone()).unwrap();
    let ours = &outcome.account;
    if (
        ours.details.as_ref(),
        ours.account_signature_key.as_ref(),
        ours.account_signature.as_ref(),
    ) != (
        expected.details.as_ref(),
        expected.account_signature_key.as_ref(),
        expected.account_signature.as_ref(),
    ) {
        return Err("account fields differ".into());
    }
    let signed_message = b64(&result["device_signature"]["signed_message_b64"]);
    same_bytes(
        "device signature message",
        &signed_message,
        &b64(&vector["device_signature_message_b64"]),
    )?;
    let device_signature = ours
        .device_signature
        .as_ref()
        .ok_or("no device signature")?;
    if !creds
        .signed_identity_key
        .public
        .verify(&signed_message, device_signature)
    {
        return Err("our device signature does not verify".into());
    }

    // The reply: the same node, and (dictionary 3) byte for byte the same stanza once Baileys'
    // device signature is put in place of ours.
    let (key_index, identity) = reply_identity(&outcome.reply);
    let (expected_index, expected_identity) =
        reply_identity(&node_from_json(&result["reply"]["node"]));
    if key_index != expected_index || identity.account_signature_key.is_some() {
        return Err(format!(
            "reply key-index {key_index} (expected {expected_index}) or signature key present"
        ));
    }
    let mut with_theirs = outcome.reply.clone();
    let swapped = AdvSignedDeviceIdentity {
        device_signature: expected_identity.device_signature.clone(),
        ..identity
    };
    if let Content::Nodes(children) = &mut with_theirs.content
        && let Content::Nodes(grandchildren) = &mut children[0].content
    {
        grandchildren[0].content = Content::Bytes(swapped.encode_to_vec());
    }
    if with_theirs != node_from_json(&result["reply"]["node"]) {
        return Err(format!("reply node differs: {with_theirs}"));
    }
    // Baileys 6 encoded with its older token dictionary (version 2); we speak version 3.
    if profile_of(version) == BaileysProfile::Baileys7 {
        same_bytes(
            "reply stanza",
            &with_theirs.encode().unwrap(),
            &b64(&result["reply"]["encoded_b64"]),
        )?;
    }

    // Applying the outcome gives Baileys' creds_after (modulo the device signature).
    let mut after = creds.clone();
    outcome.apply(&mut after);
    let mut after_json = serde_json::to_value(&after).unwrap();
    let mut expected_after = debufferize(result["creds_after"].clone());
    after_json["account"]["deviceSignature"] = Value::Null;
    expected_after["account"]["deviceSignature"] = Value::Null;
    if after_json != expected_after {
        return Err(format!(
            "creds after pairing differ:\n ours {after_json}\n theirs {expected_after}"
        ));
    }
    Ok(())
}

#[test]
fn accepted_vectors_match_baileys() {
    let mut failures = Failures::default();
    for vector in vectors() {
        if vector["expected_correct_behaviour"] != "accept" {
            continue;
        }
        let creds = creds_from(&vector["creds_before"]);
        let results = vector["results"].as_object().unwrap();
        assert!(!results.is_empty(), "{}: no results", vector["case"]);
        for (version, result) in results {
            let name = format!("{} ({version})", vector["case"].as_str().unwrap());
            if result["ok"] != true {
                // Baileys 6 has no HOSTED support and rejects what it should accept: we accept
                // (checked against Baileys 7), there is nothing of Baileys 6 to compare with.
                assert_eq!(
                    profile_of(version),
                    BaileysProfile::Baileys6,
                    "{name}: only Baileys 6 may fail an accept case"
                );
                let stanza = node_from_json(&vector["pair_success"]["node"]);
                let rng = &mut TestProvider::new(2);
                failures.check(
                    &name,
                    process_pair_success(&stanza, &creds, BaileysProfile::Baileys6, rng)
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                );
                continue;
            }
            failures.check(&name, check_accepted(&vector, version, result, &creds));
        }
    }
    failures.finish("accepted pairing vectors");
}

/// Which check a negative vector's stanza fails, recomputed from the vector's own data: a
/// missing child, then the container's HMAC under the creds' ADV secret (with the vector's
/// `hmac_prefix`), then the account signature over the vector's signed message.
fn expected_rejection(vector: &Value) -> Option<PairingRejection> {
    let stanza = node_from_json(&vector["pair_success"]["node"]);
    let pair_success = stanza.child("pair-success")?;
    let (Some(identity), Some(_)) = (
        pair_success.child("device-identity"),
        pair_success.child("device"),
    ) else {
        return Some(PairingRejection::Missing("device-identity or device"));
    };
    let container = AdvSignedDeviceIdentityHmac::decode(identity.content_bytes()?).ok()?;
    let creds = creds_from(&vector["creds_before"]);
    let mut mac = Hmac::<Sha256>::new_from_slice(&creds.adv_secret_key.to_bytes().ok()?).ok()?;
    let prefix: Vec<u8> = serde_json::from_value(vector["adv"]["hmac_prefix"].clone()).ok()?;
    mac.update(&prefix);
    mac.update(container.details.as_deref()?);
    if mac.verify_slice(container.hmac.as_deref()?).is_err() {
        return Some(PairingRejection::BadHmac);
    }
    let primary = PublicKey::from_slice(&b64(&vector["primary_identity"]["public_b64"])).ok()?;
    let signed = b64(&vector["adv"]["account_signature_message_b64"]);
    let signature = b64(&vector["adv"]["account_signature_b64"]);
    if !primary.verify(&signed, &signature) {
        return Some(PairingRejection::BadAccountSignature);
    }
    None
}

#[tokio::test]
async fn rejected_vectors_leave_creds_untouched() {
    let (mut rejected, mut named) = (0, 0);
    for vector in vectors() {
        if vector["expected_correct_behaviour"] != "reject" {
            continue;
        }
        let case = vector["case"].as_str().unwrap().to_owned();
        let creds = creds_from(&vector["creds_before"]);
        let stanza = node_from_json(&vector["pair_success"]["node"]);
        let rng = &mut TestProvider::new(3);
        let reason =
            process_pair_success(&stanza, &creds, BaileysProfile::Baileys7, rng).expect_err(&case);
        // Where the data shows which check fails, the rejection names it; otherwise (another
        // malformation) any typed rejection will do.
        if let Some(expected) = expected_rejection(&vector) {
            named += 1;
            match expected {
                PairingRejection::Missing(_) => {
                    assert!(
                        matches!(reason, PairingRejection::Missing(_)),
                        "{case}: {reason}"
                    )
                }
                expected => assert_eq!(reason, expected, "{case}"),
            }
        }

        // Through AuthState: nothing is committed, no event, creds unchanged in memory and store.
        let store = Arc::new(MemoryStore::new());
        store.save_creds(&creds).await.unwrap();
        let state = AuthState::load(store.clone()).await.unwrap();
        let mut events = state.subscribe();
        let err = handle_pair_success(&state, rng, &stanza).await.unwrap_err();
        assert!(
            matches!(err, LinkError::PairingRejected(_)),
            "{case}: {err}"
        );
        assert_eq!(*state.creds(), creds, "{case}: creds changed in memory");
        assert_eq!(
            store.load_creds().await.unwrap().as_ref(),
            Some(&creds),
            "{case}: creds changed in the store"
        );
        assert!(events.try_recv().is_err(), "{case}: an event was sent");
        rejected += 1;
    }
    assert!(rejected > 0, "no negative pairing vectors found");
    assert!(
        named > 0,
        "the data named the failing check of none of the {rejected} negative vectors"
    );
}

/// Through `AuthState` (which pairs with the default profile, Baileys 7's), every accepted
/// vector commits creds once: `me` and the primary's identity are the ones Baileys recorded.
#[tokio::test]
async fn handling_pair_success_commits_creds_once() {
    let mut checked = 0;
    for vector in vectors() {
        let case = vector["case"].as_str().unwrap().to_owned();
        let results = vector["results"].as_object().unwrap();
        let default_profile = results.iter().find(|(version, result)| {
            profile_of(version) == BaileysProfile::default() && result["ok"] == true
        });
        let (true, Some((_, result))) = (
            vector["expected_correct_behaviour"] == "accept",
            default_profile,
        ) else {
            continue;
        };
        let creds = creds_from(&vector["creds_before"]);
        let store = Arc::new(MemoryStore::new());
        store.save_creds(&creds).await.unwrap();
        let state = AuthState::load(store.clone()).await.unwrap();
        let mut events = state.subscribe();
        let stanza = node_from_json(&vector["pair_success"]["node"]);
        let reply = handle_pair_success(&state, &mut TestProvider::new(4), &stanza)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(reply.attr("id"), stanza.attr("id"), "{case}");
        assert!(
            matches!(events.try_recv().unwrap(), AuthEvent::CredsUpdated(_)),
            "{case}"
        );
        assert!(events.try_recv().is_err(), "{case}: one commit, one event");
        let stored = store.load_creds().await.unwrap().unwrap();
        assert!(stored.is_paired(), "{case}");
        let update = &result["creds_update"];
        let me: Contact = serde_json::from_value(update["me"].clone()).unwrap();
        assert_eq!(stored.me.as_ref(), Some(&me), "{case}");
        let identities: Vec<SignalIdentity> =
            serde_json::from_value(debufferize(update["signalIdentities"].clone())).unwrap();
        assert_eq!(stored.signal_identities.last(), identities.last(), "{case}");
        let primary =
            PublicKey::from_slice(&b64(&vector["primary_identity"]["public_b64"])).unwrap();
        assert_eq!(
            stored.signal_identities.last().map(|i| i.identifier_key),
            Some(primary),
            "{case}"
        );
        checked += 1;
    }
    assert!(
        checked > 0,
        "no accepted pairing vector for the default profile"
    );
}
