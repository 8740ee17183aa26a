//! Bytes → node, for untrusted input.

use std::fmt::Write as _;

use super::DecodeLimits;
use crate::error::{Error, Result};
use crate::jid::Server;
use crate::node::{Attrs, Content, Node};
use crate::token::{self, tag};

/// The smallest encoding of a node (`LIST_8 1 <token>`): bounds how many a buffer can hold.
const MIN_NODE_LEN: usize = 3;
/// The smallest encoding of an attribute (two one-byte tokens).
const MIN_ATTR_LEN: usize = 2;

/// Decodes exactly one node from `bytes` (no flag byte).
pub(super) fn node(bytes: &[u8], limits: &DecodeLimits) -> Result<Node> {
    let mut reader = Reader {
        data: bytes,
        pos: 0,
        max_depth: limits.max_depth,
    };
    let node = reader.node(0)?;
    match reader.remaining() {
        0 => Ok(node),
        count => Err(Error::TrailingBytes { count }),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let rest = &self.data[self.pos..];
        if n > rest.len() {
            return Err(Error::Truncated {
                at: self.pos,
                needed: n - rest.len(),
            });
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn enter(&self, depth: usize) -> Result<()> {
        if depth > self.max_depth {
            return Err(Error::TooDeep {
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    fn node(&mut self, depth: usize) -> Result<Node> {
        self.enter(depth)?;
        let start = self.pos;
        let size_tag = self.byte()?;
        let size = self.list_size(size_tag)?;
        if size == 0 {
            return Err(Error::InvalidNode {
                at: start,
                reason: "a node cannot be an empty list",
            });
        }
        let tag_at = self.pos;
        let tag_byte = self.byte()?;
        let tag = self.string(tag_byte, depth)?;
        if tag.is_empty() {
            return Err(Error::InvalidNode {
                at: tag_at,
                reason: "empty tag",
            });
        }

        let attr_count = (size - 1) / 2;
        let mut attrs = Attrs::with_capacity(attr_count.min(self.remaining() / MIN_ATTR_LEN));
        for _ in 0..attr_count {
            let key_byte = self.byte()?;
            let key = self.string(key_byte, depth)?;
            let value_byte = self.byte()?;
            let value = self.string(value_byte, depth)?;
            attrs.push_unchecked(key, value);
        }
        if let Some(key) = attrs.first_duplicate() {
            return Err(Error::DuplicateAttribute {
                key: key.to_owned(),
                tag,
            });
        }

        let content = if size % 2 == 0 {
            self.content(depth)?
        } else {
            Content::None
        };
        Ok(Node {
            tag,
            attrs,
            content,
        })
    }

    fn list_size(&mut self, tag_byte: u8) -> Result<usize> {
        match tag_byte {
            tag::LIST_EMPTY => Ok(0),
            tag::LIST_8 => Ok(usize::from(self.byte()?)),
            tag::LIST_16 => Ok(usize::from(self.u16()?)),
            other => Err(Error::UnexpectedTag {
                tag: other,
                expected: "list",
                at: self.pos - 1,
            }),
        }
    }

    fn content(&mut self, depth: usize) -> Result<Content> {
        let tag_byte = self.byte()?;
        match tag_byte {
            tag::LIST_EMPTY | tag::LIST_8 | tag::LIST_16 => {
                let count = self.list_size(tag_byte)?;
                let mut children = Vec::with_capacity(count.min(self.remaining() / MIN_NODE_LEN));
                for _ in 0..count {
                    children.push(self.node(depth + 1)?);
                }
                Ok(Content::Nodes(children))
            }
            tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                let bytes = self.binary(tag_byte)?;
                Ok(Content::Bytes(bytes.to_vec()))
            }
            other => Ok(Content::Text(self.string(other, depth)?)),
        }
    }

    /// The bytes of a `BINARY_*` value whose tag byte has been read.
    fn binary(&mut self, tag_byte: u8) -> Result<&'a [u8]> {
        let len = match tag_byte {
            tag::BINARY_8 => usize::from(self.byte()?),
            tag::BINARY_20 => {
                let b = self.take(3)?;
                usize::from(b[0] & 0x0f) << 16 | usize::from(b[1]) << 8 | usize::from(b[2])
            }
            _ => {
                let b = self.take(4)?;
                // A length that does not fit usize cannot fit the input either.
                usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(usize::MAX)
            }
        };
        self.take(len)
    }

    /// A string whose tag byte has been read. `depth` bounds JIDs nested in JID parts.
    fn string(&mut self, tag_byte: u8, depth: usize) -> Result<String> {
        let at = self.pos - 1;
        match tag_byte {
            tag::LIST_EMPTY => Ok(String::new()),
            tag::DICTIONARY_0..=tag::DICTIONARY_3 => {
                let dictionary = tag_byte - tag::DICTIONARY_0;
                let index = self.byte()?;
                token::double_byte(dictionary, index)
                    .map(str::to_owned)
                    .ok_or(Error::UnknownToken { dictionary, index })
            }
            tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                let bytes_at = self.pos;
                let bytes = self.binary(tag_byte)?;
                std::str::from_utf8(bytes)
                    .map(str::to_owned)
                    .map_err(|_| Error::InvalidUtf8 { at: bytes_at })
            }
            tag::NIBBLE_8 | tag::HEX_8 => self.packed(tag_byte),
            tag::JID_PAIR | tag::AD_JID | tag::FB_JID | tag::INTEROP_JID => {
                self.jid(tag_byte, depth, at)
            }
            single => token::single_byte(single)
                .map(str::to_owned)
                .ok_or(Error::UnexpectedTag {
                    tag: single,
                    expected: "string",
                    at,
                }),
        }
    }

    /// A JID whose tag byte (one of the four JID tags) has been read at `at`.
    fn jid(&mut self, tag_byte: u8, depth: usize, at: usize) -> Result<String> {
        self.enter(depth + 1)?;
        let user_byte = match tag_byte {
            tag::AD_JID => return self.ad_jid(depth),
            _ => self.byte()?,
        };
        let user = self.string(user_byte, depth + 1)?;
        let device = match tag_byte {
            tag::FB_JID | tag::INTEROP_JID => Some(self.u16()?),
            _ => None,
        };
        let integrator = match tag_byte {
            tag::INTEROP_JID => Some(self.u16()?),
            _ => None,
        };
        let server_byte = self.byte()?;
        let server = self.string(server_byte, depth + 1)?;
        match (device, integrator) {
            (None, _) if server.is_empty() => Err(Error::InvalidNode {
                at,
                reason: "JID without a server",
            }),
            (None, _) => Ok(format!("{user}@{server}")),
            (Some(device), None) => Ok(format!("{user}:{device}@{server}")),
            (Some(device), Some(integrator)) => {
                Ok(format!("{integrator}-{user}:{device}@{server}"))
            }
        }
    }

    /// An AD (device) JID whose tag byte has been read: domain type, device, user.
    fn ad_jid(&mut self, depth: usize) -> Result<String> {
        let domain = self.byte()?;
        let device = self.byte()?;
        let user_byte = self.byte()?;
        let mut jid = self.string(user_byte, depth + 1)?;
        let server = match Server::from_domain_type(domain) {
            Some(server) => server,
            // Another domain type is the agent of a s.whatsapp.net JID; keep it.
            None => {
                let _ = write!(jid, "_{domain}");
                Server::Pn
            }
        };
        if device != 0 {
            let _ = write!(jid, ":{device}");
        }
        jid.push('@');
        jid.push_str(server.as_str());
        Ok(jid)
    }

    /// A nibble- or hex-packed string whose tag byte has been read.
    fn packed(&mut self, tag_byte: u8) -> Result<String> {
        let at = self.pos - 1;
        let header = self.byte()?;
        let odd = header & 0x80 != 0;
        let pairs = usize::from(header & 0x7f);
        if odd && pairs == 0 {
            return Err(Error::InvalidPacked {
                at,
                reason: "odd length with no bytes",
            });
        }
        let bytes = self.take(pairs)?;
        let digit: fn(u8) -> Option<char> = if tag_byte == tag::NIBBLE_8 {
            unpack_nibble
        } else {
            unpack_hex
        };
        let mut out = String::with_capacity(pairs * 2);
        for (i, b) in bytes.iter().enumerate() {
            let (high, low) = (b >> 4, b & 0x0f);
            out.push(digit(high).ok_or(Error::InvalidPacked {
                at,
                reason: "invalid digit",
            })?);
            if odd && i + 1 == pairs {
                if low != 0x0f {
                    return Err(Error::InvalidPacked {
                        at,
                        reason: "odd length not padded with 0xF",
                    });
                }
            } else {
                out.push(digit(low).ok_or(Error::InvalidPacked {
                    at,
                    reason: "invalid digit",
                })?);
            }
        }
        Ok(out)
    }
}

fn unpack_nibble(n: u8) -> Option<char> {
    match n {
        0..=9 => Some(char::from(b'0' + n)),
        10 => Some('-'),
        11 => Some('.'),
        _ => None,
    }
}

fn unpack_hex(n: u8) -> Option<char> {
    match n {
        0..=9 => Some(char::from(b'0' + n)),
        10..=15 => Some(char::from(b'A' + n - 10)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Node> {
        node(bytes, &DecodeLimits::DEFAULT)
    }

    #[test]
    fn typed_errors_for_malformed_input() {
        // Truncated list header.
        assert!(matches!(decode(&[0xf8]), Err(Error::Truncated { .. })));
        // A node cannot be an empty list.
        assert!(matches!(decode(&[0x00]), Err(Error::InvalidNode { .. })));
        // Empty tag.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0x00]),
            Err(Error::InvalidNode { .. })
        ));
        // A list where a string is expected.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0xf8]),
            Err(Error::UnexpectedTag { tag: 0xf8, .. })
        ));
        // Tags 240..=244 are not strings.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0xf0]),
            Err(Error::UnexpectedTag { tag: 0xf0, .. })
        ));
        // Declared binary length beyond the input.
        assert!(matches!(
            decode(&[0xf8, 0x02, 0x19, 0xfe, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::Truncated { .. })
        ));
        // Invalid UTF-8 in a raw tag.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0xfc, 0x01, 0xff]),
            Err(Error::InvalidUtf8 { .. })
        ));
        // Trailing bytes.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0x19, 0x00]),
            Err(Error::TrailingBytes { count: 1 })
        ));
        // JID pair with an empty server.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0xfa, 0x19, 0x00]),
            Err(Error::InvalidNode { .. })
        ));
        // Duplicate attribute.
        assert!(matches!(
            decode(&[0xf8, 0x05, 0x19, 0x08, 0x19, 0x08, 0x19]),
            Err(Error::DuplicateAttribute { .. })
        ));
    }

    #[test]
    fn packed_strings_are_strict() {
        // Nibble 0xC is not a digit.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0xff, 0x01, 0x1c]),
            Err(Error::InvalidPacked { .. })
        ));
        // Odd length must be padded with 0xF.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0xff, 0x81, 0x12]),
            Err(Error::InvalidPacked { .. })
        ));
        // Odd flag with no bytes.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0xff, 0x80]),
            Err(Error::InvalidPacked { .. })
        ));
        // A 0xF nibble in the middle is not a digit either.
        assert!(matches!(
            decode(&[0xf8, 0x01, 0xff, 0x02, 0xf1, 0x23]),
            Err(Error::InvalidPacked { .. })
        ));
        // Valid: "1.5-3" and hex "F0F".
        assert_eq!(
            decode(&[0xf8, 0x01, 0xff, 0x83, 0x1b, 0x5a, 0x3f])
                .unwrap()
                .tag,
            "1.5-3"
        );
        assert_eq!(
            decode(&[0xf8, 0x01, 0xfb, 0x82, 0xf0, 0xff]).unwrap().tag,
            "F0F"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        // 10 000 nested single-child lists: must fail with TooDeep, not overflow the stack.
        let mut bytes = Vec::new();
        for _ in 0..10_000 {
            bytes.extend_from_slice(&[0xf8, 0x02, 0x19, 0xf8, 0x01]);
        }
        assert!(matches!(decode(&bytes), Err(Error::TooDeep { limit: 64 })));
        // JID pairs nested in JID parts count too.
        let mut jid = vec![0xf8, 0x01];
        jid.extend(std::iter::repeat_n(0xfa, 10_000));
        assert!(matches!(decode(&jid), Err(Error::TooDeep { .. })));
    }

    #[test]
    fn declared_sizes_do_not_drive_allocation() {
        // LIST_16 claiming 65 535 children with 3 bytes of input: fails fast on truncation.
        assert!(matches!(
            decode(&[0xf8, 0x02, 0x19, 0xf9, 0xff, 0xff, 0xf8]),
            Err(Error::Truncated { .. })
        ));
        // 65 535 attributes claimed.
        assert!(matches!(
            decode(&[0xf9, 0xff, 0xff, 0x19]),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn binary_20_ignores_the_high_nibble() {
        // Length bytes 0xf0 0x00 0x01: the high nibble is not part of the 20-bit length.
        let node = decode(&[0xf8, 0x02, 0x19, 0xfd, 0xf0, 0x00, 0x01, 0xab]).unwrap();
        assert_eq!(node.content, Content::Bytes(vec![0xab]));
    }

    #[test]
    fn unknown_domain_types_keep_their_agent() {
        // AD_JID domain 5, device 3, user token "1"... user raw "u".
        let node = decode(&[0xf8, 0x02, 0x19, 0xf7, 0x05, 0x03, 0xfc, 0x01, b'u']).unwrap();
        assert_eq!(node.content_text(), Some("u_5:3@s.whatsapp.net"));
    }

    #[test]
    fn fb_and_interop_jids() {
        // FB_JID: user "u", device 0x0102, server "msgr".
        let mut fb = vec![
            0xf8, 0x02, 0x19, 0xf6, 0xfc, 0x01, b'u', 0x01, 0x02, 0xfc, 0x04,
        ];
        fb.extend_from_slice(b"msgr");
        assert_eq!(decode(&fb).unwrap().content_text(), Some("u:258@msgr"));
        // INTEROP_JID: user "u", device 3, integrator 7, server "interop".
        let mut interop = vec![
            0xf8, 0x02, 0x19, 0xf5, 0xfc, 0x01, b'u', 0, 3, 0, 7, 0xfc, 0x07,
        ];
        interop.extend_from_slice(b"interop");
        assert_eq!(
            decode(&interop).unwrap().content_text(),
            Some("7-u:3@interop")
        );
        // A truncated interop JID is an error, not a guess.
        assert!(matches!(
            decode(&interop[..interop.len() - 9]),
            Err(Error::Truncated { .. })
        ));
    }
}
