//! Signal protocol operations as single transactions on an [`AuthState`]: each reads and writes
//! through one [`Transaction`] under the canonical lock, and commits ONE batch. These keep the
//! invariants callers would otherwise have to remember:
//!
//! - a one-time pre-key consumed by a new session is deleted in the same commit as the session;
//! - before ciphertext leaves, the state that produced it is durable — on write-behind backends
//!   the commit is flushed before the ciphertext is returned.
//!
//! Randomness and the time come from the [`SystemProvider`]. To run an operation with another
//! provider (a seeded one in a test), call wa-signal inside [`AuthState::transaction`] as these
//! methods do.

use wa_signal::message::{CiphertextMessage, SenderKeyDistributionMessage};
use wa_signal::{SenderKeyName, SignalAddress, cipher, group, session};

use crate::error::{AuthError, Result};
use crate::key::KeyKind;
use crate::provider::SystemProvider;
use crate::state::{AuthState, LockKey, Transaction};

/// The kind of a received 1:1 message, as WhatsApp's `enc` nodes name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// `pkmsg`: a PreKeySignalMessage (a session-opening message).
    PreKey,
    /// `msg`: a SignalMessage.
    Whisper,
}

/// A decrypted 1:1 message.
#[derive(Clone, PartialEq, Eq)]
pub struct Received {
    /// The plaintext (still padded, as WhatsApp sends it).
    pub plaintext: Vec<u8>,
    /// The sender's identity key differs from the one saved before (the contact re-installed
    /// or changed devices); worth telling the user.
    pub identity_changed: bool,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("plaintext_len", &self.plaintext.len())
            .field("identity_changed", &self.identity_changed)
            .finish()
    }
}

impl AuthState {
    /// Decrypts a 1:1 message from `from` in one transaction (session update, consumed pre-key
    /// delete and identity save committed together).
    pub async fn decrypt_message(
        &self,
        from: &SignalAddress,
        kind: MessageKind,
        ciphertext: &[u8],
    ) -> Result<Received> {
        let lock = self.lock_key_for(from).await?;
        self.transaction(lock, async |tx: &mut Transaction<'_>| {
            let provider = &mut SystemProvider::new();
            let decrypted = match kind {
                MessageKind::PreKey => {
                    cipher::decrypt_pre_key_message(tx, provider, from, ciphertext).await?
                }
                MessageKind::Whisper => {
                    cipher::decrypt_message(tx, provider, from, ciphertext).await?
                }
            };
            if let Some(id) = decrypted.consumed_pre_key {
                tx.delete(KeyKind::PreKey, id.0.to_string());
            }
            Ok::<_, AuthError>(Received {
                plaintext: decrypted.plaintext,
                identity_changed: decrypted.identity_changed,
            })
        })
        .await
    }

    /// Encrypts `plaintext` for `to` on the current session; the advanced session is durable
    /// before the ciphertext is returned.
    pub async fn encrypt_message(
        &self,
        to: &SignalAddress,
        plaintext: &[u8],
    ) -> Result<CiphertextMessage> {
        let lock = self.lock_key_for(to).await?;
        self.transaction(lock, async |tx: &mut Transaction<'_>| {
            let message = cipher::encrypt(tx, &mut SystemProvider::new(), to, plaintext).await?;
            tx.require_flush_before_send();
            Ok::<_, AuthError>(message)
        })
        .await
    }

    /// Starts a session with `to` from its pre-key bundle (fetched from the server).
    pub async fn process_bundle(
        &self,
        to: &SignalAddress,
        bundle: &session::PreKeyBundle,
    ) -> Result<session::BundleOutcome> {
        let lock = self.lock_key_for(to).await?;
        self.transaction(lock, async |tx: &mut Transaction<'_>| {
            let provider = &mut SystemProvider::new();
            Ok::<_, AuthError>(session::process_bundle(tx, provider, to, bundle).await?)
        })
        .await
    }

    /// Processes a received SenderKeyDistributionMessage for `name` (group, sender).
    pub async fn process_sender_key_distribution(
        &self,
        name: &SenderKeyName,
        skdm: &[u8],
    ) -> Result<()> {
        self.transaction(
            LockKey::group(name.group_id()),
            async |tx: &mut Transaction<'_>| {
                Ok::<_, AuthError>(group::process_distribution_bytes(tx, name, skdm).await?)
            },
        )
        .await
    }

    /// Decrypts a group message (`skmsg`) from the sender in `name`.
    pub async fn decrypt_group_message(
        &self,
        name: &SenderKeyName,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>> {
        self.transaction(
            LockKey::group(name.group_id()),
            async |tx: &mut Transaction<'_>| {
                Ok::<_, AuthError>(group::decrypt(tx, name, ciphertext).await?)
            },
        )
        .await
    }

    /// Our SenderKeyDistributionMessage for a group (creating our sender key if needed).
    pub async fn sender_key_distribution(
        &self,
        name: &SenderKeyName,
    ) -> Result<SenderKeyDistributionMessage> {
        self.transaction(
            LockKey::group(name.group_id()),
            async |tx: &mut Transaction<'_>| {
                let provider = &mut SystemProvider::new();
                let message = group::create_distribution_message(tx, provider, name).await?;
                tx.require_flush_before_send();
                Ok::<_, AuthError>(message)
            },
        )
        .await
    }

    /// Encrypts a group message with our sender key; durable before it is returned.
    pub async fn encrypt_group_message(
        &self,
        name: &SenderKeyName,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        self.transaction(
            LockKey::group(name.group_id()),
            async |tx: &mut Transaction<'_>| {
                let provider = &mut SystemProvider::new();
                let message = group::encrypt(tx, provider, name, plaintext).await?;
                tx.require_flush_before_send();
                Ok::<_, AuthError>(message.serialized().to_vec())
            },
        )
        .await
    }
}
