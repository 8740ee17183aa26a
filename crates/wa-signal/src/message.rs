//! The wire messages: `SignalMessage` ("msg"), `PreKeySignalMessage` ("pkmsg"),
//! `SenderKeyMessage` ("skmsg") and `SenderKeyDistributionMessage` (SKDM).
//!
//! Each starts with the version byte `0x33`. A `SignalMessage` ends with an 8-byte truncated
//! HMAC-SHA256 over `sender identity (33) || receiver identity (33) || version || protobuf`; a
//! `SenderKeyMessage` ends with a 64-byte XEdDSA signature over everything before it.

use prost::Message;
use subtle::ConstantTimeEq;
use wa_proto::proto;

use crate::curve::{PrivateKey, PublicKey, SIGNATURE_LEN};
use crate::error::{Result, SignalError};
use crate::provider::CryptoRng;
use crate::ratchet::ChainKey;
use crate::record::{PreKeyId, SignedPreKeyId};
use crate::symmetric::hmac_sha256;

/// The message version byte: `(3 << 4) | 3`.
pub const MESSAGE_VERSION: u8 = 0x33;

/// Length of the truncated MAC at the end of a `SignalMessage`.
pub const MAC_LEN: usize = 8;

fn check_version(bytes: &[u8]) -> Result<()> {
    match bytes.first() {
        None => Err(SignalError::InvalidMessage("empty message".into())),
        Some(v) if v >> 4 == 3 => Ok(()),
        Some(v) => Err(SignalError::UnsupportedVersion(v >> 4)),
    }
}

fn required<T>(value: Option<T>, what: &str) -> Result<T> {
    value.ok_or_else(|| SignalError::InvalidMessage(format!("missing {what}")))
}

fn signal_key(bytes: Option<Vec<u8>>, what: &str) -> Result<PublicKey> {
    PublicKey::from_signal_bytes(&required(bytes, what)?)
        .map_err(|e| SignalError::InvalidMessage(format!("{what}: {e}")))
}

/// A Double Ratchet message (`msg`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalMessage {
    /// The sender's current ratchet key.
    pub ratchet_key: PublicKey,
    /// The message's index in its sending chain.
    pub counter: u32,
    /// The index of the last message of the sender's previous sending chain.
    pub previous_counter: u32,
    /// AES-256-CBC ciphertext.
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SignalMessage {
    /// Builds and MACs a message. `sender` and `receiver` are the identity keys.
    pub(crate) fn new(
        mac_key: &[u8; 32],
        sender: &PublicKey,
        receiver: &PublicKey,
        ratchet_key: PublicKey,
        counter: u32,
        previous_counter: u32,
        ciphertext: Vec<u8>,
    ) -> Self {
        let body = proto::SignalMessage {
            ratchet_key: Some(ratchet_key.serialize().to_vec()),
            counter: Some(counter),
            previous_counter: Some(previous_counter),
            ciphertext: Some(ciphertext.clone()),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len() + MAC_LEN);
        serialized.push(MESSAGE_VERSION);
        serialized.extend_from_slice(&body);
        let mac = compute_mac(mac_key, sender, receiver, &serialized);
        serialized.extend_from_slice(&mac);
        Self {
            ratchet_key,
            counter,
            previous_counter,
            ciphertext,
            serialized,
        }
    }

    /// Parses a serialized message (the MAC is checked later, by the session that decrypts it).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_version(bytes)?;
        if bytes.len() < 1 + MAC_LEN {
            return Err(SignalError::InvalidMessage(format!(
                "message of {} bytes is too short",
                bytes.len()
            )));
        }
        let body = &bytes[1..bytes.len() - MAC_LEN];
        let msg = proto::SignalMessage::decode(body)
            .map_err(|e| SignalError::InvalidMessage(format!("SignalMessage: {e}")))?;
        Ok(Self {
            ratchet_key: signal_key(msg.ratchet_key, "ratchet key")?,
            counter: required(msg.counter, "counter")?,
            previous_counter: msg.previous_counter.unwrap_or(0),
            ciphertext: required(msg.ciphertext, "ciphertext")?,
            serialized: bytes.to_vec(),
        })
    }

    /// The serialized bytes (version, protobuf, MAC).
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// Checks the MAC in constant time.
    pub(crate) fn verify_mac(
        &self,
        mac_key: &[u8; 32],
        sender: &PublicKey,
        receiver: &PublicKey,
    ) -> bool {
        let (content, mac) = self.serialized.split_at(self.serialized.len() - MAC_LEN);
        let expected = compute_mac(mac_key, sender, receiver, content);
        expected.ct_eq(mac).into()
    }
}

