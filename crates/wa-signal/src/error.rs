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
}

/// Shorthand for results of this crate.
pub type Result<T, E = SignalError> = std::result::Result<T, E>;
