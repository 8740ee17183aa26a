//! 1:1 encryption and decryption over the Double Ratchet.
//!
//! Each operation reads and writes through the store handle it is given; on error nothing is
//! written. Decryption never deletes a one-time pre-key: [`Decrypted::consumed_pre_key`] names
//! the pre-key a new session used, and the caller deletes it in the same transaction.
//!
//! The time recorded in sessions and the ratchet keys of a DH ratchet step come from the
//! [`Provider`] each operation is given.

use crate::address::SignalAddress;
use crate::curve::{KeyPair, PublicKey};
use crate::error::{Result, SignalError};
use crate::message::{CiphertextMessage, PreKeySignalMessage, SignalMessage};
use crate::provider::{CryptoRng, Provider};
use crate::ratchet::{MAX_JUMP, MAX_MESSAGE_KEYS_PER_CHAIN, MAX_RECEIVER_CHAINS, MessageKeys};
use crate::record::{
    ChainState, MessageKeyMaterial, PreKeyId, ReceiverChain, SessionState, StoredMessageKey,
};
use crate::session::accept;
use crate::store::{Direction, IdentityKeyStore, PreKeyStore, SessionStore, SignedPreKeyStore};
use crate::symmetric::{aes_cbc_decrypt, aes_cbc_encrypt};

/// A decrypted 1:1 message and what the caller must do with it.
#[derive(Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The one-time pre-key a new session consumed: delete it in the same transaction.
    pub consumed_pre_key: Option<PreKeyId>,
    /// The sender's identity key replaced a different one saved for the address.
    pub identity_changed: bool,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext_len", &self.plaintext.len())
            .field("consumed_pre_key", &self.consumed_pre_key)
            .field("identity_changed", &self.identity_changed)
            .finish()
    }
}

/// Encrypts `plaintext` for `address` on the current session: a PreKeySignalMessage while the
/// session is pending (we initiated it and no reply came yet), a SignalMessage otherwise.
pub async fn encrypt<S, P>(
    store: &mut S,
    provider: &mut P,
    address: &SignalAddress,
    plaintext: &[u8],
) -> Result<CiphertextMessage>
where
    S: SessionStore + IdentityKeyStore + ?Sized,
    P: Provider + ?Sized,
{
    let no_session = || SignalError::NoSession {
        address: address.to_string(),
    };
    let mut record = store.load_session(address).await?.ok_or_else(no_session)?;
    let our_identity = store.identity_key_pair().await?;
    let our_registration_id = store.local_registration_id().await?;
    let state = record.current_mut().ok_or_else(no_session)?;
    if !store
        .is_trusted_identity(address, &state.remote_identity, Direction::Sending)
        .await?
    {
        return Err(SignalError::UntrustedIdentity {
            address: address.to_string(),
        });
    }
    let message = encrypt_with_state(state, &our_identity, our_registration_id, plaintext)?;
    state.used = provider.now().as_millis();
    store.store_session(address, &record).await?;
    Ok(message)
}

/// Decrypts either kind of 1:1 message.
pub async fn decrypt<S, P>(
    store: &mut S,
    provider: &mut P,
    address: &SignalAddress,
    message: &CiphertextMessage,
) -> Result<Decrypted>
where
    S: SessionStore + IdentityKeyStore + PreKeyStore + SignedPreKeyStore + ?Sized,
    P: Provider + ?Sized,
{
    match message {
        CiphertextMessage::PreKey(m) => {
            decrypt_pre_key_message(store, provider, address, m.serialized()).await
        }
        CiphertextMessage::Whisper(m) => {
            decrypt_message(store, provider, address, m.serialized()).await
        }
    }
}

