//! The WhatsApp wire format, with no crypto and no I/O.
//!
//! - [`proto`]: protobuf messages (prost), generated at build time from the project's own curated
//!   `.proto` files in `proto/` (field numbers are protocol facts; no system `protoc` needed).
//! - [`node`] and [`codec`]: binary nodes (the `<iq>`/`<message>` stanzas) and their byte
//!   encoding ("WABinary", dictionary version 3, with the [`token`] tables embedded), byte for
//!   byte as Baileys 7 writes them; decoding is hardened for untrusted input.
//! - [`jid`]: JIDs in every form, PN/LID helpers and Signal addresses (session key ids).
//! - [`frame`]: the connection intro and the 3-byte length framing, with an incremental decoder.
//!
//! Every fallible function returns this crate's [`Error`]. The crate has no cargo features.
//!
//! ```
//! use prost::Message;
//! use wa_proto::proto::SignalMessage;
//! use wa_proto::{Jid, Node};
//!
//! // Protobuf messages.
//! let msg = SignalMessage { counter: Some(3), ..Default::default() };
//! let bytes = msg.encode_to_vec();
//! assert_eq!(SignalMessage::decode(bytes.as_slice()).unwrap(), msg);
//!
//! // Binary nodes, byte for byte as Baileys encodes them.
//! let ack = Node::new("ack").with_attr("class", "receipt").with_attr("id", "3EB0BBBB2222");
//! let bytes = ack.encode()?;
//! assert_eq!(bytes, [0x00, 0xf8, 0x05, 0x1b, 0x15, 0x07, 0x08, 0xfb, 0x06, 0x3e, 0xb0, 0xbb, 0xbb, 0x22, 0x22]);
//! assert_eq!(Node::decode(&bytes)?, ack);
//!
//! // JIDs and the Signal addresses sessions are stored under.
//! let device: Jid = "210987654321098:3@lid".parse()?;
//! assert_eq!(device.signal_address()?.to_string(), "210987654321098_1.3");
//! # Ok::<(), wa_proto::Error>(())
//! ```

pub mod codec;
pub mod error;
pub mod frame;
pub mod jid;
pub mod node;
pub mod proto;
pub mod token;

pub use codec::DecodeLimits;
pub use error::{Error, Result};
pub use frame::{FrameDecoder, FrameEncoder, Intro};
pub use jid::{Jid, Server, SignalAddress};
pub use node::{Attrs, Content, Node};
pub use prost;
