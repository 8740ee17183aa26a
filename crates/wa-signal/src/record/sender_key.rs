//! The sender-key record: typed states and the `SenderKeyRecordStructure` protobuf form.

use prost::Message;
use wa_proto::proto;
use wa_proto::proto::sender_key_state_structure::{
    SenderChainKey as ProtoChainKey, SenderMessageKey as ProtoMessageKey, SenderSigningKey,
};

use super::invalid;
use crate::curve::{PrivateKey, PublicKey};
use crate::error::Result;
use crate::ratchet::{ChainKey, MessageKeySeed};

const RECORD: &str = "sender-key";

/// The most states a sender-key record keeps (the oldest go).
pub const MAX_SENDER_KEY_STATES: usize = 5;

/// A kept sender message key (for a group message that has not arrived yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderMessageKey {
    /// The iteration it belongs to.
    pub iteration: u32,
    /// The seed, `HMAC-SHA256(chain key, 0x01)`, fed to the `"WhisperGroup"` derivation.
    pub seed: MessageKeySeed,
}

/// One sender-key chain of a (group, sender) pair.
///
/// `Debug` is safe to log: secrets print as `<redacted>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderKeyState {
    /// The key id (`senderKeyId`), chosen at random by the sender.
    pub key_id: u32,
    /// The iteration whose message key `chain_key` derives next.
    pub iteration: u32,
    /// The chain key for `iteration`.
    pub chain_key: ChainKey,
    /// The sender's signing public key.
    pub signing_public: PublicKey,
    /// The signing private key: present for our own sender key only.
    pub signing_private: Option<PrivateKey>,
    /// Kept message keys for iterations below `iteration`, oldest first.
    pub message_keys: Vec<SenderMessageKey>,
    /// Positions of blank `{}` entries in a stored Baileys 6 `senderMessageKeys` array (they
    /// carry no key). Kept only so an untouched record round-trips; cleared whenever the
    /// protocol changes `message_keys`.
    pub blank_message_key_slots: Vec<u32>,
}

impl SenderKeyState {
    fn to_proto(&self) -> proto::SenderKeyStateStructure {
        proto::SenderKeyStateStructure {
            sender_key_id: Some(self.key_id),
            sender_chain_key: Some(ProtoChainKey {
                iteration: Some(self.iteration),
                seed: Some(self.chain_key.as_bytes().to_vec()),
            }),
            sender_signing_key: Some(SenderSigningKey {
                public: Some(self.signing_public.serialize().to_vec()),
                private: self.signing_private.as_ref().map(|k| k.as_bytes().to_vec()),
            }),
            sender_message_keys: self
                .message_keys
                .iter()
                .map(|k| ProtoMessageKey {
                    iteration: Some(k.iteration),
                    seed: Some(k.seed.as_bytes().to_vec()),
                })
                .collect(),
            blank_message_key_slots: self.blank_message_key_slots.clone(),
        }
    }