/// Decrypts a PreKeySignalMessage (`pkmsg`). A new base key runs X3DH as responder with our
/// signed pre-key (and the named one-time pre-key) and makes the new session current; a base
/// key we already have a session for reuses that session.
pub async fn decrypt_pre_key_message<S, P>(
    store: &mut S,
    provider: &mut P,
    address: &SignalAddress,
    bytes: &[u8],
) -> Result<Decrypted>
where
    S: SessionStore + IdentityKeyStore + PreKeyStore + SignedPreKeyStore + ?Sized,
    P: Provider + ?Sized,
{
    let message = PreKeySignalMessage::parse(bytes)?;
    if !store
        .is_trusted_identity(address, &message.identity_key, Direction::Receiving)
        .await?
    {
        return Err(SignalError::UntrustedIdentity {
            address: address.to_string(),
        });
    }
    let our_identity = store.identity_key_pair().await?;
    let mut record = store.load_session(address).await?.unwrap_or_default();
    let now = provider.now().as_millis();

    let existing = record.session_by_base_key(&message.base_key).cloned();
    let is_new = existing.is_none();
    let mut state = match existing {
        Some(state) => state,
        None => responder_session(store, &our_identity, &message, now).await?,
    };
    let plaintext = decrypt_with_state(
        provider,
        &mut state,
        &our_identity.public,
        &message.identity_key,
        &message.message,
    )?;
    state.used = now;
    if is_new {
        record.promote_state(state, now);
    } else {
        replace_state(&mut record, state);
    }
    store.store_session(address, &record).await?;
    let identity_changed = store.save_identity(address, &message.identity_key).await?;
    Ok(Decrypted {
        plaintext,
        consumed_pre_key: if is_new { message.pre_key_id } else { None },
        identity_changed,
    })
}

/// The responder's new session for a PreKeySignalMessage with a base key we have no session
/// for: X3DH with our signed pre-key and the named one-time pre-key, which must still exist.
async fn responder_session<S>(
    store: &mut S,
    our_identity: &KeyPair,
    message: &PreKeySignalMessage,
    now: u64,
) -> Result<SessionState>
where
    S: IdentityKeyStore + PreKeyStore + SignedPreKeyStore + ?Sized,
{
    let signed = store
        .load_signed_pre_key(message.signed_pre_key_id)
        .await?
        .ok_or(SignalError::InvalidSignedPreKeyId(
            message.signed_pre_key_id.0,
        ))?;
    let one_time = match message.pre_key_id {
        Some(id) => Some(
            store
                .load_pre_key(id)
                .await?
                .ok_or(SignalError::InvalidPreKeyId(id.0))?,
        ),
        None => None,
    };
    let our_registration_id = store.local_registration_id().await?;
    Ok(accept(
        our_identity,
        our_registration_id,
        &signed.key_pair,
        one_time.as_ref().map(|k| &k.key_pair),
        message,
        now,
    ))
}

