//! Baileys sender-key values (`sender-key-<group>--<user>--<device>.json`) <->
//! [`SenderKeyRecord`].
//!
//! Both flavours store the same array of states, oldest first:
//! `{senderKeyId, senderChainKey{iteration, seed}, senderSigningKey{public, private?},
//! senderMessageKeys?[{iteration, seed}]}`.
//!
//! - Baileys 6 ([`Flavour::Baileys6`]): the file holds that array, byte fields as base64
//!   strings; `private` and `senderMessageKeys` are absent when there are none. After a
//!   message key is consumed Baileys 6 may leave a blank `{}` entry in `senderMessageKeys`;
//!   such entries carry no key and are kept aside (see
//!   [`SenderKeyState::blank_message_key_slots`]) so the value round-trips.
//! - Baileys 7 ([`Flavour::Baileys7`]): the file holds `{"type":"Buffer","data":"<base64>"}`
//!   whose bytes are the JSON text of the array, with every byte field as a number-array
//!   buffer, `private` an empty buffer for received keys, `senderMessageKeys` always present.
//!
//! Reading accepts either form, and a stored seed in any of its encodings (base64 string,
//! base64 Buffer, number-array Buffer): Baileys itself fails on two of them after a reload.
//!
//! [`to_runtime_json`] gives the value a *running* Baileys is handed (by a key store that is
//! not a folder, such as the Node binding): the same shapes, with every byte field a base64
//! Buffer object, the one encoding both Baileys versions revive into a `Buffer` when they
//! deserialise a record, stored message keys included.
//!
//! [`SenderKeyState::blank_message_key_slots`]: wa_signal::record::SenderKeyState::blank_message_key_slots

use serde_json::{Map, Value};
use wa_signal::record::{SenderKeyRecord, SenderKeyState, SenderMessageKey};

use super::Flavour;
use super::buffer_json::{
    buffer_base64, buffer_numbers, bytes_from_value, encode_base64, is_buffer,
};
use super::error::{CompatError, Result};
use super::value::{
    chain_key, join, mismatch, object, optional, private_key, required, seed, signal_public_key,
    u32_field,
};

/// Reads a sender-key file's JSON value (either flavour).
pub fn from_json(value: &Value) -> Result<SenderKeyRecord> {
    match value {
        Value::Array(states) => states_from_json(states, ""),
        _ if is_buffer(value) => {
            let text = bytes_from_value(value, "")?;
            let inner: Value =
                serde_json::from_slice(&text).map_err(|source| CompatError::EmbeddedJson {
                    path: "/data".into(),
                    source,
                })?;
            match &inner {
                Value::Array(states) => states_from_json(states, "/data"),
                _ => Err(CompatError::WrongType {
                    path: "/data".into(),
                    expected: "JSON array of sender-key states",
                }),
            }
        }
        _ => Err(CompatError::WrongType {
            path: String::new(),
            expected: "array of sender-key states or a Buffer holding one",
        }),
    }
}

/// Writes a record in the given flavour's shape.
pub fn to_json(record: &SenderKeyRecord, flavour: Flavour) -> Result<Value> {
    let bytes = |b: &[u8]| file_bytes(b, flavour);
    let states = Value::Array(
        record
            .states()
            .iter()
            .map(|s| state_to_json_as(s, flavour, &bytes))
            .collect(),
    );
    match flavour {
        Flavour::Baileys6 => Ok(states),
        Flavour::Baileys7 => embed(&states),
    }
}

/// Writes a record in the shape a running Baileys of `flavour` deserialises (see the module
/// docs): Baileys 6 gets the array of states, Baileys 7 a Buffer of its JSON text, every byte
/// field in both as `{"type":"Buffer","data":"<base64>"}`.
pub fn to_runtime_json(record: &SenderKeyRecord, flavour: Flavour) -> Result<Value> {
    let states = Value::Array(
        record
            .states()
            .iter()
            .map(|s| state_to_json_as(s, flavour, &buffer_base64))
            .collect(),
    );
    match flavour {
        Flavour::Baileys6 => Ok(states),
        Flavour::Baileys7 => embed(&states),
    }
}

fn embed(states: &Value) -> Result<Value> {
    let text = serde_json::to_vec(states).map_err(|e| CompatError::NotRepresentable {
        what: "sender key",
        reason: e.to_string(),
    })?;
    Ok(buffer_base64(&text))
}

fn states_from_json(states: &[Value], path: &str) -> Result<SenderKeyRecord> {
    let states = states
        .iter()
        .enumerate()
        .map(|(i, s)| state_from_json(s, &format!("{path}/{i}")))
        .collect::<Result<Vec<_>>>()?;
    Ok(SenderKeyRecord::from_states(states))
}

