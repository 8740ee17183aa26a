//! Property and error tests of the codecs: random records survive the Baileys forms (v1
//! session JSON, sender keys in both flavours), and bad values give typed errors naming the
//! field.

use proptest::prelude::*;
use serde_json::{Value, json};
use wa_auth::SystemProvider;
use wa_signal::ratchet::{ChainKey, MessageKeySeed, RootKey};
use wa_signal::record::{
    BaseKeyType, ChainState, MessageKeyMaterial, PendingPreKey, PreKeyId, ReceiverChain,
    SenderKeyRecord, SenderKeyState, SenderMessageKey, SessionRecord, SessionState, SignedPreKeyId,
    StoredMessageKey,
};
use wa_signal::{KeyPair, PrivateKey, PublicKey};
use wa_store_compat::codec::{self, CompatError, Flavour};

fn key_pair() -> impl Strategy<Value = KeyPair> {
    any::<[u8; 32]>().prop_map(|b| KeyPair::from_private(PrivateKey::from_bytes(b)))
}

fn public() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey::from_raw)
}

fn chain() -> impl Strategy<Value = ChainState> {
    (
        any::<u32>(),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::collection::btree_map(any::<u32>(), any::<[u8; 32]>(), 0..4),
    )
        .prop_map(|(next_index, key, keys)| ChainState {
            next_index,
            key: key.map(ChainKey::from_bytes),
            message_keys: keys
                .into_iter()
                .map(|(index, seed)| StoredMessageKey {
                    index,
                    material: MessageKeyMaterial::Seed(MessageKeySeed::from_bytes(seed)),
                })
                .collect(),
        })
}

/// A state as libsignal-node can express it (seeds only, no local identity).
fn state(closed: Option<u64>) -> impl Strategy<Value = SessionState> {
    (
        (
            public(),
            any::<u32>(),
            any::<[u8; 32]>(),
            any::<u32>(),
            key_pair(),
            proptest::option::of(public()),
        ),
        (
            proptest::option::of(chain()),
            proptest::collection::vec((public(), chain()), 0..4),
            proptest::option::of((
                proptest::option::of(0u32..0xFF_FFFF),
                0u32..0xFF_FFFF,
                public(),
            )),
            public(),
            any::<bool>(),
            0u64..(1 << 53),
            0u64..(1 << 53),
        ),
    )
        .prop_map(
            move |(
                (remote, remote_reg, root, prev, ours, theirs),
                (sender, receivers, pending, base, ours_base, created, used),
            )| SessionState {
                local_identity: None,
                local_registration_id: None,
                remote_identity: remote,
                remote_registration_id: remote_reg,
                root_key: RootKey::from_bytes(root),
                previous_counter: prev,
                our_ratchet_key: ours,
                their_ratchet_key: theirs,
                sender_chain: sender,
                receiver_chains: receivers
                    .into_iter()
                    .map(|(ratchet_key, chain)| ReceiverChain { ratchet_key, chain })
                    .collect(),
                pending_pre_key: pending.map(|(pre, signed, base_key)| PendingPreKey {
                    pre_key_id: pre.map(PreKeyId),
                    signed_pre_key_id: SignedPreKeyId(signed),
                    base_key,
                }),
                base_key: base,
                base_key_type: if ours_base {
                    BaseKeyType::Ours
                } else {
                    BaseKeyType::Theirs
                },
                created,
                used,
                closed,
            },
        )
}

