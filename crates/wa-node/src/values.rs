//! Baileys' values as JSON text <-> typed state, through `wa_store_compat::codec` (the one
//! implementation of Baileys' shapes).
//!
//! The JS side turns Buffers into `{"type":"Buffer","data":"<base64>"}` before calling in, and
//! back after (when [`GetOutput::buffers`] says there are any). Everything else about a value's
//! shape is decided here.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use wa_auth::{AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Result, WriteBatch};
use wa_store_compat::Flavour;
use wa_store_compat::codec::{self, CompatError, buffer_json};

/// Largest accepted value, as JSON text (the largest real values — sessions with thousands of
/// skipped message keys, sender keys with 2,000 stored keys per state — stay far below).
pub const MAX_VALUE_BYTES: usize = 8 << 20;

/// Largest accepted `keys.set` payload, as JSON text.
pub const MAX_BATCH_BYTES: usize = 256 << 20;

/// What `keys.get` hands back: `{"<id>": value | null, ...}` as JSON text, and whether any value
/// holds a Buffer object for the JS side to revive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOutput {
    /// The JSON object text.
    pub json: String,
    /// Whether it holds `{"type":"Buffer", ...}` objects.
    pub buffers: bool,
}

/// What a `keys.set` payload holds besides the batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// The flavour of the Baileys that wrote it, when a sender key shows it.
    pub flavour: Option<Flavour>,
}

/// A key kind named by JS: Baileys' ten, or any other kind (`[a-z0-9_-]{1,64}`).
pub fn parse_kind(name: &str) -> Result<KeyKind> {
    KeyKind::from_name(name).map_err(|_| {
        AuthError::invalid(
            format!("key type {name:?}"),
            "must be 1..=64 characters of [a-z0-9_-] (a Baileys key type such as \"session\")",
        )
    })
}

/// A key id named by JS. Ids no backend can store are refused, and so are `"undefined"` and
/// `"null"`: what a JS `undefined` or `null` becomes when used as an object key.
pub fn parse_id(kind: &KeyKind, id: &str) -> Result<KeyId> {
    if id == "undefined" || id == "null" {
        return Err(AuthError::invalid(
            format!("{kind} id {id:?}"),
            "is a JavaScript undefined/null turned into a string",
        ));
    }
    let key = KeyId::new(id);
    key.validate().map_err(|e| match e {
        // Name a long id by its start: the message must stay readable.
        AuthError::Invalid { reason, .. } => {
            AuthError::invalid(format!("{kind} id {:?}", shorten(id)), reason)
        }
        other => other,
    })?;
    Ok(key)
}

/// `text`, cut to 64 characters with the full length noted.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}... ({} bytes)", &text[..end], text.len()),
        None => text.to_owned(),
    }
}

fn invalid_value(kind: &KeyKind, id: &KeyId, e: impl std::fmt::Display) -> AuthError {
    // Codec errors start with the JSON path, which is empty for the value itself.
    let reason = e.to_string();
    let reason = reason.strip_prefix(": ").unwrap_or(&reason);
    AuthError::invalid(
        format!("{kind} {id}"),
        format!("not a Baileys {kind} value: {reason}"),
    )
}

/// Parses a `keys.set` payload, `{"<type>": {"<id>": value | null}}`, into one batch (`null`
/// deletes). Every entry is checked before anything is returned, so a bad entry means no batch.
pub fn parse_batch(text: &str) -> Result<(WriteBatch, BatchInfo)> {
    if text.len() > MAX_BATCH_BYTES {
        return Err(AuthError::invalid(
            "keys.set data",
            format!("{} bytes of JSON, more than {MAX_BATCH_BYTES}", text.len()),
        ));
    }
    let data: BTreeMap<String, Box<RawValue>> = serde_json::from_str(text).map_err(|e| {
        AuthError::invalid(
            "keys.set data",
            format!("must be an object of key types ({e})"),
        )
    })?;
    let mut batch = WriteBatch::new();
    let mut info = BatchInfo::default();
    for (kind_name, entries) in data {
        let kind = parse_kind(&kind_name)?;
        let entries: BTreeMap<String, Box<RawValue>> = serde_json::from_str(entries.get())
            .map_err(|_| {
                AuthError::invalid(
                    format!("keys.set data[{kind_name:?}]"),
                    "must be an object of id -> value (or null to delete)",
                )
            })?;
        for (id, raw) in entries {
            let id = parse_id(&kind, &id)?;
            let raw = raw.get();
            if raw == "null" {
                batch.delete(kind.clone(), id);
                continue;
            }
            if raw.len() > MAX_VALUE_BYTES {
                return Err(AuthError::invalid(
                    format!("{kind} {id}"),
                    format!(
                        "value of {} bytes of JSON, more than {MAX_VALUE_BYTES}",
                        raw.len()
                    ),
                ));
            }
            let json: Value =
                serde_json::from_str(raw).map_err(|e| invalid_value(&kind, &id, e))?;
            if kind == KeyKind::SenderKey {
                info.flavour = flavour_of_sender_key(&json).or(info.flavour);
            }
            let value = codec::key_value::from_json(&kind, &id, &json)
                .map_err(|e| invalid_value(&kind, &id, e))?;
            batch.put(kind.clone(), id, value);
        }
    }
    batch.validate()?;
    Ok((batch, info))
}

