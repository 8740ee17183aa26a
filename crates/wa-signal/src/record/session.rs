//! The session record: the typed model and its `RecordStructure` protobuf form.

use prost::Message;
use wa_proto::proto;
use wa_proto::proto::session_structure::chain;
#[cfg(test)]
use wa_proto::proto::session_structure::{Chain, PendingPreKey as ProtoPendingPreKey};

use super::{PreKeyId, SignedPreKeyId, invalid};
use crate::curve::{KeyPair, PrivateKey, PublicKey};
use crate::error::{Result, SignalError};
use crate::ratchet::{ChainKey, MAX_ARCHIVED_SESSIONS, MessageKeySeed, MessageKeys, RootKey};

const RECORD: &str = "session";

/// The Signal session version this profile speaks (the `0x33` message version).
pub const SESSION_VERSION: u32 = 3;

/// Who created a session's base key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BaseKeyType {
    /// We initiated the session from the peer's pre-key bundle (libsignal-node `1`, "OURS").
    Ours,
    /// The peer initiated it with a PreKeySignalMessage (libsignal-node `2`, "THEIRS").
    Theirs,
}

impl BaseKeyType {
    /// libsignal-node's number for it (1 ours, 2 theirs).
    pub const fn to_number(self) -> u32 {
        match self {
            Self::Ours => 1,
            Self::Theirs => 2,
        }
    }

    /// From libsignal-node's number.
    pub const fn from_number(n: u32) -> Option<Self> {
        match n {
            1 => Some(Self::Ours),
            2 => Some(Self::Theirs),
            _ => None,
        }
    }
}

/// The key material of a kept (skipped) message key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageKeyMaterial {
    /// The seed the keys derive from (what libsignal-node and this crate store).
    Seed(MessageKeySeed),
    /// Only the derived keys (what a standard libsignal record holds).
    Keys(MessageKeys),
}

impl MessageKeyMaterial {
    /// The message keys (derived from the seed when needed).
    pub fn keys(&self) -> MessageKeys {
        match self {
            Self::Seed(seed) => seed.derive(),
            Self::Keys(keys) => keys.clone(),
        }
    }
}

/// A message key kept for a message that has not arrived yet (out of order or late).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessageKey {
    /// The message counter it belongs to.
    pub index: u32,
    /// Its key material.
    pub material: MessageKeyMaterial,
}

/// One symmetric chain of a session.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChainState {
    /// The index of the next message key to derive (libsignal-node's `counter` + 1; protobuf's
    /// `ChainKey.index`).
    pub next_index: u32,
    /// The chain key for `next_index`; `None` for a retired receiving chain, which keeps only
    /// its stored message keys.
    pub key: Option<ChainKey>,
    /// Skipped message keys, oldest first.
    pub message_keys: Vec<StoredMessageKey>,
}

/// A receiving chain and the remote ratchet key it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverChain {
    /// The remote ratchet public key.
    pub ratchet_key: PublicKey,
    /// The chain.
    pub chain: ChainState,
}

/// The pre-key material an initiator repeats in every PreKeySignalMessage until the first
/// reply arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingPreKey {
    /// The peer's one-time pre-key we used, if the bundle had one.
    pub pre_key_id: Option<PreKeyId>,
    /// The peer's signed pre-key we used.
    pub signed_pre_key_id: SignedPreKeyId,
    /// Our base (ephemeral) key.
    pub base_key: PublicKey,
}

