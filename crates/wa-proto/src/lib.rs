//! The WhatsApp wire format, with no crypto and no I/O.
//!
//! - [`proto`]: protobuf messages (prost), generated at build time from the project's own curated
//!   `.proto` files in `proto/` (field numbers are protocol facts; no system `protoc` needed).
//!
//! ```
//! use prost::Message;
//! use wa_proto::proto::SignalMessage;
//!
//! let msg = SignalMessage { counter: Some(3), ..Default::default() };
//! let bytes = msg.encode_to_vec();
//! assert_eq!(SignalMessage::decode(bytes.as_slice()).unwrap(), msg);
//! ```

pub mod proto;

pub use prost;
