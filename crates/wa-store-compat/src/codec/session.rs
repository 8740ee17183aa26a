//! libsignal-node's "v1" session JSON (Baileys `session-<id>.json`) <-> [`SessionRecord`].
//!
//! ```json
//! {"_sessions": {"<b64 base key>": {
//!    "registrationId": 78,
//!    "currentRatchet": {"ephemeralKeyPair": {"pubKey": "<b64 33>", "privKey": "<b64 32>"},
//!                       "lastRemoteEphemeralKey": "<b64 33>", "previousCounter": 0,
//!                       "rootKey": "<b64 32>"},
//!    "indexInfo": {"baseKey": "<b64 33>", "baseKeyType": 2, "closed": -1, "used": 1795456998557,
//!                  "created": 1795456998123, "remoteIdentityKey": "<b64 33>"},
//!    "_chains": {"<b64 ratchet key>": {"chainKey": {"counter": 3, "key": "<b64 32>"},
//!                                      "chainType": 2, "messageKeys": {"1": "<b64 seed>"}}},
//!    "pendingPreKey": {"signedKeyId": 1, "baseKey": "<b64 33>", "preKeyId": 4}}},
//!  "version": "v1"}
//! ```
//!
//! Conventions: `chainKey.counter` is the index of the LAST derived key (-1 fresh), the
//! record's [`ChainState::next_index`] is the next one (`counter + 1`); a chain without `key` is
//! a retired receiving chain; `chainType` 1 is the sending chain (under our current ratchet
//! key), 2 a receiving one; `baseKeyType` 1 = we initiated, 2 = they did; `closed` -1 = open.
//! The open session becomes the record's current one; closed ones are archived, most recently
//! closed first.
//!
//! Two things a standard libsignal record can hold have no place in libsignal-node's form; they
//! are written as *extension fields*, which libsignal-node ignores when it reads the file (and
//! drops when it rewrites it), so nothing is lost on our side and Baileys still reads the file:
//!
//! - our identity key and registration id of a session (`"localIdentityKey"`: base64 of the
//!   33-byte key, `"localRegistrationId"`: a number), next to `registrationId`, written only
//!   when the record has them (sessions read from libsignal-node's JSON do not; sessions this
//!   implementation creates do). They are never filled in from the creds: a record reads back
//!   exactly as it was written (see [`SessionRecord::fill_local_identity`] for readers that
//!   need them);
//! - a skipped message key known only by its derived keys (from a standard libsignal record,
//!   where libsignal-node keeps seeds): `"messageKeysDerived": {"<counter>": {"cipherKey",
//!   "macKey", "iv"}}` in its chain, next to `messageKeys`. libsignal-node cannot use such a
//!   key, so a message that needs it can only be decrypted by this implementation.
//!
//! Message keys are read back ordered by counter when a chain has derived ones (libsignal-node
//! writes `messageKeys` in counter order anyway).

use serde_json::{Map, Value};
use wa_signal::ratchet::{MessageKeys, RootKey};
use wa_signal::record::{
    BaseKeyType, ChainState, MessageKeyMaterial, PendingPreKey, PreKeyId, ReceiverChain,
    SessionRecord, SessionState, SignedPreKeyId, StoredMessageKey,
};
use wa_signal::{KeyPair, PublicKey};

use super::buffer_json::{decode_base64, encode_base64};
use super::error::{CompatError, Result};
use super::value::{
    chain_key, in_range, integer, join, mismatch, object, optional, private_key, required,
    root_key, seed, signal_public_key, u32_field,
};

/// The only session format version libsignal-node writes.
pub const VERSION: &str = "v1";

/// Extension field: our identity key of a session (not written by libsignal-node).
const EXT_LOCAL_IDENTITY: &str = "localIdentityKey";
/// Extension field: our registration id of a session (not written by libsignal-node).
const EXT_LOCAL_REGISTRATION_ID: &str = "localRegistrationId";
/// Extension field of a chain: message keys known only by their derived keys.
const EXT_DERIVED_KEYS: &str = "messageKeysDerived";

