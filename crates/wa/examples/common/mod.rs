//! A simulated contact for the examples: a peer device with its own in-memory Signal state
//! (wa-signal's test store, from the `test-util` feature).

use wa::auth::protocol::MessageKind;
use wa::auth::{AuthState, Result, SystemProvider};
use wa::link::pre_keys;
use wa::signal::session::{PreKeyBundle, process_bundle};
use wa::signal::store::InMemoryStore;
use wa::signal::{KeyPair, SignalAddress, SignedPreKeyId, cipher};

/// A contact's phone, holding its own Signal state in memory.
pub struct Peer {
    pub address: SignalAddress,
    pub store: InMemoryStore,
    provider: SystemProvider,
}

impl Peer {
    /// A new contact that has fetched our bundle (with one fresh one-time pre-key of ours).
    pub async fn meet(state: &AuthState, our_address: &SignalAddress) -> Result<Peer> {
        let mut provider = SystemProvider::new();
        let keys = pre_keys::generate(state, &mut provider, 1).await?;
        let creds = state.creds();
        let bundle = PreKeyBundle {
            registration_id: creds.registration_id,
            device_id: our_address.device_id(),
            pre_key: keys.first().map(|k| (k.id, k.key_pair.public)),
            signed_pre_key_id: SignedPreKeyId(creds.signed_pre_key.key_id),
            signed_pre_key: creds.signed_pre_key.key_pair.public,
            signed_pre_key_signature: creds.signed_pre_key.signature,
            identity_key: creds.signed_identity_key.public,
        };
        let mut store = InMemoryStore::new(KeyPair::generate(&mut provider), 4242);
        process_bundle(&mut store, &mut provider, our_address, &bundle).await?;
        Ok(Peer {
            address: SignalAddress::new("4915112345678", 0).expect("valid address"),
            store,
            provider,
        })
    }

    /// Encrypts `text` for us: (`pkmsg` or `msg`, bytes).
    pub async fn send(&mut self, to: &SignalAddress, text: &str) -> Result<(MessageKind, Vec<u8>)> {
        let message =
            cipher::encrypt(&mut self.store, &mut self.provider, to, text.as_bytes()).await?;
        let kind = match message.wa_type() {
            "pkmsg" => MessageKind::PreKey,
            _ => MessageKind::Whisper,
        };
        Ok((kind, message.serialized().to_vec()))
    }

    /// Decrypts our reply.
    pub async fn receive(
        &mut self,
        from: &SignalAddress,
        bytes: &[u8],
        pre_key: bool,
    ) -> Result<String> {
        let provider = &mut self.provider;
        let decrypted = if pre_key {
            cipher::decrypt_pre_key_message(&mut self.store, provider, from, bytes).await?
        } else {
            cipher::decrypt_message(&mut self.store, provider, from, bytes).await?
        };
        Ok(String::from_utf8_lossy(&decrypted.plaintext).into_owned())
    }
}
