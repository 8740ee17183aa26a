//! Group messaging with sender keys.
//!
//! Each (group, sender device) has a sender-key chain. The sender distributes its chain key and
//! signing key in a [`SenderKeyDistributionMessage`] (over 1:1 sessions), then encrypts each
//! group message once with the next chain key and signs it.
//!
//! - Chain: seed = HMAC-SHA256(chain key, `0x01`), next chain key = HMAC-SHA256(chain key,
//!   `0x02`); HKDF-SHA256(salt = 32 zero bytes, ikm = seed, info = `"WhisperGroup"`) -> IV (16)
//!   || cipher key (32); AES-256-CBC with PKCS#7.
//! - Out-of-order and late messages decrypt with kept seeds; a record keeps at most five
//!   states; forward jumps are bounded by [`MAX_JUMP`].
//!
//! Creating a sender key and signing a message draw randomness from the [`Provider`] given.
//!
//! ```
//! # futures::executor::block_on(async {
//! use wa_signal::provider::TestProvider;
//! use wa_signal::store::InMemoryStore;
//! use wa_signal::{group, KeyPair, SenderKeyName, SignalAddress};
//!
//! let mut provider = TestProvider::new(1); // a program passes a provider backed by the OS
//! let name = SenderKeyName::new("123@g.us", SignalAddress::new("alice", 0).unwrap());
//! let mut alice = InMemoryStore::new(KeyPair::generate(&mut provider), 1);
//! let mut bob = InMemoryStore::new(KeyPair::generate(&mut provider), 2);
//! let skdm = group::create_distribution_message(&mut alice, &mut provider, &name).await?;
//! group::process_distribution_message(&mut bob, &name, &skdm).await?;
//! let sent = group::encrypt(&mut alice, &mut provider, &name, b"hello group").await?;
//! assert_eq!(group::decrypt(&mut bob, &name, sent.serialized()).await?, b"hello group");
//! # Ok::<(), wa_signal::SignalError>(())
//! # }).unwrap();
//! ```

use rand::RngExt;
use zeroize::Zeroize;

use crate::address::SenderKeyName;
use crate::curve::KeyPair;
use crate::error::{Result, SignalError};
use crate::message::{SenderKeyDistributionMessage, SenderKeyMessage};
use crate::provider::Provider;
use crate::ratchet::{ChainKey, MAX_JUMP, MessageKeySeed};
use crate::record::{SenderKeyState, SenderMessageKey};
use crate::store::SenderKeyStore;
use crate::symmetric::{aes_cbc_decrypt, aes_cbc_encrypt, hkdf_sha256};

/// The most message keys kept per sender-key state (the oldest go).
pub const MAX_MESSAGE_KEYS: usize = 2000;

/// The keys of one group message, from a seed: HKDF(seed, `"WhisperGroup"`) -> IV || key.
struct GroupMessageKeys {
    iv: [u8; 16],
    cipher_key: [u8; 32],
}

impl Drop for GroupMessageKeys {
    fn drop(&mut self) {
        self.iv.zeroize();
        self.cipher_key.zeroize();
    }
}

fn group_keys(seed: &MessageKeySeed) -> GroupMessageKeys {
    let mut okm: [u8; 48] = hkdf_sha256(&[0u8; 32], seed.as_bytes(), b"WhisperGroup");
    let mut keys = GroupMessageKeys {
        iv: [0; 16],
        cipher_key: [0; 32],
    };
    keys.iv.copy_from_slice(&okm[..16]);
    keys.cipher_key.copy_from_slice(&okm[16..]);
    okm.zeroize();
    keys
}

/// Our sender-key distribution message for `name` (our own group sender key), creating the
/// sender key (random id, chain key and signing key from `provider`, iteration 0) when there
/// is none.
pub async fn create_distribution_message<S, P>(
    store: &mut S,
    provider: &mut P,
    name: &SenderKeyName,
) -> Result<SenderKeyDistributionMessage>
where
    S: SenderKeyStore + ?Sized,
    P: Provider + ?Sized,
{
    let mut record = store.load_sender_key(name).await?.unwrap_or_default();
    if record.is_empty() {
        let mut chain = [0u8; 32];
        provider.fill_bytes(&mut chain);
        let signing = KeyPair::generate(provider);
        record.add_state(SenderKeyState {
            key_id: provider.random_range(0..0x7FFF_FFFF),
            iteration: 0,
            chain_key: ChainKey::from_bytes(chain),
            signing_public: signing.public,
            signing_private: Some(signing.private.clone()),
            message_keys: Vec::new(),
            blank_message_key_slots: Vec::new(),
        });
        chain.zeroize();
        store.store_sender_key(name, &record).await?;
    }
    let state = record
        .newest()
        .ok_or_else(|| SignalError::NoSenderKeyState {
            name: name.to_string(),
            key_id: None,
        })?;
    Ok(SenderKeyDistributionMessage::new(
        state.key_id,
        state.iteration,
        state.chain_key.clone(),
        state.signing_public,
    ))
}

