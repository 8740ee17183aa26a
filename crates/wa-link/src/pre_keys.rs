//! One-time pre-keys: generation, the upload stanza, the server's acknowledgement and top-ups.
//!
//! Ids come from `creds.nextPreKeyId` and are 24-bit (after 16 777 215 they wrap to 1). The
//! counters mean:
//! - `nextPreKeyId`: the id the next generated key gets. Generating keys stores them and
//!   advances it in ONE commit, so an id is never minted twice, whatever crashes.
//! - `firstUnuploadedPreKeyId`: the first key the server has not acknowledged. Keys in
//!   `[firstUnuploaded, next)` exist locally but may not be on the server yet; an upload sends
//!   them again before minting new ones, and only the server's acknowledgement
//!   ([`mark_uploaded`]) moves this counter.
//!
//! (Baileys moves both counters when it generates; after an acknowledged upload the creds are
//! the same as Baileys'.)
//!
//! New key pairs come from the random generator each function is given (a
//! [`SystemProvider`](wa_auth::SystemProvider) in a program). Only the auth state can fail
//! here, so errors are [`AuthError`]s.

use wa_auth::Result;
use wa_auth::{AuthCreds, AuthError, AuthState, KeyId, KeyKind, KeyValue, LockKey, Transaction};
use wa_proto::Node;
use wa_signal::keys::{MAX_PRE_KEY_ID, generate_pre_keys, next_pre_key_id};
use wa_signal::provider::CryptoRng;
use wa_signal::{PreKeyId, PreKeyRecord};

/// How many keys a first upload sends (as WhatsApp Web and Baileys do).
pub const INITIAL_UPLOAD_COUNT: u32 = 30;

/// Below this many keys on the server, top up.
pub const MIN_SERVER_COUNT: u32 = 5;

/// How many ids lie from `from` up to (excluding) `to`, going forward with wrap-around.
fn distance(from: u32, to: u32) -> u32 {
    if to >= from {
        to - from
    } else {
        to + MAX_PRE_KEY_ID - from
    }
}

/// A prepared upload: the stanza and the last key id it carries.
#[derive(Clone, Debug, PartialEq)]
pub struct PreKeyUpload {
    /// The `iq` to send (without an `id`; the connection assigns one).
    pub node: Node,
    /// The keys uploaded, in order.
    pub ids: Vec<PreKeyId>,
}

/// The pre-key upload stanza: registration id, key type, identity key, the keys, and the
/// signed pre-key with its signature.
pub fn upload_node(creds: &AuthCreds, keys: &[PreKeyRecord]) -> Node {
    let id3 = |id: u32| id.to_be_bytes()[1..].to_vec();
    let spk = &creds.signed_pre_key;
    Node::new("iq")
        .with_attr("xmlns", "encrypt")
        .with_attr("type", "set")
        .with_attr("to", "@s.whatsapp.net")
        .with_children([
            Node::new("registration").with_bytes(creds.registration_id.to_be_bytes().to_vec()),
            Node::new("type").with_bytes(vec![wa_signal::curve::DJB_KEY_TYPE]),
            Node::new("identity").with_bytes(creds.signed_identity_key.public.as_bytes().to_vec()),
            Node::new("list").with_children(keys.iter().map(|key| {
                Node::new("key").with_children([
                    Node::new("id").with_bytes(id3(key.id.0)),
                    Node::new("value").with_bytes(key.key_pair.public.as_bytes().to_vec()),
                ])
            })),
            Node::new("skey").with_children([
                Node::new("id").with_bytes(id3(spk.key_id)),
                Node::new("value").with_bytes(spk.key_pair.public.as_bytes().to_vec()),
                Node::new("signature").with_bytes(spk.signature.to_vec()),
            ]),
        ])
}

/// Mints `count` new keys inside `tx`: stores them and advances `nextPreKeyId`.
async fn mint<R: CryptoRng + Send + ?Sized>(
    tx: &mut Transaction<'_>,
    rng: &mut R,
    count: u32,
) -> Result<Vec<PreKeyRecord>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let start = PreKeyId(tx.creds().next_pre_key_id);
    let keys = generate_pre_keys(rng, start, count);
    for key in &keys {
        tx.put(
            KeyKind::PreKey,
            key.id.0.to_string(),
            KeyValue::PreKey(key.clone()),
        );
    }
    let next = next_pre_key_id(keys.last().map_or(start, |k| k.id)).0;
    tx.update_creds(|creds| creds.next_pre_key_id = next)
        .await?;
    Ok(keys)
}

