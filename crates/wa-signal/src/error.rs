//! The crate's one error type.

/// Everything that can go wrong in the Signal core.
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
    /// A Noise handshake message, intro or frame is not well formed (bad protobuf, missing
    /// field, wrong key length, low-order key, ...).
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
    /// A frame is longer than the configured limit (or than the 3-byte length prefix allows).
    #[error("noise: frame of {len} bytes exceeds the limit of {max}")]
    NoiseFrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A cipher's 32-bit nonce counter is used up; counters never wrap, so the connection must
    /// be re-established.
    #[error("noise: {stage} nonce counter exhausted")]
    NoiseCounterExhausted {
        /// Which cipher ran out.
        stage: crate::noise::NoiseStage,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = SignalError> = std::result::Result<T, E>;
