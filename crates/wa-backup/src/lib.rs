//! Online, encrypted backups of WhatsApp auth state, and verified restores.
//!
//! Accounts linked with a passkey cannot simply be paired again: losing their auth state can be
//! permanent. This crate makes a consistent copy of a **live** store without stopping its
//! owner, and restores it through the same staged, verified path as a migration.
//!
//! - [`backup`]: reads the source read-only and consistently (a native store's view of a
//!   prefix of its commits; a Baileys folder whose files did not change during the read,
//!   retried a few times when they did; a PostgreSQL account in one snapshot transaction, no
//!   lease taken), encodes it in the documented, versioned [plaintext format](mod@format) with a
//!   checksum and the account's public summary, and encrypts it with [age](https://age-encryption.org)
//!   (a passphrase, or one or more recipients' public keys), so the file also opens with the
//!   standard `age` tool. The file appears complete or not at all (written beside, synced,
//!   renamed).
//! - [`restore`]: decrypts, checks the checksum, decodes every key, verifies the state (creds
//!   consistent, signed pre-key signature, every key decodes), then writes it with
//!   [`wa_migrate::write_snapshot`]: staged, re-read, published atomically; a destination that
//!   holds state is refused unless `overwrite`. A wrong key, a truncated or changed file, or an
//!   inconsistent state is an error and nothing is written.
//!
//! ```no_run
//! # async fn run() -> Result<(), wa_backup::BackupError> {
//! use wa_backup::{BackupOptions, Decryption, Encryption, age::secrecy::SecretString};
//! use wa_migrate::{Location, MigrateOptions};
//!
//! let passphrase = SecretString::from("correct horse battery staple".to_owned());
//! let source = Location::Native("auth-native".into());
//! wa_backup::backup(
//!     &source,
//!     "auth.wa-backup.age".as_ref(),
//!     &Encryption::Passphrase(passphrase.clone()),
//!     &BackupOptions::default(),
//! )
//! .await?;
//! let restored = Location::Native("auth-restored".into());
//! wa_backup::restore(
//!     "auth.wa-backup.age".as_ref(),
//!     &Decryption::Passphrase(passphrase),
//!     &restored,
//!     &MigrateOptions::default(),
//! )
//! .await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod crypt;
mod error;
pub mod format;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use wa_auth::{MemoryStore, Snapshot};
use wa_migrate::{Endpoint, Location, MigrateError, MigrateOptions, Summary, VerifyReport};

pub use crypt::{Decryption, Encryption};
pub use error::{BackupError, Result};
pub use format::{Header, Origin};

/// The age crate, for its key types ([`age::secrecy::SecretString`], [`age::x25519`]).
pub use age;

/// Reads of a Baileys folder that changed meanwhile are retried this many times.
const READ_ATTEMPTS: usize = 5;

/// How to back up.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct BackupOptions {
    /// Replace an existing backup file (default `false`: refused).
    pub overwrite: bool,
    /// Skip unreadable keys instead of failing (default `false`). Unreadable creds always fail.
    pub lenient: bool,
    /// Progress of the read (default none).
    pub progress: Option<Arc<dyn wa_migrate::Progress>>,
}

impl std::fmt::Debug for BackupOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupOptions")
            .field("overwrite", &self.overwrite)
            .field("lenient", &self.lenient)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl BackupOptions {
    /// Sets [`overwrite`](Self::overwrite).
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }

    /// Sets [`lenient`](Self::lenient).
    pub fn lenient(mut self, yes: bool) -> Self {
        self.lenient = yes;
        self
    }

    /// Sets [`progress`](Self::progress).
    pub fn progress(mut self, progress: Arc<dyn wa_migrate::Progress>) -> Self {
        self.progress = Some(progress);
        self
    }
}

/// What [`backup`] wrote.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BackupSummary {
    /// The backup file.
    pub file: PathBuf,
    /// Its size in bytes (encrypted).
    pub bytes: u64,
    /// The plaintext header (account summary, key counts, checksum).
    pub header: Header,
    /// Keys left out (lenient), each with the reason.
    pub skipped: Vec<wa_migrate::Entry>,
    /// Things worth knowing.
    pub warnings: Vec<String>,
}