/// Baileys 6 hands a sender key over as an array of states, Baileys 7 as a Buffer.
fn flavour_of_sender_key(json: &Value) -> Option<Flavour> {
    if json.is_array() {
        Some(Flavour::Baileys6)
    } else if buffer_json::is_buffer(json) {
        Some(Flavour::Baileys7)
    } else {
        None
    }
}

fn compat_error(what: String, e: CompatError) -> AuthError {
    AuthError::invalid(what, e.to_string())
}

/// The value a running Baileys of `flavour` expects from `keys.get`: the shape its own folder
/// store yields after `BufferJSON.reviver`, with two differences that make Baileys work where
/// its own store does not: sender keys in the runtime form of
/// [`to_runtime_json`](codec::sender_key::to_runtime_json) (stored message keys usable), and
/// `keyData` of an app-state sync key as a Buffer (what Baileys' protobuf `fromObject` makes of
/// the file's base64 text, and all Baileys uses).
pub fn runtime_value(kind: &KeyKind, value: &KeyValue, flavour: Flavour) -> Result<Value> {
    let what = || format!("{kind} value");
    match value {
        KeyValue::SenderKey(record) => {
            codec::sender_key::to_runtime_json(record, flavour).map_err(|e| compat_error(what(), e))
        }
        _ => {
            let mut json = codec::key_value::to_json(kind, value, flavour)
                .map_err(|e| compat_error(what(), e))?;
            if let (KeyKind::AppStateSyncKey, Some(Value::String(text))) =
                (kind, json.get("keyData"))
            {
                let bytes = buffer_json::decode_base64(text, "/keyData")
                    .map_err(|e| compat_error(what(), e))?;
                json["keyData"] = buffer_json::buffer_base64(&bytes);
            }
            Ok(json)
        }
    }
}

/// Whether `value` (as JSON) holds a Buffer object anywhere.
pub fn holds_buffer(value: &Value) -> bool {
    match value {
        Value::Object(map) => buffer_json::is_buffer(value) || map.values().any(holds_buffer),
        Value::Array(items) => items.iter().any(holds_buffer),
        _ => false,
    }
}

/// Builds `keys.get`'s answer: every requested id, `null` where nothing is stored.
pub fn get_output(
    kind: &KeyKind,
    ids: &[KeyId],
    found: Vec<(KeyId, KeyValue)>,
    flavour: Flavour,
) -> Result<GetOutput> {
    let mut found: BTreeMap<KeyId, KeyValue> = found.into_iter().collect();
    let mut out = Map::with_capacity(ids.len());
    let mut buffers = false;
    for id in ids {
        let value = match found.remove(id) {
            Some(value) => {
                let json = runtime_value(kind, &value, flavour)?;
                buffers = buffers || holds_buffer(&json);
                json
            }
            None => Value::Null,
        };
        out.insert(id.as_str().to_owned(), value);
    }
    let json =
        serde_json::to_string(&Value::Object(out)).map_err(|e| AuthError::backend("node", e))?;
    Ok(GetOutput { json, buffers })
}

/// Creds as Baileys' `creds.json` value (Buffers where Baileys has them), as JSON text.
pub fn creds_to_json(creds: &AuthCreds) -> Result<String> {
    let value = codec::creds::to_json(creds).map_err(|e| compat_error("creds".into(), e))?;
    Ok(value.to_string())
}

