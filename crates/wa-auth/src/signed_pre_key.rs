//! Retired signed pre-keys: a signed pre-key rotated out of creds is kept for a grace period,
//! so PreKeySignalMessages built on it while the rotation propagates still decrypt (the Signal
//! store adapter looks here when the id is not the current one). Rotating and pruning them is
//! wa-link's job; this module is their storage form.
//!
//! They live under the key kind `signed-pre-key` (an [`Other`](crate::KeyKind::Other) kind, so
//! every backend carries it and Baileys ignores it), keyed by id, as
//! `{"keyPair", "signature", "keyId", "retiredAt"}` with `retiredAt` in ms since the epoch.

use serde::{Deserialize, Serialize};

use crate::creds::SignedKeyPair;
use crate::error::{AuthError, Result};
use crate::key::{KeyId, KeyKind, KeyValue};
use crate::state::Transaction;

/// The key kind of retired signed pre-keys.
pub const RETIRED_KIND: &str = "signed-pre-key";

/// The kind under which retired signed pre-keys are stored.
pub fn retired_kind() -> KeyKind {
    KeyKind::from_name(RETIRED_KIND).expect("a valid kind name")
}

/// A retired signed pre-key and when it was retired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetiredSignedPreKey {
    /// The key as it was in creds.
    #[serde(flatten)]
    pub key: SignedKeyPair,
    /// When it was retired, ms since the Unix epoch.
    pub retired_at: u64,
}

impl RetiredSignedPreKey {
    /// The id it is stored under.
    pub fn key_id(&self) -> KeyId {
        KeyId::new(self.key.key_id.to_string())
    }

    /// Its stored value.
    pub fn to_value(&self) -> KeyValue {
        KeyValue::Other(serde_json::to_value(self).expect("plain data converts to JSON"))
    }

    /// Reads the value stored under `id`; anything else is [`AuthError::Corrupt`] naming it.
    pub fn from_value(id: &KeyId, value: &KeyValue) -> Result<Self> {
        let KeyValue::Other(json) = value else {
            return Err(AuthError::corrupt_key(
                &retired_kind(),
                id,
                "",
                "not a retired signed pre-key",
            ));
        };
        Self::deserialize(json).map_err(|e| AuthError::corrupt_key(&retired_kind(), id, "", e))
    }
}

/// The retired signed pre-key `id`, if it is still kept.
pub async fn load_retired(
    tx: &mut Transaction<'_>,
    id: u32,
) -> Result<Option<RetiredSignedPreKey>> {
    let key_id = KeyId::new(id.to_string());
    match tx.get_one(&retired_kind(), &key_id).await? {
        Some(value) => RetiredSignedPreKey::from_value(&key_id, &value).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_signal::provider::TestProvider;

    #[test]
    fn the_stored_form_round_trips_and_names_bad_values() {
        let rng = &mut TestProvider::new(1);
        let identity = wa_signal::KeyPair::generate(rng);
        let retired = RetiredSignedPreKey {
            key: SignedKeyPair::generate(rng, &identity, 7),
            retired_at: 1_750_000_000_000,
        };
        let id = retired.key_id();
        assert_eq!(id.as_str(), "7");
        let value = retired.to_value();
        let KeyValue::Other(json) = &value else {
            panic!("{value:?}")
        };
        for field in ["keyPair", "signature", "keyId", "retiredAt"] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
        assert_eq!(
            RetiredSignedPreKey::from_value(&id, &value).unwrap(),
            retired
        );
        let err =
            RetiredSignedPreKey::from_value(&id, &KeyValue::LidMapping("1".into())).unwrap_err();
        assert!(
            matches!(
                err,
                AuthError::Corrupt { item: crate::error::CorruptItem::Key { ref kind, ref id }, .. }
                    if *kind == retired_kind() && id.as_str() == "7"
            ) && err.to_string().contains("signed-pre-key key 7"),
            "{err}"
        );
    }
}
