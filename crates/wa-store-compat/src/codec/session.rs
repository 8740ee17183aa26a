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

use serde::Deserialize;
use serde_json::{Map, Value};
use wa_signal::ratchet::{MessageKeys, RootKey};
use wa_signal::record::{
    BaseKeyType, ChainState, MessageKeyMaterial, PendingPreKey, PreKeyId, ReceiverChain,
    SessionRecord, SessionState, SignedPreKeyId, StoredMessageKey,
};
use wa_signal::{KeyPair, PublicKey};

use super::buffer_json::{decode_base64, encode_base64};
use super::error::{CompatError, Result};
use super::shape::{self, Entries, Obj};
use super::value::{
    chain_key, in_range, integer, join, mismatch, private_key, root_key, seed, signal_public_key,
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

// The session JSON's shape, as serde structs (see `super::shape`: they read any JSON; the
// typed steps below report what is wrong, naming its JSON path). A leaf is `None` when absent
// or `null`.

/// A session file.
#[derive(Deserialize)]
struct FileJson {
    version: Option<Value>,
    #[serde(rename = "_sessions", default)]
    sessions: Obj<Entries<Obj<SessionJson>>>,
}

/// One session, under its base key.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionJson {
    registration_id: Option<Value>,
    /// Extension field ([`EXT_LOCAL_IDENTITY`]).
    local_identity_key: Option<Value>,
    /// Extension field ([`EXT_LOCAL_REGISTRATION_ID`]).
    local_registration_id: Option<Value>,
    #[serde(default)]
    current_ratchet: Obj<RatchetJson>,
    #[serde(default)]
    index_info: Obj<IndexInfoJson>,
    #[serde(rename = "_chains", default)]
    chains: Obj<Entries<Obj<ChainJson>>>,
    #[serde(default)]
    pending_pre_key: Obj<PendingPreKeyJson>,
}

/// `currentRatchet`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RatchetJson {
    #[serde(default)]
    ephemeral_key_pair: Obj<KeyPairJson>,
    last_remote_ephemeral_key: Option<Value>,
    previous_counter: Option<Value>,
    root_key: Option<Value>,
}

/// `currentRatchet.ephemeralKeyPair`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyPairJson {
    pub_key: Option<Value>,
    priv_key: Option<Value>,
}

/// `indexInfo`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexInfoJson {
    base_key: Option<Value>,
    base_key_type: Option<Value>,
    closed: Option<Value>,
    used: Option<Value>,
    created: Option<Value>,
    remote_identity_key: Option<Value>,
}

/// A chain of `_chains`, under its ratchet key.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChainJson {
    #[serde(default)]
    chain_key: Obj<ChainKeyJson>,
    chain_type: Option<Value>,
    /// Seeds by counter.
    #[serde(default)]
    message_keys: Obj<Entries<Value>>,
    /// Extension field ([`EXT_DERIVED_KEYS`]): derived keys by counter.
    #[serde(rename = "messageKeysDerived", default)]
    message_keys_derived: Obj<Entries<Obj<DerivedKeysJson>>>,
}

/// A chain's `chainKey`.
#[derive(Deserialize)]
struct ChainKeyJson {
    counter: Option<Value>,
    key: Option<Value>,
}

/// A message key of `messageKeysDerived`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DerivedKeysJson {
    cipher_key: Option<Value>,
    mac_key: Option<Value>,
    iv: Option<Value>,
}

/// `pendingPreKey`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PendingPreKeyJson {
    signed_key_id: Option<Value>,
    base_key: Option<Value>,
    pre_key_id: Option<Value>,
}

/// The leaf `field` of the object at `path`: [`CompatError::Missing`] (naming
/// `path/key`) when absent or `null`.
fn required<'a>(field: &'a Option<Value>, path: &str, key: &str) -> Result<&'a Value> {
    field.as_ref().ok_or_else(|| CompatError::Missing {
        path: join(path, key),
    })
}

/// The number `field` (`key` of the object at `path`) as a `u32`.
fn u32_field(field: &Option<Value>, path: &str, key: &str) -> Result<u32> {
    in_range(
        required(field, path, key)?,
        &join(path, key),
        "a 32-bit unsigned number",
    )
}