/// Generates `count` new pre-keys from `rng`: stores them and advances `nextPreKeyId` in ONE
/// commit.
pub async fn generate<R: CryptoRng + Send + ?Sized>(
    state: &AuthState,
    rng: &mut R,
    count: u32,
) -> Result<Vec<PreKeyRecord>> {
    state
        .transaction(LockKey::creds(), async |tx: &mut Transaction<'_>| {
            mint(tx, rng, count).await
        })
        .await
}

/// The generated but unacknowledged keys, oldest first, from the first `count` unacknowledged
/// ids, and how many ids that was (a key consumed meanwhile leaves its id out of the keys).
async fn unacknowledged(tx: &mut Transaction<'_>, count: u32) -> Result<(Vec<PreKeyRecord>, u32)> {
    let creds = tx.creds();
    let pending = distance(creds.first_unuploaded_pre_key_id, creds.next_pre_key_id).min(count);
    let mut keys = Vec::with_capacity(pending as usize);
    let mut id = PreKeyId(creds.first_unuploaded_pre_key_id);
    for _ in 0..pending {
        match tx
            .get_one(&KeyKind::PreKey, &KeyId::new(id.0.to_string()))
            .await?
        {
            Some(KeyValue::PreKey(record)) => keys.push(record),
            Some(_) => {
                return Err(AuthError::corrupt_key(
                    &KeyKind::PreKey,
                    &KeyId::new(id.0.to_string()),
                    "",
                    "not a pre-key value",
                ));
            }
            // Consumed or removed meanwhile: nothing to upload for it.
            None => tracing::debug!(id = id.0, "unacknowledged pre-key no longer stored"),
        }
        id = next_pre_key_id(id);
    }
    Ok((keys, pending))
}

/// Prepares an upload of `count` keys: the generated but unacknowledged keys first, then new
/// ones from `rng` for the rest (minted and stored in ONE commit). Send [`PreKeyUpload::node`],
/// then call [`mark_uploaded`] when the server acknowledges it.
pub async fn prepare_upload<R: CryptoRng + Send + ?Sized>(
    state: &AuthState,
    rng: &mut R,
    count: u32,
) -> Result<PreKeyUpload> {
    state
        .transaction(LockKey::creds(), async |tx: &mut Transaction<'_>| {
            let (mut keys, pending) = unacknowledged(tx, count).await?;
            keys.extend(mint(tx, rng, count - pending).await?);
            Ok::<_, AuthError>(PreKeyUpload {
                node: upload_node(&tx.creds(), &keys),
                ids: keys.iter().map(|k| k.id).collect(),
            })
        })
        .await
}

/// Records the server's acknowledgement of `upload`: `firstUnuploadedPreKeyId` moves past its
/// last key (never backwards, never past `nextPreKeyId`). One commit.
pub async fn mark_uploaded(state: &AuthState, upload: &PreKeyUpload) -> Result<()> {
    let Some(last) = upload.ids.last() else {
        return Ok(());
    };
    let after = next_pre_key_id(*last).0;
    state
        .transaction(LockKey::creds(), async |tx: &mut Transaction<'_>| {
            let creds = tx.creds();
            let (first, next) = (creds.first_unuploaded_pre_key_id, creds.next_pre_key_id);
            if distance(first, after) <= distance(first, next) && after != first {
                tx.update_creds(|creds| creds.first_unuploaded_pre_key_id = after)
                    .await?;
            }
            Ok::<_, AuthError>(())
        })
        .await
}

/// The server reported how many of our pre-keys it still has: below [`MIN_SERVER_COUNT`],
/// prepares an upload that brings it back to [`INITIAL_UPLOAD_COUNT`].
pub async fn top_up<R: CryptoRng + Send + ?Sized>(
    state: &AuthState,
    rng: &mut R,
    server_count: u32,
) -> Result<Option<PreKeyUpload>> {
    if server_count >= MIN_SERVER_COUNT {
        return Ok(None);
    }
    prepare_upload(state, rng, INITIAL_UPLOAD_COUNT - server_count)
        .await
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_wraps_at_24_bits() {
        assert_eq!(distance(1, 6), 5);
        assert_eq!(distance(6, 6), 0);
        assert_eq!(distance(MAX_PRE_KEY_ID - 1, 3), 4); // MAX-1, MAX, 1, 2
    }
}
