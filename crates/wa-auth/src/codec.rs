//! Canonical encodings of key values, shared by backends so that every backend stores a kind the
//! same way and third-party backends need not invent their own:
//!
//! - **binary** (the native store, any byte-oriented backend): Signal records as their standard
//!   libsignal protobuf (`PreKeyRecordStructure`, `RecordStructure`, `SenderKeyRecordStructure`),
//!   an identity key as its 33-byte `0x05` form, a LID mapping as UTF-8, everything else as
//!   MessagePack (named fields) of the JSON form below with raw bytes.
//! - **JSON** (PostgreSQL `JSONB`, diagnostics): Baileys' shapes with bytes as base64 strings;
//!   Signal records as a base64 string of their protobuf. See `docs/` for every kind's shape.
//!
//! The value's kind and id are not part of the encoding: the backend stores them as the key.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wa_signal::{
    KeyPair, PreKeyId, PreKeyRecord, PrivateKey, PublicKey, SenderKeyRecord, SessionRecord,
};

use crate::encoding::{b64_decode, b64_encode};
use crate::error::{AuthError, BoxError, Result};
use crate::key::{KeyId, KeyKind, KeyValue};

fn corrupt(kind: &KeyKind, id: &KeyId, source: impl Into<BoxError>) -> AuthError {
    AuthError::corrupt_key(kind, id, "", source)
}

fn pre_key_id(kind: &KeyKind, id: &KeyId) -> Result<PreKeyId> {
    id.as_str().parse().map(PreKeyId).map_err(|_| {
        corrupt(
            kind,
            id,
            format!("pre-key id {:?} is not a number", id.as_str()),
        )
    })
}

fn msgpack<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("serializing plain data to a Vec cannot fail")
}

/// Encodes `value` in the canonical binary form.
pub fn encode_binary(value: &KeyValue) -> Vec<u8> {
    match value {
        KeyValue::PreKey(record) => record.encode(),
        KeyValue::Session(record) => record.encode(),
        KeyValue::SenderKey(record) => record.encode(),
        KeyValue::IdentityKey(key) => key.serialize().to_vec(),
        KeyValue::LidMapping(user) => user.as_bytes().to_vec(),
        KeyValue::SenderKeyMemory(map) => msgpack(map),
        KeyValue::AppStateSyncKey(data) => msgpack(data),
        KeyValue::AppStateSyncVersion(state) => msgpack(state),
        KeyValue::DeviceList(devices) => msgpack(devices),
        KeyValue::TcToken(token) => msgpack(token),
        KeyValue::Other(json) => msgpack(json),
    }
}

/// Decodes a value of `kind` stored under `id` from the canonical binary form.
pub fn decode_binary(kind: &KeyKind, id: &KeyId, bytes: &[u8]) -> Result<KeyValue> {
    fn unpack<T: DeserializeOwned>(kind: &KeyKind, id: &KeyId, bytes: &[u8]) -> Result<T> {
        rmp_serde::from_slice(bytes).map_err(|e| corrupt(kind, id, e))
    }
    let value = match kind {
        KeyKind::PreKey => {
            KeyValue::PreKey(PreKeyRecord::decode(bytes).map_err(|e| corrupt(kind, id, e))?)
        }
        KeyKind::Session => {
            KeyValue::Session(SessionRecord::decode(bytes).map_err(|e| corrupt(kind, id, e))?)
        }
        KeyKind::SenderKey => {
            KeyValue::SenderKey(SenderKeyRecord::decode(bytes).map_err(|e| corrupt(kind, id, e))?)
        }
        KeyKind::IdentityKey => {
            KeyValue::IdentityKey(PublicKey::from_slice(bytes).map_err(|e| corrupt(kind, id, e))?)
        }
        KeyKind::LidMapping => KeyValue::LidMapping(
            String::from_utf8(bytes.to_vec()).map_err(|e| corrupt(kind, id, e))?,
        ),
        KeyKind::SenderKeyMemory => KeyValue::SenderKeyMemory(unpack(kind, id, bytes)?),
        KeyKind::AppStateSyncKey => KeyValue::AppStateSyncKey(unpack(kind, id, bytes)?),
        KeyKind::AppStateSyncVersion => KeyValue::AppStateSyncVersion(unpack(kind, id, bytes)?),
        KeyKind::DeviceList => KeyValue::DeviceList(unpack(kind, id, bytes)?),
        KeyKind::TcToken => KeyValue::TcToken(unpack(kind, id, bytes)?),
        KeyKind::Other(_) => KeyValue::Other(unpack(kind, id, bytes)?),
    };
    value
        .check_fits(kind, id)
        .map_err(|e| corrupt(kind, id, e))?;
    Ok(value)
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("plain data always converts to JSON")
}

