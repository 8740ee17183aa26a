//! Key kinds, key ids and typed key values: the vocabulary of the key store.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wa_signal::{PreKeyRecord, PublicKey, SenderKeyRecord, SessionRecord};

use crate::creds::ExtraFields;
use crate::encoding;
use crate::error::{AuthError, Result};

/// The kinds of keys a linked device stores: Baileys' ten, plus any other kind a newer client
/// writes, which every backend carries through instead of dropping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// One-time pre-keys (`pre-key`), by pre-key id.
    PreKey,
    /// Signal sessions (`session`), by Signal address (`user.device`, `<lid>_1.device`).
    Session,
    /// Group sender keys (`sender-key`), by `<group>::<user>::<device>`.
    SenderKey,
    /// Which devices already got our sender key (`sender-key-memory`), by group.
    SenderKeyMemory,
    /// App-state sync keys (`app-state-sync-key`), by base64 key id.
    AppStateSyncKey,
    /// App-state collection versions (`app-state-sync-version`), by collection name.
    AppStateSyncVersion,
    /// PN <-> LID user mappings (`lid-mapping`), by PN user or `<lid>_reverse`.
    LidMapping,
    /// Known device ids of a user (`device-list`), by user.
    DeviceList,
    /// Trusted-contact tokens (`tctoken`), by JID.
    TcToken,
    /// Remote identity keys (`identity-key`), by Signal address.
    IdentityKey,
    /// A kind this version does not know.
    Other(OtherKind),
}

impl KeyKind {
    /// The ten kinds Baileys knows, in Baileys' order.
    pub const KNOWN: [KeyKind; 10] = [
        KeyKind::PreKey,
        KeyKind::Session,
        KeyKind::SenderKey,
        KeyKind::SenderKeyMemory,
        KeyKind::AppStateSyncKey,
        KeyKind::AppStateSyncVersion,
        KeyKind::LidMapping,
        KeyKind::DeviceList,
        KeyKind::TcToken,
        KeyKind::IdentityKey,
    ];

    /// The kind's name, as Baileys spells it (`pre-key`, `session`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            KeyKind::PreKey => "pre-key",
            KeyKind::Session => "session",
            KeyKind::SenderKey => "sender-key",
            KeyKind::SenderKeyMemory => "sender-key-memory",
            KeyKind::AppStateSyncKey => "app-state-sync-key",
            KeyKind::AppStateSyncVersion => "app-state-sync-version",
            KeyKind::LidMapping => "lid-mapping",
            KeyKind::DeviceList => "device-list",
            KeyKind::TcToken => "tctoken",
            KeyKind::IdentityKey => "identity-key",
            KeyKind::Other(other) => other.as_str(),
        }
    }

    /// The kind named `name`: a known kind, or [`KeyKind::Other`]. Fails only for names that
    /// cannot be a kind (empty, too long, or with characters outside `[a-z0-9_-]`).
    pub fn from_name(name: &str) -> Result<Self> {
        if let Some(kind) = Self::KNOWN.iter().find(|k| k.as_str() == name) {
            return Ok(kind.clone());
        }
        OtherKind::new(name).map(KeyKind::Other)
    }

    /// Whether this is one of Baileys' ten kinds.
    pub fn is_known(&self) -> bool {
        !matches!(self, KeyKind::Other(_))
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyKind({})", self.as_str())
    }
}

/// The name of a kind this version does not know. Never the name of a known kind, so a kind
/// has exactly one representation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OtherKind(String);

impl OtherKind {
    /// Longest accepted kind name.
    pub const MAX_LEN: usize = 64;

