//! Signed pre-key rotation.
//!
//! [`rotate`] makes a new signed pre-key with the next id (24-bit, wrapping to 1) the current
//! one in creds and keeps the previous one as a *retired* key, so PreKeySignalMessages built on
//! it while the rotation propagates still decrypt. [`prune`] removes retired keys once their
//! grace period has passed. The storage form of retired keys, and their use by decryption, are
//! wa-auth's ([`wa_auth::signed_pre_key`]). Only the auth state can fail here, so errors are
//! [`AuthError`]s.

use std::time::Duration;

use wa_auth::creds::SignedKeyPair;
use wa_auth::signed_pre_key::{RetiredSignedPreKey, retired_kind};
use wa_auth::{AuthError, AuthState, LockKey, Result, Transaction};
use wa_proto::Node;
use wa_signal::keys::MAX_PRE_KEY_ID;
use wa_signal::{Provider, UnixTime};

/// How long a retired signed pre-key is kept by default: 30 days.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The id after `id`, wrapping from [`MAX_PRE_KEY_ID`] back to 1.
fn next_id(id: u32) -> u32 {
    if id >= MAX_PRE_KEY_ID { 1 } else { id + 1 }
}

/// Rotates the signed pre-key: a new key (from `provider`'s randomness) with the next id
/// becomes current, the previous one is retired at `provider`'s time and kept for the grace
/// period. One commit; returns the new key, which must then be sent to the server
/// ([`rotation_node`]).
pub async fn rotate<P: Provider + Send + ?Sized>(
    state: &AuthState,
    provider: &mut P,
) -> Result<SignedKeyPair> {
    state
        .transaction(LockKey::creds(), async |tx: &mut Transaction<'_>| {
            let creds = tx.creds();
            let previous = creds.signed_pre_key.clone();
            let next = next_id(previous.key_id);
            let fresh = SignedKeyPair::generate(provider, &creds.signed_identity_key, next);
            let retired = RetiredSignedPreKey {
                key: previous,
                retired_at: provider.now().as_millis(),
            };
            tx.put(retired_kind(), retired.key_id(), retired.to_value());
            tx.update_creds(|creds| creds.signed_pre_key = fresh.clone())
                .await?;
            tracing::info!(
                retired = retired.key.key_id,
                current = next,
                "rotated the signed pre-key"
            );
            Ok::<_, AuthError>(fresh)
        })
        .await
}

/// Removes retired signed pre-keys retired more than `grace` before `now`; returns their ids.
/// One commit.
pub async fn prune(state: &AuthState, now: UnixTime, grace: Duration) -> Result<Vec<u32>> {
    let kind = retired_kind();
    let ids = state.store().list(&kind).await?;
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    state
        .transaction(LockKey::creds(), async |tx: &mut Transaction<'_>| {
            let mut removed = Vec::new();
            for (id, value) in tx.get(&kind, &ids).await? {
                let retired = RetiredSignedPreKey::from_value(&id, &value)?;
                if now.as_millis().saturating_sub(retired.retired_at) > grace_ms {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_wrap_at_24_bits() {
        assert_eq!(next_id(1), 2);
        assert_eq!(next_id(MAX_PRE_KEY_ID), 1);
    }
}
