//! `backup` and `restore`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use wa_backup::age::secrecy::SecretString;
use wa_backup::{BackupOptions, Decryption, Encryption};
use wa_migrate::{MigrateOptions, Role};

use crate::cli::{BackupArgs, RestoreArgs};
use crate::hints::backup_failure;
use crate::output::{Failure, Report};
use crate::progress::Bar;
use crate::state::resolve;

/// The first line of `path` (never printed).
fn read_passphrase(path: &Path) -> Result<SecretString, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new("io", format!("cannot read {}: {e}", path.display())))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(Failure::usage(format!(
            "{} holds no passphrase on its first line",
            path.display()
        )));
    }
    Ok(SecretString::from(line.to_owned()))
}

/// A passphrase typed at the terminal, only when stdin is one.
fn prompt(confirm: bool) -> Result<SecretString, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage("no key given and stdin is not a terminal")
            .hint("give --passphrase-file, --recipient or --identity"));
    }
    let read = |label: &str| {
        rpassword::prompt_password(label)
            .map_err(|e| Failure::new("io", format!("cannot read the passphrase: {e}")))
    };
    let first = read("passphrase: ")?;
    if first.is_empty() {
        return Err(Failure::usage("an empty passphrase protects nothing"));
    }
    if confirm && read("passphrase again: ")? != first {
        return Err(Failure::usage("the passphrases differ"));
    }
    Ok(SecretString::from(first))
}

/// `backup`.
pub async fn backup(args: BackupArgs, json: bool) -> Result<Report, Failure> {
    let from = resolve(&args.source, args.format, Role::Source, "--format")?;
    let encryption = if let Some(path) = &args.seal.passphrase_file {
        Encryption::Passphrase(read_passphrase(path)?)
    } else if !args.seal.recipients.is_empty() {
        Encryption::recipients(&args.seal.recipients).map_err(|e| backup_failure(e, "--format"))?
    } else {
        Encryption::Passphrase(prompt(true)?)
    };
    let bar = Arc::new(Bar::new());
    let mut options = BackupOptions::default()
        .overwrite(args.overwrite)
        .lenient(args.lenient);
    if !json {
        options = options.progress(bar.clone());
    }
    let result = wa_backup::backup(&from, &args.to, &encryption, &options).await;
    bar.finish();
    let summary = result.map_err(|e| backup_failure(e, "--format"))?;
    let keys: usize = summary.header.keys.values().sum();
    let mut human = format!(
        "backed up {from} to {} ({keys} keys, {} bytes, encrypted with age)\n",
        summary.file.display(),
        summary.bytes
    );
    for skipped in &summary.skipped {
        human.push_str(&format!("skipped: {}: {}\n", skipped.what, skipped.reason));
    }
    for warning in &summary.warnings {
        tracing::warn!("{warning}");
    }
    Ok(Report::new(&summary, human))
}

/// `restore`.
pub async fn restore(args: RestoreArgs, json: bool) -> Result<Report, Failure> {
    let to = resolve(&args.to, args.to_format, Role::Target, "--to-format")?;
    let key = if let Some(path) = &args.key.passphrase_file {
        Decryption::Passphrase(read_passphrase(path)?)
    } else if let Some(path) = &args.key.identity {
        Decryption::identity_file(path).map_err(|e| backup_failure(e, "--to-format"))?
    } else {
        Decryption::Passphrase(prompt(false)?)
    };
    let bar = Arc::new(Bar::new());
    let mut options = MigrateOptions::default().overwrite(args.overwrite);
    if !json {
        options = options.progress(bar.clone());
    }
    if let Some(flavour) = args.compat_flavour {
        options = options.compat_flavour(flavour);
    }
    let result = wa_backup::restore(&args.file, &key, &to, &options).await;
    bar.finish();
    let summary = result.map_err(|e| backup_failure(e, "--to-format"))?;
    Ok(Report::new(&summary, summary.to_string()))
}
