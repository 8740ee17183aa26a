//! Signed pre-key rotation: the new key is current and valid, the retired one still serves
//! in-flight PreKeySignalMessages until its grace period ends, then it is removed.

use std::sync::Arc;
use std::time::Duration;

use wa_auth::protocol::MessageKind;
use wa_auth::signed_pre_key::{RetiredSignedPreKey, retired_kind};
use wa_auth::{AuthState, KeyKind, KeyValue, MemoryStore, Persistence};
use wa_link::signed_pre_key;
use wa_signal::provider::TestProvider;
use wa_signal::session::{PreKeyBundle, process_bundle};
use wa_signal::store::InMemoryStore;
use wa_signal::{
    KeyPair, PreKeyId, PreKeyRecord, SignalAddress, SignalError, SignedPreKeyId, UnixTime, cipher,
};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn days(n: u64) -> UnixTime {
    UnixTime::from_millis(n * DAY_MS)
}

/// Our current bundle, with one one-time pre-key stored for the occasion.
async fn our_bundle(state: &AuthState, rng: &mut TestProvider, pre_key_id: u32) -> PreKeyBundle {
    let pre_key = PreKeyRecord {
        id: PreKeyId(pre_key_id),
        key_pair: KeyPair::generate(rng),
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
    let provider = &mut TestProvider::new(1).at(days(10));
    let bundle = our_bundle(&state, provider, 7).await;
    let mut peer = InMemoryStore::new(KeyPair::generate(provider), 4242);
    process_bundle(&mut peer, provider, &us, &bundle)
        .await
        .unwrap();

    let rotated = signed_pre_key::rotate(&state, provider).await.unwrap();
    assert_eq!(rotated.key_id, 2);
    assert!(rotated.verify(&state.creds().signed_identity_key.public));
    assert_eq!(state.creds().signed_pre_key, rotated);
    assert_eq!(store.list(&retired_kind()).await.unwrap().len(), 1);
    // Retired at the provider's time, as it was in creds.
    let retired_id = bundle.signed_pre_key_id.0.to_string();
    let stored = store
        .get(&retired_kind(), &[retired_id.as_str().into()])
        .await
        .unwrap();
    let retired = RetiredSignedPreKey::from_value(&stored[0].0, &stored[0].1).unwrap();
    assert_eq!(retired.retired_at, days(10).as_millis());
    assert_eq!(retired.key.key_pair.public, bundle.signed_pre_key);

    // The peer's first message is built on the retired key and still decrypts; the consumed
    // one-time pre-key goes in the same commit.
    let message = cipher::encrypt(&mut peer, provider, &us, b"hello after rotation")
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
        signed_pre_key::prune(&state, days(20), Duration::from_millis(30 * DAY_MS))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        signed_pre_key::prune(&state, days(41), Duration::from_millis(30 * DAY_MS))
            .await
            .unwrap(),
        vec![1]
    );
    assert!(store.list(&retired_kind()).await.unwrap().is_empty());

    // A late message built on the pruned key now fails, typed.
    let late_peer_address = SignalAddress::new("4915112345679", 0).unwrap();
    let mut late_peer = InMemoryStore::new(KeyPair::generate(provider), 4343);
    let mut old_bundle = our_bundle(&state, provider, 8).await;
    old_bundle.signed_pre_key_id = bundle.signed_pre_key_id;
    old_bundle.signed_pre_key = bundle.signed_pre_key;
    old_bundle.signed_pre_key_signature = bundle.signed_pre_key_signature;
    process_bundle(&mut late_peer, provider, &us, &old_bundle)
        .await
        .unwrap();
    let late = cipher::encrypt(&mut late_peer, provider, &us, b"too late")
        .await
        .unwrap();
    let err = state
        .decrypt_message(&late_peer_address, MessageKind::PreKey, late.serialized())
        .await
        .unwrap_err();
    assert!(
        matches!(err.as_signal(), Some(SignalError::InvalidSignedPreKeyId(1))),
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
    let rng = &mut TestProvider::new(2);
    let identity = KeyPair::generate(rng);
    let key = wa_auth::creds::SignedKeyPair::generate(rng, &identity, 0x01_0203);
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
