//! WhatsApp's profile of the Signal protocol, free of I/O.
//!
//! - [`curve`]: Curve25519 key pairs, X25519 agreement, XEdDSA signatures.
//! - [`keys`]: identity key pair, registration id, one-time and signed pre-keys.
//! - [`session`]: session setup (X3DH) from pre-key bundles.
//! - [`ratchet`]: the Double Ratchet's key schedule (root, chain and message keys) and bounds.
//! - [`cipher`]: 1:1 encrypt / decrypt (`pkmsg`, `msg`), with archived sessions and skipped keys.
//! - [`group`]: sender keys: distribution messages, group encrypt / decrypt.
//! - [`message`]: the wire messages.
//! - [`record`]: stored records (`SessionRecord`, `PreKeyRecord`, `SignedPreKeyRecord`,
//!   `SenderKeyRecord`) as typed models with their exact libsignal protobuf encodings.
//! - [`address`]: session and sender-key addresses in WhatsApp's key-id forms.
//! - [`store`]: the async store traits a transaction handle implements, and an in-memory store.
//! - [`noise`]: the Noise XX handshake (client, plus a responder for tests) and transport, sans I/O.
//!
//! Secrets are zeroized on drop and redacted in `Debug`.
//!
//! ```
//! use wa_signal::curve::KeyPair;
//!
//! let identity = KeyPair::generate();
//! let signature = identity.sign(b"hello");
//! assert!(identity.public.verify(b"hello", &signature));
//! ```
#![forbid(unsafe_code)]

pub mod address;
pub mod cipher;
pub mod curve;
pub mod error;
pub mod group;
pub mod keys;
pub mod message;
pub mod noise;
pub mod ratchet;
pub mod record;
pub mod session;
pub mod store;
mod symmetric;
mod x3dh;

pub use address::{SenderKeyName, SignalAddress};
pub use curve::{KeyPair, PrivateKey, PublicKey, Signature};
pub use error::{Result, SignalError};
pub use message::CiphertextMessage;
pub use record::{
    PreKeyId, PreKeyRecord, SenderKeyRecord, SessionRecord, SignedPreKeyId, SignedPreKeyRecord,
};
