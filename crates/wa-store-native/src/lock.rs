//! The store directory's lock file: ownership is a [`wa_auth::dir_lock::DirLock`] on it.

/// Name of the lock file inside a store directory.
pub(crate) const LOCK_FILE: &str = "lock";