/// Creds from the JSON text of Baileys' `AuthenticationCreds` object.
pub fn creds_from_json(text: &str) -> Result<AuthCreds> {
    if text.len() > MAX_VALUE_BYTES {
        return Err(AuthError::invalid(
            "creds",
            format!("{} bytes of JSON, more than {MAX_VALUE_BYTES}", text.len()),
        ));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| AuthError::invalid("creds", format!("not JSON: {e}")))?;
    codec::creds::from_json(&value)
        .map_err(|e| AuthError::invalid("creds", format!("not Baileys' AuthenticationCreds: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wa_auth::sample;

    fn payload(kind: &KeyKind, id: &KeyId, value: Value) -> String {
        json!({ kind.as_str(): { id.as_str(): value } }).to_string()
    }

    #[test]
    fn every_kind_round_trips_through_the_runtime_shape_in_both_flavours() {
        for flavour in [Flavour::Baileys6, Flavour::Baileys7] {
            for (kind, id, value) in sample::one_of_every_kind() {
                let json = runtime_value(&kind, &value, flavour).unwrap();
                let (batch, info) = parse_batch(&payload(&kind, &id, json)).unwrap();
                assert_eq!(
                    batch.get(&kind, &id),
                    Some(Some(&value)),
                    "{kind} {flavour}"
                );
                if kind == KeyKind::SenderKey {
                    assert_eq!(info.flavour, Some(flavour));
                }
            }
        }
    }

    #[test]
    fn get_output_has_null_for_missing_ids_and_flags_buffers() {
        let (kind, id, value) = sample::one_of_every_kind()
            .into_iter()
            .find(|(k, _, _)| *k == KeyKind::PreKey)
            .unwrap();
        let missing = KeyId::new("999999");
        let out = get_output(
            &kind,
            &[id.clone(), missing.clone()],
            vec![(id.clone(), value)],
            Flavour::Baileys7,
        )
        .unwrap();
        let parsed: Value = serde_json::from_str(&out.json).unwrap();
        assert_eq!(parsed[missing.as_str()], Value::Null);
        assert_eq!(parsed[id.as_str()]["public"]["type"], "Buffer");
        assert!(out.buffers);
        let lid = get_output(
            &KeyKind::LidMapping,
            &[KeyId::new("1")],
            vec![(KeyId::new("1"), KeyValue::LidMapping("2".into()))],
            Flavour::Baileys7,
        )
        .unwrap();
        assert_eq!(lid.json, r#"{"1":"2"}"#);
        assert!(!lid.buffers);
    }

    #[test]
    fn app_state_sync_key_data_comes_back_as_a_buffer() {
        let (kind, _, value) = sample::one_of_every_kind()
            .into_iter()
            .find(|(k, _, _)| *k == KeyKind::AppStateSyncKey)
            .unwrap();
        let json = runtime_value(&kind, &value, Flavour::Baileys7).unwrap();
        assert!(buffer_json::is_buffer(&json["keyData"]), "{json}");
    }

    #[test]
    fn null_deletes_and_unknown_kinds_are_kept_intact() {
        let text = json!({
            "session": {"1.0": null},
            "my-tool_state": {"x": {"nested": [1, {"type": "Buffer", "data": "AQI="}]}}
        })
        .to_string();
        let (batch, _) = parse_batch(&text).unwrap();
        assert_eq!(batch.get(&KeyKind::Session, &"1.0".into()), Some(None));
        let other = KeyKind::from_name("my-tool_state").unwrap();
        let stored = batch.get(&other, &"x".into()).unwrap().unwrap().clone();
        let back = runtime_value(&other, &stored, Flavour::Baileys6).unwrap();
        assert_eq!(
            back,
            json!({"nested": [1, {"type": "Buffer", "data": "AQI="}]})
        );
    }

    #[test]
    fn bad_input_is_invalid_and_names_what_is_wrong() {
        let cases = [
            ("[]", "keys.set data"),
            (r#"{"session": 5}"#, "keys.set data[\"session\"]"),
            (r#"{"Bad Kind": {}}"#, "key type"),
            (r#"{"session": {"undefined": null}}"#, "undefined"),
            (
                r#"{"session": {"": null}}"#,
                "session id \"\": must not be empty",
            ),
            (r#"{"session": {"1.0": 42}}"#, "session 1.0"),
            (
                r#"{"lid-mapping": {"1": {"type": "Buffer", "data": "AQ=="}}}"#,
                "lid-mapping 1",
            ),
            (
                r#"{"pre-key": {"abc": {"public": "x", "private": "y"}}}"#,
                "pre-key abc",
            ),
            (
                r#"{"identity-key": {"1.0": "not base64!"}}"#,
                "identity-key 1.0",
            ),
        ];
        for (text, named) in cases {
            let err = parse_batch(text).unwrap_err();
            assert!(matches!(err, AuthError::Invalid { .. }), "{text}: {err}");
            assert!(err.to_string().contains(named), "{text}: {err}");
        }
        let huge = json!({"other-kind": {"x": "a".repeat(MAX_VALUE_BYTES + 1)}}).to_string();
        assert!(
            parse_batch(&huge)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
        let long_id = json!({"session": {"1".repeat(2000): null}}).to_string();
        assert!(matches!(
            parse_batch(&long_id),
            Err(AuthError::Invalid { .. })
        ));
    }

    #[test]
    fn creds_round_trip_in_baileys_shape() {
        let creds = AuthCreds::generate();
        let text = creds_to_json(&creds).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["noiseKey"]["public"]["type"], "Buffer");
        assert_eq!(creds_from_json(&text).unwrap(), creds);
        let err = creds_from_json(r#"{"noiseKey": 5}"#).unwrap_err();
        assert!(matches!(err, AuthError::Invalid { .. }), "{err}");
    }
}
