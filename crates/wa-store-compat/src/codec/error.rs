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
    /// A file is empty (0 bytes), as Baileys leaves it when it crashes mid-write.
    #[error("empty file (0 bytes)")]
    Empty,
    /// A file is not valid JSON.
    #[error("invalid JSON at byte {offset}: {source}")]
    Syntax {
        /// Byte offset of the error in the file.
        offset: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A value parses as JSON but does not have the shape of its kind.
    #[error("{path}: unexpected shape: {source}")]
    Shape {
        /// Where (JSON Pointer of the value that was being read).
        path: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// The store's commit journal is unusable (it names files outside the folder, or has an
    /// unknown format version).
    #[error("commit journal: {reason}")]
    Journal {
        /// What is wrong.
        reason: String,
    },
    /// Entries named like files of the layout are not regular files (symbolic links,
    /// directories, ...). They are never followed, read as absent, or replaced.
    #[error(
        "{entries}, where the Baileys layout has a regular file; move it out of the folder (or replace a link by the file it points to)"
    )]
    NotAFile {
        /// Each entry and what it is (`creds.json is a symbolic link`).
        entries: String,
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

impl CompatError {
    /// Parses JSON text, giving [`CompatError::Empty`] for an empty file and
    /// [`CompatError::Syntax`] (with the byte offset) for invalid JSON.
    pub fn parse(text: &[u8]) -> Result<serde_json::Value> {
        if text.is_empty() {
            return Err(CompatError::Empty);
        }
        serde_json::from_slice(text).map_err(|source| {
            let (line, column) = (source.line(), source.column());
            CompatError::Syntax {
                offset: byte_offset(text, line, column),
                line,
                column,
                source,
            }
        })
    }
}

/// The byte offset of a 1-based (line, column) position as serde_json reports it (the column
/// counts bytes; 0 means the position before the line's first byte).
fn byte_offset(text: &[u8], line: usize, column: usize) -> usize {
    let line_start = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(line.saturating_sub(2))
        .map_or(0, |(i, _)| if line >= 2 { i + 1 } else { 0 });
    (line_start + column.saturating_sub(1)).min(text.len())
}

/// Shorthand for codec results.
pub type Result<T, E = CompatError> = std::result::Result<T, E>;
