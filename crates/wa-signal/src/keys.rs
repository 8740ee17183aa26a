//! Account key helpers: identity key pair, registration id, one-time and signed pre-keys. Each
//! draws its randomness from the generator it is given (see [`provider`](crate::provider)).

use rand::RngExt;

use crate::curve::KeyPair;
use crate::provider::CryptoRng;
use crate::record::{PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord};

/// The largest pre-key id (ids are 24-bit and never 0).
pub const MAX_PRE_KEY_ID: u32 = 0x00FF_FFFF;

/// The largest registration id (14-bit).
pub const MAX_REGISTRATION_ID: u32 = 0x3FFF;

/// A fresh identity key pair.
pub fn generate_identity_key_pair<R: CryptoRng + ?Sized>(rng: &mut R) -> KeyPair {
    KeyPair::generate(rng)
}

/// A fresh registration id: random, 14-bit, never 0.
pub fn generate_registration_id<R: CryptoRng + ?Sized>(rng: &mut R) -> u32 {
    rng.random_range(1..=MAX_REGISTRATION_ID)
}

/// The pre-key id after `id`, wrapping from [`MAX_PRE_KEY_ID`] back to 1.
pub fn next_pre_key_id(id: PreKeyId) -> PreKeyId {
    PreKeyId(if id.0 >= MAX_PRE_KEY_ID { 1 } else { id.0 + 1 })
}

/// `count` fresh one-time pre-keys with consecutive ids from `start` (wrapping past
/// [`MAX_PRE_KEY_ID`] to 1; an out-of-range `start` is brought into range first).
pub fn generate_pre_keys<R: CryptoRng + ?Sized>(
    rng: &mut R,
    start: PreKeyId,
    count: u32,
) -> Vec<PreKeyRecord> {
    let mut id = match start.0 {
        0 => PreKeyId(1),
        n => PreKeyId(((n - 1) % MAX_PRE_KEY_ID) + 1),
    };
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        out.push(PreKeyRecord {
            id,
            key_pair: KeyPair::generate(rng),
        });
        id = next_pre_key_id(id);
    }
    out
}

/// A fresh signed pre-key: a key pair signed by `identity` over `0x05 || public`.
pub fn generate_signed_pre_key<R: CryptoRng + ?Sized>(
    rng: &mut R,
    identity: &KeyPair,
    id: SignedPreKeyId,
    timestamp_ms: u64,
) -> SignedPreKeyRecord {
    let key_pair = KeyPair::generate(rng);
    let signature = identity.sign(rng, &key_pair.public.serialize());
    SignedPreKeyRecord {
        id,
        key_pair,
        signature,
        timestamp: timestamp_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::TestProvider;

    #[test]
    fn registration_ids_are_14_bit_and_non_zero() {
        let rng = &mut TestProvider::new(1);
        for _ in 0..1000 {
            let id = generate_registration_id(rng);
            assert!((1..=MAX_REGISTRATION_ID).contains(&id));
        }
    }

    #[test]
    fn pre_key_batches_wrap_at_24_bits() {
        let rng = &mut TestProvider::new(2);
        let keys = generate_pre_keys(rng, PreKeyId(MAX_PRE_KEY_ID - 1), 4);
        let ids: Vec<u32> = keys.iter().map(|k| k.id.0).collect();
        assert_eq!(ids, [MAX_PRE_KEY_ID - 1, MAX_PRE_KEY_ID, 1, 2]);
        assert_eq!(generate_pre_keys(rng, PreKeyId(0), 1)[0].id, PreKeyId(1));
        assert_eq!(
            generate_pre_keys(rng, PreKeyId(MAX_PRE_KEY_ID + 1), 1)[0].id,
            PreKeyId(1)
        );
        assert_ne!(keys[0].key_pair, keys[1].key_pair);
    }

    #[test]
    fn signed_pre_keys_verify() {
        let rng = &mut TestProvider::new(3);
        let identity = generate_identity_key_pair(rng);
        let spk = generate_signed_pre_key(rng, &identity, SignedPreKeyId(1), 1);
        assert!(spk.verify(&identity.public));
        assert!(!spk.verify(&generate_identity_key_pair(rng).public));
    }
}
