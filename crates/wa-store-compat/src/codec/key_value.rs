//! A key file's JSON value <-> a typed [`KeyValue`], for every kind.
//!
//! | kind | file value (both flavours unless noted) |
//! |---|---|
//! | `pre-key` | `{private, public}`: Buffers of the raw 32-byte keys |
//! | `session` | libsignal-node "v1" JSON ([`session`]) |
//! | `sender-key` | Baileys 6: array of states; Baileys 7: Buffer of that array's JSON ([`sender_key`]) |
//! | `sender-key-memory` | `{"<jid>": true, ...}` |
//! | `app-state-sync-key` | protobuf JSON `{keyData: "<b64>", fingerprint: {rawId, currentIndex, deviceIndexes}, timestamp: "<int64>"}` |
//! | `app-state-sync-version` | `{version, hash: Buffer, indexValueMap: {"<b64 index MAC>": {valueMac: Buffer}}}` |
//! | `lid-mapping` | a JSON string (the other side's user) |
//! | `device-list` | an array of device ids as strings |
//! | `tctoken` | `{token: Buffer, timestamp: "<unix s>"}` |
//! | `identity-key` | a Buffer of the 33-byte (`0x05`) public key |
//! | other kinds | any JSON, kept as it is |
//!
//! Byte fields are read in any [`buffer_json`](super::buffer_json) form. Unknown fields of
//! `app-state-sync-version` and `tctoken` values are kept as read.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;
use wa_auth::key::{AppStateSyncKeyData, AppStateSyncVersion, TcToken};
use wa_auth::{KeyId, KeyKind, KeyValue};
use wa_signal::PublicKey;
use wa_signal::record::PreKeyId;

use super::buffer_json::{buffer_base64, bytes_from_value};
use super::creds::{deserialize_with_bytes, rewrite_at};
use super::error::{CompatError, Result};
use super::{Flavour, pre_key, sender_key, session};

/// Byte fields written as Buffers, per kind (paths as in [`rewrite_at`]).
fn buffer_paths(kind: &KeyKind) -> &'static [&'static [&'static str]] {
    match kind {
        KeyKind::AppStateSyncVersion => &[&["hash"], &["indexValueMap", "*", "valueMac"]],
        KeyKind::TcToken => &[&["token"]],
        _ => &[],
    }
}

/// Byte fields written as plain base64 text (protobuf JSON), accepted as Buffers when reading.
fn text_byte_paths(kind: &KeyKind) -> &'static [&'static [&'static str]] {
    match kind {
        KeyKind::AppStateSyncKey => &[&["keyData"]],
        _ => &[],
    }
}

fn parse<T: DeserializeOwned>(kind: &KeyKind, value: &Value) -> Result<T> {
    deserialize_with_bytes(value, buffer_paths(kind), text_byte_paths(kind))
}

fn write<T: serde::Serialize>(kind: &KeyKind, value: &T) -> Result<Value> {
    let mut value = serde_json::to_value(value).map_err(|e| CompatError::NotRepresentable {
        what: "key value",
        reason: e.to_string(),
    })?;
    for path in buffer_paths(kind) {
        rewrite_at(&mut value, path, String::new(), &mut |v, p| {
            *v = buffer_base64(&bytes_from_value(v, p)?);
            Ok(())
        })?;
    }
    Ok(value)
}

/// Reads the value of a `kind` file stored under `id`.
pub fn from_json(kind: &KeyKind, id: &KeyId, value: &Value) -> Result<KeyValue> {
    let typed = match kind {
        KeyKind::PreKey => {
            let number = id.as_str().parse().map_err(|_| CompatError::InvalidValue {
                path: String::new(),
                reason: format!("pre-key id {:?} is not a number", id.as_str()),
            })?;
            KeyValue::PreKey(pre_key::pre_key_from_json(PreKeyId(number), value)?)
        }
        KeyKind::Session => KeyValue::Session(session::from_json(value)?),
        KeyKind::SenderKey => KeyValue::SenderKey(sender_key::from_json(value)?),
        KeyKind::SenderKeyMemory => {
            KeyValue::SenderKeyMemory(parse::<BTreeMap<String, bool>>(kind, value)?)
        }
        KeyKind::AppStateSyncKey => {
            KeyValue::AppStateSyncKey(parse::<AppStateSyncKeyData>(kind, value)?)
        }
        KeyKind::AppStateSyncVersion => {
            KeyValue::AppStateSyncVersion(parse::<AppStateSyncVersion>(kind, value)?)
        }
        KeyKind::LidMapping => KeyValue::LidMapping(parse::<String>(kind, value)?),
        KeyKind::DeviceList => KeyValue::DeviceList(parse::<Vec<String>>(kind, value)?),
        KeyKind::TcToken => KeyValue::TcToken(parse::<TcToken>(kind, value)?),
        KeyKind::IdentityKey => {
            let bytes = bytes_from_value(value, "")?;
            KeyValue::IdentityKey(PublicKey::from_slice(&bytes).map_err(|e| {
                CompatError::InvalidValue {
                    path: String::new(),
                    reason: e.to_string(),
                }
            })?)
        }
        KeyKind::Other(_) => KeyValue::Other(value.clone()),
    };
    Ok(typed)
}

