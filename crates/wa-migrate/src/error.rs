//! The crate's one error type. Every message is one line: what failed and where. What a user
//! can do about it is [`MigrateError::hint`], which a command-line tool prints after it (in
//! its own words: this crate knows no flags).

use std::path::PathBuf;
use std::sync::Arc;

use wa_auth::{AuthError, CorruptItem};

/// What can go wrong while migrating, inspecting or verifying. Match on the variant. `Clone`:
/// the sources are shared.
#[derive(Clone, Debug, thiserror::Error)]
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
    #[error("{location} holds no creds: nothing to migrate")]
    NoCreds {
        /// The source.
        location: String,
    },
    /// The destination already holds auth state and `overwrite` was not set.
    #[error("{location} is not empty")]
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
    #[error("{destination} and {source_dir} lie one inside the other")]
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
        source: Arc<std::io::Error>,
    },
    /// Another migration holds the destination's migration lock.
    #[error("another migration to {location} is running (lock {})", lock.display())]
    Busy {
        /// The destination.
        location: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// A location or format could not be understood.
    #[error("{0}")]
    Usage(String),
    /// A failure injected for testing (feature `fault-injection`, `FaultPoint`).
    #[cfg(feature = "fault-injection")]
    #[error("injected fault at {0:?}")]
    Injected(crate::options::FaultPoint),
}

impl MigrateError {
    /// What the user can do about this error, when there is something to say beyond the
    /// message: a [`Hint`] that a tool words in its own terms (the command-line tool names
    /// its flags).
    pub fn hint(&self) -> Option<Hint> {
        match self {
            MigrateError::Source {
                source: AuthError::Corrupt { item, .. },
                ..
            } => Some(match item {
                CorruptItem::Creds => Hint::RestoreCreds,
                CorruptItem::Key { .. } => Hint::SkipUnreadableKeys,
                _ => Hint::RestoreFromBackup,
            }),
            MigrateError::Source { source, .. } | MigrateError::Target { source, .. } => {
                match source {
                    AuthError::AlreadyOwned { .. } => Some(Hint::StopTheOwner),
                    AuthError::ChangedWhileReading { .. } => Some(Hint::RetryOrStopTheOwner),
                    _ => None,
                }
            }
            MigrateError::NoCreds { .. } => Some(Hint::CopyKeysAlone),
            MigrateError::DestinationNotEmpty { .. } => Some(Hint::Overwrite),
            MigrateError::Overlap { .. } => Some(Hint::DestinationOutsideSource),
            MigrateError::Busy { .. } => Some(Hint::WaitForTheOtherMigration),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<Arc<std::io::Error>>) -> Self {
        Self::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}

/// What a user can do about a [`MigrateError`] (see [`MigrateError::hint`]). Its `Display` is
/// a plain sentence; a tool with options of its own maps the variants to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// Unreadable creds are never skipped: restore them from a backup (the keys alone cannot
    /// log in).
    RestoreCreds,
    /// Unreadable keys can be skipped (lenient reads), and are then listed in the summary.
    SkipUnreadableKeys,
    /// The store's own data is damaged: restore it from a backup.
    RestoreFromBackup,
    /// Another process owns the store: stop it first.
    StopTheOwner,
    /// The source's owner changed it while it was read: try again, or stop the owner first.
    RetryOrStopTheOwner,
    /// The source has no creds: its keys can still be copied alone (lenient).
    CopyKeysAlone,
    /// The destination can be replaced (overwrite); the old state is kept as a backup until
    /// the new one is verified.
    Overwrite,
    /// Pick a destination outside the source folder.
    DestinationOutsideSource,
    /// Wait for the other migration to finish.
    WaitForTheOtherMigration,
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hint::RestoreCreds => {
                "unreadable creds are never skipped: restore them from a backup (the keys alone cannot log in)"
            }
            Hint::SkipUnreadableKeys => {
                "unreadable keys can be skipped with lenient reads; the summary then lists them"
            }
            Hint::RestoreFromBackup => "the store's own data is damaged: restore it from a backup",
            Hint::StopTheOwner => "stop the process that owns it first",
            Hint::RetryOrStopTheOwner => {
                "its owner changed it while it was read: try again, or stop the owner first"
            }
            Hint::CopyKeysAlone => "its keys alone can be copied with lenient reads",
            Hint::Overwrite => {
                "it can be replaced with overwrite (the old state is kept as a backup until the new one is verified)"
            }
            Hint::DestinationOutsideSource => "pick a destination outside the source folder",
            Hint::WaitForTheOtherMigration => "wait for it to finish",
        })
    }
}

/// Results of this crate.
pub type Result<T, E = MigrateError> = std::result::Result<T, E>;
