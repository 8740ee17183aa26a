//! The binary node codec ("WABinary", dictionary version 3).
//!
//! A node buffer is one flag byte followed by one node. Flag `0x00`: the node bytes follow;
//! flag `0x02`: a zlib stream (with header) of the node bytes follows. [`encode`] writes flag
//! `0x00` exactly as Baileys' `encodeBinaryNode`; [`decode`] accepts both.
//!
//! Inside, a node is a list `[tag, key1, value1, ..., content?]` and every string is written in
//! the first form that fits: a dictionary token, a nibble-packed number (`0-9 - .`, up to 127
//! characters), a hex-packed string (`0-9 A-F`), a JID (any string with `@`), or raw UTF-8.
//! JIDs use `AD_JID` when they carry a device on `s.whatsapp.net`/`lid`/`hosted`/`hosted.lid`,
//! `FB_JID` for `user:device@msgr`, `INTEROP_JID` for `integrator-user:device@interop`, and
//! `JID_PAIR` otherwise.
//!
//! Round trips: `decode(encode(node)) == node` except where the format itself loses
//! information, exactly as in Baileys: a device JID with device 0 decodes without `:0`; the
//! `user_agent:device@s.whatsapp.net` form with agent 0, 1, 128 or 129 decodes as the server
//! that domain type names; string content that is not a token, packed number or JID decodes as
//! [`Content::Bytes`](crate::Content::Bytes); empty string content decodes as an empty child list.
//! (So two attribute keys that differ only in such a form, e.g. `u:0@lid` and `u@lid`, collide
//! once decoded, and the decoder reports [`Error::DuplicateAttribute`].)
//!
//! Decoding is defensive: it never panics, allocates in proportion to the input (never to a
//! declared size), bounds nesting ([`DecodeLimits::max_depth`]) and inflation
//! ([`DecodeLimits::max_inflated_len`]), rejects duplicate attribute keys and trailing bytes,
//! and reports every failure as a typed [`Error`].

mod decode;
mod encode;
mod wire_jid;

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use crate::error::{Error, Result};
use crate::node::Node;

/// Flag byte bit: the rest of the buffer is zlib-compressed.
pub const FLAG_COMPRESSED: u8 = 0x02;

/// Limits that keep decoding of hostile input cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Deepest nesting of nodes (the top node is depth 0), also applied to JIDs nested inside
    /// JID parts. Default 64; real stanzas stay under 10.
    pub max_depth: usize,
    /// Largest inflated size of a compressed node, in bytes. Default 16 MiB (the largest
    /// frame the transport can carry).
    pub max_inflated_len: usize,
}

impl DecodeLimits {
    /// The default limits.
    pub const DEFAULT: DecodeLimits = DecodeLimits {
        max_depth: 64,
        max_inflated_len: 16 << 20,
    };
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits::DEFAULT
    }
}

/// Encodes `node` with the leading flag byte `0x00`, byte for byte as Baileys 7's
/// `encodeBinaryNode`.
///
/// Fails only for nodes the format cannot carry: an empty tag, more than 65 535 list entries,
/// or a value longer than 2^32 - 1 bytes.
pub fn encode(node: &Node) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    encode_into(node, &mut out)?;
    Ok(out)
}

/// [`encode`], appending to `out` (to reuse a buffer). On error `out` may hold a partial node.
pub fn encode_into(node: &Node, out: &mut Vec<u8>) -> Result<()> {
    out.push(0);
    encode::node(node, out)
}

/// Encodes `node` without the flag byte: the node bytes alone.
pub fn encode_raw(node: &Node) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    encode::node(node, &mut out)?;
    Ok(out)
}

/// Encodes `node` compressed: flag `0x02` followed by the zlib stream (with header) of the
/// node bytes, at `level` (0-9).
pub fn encode_compressed(node: &Node, level: u32) -> Result<Vec<u8>> {
    let raw = encode_raw(node)?;
    let mut out = Vec::with_capacity(raw.len() / 2 + 16);
    out.push(FLAG_COMPRESSED);
    let mut zlib = ZlibEncoder::new(out, Compression::new(level.min(9)));
    zlib.write_all(&raw).map_err(Error::Compress)?;
    zlib.finish().map_err(Error::Compress)
}

