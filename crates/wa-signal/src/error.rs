//! The crate's one error type.

/// Everything that can go wrong in the Signal core. Match on the variant (its meaning), never on
/// the message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// A key has the wrong length or type byte, or its halves do not match.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A stored record could not be decoded.
    #[error("invalid {record} record: {reason}")]
    InvalidRecord {
        /// Which record type (`session`, `pre-key`, ...).
        record: &'static str,
        /// Why it could not be decoded.
        reason: String,
    },
    /// A store behind one of the store traits failed.
    #[error("store error: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A received message could not be parsed or is inconsistent (bad protobuf, missing field,
    /// bad padding after a valid MAC, ...).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A message carries a protocol version this implementation does not speak (only 3).
    #[error("unsupported message version {0}")]
    UnsupportedVersion(u8),
    /// The message authentication code did not verify: the message was tampered with or does
    /// not belong to any of the sessions tried.
    #[error("bad MAC")]
    BadMac,
    /// An XEdDSA signature (signed pre-key, sender-key message) did not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// A PreKeySignalMessage names a one-time pre-key we do not have (used up or never issued).
    #[error("unknown one-time pre-key id {0}")]
    InvalidPreKeyId(u32),
    /// A PreKeySignalMessage names a signed pre-key we do not have.
    #[error("unknown signed pre-key id {0}")]
    InvalidSignedPreKeyId(u32),
    /// The identity store does not trust the remote identity key for this address.
    #[error("untrusted identity for {address}")]
    UntrustedIdentity {
        /// The remote address (`name.device`).
        address: String,
    },
    /// There is no session with this address (or none that can send).
    #[error("no session for {address}")]
    NoSession {
        /// The remote address (`name.device`).
        address: String,
    },
    /// There is no sender-key state for this (group, sender), or none with the message's key id.
    #[error("no sender key state for {name}{}", key_id.map(|id| format!(" with id {id}")).unwrap_or_default())]
    NoSenderKeyState {
        /// The sender-key name (`group::user::device`).
        name: String,
        /// The key id the message asked for, when there was one.
        key_id: Option<u32>,
    },
    /// The message key for this counter/iteration was already used (a replay or duplicate) or
    /// is no longer kept.
    #[error("duplicate or expired message (counter {counter})")]
    DuplicateMessage {
        /// The message's counter (1:1) or iteration (group).
        counter: u32,
    },
    /// The message is too far ahead of its chain: deriving its key would skip more keys than
    /// the bound allows.
    #[error("message too far in the future: {skipped} keys to skip, at most {limit} allowed")]
    TooManySkipped {
        /// How many message keys would have to be skipped.
        skipped: u64,
        /// The bound.
        limit: u32,
    },
    /// A stored session or sender-key state cannot perform the operation (for example a
    /// received sender key has no private signing key, so it cannot encrypt).
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// A Noise handshake or transport message failed AES-GCM authentication: it was tampered
    /// with, truncated, replayed, reordered or encrypted under another key. The connection must
    /// be dropped.
    #[error("noise: {stage} did not authenticate (nonce counter {counter})")]
    NoiseDecrypt {
        /// Which message failed.
        stage: crate::noise::NoiseStage,
        /// The nonce counter it was tried with.
        counter: u32,
    },
    /// A Noise handshake message or intro is not well formed (bad protobuf, missing field,
    /// wrong key length, low-order key, an intro header that is not `"WA" 6 v`, ...).
    #[error("noise: malformed {what}: {reason}")]
    NoiseMalformed {
        /// What was being parsed.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The server's certificate chain was rejected.
    #[error("noise: server certificate rejected: {0}")]
    NoiseCertificate(#[from] crate::noise::CertificateError),
    /// A transport plaintext does not fit one frame: with its 16-byte tag it would exceed
    /// [`MAX_FRAME_LEN`](crate::noise::MAX_FRAME_LEN). Nothing was encrypted (the nonce counter
    /// did not advance), so the connection stays usable.
    #[error("noise: frame of {len} bytes exceeds the limit of {max}")]
    NoiseFrameTooLarge {
        /// The frame body's length (plaintext plus tag).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The wire codec (`wa_proto`) refused bytes or a value: from the frame codec, a frame
    /// header announcing more than the decoder's limit
    /// ([`wa_proto::Error::FrameTooLarge`]), a malformed intro
    /// ([`wa_proto::Error::InvalidIntro`]), or routing info too long for an intro
    /// ([`wa_proto::Error::TooLarge`]). A framing error on a connection's byte stream is
    /// final: the stream cannot be resynchronised.
    #[error("wire format: {0}")]
    Wire(#[from] wa_proto::Error),
    /// A cipher's 32-bit nonce counter is used up; counters never wrap, so the connection must
    /// be re-established.
    #[error("noise: {stage} nonce counter exhausted")]
    NoiseCounterExhausted {
        /// Which cipher ran out.
        stage: crate::noise::NoiseStage,
    },
}

impl SignalError {
    /// Whether trying another (archived) session could succeed after this error. Decryption
    /// walks the current then the closed sessions while errors are of this kind.
    pub(crate) fn is_session_mismatch(&self) -> bool {
        matches!(
            self,
            Self::BadMac
                | Self::DuplicateMessage { .. }
                | Self::TooManySkipped { .. }
                | Self::InvalidMessage(_)
                | Self::InvalidState(_)
        )
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = SignalError> = std::result::Result<T, E>;
