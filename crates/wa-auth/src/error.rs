//! The crate's one error type, shared by every backend through the `Persistence` seam: storage
//! and auth-state failures only (connection and pairing failures are wa-link's `LinkError`).

use wa_signal::SignalError;

/// A boxed error source, as backends carry their own error types.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong with auth state. Match on the variant, never on the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Something that must exist does not (e.g. creds in a store that has keys).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Stored data could not be read. `what` names the file, key or row; nothing was replaced.
    #[error("{what} is corrupt: {source}")]
    Corrupt {
        /// The file, key or row that failed, with the offset where one is known.
        what: String,
        /// Why it could not be read.
        #[source]
        source: BoxError,
    },
    /// Data written by a newer (or unknown) format version. Never treated as empty.
    #[error("{what} has unsupported format version {version} (this build reads {supported})")]
    UnsupportedVersion {
        /// What carries the version (a file, a schema).
        what: String,
        /// The version found.
        version: String,
        /// The versions this build understands.
        supported: String,
    },
    /// Another owner holds the store (a file lock or a database lease).
    #[error("{resource} is already owned by {}", holder.as_deref().unwrap_or("another process"))]
    AlreadyOwned {
        /// The directory, account or instance that is owned.
        resource: String,
        /// Who holds it (pid, host, owner id), when known.
        holder: Option<String>,
    },
    /// This owner lost its ownership (its lease was taken over); it must stop writing.
    #[error("ownership of {resource} was lost: {reason}")]
    OwnershipLost {
        /// The account or instance.
        resource: String,
        /// What happened.
        reason: String,
    },
    /// A write was rejected because the batch or value is invalid; nothing was written.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid (a key id, a value, a batch entry).
        what: String,
        /// Why.
        reason: String,
    },
    /// A file system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The backend (database, remote service) failed; the operation did not take effect.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A write-behind backend has been unable to persist for too long; writes are refused until
    /// it recovers. Nothing acknowledged before was dropped.
    #[error("{backend} store is unhealthy: {reason}")]
    Unhealthy {
        /// Which backend.
        backend: &'static str,
        /// The last failure.
        reason: String,
    },
    /// A commit failed and the store could not undo what it may have written, so whether the
    /// batch was applied is unknown: after the store is reopened it is there whole or not at
    /// all, never in part. The store refuses further writes until it is reopened. (Any other
    /// commit error means the batch was not applied.)
    #[error("{backend} commit outcome unknown: {reason}")]
    CommitUnknown {
        /// Which backend.
        backend: &'static str,
        /// What failed.
        reason: String,
    },
    /// The store or auth state was closed.
    #[error("the store is closed")]
    Closed,
    /// A read-only view found its source changed by a writer while it was reading, so what it
    /// read could mix two states; nothing of that read was returned. Open the view again and
    /// retry.
    #[error("{resource} changed while it was being read ({reason}); open it again and retry")]
    ChangedWhileReading {
        /// The folder, file or account being read.
        resource: String,
        /// What changed.
        reason: String,
    },
    /// A Signal protocol operation run over the auth state (a decrypt, an encrypt, a session
    /// set up from a bundle) failed; its transaction wrote nothing.
    #[error(transparent)]
    Signal(#[from] SignalError),
}

impl AuthError {
    /// A [`AuthError::Corrupt`] for `what` with any error as the source.
    pub fn corrupt(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Corrupt {
            what: what.into(),
            source: source.into(),
        }
    }

    /// An [`AuthError::Invalid`].
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// An [`AuthError::Io`] for `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = AuthError> = std::result::Result<T, E>;
