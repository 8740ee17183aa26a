//! Framing: the 3-byte big-endian length prefix, an incremental frame reader, and the intro
//! bytes sent before the first frame.

use crate::error::{Result, SignalError};

/// The largest frame body the 3-byte length prefix can describe (16 MiB - 1).
pub const MAX_FRAME_LEN: usize = 0x00FF_FFFF;

/// Length of the frame header.
pub const FRAME_HEADER_LEN: usize = 3;

/// `len` as a 3-byte big-endian length prefix, or [`SignalError::NoiseFrameTooLarge`].
fn len_header(len: usize) -> Result<[u8; FRAME_HEADER_LEN]> {
    if len > MAX_FRAME_LEN {
        return Err(SignalError::NoiseFrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    let [_, a, b, c] = (len as u32).to_be_bytes();
    Ok([a, b, c])
}

/// Reads a 3-byte big-endian length.
fn read_len(header: [u8; FRAME_HEADER_LEN]) -> usize {
    let [a, b, c] = header;
    u32::from_be_bytes([0, a, b, c]) as usize
}

/// Frames `body`: `len(body)` as 3 bytes big-endian, then `body`. Fails with
/// [`SignalError::NoiseFrameTooLarge`] when `body` is longer than [`MAX_FRAME_LEN`].
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    out.extend_from_slice(&len_header(body.len())?);
    out.extend_from_slice(body);
    Ok(out)
}

/// Writes the length prefix of a frame whose body starts at `header_at + 3` and runs to the end
/// of `buf` (the header was reserved as three placeholder bytes).
pub(crate) fn patch_len(buf: &mut [u8], header_at: usize) -> Result<()> {
    let header = len_header(buf.len().saturating_sub(header_at + FRAME_HEADER_LEN))?;
    if let Some(slot) = buf.get_mut(header_at..header_at + FRAME_HEADER_LEN) {
        slot.copy_from_slice(&header);
    }
    Ok(())
}

/// An incremental reader of length-prefixed frames: feed it bytes exactly as they arrive (any
/// split, any number of frames at once) and take out whole frame bodies.
///
/// A frame whose announced length exceeds the limit is rejected as soon as its header is read,
/// without waiting for its body (and no room is reserved ahead for an announced length); the
/// stream cannot be resynchronised after that, so the error repeats on every further call and
/// the connection must be dropped.
///
/// ```
/// use wa_signal::noise::{FrameReader, encode_frame};
///
/// let mut wire = encode_frame(b"first").unwrap();
/// wire.extend(encode_frame(b"second").unwrap());
/// let mut reader = FrameReader::new();
/// let mut frames = Vec::new();
/// for chunk in wire.chunks(4) {
///     reader.push(chunk);
///     while let Some(frame) = reader.next_frame().unwrap() {
///         frames.push(frame);
///     }
/// }
/// assert_eq!(frames, [b"first".to_vec(), b"second".to_vec()]);
/// ```
#[derive(Clone)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    start: usize,
    max_frame_len: usize,
}

impl FrameReader {
    /// A reader accepting frames up to [`MAX_FRAME_LEN`] bytes.
    pub fn new() -> Self {
        Self::with_max_frame_len(MAX_FRAME_LEN)
    }

    /// A reader rejecting frames longer than `max_frame_len` (capped at [`MAX_FRAME_LEN`]).
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max_frame_len: max_frame_len.min(MAX_FRAME_LEN),
        }
    }

    /// The frame size limit.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame body, `None` when more bytes are needed, or
    /// [`SignalError::NoiseFrameTooLarge`] when the next frame exceeds the limit.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        let pending = &self.buf[self.start..];
        let Some(&header) = pending.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = read_len(header);
        if len > self.max_frame_len {
            return Err(SignalError::NoiseFrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        let Some(body) = pending.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
            return Ok(None);
        };
        let body = body.to_vec();
        self.start += FRAME_HEADER_LEN + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(body))
    }
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("buffered_len", &self.buffered_len())
            .field("max_frame_len", &self.max_frame_len)
            .finish()
    }
}

/// The "WA" header's first three bytes; the fourth is the binary-node dictionary version.
const WA_MAGIC: [u8; 3] = *b"WA\x06";
/// The routing-info preamble's first four bytes.
const ED_MAGIC: [u8; 4] = *b"ED\x00\x01";

/// The bytes a client sends before its first frame: optionally a routing-info preamble, then
/// the Noise prologue `"WA" 0x06 <dictionary version>`.
///
/// With routing info: `"ED" 0x00 0x01 || len (3 bytes BE) || routing info || "WA" 6 v`; only
/// the final four bytes are the prologue mixed into the handshake hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intro {
    /// The binary-node dictionary version, the prologue's last byte (3 for current clients;
    /// Baileys 6 sent 2).
    pub dictionary_version: u8,
    /// `creds.routingInfo`, when the account has one.
    pub routing_info: Option<Vec<u8>>,
}

impl Intro {
    /// The prologue, `"WA" 0x06 <dictionary version>`.
    pub fn prologue(&self) -> [u8; 4] {
        [
            WA_MAGIC[0],
            WA_MAGIC[1],
            WA_MAGIC[2],
            self.dictionary_version,
        ]
    }