/// Stores the sender key a group member distributed. A state with the same id and signing key
/// is kept as it is (re-processing an SKDM must not rewind its chain); otherwise the state is
/// added as the newest, and the record keeps at most five.
pub async fn process_distribution_message<S>(
    store: &mut S,
    name: &SenderKeyName,
    message: &SenderKeyDistributionMessage,
) -> Result<()>
where
    S: SenderKeyStore + ?Sized,
{
    let mut record = store.load_sender_key(name).await?.unwrap_or_default();
    if record
        .states()
        .iter()
        .any(|s| s.key_id == message.key_id && s.signing_public == message.signing_key)
    {
        return Ok(());
    }
    record.add_state(SenderKeyState {
        key_id: message.key_id,
        iteration: message.iteration,
        chain_key: message.chain_key.clone(),
        signing_public: message.signing_key,
        signing_private: None,
        message_keys: Vec::new(),
        blank_message_key_slots: Vec::new(),
    });
    store.store_sender_key(name, &record).await
}

/// Parses and processes a serialized SKDM.
pub async fn process_distribution_bytes<S>(
    store: &mut S,
    name: &SenderKeyName,
    bytes: &[u8],
) -> Result<()>
where
    S: SenderKeyStore + ?Sized,
{
    let message = SenderKeyDistributionMessage::parse(bytes)?;
    process_distribution_message(store, name, &message).await
}

/// Encrypts a group message with our newest sender-key state for `name`, signed with
/// randomness from `provider`.
pub async fn encrypt<S, P>(
    store: &mut S,
    provider: &mut P,
    name: &SenderKeyName,
    plaintext: &[u8],
) -> Result<SenderKeyMessage>
where
    S: SenderKeyStore + ?Sized,
    P: Provider + ?Sized,
{
    let no_state = || SignalError::NoSenderKeyState {
        name: name.to_string(),
        key_id: None,
    };
    let mut record = store.load_sender_key(name).await?.ok_or_else(no_state)?;
    let state = record.states_mut().last_mut().ok_or_else(no_state)?;
    let signing = state.signing_private.clone().ok_or_else(|| {
        SignalError::InvalidState(format!("sender key {name} has no private signing key"))
    })?;
    let iteration = state.iteration;
    let next = iteration
        .checked_add(1)
        .ok_or_else(|| SignalError::InvalidState("sender-key chain exhausted".into()))?;
    let keys = group_keys(&state.chain_key.message_key_seed());
    let ciphertext = aes_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
    let message = SenderKeyMessage::new(provider, &signing, state.key_id, iteration, ciphertext);
    state.chain_key = state.chain_key.next();
    state.iteration = next;
    store.store_sender_key(name, &record).await?;
    Ok(message)
}

/// Decrypts a group message from the sender `name`.
pub async fn decrypt<S>(store: &mut S, name: &SenderKeyName, bytes: &[u8]) -> Result<Vec<u8>>
where
    S: SenderKeyStore + ?Sized,
{
    let message = SenderKeyMessage::parse(bytes)?;
    let mut record =
        store
            .load_sender_key(name)
            .await?
            .ok_or_else(|| SignalError::NoSenderKeyState {
                name: name.to_string(),
                key_id: None,
            })?;
    let stored =
        record
            .state_by_id_mut(message.key_id)
            .ok_or_else(|| SignalError::NoSenderKeyState {
                name: name.to_string(),
                key_id: Some(message.key_id),
            })?;
    if !message.verify_signature(&stored.signing_public) {
        return Err(SignalError::InvalidSignature);
    }
    let mut state = stored.clone();
    let seed = message_key_seed(&mut state, message.iteration)?;
    let keys = group_keys(&seed);
    let plaintext = aes_cbc_decrypt(&keys.cipher_key, &keys.iv, &message.ciphertext)?;
    *stored = state;
    store.store_sender_key(name, &record).await?;
    Ok(plaintext)
}

/// The seed for `iteration`: a kept one (removed) for an earlier iteration, or derived by
/// advancing the chain and keeping the skipped seeds.
fn message_key_seed(state: &mut SenderKeyState, iteration: u32) -> Result<MessageKeySeed> {
    if iteration < state.iteration {
        let position = state
            .message_keys
            .iter()
            .position(|k| k.iteration == iteration)
            .ok_or(SignalError::DuplicateMessage { counter: iteration })?;
        state.blank_message_key_slots.clear();
        return Ok(state.message_keys.remove(position).seed);
    }
    let skipped = u64::from(iteration - state.iteration);
    if skipped > u64::from(MAX_JUMP) {
        return Err(SignalError::TooManySkipped {
            skipped,
            limit: MAX_JUMP,
        });
    }
    let next = iteration
        .checked_add(1)
        .ok_or_else(|| SignalError::InvalidMessage("iteration overflow".into()))?;
    if skipped > 0 {
        state.blank_message_key_slots.clear();
    }
    let mut chain = state.chain_key.clone();
    for skipped_iteration in state.iteration..iteration {
        state.message_keys.push(SenderMessageKey {
            iteration: skipped_iteration,
            seed: chain.message_key_seed(),
        });
        chain = chain.next();
    }
    if state.message_keys.len() > MAX_MESSAGE_KEYS {
        let excess = state.message_keys.len() - MAX_MESSAGE_KEYS;
        state.message_keys.drain(..excess);
    }
    let seed = chain.message_key_seed();
    state.chain_key = chain.next();
    state.iteration = next;
    Ok(seed)
}
