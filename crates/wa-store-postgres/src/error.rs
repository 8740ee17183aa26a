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

/// A database failure, the source of the [`AuthError::Backend`] errors of this crate: the
/// SQLSTATE the server reported (when it did) and a one-line description that never quotes
/// data. Reach it with [`sqlstate`] or by downcasting the error's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseError {
    sqlstate: Option<String>,
    description: String,
}

impl DatabaseError {
    /// The five-character SQLSTATE (e.g. `40001`, `57P01`), when the server reported one.
    pub fn sqlstate(&self) -> Option<&str> {
        self.sqlstate.as_deref()
    }

    /// What failed, without any data.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::error::Error for DatabaseError {}

impl From<&tokio_postgres::Error> for DatabaseError {
    fn from(error: &tokio_postgres::Error) -> Self {
        Self {
            sqlstate: error.code().map(|code| code.code().to_owned()),
            description: describe(error),
        }
    }
}

/// The SQLSTATE of a PostgreSQL failure reported as `error` (an [`AuthError::Backend`] of
/// this crate whose database reported one).
pub fn sqlstate(error: &AuthError) -> Option<&str> {
    match error {
        AuthError::Backend { source, .. } => source.downcast_ref::<DatabaseError>()?.sqlstate(),
        _ => None,
    }
}

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
    AuthError::backend(BACKEND, DatabaseError::from(&error))
}

/// An [`AuthError::Backend`] with a message (no SQLSTATE).
pub(crate) fn backend_msg(message: impl Into<String>) -> AuthError {
    let error = DatabaseError {
        sqlstate: None,
        description: message.into(),
    };
    AuthError::backend(BACKEND, error)
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

/// An [`AuthError::Backend`] for a failed attempt to get a pooled connection, keeping the
/// SQLSTATE when the server refused the connection (e.g. `3D000`: no such database).
pub(crate) fn no_connection(error: deadpool_postgres::PoolError) -> AuthError {
    let sqlstate = match &error {
        deadpool_postgres::PoolError::Backend(pg) => pg.code().map(|c| c.code().to_owned()),
        _ => None,
    };
    let description = match &error {
        deadpool_postgres::PoolError::Backend(pg) => pool_error(describe(pg)),
        other => pool_error(other),
    };
    AuthError::backend(
        BACKEND,
        DatabaseError {
            sqlstate,
            description,
        },
    )
}

/// A failed attempt to get a pooled connection, described.
pub(crate) fn pool_error(error: impl std::fmt::Display) -> String {
    format!("no database connection: {error}")
}