/// Encodes `value` in the canonical JSON form.
pub fn encode_json(value: &KeyValue) -> Value {
    match value {
        KeyValue::PreKey(record) => serde_json::json!({
            "public": b64_encode(record.key_pair.public.as_bytes()),
            "private": b64_encode(record.key_pair.private.as_bytes()),
        }),
        KeyValue::Session(record) => Value::String(b64_encode(&record.encode())),
        KeyValue::SenderKey(record) => Value::String(b64_encode(&record.encode())),
        KeyValue::IdentityKey(key) => Value::String(b64_encode(&key.serialize())),
        KeyValue::LidMapping(user) => Value::String(user.clone()),
        KeyValue::SenderKeyMemory(map) => to_json(map),
        KeyValue::AppStateSyncKey(data) => to_json(data),
        KeyValue::AppStateSyncVersion(state) => to_json(state),
        KeyValue::DeviceList(devices) => to_json(devices),
        KeyValue::TcToken(token) => to_json(token),
        KeyValue::Other(json) => json.clone(),
    }
}

/// Decodes a value of `kind` stored under `id` from the canonical JSON form.
pub fn decode_json(kind: &KeyKind, id: &KeyId, json: &Value) -> Result<KeyValue> {
    fn parse<T: DeserializeOwned>(kind: &KeyKind, id: &KeyId, json: &Value) -> Result<T> {
        T::deserialize(json).map_err(|e| corrupt(kind, id, e))
    }
    fn b64_field(kind: &KeyKind, id: &KeyId, json: &Value, field: Option<&str>) -> Result<Vec<u8>> {
        let text = match field {
            Some(name) => json.get(name).and_then(Value::as_str),
            None => json.as_str(),
        };
        let text = text.ok_or_else(|| {
            corrupt(
                kind,
                id,
                format!(
                    "expected a base64 string{}",
                    field.map(|f| format!(" in {f:?}")).unwrap_or_default()
                ),
            )
        })?;
        b64_decode(text).map_err(|e| corrupt(kind, id, e))
    }
    let value = match kind {
        KeyKind::PreKey => {
            let public = b64_field(kind, id, json, Some("public"))?;
            let private = b64_field(kind, id, json, Some("private"))?;
            let key_pair = PublicKey::from_slice(&public)
                .and_then(|public| Ok((public, PrivateKey::from_slice(&private)?)))
                .and_then(|(public, private)| KeyPair::from_parts(public, private))
                .map_err(|e| corrupt(kind, id, e))?;
            KeyValue::PreKey(PreKeyRecord {
                id: pre_key_id(kind, id)?,
                key_pair,
            })
        }
        KeyKind::Session => KeyValue::Session(
            SessionRecord::decode(&b64_field(kind, id, json, None)?)
                .map_err(|e| corrupt(kind, id, e))?,
        ),
        KeyKind::SenderKey => KeyValue::SenderKey(
            SenderKeyRecord::decode(&b64_field(kind, id, json, None)?)
                .map_err(|e| corrupt(kind, id, e))?,
        ),
        KeyKind::IdentityKey => KeyValue::IdentityKey(
            PublicKey::from_slice(&b64_field(kind, id, json, None)?)
                .map_err(|e| corrupt(kind, id, e))?,
        ),
        KeyKind::LidMapping => KeyValue::LidMapping(parse(kind, id, json)?),
        KeyKind::SenderKeyMemory => KeyValue::SenderKeyMemory(parse(kind, id, json)?),
        KeyKind::AppStateSyncKey => KeyValue::AppStateSyncKey(parse(kind, id, json)?),
        KeyKind::AppStateSyncVersion => KeyValue::AppStateSyncVersion(parse(kind, id, json)?),
        KeyKind::DeviceList => KeyValue::DeviceList(parse(kind, id, json)?),
        KeyKind::TcToken => KeyValue::TcToken(parse(kind, id, json)?),
        KeyKind::Other(_) => KeyValue::Other(json.clone()),
    };
    value
        .check_fits(kind, id)
        .map_err(|e| corrupt(kind, id, e))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn every_kind_round_trips_in_both_forms() {
        for (kind, id, value) in sample::one_of_every_kind() {
            let bytes = encode_binary(&value);
            assert_eq!(
                decode_binary(&kind, &id, &bytes).unwrap(),
                value,
                "binary {kind}"
            );
            let json = encode_json(&value);
            assert_eq!(
                decode_json(&kind, &id, &json).unwrap(),
                value,
                "json {kind}"
            );
        }
    }

    #[test]
    fn garbage_is_corrupt_and_names_the_key() {
        let id = KeyId::new("4915112345678.0");
        let err = decode_binary(&KeyKind::Session, &id, &[0xff, 0x01]).unwrap_err();
        assert!(matches!(err, AuthError::Corrupt { .. }));
        assert!(
            err.to_string().contains("session key 4915112345678.0"),
            "{err}"
        );
        let err = decode_json(
            &KeyKind::PreKey,
            &KeyId::new("x"),
            &serde_json::json!({"public": "AA", "private": "AA"}),
        )
        .unwrap_err();
        assert!(matches!(err, AuthError::Corrupt { .. }));
    }
}
