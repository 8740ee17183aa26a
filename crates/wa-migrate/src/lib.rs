//! Staged, verified migration of WhatsApp auth state between storage backends.
//!
//! Moving an account between backends must never lose a session or replace creds, so a
//! migration here is:
//!
//! 1. **read completely first** — the source is opened read-only and every key decoded;
//!    strict by default (the first unreadable file aborts, named in the error), or
//!    [`lenient`](MigrateOptions::lenient) (unreadable keys are skipped and listed);
//! 2. **written to a staging copy** — for folders, `.<name>.wa-migrate-staging` beside the
//!    destination; for a database, one atomic commit;
//! 3. **verified** — the staging copy is re-opened by a fresh store and every key and the creds
//!    compared with the source;
//! 4. **published atomically** — renamed into place. With
//!    [`overwrite`](MigrateOptions::overwrite) the old destination is kept as a backup until the
//!    new one is in place and restored on failure; without it a non-empty destination is
//!    refused.
//!
//! The destination is therefore always absent, unchanged, or complete, even if the process is
//! killed; the next migration (or [`recover_interrupted`]) cleans up what a killed one left.
//!
//! ```no_run
//! # async fn run() -> Result<(), wa_migrate::MigrateError> {
//! use wa_migrate::{MigrateOptions, migrate_compat_json_to_native};
//!
//! let summary =
//!     migrate_compat_json_to_native("auth_info_baileys", "auth-native", &MigrateOptions::default())
//!         .await?;
//! println!("{summary}"); // a table; `summary.to_json()` for programs
//! # Ok(()) }
//! ```
//!
//! Also here: [`inspect`](inspect()) (what a location holds, public keys only) and
//! [`verify`](verify()) (a consistency check), which `cargo xtask inspect|verify` print.

#![forbid(unsafe_code)]

mod error;
pub mod inspect;
pub mod location;
mod migrate;
mod options;
mod redact;
pub mod staging;
mod summary;
pub mod verify;

pub use error::{Hint, MigrateError, Result};
pub use inspect::{Inspection, inspect};
pub use location::{Format, Location, OpenStore, PostgresLocation, Role, detect};
pub use migrate::{
    migrate, migrate_between, migrate_compat_json_to_native, migrate_native_to_compat_json,
};
#[cfg(feature = "fault-injection")]
pub use options::FaultPoint;
pub use options::{MigrateOptions, Progress, Stage};
pub use staging::recover_interrupted;
pub use summary::{Endpoint, Entry, Summary};
pub use verify::{VerifyReport, verify, verify_store};
