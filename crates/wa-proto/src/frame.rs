//! Transport framing: the connection intro and 3-byte length-prefixed frames.
//!
//! The client opens the connection with an intro, sent once, right before its first frame:
//! the header `"WA" 6 <dictionary version>` (`"WA" 6 3` for dictionary version 3), preceded,
//! when the account has routing info, by `"ED" 0 1 ‖ len(routing info) as 3-byte BE ‖ routing
//! info`. Every message after that (Noise handshake messages, then encrypted nodes) travels as
//! `len(payload) as 3-byte BE ‖ payload`.
//!
//! ```
//! use wa_proto::frame::{FrameDecoder, FrameEncoder, Intro};
//!
//! let mut encoder = FrameEncoder::new(Intro::new(Some(b"routing"))?);
//! let mut wire = encoder.encode(b"hello")?; // intro + first frame
//! wire.extend(encoder.encode(b"world")?);
//!
//! let mut decoder = FrameDecoder::expecting_intro();
//! let mut frames = Vec::new();
//! for chunk in wire.chunks(3) {
//!     decoder.push(chunk);
//!     while let Some(frame) = decoder.next_frame()? {
//!         frames.push(frame);
//!     }
//! }
//! assert_eq!(frames, [b"hello".to_vec(), b"world".to_vec()]);
//! assert_eq!(decoder.intro().and_then(|i| i.routing_info()), Some(&b"routing"[..]));
//! # Ok::<(), wa_proto::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::token::DICTIONARY_VERSION;

/// The connection header for this crate's dictionary version: `"WA" 6 3`.
pub const WA_HEADER: [u8; 4] = [b'W', b'A', 6, DICTIONARY_VERSION];

/// The prefix announcing routing info before the header: `"ED" 0 1`.
pub const ROUTING_PREFIX: [u8; 4] = [b'E', b'D', 0, 1];

/// The largest payload a 3-byte length can frame: 2^24 - 1 bytes.
pub const MAX_FRAME_LEN: usize = 0xff_ffff;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 3;

/// The intro a client sends before its first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intro {
    routing_info: Option<Vec<u8>>,
    header: [u8; 4],
}

impl Intro {
    /// The intro with [`WA_HEADER`], preceded by the routing block when `routing_info` is
    /// given. Fails when the routing info is longer than [`MAX_FRAME_LEN`].
    pub fn new(routing_info: Option<&[u8]>) -> Result<Intro> {
        if let Some(info) = routing_info
            && info.len() > MAX_FRAME_LEN
        {
            return Err(Error::TooLarge {
                what: "routing info",
                len: info.len(),
                max: MAX_FRAME_LEN,
            });
        }
        Ok(Intro {
            routing_info: routing_info.map(<[u8]>::to_vec),
            header: WA_HEADER,
        })
    }

    /// This intro with another 4-byte header (e.g. `"WA" 6 2`, which Baileys 6 sends for
    /// dictionary version 2).
    #[must_use]
    pub fn with_header(mut self, header: [u8; 4]) -> Intro {
        self.header = header;
        self
    }

    /// The routing info, if the intro carries it.
    pub fn routing_info(&self) -> Option<&[u8]> {
        self.routing_info.as_deref()
    }

    /// The 4-byte header (`"WA" 6 <dictionary version>`).
    pub fn header(&self) -> [u8; 4] {
        self.header
    }

    /// The intro's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write(&mut out);
        out
    }

    /// The intro's length in bytes.
    pub fn encoded_len(&self) -> usize {
        match &self.routing_info {
            Some(info) => ROUTING_PREFIX.len() + LENGTH_PREFIX_LEN + info.len() + 4,
            None => 4,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        if let Some(info) = &self.routing_info {
            out.extend_from_slice(&ROUTING_PREFIX);
            out.extend_from_slice(&length_prefix(info.len()));
            out.extend_from_slice(info);
        }
        out.extend_from_slice(&self.header);
    }

    /// Parses an intro at the start of `bytes`: `Ok(None)` when more bytes are needed,
    /// `Ok(Some((intro, consumed)))` once it is complete. Routing info longer than
    /// `max_routing_len` is an error.
    pub fn parse(bytes: &[u8], max_routing_len: usize) -> Result<Option<(Intro, usize)>> {
        if bytes.len() < 2 {
            return Ok(None);
        }
        let (routing_info, header_at) = if bytes[..2] == ROUTING_PREFIX[..2] {
            if bytes.len() < ROUTING_PREFIX.len() + LENGTH_PREFIX_LEN {
                return Ok(None);
            }
            if bytes[2..4] != ROUTING_PREFIX[2..] {
                return Err(Error::InvalidIntro {
                    reason: "unknown routing block version",
                });
            }
            let len = read_length(&bytes[4..7]);
            if len > max_routing_len {
                return Err(Error::FrameTooLarge {
                    len,
                    limit: max_routing_len,
                });
            }
            let start = ROUTING_PREFIX.len() + LENGTH_PREFIX_LEN;
            let Some(info) = bytes.get(start..start + len) else {
                return Ok(None);
            };
            (Some(info.to_vec()), start + len)
        } else {
            (None, 0)
        };
        // Judge the "WA" magic as soon as its two bytes are here.
        if let Some(magic) = bytes.get(header_at..header_at + 2)
            && magic != &WA_HEADER[..2]
        {
            return Err(Error::InvalidIntro {
                reason: "no \"WA\" header",
            });
        }
        let Some(header) = bytes.get(header_at..header_at + 4) else {
            return Ok(None);
        };
        let header = [header[0], header[1], header[2], header[3]];
        Ok(Some((
            Intro {
                routing_info,
                header,
            },
            header_at + 4,
        )))
    }
}

