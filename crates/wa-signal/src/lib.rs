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
//! - [`store`]: the async store traits a transaction handle implements.
//! - [`noise`]: the Noise XX handshake (client) and transport, sans I/O.
//! - [`provider`]: [`Provider`], the time and randomness every operation takes from its caller.
//!
//! No I/O, no clock and no ambient randomness: operations that need random bytes take a
//! cryptographically secure generator, those that also need the time take a [`Provider`]
//! (wa-auth's `SystemProvider` is backed by the OS; tests pass a seeded one and are
//! deterministic). Secrets are zeroized on drop and redacted in `Debug`.
//!
//! ```
//! use wa_signal::curve::KeyPair;
//!
//! # let mut rng = wa_signal::provider::TestProvider::new(1);
//! // `rng`: any `rand::CryptoRng`, e.g. a `Provider`.
//! let identity = KeyPair::generate(&mut rng);
//! let signature = identity.sign(&mut rng, b"hello");
//! assert!(identity.public.verify(b"hello", &signature));
//! ```
//!
//! # Features
//! - `test-util`: what tests and benchmarks need besides the protocol: `store::InMemoryStore`,
//!   the server side of the Noise handshake (`noise::ServerHandshake`, certificate issuing) and
//!   `provider::TestProvider` (seeded, with a clock that moves by hand).
#![forbid(unsafe_code)]

pub mod address;
pub mod cipher;
pub mod curve;
pub mod error;
pub mod group;
pub mod keys;
pub mod message;
pub mod noise;
pub mod provider;
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
pub use provider::{Provider, UnixTime};
pub use record::{
    PreKeyId, PreKeyRecord, SenderKeyRecord, SessionRecord, SignedPreKeyId, SignedPreKeyRecord,
};