    fn from_proto(s: proto::SenderKeyStateStructure) -> Result<Self> {
        let chain = s
            .sender_chain_key
            .ok_or_else(|| invalid(RECORD, "missing sender chain key"))?;
        let signing = s
            .sender_signing_key
            .ok_or_else(|| invalid(RECORD, "missing sender signing key"))?;
        let signing_public = PublicKey::from_signal_bytes(
            signing
                .public
                .as_deref()
                .ok_or_else(|| invalid(RECORD, "missing signing public key"))?,
        )
        .map_err(|e| invalid(RECORD, format!("signing public key: {e}")))?;
        let signing_private = match signing.private.as_deref() {
            None | Some([]) => None,
            Some(bytes) => Some(
                PrivateKey::from_slice(bytes)
                    .map_err(|e| invalid(RECORD, format!("signing private key: {e}")))?,
            ),
        };
        let message_keys = s
            .sender_message_keys
            .into_iter()
            .map(|k| {
                Ok(SenderMessageKey {
                    iteration: k
                        .iteration
                        .ok_or_else(|| invalid(RECORD, "message key without iteration"))?,
                    seed: MessageKeySeed::from_slice(
                        k.seed
                            .as_deref()
                            .ok_or_else(|| invalid(RECORD, "message key without seed"))?,
                    )
                    .map_err(|e| invalid(RECORD, e.to_string()))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            key_id: s
                .sender_key_id
                .ok_or_else(|| invalid(RECORD, "missing sender key id"))?,
            iteration: chain.iteration.unwrap_or(0),
            chain_key: ChainKey::from_slice(
                chain
                    .seed
                    .as_deref()
                    .ok_or_else(|| invalid(RECORD, "missing chain key seed"))?,
            )
            .map_err(|e| invalid(RECORD, e.to_string()))?,
            signing_public,
            signing_private,
            message_keys,
            blank_message_key_slots: s.blank_message_key_slots,
        })
    }
}

/// The sender-key states of one (group, sender) pair, oldest first, newest last (Baileys'
/// order), at most [`MAX_SENDER_KEY_STATES`].
///
/// Stored as libsignal's `SenderKeyRecordStructure`, whose convention is newest FIRST: the
/// protobuf form lists the states in reverse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SenderKeyRecord {
    states: Vec<SenderKeyState>,
}

impl SenderKeyRecord {
    /// A record with no state.
    pub fn new() -> Self {
        Self::default()
    }

    /// A record from its states, oldest first.
    pub fn from_states(states: Vec<SenderKeyState>) -> Self {
        Self { states }
    }

    /// The states, oldest first.
    pub fn states(&self) -> &[SenderKeyState] {
        &self.states
    }

    /// The states, mutably.
    pub fn states_mut(&mut self) -> &mut Vec<SenderKeyState> {
        &mut self.states
    }

    /// How many states the record holds.
    pub fn state_count(&self) -> usize {
        self.states.len()
    }

    /// Whether the record holds no state.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The newest state (the one used to send).
    pub fn newest(&self) -> Option<&SenderKeyState> {
        self.states.last()
    }

    /// The state with key id `key_id` (the oldest such, should there be several: Baileys
    /// appends a duplicate state when an SKDM is processed twice and keeps using the first).
    pub fn state_by_id(&self, key_id: u32) -> Option<&SenderKeyState> {
        self.states.iter().find(|s| s.key_id == key_id)
    }

    /// The state with key id `key_id`, mutably (see [`Self::state_by_id`]).
    pub fn state_by_id_mut(&mut self, key_id: u32) -> Option<&mut SenderKeyState> {
        self.states.iter_mut().find(|s| s.key_id == key_id)
    }

    /// Adds a state as the newest, dropping the oldest beyond [`MAX_SENDER_KEY_STATES`].
    pub fn add_state(&mut self, state: SenderKeyState) {
        self.states.push(state);
        if self.states.len() > MAX_SENDER_KEY_STATES {
            let excess = self.states.len() - MAX_SENDER_KEY_STATES;
            self.states.drain(..excess);
        }
    }

    /// Encodes as `SenderKeyRecordStructure` (newest state first, libsignal's order).
    pub fn encode(&self) -> Vec<u8> {
        proto::SenderKeyRecordStructure {
            sender_key_states: self
                .states
                .iter()
                .rev()
                .map(SenderKeyState::to_proto)
                .collect(),
        }
        .encode_to_vec()
    }

    /// Decodes a `SenderKeyRecordStructure`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let msg = proto::SenderKeyRecordStructure::decode(bytes)
            .map_err(|e| invalid(RECORD, e.to_string()))?;
        let mut states = msg
            .sender_key_states
            .into_iter()
            .map(SenderKeyState::from_proto)
            .collect::<Result<Vec<_>>>()?;
        states.reverse();
        Ok(Self { states })
    }
}