/// One Double Ratchet session with a remote device.
///
/// `Debug` is safe to log: every secret type in it prints as `<redacted>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    /// Our identity key, when known (standard field; libsignal-node's JSON does not store it).
    pub local_identity: Option<PublicKey>,
    /// Our registration id, when known (standard field; not in libsignal-node's JSON).
    pub local_registration_id: Option<u32>,
    /// The remote identity key.
    pub remote_identity: PublicKey,
    /// The remote registration id.
    pub remote_registration_id: u32,
    /// The current root key.
    pub root_key: RootKey,
    /// The index of the last message sent on our previous sending chain (0 when none).
    pub previous_counter: u32,
    /// Our current ratchet key pair.
    pub our_ratchet_key: KeyPair,
    /// The remote ratchet key we last stepped to (the remote signed pre-key while
    /// `pending_pre_key` is set). libsignal-node's `lastRemoteEphemeralKey`.
    pub their_ratchet_key: Option<PublicKey>,
    /// The sending chain, under `our_ratchet_key`.
    pub sender_chain: Option<ChainState>,
    /// Receiving chains, oldest first.
    pub receiver_chains: Vec<ReceiverChain>,
    /// Set while we initiated the session and no reply has arrived.
    pub pending_pre_key: Option<PendingPreKey>,
    /// The session's base key (the initiator's ephemeral key); identifies the session.
    pub base_key: PublicKey,
    /// Who created the base key.
    pub base_key_type: BaseKeyType,
    /// Creation time, ms since the Unix epoch.
    pub created: u64,
    /// Last use, ms since the Unix epoch.
    pub used: u64,
    /// When the session was closed (archived), ms since the Unix epoch; `None` while open.
    pub closed: Option<u64>,
}

impl SessionState {
    /// The receiving chain for a remote ratchet key.
    pub fn receiver_chain(&self, ratchet_key: &PublicKey) -> Option<&ReceiverChain> {
        self.receiver_chains
            .iter()
            .find(|c| &c.ratchet_key == ratchet_key)
    }

    /// The receiving chain for a remote ratchet key, mutably.
    pub fn receiver_chain_mut(&mut self, ratchet_key: &PublicKey) -> Option<&mut ReceiverChain> {
        self.receiver_chains
            .iter_mut()
            .find(|c| &c.ratchet_key == ratchet_key)
    }

    /// Whether this session can send (it has a sending chain with a key).
    pub fn can_send(&self) -> bool {
        self.sender_chain.as_ref().is_some_and(|c| c.key.is_some())
    }

    /// The owned protobuf form (the reference the direct encoder in `session_wire` is tested
    /// against).
    #[cfg(test)]
    fn to_proto(&self) -> proto::SessionStructure {
        let mut sender_chain = Chain {
            sender_ratchet_key: Some(self.our_ratchet_key.public.serialize().to_vec()),
            sender_ratchet_key_private: Some(self.our_ratchet_key.private.as_bytes().to_vec()),
            ..Default::default()
        };
        if let Some(chain) = &self.sender_chain {
            fill_chain(&mut sender_chain, chain);
        }
        proto::SessionStructure {
            session_version: Some(SESSION_VERSION),
            local_identity_public: self.local_identity.map(|k| k.serialize().to_vec()),
            remote_identity_public: Some(self.remote_identity.serialize().to_vec()),
            root_key: Some(self.root_key.as_bytes().to_vec()),
            previous_counter: Some(self.previous_counter),
            sender_chain: Some(sender_chain),
            receiver_chains: self
                .receiver_chains
                .iter()
                .map(|rc| {
                    let mut c = Chain {
                        sender_ratchet_key: Some(rc.ratchet_key.serialize().to_vec()),
                        ..Default::default()
                    };
                    fill_chain(&mut c, &rc.chain);
                    c
                })
                .collect(),
            pending_key_exchange: None,
            pending_pre_key: self.pending_pre_key.as_ref().map(|p| ProtoPendingPreKey {
                pre_key_id: p.pre_key_id.map(|id| id.0),
                // libsignal declares this field int32 (a Java int): the id travels as its
                // 32-bit pattern, which `from_proto` reads back, so every u32 round-trips
                // (WhatsApp's ids are 24-bit, but a bundle or an imported record may say more).
                signed_pre_key_id: Some(p.signed_pre_key_id.0 as i32),
                base_key: Some(p.base_key.serialize().to_vec()),
            }),
            remote_registration_id: Some(self.remote_registration_id),
            local_registration_id: self.local_registration_id,
            needs_refresh: None,
            alice_base_key: Some(self.base_key.serialize().to_vec()),
            last_remote_ratchet_key: self.their_ratchet_key.map(|k| k.serialize().to_vec()),
            base_key_type: Some(self.base_key_type.to_number()),
            created: Some(self.created),
            used: Some(self.used),
            closed: self.closed,
        }
    }

