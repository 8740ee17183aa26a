//! Pure value codecs: Baileys' stored JSON values <-> `wa-signal`'s typed records.
//!
//! Baileys (`useMultiFileAuthState`) writes one JSON file per key. These functions convert the
//! parsed JSON *value* of such a file; reading and writing files is the store's job.
//!
//! - [`buffer_json`]: Baileys' `BufferJSON` byte encoding. Written as
//!   `{"type":"Buffer","data":"<base64>"}`; read also from the number-array form
//!   (`"data":[1,2,...]`, what `JSON.stringify(Buffer)` gives), a numeric-key object
//!   (`{"0":1,"1":2}`, a stringified `Uint8Array`) and a plain base64 string.
//! - [`session`]: libsignal-node's "v1" session JSON <-> [`SessionRecord`]. Lossless both ways
//!   for what libsignal-node writes (timestamps, base key type, message-key seeds, retired
//!   chains, `lastRemoteEphemeralKey`, `pendingPreKey`).
//! - [`sender_key`]: sender-key records, in the Baileys 6 form (a JSON array of states with
//!   base64 strings) and the Baileys 7 form (a BufferJSON buffer whose bytes are the JSON text
//!   of that array with number-array buffers). Reading accepts both; writing takes a
//!   [`Flavour`].
//! - [`pre_key`]: `{private, public}` key pairs (pre-keys, creds key pairs) and the creds'
//!   `signedPreKey`.
//!
//! Errors are [`CompatError`]s naming the JSON path that is wrong (`/_sessions/<key>/...`).
//!
//! [`SessionRecord`]: wa_signal::SessionRecord

pub mod buffer_json;
mod error;
pub mod pre_key;
pub mod sender_key;
pub mod session;
mod value;

pub use error::CompatError;

/// Which Baileys major version's JSON shapes to write, where they differ (sender keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// Baileys 6.x: sender keys as a JSON array with base64 strings.
    Baileys6,
    /// Baileys 7.x: sender keys as a BufferJSON buffer holding the array's JSON text.
    Baileys7,
}
