//! The exit statuses of `wa-auth-state`.

/// Done; nothing wrong found.
pub const OK: u8 = 0;
/// The command ran and found problems (`verify`).
pub const PROBLEMS_FOUND: u8 = 1;
/// The command line could not be understood (clap's usage errors, an unknown format, a
/// location that is neither a folder nor a `postgres://` URL).
pub const USAGE: u8 = 2;
/// The command could not do its job: a source that cannot be read, a refused or busy
/// destination, a wrong key, a database that cannot be reached. Nothing was changed unless
/// the message says otherwise.
pub const COULD_NOT_RUN: u8 = 3;
