//! The single-owner lease of an instance: one row per instance with the owner id, the epoch (a
//! fencing token that grows by one at every acquisition) and an expiry.
//!
//! - Acquire: an upsert that succeeds only when the lease is free (released, or new), or —
//!   with [`Takeover::AfterExpiry`](crate::Takeover::AfterExpiry) — expired; it bumps the epoch.
//! - Renew: conditional on `(owner, epoch)`; zero rows means the lease was taken: fenced.
//!   Acquire, renew and release each run in a transaction of their own bounded by the store's
//!   [limits](crate::session), in one round trip.
//! - Every flush transaction starts with the same conditional update, which also locks the
//!   lease row until the flush commits, so a takeover cannot interleave with a flush.
//! - Release: owner set to NULL and expiry to now, keeping the epoch, so the next owner's
//!   epoch is still larger than every epoch before.

use std::time::{Duration, Instant};

use deadpool_postgres::Object;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;
use tracing::{debug, info};
use wa_auth::{AuthError, Result};

use crate::error::{RoundError, backend};
use crate::options::{PostgresStoreOptions, Takeover};
use crate::session::{Limits, is_lock_timeout, one_statement};
use crate::sql::Statements;

/// Who holds a lease, for error messages.
pub(crate) async fn describe_holder(
    client: &Client,
    statements: &Statements,
    instance: &str,
) -> std::result::Result<String, tokio_postgres::Error> {
    let Some(row) = client.query_opt(&statements.holder, &[&instance]).await? else {
        return Ok(Holder::GONE.to_owned());
    };
    Ok(Holder::from_row(&row, 0)?.describe())
}

/// A lease as read back: its owner, epoch and the milliseconds until it expires.
pub(crate) struct Holder {
    pub owner: Option<String>,
    pub epoch: i64,
    pub remaining_ms: f64,
}

impl Holder {
    /// How a lease whose row is gone is described.
    pub(crate) const GONE: &str = "nobody (the lease row is gone)";

    /// The holder in columns `at`, `at + 1` and `at + 2` of `row`.
    pub(crate) fn from_row(
        row: &tokio_postgres::Row,
        at: usize,
    ) -> std::result::Result<Self, tokio_postgres::Error> {
        Ok(Self {
            owner: row.try_get(at)?,
            epoch: row.try_get(at + 1)?,
            remaining_ms: row.try_get(at + 2)?,
        })
    }

    /// Who holds the lease, for errors and logs.
    pub(crate) fn describe(&self) -> String {
        let epoch = self.epoch;
        match &self.owner {
            None => format!("nobody (released at epoch {epoch})"),
            Some(owner) if self.remaining_ms > 0.0 => format!(
                "{owner} (epoch {epoch}, lease valid for another {:.1} s)",
                self.remaining_ms / 1000.0
            ),
            Some(owner) => format!(
                "{owner} (epoch {epoch}, lease expired {:.1} s ago)",
                -self.remaining_ms / 1000.0
            ),
        }
    }
}

/// A lease taken by [`acquire`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Acquired {
    /// The fencing token.
    pub epoch: i64,
    /// When the statement that took it was sent (the lease runs from the server's `now()`,
    /// which is later).
    pub sent: Instant,
}

/// Takes the lease of `options.instance_id`, waiting up to `options.lease_wait` for it to
/// become available. Each attempt is bounded by the server's `lock_timeout`: a holder's flush
/// (or a dead holder's transaction the server has not ended yet) locks the lease row, and an
/// attempt that times out on that lock counts as "held" and is retried while the wait lasts.
pub(crate) async fn acquire(
    client: &Object,
    statements: &Statements,
    limits: &Limits,
    options: &PostgresStoreOptions,
) -> Result<Acquired> {
    let ttl_ms = ttl_ms(options.lease_ttl);
    let takeover = options.takeover == Takeover::AfterExpiry;
    let statement = client
        .prepare_cached(&statements.acquire)
        .await
        .map_err(backend)?;
    let params: [&(dyn ToSql + Sync); 4] =
        [&options.instance_id, &options.owner_id, &ttl_ms, &takeover];
    let started = Instant::now();
    loop {
        let sent = Instant::now();
        let locked = match one_statement(client, limits, &statement, &params).await {
            Ok(rows) => match rows.first() {
                Some(row) => {
                    let epoch: i64 = row.try_get(0).map_err(backend)?;
                    info!(instance = %options.instance_id, owner = %options.owner_id, epoch, "lease acquired");
                    return Ok(Acquired { epoch, sent });
                }
                None => false,
            },
            Err(e) if is_lock_timeout(&e) => true,
            Err(e) => return Err(backend(e)),
        };
        let mut holder = describe_holder(client, statements, &options.instance_id)
            .await
            .map_err(backend)?;
        if locked {
            holder.push_str("; its lease row is locked by a transaction in progress");
        }
        let waited = started.elapsed();
        if waited >= options.lease_wait {
            info!(instance = %options.instance_id, %holder, "lease held by another owner");
            return Err(AuthError::AlreadyOwned {
                resource: format!("PostgreSQL instance {}", options.instance_id),
                holder: Some(holder),
            });
        }
        debug!(instance = %options.instance_id, %holder, "lease held; waiting");
        let pause = (options.lease_wait - waited).min(Duration::from_millis(100));
        tokio::time::sleep(pause).await;
    }
}

/// Renews our lease; `Fenced` when it is no longer ours.
pub(crate) async fn renew(
    client: &Object,
    statements: &Statements,
    limits: &Limits,
    options: &PostgresStoreOptions,
    epoch: i64,
) -> std::result::Result<(), RoundError> {
    let statement = client.prepare_cached(&statements.renew).await?;
    let ttl_ms = ttl_ms(options.lease_ttl);
    let params: [&(dyn ToSql + Sync); 4] =
        [&options.instance_id, &options.owner_id, &epoch, &ttl_ms];
    if one_statement(client, limits, &statement, &params)
        .await?
        .len()
        == 1
    {
        return Ok(());
    }
    let holder = describe_holder(client, statements, &options.instance_id).await?;
    Err(RoundError::Fenced { epoch, holder })
}

/// Releases our lease; `false` when it was not ours any more.
pub(crate) async fn release(
    client: &Object,
    statements: &Statements,
    limits: &Limits,
    options: &PostgresStoreOptions,
    epoch: i64,
) -> std::result::Result<bool, tokio_postgres::Error> {
    let statement = client.prepare_cached(&statements.release).await?;
    let params: [&(dyn ToSql + Sync); 3] = [&options.instance_id, &options.owner_id, &epoch];
    Ok(one_statement(client, limits, &statement, &params)
        .await?
        .len()
        == 1)
}

/// A lease length as the float milliseconds the statements take.
pub(crate) fn ttl_ms(ttl: Duration) -> f64 {
    ttl.as_secs_f64() * 1000.0
}
