//! The token dictionaries (binary-node dictionary version 3) and the tag bytes of the format.
//!
//! A string that appears in a dictionary is written as its index instead of its bytes: one byte
//! `1..=235` for the single-byte dictionary, or two bytes `236 + d, i` for double-byte
//! dictionary `d` (0..=3). Encoding prefers a single-byte token, then a double-byte one. The
//! tables are embedded in the crate (generated from `fixtures/wire/tokens.json`, which a test
//! keeps in sync).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

#[rustfmt::skip]
mod dictionary;

/// The dictionary version these tables implement; it is the last byte of the connection
/// header (`"WA" 6 3`).
pub const DICTIONARY_VERSION: u8 = 3;

/// Tag bytes: the first byte of every value in a node.
pub mod tag {
    /// An empty list, or (where a string is expected) the empty string.
    pub const LIST_EMPTY: u8 = 0;
    /// First of the four double-byte dictionary tags (`236 + d`).
    pub const DICTIONARY_0: u8 = 236;
    /// Double-byte dictionary 1.
    pub const DICTIONARY_1: u8 = 237;
    /// Double-byte dictionary 2.
    pub const DICTIONARY_2: u8 = 238;
    /// Last of the four double-byte dictionary tags.
    pub const DICTIONARY_3: u8 = 239;
    /// An interop JID: user string, device (u16 BE), integrator (u16 BE), server string.
    pub const INTEROP_JID: u8 = 245;
    /// A Messenger JID: user string, device (u16 BE), server string.
    pub const FB_JID: u8 = 246;
    /// A device JID: domain type byte, device byte, user string.
    pub const AD_JID: u8 = 247;
    /// A list with a one-byte size.
    pub const LIST_8: u8 = 248;
    /// A list with a two-byte (big-endian) size.
    pub const LIST_16: u8 = 249;
    /// A JID without device: user string (or [`LIST_EMPTY`]), server string.
    pub const JID_PAIR: u8 = 250;
    /// A hex-packed string (`0-9 A-F`).
    pub const HEX_8: u8 = 251;
    /// Raw bytes with a one-byte length.
    pub const BINARY_8: u8 = 252;
    /// Raw bytes with a 20-bit length in three bytes.
    pub const BINARY_20: u8 = 253;
    /// Raw bytes with a four-byte (big-endian) length.
    pub const BINARY_32: u8 = 254;
    /// A nibble-packed string (`0-9 - .`).
    pub const NIBBLE_8: u8 = 255;
}

/// The longest string (in characters) that is nibble- or hex-packed.
pub const PACKED_MAX: usize = 127;

/// Where a string lives in the dictionaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    /// Written as the single byte `index` (1..=235; 0 is the empty string).
    Single(u8),
    /// Written as `236 + dictionary, index`.
    Double {
        /// Dictionary number, 0..=3.
        dictionary: u8,
        /// Index inside that dictionary.
        index: u8,
    },
}

/// Every single-byte token; index 0 is the empty string.
pub fn single_byte_tokens() -> &'static [&'static str] {
    &dictionary::SINGLE_BYTE
}

/// The four double-byte dictionaries, 256 tokens each.
pub fn double_byte_tokens() -> &'static [[&'static str; 256]] {
    &dictionary::DOUBLE_BYTE
}

/// The string for single-byte token `index`, if there is one.
pub fn single_byte(index: u8) -> Option<&'static str> {
    dictionary::SINGLE_BYTE.get(usize::from(index)).copied()
}

/// The string for double-byte token (`dictionary`, `index`), if there is one.
pub fn double_byte(dictionary: u8, index: u8) -> Option<&'static str> {
    dictionary::DOUBLE_BYTE
        .get(usize::from(dictionary))
        .map(|d| d[usize::from(index)])
}

/// The token for `s`, preferring the single-byte dictionary.
pub fn lookup(s: &str) -> Option<Token> {
    // Every token is between 1 and a few dozen bytes; skip the hash for anything longer.
    if s.len() > MAX_TOKEN_LEN {
        return None;
    }
    INDEX.get(s).copied()
}

/// Longer than any token (the longest is well under this); a cheap early exit for `lookup`.
const MAX_TOKEN_LEN: usize = 64;

type FastMap = HashMap<&'static str, Token, BuildHasherDefault<Fnv1a>>;

static INDEX: LazyLock<FastMap> = LazyLock::new(|| {
    let mut map = FastMap::default();
    for (d, dict) in dictionary::DOUBLE_BYTE.iter().enumerate() {
        for (i, s) in dict.iter().enumerate() {
            // Indices are < 256 and dictionaries < 4 by the tables' types.
            let token = Token::Double {
                dictionary: d as u8,
                index: i as u8,
            };
            map.entry(*s).or_insert(token);
        }
    }
    // Single-byte tokens win over double-byte ones; index 0 (the empty string) included.
    for (i, s) in dictionary::SINGLE_BYTE.iter().enumerate() {
        map.insert(*s, Token::Single(i as u8));
    }
    map
});

/// FNV-1a: the token index hashes short, trusted strings; a fast non-keyed hash is right here.
#[derive(Default)]
struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_looks_up_to_its_own_position() {
        for (i, s) in single_byte_tokens().iter().enumerate() {
            assert_eq!(lookup(s), Some(Token::Single(i as u8)), "{s:?}");
        }
        for (d, dict) in double_byte_tokens().iter().enumerate() {
            for (i, s) in dict.iter().enumerate() {
                assert_eq!(
                    lookup(s),
                    Some(Token::Double {
                        dictionary: d as u8,
                        index: i as u8
                    }),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn tokens_fit_the_early_exit() {
        let all = single_byte_tokens()
            .iter()
            .chain(double_byte_tokens().iter().flatten());
        assert!(all.clone().all(|s| s.len() <= MAX_TOKEN_LEN));
        assert_eq!(lookup("not a token at all"), None);
    }

    #[test]
    fn index_bounds() {
        assert_eq!(single_byte(0), Some(""));
        assert_eq!(single_byte(3), Some("s.whatsapp.net"));
        assert_eq!(single_byte(236), None);
        assert_eq!(double_byte(4, 0), None);
        assert!(double_byte(3, 255).is_some());
    }
}
