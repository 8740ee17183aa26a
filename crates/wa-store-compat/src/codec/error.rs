//! The crate's error type.

/// What can be wrong with a stored Baileys value. Every variant names the JSON path (in JSON
/// Pointer form, `""` for the whole value) so a caller can report the file and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompatError {
    /// A required field is absent (or `null`).
    #[error("{path}: missing")]
    Missing {
        /// Where.
        path: String,
    },
    /// A field has the wrong JSON type.
    #[error("{path}: expected {expected}")]
    WrongType {
        /// Where.
        path: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A field has the right type but an invalid value (bad base64, wrong key length, a
    /// number out of range, an unknown version, keys that do not match, ...).
    #[error("{path}: {reason}")]
    InvalidValue {
        /// Where.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// JSON text embedded in a buffer (Baileys 7 sender keys) does not parse.
    #[error("{path}: embedded JSON does not parse: {source}")]
    EmbeddedJson {
        /// Where.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A record holds something the Baileys form cannot express (for example a message key
    /// known only by its derived keys, while libsignal-node stores seeds).
    #[error("cannot write {what} in Baileys form: {reason}")]
    NotRepresentable {
        /// What was being written.
        what: &'static str,
        /// Why it cannot be.
        reason: String,
    },
}

/// Shorthand for codec results.
pub type Result<T, E = CompatError> = std::result::Result<T, E>;
