//! The crate's one error type, shared by every backend through the `Persistence` seam: storage
//! and auth-state failures only (connection and pairing failures are wa-link's `LinkError`).
//!
//! Errors are `Clone` (sources are shared behind an `Arc`), so a store can hand the same
//! failure to every waiter of a group commit without turning it into a string.

use std::sync::Arc;

use wa_signal::SignalError;

use crate::key::{KeyId, KeyKind};

/// A boxed error, as backends produce their own error types; see [`ErrorSource`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The shared, cloneable cause carried by [`AuthError`] variants. Downcast it
/// (`source.downcast_ref::<T>()`) to reach a backend's own structured error (for example the
/// PostgreSQL store's error with its SQLSTATE).
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What a [`AuthError::Corrupt`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptItem {
    /// The creds.
    Creds,
    /// One key.
    Key {
        /// Its kind.
        kind: KeyKind,
        /// Its id.
        id: KeyId,
    },
    /// The store's own structures (a log, a snapshot, a journal, a registry, a schema row).
    Store,
}

impl std::fmt::Display for CorruptItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Creds => f.write_str("creds"),
            Self::Key { kind, id } => write!(f, "{kind} key {id}"),
            Self::Store => f.write_str("store data"),
        }
    }
}

/// " in {location}" when a location is known.
fn located(location: &str) -> String {
    if location.is_empty() {
        String::new()
    } else {
        format!(" in {location}")
    }
}

/// Everything that can go wrong with auth state. Match on the variant, never on the message.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Something that must exist does not (e.g. creds in a store that has keys).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Stored data could not be read; nothing was replaced.
    #[error("{item}{} is corrupt: {source}", located(location))]
    Corrupt {
        /// What could not be read: the creds, a key, or the store's own structures.
        item: CorruptItem,
        /// Where it lies: the file (with the offset where one is known), the folder or the
        /// database row. Empty when the code that found the damage does not know it (the
        /// store adds it, see [`AuthError::located`]).
        location: String,
        /// Why it could not be read.
        #[source]
        source: ErrorSource,
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
        source: Arc<std::io::Error>,
    },
    /// The backend (database, remote service) failed; the operation did not take effect.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The underlying error (the backend's own type; downcast it for details).
        #[source]
        source: ErrorSource,
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
    /// A write to a read-only view (see [`Capabilities::read_only`](crate::Capabilities::read_only)).
    #[error("{resource} is open read-only; open it for writing to commit")]
    ReadOnly {
        /// The folder, file or account.
        resource: String,
    },
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
    Signal(Arc<SignalError>),
}

impl AuthError {
    /// A [`AuthError::Corrupt`] for `item` found at `location` (empty when unknown), with any
    /// error (or message) as the source.
    pub fn corrupt(
        item: CorruptItem,
        location: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Corrupt {
            item,
            location: location.into(),
            source: Arc::from(source.into()),
        }
    }

    /// A [`AuthError::Corrupt`] about key `id` of `kind`.
    pub fn corrupt_key(
        kind: &KeyKind,
        id: &KeyId,
        location: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        let item = CorruptItem::Key {
            kind: kind.clone(),
            id: id.clone(),
        };
        Self::corrupt(item, location, source)
    }

    /// Sets the location of a [`AuthError::Corrupt`] that has none yet (a decoder does not
    /// know where the bytes came from; the store does). Other errors are returned unchanged.
    pub fn located(self, location: impl FnOnce() -> String) -> Self {
        match self {
            Self::Corrupt {
                item,
                location: here,
                source,
            } if here.is_empty() => Self::Corrupt {
                item,
                location: location(),
                source,
            },
            other => other,
        }
    }

    /// An [`AuthError::Backend`] of `backend` with any error (or message) as the source.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            source: Arc::from(source.into()),
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
            source: Arc::new(source),
        }
    }
}

impl From<SignalError> for AuthError {
    fn from(error: SignalError) -> Self {
        Self::Signal(Arc::new(error))
    }
}

impl AuthError {
    /// The Signal error of an [`AuthError::Signal`].
    pub fn as_signal(&self) -> Option<&SignalError> {
        match self {
            Self::Signal(error) => Some(error),
            _ => None,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = AuthError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_errors_are_structured_located_once_and_cloned_with_their_source() {
        let io = std::io::Error::other("disk says no");
        let err = AuthError::corrupt_key(&KeyKind::Session, &"1.0".into(), "", io);
        assert_eq!(err.to_string(), "session key 1.0 is corrupt: disk says no");
        let err = err.located(|| "folder /a".into());
        assert_eq!(
            err.to_string(),
            "session key 1.0 in folder /a is corrupt: disk says no"
        );
        // A location already known is kept.
        let err = err.located(|| "elsewhere".into());
        let copy = err.clone();
        match &copy {
            AuthError::Corrupt {
                item: CorruptItem::Key { kind, id },
                location,
                source,
            } => {
                assert_eq!((kind, id.as_str()), (&KeyKind::Session, "1.0"));
                assert_eq!(location, "folder /a");
                let io = source
                    .downcast_ref::<std::io::Error>()
                    .expect("the io error");
                assert_eq!(io.to_string(), "disk says no");
            }
            other => panic!("{other:?}"),
        }
        let creds = AuthError::corrupt(CorruptItem::Creds, "creds.json", "truncated");
        assert_eq!(
            creds.to_string(),
            "creds in creds.json is corrupt: truncated"
        );
        // Other errors are not changed by `located`.
        assert!(matches!(
            AuthError::Closed.located(|| "x".into()),
            AuthError::Closed
        ));
    }

    #[test]
    fn signal_and_backend_errors_clone() {
        let err = AuthError::from(SignalError::BadMac);
        assert!(matches!(err.clone().as_signal(), Some(SignalError::BadMac)));
        let err = AuthError::backend("test", std::io::Error::other("down"));
        let AuthError::Backend { source, .. } = err.clone() else {
            panic!("backend");
        };
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }
}
