//! Sample values of every kind, for tests and the conformance suite.

use std::collections::BTreeMap;

use prost::Message;
use wa_proto::proto;
use wa_signal::{KeyPair, PreKeyId, PreKeyRecord, SenderKeyRecord, SessionRecord};

use crate::encoding::b64_encode;
use crate::key::{
    AppStateSyncKeyData, AppStateSyncKeyFingerprint, AppStateSyncVersion, KeyId, KeyKind, KeyValue,
    TcToken,
};
use crate::provider::SystemProvider;

/// A fresh key pair (samples need distinct keys, not reproducible ones).
fn key_pair() -> KeyPair {
    KeyPair::generate(&mut SystemProvider::new())
}

/// A fresh public key in its Signal serialisation, as records store it.
fn serialized_public_key() -> Vec<u8> {
    key_pair().public.serialize().to_vec()
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add(i as u8).wrapping_mul(31))
        .collect()
}

/// A session record with one open session (a sending chain, a receiving chain with a stored
/// message key) and one closed session: about the shape and size of a real one.
pub fn session(seed: u8) -> SessionRecord {
    let ratchet = key_pair();
    let chain = |index: u32, s: u8| proto::session_structure::Chain {
        sender_ratchet_key: Some(serialized_public_key()),
        sender_ratchet_key_private: None,
        chain_key: Some(proto::session_structure::chain::ChainKey {
            index: Some(index),
            key: Some(bytes(32, s)),
        }),
        message_keys: vec![proto::session_structure::chain::MessageKey {
            index: Some(index.saturating_sub(1)),
            cipher_key: Some(bytes(32, s.wrapping_add(1))),
            mac_key: Some(bytes(32, s.wrapping_add(2))),
            iv: Some(bytes(16, s.wrapping_add(3))),
            ..Default::default()
        }],
    };
    let session = |s: u8| proto::SessionStructure {
        session_version: Some(3),
        local_identity_public: Some(serialized_public_key()),
        remote_identity_public: Some(serialized_public_key()),
        root_key: Some(bytes(32, s)),
        previous_counter: Some(2),
        sender_chain: Some(proto::session_structure::Chain {
            sender_ratchet_key: Some(ratchet.public.serialize().to_vec()),
            sender_ratchet_key_private: Some(ratchet.private.as_bytes().to_vec()),
            chain_key: Some(proto::session_structure::chain::ChainKey {
                index: Some(4),
                key: Some(bytes(32, s.wrapping_add(9))),
            }),
            message_keys: vec![],
        }),
        receiver_chains: vec![chain(3, s), chain(7, s.wrapping_add(40))],
        remote_registration_id: Some(1234),
        local_registration_id: Some(241),
        alice_base_key: Some(serialized_public_key()),
        ..Default::default()
    };
    let record = proto::RecordStructure {
        current_session: Some(session(seed)),
        previous_sessions: vec![session(seed.wrapping_add(100))],
    };
    SessionRecord::decode(&record.encode_to_vec()).expect("a well-formed record decodes")
}

/// A sender-key record with one state holding a stored message key.
pub fn sender_key(seed: u8) -> SenderKeyRecord {
    let signing = key_pair();
    let record = proto::SenderKeyRecordStructure {
        sender_key_states: vec![proto::SenderKeyStateStructure {
            sender_key_id: Some(u32::from(seed) * 1000 + 7),
            sender_chain_key: Some(proto::sender_key_state_structure::SenderChainKey {
                iteration: Some(5),
                seed: Some(bytes(32, seed)),
            }),
            sender_signing_key: Some(proto::sender_key_state_structure::SenderSigningKey {
                public: Some(signing.public.serialize().to_vec()),
                private: Some(signing.private.as_bytes().to_vec()),
            }),
            sender_message_keys: vec![proto::sender_key_state_structure::SenderMessageKey {
                iteration: Some(3),
                seed: Some(bytes(32, seed.wrapping_add(1))),
            }],
            ..Default::default()
        }],
    };
    SenderKeyRecord::decode(&record.encode_to_vec()).expect("a well-formed record decodes")
}

/// One `(kind, id, value)` of every known kind plus one unknown kind.
pub fn one_of_every_kind() -> Vec<(KeyKind, KeyId, KeyValue)> {
    let other = KeyKind::from_name("future-kind").expect("valid kind name");
    vec![
        (
            KeyKind::PreKey,
            KeyId::new("17"),
            KeyValue::PreKey(PreKeyRecord {
                id: PreKeyId(17),
                key_pair: key_pair(),
            }),
        ),
        (
            KeyKind::Session,
            KeyId::new("4915112345678.0"),
            KeyValue::Session(session(1)),
        ),
        (
            KeyKind::SenderKey,
            KeyId::new("120363025246125888@g.us::15550100001::17"),
            KeyValue::SenderKey(sender_key(2)),
        ),
        (
            KeyKind::SenderKeyMemory,
            KeyId::new("120363025246125888@g.us"),
            KeyValue::SenderKeyMemory(BTreeMap::from([
                ("4915112345678@s.whatsapp.net".to_owned(), true),
                ("447700900123:2@s.whatsapp.net".to_owned(), false),
            ])),
        ),
        (
            KeyKind::AppStateSyncKey,
            KeyId::new("AAAAAP/6"),
            KeyValue::AppStateSyncKey(AppStateSyncKeyData {
                key_data: Some(bytes(32, 3)),
                fingerprint: Some(AppStateSyncKeyFingerprint {
                    raw_id: Some(651_600_844),
                    current_index: Some(2),
                    device_indexes: vec![0, 17],
                }),
                timestamp: Some(1_795_284_200_098),
            }),
        ),
        (
            KeyKind::AppStateSyncVersion,
            KeyId::new("critical_block"),
            KeyValue::AppStateSyncVersion(AppStateSyncVersion {
                version: 2,
                hash: bytes(128, 4),
                index_value_map: BTreeMap::from([(b64_encode(&bytes(32, 6)), bytes(32, 5))]),
                extra: Default::default(),
            }),
        ),
        (
            KeyKind::LidMapping,
            KeyId::new("15550100001"),
            KeyValue::LidMapping("100000000000001".into()),
        ),
        (
            KeyKind::DeviceList,
            KeyId::new("15550100001"),
            KeyValue::DeviceList(vec!["0".into(), "17".into()]),
        ),
        (
            KeyKind::TcToken,
            KeyId::new("210987654321098@lid"),
            KeyValue::TcToken(TcToken {
                token: bytes(20, 6),
                timestamp: Some("1795394215".into()),
                extra: Default::default(),
            }),
        ),
        (
            KeyKind::IdentityKey,
            KeyId::new("123456789012345_1.2"),
            KeyValue::IdentityKey(key_pair().public),
        ),
        (
            other,
            KeyId::new("x/y:z"),
            KeyValue::Other(
                serde_json::json!({"nested": {"list": [1, "two", null, true]}, "n": -5}),
            ),
        ),
    ]
}