    /// Validates an unknown kind name: 1..=64 characters of `[a-z0-9_-]`, not a known kind.
    pub fn new(name: &str) -> Result<Self> {
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if name.is_empty() || name.len() > Self::MAX_LEN || !valid_chars {
            return Err(AuthError::invalid(
                "key kind",
                format!(
                    "{name:?} must be 1..={} characters of [a-z0-9_-]",
                    Self::MAX_LEN
                ),
            ));
        }
        if KeyKind::KNOWN.iter().any(|k| k.as_str() == name) {
            return Err(AuthError::invalid(
                "key kind",
                format!("{name:?} is a known kind, not an other kind"),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for KeyKind {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyKind {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        KeyKind::from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// A key id within a kind: Baileys' canonical id strings (`4915112345678.0`, `<lid>_1.3`,
/// `<group>::<user>::<device>`, a pre-key number, a base64 app-state key id...).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Longest accepted key id, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// A key id. Any string is accepted here; [`KeyId::validate`] (run by every commit) rejects
    /// ids no backend can store: empty, longer than 1024 bytes, or containing control characters.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks that the id can be stored by every backend.
    pub fn validate(&self) -> Result<()> {
        let reason = if self.0.is_empty() {
            "must not be empty"
        } else if self.0.len() > Self::MAX_LEN {
            "must be at most 1024 bytes"
        } else if has_control_character(&self.0) {
            "must not contain control characters"
        } else {
            return Ok(());
        };
        Err(AuthError::invalid(format!("key id {:?}", self.0), reason))
    }
}

/// Whether `s` holds a control character (Unicode `Cc`: U+0000..=U+001F and U+007F..=U+009F),
/// checked on the bytes (the last range is `0xC2 0x80..=0x9F` in UTF-8): as `char::is_control`
/// on every char, several times faster, and a bulk commit validates 10,000 ids.
fn has_control_character(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b < 0x20
            || b == 0x7f
            || (b == 0xc2
                && bytes
                    .get(i + 1)
                    .is_some_and(|next| (0x80..=0x9f).contains(next)))
    })
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?})", self.0)
    }
}

impl From<&str> for KeyId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for KeyId {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// A typed key value. Each variant belongs to one kind ([`KeyValue::kind`]); `Other`
/// carries the value of an unknown kind as the JSON it was read as.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // records are the common case; boxing them buys nothing
pub enum KeyValue {
    /// A one-time pre-key.
    PreKey(PreKeyRecord),
    /// A session record.
    Session(SessionRecord),
    /// A sender-key record.
    SenderKey(SenderKeyRecord),
    /// Devices that already received our sender key: JID -> true.
    SenderKeyMemory(BTreeMap<String, bool>),
    /// An app-state sync key.
    AppStateSyncKey(AppStateSyncKeyData),
    /// An app-state collection's LT-hash state.
    AppStateSyncVersion(AppStateSyncVersion),
    /// The other side of a PN <-> LID mapping (a user part).
    LidMapping(String),
    /// Device ids of a user, as decimal strings.
    DeviceList(Vec<String>),
    /// A trusted-contact token.
    TcToken(TcToken),
    /// A remote identity key.
    IdentityKey(PublicKey),
    /// The value of a kind this version does not know, as JSON.
    Other(Value),
}

impl KeyValue {
    /// The kind this value belongs to, or `None` for [`KeyValue::Other`] (any unknown kind).
    pub fn kind(&self) -> Option<KeyKind> {
        Some(match self {
            KeyValue::PreKey(_) => KeyKind::PreKey,
            KeyValue::Session(_) => KeyKind::Session,
            KeyValue::SenderKey(_) => KeyKind::SenderKey,
            KeyValue::SenderKeyMemory(_) => KeyKind::SenderKeyMemory,
            KeyValue::AppStateSyncKey(_) => KeyKind::AppStateSyncKey,
            KeyValue::AppStateSyncVersion(_) => KeyKind::AppStateSyncVersion,
            KeyValue::LidMapping(_) => KeyKind::LidMapping,
            KeyValue::DeviceList(_) => KeyKind::DeviceList,
            KeyValue::TcToken(_) => KeyKind::TcToken,
            KeyValue::IdentityKey(_) => KeyKind::IdentityKey,
            KeyValue::Other(_) => return None,
        })
    }

    /// Whether this value may be stored under `kind` with id `id`.
    pub fn check_fits(&self, kind: &KeyKind, id: &KeyId) -> Result<()> {
        let fits = match (self.kind(), kind) {
            (Some(own), kind) => &own == kind,
            (None, KeyKind::Other(_)) => true,
            (None, _) => false,
        };
        if !fits {
            let own = self
                .kind()
                .map_or_else(|| "other".to_owned(), |k| k.to_string());
            return Err(AuthError::invalid(
                format!("{kind} {id}"),
                format!("a {own} value cannot be stored under kind {kind}"),
            ));
        }
        if let KeyValue::PreKey(record) = self
            && id.as_str() != record.id.0.to_string()
        {
            return Err(AuthError::invalid(
                format!("{kind} {id}"),
                format!("pre-key record {} stored under a different id", record.id.0),
            ));
        }
        Ok(())
    }
}

/// An app-state sync key (`AppStateSyncKeyData`): key bytes, fingerprint, timestamp (ms).
/// `Debug` redacts the key bytes.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStateSyncKeyData {
    /// The key bytes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "encoding::opt_bytes"
    )]
    pub key_data: Option<Vec<u8>>,
    /// The key's fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<AppStateSyncKeyFingerprint>,
    /// Creation time in ms (an int64; written as a decimal string, like protobuf JSON).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "int64_string"
    )]
    pub timestamp: Option<i64>,
}

/// The fingerprint of an app-state sync key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStateSyncKeyFingerprint {
    /// Raw id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_id: Option<u32>,
    /// Current index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_index: Option<u32>,
    /// Device indexes.
    #[serde(default)]
    pub device_indexes: Vec<u32>,
}

impl From<AppStateSyncKeyData> for wa_proto::proto::AppStateSyncKeyData {
    fn from(d: AppStateSyncKeyData) -> Self {
        Self {
            key_data: d.key_data,
            fingerprint: d
                .fingerprint
                .map(|f| wa_proto::proto::AppStateSyncKeyFingerprint {
                    raw_id: f.raw_id,
                    current_index: f.current_index,
                    device_indexes: f.device_indexes,
                }),
            timestamp: d.timestamp,
        }
    }
}

