//! The auth side of a linked device, as functions over creds and the key store: the client
//! payloads of the Noise handshake (more flows join here: pre-keys, pairing).

pub mod client_payload;

pub use client_payload::{
    Browser, ClientConfig, PayloadProfile, device_props, login_payload, login_payload_for,
    registration_payload,
};
