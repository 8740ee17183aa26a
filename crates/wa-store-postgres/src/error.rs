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

impl DatabaseError {
    /// A failed pool checkout, described, with the SQLSTATE when the server refused it.
    pub(crate) fn from_pool(error: &deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(pg) => Self {
                sqlstate: pg.code().map(|c| c.code().to_owned()),
                description: pool_error(describe(pg)),
            },
            other => Self::message(pool_error(other)),
        }
    }

    /// A failure without a SQLSTATE.
    pub(crate) fn message(description: impl Into<String>) -> Self {
        Self {
            sqlstate: None,
            description: description.into(),
        }
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
    AuthError::backend(BACKEND, DatabaseError::message(message))
}

/// Why a database round of a flusher (a flush, a lease renewal or a release) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RoundError {
    /// The lease is no longer ours: stop for good.
    Fenced {
        /// The epoch we held.
        epoch: i64,
        /// Who holds the lease now, described.
        holder: String,
    },
    /// A statement failed or the connection was lost (the SQLSTATE kept when the server sent
    /// one): retry with backoff.
    Database(DatabaseError),
    /// No pooled connection could be had (the server refused it, or none came in time).
    NoConnection(DatabaseError),
    /// The lease row was locked by another transaction (a takeover in progress): nothing was
    /// written; retry.
    LeaseLocked,
    /// The round did not end within `operation_timeout`.
    TimedOut {
        /// The bound that ran out.
        after: std::time::Duration,
    },
}

impl RoundError {
    /// Whether the round may be retried (everything but a lost lease).
    pub(crate) fn is_transient(&self) -> bool {
        !matches!(self, Self::Fenced { .. })
    }

    /// The SQLSTATE the server reported, if any.
    pub(crate) fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Database(error) | Self::NoConnection(error) => error.sqlstate(),
            Self::Fenced { .. } | Self::LeaseLocked | Self::TimedOut { .. } => None,
        }
    }

    /// A failed pool checkout (keeping the server's SQLSTATE when it refused the connection).
    pub(crate) fn no_connection(error: &deadpool_postgres::PoolError) -> Self {
        Self::NoConnection(DatabaseError::from_pool(error))
    }

    /// The [`AuthError`] a caller gets for this failure: [`AuthError::OwnershipLost`] when
    /// fenced, else an [`AuthError::Backend`] whose source keeps the SQLSTATE.
    pub(crate) fn into_auth(self, instance: &str, context: &str) -> AuthError {
        match self {
            Self::Fenced { .. } => AuthError::OwnershipLost {
                resource: format!("PostgreSQL instance {instance}"),
                reason: format!("{context}{self}"),
            },
            Self::Database(error) | Self::NoConnection(error) => AuthError::backend(BACKEND, error),
            Self::LeaseLocked | Self::TimedOut { .. } => backend_msg(self.to_string()),
        }
    }
}

impl std::fmt::Display for RoundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fenced { epoch, holder } => {
                write!(f, "the lease (epoch {epoch}) is now held by {holder}")
            }
            Self::Database(error) | Self::NoConnection(error) => error.fmt(f),
            Self::LeaseLocked => f.write_str("the lease row is locked by another transaction"),
            Self::TimedOut { after } => write!(
                f,
                "database round timed out after {:.1} s",
                after.as_secs_f64()
            ),
        }
    }
}

impl From<tokio_postgres::Error> for RoundError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Database(DatabaseError::from(&error))
    }
}

/// An [`AuthError::Backend`] for a failed attempt to get a pooled connection, keeping the
/// SQLSTATE when the server refused the connection (e.g. `3D000`: no such database).
pub(crate) fn no_connection(error: deadpool_postgres::PoolError) -> AuthError {
    AuthError::backend(BACKEND, DatabaseError::from_pool(&error))
}

/// A failed attempt to get a pooled connection, described.
pub(crate) fn pool_error(error: impl std::fmt::Display) -> String {
    format!("no database connection: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_errors_keep_their_sqlstate_and_say_whether_to_retry() {
        let database = RoundError::Database(DatabaseError {
            sqlstate: Some("55P03".to_owned()),
            description: "ERROR 55P03: canceling statement due to lock timeout".to_owned(),
        });
        let copy = database.clone();
        assert_eq!(copy, database);
        assert_eq!(database.sqlstate(), Some("55P03"));
        assert!(database.is_transient());
        match database.into_auth("acct", "") {
            error @ AuthError::Backend { .. } => assert_eq!(sqlstate(&error), Some("55P03")),
            other => panic!("{other:?}"),
        }

        let fenced = RoundError::Fenced {
            epoch: 7,
            holder: "replica-b (epoch 8)".to_owned(),
        };
        assert!(!fenced.is_transient());
        assert_eq!(fenced.sqlstate(), None);
        assert_eq!(
            fenced.to_string(),
            "the lease (epoch 7) is now held by replica-b (epoch 8)"
        );
        match fenced.into_auth("acct", "while loading: ") {
            AuthError::OwnershipLost { resource, reason } => {
                assert!(resource.contains("acct"), "{resource}");
                assert!(
                    reason.starts_with("while loading: the lease (epoch 7)"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }

        let timed_out = RoundError::TimedOut {
            after: std::time::Duration::from_millis(2500),
        };
        assert!(timed_out.is_transient() && RoundError::LeaseLocked.is_transient());
        assert_eq!(
            timed_out.to_string(),
            "database round timed out after 2.5 s"
        );
    }
}
