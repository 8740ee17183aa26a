//! File plumbing shared by the file-based auth stores (`wa-store-native`, `wa-store-compat`)
//! and by `wa-migrate`, written once:
//!
//! - [`group`]: leader/follower group commit on the committers' own threads ([`GroupCommit`]);
//! - [`atomic`]: replacing a file atomically (temp file, sync, rename, folder sync);
//! - [`blocking`]: running blocking file work from async code without stalling a tokio worker,
//!   and a dropped store's closing work off the runtime's thread;
//! - [`write`](mod@write): appending many buffers with few system calls, starting the writeback of a big
//!   append while it is still being copied;
//! - the folder lock and durable folder operations, re-exported from `wa-auth`
//!   ([`DirLock`], [`sync_dir`], [`create_dir_durably`], and [`create_dir_durably_with`] for a
//!   store with its own sync policy or fault hooks).
//!
//! Every operation a disk can fail goes through `wa_auth::fault::check` when the test-only
//! `fault-injection` feature is on (the stores' own `fault-injection` features turn it on), so
//! their fault injection tests reach this code unchanged; without it the hooks are inert.
//!
//! # Features
//! - `fault-injection` (off by default): test support, not part of the API.

#![forbid(unsafe_code)]

pub mod atomic;
pub mod blocking;
#[doc(hidden)]
pub mod fault;
pub mod group;
pub mod write;

pub use atomic::{publish_file, replace_file};
pub use group::{GroupCommit, GroupWriter};
pub use wa_auth::dir_lock::DirLock;
pub use wa_auth::folder::{create_dir_durably, create_dir_durably_with, sync_dir};

/// An I/O error on `path`, as [`wa_auth::AuthError::Io`] (the one mapping every store uses).
pub fn io_error(path: impl AsRef<std::path::Path>, error: std::io::Error) -> wa_auth::AuthError {
    wa_auth::AuthError::io(path.as_ref(), error)
}