const CHAIN_SENDING: i64 = 1;
const CHAIN_RECEIVING: i64 = 2;

/// Reads a session file's JSON value.
pub fn from_json(value: &Value) -> Result<SessionRecord> {
    let root = object(value, "")?;
    let version = required(root, "", "version")?;
    if version.as_str() != Some(VERSION) {
        return Err(CompatError::InvalidValue {
            path: "/version".into(),
            reason: format!("unsupported session format version {version}"),
        });
    }
    let sessions = object(required(root, "", "_sessions")?, "/_sessions")?;
    let mut current = None;
    let mut previous = Vec::new();
    for (key, session) in sessions {
        let path = join("/_sessions", key);
        let state = state_from_json(session, &path)?;
        let key_bytes = decode_base64(key, &path)?;
        if key_bytes != state.base_key.serialize() {
            return Err(mismatch(
                &path,
                "session key differs from indexInfo.baseKey",
            ));
        }
        if state.closed.is_none() && current.is_none() {
            current = Some(state);
        } else {
            previous.push(state);
        }
    }
    previous.sort_by_key(|s| std::cmp::Reverse(s.closed.unwrap_or(u64::MAX)));
    Ok(SessionRecord::from_parts(current, previous))
}

/// Writes a record as a session file's JSON value, with every field the record has
/// (see the module docs for the extension fields).
pub fn to_json(record: &SessionRecord) -> Result<Value> {
    // libsignal-node keeps sessions in the order it created them (oldest first).
    let mut states: Vec<&SessionState> = record.sessions().collect();
    states.sort_by_key(|s| s.created);
    let mut sessions = Map::new();
    for state in states {
        sessions.insert(
            encode_base64(&state.base_key.serialize()),
            state_to_json(state)?,
        );
    }
    let mut root = Map::new();
    root.insert("_sessions".into(), Value::Object(sessions));
    root.insert("version".into(), Value::from(VERSION));
    Ok(Value::Object(root))
}

fn state_from_json(value: &Value, path: &str) -> Result<SessionState> {
    let obj = object(value, path)?;
    let ratchet = ratchet_from_json(obj, path)?;
    let index = index_from_json(obj, path)?;
    let (sender_chain, receiver_chains) =
        chains_from_json(obj, path, &ratchet.our_ratchet_key.public)?;
    let local_identity = optional(obj, EXT_LOCAL_IDENTITY)
        .map(|v| signal_public_key(v, &join(path, EXT_LOCAL_IDENTITY)))
        .transpose()?;
    let local_registration_id = optional(obj, EXT_LOCAL_REGISTRATION_ID)
        .map(|v| {
            in_range(
                v,
                &join(path, EXT_LOCAL_REGISTRATION_ID),
                "a registration id",
            )
        })
        .transpose()?;
    Ok(SessionState {
        local_identity,
        local_registration_id,
        remote_identity: index.remote_identity,
        remote_registration_id: u32_field(obj, path, "registrationId")?,
        root_key: ratchet.root,
        previous_counter: ratchet.previous_counter,
        our_ratchet_key: ratchet.our_ratchet_key,
        their_ratchet_key: ratchet.their_ratchet_key,
        sender_chain,
        receiver_chains,
        pending_pre_key: pending_pre_key_from_json(obj, path)?,
        base_key: index.base_key,
        base_key_type: index.base_key_type,
        created: index.created,
        used: index.used,
        closed: index.closed,
    })
}

/// A session's `currentRatchet`.
struct Ratchet {
    our_ratchet_key: KeyPair,
    their_ratchet_key: Option<PublicKey>,
    previous_counter: u32,
    root: RootKey,
}

