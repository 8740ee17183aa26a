//! The crate's one error type.

use std::path::PathBuf;

use wa_migrate::{Entry, MigrateError};

/// What can go wrong while backing up or restoring. Match on the variant; no message holds a
/// secret (passphrases and private keys never appear).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// Reading the source or writing the restored state failed (see the migration error).
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The backup file already exists and overwriting was not asked for.
    #[error("{} already exists", path.display())]
    Exists {
        /// The backup file.
        path: PathBuf,
    },
    /// No passphrase, recipient or identity was given.
    #[error("no key given: {0}")]
    NoKey(&'static str),
    /// The passphrase or identities given do not open this backup.
    #[error("{} cannot be opened with the key given (wrong passphrase or identity)", path.display())]
    WrongKey {
        /// The backup file.
        path: PathBuf,
    },
    /// The file is not an age file, or its encrypted data is truncated or was changed.
    #[error("{} is damaged: {detail}", path.display())]
    Damaged {
        /// The backup file.
        path: PathBuf,
        /// What is wrong (never any of the data).
        detail: String,
    },
    /// The decrypted backup is of a format version this build does not read.
    #[error("{} is a backup of format version {version}; this build reads version {}", path.display(), crate::format::VERSION)]
    UnsupportedVersion {
        /// The backup file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The decrypted state is not consistent (a key that does not decode, creds whose signed
    /// pre-key signature does not verify, ...): it is not restored.
    #[error("{} holds inconsistent auth state: {}", path.display(), problems.iter().map(|p| format!("{}: {}", p.what, p.reason)).collect::<Vec<_>>().join("; "))]
    Inconsistent {
        /// The backup file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Entry>,
    },
    /// Encrypting failed.
    #[error("encrypting the backup failed: {0}")]
    Encrypt(String),
    /// Reading or writing a file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl BackupError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = BackupError> = std::result::Result<T, E>;
