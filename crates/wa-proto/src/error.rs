//! The crate's error type.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the wire format: malformed or hostile input, limits, values
/// that cannot be represented, and lookups in a decoded stanza that found the wrong shape.
///
/// Decoding untrusted bytes never panics; it returns one of these. Match on the variant, never on
/// the message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended inside a value: `needed` more bytes were required at offset `at`.
    #[error("truncated input: {needed} more byte(s) needed at offset {at}")]
    Truncated {
        /// Offset (in the node bytes) where the missing value starts.
        at: usize,
        /// How many bytes were missing.
        needed: usize,
    },

    /// A byte that cannot start the expected kind of value.
    #[error("unexpected tag byte 0x{tag:02x} for a {expected} at offset {at}")]
    UnexpectedTag {
        /// The offending byte.
        tag: u8,
        /// What was being read (`"string"`, `"list size"`, ...).
        expected: &'static str,
        /// Offset of the byte.
        at: usize,
    },

    /// A double-byte token reference outside the dictionaries.
    #[error("unknown token: dictionary {dictionary}, index {index}")]
    UnknownToken {
        /// Dictionary number (0..=3).
        dictionary: u8,
        /// Index inside the dictionary.
        index: u8,
    },

    /// A nibble- or hex-packed string with an invalid digit, padding or length.
    #[error("invalid packed string at offset {at}: {reason}")]
    InvalidPacked {
        /// Offset of the packed value.
        at: usize,
        /// What was wrong.
        reason: &'static str,
    },

    /// A raw string (tag, attribute key or value, JID part) that is not valid UTF-8.
    #[error("string at offset {at} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the string bytes.
        at: usize,
    },

    /// A structurally invalid node (zero list size, empty tag, a JID without a server, ...).
    #[error("invalid node at offset {at}: {reason}")]
    InvalidNode {
        /// Offset where the problem was found.
        at: usize,
        /// What was wrong.
        reason: &'static str,
    },

    /// The same attribute key appears twice in one node.
    #[error("duplicate attribute {key:?} in <{tag}>")]
    DuplicateAttribute {
        /// The node's tag.
        tag: String,
        /// The repeated key.
        key: String,
    },

    /// Nodes (or JIDs inside strings) are nested deeper than the configured limit.
    #[error("nesting deeper than the limit of {limit}")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },

    /// Bytes remain after the one node a buffer must hold.
    #[error("{count} trailing byte(s) after the node")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },

    /// The leading flag byte of a node buffer has bits this codec does not know.
    #[error("unsupported flag byte 0x{flags:02x}")]
    UnsupportedFlags {
        /// The flag byte.
        flags: u8,
    },

    /// The input buffer was empty where a flag byte was expected.
    #[error("empty input: no flag byte")]
    Empty,

    /// A compressed node buffer is not a valid zlib stream.
    #[error("invalid zlib-compressed node")]
    Decompress(#[source] std::io::Error),

    /// Compressing a node failed (zlib reported an error while writing to memory).
    #[error("zlib compression failed")]
    Compress(#[source] std::io::Error),

    /// A compressed node inflates beyond the configured limit.
    #[error("compressed node inflates beyond the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The configured limit.
        limit: usize,
    },

    /// A value is too large for the wire format (too many children or attributes for LIST_16,
    /// a binary longer than BINARY_32 allows, a frame over 2^24 - 1 bytes, ...).
    #[error("{what} too large: {len} (max {max})")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The largest size allowed.
        max: usize,
    },

    /// A node that cannot be encoded as given.
    #[error("cannot encode <{tag}>: {reason}")]
    Unencodable {
        /// The node's tag.
        tag: String,
        /// Why.
        reason: &'static str,
    },

    /// A string that is not a JID of the accepted forms.
    #[error("invalid JID {input:?}: {reason}")]
    InvalidJid {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A string that is not a Signal address (`name.device`), or a JID without one.
    #[error("invalid Signal address {input:?}: {reason}")]
    InvalidSignalAddress {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A required attribute is missing from a node.
    #[error("<{tag}> has no attribute {key:?}")]
    MissingAttribute {
        /// The node's tag.
        tag: String,
        /// The missing key.
        key: String,
    },

    /// An attribute is present but its value has the wrong form.
    #[error("<{tag}> attribute {key:?} = {value:?} is not {expected}")]
    InvalidAttribute {
        /// The node's tag.
        tag: String,
        /// The attribute key.
        key: String,
        /// The attribute value.
        value: String,
        /// What the value should have been.
        expected: &'static str,
    },

    /// A required child node is missing.
    #[error("<{parent}> has no <{tag}> child")]
    MissingChild {
        /// The parent's tag.
        parent: String,
        /// The missing child's tag.
        tag: String,
    },

    /// A node's content has the wrong kind (e.g. bytes expected, children found).
    #[error("<{tag}> content is not {expected}")]
    UnexpectedContent {
        /// The node's tag.
        tag: String,
        /// The kind of content that was expected.
        expected: &'static str,
    },

    /// A frame header declares a payload larger than the decoder accepts.
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// The declared length.
        len: usize,
        /// The configured limit.
        limit: usize,
    },

    /// The connection intro (`"WA"` header, optionally preceded by an `"ED"` routing header) is
    /// malformed.
    #[error("invalid connection intro: {reason}")]
    InvalidIntro {
        /// Why.
        reason: &'static str,
    },
}