fn ratchet_from_json(obj: &Map<String, Value>, path: &str) -> Result<Ratchet> {
    let ratchet_path = join(path, "currentRatchet");
    let ratchet = object(required(obj, path, "currentRatchet")?, &ratchet_path)?;
    let pair_path = join(&ratchet_path, "ephemeralKeyPair");
    let pair = object(
        required(ratchet, &ratchet_path, "ephemeralKeyPair")?,
        &pair_path,
    )?;
    let our_public = signal_public_key(
        required(pair, &pair_path, "pubKey")?,
        &join(&pair_path, "pubKey"),
    )?;
    let our_private = private_key(
        required(pair, &pair_path, "privKey")?,
        &join(&pair_path, "privKey"),
    )?;
    // Taken as stored, as the protobuf form is: checking that the halves match costs a scalar
    // multiplication per session on every load (a folder of 10 000 sessions would spend most
    // of its load time there). Pre-keys and creds key pairs are checked.
    let our_ratchet_key = KeyPair {
        public: our_public,
        private: our_private,
    };
    let their_ratchet_key = optional(ratchet, "lastRemoteEphemeralKey")
        .map(|v| signal_public_key(v, &join(&ratchet_path, "lastRemoteEphemeralKey")))
        .transpose()?;
    let previous_counter = u32_field(ratchet, &ratchet_path, "previousCounter")?;
    let root = root_key(
        required(ratchet, &ratchet_path, "rootKey")?,
        &join(&ratchet_path, "rootKey"),
    )?;
    Ok(Ratchet {
        our_ratchet_key,
        their_ratchet_key,
        previous_counter,
        root,
    })
}

/// A session's `indexInfo`.
struct IndexInfo {
    base_key: PublicKey,
    base_key_type: BaseKeyType,
    closed: Option<u64>,
    created: u64,
    used: u64,
    remote_identity: PublicKey,
}

fn index_from_json(obj: &Map<String, Value>, path: &str) -> Result<IndexInfo> {
    let index_path = join(path, "indexInfo");
    let index = object(required(obj, path, "indexInfo")?, &index_path)?;
    let base_key = signal_public_key(
        required(index, &index_path, "baseKey")?,
        &join(&index_path, "baseKey"),
    )?;
    let base_key_type = {
        let n = u32_field(index, &index_path, "baseKeyType")?;
        BaseKeyType::from_number(n).ok_or_else(|| {
            mismatch(
                &join(&index_path, "baseKeyType"),
                format!("unknown base key type {n} (1 or 2)"),
            )
        })?
    };
    let closed = {
        let p = join(&index_path, "closed");
        match integer(required(index, &index_path, "closed")?, &p)? {
            -1 => None,
            n => Some(u64::try_from(n).map_err(|_| mismatch(&p, format!("bad timestamp {n}")))?),
        }
    };
    let timestamp = |key: &str| -> Result<u64> {
        in_range(
            required(index, &index_path, key)?,
            &join(&index_path, key),
            "a timestamp",
        )
    };
    let remote_identity = signal_public_key(
        required(index, &index_path, "remoteIdentityKey")?,
        &join(&index_path, "remoteIdentityKey"),
    )?;
    Ok(IndexInfo {
        base_key,
        base_key_type,
        closed,
        created: timestamp("created")?,
        used: timestamp("used")?,
        remote_identity,
    })
}

/// A session's `_chains`: the sending chain (under our current ratchet key `ours`), if any,
/// and the receiving ones.
fn chains_from_json(
    obj: &Map<String, Value>,
    path: &str,
    ours: &PublicKey,
) -> Result<(Option<ChainState>, Vec<ReceiverChain>)> {
    let chains_path = join(path, "_chains");
    let chains = object(required(obj, path, "_chains")?, &chains_path)?;
    let mut sender_chain = None;
    let mut receiver_chains = Vec::new();
    for (key, chain) in chains {
        let chain_path = join(&chains_path, key);
        let ratchet_key = signal_public_key(&Value::from(key.as_str()), &chain_path)?;
        let chain_obj = object(chain, &chain_path)?;
        let kind = integer(
            required(chain_obj, &chain_path, "chainType")?,
            &join(&chain_path, "chainType"),
        )?;
        let state = chain_from_json(chain_obj, &chain_path)?;
        match kind {
            CHAIN_SENDING if ratchet_key == *ours && sender_chain.is_none() => {
                sender_chain = Some(state);
            }
            CHAIN_SENDING => {
                return Err(mismatch(
                    &chain_path,
                    "a sending chain that is not under the current ratchet key",
                ));
            }
            CHAIN_RECEIVING => receiver_chains.push(ReceiverChain {
                ratchet_key,
                chain: state,
            }),
            other => {
                return Err(mismatch(
                    &join(&chain_path, "chainType"),
                    format!("unknown chain type {other} (1 or 2)"),
                ));
            }
        }
    }
    Ok((sender_chain, receiver_chains))
}

