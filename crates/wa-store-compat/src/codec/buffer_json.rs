//! Baileys' `BufferJSON` byte encoding.
//!
//! Baileys serialises a `Buffer` with `BufferJSON.replacer` as
//! `{"type":"Buffer","data":"<base64>"}`. Other forms occur in real folders: the number-array
//! form `{"type":"Buffer","data":[1,2,3]}` (plain `JSON.stringify`, older tools, and every
//! buffer inside a Baileys 7 sender key), a numeric-key object (`{"0":1,"1":2}`, a stringified
//! `Uint8Array`, also as `data`), plain base64 strings (libsignal-node's own records), and the
//! old `{"buffer":true,"value":"<base64>"}` form that Baileys 6's reviver still accepts.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde_json::{Map, Value};

use super::error::{CompatError, Result};

/// Standard-alphabet base64 that accepts input with or without padding (as Node does).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 (standard alphabet, padded), as Node's `Buffer.toString('base64')`.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64 (standard alphabet, padding optional).
pub fn decode_base64(text: &str, path: &str) -> Result<Vec<u8>> {
    LENIENT.decode(text).map_err(|e| CompatError::InvalidValue {
        path: path.to_owned(),
        reason: format!("bad base64: {e}"),
    })
}

/// The written form: `{"type":"Buffer","data":"<base64>"}`.
pub fn buffer_base64(bytes: &[u8]) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), Value::from("Buffer"));
    map.insert("data".into(), Value::from(encode_base64(bytes)));
    Value::Object(map)
}

/// The number-array form: `{"type":"Buffer","data":[1,2,3]}`.
pub fn buffer_numbers(bytes: &[u8]) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), Value::from("Buffer"));
    map.insert(
        "data".into(),
        Value::Array(bytes.iter().map(|b| Value::from(*b)).collect()),
    );
    Value::Object(map)
}

/// Whether `value` is a `{"type":"Buffer", ...}` object (or the old `{"buffer":true, ...}`).
pub fn is_buffer(value: &Value) -> bool {
    value.as_object().is_some_and(|m| {
        m.get("type").and_then(Value::as_str) == Some("Buffer")
            || m.get("buffer").and_then(Value::as_bool) == Some(true)
    })
}

/// The bytes of a value in any of the accepted forms: a base64 string, a Buffer object (with
/// base64, number-array or numeric-key-object `data`), a bare number array or a bare
/// numeric-key object. `path` names the value in errors.
pub fn bytes_from_value(value: &Value, path: &str) -> Result<Vec<u8>> {
    match value {
        Value::String(text) => decode_base64(text, path),
        Value::Array(items) => numbers(items.iter(), path),
        Value::Object(map) if is_buffer(value) => {
            // Baileys 6's reviver reads `data`, or `value` in the old `{buffer: true}` form.
            let field = if map.contains_key("data") || !map.contains_key("value") {
                "data"
            } else {
                "value"
            };
            let data_path = format!("{path}/{field}");
            match map.get(field) {
                Some(Value::String(text)) => decode_base64(text, &data_path),
                Some(Value::Array(items)) => numbers(items.iter(), &data_path),
                Some(Value::Object(obj)) => numeric_keys(obj, &data_path),
                Some(_) => Err(CompatError::WrongType {
                    path: data_path,
                    expected: "base64 string, number array or numeric-key object",
                }),
                None => Err(CompatError::Missing { path: data_path }),
            }
        }
        Value::Object(map) => numeric_keys(map, path),
        _ => Err(CompatError::WrongType {
            path: path.to_owned(),
            expected: "bytes (base64 string or Buffer)",
        }),
    }
}

fn byte(value: &Value, path: &str) -> Result<u8> {
    value
        .as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| CompatError::InvalidValue {
            path: path.to_owned(),
            reason: format!("{value} is not a byte (0..=255)"),
        })
}

fn numbers<'a>(items: impl Iterator<Item = &'a Value>, path: &str) -> Result<Vec<u8>> {
    items
        .enumerate()
        .map(|(i, v)| byte(v, &format!("{path}/{i}")))
        .collect()
}

/// A numeric-key object (`{"0":1,"1":2}`): its keys must be exactly the decimal indexes
/// `0..len` (no sign, no leading zero), so that every byte has one place and none is lost.
fn numeric_keys(map: &Map<String, Value>, path: &str) -> Result<Vec<u8>> {
    let mut out = vec![None; map.len()];
    for (key, value) in map {
        let index = key
            .parse::<usize>()
            .ok()
            .filter(|i| *i < out.len() && i.to_string() == *key)
            .ok_or_else(|| CompatError::InvalidValue {
                path: path.to_owned(),
                reason: format!(
                    "key {key:?} is not an index of a {}-byte numeric-key object",
                    map.len()
                ),
            })?;
        out[index] = Some(byte(value, &format!("{path}/{key}"))?);
    }
    // Keys are unique, canonical and below the length: every slot is filled once.
    out.into_iter()
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| CompatError::InvalidValue {
            path: path.to_owned(),
            reason: "a numeric-key object with a missing index".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn every_form_decodes_to_the_same_bytes() {
        let bytes = vec![0u8, 1, 2, 254, 255];
        let forms = [
            json!("AAEC/v8="),
            json!("AAEC/v8"),
            json!({"type": "Buffer", "data": "AAEC/v8="}),
            json!({"type": "Buffer", "data": [0, 1, 2, 254, 255]}),
            json!({"type": "Buffer", "data": {"0": 0, "1": 1, "2": 2, "3": 254, "4": 255}}),
            json!({"1": 1, "0": 0, "2": 2, "3": 254, "4": 255}),
            json!([0, 1, 2, 254, 255]),
            json!({"buffer": true, "value": "AAEC/v8="}),
            json!({"buffer": true, "data": [0, 1, 2, 254, 255]}),
        ];
        for form in &forms {
            assert_eq!(bytes_from_value(form, "/x").unwrap(), bytes, "{form}");
        }
        assert_eq!(buffer_base64(&bytes), forms[2]);
        assert_eq!(buffer_numbers(&bytes), forms[3]);
    }

    #[test]
    fn bad_forms_are_typed_errors_naming_the_path() {
        let cases = [
            json!("not base64!"),
            json!({"type": "Buffer", "data": [256]}),
            json!({"type": "Buffer", "data": [-1]}),
            json!({"type": "Buffer"}),
            json!({"type": "Buffer", "data": true}),
            json!({"0": 1, "2": 3}),
            // Two keys for one index: a byte would be lost.
            json!({"1": 1, "01": 2}),
            json!({"type": "Buffer", "data": {"0": 1, "00": 2}}),
            json!({"0": 1, "+1": 2}),
            json!(17),
        ];
        for case in cases {
            let err = bytes_from_value(&case, "/creds/noiseKey").unwrap_err();
            assert!(err.to_string().starts_with("/creds/noiseKey"), "{err}");
        }
    }

    proptest! {
        #[test]
        fn written_forms_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(bytes_from_value(&buffer_base64(&bytes), "").unwrap(), bytes.clone());
            prop_assert_eq!(bytes_from_value(&buffer_numbers(&bytes), "").unwrap(), bytes.clone());
            prop_assert_eq!(bytes_from_value(&Value::from(encode_base64(&bytes)), "").unwrap(), bytes);
        }
    }
}