/// Appends `len(payload) as 3-byte BE ‖ payload` to `out`.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(Error::TooLarge {
            what: "frame",
            len: payload.len(),
            max: MAX_FRAME_LEN,
        });
    }
    out.reserve(LENGTH_PREFIX_LEN + payload.len());
    out.extend_from_slice(&length_prefix(payload.len()));
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends a frame to `out` whose payload `write_payload` appends in place, then writes the
/// length prefix in front of it. This frames a payload produced directly in the output buffer
/// (for example one encrypted in place) without copying it.
///
/// `write_payload` gets `out` with a 3-byte placeholder prefix already appended and must only
/// append to it (whatever it leaves after the placeholder is the payload). When it fails, or
/// when the payload exceeds [`MAX_FRAME_LEN`] (then with [`Error::TooLarge`], converted into
/// `E`), `out` is truncated back to its length before the call.
///
/// # Panics
///
/// If `write_payload` truncates `out` into the placeholder (a broken contract, not bad input).
///
/// ```
/// use wa_proto::frame::{FrameDecoder, encode_frame_with};
///
/// let mut wire = b"earlier bytes".to_vec();
/// encode_frame_with(&mut wire, |out| {
///     let start = out.len();
///     out.extend_from_slice(b"payload");
///     out[start..].make_ascii_uppercase(); // transformed in place
///     Ok::<(), wa_proto::Error>(())
/// })?;
/// assert_eq!(&wire[13..], b"\x00\x00\x07PAYLOAD");
///
/// let mut decoder = FrameDecoder::new();
/// decoder.push(&wire[13..]);
/// assert_eq!(decoder.next_frame()?, Some(b"PAYLOAD".to_vec()));
/// # Ok::<(), wa_proto::Error>(())
/// ```
pub fn encode_frame_with<E, F>(out: &mut Vec<u8>, write_payload: F) -> Result<(), E>
where
    E: From<Error>,
    F: FnOnce(&mut Vec<u8>) -> Result<(), E>,
{
    let header_at = out.len();
    out.extend_from_slice(&[0; LENGTH_PREFIX_LEN]);
    let payload_at = header_at + LENGTH_PREFIX_LEN;
    let written = write_payload(out).and_then(|()| {
        let len = out
            .len()
            .checked_sub(payload_at)
            .expect("encode_frame_with: the payload writer removed the length prefix");
        if len > MAX_FRAME_LEN {
            return Err(Error::TooLarge {
                what: "frame",
                len,
                max: MAX_FRAME_LEN,
            }
            .into());
        }
        out[header_at..payload_at].copy_from_slice(&length_prefix(len));
        Ok(())
    });
    if written.is_err() {
        out.truncate(header_at);
    }
    written
}

fn length_prefix(len: usize) -> [u8; 3] {
    [(len >> 16) as u8, (len >> 8) as u8, len as u8]
}

fn read_length(b: &[u8]) -> usize {
    usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2])
}

/// Frames outgoing payloads, putting the intro (if any) before the first one.
#[derive(Debug, Clone)]
pub struct FrameEncoder {
    pending_intro: Option<Vec<u8>>,
}

impl FrameEncoder {
    /// An encoder that sends `intro` before the first frame (the client side).
    pub fn new(intro: Intro) -> FrameEncoder {
        FrameEncoder {
            pending_intro: Some(intro.to_bytes()),
        }
    }

