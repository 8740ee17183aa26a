//! Metrics exported through the [`metrics`] crate facade: install any recorder (Prometheus,
//! StatsD, OpenTelemetry...) before opening stores or fleets, and these series appear.
//!
//! Every series carries `fleet` (the fleet's name; `standalone` for a
//! [`PostgresStore`](crate::PostgresStore) opened on its own) and `instance`: the account's
//! id for the first [`FleetOptions::account_labels`](crate::FleetOptions::account_labels)
//! accounts of a fleet, `other` for every other account, so the number of series stays
//! bounded however many accounts a replica serves. Per-replica aggregates are the sums over
//! `instance`. Names and units are listed in [`NAMES`] and in `docs/postgres.md`.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::events::Ownership;

/// Every metric: name, unit, what it measures.
pub const NAMES: &[(&str, &str, &str)] = &[
    (
        COMMIT_SECONDS,
        "seconds",
        "histogram: time `commit` took (queue wait included)",
    ),
    (
        DURABLE_SECONDS,
        "seconds",
        "histogram: time `flush` took until everything committed before it was durable",
    ),
    (
        FLUSH_SECONDS,
        "seconds",
        "histogram: one flush transaction, from BEGIN to COMMIT acknowledged",
    ),
    (
        FLUSH_KEYS,
        "count",
        "histogram: rows (keys and creds) written by one flush transaction",
    ),
    (
        FLUSH_ACCOUNTS,
        "count",
        "histogram: accounts whose batches one flush transaction carried",
    ),
    (FLUSHES, "count", "counter: successful flush transactions"),
    (
        FLUSHED_KEYS,
        "count",
        "counter: rows written by successful flushes",
    ),
    (
        RETRIES,
        "count",
        "counter: failed database rounds that were retried",
    ),
    (
        LEASE_RENEWALS,
        "count",
        "counter: leases renewed outside flushes",
    ),
    (
        LEASE_RENEWAL_STATEMENTS,
        "count",
        "counter: renewal statements sent (a fleet renews many leases in one)",
    ),
    (
        LEASE_LOSSES,
        "count",
        "counter: leases lost to another owner (fenced accounts)",
    ),
    (
        OWNERSHIP_CHANGES,
        "count",
        "counter, label `state`: ownership events (serving, lease_lost, unhealthy, taken_over, closed)",
    ),
    (
        QUEUE_KEYS,
        "count",
        "gauge: keys waiting to be flushed (a fleet's sum over its accounts)",
    ),
    (
        RESIDENT_BYTES,
        "bytes",
        "gauge: stored size of the keys and creds held in memory: loaded at open, plus the cached sessions and sender keys of a budgeted fleet",
    ),
    (
        EVICTIONS,
        "count",
        "counter: cached keys evicted to keep a budgeted fleet within its memory budget",
    ),
    (
        CACHE_LOADS,
        "count",
        "counter: keys a budgeted fleet read from the database on first use",
    ),
    (ACCOUNTS, "count", "gauge: accounts open on the fleet"),
];

/// `commit` latency.
pub const COMMIT_SECONDS: &str = "wa_store_postgres_commit_seconds";
/// `flush` (durability barrier) latency.
pub const DURABLE_SECONDS: &str = "wa_store_postgres_durable_seconds";
/// Flush transaction time.
pub const FLUSH_SECONDS: &str = "wa_store_postgres_flush_seconds";
/// Rows per flush transaction.
pub const FLUSH_KEYS: &str = "wa_store_postgres_flush_keys";
/// Accounts per flush transaction.
pub const FLUSH_ACCOUNTS: &str = "wa_store_postgres_flush_accounts";
/// Successful flush transactions.
pub const FLUSHES: &str = "wa_store_postgres_flushes_total";
/// Rows written by successful flushes.
pub const FLUSHED_KEYS: &str = "wa_store_postgres_flushed_keys_total";
/// Retried rounds.
pub const RETRIES: &str = "wa_store_postgres_retries_total";
/// Leases renewed outside flushes.
pub const LEASE_RENEWALS: &str = "wa_store_postgres_lease_renewals_total";
/// Renewal statements.
pub const LEASE_RENEWAL_STATEMENTS: &str = "wa_store_postgres_lease_renewal_statements_total";
/// Leases lost to another owner.
pub const LEASE_LOSSES: &str = "wa_store_postgres_lease_losses_total";
/// Ownership events, by state.
pub const OWNERSHIP_CHANGES: &str = "wa_store_postgres_ownership_changes_total";
/// Keys waiting.
pub const QUEUE_KEYS: &str = "wa_store_postgres_queue_keys";
/// Bytes held in memory.
pub const RESIDENT_BYTES: &str = "wa_store_postgres_resident_bytes";
/// Cached keys evicted.
pub const EVICTIONS: &str = "wa_store_postgres_evictions_total";
/// Keys read on first use.
pub const CACHE_LOADS: &str = "wa_store_postgres_cache_loads_total";
/// Accounts open.
pub const ACCOUNTS: &str = "wa_store_postgres_accounts";