/// Decrypts a SignalMessage (`msg`): the current session is tried first, then the archived
/// ones, most recently closed first. Archived sessions are not reopened.
pub async fn decrypt_message<S, P>(
    store: &mut S,
    provider: &mut P,
    address: &SignalAddress,
    bytes: &[u8],
) -> Result<Decrypted>
where
    S: SessionStore + IdentityKeyStore + ?Sized,
    P: Provider + ?Sized,
{
    let message = SignalMessage::parse(bytes)?;
    let no_session = || SignalError::NoSession {
        address: address.to_string(),
    };
    let mut record = store.load_session(address).await?.ok_or_else(no_session)?;
    if record.sessions().next().is_none() {
        return Err(no_session());
    }
    let our_identity = store.identity_key_pair().await?;

    let mut first_error = None;
    let mut decrypted = None;
    let candidates: Vec<SessionState> = record.sessions().cloned().collect();
    for (position, mut state) in candidates.into_iter().enumerate() {
        let their_identity = state.remote_identity;
        match decrypt_with_state(
            provider,
            &mut state,
            &our_identity.public,
            &their_identity,
            &message,
        ) {
            Ok(plaintext) => {
                decrypted = Some((position, state, plaintext));
                break;
            }
            Err(e) if e.is_session_mismatch() => {
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    let Some((position, mut state, plaintext)) = decrypted else {
        return Err(first_error.unwrap_or(SignalError::BadMac));
    };
    if !store
        .is_trusted_identity(address, &state.remote_identity, Direction::Receiving)
        .await?
    {
        return Err(SignalError::UntrustedIdentity {
            address: address.to_string(),
        });
    }
    state.used = provider.now().as_millis();
    let remote_identity = state.remote_identity;
    if position == 0 && record.has_current_session() {
        if let Some(current) = record.current_mut() {
            *current = state;
        }
    } else {
        let index = position - usize::from(record.has_current_session());
        if let Some(slot) = record.previous_mut().get_mut(index) {
            *slot = state;
        }
    }
    store.store_session(address, &record).await?;
    let identity_changed = store.save_identity(address, &remote_identity).await?;
    Ok(Decrypted {
        plaintext,
        consumed_pre_key: None,
        identity_changed,
    })
}

fn replace_state(record: &mut crate::record::SessionRecord, state: SessionState) {
    if let Some(current) = record.current_mut()
        && current.base_key == state.base_key
    {
        *current = state;
        return;
    }
    if let Some(slot) = record
        .previous_mut()
        .iter_mut()
        .find(|s| s.base_key == state.base_key)
    {
        *slot = state;
    }
}

/// Encrypts on a session state (advancing its sending chain).
pub(crate) fn encrypt_with_state(
    state: &mut SessionState,
    our_identity: &KeyPair,
    our_registration_id: u32,
    plaintext: &[u8],
) -> Result<CiphertextMessage> {
    let chain = state
        .sender_chain
        .as_mut()
        .ok_or_else(|| SignalError::InvalidState("session has no sending chain".into()))?;
    let key = chain
        .key
        .as_ref()
        .ok_or_else(|| SignalError::InvalidState("sending chain has no chain key".into()))?;
    let index = chain.next_index;
    let next_index = index
        .checked_add(1)
        .ok_or_else(|| SignalError::InvalidState("sending chain exhausted".into()))?;
    let keys = key.message_key_seed().derive();
    chain.key = Some(key.next());
    chain.next_index = next_index;

    let ciphertext = aes_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
    let message = SignalMessage::new(
        &keys.mac_key,
        &our_identity.public,
        &state.remote_identity,
        state.our_ratchet_key.public,
        index,
        state.previous_counter,
        ciphertext,
    );
    Ok(match &state.pending_pre_key {
        Some(pending) => CiphertextMessage::PreKey(PreKeySignalMessage::new(
            our_registration_id,
            pending.pre_key_id,
            pending.signed_pre_key_id,
            pending.base_key,
            our_identity.public,
            message,
        )),
        None => CiphertextMessage::Whisper(message),
    })
}

/// Decrypts on a session state. On error the state may be partly advanced: callers work on a
/// copy and keep it only on success.
pub(crate) fn decrypt_with_state<R: CryptoRng + ?Sized>(
    rng: &mut R,
    state: &mut SessionState,
    our_identity: &PublicKey,
    their_identity: &PublicKey,
    message: &SignalMessage,
) -> Result<Vec<u8>> {
    let keys = message_keys_for(rng, state, message)?;
    if !message.verify_mac(&keys.mac_key, their_identity, our_identity) {
        return Err(SignalError::BadMac);
    }
    let plaintext = aes_cbc_decrypt(&keys.cipher_key, &keys.iv, &message.ciphertext)?;
    state.pending_pre_key = None;
    Ok(plaintext)
}

fn message_keys_for<R: CryptoRng + ?Sized>(
    rng: &mut R,
    state: &mut SessionState,
    message: &SignalMessage,
) -> Result<MessageKeys> {
    if state.receiver_chain(&message.ratchet_key).is_none() {
        step_ratchet(rng, state, &message.ratchet_key, message.previous_counter)?;
    }
    let chain = &mut state
        .receiver_chain_mut(&message.ratchet_key)
        .ok_or_else(|| SignalError::InvalidState("receiving chain vanished".into()))?
        .chain;
    let counter = message.counter;
    if counter < chain.next_index {
        let position = chain
            .message_keys
            .iter()
            .position(|k| k.index == counter)
            .ok_or(SignalError::DuplicateMessage { counter })?;
        return Ok(chain.message_keys.remove(position).material.keys());
    }
    if chain.key.is_none() {
        return Err(SignalError::InvalidMessage(format!(
            "counter {counter} is beyond the end of a retired chain"
        )));
    }
    fill_message_keys(chain, counter)?;
    // fill_message_keys stored the key for `counter` last; take it back out.
    match chain.message_keys.pop() {
        Some(k) if k.index == counter => Ok(k.material.keys()),
        _ => Err(SignalError::InvalidState(
            "message key derivation failed".into(),
        )),
    }
}

/// Derives and stores the message keys of `chain` up to and including `until`, advancing the
/// chain key past it. Refuses jumps above [`MAX_JUMP`]; drops the oldest stored keys beyond
/// [`MAX_MESSAGE_KEYS_PER_CHAIN`] (never the newest one, which callers may take back).
fn fill_message_keys(chain: &mut ChainState, until: u32) -> Result<()> {
    if until < chain.next_index {
        return Ok(());
    }
    let skipped = u64::from(until - chain.next_index);
    if skipped > u64::from(MAX_JUMP) {
        return Err(SignalError::TooManySkipped {
            skipped,
            limit: MAX_JUMP,
        });
    }
    let Some(mut key) = chain.key.clone() else {
        return Err(SignalError::InvalidState("chain has no chain key".into()));
    };
    for index in chain.next_index..=until {
        chain.message_keys.push(StoredMessageKey {
            index,
            material: MessageKeyMaterial::Seed(key.message_key_seed()),
        });
        key = key.next();
    }
    chain.key = Some(key);
    chain.next_index = until
        .checked_add(1)
        .ok_or_else(|| SignalError::InvalidMessage("counter overflow".into()))?;
    if chain.message_keys.len() > MAX_MESSAGE_KEYS_PER_CHAIN + 1 {
        let excess = chain.message_keys.len() - MAX_MESSAGE_KEYS_PER_CHAIN - 1;
        chain.message_keys.drain(..excess);
    }
    Ok(())
}

/// The DH ratchet step for a new remote ratchet key: retire the current receiving chain
/// (keeping its keys up to `previous_counter`), derive the new receiving chain, then a new
/// ratchet key pair (from `rng`) and sending chain.
fn step_ratchet<R: CryptoRng + ?Sized>(
    rng: &mut R,
    state: &mut SessionState,
    their_ratchet: &PublicKey,
    previous_counter: u32,
) -> Result<()> {
    let current = state.their_ratchet_key.or_else(|| {
        state
            .receiver_chains
            .iter()
            .rev()
            .find(|c| c.chain.key.is_some())
            .map(|c| c.ratchet_key)
    });
    if let Some(current) = current
        && let Some(rc) = state.receiver_chain_mut(&current)
        && rc.chain.key.is_some()
    {
        fill_message_keys(&mut rc.chain, previous_counter)?;
        if rc.chain.message_keys.len() > MAX_MESSAGE_KEYS_PER_CHAIN {
            let excess = rc.chain.message_keys.len() - MAX_MESSAGE_KEYS_PER_CHAIN;
            rc.chain.message_keys.drain(..excess);
        }
        rc.chain.key = None;
    }

    let (root, receiving) = state
        .root_key
        .step(&state.our_ratchet_key.agree(their_ratchet));
    state.receiver_chains.push(ReceiverChain {
        ratchet_key: *their_ratchet,
        chain: ChainState {
            next_index: 0,
            key: Some(receiving),
            message_keys: Vec::new(),
        },
    });
    if state.receiver_chains.len() > MAX_RECEIVER_CHAINS {
        let excess = state.receiver_chains.len() - MAX_RECEIVER_CHAINS;
        state.receiver_chains.drain(..excess);
    }

    state.previous_counter = state
        .sender_chain
        .as_ref()
        .map_or(0, |c| c.next_index.saturating_sub(1));
    let ratchet = KeyPair::generate(rng);
    let (root, sending) = root.step(&ratchet.agree(their_ratchet));
    state.root_key = root;
    state.our_ratchet_key = ratchet;
    state.sender_chain = Some(ChainState {
        next_index: 0,
        key: Some(sending),
        message_keys: Vec::new(),
    });
    state.their_ratchet_key = Some(*their_ratchet);
    Ok(())
}
