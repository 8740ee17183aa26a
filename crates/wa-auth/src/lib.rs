//! The auth state of a WhatsApp linked device, and the seams to persist it: its storage
//! contract. Talking to the server (connecting, pairing, uploading pre-keys, rotating the signed
//! pre-key) is wa-link's job, one crate up.
//!
//! - [`AuthCreds`]: the device's credentials, every field Baileys keeps plus unknown ones.
//! - Keys: [`KeyKind`] (Baileys' ten kinds and any other), [`KeyId`], typed [`KeyValue`].
//! - [`WriteBatch`]: creds + puts + deletes, committed all or nothing.
//! - [`Persistence`]: the backend seam (object safe, minimal; its rustdoc states every rule a
//!   backend keeps, including [`Persistence::close`]), [`Capabilities`] with one [`Durability`],
//!   and [`PersistenceExt`], its conveniences. [`MemoryStore`] is the in-memory backend. A
//!   backend author needs only this, [`WriteBatch`], the key and creds types, [`AuthError`]
//!   and the [`conformance`] suite.
//! - [`AuthState`]: the runtime side: creds with [`AuthEvent`]s, a read cache, and
//!   [`AuthState::transaction`], whose [`Transaction`] handle implements wa-signal's store traits;
//!   [`protocol`]: Signal operations (decrypt, encrypt, sessions, groups) as one transaction each.
//! - [`SystemProvider`]: the OS random source and system clock that wa-signal's operations take
//!   from their caller.
//! - [`codec`]: the canonical binary and JSON encodings of key values that backends share.
//! - [`AuthError`]: storage and state failures, for every backend; `Clone`, with a structured
//!   [`AuthError::Corrupt`] ([`CorruptItem`]: creds, a key, or the store's own data).
//!
//! ```
//! use std::sync::Arc;
//! use wa_auth::{AuthState, KeyKind, KeyValue, MemoryStore, Transaction};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> wa_auth::Result<()> {
//! let state = AuthState::load(Arc::new(MemoryStore::new())).await?; // fresh creds
//! state
//!     .transaction("4915112345678.0", async |tx: &mut Transaction<'_>| {
//!         tx.put(KeyKind::LidMapping, "4915112345678", KeyValue::LidMapping("123456789012345".into()));
//!         Ok::<_, wa_auth::AuthError>(())
//!     })
//!     .await?; // one commit
//! assert!(state.creds().registration_id <= 0x3fff);
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `conformance`: the [`conformance`] suite every `Persistence` implementation runs: one test
//!   per rule of the trait, selected by the store's capabilities, as a macro that names a module
//!   so one test file can run it for several configurations.
//! - `fault-injection`: test support for the file stores (I/O fault injection); not API.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod batch;
pub mod codec;
pub mod creds;
pub mod dir_lock;
pub mod encoding;
pub mod error;
#[cfg(feature = "fault-injection")]
pub mod fault;
#[cfg(not(feature = "fault-injection"))]
mod fault;
pub mod folder;
pub mod key;
pub mod memory;
pub mod persistence;
pub mod protocol;
pub mod provider;
pub mod signed_pre_key;
pub mod state;

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
#[cfg(any(test, feature = "conformance"))]
pub mod sample;

pub use batch::WriteBatch;
pub use creds::AuthCreds;
pub use error::{AuthError, CorruptItem, ErrorSource, Result};
pub use key::{KeyId, KeyKind, KeyValue};
pub use memory::MemoryStore;
pub use persistence::{Capabilities, Durability, Persistence, PersistenceExt, Snapshot};
pub use provider::SystemProvider;
pub use state::{AuthEvent, AuthState, AuthStateOptions, LockKey, Transaction};

/// What the crate's macros name in their expansion, so their callers need no dependency of
/// their own. Not API.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
}
