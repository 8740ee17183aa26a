//! Serde helpers for the canonical value forms: bytes are base64 strings in human-readable
//! formats (JSON, as stored in PostgreSQL) and raw bytes in binary ones (MessagePack, as stored
//! by the native store). On read, both forms and a JSON number array are accepted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};
use wa_signal::{KeyPair, PrivateKey, PublicKey};

/// Base64 (standard alphabet, padded), as Baileys writes it.
pub fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64, with or without padding.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let trimmed = text.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bytes, a base64 string or an array of byte values")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        b64_decode(v).map_err(|e| E::custom(format!("invalid base64: {e}")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(byte) = seq.next_element::<u8>()? {
            out.push(byte);
        }
        Ok(out)
    }
}

/// `#[serde(with = "bytes")]` for `Vec<u8>`.
pub mod bytes {
    use super::*;

    /// Serializes bytes (base64 when human-readable).
    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&b64_encode(value))
        } else {
            serializer.serialize_bytes(value)
        }
    }

    /// Deserializes bytes from any accepted form.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(BytesVisitor)
        } else {
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }
}

/// `#[serde(with = "opt_bytes")]` for `Option<Vec<u8>>`.
pub mod opt_bytes {
    use super::*;
    use serde::Deserialize;

    /// Serializes present bytes like [`bytes`]; use with `skip_serializing_if`.
    pub fn serialize<S: Serializer>(
        value: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => bytes::serialize(v, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes optional bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::bytes")] Vec<u8>);
        Ok(Option::<Wrap>::deserialize(deserializer)?.map(|w| w.0))
    }
}

fn fixed<const N: usize, E: de::Error>(bytes: Vec<u8>, what: &str) -> Result<[u8; N], E> {
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| E::custom(format!("{what} must be {N} bytes, got {len}")))
}

/// `#[serde(with = "public_key")]`: a raw 32-byte public key.
pub mod public_key {
    use super::*;

    /// Serializes the raw 32 bytes.
    pub fn serialize<S: Serializer>(value: &PublicKey, serializer: S) -> Result<S::Ok, S::Error> {
        bytes::serialize(value.as_bytes(), serializer)
    }

    /// Accepts 32 raw bytes or the 33-byte `0x05` form.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        let bytes = bytes::deserialize(deserializer)?;
        PublicKey::from_slice(&bytes).map_err(de::Error::custom)
    }
}

/// `#[serde(with = "signal_public_key")]`: a public key written in its 33-byte `0x05` form.
pub mod signal_public_key {
    use super::*;

    /// Serializes `0x05 || raw`.
    pub fn serialize<S: Serializer>(value: &PublicKey, serializer: S) -> Result<S::Ok, S::Error> {
        bytes::serialize(&value.serialize(), serializer)
    }

    /// Accepts the 33-byte form (or 32 raw bytes).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        public_key::deserialize(deserializer)
    }
}

/// `#[serde(with = "signature")]`: a 64-byte XEdDSA signature.
pub mod signature {
    use super::*;

    /// Serializes the 64 bytes.
    pub fn serialize<S: Serializer>(value: &[u8; 64], serializer: S) -> Result<S::Ok, S::Error> {
        bytes::serialize(value, serializer)
    }

    /// Deserializes exactly 64 bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 64], D::Error> {
        fixed(bytes::deserialize(deserializer)?, "signature")
    }
}

/// `#[serde(with = "key_pair")]`: `{"private": .., "public": ..}` with raw 32-byte halves, as in
/// Baileys creds. The halves must belong together.
pub mod key_pair {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Repr {
        #[serde(with = "super::bytes")]
        private: Vec<u8>,
        #[serde(with = "super::bytes")]
        public: Vec<u8>,
    }

    /// Serializes both halves.
    pub fn serialize<S: Serializer>(value: &KeyPair, serializer: S) -> Result<S::Ok, S::Error> {
        Repr {
            private: value.private.as_bytes().to_vec(),
            public: value.public.as_bytes().to_vec(),
        }
        .serialize(serializer)
    }

    /// Deserializes and checks both halves.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<KeyPair, D::Error> {
        let mut repr = Repr::deserialize(deserializer)?;
        let private = PrivateKey::from_slice(&repr.private).map_err(de::Error::custom);
        zeroize::Zeroize::zeroize(&mut repr.private);
        let public = PublicKey::from_slice(&repr.public).map_err(de::Error::custom)?;
        KeyPair::from_parts(public, private?).map_err(de::Error::custom)
    }
}
