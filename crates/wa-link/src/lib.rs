//! A WhatsApp linked device talking to the server, over its auth state: everything that turns a
//! stored [`AuthState`](wa_auth::AuthState) into a connected, paired device and keeps its
//! published keys in order. Each step that changes the auth state is one commit through the
//! normal `AuthState` path (durable before the stanza that depends on it is sent, announced by
//! a `CredsUpdated` event).
//!
//! - [`DeviceLink`]: a connection's life cycle (Noise handshake, pairing, pre-key upload) over
//!   a [`FrameTransport`] (a WebSocket in production, an in-process channel in tests), configured
//!   by [`LinkConfig`].
//! - [`client_payload`]: the login and registration payloads of the handshake ([`ClientConfig`],
//!   [`Browser`], [`BaileysProfile`]).
//! - [`pairing`]: verifying a `pair-success` stanza and answering it ([`PairingOutcome`],
//!   [`PairingRejection`]).
//! - [`pre_keys`]: one-time pre-key generation, the upload stanza, the acknowledgement, top-ups.
//! - [`signed_pre_key`]: signed pre-key rotation with a grace period for the retired key.
//! - [`LinkError`]: what can go wrong on the connection; storage failures arrive wrapped as
//!   [`LinkError::Auth`].
//!
//! Randomness and the time come from a [`wa_signal::Provider`]: [`DeviceLink`] uses
//! [`SystemProvider`](wa_auth::SystemProvider) unless given another
//! ([`DeviceLink::connect_with`]); the functions take one (or a random generator) as an
//! argument.
//!
//! ```no_run
//! # async fn run(
//! #     transport: impl wa_link::FrameTransport,
//! # ) -> Result<(), wa_link::LinkError> {
//! use std::sync::Arc;
//! use wa_link::{DeviceLink, LinkConfig, LinkKind};
//!
//! let state = wa_auth::AuthState::load(Arc::new(wa_auth::MemoryStore::new())).await?;
//! let mut link = DeviceLink::connect(state, transport, &LinkConfig::default()).await?;
//! match link.kind() {
//!     LinkKind::Registration => link.await_pairing().await?, // the phone scans the QR code
//!     LinkKind::Login => {
//!         link.ensure_pre_keys().await?;
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod client_payload;
pub mod error;
pub mod link;
pub mod pairing;
pub mod pre_keys;
pub mod signed_pre_key;

pub use client_payload::{
    Browser, ClientConfig, device_props, login_payload, login_payload_for, registration_payload,
};
pub use error::{LinkError, Result};
pub use link::{DeviceLink, FrameTransport, LinkConfig, LinkKind};
pub use pairing::{PairingOutcome, PairingRejection, handle_pair_success, process_pair_success};

/// Which Baileys generation's behaviour to reproduce where the two differ (client payload
/// shape, the name recorded in `signalIdentities` after pairing). The server accepts both; the
/// default is the current one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BaileysProfile {
    /// Baileys 7: passive login, `lidDbMigrated`, history-sync config in the device props, the
    /// device's LID in `me` and `signalIdentities`.
    #[default]
    Baileys7,
    /// Baileys 6.
    Baileys6,
}