/// Decodes a node buffer (flag byte first, inflating when compressed) with the default limits.
pub fn decode(bytes: &[u8]) -> Result<Node> {
    decode_with_limits(bytes, &DecodeLimits::DEFAULT)
}

/// [`decode`] with explicit limits.
pub fn decode_with_limits(bytes: &[u8], limits: &DecodeLimits) -> Result<Node> {
    let (&flags, body) = bytes.split_first().ok_or(Error::Empty)?;
    if flags & !FLAG_COMPRESSED != 0 {
        return Err(Error::UnsupportedFlags { flags });
    }
    if flags & FLAG_COMPRESSED != 0 {
        let inflated = inflate(body, limits.max_inflated_len)?;
        decode::node(&inflated, limits)
    } else {
        decode::node(body, limits)
    }
}

/// Decodes node bytes without a flag byte (what [`encode_raw`] writes).
pub fn decode_raw(bytes: &[u8], limits: &DecodeLimits) -> Result<Node> {
    decode::node(bytes, limits)
}

fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    // Read one byte past the limit: if it arrives, the stream is too large.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    ZlibDecoder::new(compressed)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(Error::Decompress)?;
    if out.len() > limit {
        return Err(Error::DecompressedTooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Node {
        Node::new("message")
            .with_attr("id", "3EB0C7A1B2C3D4E5F6")
            .with_attr("to", "120363025246125888@g.us")
            .with_children([Node::new("enc").with_bytes(vec![7; 200])])
    }

    #[test]
    fn flag_byte_rules() {
        assert!(matches!(decode(&[]), Err(Error::Empty)));
        let mut bytes = encode(&sample()).unwrap();
        bytes[0] = 0x01;
        assert!(matches!(
            decode(&bytes),
            Err(Error::UnsupportedFlags { flags: 0x01 })
        ));
        bytes[0] = 0x00;
        assert_eq!(decode(&bytes).unwrap(), sample());
        assert_eq!(
            decode_raw(&bytes[1..], &DecodeLimits::DEFAULT).unwrap(),
            sample()
        );
        assert_eq!(encode_raw(&sample()).unwrap(), bytes[1..]);
    }

    #[test]
    fn broken_compressed_input_is_an_error() {
        let packed = encode_compressed(&sample(), 9).unwrap();
        assert_eq!(packed[0], FLAG_COMPRESSED);
        assert_eq!(decode(&packed).unwrap(), sample());
        for cut in 1..packed.len() {
            assert!(decode(&packed[..cut]).is_err(), "cut at {cut}");
        }
        // Not zlib at all.
        assert!(matches!(
            decode(&[FLAG_COMPRESSED, 0xde, 0xad, 0xbe, 0xef]),
            Err(Error::Decompress(_))
        ));
    }

    #[test]
    fn inflate_limit_stops_bombs() {
        // 4 MiB of zeros as content compresses to a few KiB.
        let bomb = Node::new("x").with_bytes(vec![0; 4 << 20]);
        let packed = encode_compressed(&bomb, 9).unwrap();
        assert!(packed.len() < 64 << 10);
        let limits = DecodeLimits {
            max_inflated_len: 1 << 20,
            ..DecodeLimits::DEFAULT
        };
        assert!(matches!(
            decode_with_limits(&packed, &limits),
            Err(Error::DecompressedTooLarge { limit }) if limit == 1 << 20
        ));
        assert_eq!(decode(&packed).unwrap(), bomb);
    }

    #[test]
    fn unencodable_nodes_are_errors() {
        assert!(matches!(
            encode(&Node::new("")),
            Err(Error::Unencodable { .. })
        ));
        let wide = Node::new("list").with_children((0..70_000).map(|_| Node::new("item")));
        assert!(matches!(
            encode(&wide),
            Err(Error::TooLarge { what: "list", .. })
        ));
    }
}