fn sender_state(v6_shape: bool) -> impl Strategy<Value = SenderKeyState> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        key_pair(),
        any::<bool>(),
        proptest::collection::vec((any::<u32>(), any::<[u8; 32]>()), 0..5),
        any::<bool>(),
    )
        .prop_map(
            move |(key_id, iteration, chain, signing, own, keys, blank)| {
                let blank_message_key_slots = if v6_shape && blank && !keys.is_empty() {
                    vec![keys.len() as u32]
                } else {
                    vec![]
                };
                SenderKeyState {
                    key_id,
                    iteration,
                    chain_key: ChainKey::from_bytes(chain),
                    signing_public: signing.public,
                    signing_private: own.then(|| signing.private.clone()),
                    message_keys: keys
                        .into_iter()
                        .map(|(iteration, seed)| SenderMessageKey {
                            iteration,
                            seed: MessageKeySeed::from_bytes(seed),
                        })
                        .collect(),
                    blank_message_key_slots,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sessions_round_trip_through_v1_json(
        current in proptest::option::of(state(None)),
        closed in proptest::collection::vec((0u64..(1 << 53)).prop_flat_map(|t| state(Some(t))), 0..3),
    ) {
        let mut closed = closed;
        closed.sort_by_key(|s| std::cmp::Reverse(s.closed));
        // Base keys identify sessions in the v1 map: make them distinct.
        let mut seen = std::collections::HashSet::new();
        closed.retain(|s| seen.insert(s.base_key));
        let current = current.filter(|s| seen.insert(s.base_key));
        let record = SessionRecord::from_parts(current, closed);
        let json = codec::session::to_json(&record).unwrap();
        let back = codec::session::from_json(&json).unwrap();
        prop_assert_eq!(&back, &record);
        prop_assert_eq!(codec::session::to_json(&back).unwrap(), json);
    }

    #[test]
    fn sender_keys_round_trip_in_both_flavours(
        v6 in proptest::collection::vec(sender_state(true), 0..5),
        v7 in proptest::collection::vec(sender_state(false), 0..5),
    ) {
        for (states, flavour) in [(v6, Flavour::Baileys6), (v7, Flavour::Baileys7)] {
            let record = SenderKeyRecord::from_states(states);
            let json = codec::sender_key::to_json(&record, flavour).unwrap();
            prop_assert_eq!(flavour == Flavour::Baileys7, codec::buffer_json::is_buffer(&json));
            let back = codec::sender_key::from_json(&json).unwrap();
            prop_assert_eq!(&back, &record);
            prop_assert_eq!(codec::sender_key::to_json(&back, flavour).unwrap(), json);
            // The runtime form (for a running Baileys) reads back to the same record.
            let runtime = codec::sender_key::to_runtime_json(&record, flavour).unwrap();
            prop_assert_eq!(flavour == Flavour::Baileys7, codec::buffer_json::is_buffer(&runtime));
            prop_assert_eq!(&codec::sender_key::from_json(&runtime).unwrap(), &record);
        }
    }

    #[test]
    fn garbage_json_is_an_error_not_a_panic(text in "[\\[\\]{}\",:0-9a-zA-Z_ -]{0,80}") {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            let _ = codec::session::from_json(&value);
            let _ = codec::sender_key::from_json(&value);
            let _ = codec::pre_key::key_pair_from_json(&value);
        }
    }
}

fn sample_session() -> Value {
    let state = SessionState {
        local_identity: None,
        local_registration_id: None,
        remote_identity: KeyPair::generate(&mut SystemProvider::new()).public,
        remote_registration_id: 7,
        root_key: RootKey::from_bytes([1; 32]),
        previous_counter: 0,
        our_ratchet_key: KeyPair::generate(&mut SystemProvider::new()),
        their_ratchet_key: Some(KeyPair::generate(&mut SystemProvider::new()).public),
        sender_chain: Some(ChainState {
            next_index: 0,
            key: Some(ChainKey::from_bytes([2; 32])),
            message_keys: vec![],
        }),
        receiver_chains: vec![],
        pending_pre_key: None,
        base_key: KeyPair::generate(&mut SystemProvider::new()).public,
        base_key_type: BaseKeyType::Ours,
        created: 1,
        used: 2,
        closed: None,
    };
    codec::session::to_json(&SessionRecord::from_parts(Some(state), vec![])).unwrap()
}

fn first_session(value: &mut Value) -> &mut Value {
    value["_sessions"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap()
}

#[test]
fn bad_session_values_name_the_field() {
    let mut v = sample_session();
    first_session(&mut v)["currentRatchet"]
        .as_object_mut()
        .unwrap()
        .remove("rootKey");
    let err = codec::session::from_json(&v).unwrap_err();
    assert!(
        matches!(&err, CompatError::Missing { path } if path.ends_with("/currentRatchet/rootKey")),
        "{err}"
    );

    let mut v = sample_session();
    v["version"] = json!("v2");
    assert!(matches!(
        codec::session::from_json(&v),
        Err(CompatError::InvalidValue { .. })
    ));

    let mut v = sample_session();
    first_session(&mut v)["indexInfo"]["baseKeyType"] = json!(3);
    let err = codec::session::from_json(&v).unwrap_err();
    assert!(err.to_string().contains("baseKeyType"), "{err}");

    let mut v = sample_session();
    first_session(&mut v)["currentRatchet"]["ephemeralKeyPair"]["privKey"] = json!("AAAA");
    let err = codec::session::from_json(&v).unwrap_err();
    assert!(err.to_string().contains("privKey"), "{err}");

    let mut v = sample_session();
    first_session(&mut v)["currentRatchet"]["previousCounter"] = json!(-1);
    assert!(matches!(
        codec::session::from_json(&v),
        Err(CompatError::InvalidValue { .. })
    ));

    let mut v = sample_session();
    first_session(&mut v)["registrationId"] = json!("x");
    assert!(matches!(
        codec::session::from_json(&v),
        Err(CompatError::WrongType { .. })
    ));

    // The map key must be the session's base key.
    let v = sample_session();
    let (_, session) = v["_sessions"].as_object().unwrap().iter().next().unwrap();
    let moved = json!({"_sessions": {"BQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA": session}, "version": "v1"});
    assert!(matches!(
        codec::session::from_json(&moved),
        Err(CompatError::InvalidValue { .. })
    ));

    assert!(matches!(
        codec::session::from_json(&json!({})),
        Err(CompatError::Missing { .. })
    ));
}

#[test]
fn what_libsignal_node_cannot_express_survives_as_extension_fields() {
    let v = sample_session();
    let record = codec::session::from_json(&v).unwrap();
    let mut state = record.current().unwrap().clone();
    let chain = state.sender_chain.as_mut().unwrap();
    chain.message_keys.push(StoredMessageKey {
        index: 0,
        material: MessageKeyMaterial::Keys(MessageKeySeed::from_bytes([3; 32]).derive()),
    });
    chain.message_keys.push(StoredMessageKey {
        index: 1,
        material: MessageKeyMaterial::Seed(MessageKeySeed::from_bytes([4; 32])),
    });
    let identity = KeyPair::generate(&mut SystemProvider::new()).public;
    state.local_identity = Some(identity);
    state.local_registration_id = Some(241);
    let record = SessionRecord::from_parts(Some(state), vec![]);

    let json = codec::session::to_json(&record).unwrap();
    let entry = json["_sessions"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(entry["localRegistrationId"], json!(241));
    assert!(entry["localIdentityKey"].is_string());
    let chain = entry["_chains"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(chain["messageKeys"].as_object().unwrap().len(), 1);
    assert_eq!(chain["messageKeysDerived"].as_object().unwrap().len(), 1);
    assert_eq!(codec::session::from_json(&json).unwrap(), record);
}

#[test]
fn sender_key_seeds_are_read_in_every_encoding() {
    let seed: Vec<u8> = (0u8..32).collect();
    let b64 = codec::buffer_json::encode_base64(&seed);
    let public = codec::buffer_json::encode_base64(
        &KeyPair::generate(&mut SystemProvider::new())
            .public
            .serialize(),
    );
    let encodings = [
        json!(b64),
        json!({"type": "Buffer", "data": b64}),
        codec::buffer_json::buffer_numbers(&seed),
    ];
    for encoding in encodings {
        let value = json!([{
            "senderKeyId": 5,
            "senderChainKey": {"iteration": 3, "seed": encoding},
            "senderSigningKey": {"public": public},
            "senderMessageKeys": [{"iteration": 1, "seed": encoding}, {}],
        }]);
        let record = codec::sender_key::from_json(&value).unwrap();
        let state = &record.states()[0];
        assert_eq!(
            state.message_keys[0].seed.as_bytes().as_slice(),
            seed.as_slice()
        );
        assert_eq!(state.chain_key.as_bytes().as_slice(), seed.as_slice());
        assert_eq!(state.blank_message_key_slots, [1]);
    }
    let bad = json!([{"senderKeyId": 5, "senderChainKey": {"iteration": 3, "seed": "AAAA"}, "senderSigningKey": {"public": public}}]);
    let err = codec::sender_key::from_json(&bad).unwrap_err();
    assert!(err.to_string().contains("/0/senderChainKey/seed"), "{err}");
    let not_json = codec::buffer_json::buffer_base64(b"[{not json");
    assert!(matches!(
        codec::sender_key::from_json(&not_json),
        Err(CompatError::EmbeddedJson { .. })
    ));
}

#[test]
fn mismatched_key_pairs_are_refused() {
    let a = KeyPair::generate(&mut SystemProvider::new());
    let b = KeyPair::generate(&mut SystemProvider::new());
    let value = json!({
        "private": codec::buffer_json::buffer_base64(a.private.as_bytes()),
        "public": codec::buffer_json::buffer_base64(b.public.as_bytes()),
    });
    assert!(matches!(
        codec::pre_key::key_pair_from_json(&value),
        Err(CompatError::InvalidValue { .. })
    ));
}
