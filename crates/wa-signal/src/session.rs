//! Session setup: pre-key bundles (the initiator's X3DH) and the responder's side of a
//! PreKeySignalMessage.
//!
//! ```
//! # futures::executor::block_on(async {
//! use wa_signal::keys::{generate_pre_keys, generate_signed_pre_key};
//! use wa_signal::provider::TestProvider;
//! use wa_signal::record::{PreKeyId, SignedPreKeyId};
//! use wa_signal::session::{process_bundle, PreKeyBundle};
//! use wa_signal::store::InMemoryStore;
//! use wa_signal::{cipher, KeyPair, SignalAddress};
//!
//! let mut provider = TestProvider::new(1); // a program passes a provider backed by the OS
//! let mut alice = InMemoryStore::new(KeyPair::generate(&mut provider), 1);
//! let mut bob = InMemoryStore::new(KeyPair::generate(&mut provider), 2);
//! let spk = generate_signed_pre_key(&mut provider, bob.identity(), SignedPreKeyId(1), 0);
//! let opk = generate_pre_keys(&mut provider, PreKeyId(1), 1).remove(0);
//! let bundle = PreKeyBundle {
//!     registration_id: 2,
//!     device_id: 0,
//!     pre_key: Some((opk.id, opk.key_pair.public)),
//!     signed_pre_key_id: spk.id,
//!     signed_pre_key: spk.key_pair.public,
//!     signed_pre_key_signature: spk.signature,
//!     identity_key: bob.identity().public,
//! };
//! bob.add_signed_pre_key(spk);
//! bob.add_pre_key(opk);
//!
//! let bob_address = SignalAddress::new("bob", 0).unwrap();
//! let alice_address = SignalAddress::new("alice", 0).unwrap();
//! process_bundle(&mut alice, &mut provider, &bob_address, &bundle).await?;
//! let sent = cipher::encrypt(&mut alice, &mut provider, &bob_address, b"hi").await?;
//! let got = cipher::decrypt(&mut bob, &mut provider, &alice_address, &sent).await?;
//! assert_eq!(got.plaintext, b"hi");
//! assert_eq!(got.consumed_pre_key, Some(PreKeyId(1)));
//! # Ok::<(), wa_signal::SignalError>(())
//! # }).unwrap();
//! ```

use crate::address::SignalAddress;
use crate::curve::{KeyPair, PublicKey, Signature};
use crate::error::{Result, SignalError};
use crate::message::PreKeySignalMessage;
use crate::provider::{CryptoRng, Provider};
use crate::record::{
    BaseKeyType, ChainState, PendingPreKey, PreKeyId, SessionState, SignedPreKeyId,
};
use crate::store::{Direction, IdentityKeyStore, SessionStore};
use crate::x3dh;

/// A remote device's published keys, as fetched from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// The device's registration id.
    pub registration_id: u32,
    /// The device id.
    pub device_id: u32,
    /// A one-time pre-key, when the server still had one.
    pub pre_key: Option<(PreKeyId, PublicKey)>,
    /// The signed pre-key id.
    pub signed_pre_key_id: SignedPreKeyId,
    /// The signed pre-key.
    pub signed_pre_key: PublicKey,
    /// The identity key's XEdDSA signature over `0x05 || signed_pre_key`.
    pub signed_pre_key_signature: Signature,
    /// The device's identity key.
    pub identity_key: PublicKey,
}

/// What [`process_bundle`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleOutcome {
    /// The bundle's identity key replaced a different one saved for the address.
    pub identity_changed: bool,
}

