//! Mapping database errors onto [`AuthError`], and the flusher's own failure kinds.
//!
//! Database errors are rendered by [`describe`]: severity, SQLSTATE and message, and the chain
//! of causes for connection errors, but never PostgreSQL's DETAIL or context lines, which can
//! quote the data that was sent (key material has no place in logs or metrics).

use std::error::Error as _;
use std::fmt::Write as _;

use wa_auth::AuthError;

/// The backend name used in errors and capabilities.
pub(crate) const BACKEND: &str = "postgres";

/// A one-line description of a database error that never quotes data.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// An [`AuthError::Backend`] for a database failure.
pub(crate) fn backend(error: tokio_postgres::Error) -> AuthError {
    backend_msg(describe(&error))
}

/// An [`AuthError::Backend`] with a message.
pub(crate) fn backend_msg(message: impl Into<String>) -> AuthError {
    AuthError::Backend {
        backend: BACKEND,
        source: message.into().into(),
    }
}

/// Why a database round of the flusher (a flush or a lease renewal) failed.
#[derive(Debug)]
pub(crate) enum RoundError {
    /// The lease is no longer ours: stop for good.
    Fenced(String),
    /// Anything else (connection lost, server down, timeout): retry with backoff.
    Transient(String),
}

impl From<tokio_postgres::Error> for RoundError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Transient(describe(&error))
    }
}

/// A failed attempt to get a pooled connection, described.
pub(crate) fn pool_error(error: impl std::fmt::Display) -> String {
    format!("no database connection: {error}")
}
