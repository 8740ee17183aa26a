//! The single-owner lease of an instance: one row per instance with the owner id, the epoch (a
//! fencing token that grows by one at every acquisition) and an expiry.
//!
//! - Acquire: an upsert that succeeds only when the lease is free (released, or new), or —
//!   with [`Takeover::AfterExpiry`](crate::Takeover::AfterExpiry) — expired; it bumps the epoch.
//! - Renew: conditional on `(owner, epoch)`; zero rows means the lease was taken: fenced.
//! - Every flush transaction starts with the same conditional update, which also locks the
//!   lease row until the flush commits, so a takeover cannot interleave with a flush.
//! - Release: owner set to NULL and expiry to now, keeping the epoch, so the next owner's
//!   epoch is still larger than every epoch before.

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tracing::{debug, info};
use wa_auth::{AuthError, Result};

use crate::error::{RoundError, backend};
use crate::options::{PostgresStoreOptions, Takeover};
use crate::sql::Statements;

/// Who holds a lease, for error messages.
pub(crate) async fn describe_holder(
    client: &Client,
    statements: &Statements,
    instance: &str,
) -> std::result::Result<String, tokio_postgres::Error> {
    let Some(row) = client.query_opt(&statements.holder, &[&instance]).await? else {
        return Ok("nobody (the lease row is gone)".to_owned());
    };
    let owner: Option<String> = row.try_get(0)?;
    let epoch: i64 = row.try_get(1)?;
    let remaining_ms: f64 = row.try_get(2)?;
    Ok(match owner {
        None => format!("nobody (released at epoch {epoch})"),
        Some(owner) if remaining_ms > 0.0 => format!(
            "{owner} (epoch {epoch}, lease valid for another {:.1} s)",
            remaining_ms / 1000.0
        ),
        Some(owner) => format!(
            "{owner} (epoch {epoch}, lease expired {:.1} s ago)",
            -remaining_ms / 1000.0
        ),
    })
}

/// Takes the lease of `options.instance_id`, waiting up to `options.lease_wait` for it to
/// become available. Returns the epoch.
pub(crate) async fn acquire(
    client: &Client,
    statements: &Statements,
    options: &PostgresStoreOptions,
) -> Result<i64> {
    let ttl_ms = ttl_ms(options.lease_ttl);
    let takeover = options.takeover == Takeover::AfterExpiry;
    let started = Instant::now();
    loop {
        let row = client
            .query_opt(
                &statements.acquire,
                &[&options.instance_id, &options.owner_id, &ttl_ms, &takeover],
            )
            .await
            .map_err(backend)?;
        if let Some(row) = row {
            let epoch: i64 = row.try_get(0).map_err(backend)?;
            info!(
                instance = %options.instance_id,
                owner = %options.owner_id,
                epoch,
                "lease acquired"
            );
            return Ok(epoch);
        }
        let holder = describe_holder(client, statements, &options.instance_id)
            .await
            .map_err(backend)?;
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
    client: &Client,
    statements: &Statements,
    options: &PostgresStoreOptions,
    epoch: i64,
) -> std::result::Result<(), RoundError> {
    let rows = client
        .execute(
            &statements.renew,
            &[
                &options.instance_id,
                &options.owner_id,
                &epoch,
                &ttl_ms(options.lease_ttl),
            ],
        )
        .await?;
    if rows == 1 {
        return Ok(());
    }
    let holder = describe_holder(client, statements, &options.instance_id).await?;
    Err(RoundError::Fenced(format!(
        "the lease (epoch {epoch}) is now held by {holder}"
    )))
}

/// Releases our lease; `false` when it was not ours any more.
pub(crate) async fn release(
    client: &Client,
    statements: &Statements,
    options: &PostgresStoreOptions,
    epoch: i64,
) -> std::result::Result<bool, tokio_postgres::Error> {
    let rows = client
        .execute(
            &statements.release,
            &[&options.instance_id, &options.owner_id, &epoch],
        )
        .await?;
    Ok(rows == 1)
}

/// A lease length as the float milliseconds the statements take.
pub(crate) fn ttl_ms(ttl: Duration) -> f64 {
    ttl.as_secs_f64() * 1000.0
}
