//! WhatsApp's profile of the Signal protocol, free of I/O.
//!
//! - [`curve`]: Curve25519 key pairs, X25519 agreement, XEdDSA signatures.
//! - [`record`]: stored records (`SessionRecord`, `PreKeyRecord`, `SignedPreKeyRecord`,
//!   `SenderKeyRecord`) with their exact libsignal protobuf encodings.
//! - [`address`]: session and sender-key addresses in WhatsApp's key-id forms.
//! - [`store`]: the async store traits a transaction handle implements.
//! - [`noise`]: the Noise XX handshake (client, plus a responder for tests) and transport, sans I/O.
//!
//! ```
//! use wa_signal::curve::KeyPair;
//!
//! let identity = KeyPair::generate();
//! let signature = identity.sign(b"hello");
//! assert!(identity.public.verify(b"hello", &signature));
//! ```

pub mod address;
pub mod curve;
pub mod error;
pub mod noise;
pub mod record;
pub mod store;

pub use address::{SenderKeyName, SignalAddress};
pub use curve::{KeyPair, PrivateKey, PublicKey, Signature};
pub use error::{Result, SignalError};
pub use record::{
    PreKeyId, PreKeyRecord, SenderKeyRecord, SessionRecord, SignedPreKeyId, SignedPreKeyRecord,
};
