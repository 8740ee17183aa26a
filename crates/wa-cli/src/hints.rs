//! Library errors as the command line reports them: a stable kind, the message, and what the
//! user can do (the hint text lives here, not in the libraries).

use wa_backup::BackupError;
use wa_migrate::{Hint, MigrateError};

use crate::output::Failure;

/// `flag` is the option that names the format on this command (`--from-format`, `--format`).
pub fn migrate_failure(error: MigrateError, flag: &str) -> Failure {
    let message = error.to_string();
    let hint = error.hint().map(cli_hint);
    let failure = match &error {
        MigrateError::Usage(text) if text.contains("cannot tell what") => {
            return Failure::usage(message).hint(format!("pass {flag} compat|native"));
        }
        MigrateError::Usage(_) | MigrateError::SameLocation { .. } => Failure::usage(message),
        MigrateError::Overlap { .. } => Failure::usage(message),
        MigrateError::Source { .. } => Failure::new("source", message),
        MigrateError::Target { .. } => Failure::new("target", message),
        MigrateError::NoCreds { .. } => Failure::new("no_creds", message),
        MigrateError::DestinationNotEmpty { .. } => Failure::new("destination_not_empty", message),
        MigrateError::Verification { .. } => Failure::new("verification", message),
        MigrateError::Busy { .. } => Failure::new("busy", message),
        MigrateError::ChangedWhileReading { .. } => {
            return Failure::new("changed_while_reading", message)
                .hint("its owner kept writing; run the command again");
        }
        _ => Failure::new("io", message),
    };
    match hint {
        Some(hint) => failure.hint(hint),
        None => failure,
    }
}

/// A library hint in this tool's terms: its options.
fn cli_hint(hint: Hint) -> String {
    match hint {
        Hint::RestoreCreds => "unreadable creds are never skipped: restore creds.json from a backup (the keys alone cannot log in)".into(),
        Hint::SkipUnreadableKeys => "pass --lenient to skip unreadable keys, which the summary then lists".into(),
        Hint::CopyKeysAlone => "pass --lenient to copy the keys alone".into(),
        Hint::Overwrite => "pass --overwrite to replace it (the old state is kept until the new one is verified)".into(),
        Hint::StopTheOwner => "stop the process that owns it first".into(),
        Hint::RetryOrStopTheOwner => "its owner kept writing; run the command again, or stop the owner first".into(),
        Hint::DestinationOutsideSource => "pick a destination outside the source folder".into(),
        Hint::WaitForTheOtherMigration => "wait for the other migration to finish".into(),
        other => other.to_string(),
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