    fn from_proto(s: proto::SessionStructure) -> Result<Self> {
        if let Some(version) = s.session_version
            && version != SESSION_VERSION
        {
            return Err(invalid(
                RECORD,
                format!("unsupported session version {version}"),
            ));
        }
        let sender = s
            .sender_chain
            .ok_or_else(|| invalid(RECORD, "missing sender chain (our ratchet key)"))?;
        let our_public = public_key(sender.sender_ratchet_key.as_deref(), "sender ratchet key")?;
        let our_private = PrivateKey::from_slice(
            sender
                .sender_ratchet_key_private
                .as_deref()
                .ok_or_else(|| invalid(RECORD, "missing sender ratchet private key"))?,
        )
        .map_err(|e| invalid(RECORD, format!("sender ratchet private key: {e}")))?;
        // Stored halves are taken as they are (deriving the public key to compare costs a
        // scalar multiplication per session on every load); importers check pairs instead.
        let our_ratchet_key = KeyPair {
            public: our_public,
            private: our_private,
        };
        let sender_chain = if sender.chain_key.is_none() && sender.message_keys.is_empty() {
            None
        } else {
            Some(chain_from_proto(sender.chain_key, sender.message_keys)?)
        };
        let receiver_chains = s
            .receiver_chains
            .into_iter()
            .map(|c| {
                Ok(ReceiverChain {
                    ratchet_key: public_key(
                        c.sender_ratchet_key.as_deref(),
                        "receiver ratchet key",
                    )?,
                    chain: chain_from_proto(c.chain_key, c.message_keys)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pending_pre_key = s
            .pending_pre_key
            .map(|p| {
                let signed = p
                    .signed_pre_key_id
                    .ok_or_else(|| invalid(RECORD, "pending pre-key without signed pre-key id"))?;
                Ok::<_, SignalError>(PendingPreKey {
                    pre_key_id: p.pre_key_id.map(PreKeyId),
                    // The int32's bit pattern, as `to_proto` wrote it (a negative value is an id
                    // of 2^31 or more).
                    signed_pre_key_id: SignedPreKeyId(signed as u32),
                    base_key: public_key(p.base_key.as_deref(), "pending pre-key base key")?,
                })
            })
            .transpose()?;
        let base_key_type = match s.base_key_type {
            Some(n) => BaseKeyType::from_number(n)
                .ok_or_else(|| invalid(RECORD, format!("unknown base key type {n}")))?,
            None if pending_pre_key.is_some() => BaseKeyType::Ours,
            None => BaseKeyType::Theirs,
        };
        Ok(Self {
            local_identity: s
                .local_identity_public
                .as_deref()
                .map(|k| public_key(Some(k), "local identity"))
                .transpose()?,
            local_registration_id: s.local_registration_id,
            remote_identity: public_key(s.remote_identity_public.as_deref(), "remote identity")?,
            remote_registration_id: s.remote_registration_id.unwrap_or(0),
            root_key: RootKey::from_slice(
                s.root_key
                    .as_deref()
                    .ok_or_else(|| invalid(RECORD, "missing root key"))?,
            )
            .map_err(|e| invalid(RECORD, e.to_string()))?,
            previous_counter: s.previous_counter.unwrap_or(0),
            our_ratchet_key,
            their_ratchet_key: s
                .last_remote_ratchet_key
                .as_deref()
                .map(|k| public_key(Some(k), "last remote ratchet key"))
                .transpose()?,
            sender_chain,
            receiver_chains,
            pending_pre_key,
            base_key: public_key(s.alice_base_key.as_deref(), "base key")?,
            base_key_type,
            created: s.created.unwrap_or(0),
            used: s.used.unwrap_or(0),
            closed: s.closed,
        })
    }
}

fn public_key(bytes: Option<&[u8]>, what: &str) -> Result<PublicKey> {
    let bytes = bytes.ok_or_else(|| invalid(RECORD, format!("missing {what}")))?;
    PublicKey::from_signal_bytes(bytes).map_err(|e| invalid(RECORD, format!("{what}: {e}")))
}

#[cfg(test)]
fn fill_chain(out: &mut Chain, chain: &ChainState) {
    out.chain_key = Some(chain::ChainKey {
        index: Some(chain.next_index),
        key: chain.key.as_ref().map(|k| k.as_bytes().to_vec()),
    });
    out.message_keys = chain
        .message_keys
        .iter()
        .map(|mk| {
            let keys = mk.material.keys();
            chain::MessageKey {
                index: Some(mk.index),
                cipher_key: Some(keys.cipher_key.to_vec()),
                mac_key: Some(keys.mac_key.to_vec()),
                iv: Some(keys.iv.to_vec()),
                seed: match &mk.material {
                    MessageKeyMaterial::Seed(seed) => Some(seed.as_bytes().to_vec()),
                    MessageKeyMaterial::Keys(_) => None,
                },
            }
        })
        .collect();
}

fn chain_from_proto(
    chain_key: Option<chain::ChainKey>,
    message_keys: Vec<chain::MessageKey>,
) -> Result<ChainState> {
    let (next_index, key) = match chain_key {
        Some(ck) => (
            ck.index.unwrap_or(0),
            ck.key
                .as_deref()
                .map(ChainKey::from_slice)
                .transpose()
                .map_err(|e| invalid(RECORD, e.to_string()))?,
        ),
        None => (0, None),
    };
    let message_keys = message_keys
        .into_iter()
        .map(|mk| {
            let index = mk
                .index
                .ok_or_else(|| invalid(RECORD, "message key without index"))?;
            let material = match mk.seed.as_deref() {
                Some(seed) => MessageKeyMaterial::Seed(
                    MessageKeySeed::from_slice(seed).map_err(|e| invalid(RECORD, e.to_string()))?,
                ),
                None => {
                    let field = |v: Option<&[u8]>, what: &str, len: usize| -> Result<Vec<u8>> {
                        let v = v.ok_or_else(|| {
                            invalid(RECORD, format!("message key {index} without {what}"))
                        })?;
                        if v.len() != len {
                            return Err(invalid(
                                RECORD,
                                format!("message key {index}: {what} must be {len} bytes"),
                            ));
                        }
                        Ok(v.to_vec())
                    };
                    let mut keys = MessageKeys {
                        cipher_key: [0; 32],
                        mac_key: [0; 32],
                        iv: [0; 16],
                    };
                    keys.cipher_key.copy_from_slice(&field(
                        mk.cipher_key.as_deref(),
                        "cipher key",
                        32,
                    )?);
                    keys.mac_key
                        .copy_from_slice(&field(mk.mac_key.as_deref(), "MAC key", 32)?);
                    keys.iv.copy_from_slice(&field(mk.iv.as_deref(), "IV", 16)?);
                    MessageKeyMaterial::Keys(keys)
                }
            };
            Ok(StoredMessageKey { index, material })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ChainState {
        next_index,
        key,
        message_keys,
    })
}

/// All sessions with one remote device: the current (open) one and closed (archived) ones,
/// most recently closed first.
///
/// Stored as libsignal's `RecordStructure` (see [`SessionRecord::encode`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionRecord {
    current: Option<SessionState>,
    previous: Vec<SessionState>,
}

impl SessionRecord {
    /// A record with no session.
    pub fn new() -> Self {
        Self::default()
    }

    /// A record from its parts: the current session and the archived ones (most recent first).
    pub fn from_parts(current: Option<SessionState>, previous: Vec<SessionState>) -> Self {
        Self { current, previous }
    }

    /// The current (open) session.
    pub fn current(&self) -> Option<&SessionState> {
        self.current.as_ref()
    }

    /// The current session, mutably.
    pub fn current_mut(&mut self) -> Option<&mut SessionState> {
        self.current.as_mut()
    }

    /// The archived sessions, most recently closed first.
    pub fn previous(&self) -> &[SessionState] {
        &self.previous
    }

    /// The archived sessions, mutably.
    pub fn previous_mut(&mut self) -> &mut Vec<SessionState> {
        &mut self.previous
    }

    /// Whether a current (open) session exists.
    pub fn has_current_session(&self) -> bool {
        self.current.is_some()
    }

    /// How many closed sessions the record keeps.
    pub fn previous_session_count(&self) -> usize {
        self.previous.len()
    }

    /// Every session: the current one first, then the archived ones.
    pub fn sessions(&self) -> impl Iterator<Item = &SessionState> {
        self.current.iter().chain(self.previous.iter())
    }

    /// The session (current or archived) whose base key is `base_key`.
    pub fn session_by_base_key(&self, base_key: &PublicKey) -> Option<&SessionState> {
        self.sessions().find(|s| &s.base_key == base_key)
    }

    /// Makes `state` the current session; the previous current one is closed at `now_ms` and
    /// archived. At most [`MAX_ARCHIVED_SESSIONS`] archived sessions are kept (the oldest go).
    pub fn promote_state(&mut self, state: SessionState, now_ms: u64) {
        if let Some(mut old) = self.current.take() {
            old.closed = Some(now_ms);
            self.previous.insert(0, old);
        }
        self.previous.truncate(MAX_ARCHIVED_SESSIONS);
        self.current = Some(state);
    }

    /// Closes and archives the current session, if any (for example when the peer's identity
    /// changed and a new session must be built).
    pub fn archive_current_state(&mut self, now_ms: u64) {
        if let Some(mut old) = self.current.take() {
            old.closed = Some(now_ms);
            self.previous.insert(0, old);
            self.previous.truncate(MAX_ARCHIVED_SESSIONS);
        }
    }

    /// Fills our identity key and registration id into every session that lacks them (records
    /// read from libsignal-node's JSON do not store them; standard readers need them).
    pub fn fill_local_identity(&mut self, identity: &PublicKey, registration_id: u32) {
        for s in self.current.iter_mut().chain(self.previous.iter_mut()) {
            s.local_identity.get_or_insert(*identity);
            s.local_registration_id.get_or_insert(registration_id);
        }
    }

    /// Encodes as `RecordStructure` (with the extension fields documented in `signal.proto`).
    pub fn encode(&self) -> Vec<u8> {
        super::session_wire::encode_record(self.current.as_ref(), &self.previous)
    }

    /// The same bytes as [`SessionRecord::encode`], through the owned protobuf form (the
    /// reference the direct encoder is tested against).
    #[cfg(test)]
    fn encode_via_proto(&self) -> Vec<u8> {
        proto::RecordStructure {
            current_session: self.current.as_ref().map(SessionState::to_proto),
            previous_sessions: self.previous.iter().map(SessionState::to_proto).collect(),
        }
        .encode_to_vec()
    }

    /// Decodes a `RecordStructure`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let msg =
            proto::RecordStructure::decode(bytes).map_err(|e| invalid(RECORD, e.to_string()))?;
        Ok(Self {
            current: msg
                .current_session
                .map(SessionState::from_proto)
                .transpose()?,
            previous: msg
                .previous_sessions
                .into_iter()
                .map(SessionState::from_proto)
                .collect::<Result<Vec<_>>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(signed_pre_key_id: u32) -> SessionState {
        let key = |n: u8| KeyPair::from_private(PrivateKey::from_bytes([n; 32]));
        SessionState {
            local_identity: None,
            local_registration_id: None,
            remote_identity: key(1).public,
            remote_registration_id: 7,
            root_key: RootKey::from_bytes([2; 32]),
            previous_counter: 0,
            our_ratchet_key: key(3),
            their_ratchet_key: Some(key(4).public),
            sender_chain: Some(ChainState {
                next_index: 0,
                key: Some(ChainKey::from_bytes([5; 32])),
                message_keys: Vec::new(),
            }),
            receiver_chains: Vec::new(),
            pending_pre_key: Some(PendingPreKey {
                pre_key_id: Some(PreKeyId(u32::MAX)),
                signed_pre_key_id: SignedPreKeyId(signed_pre_key_id),
                base_key: key(6).public,
            }),
            base_key: key(6).public,
            base_key_type: BaseKeyType::Ours,
            created: 1,
            used: 2,
            closed: None,
        }
    }

    /// Found by the `record_use` fuzz target: a pending signed pre-key id of 2^31 or more was
    /// encoded as a negative int32 that decoding then refused, so the session could be stored
    /// but never loaded again.
    #[test]
    fn every_signed_pre_key_id_round_trips() {
        for id in [0, 1, 0xFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, u32::MAX] {
            let record = SessionRecord::from_parts(Some(state(id)), vec![state(id)]);
            let decoded = SessionRecord::decode(&record.encode()).expect("decodes");
            assert_eq!(decoded, record, "signed pre-key id {id:#x}");
        }
    }

    /// Every optional part present or absent, both kinds of message-key material, large
    /// varints: the direct encoder writes exactly what the owned protobuf form encodes to.
    #[test]
    fn direct_encoding_matches_the_protobuf_form() {
        use crate::ratchet::MessageKeySeed;
        let stored = |index: u32, seeded: bool| StoredMessageKey {
            index,
            material: if seeded {
                MessageKeyMaterial::Seed(MessageKeySeed::from_bytes([index as u8; 32]))
            } else {
                MessageKeyMaterial::Keys(MessageKeys {
                    cipher_key: [1; 32],
                    mac_key: [2; 32],
                    iv: [3; 16],
                })
            },
        };
        let mut records = vec![SessionRecord::new()];
        for variant in 0..8u32 {
            let mut s = state(variant.wrapping_mul(0x4000_0001));
            if variant & 1 == 1 {
                s.local_identity = Some(s.remote_identity);
                s.local_registration_id = Some(u32::MAX - variant);
                s.closed = Some(u64::MAX - u64::from(variant));
                s.pending_pre_key = None;
                s.their_ratchet_key = None;
            }
            if variant & 2 == 2 {
                s.sender_chain = None;
                s.previous_counter = 1 << 20;
            } else if let Some(chain) = &mut s.sender_chain {
                chain.message_keys = (0..3).map(|i| stored(i, i % 2 == 0)).collect();
            }
            if variant & 4 == 4 {
                s.receiver_chains = (0..5)
                    .map(|c| ReceiverChain {
                        ratchet_key: s.base_key,
                        chain: ChainState {
                            next_index: 300 * c,
                            key: (c % 2 == 0).then(|| ChainKey::from_bytes([c as u8; 32])),
                            // Enough keys for a chain longer than 127 bytes and 16383 bytes.
                            message_keys: (0..c * 60)
                                .map(|i| stored(i, (i + c) % 3 == 0))
                                .collect(),
                        },
                    })
                    .collect();
            }
            let archived = (0..variant).map(state).collect();
            records.push(SessionRecord::from_parts(Some(s.clone()), archived));
            records.push(SessionRecord::from_parts(None, vec![s]));
        }
        for (i, record) in records.iter().enumerate() {
            let direct = record.encode();
            assert_eq!(direct, record.encode_via_proto(), "record {i}");
            assert_eq!(
                &SessionRecord::decode(&direct).expect("decodes"),
                record,
                "record {i}"
            );
        }
    }

    /// A record written by libsignal with a negative int32 id reads as that id's bit pattern.
    #[test]
    fn negative_int32_signed_pre_key_id_reads_as_its_bit_pattern() {
        let mut proto = state(1).to_proto();
        proto
            .pending_pre_key
            .as_mut()
            .expect("pending pre-key")
            .signed_pre_key_id = Some(-1);
        let bytes = proto::RecordStructure {
            current_session: Some(proto),
            previous_sessions: Vec::new(),
        }
        .encode_to_vec();
        let record = SessionRecord::decode(&bytes).expect("decodes");
        let pending = record
            .current()
            .and_then(|s| s.pending_pre_key.as_ref())
            .expect("pending pre-key");
        assert_eq!(pending.signed_pre_key_id, SignedPreKeyId(u32::MAX));
    }
}
