//! The store traits the protocol runs against.
//!
//! A transaction handle (wa-auth's `Transaction`) implements all of them, so one whole decrypt or
//! encrypt reads and writes through a single unit of work that commits atomically. The protocol
//! never deletes a one-time pre-key itself: the decrypt result names the consumed pre-key and the
//! caller removes it in the same transaction as the new session.
//!
//! `InMemoryStore` (feature `test-util`) implements every trait over hash maps, for tests and
//! benchmarks.

#[cfg(any(test, feature = "test-util"))]
pub mod memory;

#[cfg(any(test, feature = "test-util"))]
pub use memory::InMemoryStore;

use async_trait::async_trait;

use crate::address::{SenderKeyName, SignalAddress};
use crate::curve::{KeyPair, PublicKey};
use crate::error::Result;
use crate::record::{
    PreKeyId, PreKeyRecord, SenderKeyRecord, SessionRecord, SignedPreKeyId, SignedPreKeyRecord,
};

/// Sessions by remote address.
#[async_trait]
pub trait SessionStore: Send {
    /// The session record for `address`, if any.
    async fn load_session(&mut self, address: &SignalAddress) -> Result<Option<SessionRecord>>;
    /// Stores (replaces) the session record for `address`.
    async fn store_session(
        &mut self,
        address: &SignalAddress,
        record: &SessionRecord,
    ) -> Result<()>;
}

/// One-time pre-keys (read-only to the protocol; see the module docs).
#[async_trait]
pub trait PreKeyStore: Send {
    /// The pre-key `id`, if it still exists.
    async fn load_pre_key(&mut self, id: PreKeyId) -> Result<Option<PreKeyRecord>>;
}

/// Signed pre-keys.
#[async_trait]
pub trait SignedPreKeyStore: Send {
    /// The signed pre-key `id`, if it exists.
    async fn load_signed_pre_key(
        &mut self,
        id: SignedPreKeyId,
    ) -> Result<Option<SignedPreKeyRecord>>;
}

/// Which way a remote identity key is about to be used, for [`IdentityKeyStore::is_trusted_identity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We are about to encrypt to (or build a session with) the remote device.
    Sending,
    /// We received a message from the remote device.
    Receiving,
}

/// Our identity and what we know of remote identities.
#[async_trait]
pub trait IdentityKeyStore: Send {
    /// Our identity key pair.
    async fn identity_key_pair(&mut self) -> Result<KeyPair>;
    /// Our registration id.
    async fn local_registration_id(&mut self) -> Result<u32>;
    /// The identity key last saved for `address`, if any.
    async fn get_identity(&mut self, address: &SignalAddress) -> Result<Option<PublicKey>>;
    /// Saves `identity` for `address`; returns `true` when it replaced a different key. The
    /// protocol calls it after every successful decrypt and bundle, and reports the result as
    /// `identity_changed`.
    async fn save_identity(
        &mut self,
        address: &SignalAddress,
        identity: &PublicKey,
    ) -> Result<bool>;
    /// Whether `identity` may be used for `address` in `direction`. WhatsApp clients accept a
    /// changed identity (they surface the change instead), so the default trusts every key;
    /// override it for a stricter policy (a `false` fails the operation with
    /// [`SignalError::UntrustedIdentity`](crate::SignalError::UntrustedIdentity)).
    async fn is_trusted_identity(
        &mut self,
        address: &SignalAddress,
        identity: &PublicKey,
        direction: Direction,
    ) -> Result<bool> {
        let _ = (address, identity, direction);
        Ok(true)
    }
}

/// Sender keys by (group, sender).
#[async_trait]
pub trait SenderKeyStore: Send {
    /// The sender-key record for `name`, if any.
    async fn load_sender_key(&mut self, name: &SenderKeyName) -> Result<Option<SenderKeyRecord>>;
    /// Stores (replaces) the sender-key record for `name`.
    async fn store_sender_key(
        &mut self,
        name: &SenderKeyName,
        record: &SenderKeyRecord,
    ) -> Result<()>;
}

/// Everything a full protocol operation needs, in one handle.
pub trait ProtocolStore:
    SessionStore + PreKeyStore + SignedPreKeyStore + IdentityKeyStore + SenderKeyStore
{
}

impl<T> ProtocolStore for T where
    T: SessionStore + PreKeyStore + SignedPreKeyStore + IdentityKeyStore + SenderKeyStore
{
}
