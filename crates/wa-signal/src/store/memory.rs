//! An in-memory implementation of every store trait, for tests and benchmarks (feature
//! `test-util`).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::{IdentityKeyStore, PreKeyStore, SenderKeyStore, SessionStore, SignedPreKeyStore};
use crate::address::{SenderKeyName, SignalAddress};
use crate::curve::{KeyPair, PublicKey};
use crate::error::Result;
use crate::record::{
    PreKeyId, PreKeyRecord, SenderKeyRecord, SessionRecord, SignedPreKeyId, SignedPreKeyRecord,
};

/// Every store trait over hash maps. Not transactional: an operation that fails part-way has
/// written nothing only because the protocol writes last.
#[derive(Clone, Debug)]
pub struct InMemoryStore {
    identity: KeyPair,
    registration_id: u32,
    pre_keys: BTreeMap<PreKeyId, PreKeyRecord>,
    signed_pre_keys: BTreeMap<SignedPreKeyId, SignedPreKeyRecord>,
    sessions: HashMap<SignalAddress, SessionRecord>,
    sender_keys: HashMap<SenderKeyName, SenderKeyRecord>,
    identities: HashMap<SignalAddress, PublicKey>,
}

impl InMemoryStore {
    /// An empty store for an account with this identity and registration id.
    pub fn new(identity: KeyPair, registration_id: u32) -> Self {
        Self {
            identity,
            registration_id,
            pre_keys: BTreeMap::new(),
            signed_pre_keys: BTreeMap::new(),
            sessions: HashMap::new(),
            sender_keys: HashMap::new(),
            identities: HashMap::new(),
        }
    }

    /// Our identity key pair.
    pub fn identity(&self) -> &KeyPair {
        &self.identity
    }

    /// Our registration id.
    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }

    /// Adds (or replaces) a one-time pre-key.
    pub fn add_pre_key(&mut self, record: PreKeyRecord) {
        self.pre_keys.insert(record.id, record);
    }

    /// Removes a one-time pre-key (what a caller does with `consumed_pre_key`).
    pub fn remove_pre_key(&mut self, id: PreKeyId) -> Option<PreKeyRecord> {
        self.pre_keys.remove(&id)
    }

    /// Whether the one-time pre-key `id` exists.
    pub fn has_pre_key(&self, id: PreKeyId) -> bool {
        self.pre_keys.contains_key(&id)
    }

    /// Adds (or replaces) a signed pre-key.
    pub fn add_signed_pre_key(&mut self, record: SignedPreKeyRecord) {
        self.signed_pre_keys.insert(record.id, record);
    }

    /// The session record for `address`.
    pub fn session(&self, address: &SignalAddress) -> Option<&SessionRecord> {
        self.sessions.get(address)
    }

    /// Sets the session record for `address`.
    pub fn put_session(&mut self, address: SignalAddress, record: SessionRecord) {
        self.sessions.insert(address, record);
    }

    /// Every session record.
    pub fn sessions(&self) -> impl Iterator<Item = (&SignalAddress, &SessionRecord)> {
        self.sessions.iter()
    }

    /// The sender-key record for `name`.
    pub fn sender_key(&self, name: &SenderKeyName) -> Option<&SenderKeyRecord> {
        self.sender_keys.get(name)
    }

    /// Sets the sender-key record for `name`.
    pub fn put_sender_key(&mut self, name: SenderKeyName, record: SenderKeyRecord) {
        self.sender_keys.insert(name, record);
    }

    /// The identity saved for `address`.
    pub fn saved_identity(&self, address: &SignalAddress) -> Option<&PublicKey> {
        self.identities.get(address)
    }
}

#[async_trait]
impl SessionStore for InMemoryStore {
    async fn load_session(&mut self, address: &SignalAddress) -> Result<Option<SessionRecord>> {
        Ok(self.sessions.get(address).cloned())
    }

    async fn store_session(
        &mut self,
        address: &SignalAddress,
        record: &SessionRecord,
    ) -> Result<()> {
        self.sessions.insert(address.clone(), record.clone());
        Ok(())
    }
}

#[async_trait]
impl PreKeyStore for InMemoryStore {
    async fn load_pre_key(&mut self, id: PreKeyId) -> Result<Option<PreKeyRecord>> {
        Ok(self.pre_keys.get(&id).cloned())
    }
}

#[async_trait]
impl SignedPreKeyStore for InMemoryStore {
    async fn load_signed_pre_key(
        &mut self,
        id: SignedPreKeyId,
    ) -> Result<Option<SignedPreKeyRecord>> {
        Ok(self.signed_pre_keys.get(&id).cloned())
    }
}

#[async_trait]
impl IdentityKeyStore for InMemoryStore {
    async fn identity_key_pair(&mut self) -> Result<KeyPair> {
        Ok(self.identity.clone())
    }

    async fn local_registration_id(&mut self) -> Result<u32> {
        Ok(self.registration_id)
    }

    async fn get_identity(&mut self, address: &SignalAddress) -> Result<Option<PublicKey>> {
        Ok(self.identities.get(address).copied())
    }

    async fn save_identity(
        &mut self,
        address: &SignalAddress,
        identity: &PublicKey,
    ) -> Result<bool> {
        let previous = self.identities.insert(address.clone(), *identity);
        Ok(previous.is_some_and(|p| &p != identity))
    }
}

#[async_trait]
impl SenderKeyStore for InMemoryStore {
    async fn load_sender_key(&mut self, name: &SenderKeyName) -> Result<Option<SenderKeyRecord>> {
        Ok(self.sender_keys.get(name).cloned())
    }

    async fn store_sender_key(
        &mut self,
        name: &SenderKeyName,
        record: &SenderKeyRecord,
    ) -> Result<()> {
        self.sender_keys.insert(name.clone(), record.clone());
        Ok(())
    }
}
