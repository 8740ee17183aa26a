//! Typed access to JSON fields with path-carrying errors (internal).

use serde_json::{Map, Value};
use wa_signal::ratchet::{ChainKey, MessageKeySeed, RootKey};
use wa_signal::{PrivateKey, PublicKey};

use super::buffer_json::bytes_from_value;
use super::error::{CompatError, Result};

pub(crate) fn join(path: &str, key: &str) -> String {
    // JSON Pointer escaping: '~' -> "~0", '/' -> "~1" (base64 keys contain '/').
    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"))
}

pub(crate) fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    value.as_object().ok_or_else(|| CompatError::WrongType {
        path: path.to_owned(),
        expected: "object",
    })
}

/// A field that is neither absent nor `null`.
pub(crate) fn optional<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(crate) fn required<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a Value> {
    optional(obj, key).ok_or_else(|| CompatError::Missing {
        path: join(path, key),
    })
}

pub(crate) fn integer(value: &Value, path: &str) -> Result<i64> {
    if let Some(n) = value.as_i64() {
        return Ok(n);
    }
    // JavaScript numbers: accept integral floats such as 3.0.
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => Ok(f as i64),
        _ => Err(CompatError::WrongType {
            path: path.to_owned(),
            expected: "integer",
        }),
    }
}

pub(crate) fn in_range<T: TryFrom<i64>>(value: &Value, path: &str, what: &str) -> Result<T> {
    let n = integer(value, path)?;
    T::try_from(n).map_err(|_| CompatError::InvalidValue {
        path: path.to_owned(),
        reason: format!("{n} is out of range for {what}"),
    })
}

pub(crate) fn u32_field(obj: &Map<String, Value>, path: &str, key: &str) -> Result<u32> {
    in_range(
        required(obj, path, key)?,
        &join(path, key),
        "a 32-bit unsigned number",
    )
}

fn invalid(path: &str, reason: impl std::fmt::Display) -> CompatError {
    CompatError::InvalidValue {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// A Signal-serialised public key (33 bytes, `0x05` first).
pub(crate) fn signal_public_key(value: &Value, path: &str) -> Result<PublicKey> {
    PublicKey::from_signal_bytes(&bytes_from_value(value, path)?).map_err(|e| invalid(path, e))
}

/// A public key given raw (32) or Signal-serialised (33).
pub(crate) fn any_public_key(value: &Value, path: &str) -> Result<PublicKey> {
    PublicKey::from_slice(&bytes_from_value(value, path)?).map_err(|e| invalid(path, e))
}

pub(crate) fn private_key(value: &Value, path: &str) -> Result<PrivateKey> {
    PrivateKey::from_slice(&bytes_from_value(value, path)?).map_err(|e| invalid(path, e))
}

pub(crate) fn root_key(value: &Value, path: &str) -> Result<RootKey> {
    RootKey::from_slice(&bytes_from_value(value, path)?).map_err(|e| invalid(path, e))
}

pub(crate) fn chain_key(value: &Value, path: &str) -> Result<ChainKey> {
    ChainKey::from_slice(&bytes_from_value(value, path)?).map_err(|e| invalid(path, e))
}

pub(crate) fn seed(value: &Value, path: &str) -> Result<MessageKeySeed> {
    MessageKeySeed::from_slice(&bytes_from_value(value, path)?).map_err(|e| invalid(path, e))
}

pub(crate) fn mismatch(path: &str, reason: impl std::fmt::Display) -> CompatError {
    invalid(path, reason)
}
