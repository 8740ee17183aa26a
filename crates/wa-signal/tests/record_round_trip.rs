//! Property tests: every record survives its protobuf encoding unchanged, including the
//! extension fields, and `Debug` never shows secrets.

use proptest::prelude::*;
use wa_signal::provider::TestProvider;
use wa_signal::ratchet::{ChainKey, MessageKeySeed, MessageKeys, RootKey};
use wa_signal::record::{
    BaseKeyType, ChainState, MessageKeyMaterial, PendingPreKey, PreKeyId, ReceiverChain,
    SenderKeyRecord, SenderKeyState, SenderMessageKey, SessionRecord, SessionState, SignedPreKeyId,
    StoredMessageKey,
};
use wa_signal::{KeyPair, PrivateKey, PublicKey};

fn key_pair() -> impl Strategy<Value = KeyPair> {
    any::<[u8; 32]>().prop_map(|b| KeyPair::from_private(PrivateKey::from_bytes(b)))
}

fn public() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey::from_raw)
}

fn material() -> impl Strategy<Value = MessageKeyMaterial> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|s| MessageKeyMaterial::Seed(MessageKeySeed::from_bytes(s))),
        (any::<[u8; 32]>(), any::<[u8; 32]>(), any::<[u8; 16]>()).prop_map(|(c, m, iv)| {
            MessageKeyMaterial::Keys(MessageKeys {
                cipher_key: c,
                mac_key: m,
                iv,
            })
        }),
    ]
}

fn chain() -> impl Strategy<Value = ChainState> {
    (
        any::<u32>(),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::collection::vec((any::<u32>(), material()), 0..4),
    )
        .prop_map(|(next_index, key, keys)| ChainState {
            next_index,
            key: key.map(ChainKey::from_bytes),
            message_keys: keys
                .into_iter()
                .map(|(index, material)| StoredMessageKey { index, material })
                .collect(),
        })
}

fn session_state() -> impl Strategy<Value = SessionState> {
    (
        (
            proptest::option::of(public()),
            proptest::option::of(any::<u32>()),
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
            proptest::option::of((proptest::option::of(any::<u32>()), any::<u32>(), public())),
            public(),
            any::<bool>(),
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(any::<u64>()),
        ),
    )
        .prop_map(
            |(
                (local, local_reg, remote, remote_reg, root, prev, ours, theirs),
                (sender, receivers, pending, base, ours_base, created, used, closed),
            )| SessionState {
                local_identity: local,
                local_registration_id: local_reg,
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

fn sender_key_state() -> impl Strategy<Value = SenderKeyState> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        key_pair(),
        any::<bool>(),
        proptest::collection::vec((any::<u32>(), any::<[u8; 32]>()), 0..5),
        proptest::collection::vec(0u32..8, 0..2),
    )
        .prop_map(
            |(key_id, iteration, chain, signing, own, keys, blanks)| SenderKeyState {
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
                blank_message_key_slots: blanks,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn session_records_round_trip(
        current in proptest::option::of(session_state()),
        previous in proptest::collection::vec(session_state(), 0..3),
    ) {
        let record = SessionRecord::from_parts(current, previous);
        let bytes = record.encode();
        let decoded = SessionRecord::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &record);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn sender_key_records_round_trip(states in proptest::collection::vec(sender_key_state(), 0..5)) {
        let record = SenderKeyRecord::from_states(states);
        let decoded = SenderKeyRecord::decode(&record.encode()).unwrap();
        prop_assert_eq!(decoded, record);
    }

    #[test]
    fn debug_never_shows_secrets(state in session_state()) {
        let text = format!("{:?}", SessionRecord::from_parts(Some(state.clone()), vec![]));
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        prop_assert!(!text.contains(&hex(state.our_ratchet_key.private.as_bytes())));
        prop_assert!(!text.contains(&hex(state.root_key.as_bytes())));
        prop_assert!(text.contains("<redacted>"));
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = SessionRecord::decode(&bytes);
        let _ = SenderKeyRecord::decode(&bytes);
        let _ = wa_signal::message::SignalMessage::parse(&bytes);
        let _ = wa_signal::message::PreKeySignalMessage::parse(&bytes);
        let _ = wa_signal::message::SenderKeyMessage::parse(&bytes);
        let _ = wa_signal::message::SenderKeyDistributionMessage::parse(&bytes);
    }
}

#[test]
fn standard_records_without_extensions_decode() {
    // A record as standard libsignal writes it: no seeds, no extension fields.
    let rng = &mut TestProvider::new(1);
    let state = SessionState {
        local_identity: Some(KeyPair::generate(rng).public),
        local_registration_id: Some(1),
        remote_identity: KeyPair::generate(rng).public,
        remote_registration_id: 2,
        root_key: RootKey::from_bytes([1; 32]),
        previous_counter: 0,
        our_ratchet_key: KeyPair::generate(rng),
        their_ratchet_key: None,
        sender_chain: Some(ChainState {
            next_index: 3,
            key: Some(ChainKey::from_bytes([2; 32])),
            message_keys: vec![],
        }),
        receiver_chains: vec![],
        pending_pre_key: None,
        base_key: KeyPair::generate(rng).public,
        base_key_type: BaseKeyType::Theirs,
        created: 0,
        used: 0,
        closed: None,
    };
    let record = SessionRecord::from_parts(Some(state), vec![]);
    let decoded = SessionRecord::decode(&record.encode()).unwrap();
    assert_eq!(decoded, record);
}
