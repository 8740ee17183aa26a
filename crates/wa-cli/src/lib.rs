//! `wa-auth-state`, the command line for WhatsApp auth state: migrate it between backends,
//! inspect and verify it, back it up to an encrypted file and restore it, and manage the
//! accounts of a PostgreSQL database.
//!
//! Install with `cargo install --path crates/wa-cli`; `cargo xtask migrate|inspect|verify|...`
//! runs the same code ([`run`]).
//!
//! # Conventions
//! - `--help` and `--version` on every command; usage errors exit with status 2.
//! - Exit status ([`exit`]): 0 done, 1 problems found (`verify`), 2 usage error, 3 could not
//!   run (a source that cannot be read, a refused destination, a wrong key, ...).
//! - `--json`: one compact JSON document on stdout, `{"ok":true,"command":...,"result":...}`
//!   or, on failure, `{"ok":false,"command":...,"error":{"kind":...,"message":...,"hint":...}}`.
//!   Without it, human output; progress bars on stderr when it is a terminal.
//! - Logs on stderr through `tracing`: warnings by default, `-v` info, `-vv` debug, `-vvv`
//!   trace, `-q` errors only; `RUST_LOG` (e.g. `RUST_LOG=wa_store_postgres=debug`) overrides.
//! - PostgreSQL: `postgres://[user@host[:port]]/[db]?instance=ACCOUNT`; every part not in the URL
//!   comes from the libpq environment (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
//!   `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGPASSFILE` / `~/.pgpass`), so no secret
//!   has to be on the command line. Secrets are never printed.

#![forbid(unsafe_code)]

mod admin;
mod backup;
mod cli;
pub mod exit;
mod hints;
mod logging;
mod output;
mod progress;
mod state;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;
use cli::Command;
use output::{Failure, Report};

/// Runs the command line `args` (the first item is the program name) and returns the exit
/// status to end with.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let json = args.iter().skip(1).any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return output::usage_error(e, json),
    };
    logging::init(cli.verbose, cli.quiet);
    let name = cli.command.name();
    let outcome = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(dispatch(cli.command, cli.json)),
        Err(e) => Err(Failure::new(
            "runtime",
            format!("cannot start the async runtime: {e}"),
        )),
    };
    output::finish(name, outcome, cli.json)
}

async fn dispatch(command: Command, json: bool) -> Result<Report, Failure> {
    match command {
        Command::Migrate(args) => state::migrate(args, json).await,
        Command::Inspect(args) => state::inspect(args).await,
        Command::Verify(args) => state::verify(args).await,
        Command::Backup(args) => backup::backup(args, json).await,
        Command::Restore(args) => backup::restore(args, json).await,
        Command::Accounts(args) => admin::accounts(args).await,
        Command::DeleteAccount(args) => admin::delete_account(args).await,
        Command::ReleaseLease(args) => admin::release_lease(args).await,
    }
}
