//! The symmetric key schedule of the Double Ratchet (and of sender-key chains): root keys,
//! chain keys, message-key seeds and the keys derived from them.
//!
//! - Root step: HKDF-SHA256(salt = root key, ikm = DH output, info = `"WhisperRatchet"`) -> new
//!   root key (32) || chain key (32).
//! - Chain step: message-key seed = HMAC-SHA256(chain key, `0x01`); next chain key =
//!   HMAC-SHA256(chain key, `0x02`).
//! - Message keys: HKDF-SHA256(salt = 32 zero bytes, ikm = seed, info = `"WhisperMessageKeys"`)
//!   -> cipher key (32) || MAC key (32) || IV (16).
//! - Sender keys use the same chain step; their seed goes through `"WhisperGroup"` instead
//!   (see [`crate::group`]).
//!
//! Every secret here is zeroized on drop and redacted in `Debug`.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::curve::SharedSecret;
use crate::error::{Result, SignalError};
use crate::symmetric::{hkdf_sha256, hmac_sha256};

/// The largest number of message keys one message may make a chain skip (libsignal's bound).
pub const MAX_JUMP: u32 = 2000;

/// The most skipped message keys kept per receiving chain; the oldest are dropped beyond it.
pub const MAX_MESSAGE_KEYS_PER_CHAIN: usize = 2000;

/// The most receiving chains kept per session; the oldest are dropped beyond it.
pub const MAX_RECEIVER_CHAINS: usize = 5;

/// The most closed (archived) sessions a record keeps (Baileys keeps 40 sessions).
pub const MAX_ARCHIVED_SESSIONS: usize = 40;

macro_rules! secret_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Wraps the secret bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Parses a slice of exactly the right length.
            pub fn from_slice(bytes: &[u8]) -> Result<Self> {
                let raw: [u8; $len] = bytes.try_into().map_err(|_| {
                    SignalError::InvalidKey(format!(
                        concat!(stringify!($name), " must be {} bytes, got {}"),
                        $len,
                        bytes.len()
                    ))
                })?;
                Ok(Self(raw))
            }

            /// The secret bytes. Never log them.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_bytes!(
    /// A Double Ratchet root key.
    RootKey,
    32
);
secret_bytes!(
    /// A chain key: of a sending or receiving chain, or of a sender-key chain.
    ChainKey,
    32
);
secret_bytes!(
    /// A message-key seed, `HMAC-SHA256(chain key, 0x01)`. libsignal-node (and so Baileys)
    /// stores skipped message keys as seeds; the actual keys are derived with
    /// [`MessageKeySeed::derive`] (1:1) or the sender-key derivation (groups).
    MessageKeySeed,
    32
);

impl RootKey {
    /// One root step: derive the next root key and a new chain key from a DH output.
    pub fn step(&self, dh: &SharedSecret) -> (RootKey, ChainKey) {
        let mut okm: [u8; 64] = hkdf_sha256(&self.0, dh.as_bytes(), b"WhisperRatchet");
        let (root, chain) = split_64(&okm);
        okm.zeroize();
        (RootKey(root), ChainKey(chain))
    }
}

impl ChainKey {
    /// The message-key seed for this chain position.
    pub fn message_key_seed(&self) -> MessageKeySeed {
        MessageKeySeed(hmac_sha256(&self.0, &[&[0x01]]))
    }

    /// The chain key of the next position.
    pub fn next(&self) -> ChainKey {
        ChainKey(hmac_sha256(&self.0, &[&[0x02]]))
    }
}

/// The keys of one 1:1 message.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MessageKeys {
    /// AES-256-CBC key.
    pub cipher_key: [u8; 32],
    /// HMAC-SHA256 key.
    pub mac_key: [u8; 32],
    /// AES-CBC IV.
    pub iv: [u8; 16],
}

impl std::fmt::Debug for MessageKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageKeys(<redacted>)")
    }
}

impl MessageKeySeed {
    /// The 1:1 message keys: HKDF(seed, info `"WhisperMessageKeys"`).
    pub fn derive(&self) -> MessageKeys {
        let mut okm: [u8; 80] = hkdf_sha256(&[0u8; 32], &self.0, b"WhisperMessageKeys");
        let mut keys = MessageKeys {
            cipher_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
        };
        keys.cipher_key.copy_from_slice(&okm[..32]);
        keys.mac_key.copy_from_slice(&okm[32..64]);
        keys.iv.copy_from_slice(&okm[64..]);
        okm.zeroize();
        keys
    }
}

/// The X3DH derivation: HKDF(salt = 32 zero bytes, ikm = master secret, `"WhisperText"`) ->
/// root key || chain key.
pub(crate) fn derive_initial_keys(master_secret: &[u8]) -> (RootKey, ChainKey) {
    let mut okm: [u8; 64] = hkdf_sha256(&[0u8; 32], master_secret, b"WhisperText");
    let (root, chain) = split_64(&okm);
    okm.zeroize();
    (RootKey(root), ChainKey(chain))
}

fn split_64(okm: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_steps_are_distinct_and_deterministic() {
        let ck = ChainKey::from_bytes([1; 32]);
        assert_ne!(ck.next(), ck);
        assert_eq!(ck.next(), ChainKey::from_bytes([1; 32]).next());
        assert_ne!(ck.message_key_seed().as_bytes(), ck.next().as_bytes());
        let keys = ck.message_key_seed().derive();
        assert_ne!(keys.cipher_key, keys.mac_key);
        assert_eq!(format!("{keys:?}"), "MessageKeys(<redacted>)");
        assert_eq!(format!("{ck:?}"), "ChainKey(<redacted>)");
    }
}
