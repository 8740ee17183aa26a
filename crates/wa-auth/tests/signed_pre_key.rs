//! Signed pre-key rotation: the new key is current and valid, the retired one still serves
//! in-flight PreKeySignalMessages until its grace period ends, then it is removed.

use std::sync::Arc;
use std::time::Duration;

use wa_auth::flows::signed_pre_key::{self, retired_kind};
use wa_auth::protocol::MessageKind;
use wa_auth::{AuthError, AuthState, KeyKind, KeyValue, MemoryStore, Persistence};
use wa_signal::session::{PreKeyBundle, process_bundle};
use wa_signal::store::InMemoryStore;
use wa_signal::{
    KeyPair, PreKeyId, PreKeyRecord, SignalAddress, SignalError, SignedPreKeyId, cipher,
};

const DAY_MS: u64 = 24 * 3600 * 1000;

/// Our current bundle, with one one-time pre-key stored for the occasion.
async fn our_bundle(state: &AuthState, pre_key_id: u32) -> PreKeyBundle {
    let pre_key = PreKeyRecord {
        id: PreKeyId(pre_key_id),
        key_pair: KeyPair::generate(),
    };
    let mut batch = wa_auth::WriteBatch::new();
    batch.put(
        KeyKind::PreKey,
        pre_key_id.to_string(),
        KeyValue::PreKey(pre_key.clone()),
    );
    state.set(batch).await.unwrap();
    let creds = state.creds();
    PreKeyBundle {
        registration_id: creds.registration_id,
        device_id: 0,
        pre_key: Some((pre_key.id, pre_key.key_pair.public)),
        signed_pre_key_id: SignedPreKeyId(creds.signed_pre_key.key_id),
        signed_pre_key: creds.signed_pre_key.key_pair.public,
        signed_pre_key_signature: creds.signed_pre_key.signature,
        identity_key: creds.signed_identity_key.public,
    }
}

#[tokio::test]
async fn in_flight_messages_decrypt_until_the_grace_period_ends() {
    let store = Arc::new(MemoryStore::new());
    let state = AuthState::load(store.clone()).await.unwrap();
    let us = SignalAddress::new("15550100001", 17).unwrap();
    let peer_address = SignalAddress::new("4915112345678", 0).unwrap();

    // A peer fetched our bundle (signed pre-key 1) before we rotate.
    let bundle = our_bundle(&state, 7).await;
    let mut peer = InMemoryStore::new(KeyPair::generate(), 4242);
    process_bundle(&mut peer, &us, &bundle).await.unwrap();

    let rotated = signed_pre_key::rotate(&state, 10 * DAY_MS).await.unwrap();
    assert_eq!(rotated.key_id, 2);
    assert!(rotated.verify(&state.creds().signed_identity_key.public));
    assert_eq!(state.creds().signed_pre_key, rotated);
    assert_eq!(store.list(&retired_kind()).await.unwrap().len(), 1);

    // The peer's first message is built on the retired key and still decrypts; the consumed
    // one-time pre-key goes in the same commit.
    let message = cipher::encrypt(&mut peer, &us, b"hello after rotation")
        .await
        .unwrap();
    let received = state
        .decrypt_message(&peer_address, MessageKind::PreKey, message.serialized())
        .await
        .unwrap();
    assert_eq!(received.plaintext, b"hello after rotation");
    assert!(
        store
            .get(&KeyKind::PreKey, &["7".into()])
            .await
            .unwrap()
            .is_empty()
    );

    // Within the grace period nothing is pruned; after it the retired key is gone.
    assert!(
        signed_pre_key::prune(&state, 20 * DAY_MS, Duration::from_millis(30 * DAY_MS))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        signed_pre_key::prune(&state, 41 * DAY_MS, Duration::from_millis(30 * DAY_MS))
            .await
            .unwrap(),
        vec![1]
    );
    assert!(store.list(&retired_kind()).await.unwrap().is_empty());

    // A late message built on the pruned key now fails, typed.
    let late_peer_address = SignalAddress::new("4915112345679", 0).unwrap();
    let mut late_peer = InMemoryStore::new(KeyPair::generate(), 4343);
    let mut old_bundle = our_bundle(&state, 8).await;
    old_bundle.signed_pre_key_id = bundle.signed_pre_key_id;
    old_bundle.signed_pre_key = bundle.signed_pre_key;
    old_bundle.signed_pre_key_signature = bundle.signed_pre_key_signature;
    process_bundle(&mut late_peer, &us, &old_bundle)
        .await
        .unwrap();
    let late = cipher::encrypt(&mut late_peer, &us, b"too late")
        .await
        .unwrap();
    let err = state
        .decrypt_message(&late_peer_address, MessageKind::PreKey, late.serialized())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::Signal(SignalError::InvalidSignedPreKeyId(1))
        ),
        "{err}"
    );
    assert!(
        store
            .get(&KeyKind::PreKey, &["8".into()])
            .await
            .unwrap()
            .len()
            == 1,
        "a failed decrypt consumes nothing"
    );
}

#[test]
fn the_rotation_stanza_carries_the_new_key() {
    let identity = KeyPair::generate();
    let key = wa_auth::creds::SignedKeyPair::generate(&identity, 0x01_0203);
    let node = signed_pre_key::rotation_node(&key);
    let skey = node.child_at(&["rotate", "skey"]).unwrap();
    assert_eq!(
        skey.child("id").unwrap().content_bytes(),
        Some(&[1u8, 2, 3][..])
    );
    assert_eq!(
        skey.child("value").unwrap().content_bytes(),
        Some(&key.key_pair.public.as_bytes()[..])
    );
    assert_eq!(
        skey.child("signature").unwrap().content_bytes(),
        Some(&key.signature[..])
    );
}