    /// An encoder without intro (the server side, or a connection whose intro was sent).
    pub fn without_intro() -> FrameEncoder {
        FrameEncoder {
            pending_intro: None,
        }
    }

    /// `true` until the intro has gone out with the first frame.
    pub fn intro_pending(&self) -> bool {
        self.pending_intro.is_some()
    }

    /// The bytes to send for `payload`: `[intro ‖] length ‖ payload`.
    pub fn encode(&mut self, payload: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.encode_into(payload, &mut out)?;
        Ok(out)
    }

    /// [`encode`](Self::encode), appending to `out`.
    pub fn encode_into(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if payload.len() > MAX_FRAME_LEN {
            return Err(Error::TooLarge {
                what: "frame",
                len: payload.len(),
                max: MAX_FRAME_LEN,
            });
        }
        if let Some(intro) = self.pending_intro.take() {
            out.extend_from_slice(&intro);
        }
        encode_frame(payload, out)
    }
}

/// Splits an incoming byte stream into frames, whatever the read boundaries.
///
/// Feed it with [`push`](Self::push) and drain it with [`next_frame`](Self::next_frame). A
/// header declaring more than the limit (default [`MAX_FRAME_LEN`]) is an error; the stream
/// cannot be resynchronised after one, so the decoder keeps returning it.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max_frame_len: usize,
    expect_intro: bool,
    intro: Option<Intro>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder for a stream of frames with no intro (what a client receives).
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_frame_len: MAX_FRAME_LEN,
            expect_intro: false,
            intro: None,
        }
    }

    /// A decoder that first reads the client's intro (what a server, or a test harness
    /// standing in for one, receives). The intro is then available from
    /// [`intro`](Self::intro).
    pub fn expecting_intro() -> FrameDecoder {
        FrameDecoder {
            expect_intro: true,
            ..FrameDecoder::new()
        }
    }

    /// This decoder with a smaller frame-size limit (clamped to [`MAX_FRAME_LEN`]). It also
    /// bounds the routing info of an intro.
    #[must_use]
    pub fn with_max_frame_len(mut self, max: usize) -> FrameDecoder {
        self.max_frame_len = max.min(MAX_FRAME_LEN);
        self
    }

    /// The intro, once read (only for [`expecting_intro`](Self::expecting_intro) decoders).
    pub fn intro(&self) -> Option<&Intro> {
        self.intro.as_ref()
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= 4096) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame's payload, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        if self.expect_intro {
            match Intro::parse(&self.buf[self.start..], self.max_frame_len)? {
                None => return Ok(None),
                Some((intro, consumed)) => {
                    self.start += consumed;
                    self.intro = Some(intro);
                    self.expect_intro = false;
                }
            }
        }
        let pending = &self.buf[self.start..];
        if pending.len() < LENGTH_PREFIX_LEN {
            return Ok(None);
        }
        let len = read_length(&pending[..LENGTH_PREFIX_LEN]);
        if len > self.max_frame_len {
            return Err(Error::FrameTooLarge {
                len,
                limit: self.max_frame_len,
            });
        }
        let Some(payload) = pending.get(LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + len) else {
            return Ok(None);
        };
        let frame = payload.to_vec();
        self.start += LENGTH_PREFIX_LEN + len;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intro_layouts() {
        assert_eq!(Intro::new(None).unwrap().to_bytes(), b"WA\x06\x03");
        let with_routing = Intro::new(Some(&[8, 5])).unwrap();
        assert_eq!(
            with_routing.to_bytes(),
            [b'E', b'D', 0, 1, 0, 0, 2, 8, 5, b'W', b'A', 6, 3]
        );
        assert_eq!(with_routing.encoded_len(), 13);
        assert_eq!(
            Intro::new(None)
                .unwrap()
                .with_header(*b"WA\x06\x02")
                .to_bytes(),
            b"WA\x06\x02"
        );
    }

    #[test]
    fn intro_parse_waits_for_bytes_and_rejects_garbage() {
        let bytes = Intro::new(Some(b"abc")).unwrap().to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(Intro::parse(&bytes[..cut], 100).unwrap(), None, "{cut}");
        }
        let (intro, used) = Intro::parse(&bytes, 100).unwrap().unwrap();
        assert_eq!(
            (intro.routing_info(), used),
            (Some(&b"abc"[..]), bytes.len())
        );
        assert!(matches!(
            Intro::parse(b"XX\x06\x03", 100),
            Err(Error::InvalidIntro { .. })
        ));
        // Garbage is refused before a whole header arrives.
        assert!(matches!(
            Intro::parse(b"GE", 100),
            Err(Error::InvalidIntro { .. })
        ));
        assert!(matches!(
            Intro::parse(b"ED\x00\x02\x00\x00\x00", 100),
            Err(Error::InvalidIntro { .. })
        ));
        assert!(matches!(
            Intro::parse(&bytes, 2),
            Err(Error::FrameTooLarge { len: 3, limit: 2 })
        ));
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let mut out = Vec::new();
        assert!(matches!(
            encode_frame(&vec![0; MAX_FRAME_LEN + 1], &mut out),
            Err(Error::TooLarge { .. })
        ));
        let mut decoder = FrameDecoder::new().with_max_frame_len(10);
        decoder.push(&[0, 0, 11]);
        assert!(matches!(
            decoder.next_frame(),
            Err(Error::FrameTooLarge { len: 11, limit: 10 })
        ));
        // The stream is broken from there on: the error repeats.
        decoder.push(&[0; 11]);
        assert!(decoder.next_frame().is_err());
    }

    #[test]
    fn frames_across_every_split() {
        let mut encoder = FrameEncoder::new(Intro::new(Some(b"route")).unwrap());
        let payloads: Vec<Vec<u8>> = vec![vec![], vec![1], vec![7; 300], vec![9; 5]];
        let mut wire = Vec::new();
        for p in &payloads {
            encoder.encode_into(p, &mut wire).unwrap();
        }
        assert!(!encoder.intro_pending());
        for split in 1..wire.len() {
            let mut decoder = FrameDecoder::expecting_intro();
            let mut got = Vec::new();
            for chunk in [&wire[..split], &wire[split..]] {
                decoder.push(chunk);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got, payloads, "split at {split}");
            assert_eq!(decoder.buffered_len(), 0);
            assert_eq!(decoder.intro().unwrap().routing_info(), Some(&b"route"[..]));
        }
    }

    #[test]
    fn encode_frame_with_matches_encode_frame() {
        for payload in [&b""[..], b"x", &[0xab; 300], &[7; 0x1_0203]] {
            let mut expected = b"prefix".to_vec();
            encode_frame(payload, &mut expected).unwrap();
            let mut got = b"prefix".to_vec();
            encode_frame_with(&mut got, |out| {
                out.extend_from_slice(payload);
                Ok::<(), Error>(())
            })
            .unwrap();
            assert_eq!(got, expected, "{} bytes", payload.len());
        }
    }

    #[test]
    fn encode_frame_with_leaves_out_unchanged_on_error() {
        #[derive(Debug, PartialEq)]
        enum Custom {
            Wire(String),
            Refused,
        }
        impl From<Error> for Custom {
            fn from(e: Error) -> Self {
                Custom::Wire(e.to_string())
            }
        }
        let mut out = b"kept".to_vec();
        let refused = encode_frame_with(&mut out, |out| {
            out.extend_from_slice(b"half written");
            Err(Custom::Refused)
        });
        assert_eq!(refused, Err(Custom::Refused));
        assert_eq!(out, b"kept");

        let too_large = encode_frame_with(&mut out, |out| {
            out.resize(out.len() + MAX_FRAME_LEN + 1, 0);
            Ok::<(), Custom>(())
        });
        assert!(matches!(too_large, Err(Custom::Wire(_))), "{too_large:?}");
        assert_eq!(out, b"kept");

        // The largest payload still fits.
        encode_frame_with(&mut out, |out| {
            out.resize(out.len() + MAX_FRAME_LEN, 1);
            Ok::<(), Error>(())
        })
        .unwrap();
        assert_eq!(&out[4..7], &[0xff, 0xff, 0xff]);
        assert_eq!(out.len(), 4 + LENGTH_PREFIX_LEN + MAX_FRAME_LEN);
    }

    #[test]
    #[should_panic(expected = "removed the length prefix")]
    fn encode_frame_with_panics_when_the_writer_breaks_the_contract() {
        let mut out = Vec::new();
        let _ = encode_frame_with(&mut out, |out| {
            out.clear();
            Ok::<(), Error>(())
        });
    }

    #[test]
    fn compaction_keeps_partial_frames() {
        let mut decoder = FrameDecoder::new();
        let mut wire = Vec::new();
        for i in 0..2000u32 {
            encode_frame(&i.to_be_bytes(), &mut wire).unwrap();
        }
        let mut seen = 0u32;
        for chunk in wire.chunks(5) {
            decoder.push(chunk);
            while let Some(frame) = decoder.next_frame().unwrap() {
                assert_eq!(frame, seen.to_be_bytes());
                seen += 1;
            }
        }
        assert_eq!(seen, 2000);
    }
}