impl From<wa_proto::proto::AppStateSyncKeyData> for AppStateSyncKeyData {
    fn from(p: wa_proto::proto::AppStateSyncKeyData) -> Self {
        Self {
            key_data: p.key_data,
            fingerprint: p.fingerprint.map(|f| AppStateSyncKeyFingerprint {
                raw_id: f.raw_id,
                current_index: f.current_index,
                device_indexes: f.device_indexes,
            }),
            timestamp: p.timestamp,
        }
    }
}

/// An app-state collection's state: version, LT-hash and the value MAC of every index MAC.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStateSyncVersion {
    /// Collection version.
    pub version: u64,
    /// The 128-byte LT-hash.
    #[serde(with = "encoding::bytes")]
    pub hash: Vec<u8>,
    /// Base64 index MAC -> value MAC.
    #[serde(default, with = "index_value_map")]
    pub index_value_map: BTreeMap<String, Vec<u8>>,
    /// Other fields, kept as read.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

/// A trusted-contact token and its timestamp. `Debug` redacts the token.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcToken {
    /// The token bytes.
    #[serde(with = "encoding::bytes")]
    pub token: Vec<u8>,
    /// The timestamp, as stored (Unix seconds as a decimal string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Other fields, kept as read.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl fmt::Debug for AppStateSyncKeyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppStateSyncKeyData")
            .field("key_data", &self.key_data.as_ref().map(|_| "<redacted>"))
            .field("fingerprint", &self.fingerprint)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

impl fmt::Debug for TcToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcToken")
            .field("token", &"<redacted>")
            .field("timestamp", &self.timestamp)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

mod int64_string {
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(value: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) if serializer.is_human_readable() => serializer.serialize_str(&v.to_string()),
            Some(v) => serializer.serialize_i64(*v),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Int(i64),
            Text(String),
        }
        match Option::<Repr>::deserialize(deserializer)? {
            None => Ok(None),
            Some(Repr::Int(v)) => Ok(Some(v)),
            Some(Repr::Text(t)) => t
                .parse()
                .map(Some)
                .map_err(|_| de::Error::custom(format!("{t:?} is not an int64"))),
        }
    }
}

mod index_value_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry {
        #[serde(with = "crate::encoding::bytes")]
        value_mac: Vec<u8>,
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let entries: BTreeMap<&str, Entry> = map
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    Entry {
                        value_mac: v.clone(),
                    },
                )
            })
            .collect();
        entries.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let entries = BTreeMap::<String, Entry>::deserialize(deserializer)?;
        Ok(entries.into_iter().map(|(k, e)| (k, e.value_mac)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_as_char_is_control_finds_them() {
        let chars = (0..0x800u32)
            .chain([0xfeff, 0x2028, 0x1_f600])
            .filter_map(char::from_u32);
        for c in chars {
            for s in [
                c.to_string(),
                format!("a{c}"),
                format!("{c}é"),
                format!("\u{c2}{c}"),
            ] {
                let expected = s.chars().any(char::is_control);
                assert_eq!(has_control_character(&s), expected, "{s:?}");
            }
        }
    }

    #[test]
    fn kinds_have_one_representation() {
        for kind in KeyKind::KNOWN {
            assert_eq!(KeyKind::from_name(kind.as_str()).unwrap(), kind);
            assert!(OtherKind::new(kind.as_str()).is_err());
        }
        let other = KeyKind::from_name("future-kind").unwrap();
        assert!(!other.is_known());
        assert_eq!(other.as_str(), "future-kind");
        assert!(KeyKind::from_name("").is_err());
        assert!(KeyKind::from_name("Bad Kind").is_err());
        assert!(KeyKind::from_name("a/b").is_err());
    }

    #[test]
    fn key_ids_are_validated() {
        assert!(KeyId::new("4915112345678.0").validate().is_ok());
        assert!(KeyId::new("AAAAAP/6").validate().is_ok());
        assert!(KeyId::new("").validate().is_err());
        assert!(KeyId::new("a\0b").validate().is_err());
        assert!(KeyId::new("x".repeat(1025)).validate().is_err());
    }

    #[test]
    fn values_fit_only_their_kind() {
        let value = KeyValue::LidMapping("123".into());
        assert!(
            value
                .check_fits(&KeyKind::LidMapping, &"15550100001".into())
                .is_ok()
        );
        assert!(
            value
                .check_fits(&KeyKind::Session, &"15550100001".into())
                .is_err()
        );
        let other = KeyValue::Other(serde_json::json!({"x": 1}));
        assert!(
            other
                .check_fits(&KeyKind::from_name("new-kind").unwrap(), &"a".into())
                .is_ok()
        );
        assert!(other.check_fits(&KeyKind::Session, &"a".into()).is_err());
    }

    #[test]
    fn debug_redacts_key_material() {
        let key = AppStateSyncKeyData {
            key_data: Some(vec![0xab; 32]),
            ..Default::default()
        };
        let token = TcToken {
            token: vec![0xcd; 20],
            ..Default::default()
        };
        for shown in [
            format!("{key:?}"),
            format!("{token:?}"),
            format!("{:?}", KeyValue::AppStateSyncKey(key.clone())),
        ] {
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(!shown.contains("171") && !shown.contains("205"), "{shown}");
        }
    }
}