/// Reads a session file's JSON value.
pub fn from_json(value: &Value) -> Result<SessionRecord> {
    let file: Obj<FileJson> = shape::read(value, "")?;
    let root = file.object("")?;
    let version = required(&root.version, "", "version")?;
    if version.as_str() != Some(VERSION) {
        return Err(CompatError::InvalidValue {
            path: "/version".into(),
            reason: format!("unsupported session format version {version}"),
        });
    }
    let sessions = root.sessions.required("/_sessions")?;
    let mut current = None;
    let mut previous = Vec::new();
    for (key, session) in &sessions.0 {
        let path = join("/_sessions", key);
        let state = state_from_json(session.object(&path)?, &path)?;
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

fn state_from_json(session: &SessionJson, path: &str) -> Result<SessionState> {
    let ratchet = ratchet_from_json(session, path)?;
    let index = index_from_json(session, path)?;
    let (sender_chain, receiver_chains) =
        chains_from_json(session, path, &ratchet.our_ratchet_key.public)?;
    let local_identity = session
        .local_identity_key
        .as_ref()
        .map(|v| signal_public_key(v, &join(path, EXT_LOCAL_IDENTITY)))
        .transpose()?;
    let local_registration_id = session
        .local_registration_id
        .as_ref()
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
        remote_registration_id: u32_field(&session.registration_id, path, "registrationId")?,
        root_key: ratchet.root,
        previous_counter: ratchet.previous_counter,
        our_ratchet_key: ratchet.our_ratchet_key,
        their_ratchet_key: ratchet.their_ratchet_key,
        sender_chain,
        receiver_chains,
        pending_pre_key: pending_pre_key_from_json(session, path)?,
        base_key: index.base_key,
        base_key_type: index.base_key_type,
        created: index.created,
        used: index.used,
        closed: index.closed,
    })
}

/// A session's `currentRatchet`, decoded.
struct Ratchet {
    our_ratchet_key: KeyPair,
    their_ratchet_key: Option<PublicKey>,
    previous_counter: u32,
    root: RootKey,
}

fn ratchet_from_json(session: &SessionJson, path: &str) -> Result<Ratchet> {
    let ratchet_path = join(path, "currentRatchet");
    let ratchet = session.current_ratchet.required(&ratchet_path)?;
    let pair_path = join(&ratchet_path, "ephemeralKeyPair");
    let pair = ratchet.ephemeral_key_pair.required(&pair_path)?;
    let our_public = signal_public_key(
        required(&pair.pub_key, &pair_path, "pubKey")?,
        &join(&pair_path, "pubKey"),
    )?;
    let our_private = private_key(
        required(&pair.priv_key, &pair_path, "privKey")?,
        &join(&pair_path, "privKey"),
    )?;
    // Taken as stored, as the protobuf form is: checking that the halves match costs a scalar
    // multiplication per session on every load (a folder of 10 000 sessions would spend most
    // of its load time there). Pre-keys and creds key pairs are checked.
    let our_ratchet_key = KeyPair {
        public: our_public,
        private: our_private,
    };
    let their_ratchet_key = ratchet
        .last_remote_ephemeral_key
        .as_ref()
        .map(|v| signal_public_key(v, &join(&ratchet_path, "lastRemoteEphemeralKey")))
        .transpose()?;
    let previous_counter = u32_field(&ratchet.previous_counter, &ratchet_path, "previousCounter")?;
    let root = root_key(
        required(&ratchet.root_key, &ratchet_path, "rootKey")?,
        &join(&ratchet_path, "rootKey"),
    )?;
    Ok(Ratchet {
        our_ratchet_key,
        their_ratchet_key,
        previous_counter,
        root,
    })
}

/// A session's `indexInfo`, decoded.
struct IndexInfo {
    base_key: PublicKey,
    base_key_type: BaseKeyType,
    closed: Option<u64>,
    created: u64,
    used: u64,
    remote_identity: PublicKey,
}

fn index_from_json(session: &SessionJson, path: &str) -> Result<IndexInfo> {
    let index_path = join(path, "indexInfo");
    let index = session.index_info.required(&index_path)?;
    let base_key = signal_public_key(
        required(&index.base_key, &index_path, "baseKey")?,
        &join(&index_path, "baseKey"),
    )?;
    let base_key_type = {
        let n = u32_field(&index.base_key_type, &index_path, "baseKeyType")?;
        BaseKeyType::from_number(n).ok_or_else(|| {
            mismatch(
                &join(&index_path, "baseKeyType"),
                format!("unknown base key type {n} (1 or 2)"),
            )
        })?
    };
    let closed = {
        let p = join(&index_path, "closed");
        match integer(required(&index.closed, &index_path, "closed")?, &p)? {
            -1 => None,
            n => Some(u64::try_from(n).map_err(|_| mismatch(&p, format!("bad timestamp {n}")))?),
        }
    };
    let timestamp = |field: &Option<Value>, key: &str| -> Result<u64> {
        in_range(
            required(field, &index_path, key)?,
            &join(&index_path, key),
            "a timestamp",
        )
    };
    let remote_identity = signal_public_key(
        required(&index.remote_identity_key, &index_path, "remoteIdentityKey")?,
        &join(&index_path, "remoteIdentityKey"),
    )?;
    Ok(IndexInfo {
        base_key,
        base_key_type,
        closed,
        created: timestamp(&index.created, "created")?,
        used: timestamp(&index.used, "used")?,
        remote_identity,
    })
}

