//! Stored Signal records and their exact protobuf forms (libsignal's local-storage messages).
//!
//! - [`PreKeyRecord`], [`SignedPreKeyRecord`]: key pairs with their ids.
//! - [`SessionRecord`]: the current and archived Double Ratchet sessions with one device, as a
//!   typed model ([`SessionState`], [`ChainState`], [`StoredMessageKey`], ...). It holds
//!   everything libsignal-node's "v1" JSON holds (Baileys' format), so that JSON round-trips
//!   through it; what the standard `SessionStructure` lacks travels in extension fields >= 100.
//! - [`SenderKeyRecord`]: the sender-key states of one (group, sender) pair.

mod sender_key;
mod session;
mod session_wire;

pub use sender_key::{MAX_SENDER_KEY_STATES, SenderKeyRecord, SenderKeyState, SenderMessageKey};
pub use session::{
    BaseKeyType, ChainState, MessageKeyMaterial, PendingPreKey, ReceiverChain, SessionRecord,
    SessionState, StoredMessageKey,
};

use prost::Message;
use wa_proto::proto;

use crate::curve::{KeyPair, PrivateKey, PublicKey, SIGNATURE_LEN, Signature};
use crate::error::{Result, SignalError};

/// A one-time pre-key id (24-bit on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PreKeyId(pub u32);

/// A signed pre-key id (24-bit on the wire; WhatsApp's first one is 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignedPreKeyId(pub u32);

pub(crate) fn invalid(record: &'static str, reason: impl Into<String>) -> SignalError {
    SignalError::InvalidRecord {
        record,
        reason: reason.into(),
    }
}

fn decode_key_pair(
    record: &'static str,
    public: Option<&[u8]>,
    private: Option<&[u8]>,
) -> Result<KeyPair> {
    let public =
        PublicKey::from_slice(public.ok_or_else(|| invalid(record, "missing public key"))?)
            .map_err(|e| invalid(record, e.to_string()))?;
    let private =
        PrivateKey::from_slice(private.ok_or_else(|| invalid(record, "missing private key"))?)
            .map_err(|e| invalid(record, e.to_string()))?;
    KeyPair::from_parts(public, private).map_err(|e| invalid(record, e.to_string()))
}

/// A one-time pre-key: its id and key pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyRecord {
    /// The pre-key id.
    pub id: PreKeyId,
    /// The key pair.
    pub key_pair: KeyPair,
}

impl PreKeyRecord {
    /// Encodes as `PreKeyRecordStructure` (public key Signal-serialised).
    pub fn encode(&self) -> Vec<u8> {
        proto::PreKeyRecordStructure {
            id: Some(self.id.0),
            public_key: Some(self.key_pair.public.serialize().to_vec()),
            private_key: Some(self.key_pair.private.as_bytes().to_vec()),
        }
        .encode_to_vec()
    }

    /// Decodes a `PreKeyRecordStructure`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let msg = proto::PreKeyRecordStructure::decode(bytes)
            .map_err(|e| invalid("pre-key", e.to_string()))?;
        let id = msg.id.ok_or_else(|| invalid("pre-key", "missing id"))?;
        let key_pair = decode_key_pair(
            "pre-key",
            msg.public_key.as_deref(),
            msg.private_key.as_deref(),
        )?;
        Ok(Self {
            id: PreKeyId(id),
            key_pair,
        })
    }
}

/// A signed pre-key: id, key pair, the identity key's XEdDSA signature over `0x05 || public`,
/// and its creation time (ms since the Unix epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedPreKeyRecord {
    /// The signed pre-key id.
    pub id: SignedPreKeyId,
    /// The key pair.
    pub key_pair: KeyPair,
    /// The identity key's signature over the Signal-serialised public key.
    pub signature: Signature,
    /// Creation time, milliseconds since the Unix epoch (0 when unknown).
    pub timestamp: u64,
}

impl SignedPreKeyRecord {
    /// Encodes as `SignedPreKeyRecordStructure`.
    pub fn encode(&self) -> Vec<u8> {
        proto::SignedPreKeyRecordStructure {
            id: Some(self.id.0),
            public_key: Some(self.key_pair.public.serialize().to_vec()),
            private_key: Some(self.key_pair.private.as_bytes().to_vec()),
            signature: Some(self.signature.to_vec()),
            timestamp: Some(self.timestamp),
        }
        .encode_to_vec()
    }

    /// Decodes a `SignedPreKeyRecordStructure`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let msg = proto::SignedPreKeyRecordStructure::decode(bytes)
            .map_err(|e| invalid("signed pre-key", e.to_string()))?;
        let id = msg
            .id
            .ok_or_else(|| invalid("signed pre-key", "missing id"))?;
        let key_pair = decode_key_pair(
            "signed pre-key",
            msg.public_key.as_deref(),
            msg.private_key.as_deref(),
        )?;
        let signature = msg.signature.as_deref().unwrap_or_default();
        let signature: Signature = signature.try_into().map_err(|_| {
            invalid(
                "signed pre-key",
                format!(
                    "signature must be {SIGNATURE_LEN} bytes, got {}",
                    signature.len()
                ),
            )
        })?;
        Ok(Self {
            id: SignedPreKeyId(id),
            key_pair,
            signature,
            timestamp: msg.timestamp.unwrap_or(0),
        })
    }

    /// Whether `signature` is the given identity key's valid signature over this pre-key.
    pub fn verify(&self, identity: &PublicKey) -> bool {
        identity.verify(&self.key_pair.public.serialize(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::TestProvider;

    #[test]
    fn pre_key_records_round_trip() {
        let record = PreKeyRecord {
            id: PreKeyId(77),
            key_pair: KeyPair::generate(&mut TestProvider::new(1)),
        };
        assert_eq!(PreKeyRecord::decode(&record.encode()).unwrap(), record);
    }

    #[test]
    fn signed_pre_key_records_round_trip_and_verify() {
        let rng = &mut TestProvider::new(2);
        let identity = KeyPair::generate(rng);
        let key_pair = KeyPair::generate(rng);
        let signature = identity.sign(rng, &key_pair.public.serialize());
        let record = SignedPreKeyRecord {
            id: SignedPreKeyId(1),
            key_pair,
            signature,
            timestamp: 1_700_000_000_000,
        };
        let decoded = SignedPreKeyRecord::decode(&record.encode()).unwrap();
        assert_eq!(decoded, record);
        assert!(decoded.verify(&identity.public));
        assert!(!decoded.verify(&KeyPair::generate(rng).public));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(PreKeyRecord::decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(SessionRecord::decode(&[0x0a, 0x05, 0x01]).is_err());
        assert!(SenderKeyRecord::decode(&[0x0a, 0x05, 0x01]).is_err());
        assert!(PreKeyRecord::decode(&[]).is_err());
    }
}
