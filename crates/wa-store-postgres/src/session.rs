//! How the store's database sessions are bounded, so that no wait — of this replica, or of
//! another one waiting for this one — lasts longer than the options allow.
//!
//! - Every transaction of the store begins with `BEGIN` and `SET LOCAL` of
//!   `statement_timeout` (= `operation_timeout`), `lock_timeout` and
//!   `idle_in_transaction_session_timeout`, sent as one message ([`Limits::begin`]). The settings
//!   end with the transaction, so a pool shared with other code is left as it was. When this
//!   replica dies or its network goes silent in the middle of a flush, the server ends that
//!   transaction — and releases the lease row it locked — after
//!   `idle_in_transaction_timeout`, instead of waiting for TCP to give up (hours).
//! - Connections are lent by [`Lent`]: back to the pool only after a round that went through;
//!   after a failure, a timeout or a panic they are closed, since their state is unknown.
//! - Statements on the lease run in their own bounded transaction in one round trip
//!   ([`one_statement`]).

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use crate::error::{DatabaseError, RoundError, pool_error};
use crate::options::Timings;

/// The statement that opens each of the store's transactions.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    begin: String,
}

impl Limits {
    pub(crate) fn new(timings: &Timings) -> Self {
        let ms = |d: Duration| d.as_millis().max(1);
        Self {
            begin: format!(
                "BEGIN; SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; \
                 SET LOCAL idle_in_transaction_session_timeout = {}",
                ms(timings.operation_timeout),
                ms(timings.lock_timeout),
                ms(timings.idle_in_transaction_timeout),
            ),
        }
    }

    /// `BEGIN` and the transaction's limits, as one simple-query message.
    pub(crate) fn begin(&self) -> &str {
        &self.begin
    }
}

/// A pooled connection that goes back to the pool only when [`Lent::keep`] was called;
/// otherwise it is closed when dropped.
pub(crate) struct Lent {
    client: Option<Object>,
    keep: bool,
}

impl Lent {
    /// A connection from `pool`, waiting at most `timeout`.
    pub(crate) async fn get(pool: &Pool, timeout: Duration) -> Result<Self, RoundError> {
        match tokio::time::timeout(timeout, pool.get()).await {
            Ok(Ok(client)) => Ok(Self {
                client: Some(client),
                keep: false,
            }),
            Ok(Err(e)) => Err(RoundError::no_connection(&e)),
            Err(_) => Err(RoundError::NoConnection(DatabaseError::message(
                pool_error("timed out waiting for one"),
            ))),
        }
    }

    /// The connection is in a known, idle state: return it to the pool when dropped.
    pub(crate) fn keep(&mut self) {
        self.keep = true;
    }
}

impl Deref for Lent {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a lent connection until dropped")
    }
}

impl DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut Object {
        self.client
            .as_mut()
            .expect("a lent connection until dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && !self.keep
        {
            drop(Object::take(client));
        }
    }
}

/// Runs `statement` in a transaction of its own, bounded by `limits`, in one round trip:
/// `BEGIN` with the limits, the statement and `COMMIT` are pipelined. When the statement fails,
/// the `COMMIT` rolls back, and the connection is idle again either way.
pub(crate) async fn one_statement(
    client: &Client,
    limits: &Limits,
    statement: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    // Polled in order, so sent in this order; all three answers are awaited.
    let (begun, rows, committed) = futures::future::join3(
        client.batch_execute(limits.begin()),
        client.query(statement, params),
        client.batch_execute("COMMIT"),
    )
    .await;
    begun?;
    let rows = rows?;
    committed?;
    Ok(rows)
}

/// Whether `error` is a lock wait cut short by `lock_timeout`.
pub(crate) fn is_lock_timeout(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}
