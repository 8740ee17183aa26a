//! Library errors as the command line reports them: a stable kind, the message, and what the
//! user can do (the hint text lives here, not in the libraries).

use wa_auth::AuthError;
use wa_backup::BackupError;
use wa_migrate::MigrateError;

use crate::output::Failure;

/// `flag` is the option that names the format on this command (`--from-format`, `--format`).
pub fn migrate_failure(error: MigrateError, flag: &str) -> Failure {
    let message = error.to_string();
    match &error {
        MigrateError::Usage(text) if text.contains("cannot tell what") => {
            Failure::usage(message).hint(format!("pass {flag} compat|native"))
        }
        MigrateError::Usage(_) => Failure::usage(message),
        MigrateError::Source { source, .. } => Failure::new("source", message).with(source_hint(source)),
        MigrateError::Target { source, .. } => Failure::new("target", message).with(owner_hint(source)),
        MigrateError::NoCreds { .. } => Failure::new("no_creds", message)
            .hint("pass --lenient to copy the keys alone"),
        MigrateError::DestinationNotEmpty { .. } => Failure::new("destination_not_empty", message)
            .hint("pass --overwrite to replace it (the old state is kept until the new one is verified)"),
        MigrateError::SameLocation { .. } => Failure::usage(message),
        MigrateError::Overlap { .. } => Failure::usage(message)
            .hint("pick a destination outside the source folder"),
        MigrateError::Verification { .. } => Failure::new("verification", message),
        MigrateError::Busy { .. } => Failure::new("busy", message).hint("wait for the other migration to finish"),
        MigrateError::ChangedWhileReading { .. } => Failure::new("changed_while_reading", message)
            .hint("its owner kept writing; run the command again"),
        _ => Failure::new("io", message),
    }
}

fn source_hint(source: &AuthError) -> Option<&'static str> {
    match source {
        AuthError::Corrupt { what, .. }
            if what.ends_with("creds.json") || what.starts_with("creds") =>
        {
            Some(
                "unreadable creds are never skipped: restore creds.json from a backup (the keys alone cannot log in)",
            )
        }
        AuthError::Corrupt { .. } => {
            Some("pass --lenient to skip unreadable keys, which the summary then lists")
        }
        other => owner_hint(other),
    }
}

fn owner_hint(source: &AuthError) -> Option<&'static str> {
    match source {
        AuthError::AlreadyOwned { .. } => Some("stop the process that owns it first"),
        _ => None,
    }
}

/// A backup or restore failure.
pub fn backup_failure(error: BackupError, flag: &str) -> Failure {
    let message = error.to_string();
    match error {
        BackupError::Migrate(inner) => migrate_failure(inner, flag),
        BackupError::Exists { .. } => {
            Failure::new("exists", message).hint("pass --overwrite to replace it")
        }
        BackupError::NoKey(_) => {
            Failure::usage(message).hint("give --passphrase-file, --recipient or --identity")
        }
        BackupError::WrongKey { .. } => Failure::new("wrong_key", message),
        BackupError::Damaged { .. } => Failure::new("damaged", message)
            .hint("nothing was written; use another copy of the backup"),
        BackupError::UnsupportedVersion { .. } => {
            Failure::new("unsupported_version", message).hint("restore with a newer wa-auth-state")
        }
        BackupError::Inconsistent { .. } => {
            Failure::new("inconsistent", message).hint("nothing was written; use another backup")
        }
        _ => Failure::new("io", message),
    }
}

impl Failure {
    fn with(self, hint: Option<&str>) -> Self {
        match hint {
            Some(hint) => self.hint(hint),
            None => self,
        }
    }
}
