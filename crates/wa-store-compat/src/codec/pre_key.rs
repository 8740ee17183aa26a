//! Key pairs as Baileys stores them: `{"private": <Buffer 32>, "public": <Buffer 32>}` (raw
//! keys, no `0x05` prefix), used by `pre-key-<id>.json` and the creds (`signedIdentityKey`,
//! `noiseKey`, ...), and the creds' `signedPreKey` `{keyPair, signature, keyId}`.

use serde_json::{Map, Value};
use wa_signal::record::{PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord};
use wa_signal::{KeyPair, Signature};

use super::buffer_json::{buffer_base64, bytes_from_value};
use super::error::Result;
use super::value::{any_public_key, join, mismatch, object, private_key, required, u32_field};

/// Reads a `{private, public}` key pair (bytes in any BufferJSON form; the public key raw or
/// `0x05`-prefixed). The halves must match.
pub fn key_pair_from_json(value: &Value) -> Result<KeyPair> {
    key_pair_at(value, "")
}

fn key_pair_at(value: &Value, path: &str) -> Result<KeyPair> {
    let obj = object(value, path)?;
    let private = private_key(required(obj, path, "private")?, &join(path, "private"))?;
    let public = any_public_key(required(obj, path, "public")?, &join(path, "public"))?;
    KeyPair::from_parts(public, private).map_err(|e| mismatch(path, e))
}

/// Writes a key pair as Baileys does: raw 32-byte keys as base64 Buffers.
pub fn key_pair_to_json(pair: &KeyPair) -> Value {
    let mut out = Map::new();
    out.insert("private".into(), buffer_base64(pair.private.as_bytes()));
    out.insert("public".into(), buffer_base64(pair.public.as_bytes()));
    Value::Object(out)
}

/// Reads `pre-key-<id>.json` (the id comes from the file name).
pub fn pre_key_from_json(id: PreKeyId, value: &Value) -> Result<PreKeyRecord> {
    Ok(PreKeyRecord {
        id,
        key_pair: key_pair_from_json(value)?,
    })
}

/// Writes a pre-key's file value (its key pair).
pub fn pre_key_to_json(record: &PreKeyRecord) -> Value {
    key_pair_to_json(&record.key_pair)
}

/// Reads the creds' `signedPreKey`: `{keyPair, signature, keyId}`. Baileys keeps no creation
/// time, so the record's timestamp is 0.
pub fn signed_pre_key_from_json(value: &Value) -> Result<SignedPreKeyRecord> {
    let obj = object(value, "")?;
    let key_pair = key_pair_at(required(obj, "", "keyPair")?, "/keyPair")?;
    let signature = bytes_from_value(required(obj, "", "signature")?, "/signature")?;
    let signature: Signature = signature.as_slice().try_into().map_err(|_| {
        mismatch(
            "/signature",
            format!("signature must be 64 bytes, got {}", signature.len()),
        )
    })?;
    Ok(SignedPreKeyRecord {
        id: SignedPreKeyId(u32_field(obj, "", "keyId")?),
        key_pair,
        signature,
        timestamp: 0,
    })
}

/// Writes the creds' `signedPreKey` value.
pub fn signed_pre_key_to_json(record: &SignedPreKeyRecord) -> Value {
    let mut out = Map::new();
    out.insert("keyPair".into(), key_pair_to_json(&record.key_pair));
    out.insert("signature".into(), buffer_base64(&record.signature));
    out.insert("keyId".into(), Value::from(record.id.0));
    Value::Object(out)
}
