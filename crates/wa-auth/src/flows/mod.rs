//! The auth side of a linked device, as functions over creds and the key store, each persisted
//! through the normal [`AuthState`](crate::AuthState) path (one commit, a `CredsUpdated` event):
//!
//! - [`client_payload`]: the login and registration payloads of the Noise handshake.
//! - [`pairing`]: processing a `pair-success` stanza and answering it.
//! - [`pre_keys`]: one-time pre-key generation, upload stanza, acknowledgement, top-up.
//! - [`signed_pre_key`]: signed pre-key rotation with a grace period for the retired key.
//! - [`link`]: [`DeviceLink`], a connection's life cycle (handshake, pairing, pre-key upload)
//!   over an abstract frame transport.

pub mod client_payload;
pub mod link;
pub mod pairing;
pub mod pre_keys;
pub mod signed_pre_key;

pub use client_payload::{
    Browser, ClientConfig, device_props, login_payload, login_payload_for, registration_payload,
};
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
