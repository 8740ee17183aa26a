//! [`StoreMetrics`]: what a store reports for dashboards and alerts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of one store's counters and state, from
/// [`PostgresStore::metrics`](crate::PostgresStore::metrics). Counters are totals since open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreMetrics {
    /// Keys (and creds) waiting to be written, after coalescing: queued plus in the flush
    /// under way. Bounded by the queue capacity.
    pub queued_keys: usize,
    /// Batches committed but not yet flushed.
    pub queued_batches: u64,
    /// Batches committed since open.
    pub committed_batches: u64,
    /// Batches made durable since open.
    pub flushed_batches: u64,
    /// Rows written (upserted or deleted, creds included) by successful flushes.
    pub flushed_keys: u64,
    /// Successful flush transactions.
    pub flushes: u64,
    /// Failed database rounds (flushes and lease renewals) that were retried.
    pub retries: u64,
    /// Successful lease renewals outside flushes (every flush renews the lease too).
    pub lease_renewals: u64,
    /// The last database error, until the next success (a round that hangs shows none until
    /// it times out). Never contains key material.
    pub last_error: Option<String>,
    /// Age of the oldest commit not yet durable (zero when everything is flushed).
    pub lag: Duration,
    /// False once database rounds have gone without success for longer than `unhealthy_after`
    /// (a hung round counts from its start), or the lease may have expired (`lease_remaining`
    /// is zero), or the store is fenced or closed: commits and flushes then fail.
    pub healthy: bool,
    /// True once the lease was lost to another owner: the store refuses everything.
    pub fenced: bool,
    /// The lease epoch (fencing token) this store holds.
    pub epoch: i64,
    /// How long the lease is surely valid: `lease_ttl - lease_safety_margin` after the last
    /// confirmed renewal was sent, less the time since. At zero, writes are refused until a
    /// renewal succeeds.
    pub lease_remaining: Duration,
    /// What the account holds in memory, counted as stored (JSON text and ids): the keys
    /// loaded at open, plus, in a budgeted fleet, its cached sessions and sender keys.
    pub resident_bytes: usize,
    /// Cached sessions and sender keys (budgeted fleet; 0 otherwise), absences included.
    pub cached_keys: usize,
    /// Keys read from the database on first use since open (budgeted fleet).
    pub cache_loads: u64,
    /// Cached keys evicted since open (budgeted fleet).
    pub evictions: u64,
}

/// The counters behind [`StoreMetrics`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub committed_batches: AtomicU64,
    pub flushed_batches: AtomicU64,
    pub flushed_keys: AtomicU64,
    pub flushes: AtomicU64,
    pub retries: AtomicU64,
    pub lease_renewals: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