fn state_from_json(value: &Value, path: &str) -> Result<SenderKeyState> {
    let obj = object(value, path)?;
    let chain_path = join(path, "senderChainKey");
    let chain = object(required(obj, path, "senderChainKey")?, &chain_path)?;
    let signing_path = join(path, "senderSigningKey");
    let signing = object(required(obj, path, "senderSigningKey")?, &signing_path)?;
    let signing_private = match optional(signing, "private") {
        None => None,
        Some(v) => {
            let p = join(&signing_path, "private");
            if bytes_from_value(v, &p)?.is_empty() {
                None
            } else {
                Some(private_key(v, &p)?)
            }
        }
    };
    let mut message_keys = Vec::new();
    let mut blank_message_key_slots = Vec::new();
    if let Some(keys) = optional(obj, "senderMessageKeys") {
        let keys_path = join(path, "senderMessageKeys");
        let keys = keys.as_array().ok_or_else(|| CompatError::WrongType {
            path: keys_path.clone(),
            expected: "array",
        })?;
        for (i, key) in keys.iter().enumerate() {
            let p = format!("{keys_path}/{i}");
            let entry = object(key, &p)?;
            if entry.is_empty() {
                blank_message_key_slots
                    .push(u32::try_from(i).map_err(|_| mismatch(&p, "too many message keys"))?);
                continue;
            }
            message_keys.push(SenderMessageKey {
                iteration: u32_field(entry, &p, "iteration")?,
                seed: seed(required(entry, &p, "seed")?, &join(&p, "seed"))?,
            });
        }
    }
    Ok(SenderKeyState {
        key_id: u32_field(obj, path, "senderKeyId")?,
        iteration: u32_field(chain, &chain_path, "iteration")?,
        chain_key: chain_key(
            required(chain, &chain_path, "seed")?,
            &join(&chain_path, "seed"),
        )?,
        signing_public: signal_public_key(
            required(signing, &signing_path, "public")?,
            &join(&signing_path, "public"),
        )?,
        signing_private,
        message_keys,
        blank_message_key_slots,
    })
}

/// How the files of each flavour hold a byte field.
fn file_bytes(bytes: &[u8], flavour: Flavour) -> Value {
    match flavour {
        Flavour::Baileys6 => Value::from(encode_base64(bytes)),
        Flavour::Baileys7 => buffer_numbers(bytes),
    }
}

fn state_to_json_as(s: &SenderKeyState, flavour: Flavour, bytes: &dyn Fn(&[u8]) -> Value) -> Value {
    let mut chain = Map::new();
    chain.insert("iteration".into(), Value::from(s.iteration));
    chain.insert("seed".into(), bytes(s.chain_key.as_bytes()));
    let mut signing = Map::new();
    signing.insert("public".into(), bytes(&s.signing_public.serialize()));
    match (&s.signing_private, flavour) {
        (Some(private), _) => {
            signing.insert("private".into(), bytes(private.as_bytes()));
        }
        (None, Flavour::Baileys7) => {
            signing.insert("private".into(), bytes(&[]));
        }
        (None, Flavour::Baileys6) => {}
    }
    let total = s.message_keys.len() + s.blank_message_key_slots.len();
    let mut keys = Vec::with_capacity(total);
    // Interleave blank entries at their recorded positions; keys keep their order.
    let mut key_iter = s.message_keys.iter();
    for position in 0..total {
        let is_blank =
            u32::try_from(position).is_ok_and(|p| s.blank_message_key_slots.contains(&p));
        if is_blank {
            keys.push(Value::Object(Map::new()));
        } else if let Some(k) = key_iter.next() {
            keys.push(message_key_to_json(k, bytes));
        }
    }
    keys.extend(key_iter.map(|k| message_key_to_json(k, bytes)));

    let mut out = Map::new();
    out.insert("senderKeyId".into(), Value::from(s.key_id));
    out.insert("senderChainKey".into(), Value::Object(chain));
    out.insert("senderSigningKey".into(), Value::Object(signing));
    if flavour == Flavour::Baileys7 || !keys.is_empty() {
        out.insert("senderMessageKeys".into(), Value::Array(keys));
    }
    Value::Object(out)
}

fn message_key_to_json(k: &SenderMessageKey, bytes: &dyn Fn(&[u8]) -> Value) -> Value {
    let mut m = Map::new();
    m.insert("iteration".into(), Value::from(k.iteration));
    m.insert("seed".into(), bytes(k.seed.as_bytes()));
    Value::Object(m)
}
