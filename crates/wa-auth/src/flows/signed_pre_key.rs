//! Signed pre-key rotation.
//!
//! [`rotate`] makes a new signed pre-key with the next id (24-bit, wrapping to 1) the current
//! one in creds and keeps the previous one as a *retired* key, so PreKeySignalMessages built on
//! it while the rotation propagates still decrypt. [`prune`] removes retired keys once their
//! grace period has passed. Retired keys live under the key kind `signed-pre-key` (an
//! [`Other`](crate::KeyKind::Other) kind, so every backend carries it and Baileys ignores it),
//! as `{"keyPair", "signature", "keyId", "retiredAt"}` with `retiredAt` in ms.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wa_proto::Node;
use wa_signal::keys::MAX_PRE_KEY_ID;

use crate::creds::SignedKeyPair;
use crate::error::{AuthError, Result};
use crate::key::{KeyId, KeyKind, KeyValue};
use crate::state::{AuthState, LockKey, Transaction};

/// The key kind of retired signed pre-keys.
pub const RETIRED_KIND: &str = "signed-pre-key";

/// How long a retired signed pre-key is kept by default: 30 days.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

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
    fn to_value(&self) -> KeyValue {
        KeyValue::Other(serde_json::to_value(self).expect("plain data converts to JSON"))
    }

    fn from_value(id: &KeyId, value: &KeyValue) -> Result<Self> {
        let KeyValue::Other(json) = value else {
            return Err(AuthError::corrupt(
                format!("{RETIRED_KIND} key {id}"),
                "not a retired signed pre-key",
            ));
        };
        Self::deserialize(json)
            .map_err(|e| AuthError::corrupt(format!("{RETIRED_KIND} key {id}"), e))
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

/// Rotates the signed pre-key: a new key with the next id becomes current, the previous one is
/// retired (kept for the grace period). One commit; returns the new key, which must then be
/// sent to the server ([`rotation_node`]).
pub async fn rotate(state: &AuthState, now_ms: u64) -> Result<SignedKeyPair> {
    state
        .transaction(LockKey::creds(), async |tx: &mut Transaction<'_>| {
            let creds = tx.creds();
            let previous = creds.signed_pre_key.clone();
            let next_id = if previous.key_id >= MAX_PRE_KEY_ID {
                1
            } else {
                previous.key_id + 1
            };
            let fresh = SignedKeyPair::generate(&creds.signed_identity_key, next_id);
            let retired = RetiredSignedPreKey {
                key: previous,
                retired_at: now_ms,
            };
            tx.put(
                retired_kind(),
                retired.key.key_id.to_string(),
                retired.to_value(),
            );
            tx.update_creds(|creds| creds.signed_pre_key = fresh.clone())
                .await?;
            tracing::info!(
                retired = retired.key.key_id,
                current = next_id,
                "rotated the signed pre-key"
            );
            Ok::<_, AuthError>(fresh)
        })
        .await
}

/// Removes retired signed pre-keys retired more than `grace` before `now_ms`; returns their ids.
/// One commit.
pub async fn prune(state: &AuthState, now_ms: u64, grace: Duration) -> Result<Vec<u32>> {
    let kind = retired_kind();
    let ids = state.store().list(&kind).await?;
    state
        .transaction(LockKey::creds(), async |tx: &mut Transaction<'_>| {
            let mut removed = Vec::new();
            for (id, value) in tx.get(&kind, &ids).await? {
                let retired = RetiredSignedPreKey::from_value(&id, &value)?;
                if now_ms.saturating_sub(retired.retired_at) > grace.as_millis() as u64 {
                    tx.delete(kind.clone(), id);
                    removed.push(retired.key.key_id);
                }
            }
            Ok::<_, AuthError>(removed)
        })
        .await
}

/// The stanza that tells the server about a new signed pre-key.
pub fn rotation_node(key: &SignedKeyPair) -> Node {
    Node::new("iq")
        .with_attr("xmlns", "encrypt")
        .with_attr("type", "set")
        .with_attr("to", "@s.whatsapp.net")
        .with_child(
            Node::new("rotate").with_child(Node::new("skey").with_children([
                Node::new("id").with_bytes(key.key_id.to_be_bytes()[1..].to_vec()),
                Node::new("value").with_bytes(key.key_pair.public.as_bytes().to_vec()),
                Node::new("signature").with_bytes(key.signature.to_vec()),
            ])),
        )
}