fn compute_mac(
    mac_key: &[u8; 32],
    sender: &PublicKey,
    receiver: &PublicKey,
    content: &[u8],
) -> [u8; MAC_LEN] {
    let full = hmac_sha256(
        mac_key,
        &[&sender.serialize(), &receiver.serialize(), content],
    );
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&full[..MAC_LEN]);
    mac
}

/// A session-opening message (`pkmsg`): X3DH parameters and the first `SignalMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    /// The sender's registration id.
    pub registration_id: u32,
    /// Our one-time pre-key the sender used, if any.
    pub pre_key_id: Option<PreKeyId>,
    /// Our signed pre-key the sender used.
    pub signed_pre_key_id: SignedPreKeyId,
    /// The sender's base (ephemeral) key.
    pub base_key: PublicKey,
    /// The sender's identity key.
    pub identity_key: PublicKey,
    /// The inner message.
    pub message: SignalMessage,
    serialized: Vec<u8>,
}

impl PreKeySignalMessage {
    pub(crate) fn new(
        registration_id: u32,
        pre_key_id: Option<PreKeyId>,
        signed_pre_key_id: SignedPreKeyId,
        base_key: PublicKey,
        identity_key: PublicKey,
        message: SignalMessage,
    ) -> Self {
        let body = proto::PreKeySignalMessage {
            registration_id: Some(registration_id),
            pre_key_id: pre_key_id.map(|id| id.0),
            signed_pre_key_id: Some(signed_pre_key_id.0),
            base_key: Some(base_key.serialize().to_vec()),
            identity_key: Some(identity_key.serialize().to_vec()),
            message: Some(message.serialized().to_vec()),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len());
        serialized.push(MESSAGE_VERSION);
        serialized.extend_from_slice(&body);
        Self {
            registration_id,
            pre_key_id,
            signed_pre_key_id,
            base_key,
            identity_key,
            message,
            serialized,
        }
    }

    /// Parses a serialized message.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_version(bytes)?;
        let msg = proto::PreKeySignalMessage::decode(&bytes[1..])
            .map_err(|e| SignalError::InvalidMessage(format!("PreKeySignalMessage: {e}")))?;
        Ok(Self {
            registration_id: msg.registration_id.unwrap_or(0),
            pre_key_id: msg.pre_key_id.map(PreKeyId),
            signed_pre_key_id: SignedPreKeyId(required(
                msg.signed_pre_key_id,
                "signed pre-key id",
            )?),
            base_key: signal_key(msg.base_key, "base key")?,
            identity_key: signal_key(msg.identity_key, "identity key")?,
            message: SignalMessage::parse(&required(msg.message, "inner message")?)?,
            serialized: bytes.to_vec(),
        })
    }

    /// The serialized bytes.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// What [`crate::cipher::encrypt`] produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CiphertextMessage {
    /// A session-opening message (while the session is pending): WhatsApp's `pkmsg`.
    PreKey(PreKeySignalMessage),
    /// A normal ratchet message: WhatsApp's `msg`.
    Whisper(SignalMessage),
}

impl CiphertextMessage {
    /// The bytes to send.
    pub fn serialized(&self) -> &[u8] {
        match self {
            Self::PreKey(m) => m.serialized(),
            Self::Whisper(m) => m.serialized(),
        }
    }

    /// WhatsApp's `enc` node type: `"pkmsg"` or `"msg"`.
    pub fn wa_type(&self) -> &'static str {
        match self {
            Self::PreKey(_) => "pkmsg",
            Self::Whisper(_) => "msg",
        }
    }
}

