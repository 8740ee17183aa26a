//! Deterministic test data shared by the integration tests and the benchmarks: realistic,
//! seeded values of every kind, random batches, and an in-memory model of a store.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use wa_auth::key::{AppStateSyncKeyData, AppStateSyncKeyFingerprint, TcToken};
use wa_auth::{AuthCreds, KeyId, KeyKind, KeyValue, Snapshot, WriteBatch};
use wa_proto::proto;
use wa_signal::{KeyPair, PreKeyId, PreKeyRecord, PrivateKey, SessionRecord};

/// A seeded RNG for `(seed, stream)`.
pub fn rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random::<u8>()).collect()
}

fn public(rng: &mut StdRng) -> Vec<u8> {
    let mut key = vec![0x05];
    key.extend(bytes(rng, 32));
    key
}

/// A session record shaped like a real one after some traffic (a current session with a
/// sending chain and five receiving chains holding skipped message keys, one closed session):
/// about 2.2 KB encoded.
pub fn session(rng: &mut StdRng) -> SessionRecord {
    let chain = |rng: &mut StdRng, index: u32, keys: u32| proto::session_structure::Chain {
        sender_ratchet_key: Some(public(rng)),
        sender_ratchet_key_private: None,
        chain_key: Some(proto::session_structure::chain::ChainKey {
            index: Some(index),
            key: Some(bytes(rng, 32)),
        }),
        message_keys: (0..keys)
            .map(|k| proto::session_structure::chain::MessageKey {
                index: Some(index.saturating_sub(k + 1)),
                cipher_key: Some(bytes(rng, 32)),
                mac_key: Some(bytes(rng, 32)),
                iv: Some(bytes(rng, 16)),
                ..Default::default()
            })
            .collect(),
    };
    let structure = |rng: &mut StdRng, chains: u32| proto::SessionStructure {
        session_version: Some(3),
        local_identity_public: Some(public(rng)),
        remote_identity_public: Some(public(rng)),
        root_key: Some(bytes(rng, 32)),
        previous_counter: Some(rng.random_range(0..50)),
        sender_chain: Some(proto::session_structure::Chain {
            sender_ratchet_key: Some(public(rng)),
            sender_ratchet_key_private: Some(bytes(rng, 32)),
            chain_key: Some(proto::session_structure::chain::ChainKey {
                index: Some(rng.random_range(0..100)),
                key: Some(bytes(rng, 32)),
            }),
            message_keys: vec![],
        }),
        receiver_chains: (0..chains).map(|c| chain(rng, 10 + c, 3)).collect(),
        remote_registration_id: Some(rng.random_range(0..0x3fff)),
        local_registration_id: Some(rng.random_range(0..0x3fff)),
        alice_base_key: Some(public(rng)),
        ..Default::default()
    };
    let record = proto::RecordStructure {
        current_session: Some(structure(rng, 5)),
        previous_sessions: vec![structure(rng, 1)],
    };
    SessionRecord::decode(&prost::Message::encode_to_vec(&record)).expect("a well-formed record")
}

/// A value of `kind`, stored under `id`, drawn from `rng`.
pub fn value(kind: &KeyKind, id: &str, rng: &mut StdRng) -> KeyValue {
    match kind {
        KeyKind::Session => KeyValue::Session(session(rng)),
        KeyKind::PreKey => {
            let private = PrivateKey::from_bytes(rng.random());
            KeyValue::PreKey(PreKeyRecord {
                id: PreKeyId(id.parse().expect("pre-key ids are numbers")),
                key_pair: KeyPair::from_private(private),
            })
        }
        KeyKind::SenderKeyMemory => KeyValue::SenderKeyMemory(
            (0..rng.random_range(1..6))
                .map(|i| (format!("4915{i:07}@s.whatsapp.net"), rng.random()))
                .collect(),
        ),
        KeyKind::AppStateSyncKey => KeyValue::AppStateSyncKey(AppStateSyncKeyData {
            key_data: Some(bytes(rng, 32)),
            fingerprint: Some(AppStateSyncKeyFingerprint {
                raw_id: Some(rng.random()),
                current_index: Some(rng.random_range(0..10)),
                device_indexes: vec![0, rng.random_range(1..30)],
            }),
            timestamp: Some(rng.random_range(0..i64::MAX)),
        }),
        KeyKind::LidMapping => {
            KeyValue::LidMapping(rng.random_range(10u64.pow(14)..10u64.pow(15)).to_string())
        }
        KeyKind::DeviceList => KeyValue::DeviceList(
            (0..rng.random_range(1..5))
                .map(|_| rng.random_range(0..100u32).to_string())
                .collect(),
        ),
        KeyKind::TcToken => KeyValue::TcToken(TcToken {
            token: bytes(rng, 20),
            timestamp: Some(
                rng.random_range(1_700_000_000u64..1_800_000_000)
                    .to_string(),
            ),
            extra: Default::default(),
        }),
        KeyKind::IdentityKey => KeyValue::IdentityKey(
            wa_signal::PublicKey::from_slice(&bytes(rng, 32)).expect("32 bytes"),
        ),
        _ => KeyValue::Other(serde_json::json!({
            "n": rng.random_range(0..1000),
            "s": format!("{:x}", rng.random::<u64>()),
        })),
    }
}

/// The kinds random batches touch (including an unknown one).
pub fn kinds() -> Vec<KeyKind> {
    vec![
        KeyKind::Session,
        KeyKind::PreKey,
        KeyKind::SenderKeyMemory,
        KeyKind::AppStateSyncKey,
        KeyKind::LidMapping,
        KeyKind::DeviceList,
        KeyKind::TcToken,
        KeyKind::IdentityKey,
        KeyKind::from_name("future-kind").expect("valid kind"),
    ]
}