/// Backs up the state at `from` into the age file `to`; see the [crate] docs.
pub async fn backup(
    from: &Location,
    to: &Path,
    encryption: &Encryption,
    options: &BackupOptions,
) -> Result<BackupSummary> {
    if !options.overwrite && std::fs::symlink_metadata(to).is_ok() {
        return Err(BackupError::Exists {
            path: to.to_path_buf(),
        });
    }
    let mut migrate_options = MigrateOptions::default().lenient(options.lenient);
    if let Some(progress) = &options.progress {
        migrate_options = migrate_options.progress(progress.clone());
    }
    let (snapshot, summary) = read_consistent(from, &migrate_options).await?;
    let origin = Origin {
        backend: summary.source.backend.clone(),
        location: summary.source.location.clone(),
        flavour: summary.source.flavour.clone(),
    };
    let plaintext = format::encode(&snapshot, origin, now_ms());
    let header = format::read_header(to, &plaintext)?;
    let sealed = crypt::encrypt(&plaintext, encryption)?;
    write_new_file(to, &sealed)?;
    tracing::info!(file = %to.display(), keys = snapshot.key_count(), "backup written");
    Ok(BackupSummary {
        file: to.to_path_buf(),
        bytes: sealed.len() as u64,
        header,
        skipped: summary.skipped,
        warnings: summary.warnings,
    })
}

/// Reads `from` consistently, retrying a Baileys folder that changed during the read.
async fn read_consistent(from: &Location, options: &MigrateOptions) -> Result<(Snapshot, Summary)> {
    let mut attempt = 1;
    loop {
        match wa_migrate::read_location(from, options).await {
            Err(MigrateError::ChangedWhileReading { .. }) if attempt < READ_ATTEMPTS => {
                tracing::info!(from = %from, attempt, "the folder changed while it was read; reading again");
                attempt += 1;
            }
            other => return Ok(other?),
        }
    }
}

/// Decrypts and decodes the backup `file` and verifies the state in it; nothing is written.
/// What [`restore`] does before writing, and what a scheduled check of backups can call.
pub fn open(file: &Path, key: &Decryption) -> Result<(Header, Snapshot)> {
    let sealed = std::fs::read(file).map_err(|e| BackupError::io(file, e))?;
    let plaintext = crypt::decrypt(file, &sealed, key)?;
    let (header, snapshot) = format::decode(file, &plaintext)?;
    Ok((header, snapshot))
}

/// Restores the backup `file` into `to`; see the [crate] docs. `options` are those of a
/// migration (`overwrite`, `compat_flavour`, `progress`, `dry_run`).
pub async fn restore(
    file: &Path,
    key: &Decryption,
    to: &Location,
    options: &MigrateOptions,
) -> Result<Summary> {
    let (header, snapshot) = open(file, key)?;
    check_consistent(file, &snapshot).await?;
    let mut source = Endpoint::new("backup", file.display().to_string());
    source.flavour = header.origin.flavour.clone();
    let mut options = options.clone();
    if options.compat_flavour.is_none()
        && let Some(flavour) = header.origin.flavour.as_deref().and_then(wa_store_flavour)
    {
        options = options.compat_flavour(flavour);
    }
    Ok(wa_migrate::write_snapshot(&snapshot, source, to, &options).await?)
}

fn wa_store_flavour(name: &str) -> Option<wa_migrate::Flavour> {
    wa_migrate::Flavour::from_name(name)
}

/// The checks of `verify` over the decoded state.
async fn check_consistent(file: &Path, snapshot: &Snapshot) -> Result<()> {
    let store = MemoryStore::from_snapshot(snapshot.clone());
    let mut report = VerifyReport::default();
    wa_migrate::verify_store(&store, &mut report)
        .await
        .map_err(|e| BackupError::Damaged {
            path: file.to_path_buf(),
            detail: e.to_string(),
        })?;
    if report.is_ok() {
        Ok(())
    } else {
        Err(BackupError::Inconsistent {
            path: file.to_path_buf(),
            problems: report.problems,
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and
/// syncs the folder: `path` is complete or untouched.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| BackupError::NoKey("the backup file needs a file name"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = parent.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(&parent)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(BackupError::io(path, e));
    }
    Ok(())
}