/// A session's `pendingPreKey`, if any.
fn pending_pre_key_from_json(
    obj: &Map<String, Value>,
    path: &str,
) -> Result<Option<PendingPreKey>> {
    optional(obj, "pendingPreKey")
        .map(|v| {
            let p = join(path, "pendingPreKey");
            let pending = object(v, &p)?;
            Ok::<_, CompatError>(PendingPreKey {
                pre_key_id: optional(pending, "preKeyId")
                    .map(|v| in_range(v, &join(&p, "preKeyId"), "a pre-key id").map(PreKeyId))
                    .transpose()?,
                signed_pre_key_id: SignedPreKeyId(u32_field(pending, &p, "signedKeyId")?),
                base_key: signal_public_key(
                    required(pending, &p, "baseKey")?,
                    &join(&p, "baseKey"),
                )?,
            })
        })
        .transpose()
}

fn chain_from_json(obj: &Map<String, Value>, path: &str) -> Result<ChainState> {
    let ck_path = join(path, "chainKey");
    let ck = object(required(obj, path, "chainKey")?, &ck_path)?;
    let counter_path = join(&ck_path, "counter");
    let counter = integer(required(ck, &ck_path, "counter")?, &counter_path)?;
    let next_index = counter
        .checked_add(1)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| mismatch(&counter_path, format!("counter {counter} out of range")))?;
    let key = optional(ck, "key")
        .map(|v| chain_key(v, &join(&ck_path, "key")))
        .transpose()?;
    let mk_path = join(path, "messageKeys");
    let message_keys = match optional(obj, "messageKeys") {
        None => Vec::new(),
        Some(v) => object(v, &mk_path)?
            .iter()
            .map(|(index, seed_value)| {
                let p = join(&mk_path, index);
                Ok(StoredMessageKey {
                    index: index
                        .parse()
                        .map_err(|_| mismatch(&p, "message key index is not a counter"))?,
                    material: MessageKeyMaterial::Seed(seed(seed_value, &p)?),
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let mut message_keys = message_keys;
    if let Some(v) = optional(obj, EXT_DERIVED_KEYS) {
        let derived_path = join(path, EXT_DERIVED_KEYS);
        for (index, keys) in object(v, &derived_path)? {
            let p = join(&derived_path, index);
            message_keys.push(StoredMessageKey {
                index: index
                    .parse()
                    .map_err(|_| mismatch(&p, "message key index is not a counter"))?,
                material: MessageKeyMaterial::Keys(derived_keys_from_json(keys, &p)?),
            });
        }
        message_keys.sort_by_key(|k| k.index);
    }
    Ok(ChainState {
        next_index,
        key,
        message_keys,
    })
}

fn fixed<const N: usize>(obj: &Map<String, Value>, path: &str, key: &str) -> Result<[u8; N]> {
    let p = join(path, key);
    let bytes = decode_base64(
        required(obj, path, key)?
            .as_str()
            .ok_or_else(|| CompatError::WrongType {
                path: p.clone(),
                expected: "base64 string",
            })?,
        &p,
    )?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| mismatch(&p, format!("must be {N} bytes, got {len}")))
}

fn derived_keys_from_json(value: &Value, path: &str) -> Result<MessageKeys> {
    let obj = object(value, path)?;
    Ok(MessageKeys {
        cipher_key: fixed(obj, path, "cipherKey")?,
        mac_key: fixed(obj, path, "macKey")?,
        iv: fixed(obj, path, "iv")?,
    })
}

fn b64(bytes: &[u8]) -> Value {
    Value::from(encode_base64(bytes))
}

fn chain_to_json(chain: &ChainState, chain_type: i64) -> Result<Value> {
    let mut ck = Map::new();
    ck.insert(
        "counter".into(),
        Value::from(i64::from(chain.next_index) - 1),
    );
    if let Some(key) = &chain.key {
        ck.insert("key".into(), b64(key.as_bytes()));
    }
    let mut keys = Map::new();
    let mut derived = Map::new();
    for mk in &chain.message_keys {
        match &mk.material {
            MessageKeyMaterial::Seed(seed) => {
                keys.insert(mk.index.to_string(), b64(seed.as_bytes()));
            }
            MessageKeyMaterial::Keys(k) => {
                let mut m = Map::new();
                m.insert("cipherKey".into(), b64(&k.cipher_key));
                m.insert("macKey".into(), b64(&k.mac_key));
                m.insert("iv".into(), b64(&k.iv));
                derived.insert(mk.index.to_string(), Value::Object(m));
            }
        }
    }
    let mut out = Map::new();
    out.insert("chainKey".into(), Value::Object(ck));
    out.insert("chainType".into(), Value::from(chain_type));
    out.insert("messageKeys".into(), Value::Object(keys));
    if !derived.is_empty() {
        out.insert(EXT_DERIVED_KEYS.into(), Value::Object(derived));
    }
    Ok(Value::Object(out))
}

fn state_to_json(s: &SessionState) -> Result<Value> {
    let mut pair = Map::new();
    pair.insert("pubKey".into(), b64(&s.our_ratchet_key.public.serialize()));
    pair.insert("privKey".into(), b64(s.our_ratchet_key.private.as_bytes()));
    let mut ratchet = Map::new();
    ratchet.insert("ephemeralKeyPair".into(), Value::Object(pair));
    if let Some(key) = &s.their_ratchet_key {
        ratchet.insert("lastRemoteEphemeralKey".into(), b64(&key.serialize()));
    }
    ratchet.insert("previousCounter".into(), Value::from(s.previous_counter));
    ratchet.insert("rootKey".into(), b64(s.root_key.as_bytes()));

    let mut index = Map::new();
    index.insert("baseKey".into(), b64(&s.base_key.serialize()));
    index.insert(
        "baseKeyType".into(),
        Value::from(s.base_key_type.to_number()),
    );
    index.insert(
        "closed".into(),
        s.closed.map_or(Value::from(-1), Value::from),
    );
    index.insert("used".into(), Value::from(s.used));
    index.insert("created".into(), Value::from(s.created));
    index.insert(
        "remoteIdentityKey".into(),
        b64(&s.remote_identity.serialize()),
    );

    let mut chains = Map::new();
    for rc in &s.receiver_chains {
        chains.insert(
            encode_base64(&rc.ratchet_key.serialize()),
            chain_to_json(&rc.chain, CHAIN_RECEIVING)?,
        );
    }
    if let Some(chain) = &s.sender_chain {
        chains.insert(
            encode_base64(&s.our_ratchet_key.public.serialize()),
            chain_to_json(chain, CHAIN_SENDING)?,
        );
    }

    let mut out = Map::new();
    out.insert(
        "registrationId".into(),
        Value::from(s.remote_registration_id),
    );
    if let Some(identity) = &s.local_identity {
        out.insert(EXT_LOCAL_IDENTITY.into(), b64(&identity.serialize()));
    }
    if let Some(id) = s.local_registration_id {
        out.insert(EXT_LOCAL_REGISTRATION_ID.into(), Value::from(id));
    }
    out.insert("currentRatchet".into(), Value::Object(ratchet));
    out.insert("indexInfo".into(), Value::Object(index));
    out.insert("_chains".into(), Value::Object(chains));
    if let Some(p) = &s.pending_pre_key {
        let mut pending = Map::new();
        pending.insert("signedKeyId".into(), Value::from(p.signed_pre_key_id.0));
        pending.insert("baseKey".into(), b64(&p.base_key.serialize()));
        if let Some(id) = p.pre_key_id {
            pending.insert("preKeyId".into(), Value::from(id.0));
        }
        out.insert("pendingPreKey".into(), Value::Object(pending));
    }
    Ok(Value::Object(out))
}
