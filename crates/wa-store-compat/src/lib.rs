//! Baileys-compatible JSON multi-file store for WhatsApp auth state (Baileys 6 and 7 layouts).
//!
//! - [`codec`]: pure value codecs between Baileys' stored JSON values and the typed records of
//!   `wa-signal` (BufferJSON bytes, libsignal-node "v1" sessions, sender keys in both Baileys
//!   flavours, pre-key pairs). No I/O.
//!
//! The folder layout and the `Persistence` implementation are not implemented yet.
//!
//! ```
//! use wa_store_compat::codec::{self, Flavour};
//!
//! let value = serde_json::json!([]);
//! let record = codec::sender_key::from_json(&value)?;
//! assert!(record.is_empty());
//! assert_eq!(codec::sender_key::to_json(&record, Flavour::Baileys6)?, value);
//! # Ok::<(), codec::CompatError>(())
//! ```

pub mod codec;