/// Writes `value` (of `kind`) as its file value in `flavour`'s shape.
pub fn to_json(kind: &KeyKind, value: &KeyValue, flavour: Flavour) -> Result<Value> {
    let json = match value {
        KeyValue::PreKey(record) => pre_key::pre_key_to_json(record),
        KeyValue::Session(record) => session::to_json(record)?,
        KeyValue::SenderKey(record) => sender_key::to_json(record, flavour)?,
        KeyValue::SenderKeyMemory(map) => write(kind, map)?,
        KeyValue::AppStateSyncKey(data) => write(kind, data)?,
        KeyValue::AppStateSyncVersion(state) => write(kind, state)?,
        KeyValue::LidMapping(user) => Value::from(user.as_str()),
        KeyValue::DeviceList(devices) => write(kind, devices)?,
        KeyValue::TcToken(token) => write(kind, token)?,
        KeyValue::IdentityKey(key) => buffer_base64(&key.serialize()),
        KeyValue::Other(json) => json.clone(),
    };
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_round_trips_in_both_flavours() {
        for flavour in [Flavour::Baileys6, Flavour::Baileys7] {
            for (kind, id, value) in wa_auth_samples() {
                let json = to_json(&kind, &value, flavour).unwrap();
                let back = from_json(&kind, &id, &json).unwrap();
                assert_eq!(back, value, "{kind} {flavour:?}");
            }
        }
    }

    fn wa_auth_samples() -> Vec<(KeyKind, KeyId, KeyValue)> {
        let other = KeyKind::from_name("future-kind").unwrap();
        vec![
            (
                KeyKind::TcToken,
                KeyId::new("1@lid"),
                KeyValue::TcToken(TcToken {
                    token: vec![1, 2, 3],
                    timestamp: Some("5".into()),
                    extra: [(
                        "extraBuffer".to_owned(),
                        json!({"type": "Buffer", "data": "AQ=="}),
                    )]
                    .into(),
                }),
            ),
            (
                KeyKind::IdentityKey,
                KeyId::new("1.0"),
                KeyValue::IdentityKey(
                    wa_signal::KeyPair::generate(&mut wa_auth::SystemProvider::new()).public,
                ),
            ),
            (
                KeyKind::LidMapping,
                KeyId::new("1"),
                KeyValue::LidMapping("2".into()),
            ),
            (
                other,
                KeyId::new("x"),
                KeyValue::Other(json!({"type": "Buffer", "data": [1]})),
            ),
        ]
    }

    #[test]
    fn buffers_are_written_where_baileys_writes_them() {
        let version = AppStateSyncVersion {
            version: 3,
            hash: vec![7; 128],
            index_value_map: [("aW5kZXg=".to_owned(), vec![9; 32])].into(),
            extra: Default::default(),
        };
        let kind = KeyKind::AppStateSyncVersion;
        let json = to_json(
            &kind,
            &KeyValue::AppStateSyncVersion(version.clone()),
            Flavour::Baileys7,
        )
        .unwrap();
        assert_eq!(json["hash"]["type"], "Buffer");
        assert_eq!(
            json["indexValueMap"]["aW5kZXg="]["valueMac"]["type"],
            "Buffer"
        );
        // Number-array buffers are read too.
        let mut legacy = json.clone();
        legacy["hash"] = super::super::buffer_json::buffer_numbers(&[7; 128]);
        assert_eq!(
            from_json(&kind, &KeyId::new("regular"), &legacy).unwrap(),
            KeyValue::AppStateSyncVersion(version)
        );
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let id = KeyId::new("x");
        assert!(from_json(&KeyKind::LidMapping, &id, &json!(5)).is_err());
        assert!(from_json(&KeyKind::DeviceList, &id, &json!({})).is_err());
        assert!(from_json(&KeyKind::SenderKeyMemory, &id, &json!({"a": 1})).is_err());
        assert!(from_json(&KeyKind::PreKey, &id, &json!({})).is_err());
        assert!(from_json(&KeyKind::IdentityKey, &id, &json!("AAAA")).is_err());
    }
}