/// A group message (`skmsg`), signed by the sender's signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderKeyMessage {
    /// The sender-key id.
    pub key_id: u32,
    /// The chain iteration.
    pub iteration: u32,
    /// AES-256-CBC ciphertext.
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SenderKeyMessage {
    /// Builds and signs (with randomness from `rng`) a message.
    pub(crate) fn new<R: CryptoRng + ?Sized>(
        rng: &mut R,
        signing_key: &PrivateKey,
        key_id: u32,
        iteration: u32,
        ciphertext: Vec<u8>,
    ) -> Self {
        let body = proto::SenderKeyMessage {
            id: Some(key_id),
            iteration: Some(iteration),
            ciphertext: Some(ciphertext.clone()),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len() + SIGNATURE_LEN);
        serialized.push(MESSAGE_VERSION);
        serialized.extend_from_slice(&body);
        let signature = signing_key.sign(rng, &serialized);
        serialized.extend_from_slice(&signature);
        Self {
            key_id,
            iteration,
            ciphertext,
            serialized,
        }
    }

    /// Parses a serialized message (the signature is checked by [`Self::verify_signature`]).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_version(bytes)?;
        if bytes.len() < 1 + SIGNATURE_LEN {
            return Err(SignalError::InvalidMessage(format!(
                "sender-key message of {} bytes is too short",
                bytes.len()
            )));
        }
        let msg = proto::SenderKeyMessage::decode(&bytes[1..bytes.len() - SIGNATURE_LEN])
            .map_err(|e| SignalError::InvalidMessage(format!("SenderKeyMessage: {e}")))?;
        Ok(Self {
            key_id: required(msg.id, "sender key id")?,
            iteration: required(msg.iteration, "iteration")?,
            ciphertext: required(msg.ciphertext, "ciphertext")?,
            serialized: bytes.to_vec(),
        })
    }

    /// Whether the signature verifies with the sender's signing key.
    pub fn verify_signature(&self, signing_key: &PublicKey) -> bool {
        let (content, signature) = self
            .serialized
            .split_at(self.serialized.len() - SIGNATURE_LEN);
        signing_key.verify(content, signature)
    }

    /// The serialized bytes (version, protobuf, signature).
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// A sender-key distribution message: the chain key and signing key a group member needs to
/// decrypt our group messages from `iteration` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderKeyDistributionMessage {
    /// The sender-key id.
    pub key_id: u32,
    /// The iteration `chain_key` belongs to.
    pub iteration: u32,
    /// The chain key for `iteration` (secret; redacted in `Debug`).
    pub chain_key: ChainKey,
    /// The sender's signing public key.
    pub signing_key: PublicKey,
    serialized: Vec<u8>,
}

impl SenderKeyDistributionMessage {
    pub(crate) fn new(
        key_id: u32,
        iteration: u32,
        chain_key: ChainKey,
        signing_key: PublicKey,
    ) -> Self {
        let body = proto::SenderKeyDistributionMessage {
            id: Some(key_id),
            iteration: Some(iteration),
            chain_key: Some(chain_key.as_bytes().to_vec()),
            signing_key: Some(signing_key.serialize().to_vec()),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len());
        serialized.push(MESSAGE_VERSION);
        serialized.extend_from_slice(&body);
        Self {
            key_id,
            iteration,
            chain_key,
            signing_key,
            serialized,
        }
    }

    /// Parses a serialized message.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_version(bytes)?;
        let msg = proto::SenderKeyDistributionMessage::decode(&bytes[1..]).map_err(|e| {
            SignalError::InvalidMessage(format!("SenderKeyDistributionMessage: {e}"))
        })?;
        Ok(Self {
            key_id: required(msg.id, "sender key id")?,
            iteration: required(msg.iteration, "iteration")?,
            chain_key: ChainKey::from_slice(&required(msg.chain_key, "chain key")?)
                .map_err(|e| SignalError::InvalidMessage(format!("chain key: {e}")))?,
            signing_key: signal_key(msg.signing_key, "signing key")?,
            serialized: bytes.to_vec(),
        })
    }

    /// The serialized bytes.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}