/// Batch number `index` (from 1) of the random sequence `seed`, in key namespace `prefix`:
/// always puts `counter` (a lid-mapping of `prefix` + "counter") = `index`, plus a few random
/// puts and deletes among a small pool of ids; `creds`, if given, are set in some batches.
/// The same arguments always give the same batch.
pub fn batch(seed: u64, prefix: &str, index: u64, creds: &[AuthCreds]) -> WriteBatch {
    let mut rng = rng(seed, index);
    let kinds = kinds();
    let mut batch = WriteBatch::new();
    let ops = if rng.random_range(0..40) == 0 {
        rng.random_range(50..200) // now and then a big batch (about 100-450 KB)
    } else {
        rng.random_range(1..8)
    };
    for _ in 0..ops {
        let kind = &kinds[rng.random_range(0..kinds.len())];
        let id = format!("{prefix}{}", rng.random_range(0..40u32));
        let id = if *kind == KeyKind::PreKey {
            // Pre-key ids are numbers; keep namespaces apart by an offset per prefix.
            (pre_key_base(prefix) + rng.random_range(0..40u32)).to_string()
        } else {
            id
        };
        if rng.random_range(0..4) == 0 {
            batch.delete(kind.clone(), id);
        } else {
            let value = value(kind, &id, &mut rng);
            batch.put(kind.clone(), id, value);
        }
    }
    if !creds.is_empty() && rng.random_range(0..8) == 0 {
        let mut chosen = creds[rng.random_range(0..creds.len())].clone();
        chosen.next_pre_key_id = index as u32;
        batch.set_creds(chosen);
    }
    batch.put(
        KeyKind::LidMapping,
        format!("{prefix}counter"),
        KeyValue::LidMapping(index.to_string()),
    );
    batch
}

/// Sessions in one [`bulk_batch`]: about 6 MB in the log, more than the size from which the
/// store starts a frame's writeback while still writing it, and more keys than the batches it
/// writes in parts while threads encode them (2,048).
pub const BULK_SESSIONS: u64 = 2_600;

/// Batch number `index` of a bulk writer in namespace `prefix`: [`BULK_SESSIONS`] sessions
/// (eight distinct records, cheap to make) over a window of ids that moves with `index`, and
/// the namespace's counter.
pub fn bulk_batch(seed: u64, prefix: &str, index: u64) -> WriteBatch {
    let mut rng = rng(seed, index);
    let records: Vec<KeyValue> = (0..8)
        .map(|_| KeyValue::Session(session(&mut rng)))
        .collect();
    let mut batch = WriteBatch::new();
    for k in 0..BULK_SESSIONS {
        let id = format!("{prefix}b{}", (index * 700 + k) % (3 * BULK_SESSIONS));
        batch.put(KeyKind::Session, id, records[(k % 8) as usize].clone());
    }
    batch.put(
        KeyKind::LidMapping,
        format!("{prefix}counter"),
        KeyValue::LidMapping(index.to_string()),
    );
    batch
}

/// Where the pre-key ids of namespace `prefix` start (pre-key ids are numbers).
fn pre_key_base(prefix: &str) -> u32 {
    prefix.bytes().map(u32::from).sum::<u32>() * 1000
}

/// Applies `batch` to an in-memory model of a store.
pub fn apply(model: &mut Snapshot, batch: &WriteBatch) {
    if let Some(creds) = batch.creds() {
        model.creds = Some(creds.clone());
    }
    for (kind, id, value) in batch.entries() {
        match value {
            Some(value) => {
                model
                    .keys
                    .entry(kind.clone())
                    .or_default()
                    .insert(id.clone(), value.clone());
            }
            None => {
                if let Some(entries) = model.keys.get_mut(kind) {
                    entries.remove(id);
                    if entries.is_empty() {
                        model.keys.remove(kind);
                    }
                }
            }
        }
    }
}

/// The keys of `snapshot` whose id starts with `prefix` (pre-keys: in `prefix`'s id range).
pub fn namespace(
    snapshot: &Snapshot,
    prefix: &str,
) -> BTreeMap<KeyKind, BTreeMap<KeyId, KeyValue>> {
    let lo = pre_key_base(prefix);
    snapshot
        .keys
        .iter()
        .map(|(kind, entries)| {
            let entries: BTreeMap<KeyId, KeyValue> = entries
                .iter()
                .filter(|(id, _)| {
                    if *kind == KeyKind::PreKey {
                        id.as_str()
                            .parse::<u32>()
                            .is_ok_and(|n| (lo..lo + 1000).contains(&n))
                    } else {
                        id.as_str().starts_with(prefix)
                    }
                })
                .map(|(id, v)| (id.clone(), v.clone()))
                .collect();
            (kind.clone(), entries)
        })
        .filter(|(_, entries)| !entries.is_empty())
        .collect()
}

/// The counter a store (or model) holds for `prefix`: how many of its batches landed.
pub fn counter(snapshot: &Snapshot, prefix: &str) -> u64 {
    snapshot
        .keys
        .get(&KeyKind::LidMapping)
        .and_then(|m| m.get(&KeyId::new(format!("{prefix}counter"))))
        .map_or(0, |v| match v {
            KeyValue::LidMapping(n) => n.parse().expect("counter is a number"),
            other => panic!("counter holds {other:?}"),
        })
}
