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
//! - [`creds`]: `creds.json` <-> [`AuthCreds`](wa_auth::AuthCreds), Buffers exactly where
//!   Baileys has them, unknown fields kept.
//! - [`key_value`]: any key file's value <-> a typed [`KeyValue`](wa_auth::KeyValue), every
//!   kind, both flavours.
//!
//! Errors are [`CompatError`]s naming the JSON path that is wrong (`/_sessions/<key>/...`).
//!
//! [`SessionRecord`]: wa_signal::SessionRecord

pub mod buffer_json;
pub mod creds;
mod error;
pub mod key_value;
pub mod pre_key;
pub mod sender_key;
pub mod session;
mod shape;
mod value;

pub use error::CompatError;

use wa_auth::KeyKind;

/// Which Baileys major version's JSON shapes to write, where they differ (sender keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Flavour {
    /// Baileys 6.x: sender keys as a JSON array with base64 strings.
    Baileys6,
    /// Baileys 7.x: sender keys as a BufferJSON buffer holding the array's JSON text.
    Baileys7,
}

impl Flavour {
    /// The flavour's name: `baileys6` or `baileys7`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Baileys6 => "baileys6",
            Flavour::Baileys7 => "baileys7",
        }
    }

    /// Kinds only Baileys 7 writes: a folder (or state) holding any of them is Baileys 7's.
    pub const BAILEYS7_KINDS: [KeyKind; 4] = [
        KeyKind::LidMapping,
        KeyKind::DeviceList,
        KeyKind::TcToken,
        KeyKind::IdentityKey,
    ];

    /// The flavour whose creds carry `name` as the account's own signal identity
    /// (`creds.signalIdentities[0].identifier.name`): a LID for Baileys 7, a phone-number JID
    /// for Baileys 6; `None` for anything else.
    pub fn of_own_identity(name: &str) -> Option<Self> {
        if name.ends_with("@lid") {
            Some(Flavour::Baileys7)
        } else if name.ends_with("@s.whatsapp.net") {
            Some(Flavour::Baileys6)
        } else {
            None
        }
    }

    /// The flavour named `name` (see [`Flavour::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "baileys6" => Some(Flavour::Baileys6),
            "baileys7" => Some(Flavour::Baileys7),
            _ => None,
        }
    }
}

impl std::fmt::Display for Flavour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