    /// The intro bytes. Fails when the routing info does not fit a 3-byte length.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(routing) = &self.routing_info {
            out.extend_from_slice(&ED_MAGIC);
            let header = len_header(routing.len()).map_err(|_| SignalError::NoiseMalformed {
                what: "routing info",
                reason: format!("{} bytes do not fit a 3-byte length", routing.len()),
            })?;
            out.extend_from_slice(&header);
            out.extend_from_slice(routing);
        }
        out.extend_from_slice(&self.prologue());
        Ok(out)
    }

    /// Parses an intro at the start of `buf` (the server side). Returns the intro and how many
    /// bytes it took, `None` when `buf` is a valid but incomplete prefix, or
    /// [`SignalError::NoiseMalformed`] when it cannot be an intro.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>> {
        let malformed = |reason: &str| SignalError::NoiseMalformed {
            what: "intro",
            reason: reason.into(),
        };
        let (routing_info, rest_at) = match buf.first() {
            None => return Ok(None),
            Some(b'E') => {
                let known = buf.len().min(ED_MAGIC.len());
                if buf[..known] != ED_MAGIC[..known] {
                    return Err(malformed("routing preamble is not \"ED\" 0 1"));
                }
                let Some(&len) = buf
                    .get(4..)
                    .and_then(<[u8]>::first_chunk::<FRAME_HEADER_LEN>)
                else {
                    return Ok(None);
                };
                let len = read_len(len);
                let Some(routing) = buf.get(7..7 + len) else {
                    return Ok(None);
                };
                (Some(routing.to_vec()), 7 + len)
            }
            Some(b'W') => (None, 0),
            Some(_) => return Err(malformed("does not start with \"WA\" or \"ED\"")),
        };
        let rest = &buf[rest_at..];
        let known = rest.len().min(WA_MAGIC.len());
        if rest[..known] != WA_MAGIC[..known] {
            return Err(malformed("prologue is not \"WA\" 6 <version>"));
        }
        let Some(&dictionary_version) = rest.get(3) else {
            return Ok(None);
        };
        Ok(Some((
            Self {
                dictionary_version,
                routing_info,
            },
            rest_at + 4,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_reader() {
        let mut reader = FrameReader::new();
        let mut wire = Vec::new();
        for body in [&b""[..], b"a", &[7u8; 300]] {
            wire.extend(encode_frame(body).unwrap());
        }
        reader.push(&wire);
        assert_eq!(reader.next_frame().unwrap().unwrap(), b"");
        assert_eq!(reader.next_frame().unwrap().unwrap(), b"a");
        assert_eq!(reader.next_frame().unwrap().unwrap(), vec![7u8; 300]);
        assert_eq!(reader.next_frame().unwrap(), None);
        assert_eq!(reader.buffered_len(), 0);
    }

    #[test]
    fn header_is_three_bytes_big_endian() {
        let frame = encode_frame(&[0u8; 0x0102]).unwrap();
        assert_eq!(&frame[..3], &[0x00, 0x01, 0x02]);
        assert!(matches!(
            encode_frame(&vec![0u8; MAX_FRAME_LEN + 1]),
            Err(SignalError::NoiseFrameTooLarge { .. })
        ));
    }

    #[test]
    fn oversized_frames_are_rejected_from_the_header_alone() {
        let mut reader = FrameReader::with_max_frame_len(10);
        reader.push(&[0, 0, 11]);
        assert!(matches!(
            reader.next_frame(),
            Err(SignalError::NoiseFrameTooLarge { len: 11, max: 10 })
        ));
        // And it stays rejected.
        assert!(reader.next_frame().is_err());
        assert_eq!(
            FrameReader::with_max_frame_len(usize::MAX).max_frame_len(),
            MAX_FRAME_LEN
        );
    }

    #[test]
    fn intro_without_routing_info_is_the_prologue() {
        let intro = Intro {
            dictionary_version: 3,
            routing_info: None,
        };
        assert_eq!(intro.encode().unwrap(), b"WA\x06\x03");
        assert_eq!(Intro::parse(b"WA\x06\x03rest").unwrap(), Some((intro, 4)));
        for cut in 0..4 {
            assert_eq!(Intro::parse(&b"WA\x06\x03"[..cut]).unwrap(), None);
        }
    }

    #[test]
    fn intro_with_routing_info_parses_incrementally() {
        let intro = Intro {
            dictionary_version: 2,
            routing_info: Some(vec![8, 5, 8, 8]),
        };
        let bytes = intro.encode().unwrap();
        assert_eq!(bytes, b"ED\x00\x01\x00\x00\x04\x08\x05\x08\x08WA\x06\x02");
        for cut in 0..bytes.len() {
            assert_eq!(Intro::parse(&bytes[..cut]).unwrap(), None, "cut {cut}");
        }
        assert_eq!(Intro::parse(&bytes).unwrap(), Some((intro, bytes.len())));
    }

    #[test]
    fn bad_intros_are_rejected() {
        for bad in [
            &b"XA\x06\x03"[..],
            b"WB",
            b"WA\x05\x03",
            b"EE",
            b"ED\x00\x02",
        ] {
            assert!(
                matches!(
                    Intro::parse(bad),
                    Err(SignalError::NoiseMalformed { what: "intro", .. })
                ),
                "{bad:?}"
            );
        }
        assert!(
            Intro::parse(b"ED\x00\x01\x00\x00\x01\x09WX").is_err(),
            "prologue after routing info is checked too"
        );
    }
}
