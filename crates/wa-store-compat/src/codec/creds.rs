//! `creds.json` <-> [`AuthCreds`].
//!
//! Baileys writes its creds with `BufferJSON.replacer`, so every `Buffer` field is
//! `{"type":"Buffer","data":"<base64>"}`: the key pairs (`noiseKey`, `pairingEphemeralKeyPair`,
//! `signedIdentityKey`, `signedPreKey.keyPair`), `signedPreKey.signature`, `routingInfo` and each
//! `signalIdentities[].identifierKey`. Everything else is plain JSON: `advSecretKey` is base64
//! text, `account` is protobuf JSON (bytes as plain base64 strings), counters are numbers.
//!
//! Reading turns the byte fields (in any [`buffer_json`](super::buffer_json) form, so the
//! number-array creds older tools wrote are accepted) into the base64 strings of
//! [`AuthCreds`]' serde form; writing puts Buffers back exactly where Baileys has them. Fields
//! [`AuthCreds`] does not know are kept as read, Buffers included, and written back unchanged.

use serde::de::DeserializeOwned;
use serde_json::Value;
use wa_auth::AuthCreds;

use super::buffer_json::{buffer_base64, bytes_from_value, encode_base64};
use super::error::{CompatError, Result};

/// A path to byte fields: object keys, with `*` for every element of an array.
pub(crate) type Path = &'static [&'static str];

/// Byte fields Baileys writes as Buffers.
const BUFFERS: &[Path] = &[
    &["noiseKey", "private"],
    &["noiseKey", "public"],
    &["pairingEphemeralKeyPair", "private"],
    &["pairingEphemeralKeyPair", "public"],
    &["signedIdentityKey", "private"],
    &["signedIdentityKey", "public"],
    &["signedPreKey", "keyPair", "private"],
    &["signedPreKey", "keyPair", "public"],
    &["signedPreKey", "signature"],
    &["routingInfo"],
    &["signalIdentities", "*", "identifierKey"],
];

/// Byte fields Baileys writes as plain base64 text, accepted as Buffers too when reading.
const TEXT_BYTES: &[Path] = &[
    &["advSecretKey"],
    &["account", "details"],
    &["account", "accountSignatureKey"],
    &["account", "accountSignature"],
    &["account", "deviceSignature"],
];

/// Reads a `creds.json` value.
pub fn from_json(value: &Value) -> Result<AuthCreds> {
    if !value.is_object() {
        return Err(CompatError::WrongType {
            path: String::new(),
            expected: "object",
        });
    }
    deserialize_with_bytes(value, BUFFERS, TEXT_BYTES)
}

/// Deserializes `value` after turning the byte fields at `buffers` and `text_bytes` (in any
/// encoding Baileys or older tools wrote: Buffer objects with base64 or number arrays, plain
/// base64) into the plain base64 strings the serde types read.
pub(crate) fn deserialize_with_bytes<T: DeserializeOwned>(
    value: &Value,
    buffers: &[Path],
    text_bytes: &[Path],
) -> Result<T> {
    let mut value = value.clone();
    for path in buffers.iter().chain(text_bytes) {
        rewrite_at(&mut value, path, String::new(), &mut |v, p| {
            if !v.is_string() {
                *v = Value::from(encode_base64(&bytes_from_value(v, p)?));
            }
            Ok(())
        })?;
    }
    serde_json::from_value(value).map_err(|source| CompatError::Shape {
        path: String::new(),
        source,
    })
}

/// The order of the fields in the `creds.json` Baileys 7 writes for a paired device (the
/// fields of `initAuthCreds` first). Other fields follow in their own order.
pub const BAILEYS_FIELD_ORDER: &[&str] = &[
    "noiseKey",
    "pairingEphemeralKeyPair",
    "signedIdentityKey",
    "signedPreKey",
    "registrationId",
    "advSecretKey",
    "processedHistoryMessages",
    "nextPreKeyId",
    "firstUnuploadedPreKeyId",
    "accountSyncCounter",
    "accountSettings",
    "registered",
    "pairingCode",
    "lastPropHash",
    "routingInfo",
    "account",
    "me",
    "signalIdentities",
    "platform",
    "myAppStateKeyId",
    "lastAccountSyncTimestamp",
];

/// Writes creds as Baileys' `creds.json` value, fields in [`BAILEYS_FIELD_ORDER`].
pub fn to_json(creds: &AuthCreds) -> Result<Value> {
    to_json_ordered(creds, &[])
}

/// Writes creds as Baileys' `creds.json` value, with the fields named in `order` first, in that
/// order (the order of the `creds.json` being replaced, so that a rewrite changes only what
/// changed), then the others in [`BAILEYS_FIELD_ORDER`], then any other.
pub fn to_json_ordered(creds: &AuthCreds, order: &[String]) -> Result<Value> {
    let value = to_json_unordered(creds)?;
    let Value::Object(mut fields) = value else {
        return Ok(value);
    };
    let mut out = serde_json::Map::new();
    let preferred = order
        .iter()
        .map(String::as_str)
        .chain(BAILEYS_FIELD_ORDER.iter().copied());
    for key in preferred {
        if let Some(v) = fields.shift_remove(key) {
            out.insert(key.to_owned(), v);
        }
    }
    out.extend(fields);
    Ok(Value::Object(out))
}

