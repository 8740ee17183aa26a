//! Opening a store: a connection, the schema migrated (or checked), the lease taken, every key
//! loaded — all of it within `lease_wait + open_timeout`, so that `open` returns (an error, at
//! worst) even when the database hangs.

use std::time::Instant;

use deadpool_postgres::{Object, Pool};
use tracing::warn;
use wa_auth::{AuthError, Result};

use crate::error::{RoundError, backend_msg};
use crate::health::LeaseClock;
use crate::lease::{self, Acquired};
use crate::load;
use crate::memory::Memory;
use crate::options::{PostgresStoreOptions, Timings};
use crate::schema;
use crate::session::{Lent, Limits};
use crate::sql::Statements;

/// What `open` hands to the store.
pub(crate) struct Opened {
    pub epoch: i64,
    pub lease: LeaseClock,
    pub memory: Memory,
}

/// What opening works with.
pub(crate) struct Setup<'a> {
    pub pool: &'a Pool,
    pub options: &'a PostgresStoreOptions,
    pub timings: &'a Timings,
    pub statements: &'a Statements,
    pub limits: &'a Limits,
    /// Kinds not loaded at open (budgeted mode's cached kinds, see [`crate::budget`]).
    pub skip_kinds: Vec<String>,
}

/// Opens the instance of `setup.options` (see the module docs).
pub(crate) async fn open(setup: &Setup<'_>) -> Result<Opened> {
    let budget = setup
        .options
        .lease_wait
        .saturating_add(setup.timings.open_timeout);
    let deadline = tokio::time::Instant::now() + budget;
    let timed_out = || {
        backend_msg(format!(
            "open did not finish within {:.1} s (lease_wait + open_timeout): the database does \
             not answer",
            budget.as_secs_f64()
        ))
    };
    let connect = Lent::get(setup.pool, setup.timings.operation_timeout);
    let mut client = match tokio::time::timeout_at(deadline, connect).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => return Err(error.into_auth(&setup.options.instance_id, "")),
        Err(_) => return Err(timed_out()),
    };
    let acquired = match tokio::time::timeout_at(deadline, take_lease(setup, &mut client)).await {
        Ok(Ok(acquired)) => acquired,
        Ok(Err(err)) => {
            // A refusal from the database leaves the connection idle and usable.
            if matches!(
                err,
                AuthError::AlreadyOwned { .. } | AuthError::UnsupportedVersion { .. }
            ) {
                client.keep();
            }
            return Err(err);
        }
        Err(_) => return Err(timed_out()),
    };
    let err = match tokio::time::timeout_at(deadline, load(setup, &client, acquired)).await {
        Ok(Ok(opened)) => {
            client.keep();
            return Ok(opened);
        }
        Ok(Err(err)) => err,
        Err(_) => {
            release_in_background(setup, acquired.epoch);
            return Err(timed_out());
        }
    };
    // Leave the lease free for the next attempt: at once on this connection when it still
    // answers in time, else in the background.
    let (statements, limits) = (setup.statements, setup.limits);
    let release = lease::release(&client, statements, limits, setup.options, acquired.epoch);
    match tokio::time::timeout_at(deadline, release).await {
        Ok(Ok(_)) => client.keep(),
        _ => release_in_background(setup, acquired.epoch),
    }
    Err(err)
}

/// Migrates (or checks) the schema, then takes the lease.
async fn take_lease(setup: &Setup<'_>, client: &mut Object) -> Result<Acquired> {
    let options = setup.options;
    if options.auto_migrate {
        schema::migrate(client, &options.schema).await?;
    } else {
        schema::check_version(client, &options.schema).await?;
    }
    lease::acquire(client, setup.statements, setup.limits, options).await
}

/// Loads every key; after a long load, confirms the lease, so that the store starts with a
/// fresh one (or finds out that another replica took the account over meanwhile).
async fn load(setup: &Setup<'_>, client: &Object, acquired: Acquired) -> Result<Opened> {
    let options = setup.options;
    let memory = load::load(
        client,
        setup.statements,
        &options.instance_id,
        &setup.skip_kinds,
    )
    .await?;
    let mut lease = LeaseClock::new(setup.timings.lease_valid_for(), acquired.sent);
    if Instant::now() >= lease.renewal_due(setup.timings.lease_renew_interval) {
        let sent = Instant::now();
        let (statements, limits) = (setup.statements, setup.limits);
        match lease::renew(client, statements, limits, options, acquired.epoch).await {
            Ok(()) => lease.confirm(sent),
            Err(error) => {
                let context = "while the keys were loading: ";
                return Err(error.into_auth(&options.instance_id, context));
            }
        }
    }
    Ok(Opened {
        epoch: acquired.epoch,
        lease,
        memory,
    })
}

/// Releases a lease taken by an open that then failed, on a connection of its own (the one
/// that failed does not answer), without holding up the caller. Best effort: a lease not
/// released expires.
fn release_in_background(setup: &Setup<'_>, epoch: i64) {
    let pool = setup.pool.clone();
    let options = setup.options.clone();
    let statements = setup.statements.clone();
    let limits = setup.limits.clone();
    let timeout = setup.timings.operation_timeout;
    tokio::spawn(async move {
        let release = async {
            let mut client = Lent::get(&pool, timeout).await?;
            lease::release(&client, &statements, &limits, &options, epoch).await?;
            client.keep();
            Ok::<(), RoundError>(())
        };
        let outcome = tokio::time::timeout(timeout, release).await;
        if let Some(error) = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error),
            Err(_) => Some(RoundError::TimedOut { after: timeout }),
        } {
            warn!(instance = %options.instance_id, %error, "cannot release the lease after a failed open; it will expire");
        }
    });
}