/// The handles of one label set.
#[derive(Debug)]
pub(crate) struct Telemetry {
    labels: Vec<metrics::Label>,
    pub commit_seconds: Histogram,
    pub durable_seconds: Histogram,
    pub flush_seconds: Histogram,
    pub flush_keys: Histogram,
    pub flush_accounts: Histogram,
    pub flushes: Counter,
    pub flushed_keys: Counter,
    pub retries: Counter,
    pub lease_renewals: Counter,
    pub lease_renewal_statements: Counter,
    pub lease_losses: Counter,
    pub queue_keys: Gauge,
    pub resident_bytes: Gauge,
    pub evictions: Counter,
    pub cache_loads: Counter,
    pub accounts: Gauge,
}

impl Telemetry {
    /// Handles for `fleet` and `instance` (an account id, or `other`), from the recorder
    /// installed now.
    pub(crate) fn new(fleet: &str, instance: &str) -> Self {
        describe();
        let labels = vec![
            metrics::Label::new("fleet", fleet.to_owned()),
            metrics::Label::new("instance", instance.to_owned()),
        ];
        let l = || labels.clone();
        Self {
            commit_seconds: metrics::histogram!(COMMIT_SECONDS, l()),
            durable_seconds: metrics::histogram!(DURABLE_SECONDS, l()),
            flush_seconds: metrics::histogram!(FLUSH_SECONDS, l()),
            flush_keys: metrics::histogram!(FLUSH_KEYS, l()),
            flush_accounts: metrics::histogram!(FLUSH_ACCOUNTS, l()),
            flushes: metrics::counter!(FLUSHES, l()),
            flushed_keys: metrics::counter!(FLUSHED_KEYS, l()),
            retries: metrics::counter!(RETRIES, l()),
            lease_renewals: metrics::counter!(LEASE_RENEWALS, l()),
            lease_renewal_statements: metrics::counter!(LEASE_RENEWAL_STATEMENTS, l()),
            lease_losses: metrics::counter!(LEASE_LOSSES, l()),
            queue_keys: metrics::gauge!(QUEUE_KEYS, l()),
            resident_bytes: metrics::gauge!(RESIDENT_BYTES, l()),
            evictions: metrics::counter!(EVICTIONS, l()),
            cache_loads: metrics::counter!(CACHE_LOADS, l()),
            accounts: metrics::gauge!(ACCOUNTS, l()),
            labels,
        }
    }

    /// Records a successful flush transaction.
    pub(crate) fn flushed(&self, took: Duration, keys: usize, accounts: usize) {
        self.flush_seconds.record(took.as_secs_f64());
        self.flush_keys.record(keys as f64);
        self.flush_accounts.record(accounts as f64);
        self.flushes.increment(1);
        self.flushed_keys.increment(keys as u64);
    }

    /// Counts an ownership event.
    pub(crate) fn ownership_changed(&self, state: &Ownership) {
        let name = match state {
            Ownership::Serving => "serving",
            Ownership::LeaseLost { .. } => "lease_lost",
            Ownership::Unhealthy { .. } => "unhealthy",
            Ownership::TakenOver { .. } => "taken_over",
            Ownership::Closed => "closed",
        };
        let mut labels = self.labels.clone();
        labels.push(metrics::Label::new("state", name));
        metrics::counter!(OWNERSHIP_CHANGES, labels).increment(1);
        if matches!(state, Ownership::TakenOver { .. }) {
            self.lease_losses.increment(1);
        }
    }
}

/// Describes every metric to the recorder (units and help texts).
fn describe() {
    for (name, unit, help) in NAMES {
        let unit = Unit::from_string(unit);
        match help.split(':').next() {
            Some("histogram") => {
                metrics::describe_histogram!(*name, unit.unwrap_or(Unit::Count), *help)
            }
            Some("gauge") => metrics::describe_gauge!(*name, unit.unwrap_or(Unit::Count), *help),
            _ => metrics::describe_counter!(*name, unit.unwrap_or(Unit::Count), *help),
        }
    }
}