/// Writes creds as Baileys' `creds.json` value, every object's fields in the order of the same
/// object in `previous` (the `creds.json` being replaced, as read), so that a rewrite changes
/// only what changed, nested objects (`me`, `signedPreKey`, `account`, ...) included; fields
/// `previous` does not have follow, at the top level in [`BAILEYS_FIELD_ORDER`].
pub fn to_json_like(creds: &AuthCreds, previous: Option<&Value>) -> Result<Value> {
    let order = previous.map(field_order).unwrap_or_default();
    let mut value = to_json_ordered(creds, &order)?;
    if let (Value::Object(fields), Some(Value::Object(old))) = (&mut value, previous) {
        for (key, field) in fields.iter_mut() {
            if let Some(old_field) = old.get(key) {
                order_like(field, old_field);
            }
        }
    }
    Ok(value)
}

/// Puts the fields of every object in `value` in the order of the same object in `previous`
/// (fields `previous` lacks last, in their own order); arrays element by element.
fn order_like(value: &mut Value, previous: &Value) {
    match (value, previous) {
        (Value::Object(fields), Value::Object(old)) => {
            let mut rest = std::mem::take(fields);
            for (key, old_field) in old {
                if let Some(mut field) = rest.shift_remove(key) {
                    order_like(&mut field, old_field);
                    fields.insert(key.clone(), field);
                }
            }
            fields.extend(rest);
        }
        (Value::Array(items), Value::Array(old)) => {
            for (item, old_item) in items.iter_mut().zip(old) {
                order_like(item, old_item);
            }
        }
        _ => {}
    }
}

/// The field names of a `creds.json` value, in order.
pub fn field_order(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn to_json_unordered(creds: &AuthCreds) -> Result<Value> {
    let mut value = serde_json::to_value(creds).map_err(|e| CompatError::NotRepresentable {
        what: "creds",
        reason: e.to_string(),
    })?;
    for path in BUFFERS {
        rewrite_at(&mut value, path, String::new(), &mut |v, p| {
            *v = buffer_base64(&bytes_from_value(v, p)?);
            Ok(())
        })?;
    }
    // Baileys has no `signalIdentities` until the device is paired.
    if let Some(obj) = value.as_object_mut()
        && obj
            .get("signalIdentities")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    {
        obj.remove("signalIdentities");
    }
    Ok(value)
}

/// Applies `f` to every non-null value found at `path` (JSON Pointer of it as second argument).
pub(crate) fn rewrite_at(
    value: &mut Value,
    path: &[&str],
    pointer: String,
    f: &mut dyn FnMut(&mut Value, &str) -> Result<()>,
) -> Result<()> {
    let Some((first, rest)) = path.split_first() else {
        return if value.is_null() {
            Ok(())
        } else {
            f(value, &pointer)
        };
    };
    match (value, *first) {
        (Value::Array(items), "*") => {
            for (i, item) in items.iter_mut().enumerate() {
                rewrite_at(item, rest, format!("{pointer}/{i}"), f)?;
            }
            Ok(())
        }
        (Value::Object(map), "*") => {
            for (key, item) in map.iter_mut() {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                rewrite_at(item, rest, format!("{pointer}/{escaped}"), f)?;
            }
            Ok(())
        }
        (Value::Object(map), key) => match map.get_mut(key) {
            Some(item) => rewrite_at(item, rest, format!("{pointer}/{key}"), f),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn buffers_go_back_where_baileys_has_them_and_unknown_fields_survive() {
        let mut creds = AuthCreds::generate();
        creds.routing_info = Some(vec![8, 5, 8]);
        creds.extra.insert(
            "futureBuffer".into(),
            json!({"type": "Buffer", "data": [1, 2, 3]}),
        );
        let value = to_json(&creds).unwrap();
        assert_eq!(value["noiseKey"]["private"]["type"], "Buffer");
        assert_eq!(value["signedPreKey"]["signature"]["type"], "Buffer");
        assert_eq!(value["routingInfo"], buffer_base64(&[8, 5, 8]));
        assert!(value["advSecretKey"].is_string());
        assert!(value.get("signalIdentities").is_none());
        assert_eq!(
            value["futureBuffer"],
            json!({"type": "Buffer", "data": [1, 2, 3]})
        );
        assert_eq!(from_json(&value).unwrap(), creds);
    }

    #[test]
    fn rewrites_keep_the_field_order_of_every_nested_object() {
        let mut creds = AuthCreds::generate();
        creds.me = Some(serde_json::from_value(json!({"id": "1@s.whatsapp.net"})).unwrap());
        let mut previous = to_json(&creds).unwrap();
        // Reverse the fields of every nested object, as another writer might order them.
        fn reverse(value: &mut Value) {
            if let Value::Object(fields) = value {
                let reversed: Vec<_> = std::mem::take(fields).into_iter().rev().collect();
                fields.extend(reversed);
                fields.values_mut().for_each(reverse);
            }
        }
        previous
            .as_object_mut()
            .unwrap()
            .values_mut()
            .for_each(reverse);
        previous["me"]["name"] = json!("Alice");
        let order = |v: &Value| serde_json::to_string(v).unwrap();
        let creds = from_json(&previous).unwrap();
        assert_eq!(
            order(&to_json_like(&creds, Some(&previous)).unwrap()),
            order(&previous)
        );
    }

    #[test]
    fn bad_byte_fields_name_their_path() {
        let mut value = to_json(&AuthCreds::generate()).unwrap();
        value["signedIdentityKey"]["public"] = json!({"type": "Buffer", "data": [300]});
        let err = from_json(&value).unwrap_err();
        assert!(
            err.to_string().starts_with("/signedIdentityKey/public"),
            "{err}"
        );
        assert!(from_json(&json!([])).is_err());
        assert!(matches!(
            from_json(&json!({"noiseKey": null})),
            Err(CompatError::Shape { .. })
        ));
    }
}