/// A session's `_chains`: the sending chain (under our current ratchet key `ours`), if any,
/// and the receiving ones.
fn chains_from_json(
    session: &SessionJson,
    path: &str,
    ours: &PublicKey,
) -> Result<(Option<ChainState>, Vec<ReceiverChain>)> {
    let chains_path = join(path, "_chains");
    let chains = session.chains.required(&chains_path)?;
    let mut sender_chain = None;
    let mut receiver_chains = Vec::new();
    for (key, chain) in &chains.0 {
        let chain_path = join(&chains_path, key);
        let ratchet_key = signal_public_key(&Value::from(key.as_str()), &chain_path)?;
        let chain = chain.object(&chain_path)?;
        let kind = integer(
            required(&chain.chain_type, &chain_path, "chainType")?,
            &join(&chain_path, "chainType"),
        )?;
        let state = chain_from_json(chain, &chain_path)?;
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
fn pending_pre_key_from_json(session: &SessionJson, path: &str) -> Result<Option<PendingPreKey>> {
    let p = join(path, "pendingPreKey");
    let Some(pending) = session.pending_pre_key.optional(&p)? else {
        return Ok(None);
    };
    Ok(Some(PendingPreKey {
        pre_key_id: pending
            .pre_key_id
            .as_ref()
            .map(|v| in_range(v, &join(&p, "preKeyId"), "a pre-key id").map(PreKeyId))
            .transpose()?,
        signed_pre_key_id: SignedPreKeyId(u32_field(&pending.signed_key_id, &p, "signedKeyId")?),
        base_key: signal_public_key(
            required(&pending.base_key, &p, "baseKey")?,
            &join(&p, "baseKey"),
        )?,
    }))
}

fn chain_from_json(chain: &ChainJson, path: &str) -> Result<ChainState> {
    let ck_path = join(path, "chainKey");
    let ck = chain.chain_key.required(&ck_path)?;
    let counter_path = join(&ck_path, "counter");
    let counter = integer(required(&ck.counter, &ck_path, "counter")?, &counter_path)?;
    let next_index = counter
        .checked_add(1)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| mismatch(&counter_path, format!("counter {counter} out of range")))?;
    let key = ck
        .key
        .as_ref()
        .map(|v| chain_key(v, &join(&ck_path, "key")))
        .transpose()?;
    let mut message_keys = seeds_from_json(chain, path)?;
    let derived_path = join(path, EXT_DERIVED_KEYS);
    if let Some(derived) = chain.message_keys_derived.optional(&derived_path)? {
        for (index, keys) in &derived.0 {
            let p = join(&derived_path, index);
            message_keys.push(StoredMessageKey {
                index: counter_key(index, &p)?,
                material: MessageKeyMaterial::Keys(derived_keys_from_json(keys.object(&p)?, &p)?),
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

/// A chain's `messageKeys`: seeds by counter, in file order.
fn seeds_from_json(chain: &ChainJson, path: &str) -> Result<Vec<StoredMessageKey>> {
    let mk_path = join(path, "messageKeys");
    let Some(seeds) = chain.message_keys.optional(&mk_path)? else {
        return Ok(Vec::new());
    };
    seeds
        .0
        .iter()
        .map(|(index, seed_value)| {
            let p = join(&mk_path, index);
            Ok(StoredMessageKey {
                index: counter_key(index, &p)?,
                material: MessageKeyMaterial::Seed(seed(seed_value, &p)?),
            })
        })
        .collect()
}

/// A message key's counter, the key of its entry at `path`.
fn counter_key(index: &str, path: &str) -> Result<u32> {
    index
        .parse()
        .map_err(|_| mismatch(path, "message key index is not a counter"))
}

fn fixed<const N: usize>(field: &Option<Value>, path: &str, key: &str) -> Result<[u8; N]> {
    let p = join(path, key);
    let bytes = decode_base64(
        required(field, path, key)?
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

fn derived_keys_from_json(keys: &DerivedKeysJson, path: &str) -> Result<MessageKeys> {
    Ok(MessageKeys {
        cipher_key: fixed(&keys.cipher_key, path, "cipherKey")?,
        mac_key: fixed(&keys.mac_key, path, "macKey")?,
        iv: fixed(&keys.iv, path, "iv")?,
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