/// Starts a session with `address` from its pre-key bundle (X3DH as initiator). The new
/// session becomes current (an existing one is archived); messages sent on it are
/// PreKeySignalMessages until the first reply arrives. The new base and ratchet keys come from
/// `provider`, and so does the time recorded in the session.
pub async fn process_bundle<S, P>(
    store: &mut S,
    provider: &mut P,
    address: &SignalAddress,
    bundle: &PreKeyBundle,
) -> Result<BundleOutcome>
where
    S: SessionStore + IdentityKeyStore + ?Sized,
    P: Provider + ?Sized,
{
    if !bundle.identity_key.verify(
        &bundle.signed_pre_key.serialize(),
        &bundle.signed_pre_key_signature,
    ) {
        return Err(SignalError::InvalidSignature);
    }
    if !store
        .is_trusted_identity(address, &bundle.identity_key, Direction::Sending)
        .await?
    {
        return Err(SignalError::UntrustedIdentity {
            address: address.to_string(),
        });
    }
    let our_identity = store.identity_key_pair().await?;
    let our_registration_id = store.local_registration_id().await?;
    let now = provider.now().as_millis();
    let state = initiate(provider, &our_identity, our_registration_id, bundle, now);
    let mut record = store.load_session(address).await?.unwrap_or_default();
    record.promote_state(state, now);
    store.store_session(address, &record).await?;
    let identity_changed = store.save_identity(address, &bundle.identity_key).await?;
    Ok(BundleOutcome { identity_changed })
}

/// The initiator's new session state.
pub(crate) fn initiate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    our_identity: &KeyPair,
    our_registration_id: u32,
    bundle: &PreKeyBundle,
    now: u64,
) -> SessionState {
    let base = KeyPair::generate(rng);
    let (root, _their_chain) = x3dh::initiator(
        our_identity,
        &base,
        &bundle.identity_key,
        &bundle.signed_pre_key,
        bundle.pre_key.as_ref().map(|(_, k)| k),
    );
    let ratchet = KeyPair::generate(rng);
    let (root, sending) = root.step(&ratchet.agree(&bundle.signed_pre_key));
    SessionState {
        local_identity: Some(our_identity.public),
        local_registration_id: Some(our_registration_id),
        remote_identity: bundle.identity_key,
        remote_registration_id: bundle.registration_id,
        root_key: root,
        previous_counter: 0,
        our_ratchet_key: ratchet,
        their_ratchet_key: Some(bundle.signed_pre_key),
        sender_chain: Some(ChainState {
            next_index: 0,
            key: Some(sending),
            message_keys: Vec::new(),
        }),
        receiver_chains: Vec::new(),
        pending_pre_key: Some(PendingPreKey {
            pre_key_id: bundle.pre_key.as_ref().map(|(id, _)| *id),
            signed_pre_key_id: bundle.signed_pre_key_id,
            base_key: base.public,
        }),
        base_key: base.public,
        base_key_type: BaseKeyType::Ours,
        created: now,
        used: now,
        closed: None,
    }
}

/// The responder's new session state for a PreKeySignalMessage (before its inner message is
/// decrypted, which steps the ratchet to the initiator's first ratchet key).
pub(crate) fn accept(
    our_identity: &KeyPair,
    our_registration_id: u32,
    signed_pre_key: &KeyPair,
    one_time_pre_key: Option<&KeyPair>,
    message: &PreKeySignalMessage,
    now: u64,
) -> SessionState {
    let (root, chain) = x3dh::responder(
        our_identity,
        signed_pre_key,
        one_time_pre_key,
        &message.identity_key,
        &message.base_key,
    );
    SessionState {
        local_identity: Some(our_identity.public),
        local_registration_id: Some(our_registration_id),
        remote_identity: message.identity_key,
        remote_registration_id: message.registration_id,
        root_key: root,
        previous_counter: 0,
        our_ratchet_key: signed_pre_key.clone(),
        their_ratchet_key: Some(message.base_key),
        sender_chain: Some(ChainState {
            next_index: 0,
            key: Some(chain),
            message_keys: Vec::new(),
        }),
        receiver_chains: Vec::new(),
        pending_pre_key: None,
        base_key: message.base_key,
        base_key_type: BaseKeyType::Theirs,
        created: now,
        used: now,
        closed: None,
    }
}
