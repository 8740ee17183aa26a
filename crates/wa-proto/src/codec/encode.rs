//! Node → bytes.

use super::wire_jid::{WireJid, classify};
use crate::error::{Error, Result};
use crate::node::{Content, Node};
use crate::token::{self, PACKED_MAX, Token, tag};

/// Appends the bytes of `node` (no flag byte).
pub(super) fn node(node: &Node, out: &mut Vec<u8>) -> Result<()> {
    if node.tag.is_empty() {
        return Err(Error::Unencodable {
            tag: String::new(),
            reason: "empty tag",
        });
    }
    let has_content = !matches!(node.content, Content::None);
    let size = 1 + 2 * node.attrs.len() + usize::from(has_content);
    list_start(size, out)?;
    string(&node.tag, out)?;
    for (key, value) in &node.attrs {
        string(key, out)?;
        string(value, out)?;
    }
    match &node.content {
        Content::None => {}
        Content::Nodes(children) => {
            list_start(children.len(), out)?;
            for child in children {
                self::node(child, out)?;
            }
        }
        Content::Bytes(bytes) => binary(bytes, out)?,
        Content::Text(text) => string(text, out)?,
    }
    Ok(())
}

fn list_start(size: usize, out: &mut Vec<u8>) -> Result<()> {
    match size {
        0 => out.push(tag::LIST_EMPTY),
        1..=0xff => out.extend_from_slice(&[tag::LIST_8, size as u8]),
        0x100..=0xffff => {
            out.push(tag::LIST_16);
            out.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            return Err(Error::TooLarge {
                what: "list",
                len: size,
                max: 0xffff,
            });
        }
    }
    Ok(())
}

fn binary(bytes: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let len = bytes.len();
    if len < 0x100 {
        out.extend_from_slice(&[tag::BINARY_8, len as u8]);
    } else if len < 1 << 20 {
        out.extend_from_slice(&[
            tag::BINARY_20,
            (len >> 16) as u8 & 0x0f,
            (len >> 8) as u8,
            len as u8,
        ]);
    } else {
        let len32 = u32::try_from(len).map_err(|_| Error::TooLarge {
            what: "binary value",
            len,
            max: u32::MAX as usize,
        })?;
        out.push(tag::BINARY_32);
        out.extend_from_slice(&len32.to_be_bytes());
    }
    out.extend_from_slice(bytes);
    Ok(())
}

fn string(s: &str, out: &mut Vec<u8>) -> Result<()> {
    if let Some(token) = token::lookup(s) {
        match token {
            Token::Single(index) => out.push(index),
            Token::Double { dictionary, index } => {
                out.extend_from_slice(&[tag::DICTIONARY_0 + dictionary, index]);
            }
        }
        return Ok(());
    }
    if s.len() <= PACKED_MAX {
        if s.bytes().all(|b| nibble(b).is_some()) {
            packed(s, tag::NIBBLE_8, nibble, out);
            return Ok(());
        }
        if s.bytes().all(|b| hex(b).is_some()) {
            packed(s, tag::HEX_8, hex, out);
            return Ok(());
        }
    }
    if let Some(jid) = classify(s) {
        return wire_jid(jid, out);
    }
    binary(s.as_bytes(), out)
}

fn wire_jid(jid: WireJid<'_>, out: &mut Vec<u8>) -> Result<()> {
    match jid {
        WireJid::Pair { user, server } => {
            out.push(tag::JID_PAIR);
            if user.is_empty() {
                out.push(tag::LIST_EMPTY);
            } else {
                string(user, out)?;
            }
            string(server, out)
        }
        WireJid::Device {
            domain,
            device,
            user,
        } => {
            out.extend_from_slice(&[tag::AD_JID, domain, device]);
            string(user, out)
        }
        WireJid::Messenger {
            user,
            device,
            server,
        } => {
            out.push(tag::FB_JID);
            string(user, out)?;
            out.extend_from_slice(&device.to_be_bytes());
            string(server, out)
        }
        WireJid::Interop {
            user,
            device,
            integrator,
            server,
        } => {
            out.push(tag::INTEROP_JID);
            string(user, out)?;
            out.extend_from_slice(&device.to_be_bytes());
            out.extend_from_slice(&integrator.to_be_bytes());
            string(server, out)
        }
    }
}

/// Nibble code of an ASCII byte: `0-9` → 0-9, `-` → 10, `.` → 11.
fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'-' => Some(10),
        b'.' => Some(11),
        _ => None,
    }
}

/// Hex code of an ASCII byte: `0-9 A-F` (uppercase only).
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `tag, ceil(len/2) | 0x80 if odd, packed pairs`, the odd last nibble padded with 0xF.
/// `s` is at most `PACKED_MAX` bytes, all accepted by `code`.
fn packed(s: &str, tag: u8, code: fn(u8) -> Option<u8>, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    let odd = bytes.len() % 2 == 1;
    let pairs = bytes.len().div_ceil(2) as u8;
    out.push(tag);
    out.push(if odd { pairs | 0x80 } else { pairs });
    for pair in bytes.chunks(2) {
        let high = code(pair[0]).unwrap_or(0x0f);
        let low = pair.get(1).and_then(|b| code(*b)).unwrap_or(0x0f);
        out.push(high << 4 | low);
    }
}
