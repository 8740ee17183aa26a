//! The command line's shape (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use wa_migrate::{Flavour, Format};

/// Migrate, inspect, verify, back up and restore WhatsApp auth state (Baileys folders, native
/// stores, PostgreSQL accounts).
///
/// Exit status: 0 done, 1 problems found (verify), 2 usage error, 3 could not run.
#[derive(Parser, Debug)]
#[command(name = "wa-auth-state", version, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Errors only on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print one compact JSON document on stdout (errors too).
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy auth state between backends: staged, verified, published atomically.
    Migrate(MigrateArgs),
    /// Show what a folder or account holds (public keys only).
    Inspect(LocationArgs),
    /// Check stored auth state for consistency (exit 1 when problems are found).
    Verify(LocationArgs),
    /// Write a consistent, age-encrypted copy of a live store to one file.
    Backup(BackupArgs),
    /// Decrypt and verify a backup, then write it like a migration does.
    Restore(RestoreArgs),
    /// PostgreSQL: list the accounts with key counts, lease owner and expiry, last write.
    Accounts(DatabaseArgs),
    /// PostgreSQL: delete one account (all its rows and its lease) atomically.
    DeleteAccount(AccountArgs),
    /// PostgreSQL: release a dead replica's lease so another can take over (fences it).
    ReleaseLease(AccountArgs),
}

impl Command {
    /// The command's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Migrate(_) => "migrate",
            Command::Inspect(_) => "inspect",
            Command::Verify(_) => "verify",
            Command::Backup(_) => "backup",
            Command::Restore(_) => "restore",
            Command::Accounts(_) => "accounts",
            Command::DeleteAccount(_) => "delete-account",
            Command::ReleaseLease(_) => "release-lease",
        }
    }
}

fn format_arg(text: &str) -> Result<Format, String> {
    text.parse()
        .map_err(|e: wa_migrate::MigrateError| e.to_string())
}

fn flavour_arg(name: &str) -> Result<Flavour, String> {
    Flavour::from_name(name)
        .ok_or_else(|| format!("unknown flavour {name:?}: expected baileys6 or baileys7"))
}

/// `migrate`.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The source: a folder, or postgres://[user@host/db]?instance=ACCOUNT[&schema=SCHEMA].
    #[arg(long)]
    pub from: String,
    /// The destination: a folder (a new one becomes a native store unless --to-format says
    /// otherwise) or a postgres:// URL.
    #[arg(long)]
    pub to: String,
    /// The source's format (compat, native, postgres); detected when not given.
    #[arg(long, value_parser = format_arg)]
    pub from_format: Option<Format>,
    /// The destination's format; detected when not given.
    #[arg(long, value_parser = format_arg)]
    pub to_format: Option<Format>,
    /// The Baileys flavour to write to a compat destination (baileys6, baileys7); default:
    /// the source's own, else decided from the state.
    #[arg(long, value_parser = flavour_arg)]
    pub compat_flavour: Option<Flavour>,
    /// Check and report, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace a destination that holds auth state (kept until the new state is verified).
    #[arg(long)]
    pub overwrite: bool,
    /// Skip unreadable keys (listed in the summary) instead of stopping at the first.
    #[arg(long)]
    pub lenient: bool,
}

/// `inspect` and `verify`.
#[derive(Args, Debug)]
pub struct LocationArgs {
    /// A folder or a postgres:// URL.
    pub location: String,
    /// Its format (compat, native, postgres); detected when not given.
    #[arg(long, value_parser = format_arg)]
    pub format: Option<Format>,
}

/// Who can open a backup.
#[derive(Args, Debug)]
#[group(required = false, multiple = false)]
pub struct SealArgs {
    /// A file whose first line is the passphrase.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// An age public key (age1...) that can open the backup; repeat for several.
    #[arg(long = "recipient", num_args = 1)]
    pub recipients: Vec<String>,
}

/// `backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// What to back up: a folder or a postgres:// URL (read without stopping its owner).
    pub source: String,
    /// The backup file to write (age format).
    #[arg(long)]
    pub to: PathBuf,
    /// The source's format; detected when not given.
    #[arg(long, value_parser = format_arg)]
    pub format: Option<Format>,
    /// Who can open it (a prompt for a passphrase when none is given and stdin is a terminal).
    #[command(flatten)]
    pub seal: SealArgs,
    /// Replace an existing backup file.
    #[arg(long)]
    pub overwrite: bool,
    /// Skip unreadable keys instead of failing.
    #[arg(long)]
    pub lenient: bool,
}

/// What opens a backup.
#[derive(Args, Debug)]
#[group(required = false, multiple = false)]
pub struct OpenArgs {
    /// A file whose first line is the passphrase.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// An age identity file (as age-keygen writes it).
    #[arg(long)]
    pub identity: Option<PathBuf>,
}

/// `restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// Where to restore: a folder or a postgres:// URL.
    #[arg(long)]
    pub to: String,
    /// The destination's format; a new folder becomes a native store when not given.
    #[arg(long, value_parser = format_arg)]
    pub to_format: Option<Format>,
    /// The Baileys flavour to write to a compat destination; default: the backup's own.
    #[arg(long, value_parser = flavour_arg)]
    pub compat_flavour: Option<Flavour>,
    /// What opens the backup (a prompt for a passphrase when none is given and stdin is a
    /// terminal).
    #[command(flatten)]
    pub key: OpenArgs,
    /// Replace a destination that holds auth state (kept until the new state is verified).
    #[arg(long)]
    pub overwrite: bool,
}

/// A PostgreSQL database.
#[derive(Args, Debug)]
pub struct DatabaseArgs {
    /// postgres://[user@host[:port]]/[db][?schema=SCHEMA]; what is missing comes from the
    /// PG* environment variables.
    #[arg(default_value = "postgres://")]
    pub database: String,
}

/// One PostgreSQL account.
#[derive(Args, Debug)]
pub struct AccountArgs {
    /// postgres://[user@host[:port]]/[db]?instance=ACCOUNT[&schema=SCHEMA].
    pub account: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Act even while a live owner holds the lease (it is fenced: it writes nothing more).
    #[arg(long)]
    pub force: bool,
}
