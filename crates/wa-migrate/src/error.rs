//! The crate's one error type. Every message is one line: what failed, where, and what to do.

use std::path::PathBuf;

use wa_auth::AuthError;

/// What can go wrong while migrating, inspecting or verifying. Match on the variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// Reading the source failed (a corrupt file in strict mode, a missing folder, a lock, the
    /// database). Nothing was published.
    #[error("reading {location} failed: {source}")]
    Source {
        /// The source, as given.
        location: String,
        /// What the backend reported; names the file or key when one is at fault.
        #[source]
        source: AuthError,
    },
    /// Writing or re-reading the target failed. Nothing was published.
    #[error("writing {location} failed: {source}")]
    Target {
        /// The target (or its staging copy).
        location: String,
        /// What the backend reported.
        #[source]
        source: AuthError,
    },
    /// The source holds no creds: there is no account to migrate.
    #[error(
        "{location} holds no creds.json / creds: nothing to migrate (pass --lenient to copy the keys alone)"
    )]
    NoCreds {
        /// The source.
        location: String,
    },
    /// The destination already holds auth state and `overwrite` was not set.
    #[error(
        "{location} is not empty; pass --overwrite to replace it (the old state is kept as a backup until the new one is verified)"
    )]
    DestinationNotEmpty {
        /// The destination.
        location: String,
    },
    /// The source and the destination are the same place.
    #[error("source and destination are both {location}")]
    SameLocation {
        /// The location.
        location: String,
    },
    /// One of the two folders lies inside the other: writing the destination would change the
    /// source.
    #[error(
        "{destination} and {source_dir} lie one inside the other; pick a destination outside the source folder"
    )]
    Overlap {
        /// The source folder.
        source_dir: String,
        /// The destination folder.
        destination: String,
    },
    /// Re-reading the written state did not give back what the source holds. Nothing was
    /// published (or, for a database, the previous state was restored).
    #[error("verification of {location} failed: {what} {detail}")]
    Verification {
        /// The target.
        location: String,
        /// The creds or the key that differs.
        what: String,
        /// How it differs.
        detail: String,
    },
    /// A file system operation around staging or publishing failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another migration holds the destination's migration lock.
    #[error("another migration to {location} is running (lock {}); wait for it to finish", lock.display())]
    Busy {
        /// The destination.
        location: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// A Baileys folder changed while it was being read (its owner committed meanwhile): the
    /// copy would mix two states. Nothing was written; retry.
    #[error("{location} changed while it was being read (its owner is writing); retry")]
    ChangedWhileReading {
        /// The folder.
        location: String,
    },
    /// A location or format could not be understood.
    #[error("{0}")]
    Usage(String),
    /// A failure injected for testing ([`FaultPoint`](crate::FaultPoint)).
    #[error("injected fault at {0:?}")]
    Injected(crate::FaultPoint),
}

impl MigrateError {
    /// What the user can do about this error, when there is something to say beyond the
    /// message (what the CLI prints after it).
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            MigrateError::Source {
                source: AuthError::Corrupt { what, .. },
                ..
            } if what.ends_with("creds.json") || what.starts_with("creds") => Some(
                "unreadable creds are never skipped: restore creds.json from a backup (the keys alone cannot log in)",
            ),
            MigrateError::Source {
                source: AuthError::Corrupt { .. },
                ..
            } => Some("pass --lenient to skip unreadable keys, which the summary then lists"),
            MigrateError::Source {
                source: AuthError::AlreadyOwned { .. },
                ..
            }
            | MigrateError::Target {
                source: AuthError::AlreadyOwned { .. },
                ..
            } => Some("stop the process that owns it first"),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = MigrateError> = std::result::Result<T, E>;
