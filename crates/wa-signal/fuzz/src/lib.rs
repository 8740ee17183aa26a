//! Shared pieces of the fuzz targets: fixed keys (runs must be deterministic, so nothing here
//! draws from the OS RNG), a blocking executor for the async store API, a record consistency
//! check, and builders of typed records from fuzz input, which reach the protocol code that
//! raw bytes rarely get past the decoders to.

#![forbid(unsafe_code)]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use wa_signal::curve::{KeyPair, PrivateKey, PublicKey};
use wa_signal::ratchet::{ChainKey, MessageKeySeed, MessageKeys, RootKey};
use wa_signal::record::{
    BaseKeyType, ChainState, MessageKeyMaterial, PendingPreKey, PreKeyId, ReceiverChain,
    SenderKeyState, SenderMessageKey, SessionState, SignedPreKeyId, StoredMessageKey,
};

pub use futures::executor::block_on;

/// A fixed key pair: private key `[n; 32]`.
pub fn key_pair(n: u8) -> KeyPair {
    KeyPair::from_private(PrivateKey::from_bytes([n; 32]))
}

/// `decode(encode(record)) == record`, and encoding is then a fixed point.
pub fn assert_round_trip<R, E>(
    record: &R,
    encode: impl Fn(&R) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> std::result::Result<R, E>,
) where
    R: PartialEq + std::fmt::Debug,
    E: std::fmt::Debug,
{
    let encoded = encode(record);
    let decoded = decode(&encoded).expect("an encoded record decodes");
    assert_eq!(&decoded, record, "decode(encode(record)) != record");
    assert_eq!(encode(&decoded), encoded, "encoding is not stable");
}

/// One of a few fixed public keys (whose private halves other fixed pairs know), or any 32
/// bytes.
pub fn public_key(u: &mut Unstructured<'_>) -> Result<PublicKey> {
    Ok(match u.int_in_range(0u8..=4)? {
        4 => PublicKey::from_raw(u.arbitrary()?),
        n => key_pair(n + 1).public,
    })
}

/// A fixed key pair, or one whose halves do not match (stored halves are taken as they are).
pub fn any_key_pair(u: &mut Unstructured<'_>) -> Result<KeyPair> {
    Ok(if u.ratio(7u8, 8)? {
        key_pair(u.int_in_range(1u8..=4)?)
    } else {
        KeyPair {
            public: public_key(u)?,
            private: PrivateKey::from_bytes(u.arbitrary()?),
        }
    })
}

/// A `u32` that is often at an edge (0, 1, around the ratchet bounds, the type's top).
pub fn counter(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => u.int_in_range(0..=8)?,
        1 => u.int_in_range(1990..=2010)?,
        2 => u32::MAX - u.int_in_range(0..=4)?,
        _ => u.arbitrary()?,
    })
}

fn chain_state(u: &mut Unstructured<'_>) -> Result<ChainState> {
    let next_index = counter(u)?;
    let key = if u.ratio(7u8, 8)? {
        Some(ChainKey::from_bytes(u.arbitrary()?))
    } else {
        None
    };
    let count = u.int_in_range(0..=4)?;
    let mut message_keys = Vec::with_capacity(count);
    for _ in 0..count {
        let index = if u.arbitrary()? {
            next_index.wrapping_sub(u.int_in_range(0..=3)?)
        } else {
            counter(u)?
        };
        let material = if u.arbitrary()? {
            MessageKeyMaterial::Seed(MessageKeySeed::from_bytes(u.arbitrary()?))
        } else {
            MessageKeyMaterial::Keys(MessageKeys {
                cipher_key: u.arbitrary()?,
                mac_key: u.arbitrary()?,
                iv: u.arbitrary()?,
            })
        };
        message_keys.push(StoredMessageKey { index, material });
    }
    Ok(ChainState {
        next_index,
        key,
        message_keys,
    })
}

/// A session state with fuzz-chosen keys, counters and chains.
pub fn session_state(u: &mut Unstructured<'_>) -> Result<SessionState> {
    let receiver_count = u.int_in_range(0..=6)?;
    let mut receiver_chains = Vec::with_capacity(receiver_count);
    for _ in 0..receiver_count {
        receiver_chains.push(ReceiverChain {
            ratchet_key: public_key(u)?,
            chain: chain_state(u)?,
        });
    }
    Ok(SessionState {
        local_identity: if u.arbitrary()? {
            Some(public_key(u)?)
        } else {
            None
        },
        local_registration_id: u.arbitrary()?,
        remote_identity: public_key(u)?,
        remote_registration_id: u.arbitrary()?,
        root_key: RootKey::from_bytes(u.arbitrary()?),
        previous_counter: counter(u)?,
        our_ratchet_key: any_key_pair(u)?,
        their_ratchet_key: if u.arbitrary()? {
            Some(public_key(u)?)
        } else {
            None
        },
        sender_chain: if u.ratio(3u8, 4)? {
            Some(chain_state(u)?)
        } else {
            None
        },
        receiver_chains,
        pending_pre_key: if u.arbitrary()? {
            Some(PendingPreKey {
                pre_key_id: u.arbitrary::<Option<u32>>()?.map(PreKeyId),
                signed_pre_key_id: SignedPreKeyId(u.arbitrary()?),
                base_key: public_key(u)?,
            })
        } else {
            None
        },
        base_key: public_key(u)?,
        base_key_type: if u.arbitrary()? {
            BaseKeyType::Ours
        } else {
            BaseKeyType::Theirs
        },
        created: u.arbitrary()?,
        used: u.arbitrary()?,
        closed: u.arbitrary()?,
    })
}

/// A sender-key state with fuzz-chosen id, iteration, keys and kept message keys.
pub fn sender_key_state(u: &mut Unstructured<'_>) -> Result<SenderKeyState> {
    let iteration = counter(u)?;
    let signing = any_key_pair(u)?;
    let count = u.int_in_range(0..=4)?;
    let mut message_keys = Vec::with_capacity(count);
    for _ in 0..count {
        let key_iteration = if u.arbitrary()? {
            iteration.wrapping_sub(u.int_in_range(0..=3)?)
        } else {
            counter(u)?
        };
        message_keys.push(SenderMessageKey {
            iteration: key_iteration,
            seed: MessageKeySeed::from_bytes(u.arbitrary()?),
        });
    }
    let blank_count = u.int_in_range(0..=2)?;
    let mut blank_message_key_slots = Vec::with_capacity(blank_count);
    for _ in 0..blank_count {
        blank_message_key_slots.push(u.int_in_range(0..=8)?);
    }
    Ok(SenderKeyState {
        key_id: u.arbitrary()?,
        iteration,
        chain_key: ChainKey::from_bytes(u.arbitrary()?),
        signing_public: signing.public,
        signing_private: if u.ratio(3u8, 4)? {
            Some(signing.private)
        } else {
            None
        },
        message_keys,
        blank_message_key_slots,
    })
}
