//! Shared PostgreSQL store for WhatsApp auth state: load-all, write-behind, one owner per
//! account.
//!
//! For services that run many linked devices across several replicas. Each account is an
//! *instance* with its own rows in shared tables (see `docs/postgres.md` for the schema and the
//! JSON shape of every kind). A [`PostgresStore`] serves one instance:
//!
//! - **Open** ([`PostgresStore::open`]): applies pending schema migrations (an unknown newer
//!   schema is [`AuthError::UnsupportedVersion`](wa_auth::AuthError::UnsupportedVersion),
//!   never a reset), takes the instance's **lease**
//!   ([`AlreadyOwned`](wa_auth::AuthError::AlreadyOwned) if another replica holds it), then
//!   loads every key into memory in one streamed query. Reads are served from memory.
//! - **Write-behind**: [`commit`](wa_auth::Persistence::commit) validates the batch, applies it
//!   to memory and queues it; a background flusher coalesces queued batches (last write per key
//!   wins) and writes them in ONE transaction per flush with multi-row statements.
//!   [`flush`](wa_auth::Persistence::flush) is the durability barrier: when it returns, every
//!   batch committed before it is in the database. The queue is bounded (commits wait for
//!   room). [`AuthState`](wa_auth::AuthState) flushes before sending whenever a transaction
//!   advanced a sending counter (`Transaction::require_flush_before_send`).
//! - **Faults**: failed rounds are retried with backoff, keeping everything queued; after
//!   `unhealthy_after` without success (a hung round counts from its start), `commit` and
//!   `flush` return [`Unhealthy`](wa_auth::AuthError::Unhealthy). Nothing acknowledged by
//!   `flush` is lost. [`PostgresStore::metrics`] exposes queue length, counters, lag and the
//!   last error.
//! - **One owner**: the lease carries an owner id, an epoch (fencing token) and an expiry
//!   renewed in the background; every flush is conditional on the epoch. A replica whose lease
//!   was taken over is fenced: everything it does returns
//!   [`OwnershipLost`](wa_auth::AuthError::OwnershipLost) and it writes nothing more. Once its
//!   lease *may* have expired (no renewal confirmed for `lease_ttl - lease_safety_margin`, on
//!   the monotonic clock), a replica acknowledges no commit or flush
//!   ([`Unhealthy`](wa_auth::AuthError::Unhealthy)) until a renewal succeeds.
//!   [`close`](wa_auth::Persistence::close) flushes and releases the lease.
//! - **Bounded waits**: every transaction sets the server's `statement_timeout`, `lock_timeout`
//!   and `idle_in_transaction_session_timeout`, so the server ends a dead replica's flush (and
//!   its lock on the lease) in seconds; `open` finishes within `lease_wait + open_timeout`; the
//!   pools of [`connect_pool`] use TCP keepalives. A crashed or cut-off owner is taken over
//!   within about `lease_ttl` by a replica waiting for it ([`Timings`] lists every bound).
//!
//! ```no_run
//! use std::sync::Arc;
//! use wa_auth::AuthState;
//! use wa_store_postgres::{PostgresStore, PostgresStoreOptions, Takeover, connect_pool};
//!
//! # async fn run() -> wa_auth::Result<()> {
//! // One pool per replica, shared by every account it runs.
//! let pool = connect_pool("host=db.internal user=wa dbname=wa", 16)?;
//! let store = PostgresStore::open(
//!     pool.clone(),
//!     PostgresStoreOptions::new("account-4915112345678").takeover(Takeover::AfterExpiry),
//! )
//! .await?;
//! let state = AuthState::load(Arc::new(store)).await?;
//! // ... run the client with `state` ...
//! state.close().await?; // flush, release the lease
//! # Ok(()) }
//! ```
//!
//! # Many accounts per replica
//!
//! [`PostgresFleet`] serves many accounts from one replica: one flusher whose transactions carry
//! the batches of many accounts (each behind its own lease check, so a fenced account holds up
//! no other), lease renewals batched in one statement, one pool, and ownership events
//! ([`Ownership`], [`PostgresFleet::events`], [`PostgresStore::ownership`]) that tell the
//! application at once when an account's lease is lost or taken over. Every store, on a fleet or
//! not, exports metrics through the [`metrics`](https://docs.rs/metrics) facade
//! ([`telemetry`]).
//!
//! A fleet can bound its memory ([`FleetOptions::memory_budget`]): its accounts then keep their
//! creds and small kinds resident, read sessions and sender keys from the database on first use
//! and evict them least recently used across the replica, never while a commit of theirs is not
//! yet durable ([`PostgresFleet::memory`]).
//!
//! # Features
//! - `tls`: [`connect_pool_tls`], TLS connections through rustls (ring provider). Without it,
//!   any pool built with deadpool-postgres and a TLS connector of your choice works too.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod admin;
mod budget;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod connect;
mod error;
pub mod events;
mod fleet;
mod flusher;
mod health;
mod lease;
mod load;
mod memory;
pub mod metrics;
mod open;
pub mod options;
pub mod pool;
mod queue;
mod reader;
pub mod schema;
mod session;
mod sql;
mod store;
pub mod telemetry;
mod write;

pub use budget::FleetMemory;
pub use error::{DatabaseError, sqlstate};
pub use events::{Ownership, OwnershipEvent};
pub use fleet::{FleetOptions, PostgresFleet};
pub use metrics::StoreMetrics;
pub use options::{PostgresStoreOptions, Takeover, Timings};
pub use pool::connect_pool;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use pool::connect_pool_tls;
pub use reader::PostgresReader;
pub use schema::{LATEST_VERSION, MigrationReport, SchemaName};
pub use store::PostgresStore;

/// The connection pool crate the store uses.
pub use deadpool_postgres;
/// The pool type the store takes (re-exported so callers need not match versions).
pub use deadpool_postgres::Pool;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
/// The TLS library behind the `tls` feature.
pub use rustls;
/// The PostgreSQL client the store uses (re-exported for building pools and admin queries).
pub use tokio_postgres;

/// Migrates the schema `schema` of the database behind `pool` to [`LATEST_VERSION`]
/// (what [`PostgresStore::open`] does unless `auto_migrate` is off). For deployments that
/// migrate in a separate step before rolling out replicas.
pub async fn migrate(pool: &Pool, schema: &SchemaName) -> wa_auth::Result<MigrationReport> {
    let mut client = pool.get().await.map_err(error::no_connection)?;
    schema::migrate(&mut client, schema).await
}

/// Migrates `schema` to `target` (at most [`LATEST_VERSION`]); see [`schema::migrate_to`].
pub async fn migrate_to(
    pool: &Pool,
    schema: &SchemaName,
    target: i32,
) -> wa_auth::Result<MigrationReport> {
    let mut client = pool.get().await.map_err(error::no_connection)?;
    schema::migrate_to(&mut client, schema, target).await
}

/// The current version of `schema` (0 when it was never migrated).
pub async fn schema_version(pool: &Pool, schema: &SchemaName) -> wa_auth::Result<i32> {
    let client = pool.get().await.map_err(error::no_connection)?;
    schema::current_version(&client, schema).await
}
