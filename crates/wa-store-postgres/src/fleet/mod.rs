//! [`PostgresFleet`]: one replica serving many accounts with one flusher, one pool, batched
//! lease renewals, one event channel and one set of metrics.
//!
//! Each account opened with [`PostgresFleet::open_account`] is a [`PostgresStore`] like one
//! opened on its own (same lease, same memory image, same write-behind queue, same errors);
//! only its flusher is the fleet's: one task whose flush transactions (up to `flush_rounds` in
//! flight at once, over disjoint accounts) each carry the queued batches of many accounts, each
//! guarded by its own lease check inside that transaction ([`round`]), and which renews every
//! lease due in one statement.

mod flusher;
pub(crate) mod round;
pub(crate) mod sql;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use deadpool_postgres::Pool;
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio::task::JoinHandle;
use tracing::info;
use wa_auth::{AuthError, KeyKind, Result};

use crate::budget::{Budget, Cache, FleetMemory};
use crate::error::{backend_msg, pool_error};
use crate::events::{self, OwnershipEvent};
use crate::open::{self, Setup};
use crate::options::{PostgresStoreOptions, Timings};
use crate::schema;
use crate::session::Limits;
use crate::sql::Statements;
use crate::store::{self, Parts, PostgresStore, Shared};
use crate::telemetry::Telemetry;
use sql::FleetStatements;

/// How a [`PostgresFleet`] runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FleetOptions {
    /// The fleet's name: the `fleet` label of its metrics. Default `default`.
    pub name: String,
    /// The options every account is opened with (owner id, schema, lease, flush and time
    /// bounds); their `instance_id` is replaced by the account's. `flush_interval` and
    /// `flush_batch_keys` apply per account, as for a store on its own.
    pub account: PostgresStoreOptions,
    /// The most rows one flush transaction carries, over all its accounts; accounts beyond it
    /// go in the next transaction, at once. Default 16,384.
    pub fleet_batch_keys: usize,
    /// How many flush rounds (each a transaction on a pooled connection of its own, over
    /// accounts no other round carries) may be in flight at once. None (the default): half
    /// the pool's connections, at least one and at most four; the other half is left to
    /// accounts opening and to reads. More rounds at once mostly cut the same work into more
    /// transactions, each with its own WAL flush: on the benchmark's 2-core server, 2 and 4
    /// rounds had the lowest tail latency and the highest throughput, 8 did worse on both
    /// (`docs/benchmarks.md`).
    pub flush_rounds: Option<usize>,
    /// How many accounts (the first opened) get their own `instance` label on the metrics;
    /// the others share `instance="other"`. Default 0: per-replica aggregates only.
    pub account_labels: usize,
    /// Events kept for a slow [`PostgresFleet::events`] receiver before it lags. Default
    /// 4,096.
    pub event_capacity: usize,
    /// The replica's memory budget in bytes (budgeted mode), or `None` (the default):
    /// load-all, every key of every account in memory as for a store on its own.
    ///
    /// In budgeted mode each account keeps its creds and small kinds resident (loaded at
    /// open); its sessions and sender keys are read from the database on first use and
    /// evicted least recently used (over all the fleet's accounts) whenever the resident
    /// bytes exceed the budget — never one written by a commit that is not yet durable. Bytes
    /// are counted as stored (JSON text and ids, plus a fixed overhead per cached key); see
    /// [`PostgresFleet::memory`] and `docs/postgres.md` for the cost of an account in each
    /// mode. Reads of a key not in memory wait for one database query.
    pub memory_budget: Option<usize>,
    /// The kinds a budgeted fleet reads on first use and may evict; the others stay resident.
    /// Default: sessions and sender keys (about nine tenths of a realistic account's bytes;
    /// every other kind is small, see `docs/postgres.md`). Ignored in load-all mode.
    pub cached_kinds: Vec<KeyKind>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl FleetOptions {
    /// Default options; accounts get [`PostgresStoreOptions`]' defaults.
    pub fn new() -> Self {
        Self {
            name: "default".to_owned(),
            account: PostgresStoreOptions::new("fleet"),
            fleet_batch_keys: 16_384,
            flush_rounds: None,
            account_labels: 0,
            event_capacity: 4096,
            memory_budget: None,
            cached_kinds: crate::budget::default_cached_kinds(),
        }
    }

    /// Sets [`name`](Self::name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets [`account`](Self::account).
    pub fn account(mut self, account: PostgresStoreOptions) -> Self {
        self.account = account;
        self
    }

    /// Sets [`fleet_batch_keys`](Self::fleet_batch_keys).
    pub fn fleet_batch_keys(mut self, keys: usize) -> Self {
        self.fleet_batch_keys = keys;
        self
    }

    /// Sets [`flush_rounds`](Self::flush_rounds).
    pub fn flush_rounds(mut self, rounds: usize) -> Self {
        self.flush_rounds = Some(rounds);
        self
    }

    /// Sets [`account_labels`](Self::account_labels).
    pub fn account_labels(mut self, accounts: usize) -> Self {
        self.account_labels = accounts;
        self
    }

    /// Sets [`memory_budget`](Self::memory_budget) to `bytes` (budgeted mode).
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// Sets [`cached_kinds`](Self::cached_kinds).
    pub fn cached_kinds(mut self, kinds: impl IntoIterator<Item = KeyKind>) -> Self {
        self.cached_kinds = kinds.into_iter().collect();
        self
    }

    /// Sets [`event_capacity`](Self::event_capacity).
    pub fn event_capacity(mut self, events: usize) -> Self {
        self.event_capacity = events;
        self
    }

    /// The options of account `instance_id`.
    fn for_account(&self, instance_id: &str) -> PostgresStoreOptions {
        let mut options = self.account.clone();
        options.instance_id = instance_id.to_owned();
        // The fleet migrated (or checked) the schema when it opened.
        options.auto_migrate = false;
        options
    }

    fn validate(&self) -> Result<()> {
        if self.fleet_batch_keys == 0 {
            return Err(AuthError::invalid(
                "option fleet_batch_keys",
                "must be more than zero",
            ));
        }
        if self.flush_rounds == Some(0) {
            return Err(AuthError::invalid(
                "option flush_rounds",
                "must be more than zero",
            ));
        }
        self.account.validate()
    }
}

/// The most flush rounds in flight by default (see [`FleetOptions::flush_rounds`]).
const DEFAULT_MAX_ROUNDS: usize = 4;

/// What the fleet handle, its flusher, its monitor and its accounts share.
pub(crate) struct FleetShared {
    pub options: FleetOptions,
    pub timings: Timings,
    pub limits: Limits,
    pub statements: Statements,
    pub fleet_statements: FleetStatements,
    pub pool: Pool,
    /// How many flush rounds may be in flight at once (`flush_rounds` or its default).
    pub flush_rounds: usize,
    /// Wakes the flusher; every account's commits and flushes notify it.
    pub wake: Arc<Notify>,
    /// Wakes the ownership monitor after a round.
    pub monitor_wake: Arc<Notify>,
    /// Open accounts by instance id.
    pub accounts: Mutex<HashMap<String, Arc<Shared>>>,
    /// Accounts opened since the flusher last looked.
    pub added: Mutex<Vec<Arc<Shared>>>,
    pub events: broadcast::Sender<OwnershipEvent>,
    /// `close` was called (or the fleet dropped): no new account; end once all are released.
    pub closing: AtomicBool,
    /// Aggregates (`instance="other"`).
    pub telemetry: Arc<Telemetry>,
    /// The memory budget, in budgeted mode.
    pub budget: Option<Arc<Budget>>,
    /// Accounts given their own metric labels so far.
    labeled: AtomicUsize,
    /// Bounds the accounts opening at once to half the pool, so that opens waiting for
    /// leases never starve the flusher (or each other) of connections.
    opening: Semaphore,
}

impl FleetShared {
    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The metric handles of a new account.
    fn telemetry_for(&self, instance_id: &str) -> Arc<Telemetry> {
        let limit = self.options.account_labels;
        let labeled = self
            .labeled
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        if labeled {
            Arc::new(Telemetry::new(&self.options.name, instance_id))
        } else {
            self.telemetry.clone()
        }
    }

    /// Every open account.
    pub(crate) fn snapshot(&self) -> Vec<Arc<Shared>> {
        self.accounts.lock().values().cloned().collect()
    }
}

/// One replica's handle on many accounts (see the [crate docs](crate) and
/// `docs/postgres.md`): open it once per process, then open each account with
/// [`PostgresFleet::open_account`].
///
/// ```no_run
/// use std::sync::Arc;
/// use wa_auth::AuthState;
/// use wa_store_postgres::{FleetOptions, Ownership, PostgresFleet, PostgresStoreOptions};
///
/// # async fn run(pool: wa_store_postgres::Pool) -> wa_auth::Result<()> {
/// let fleet = PostgresFleet::open(pool, FleetOptions::new().name("gateway-7")).await?;
/// let mut events = fleet.events();
/// let store = Arc::new(fleet.open_account("account-4915112345678").await?);
/// let state = AuthState::load(store.clone()).await?;
/// tokio::spawn(async move {
///     while let Ok(event) = events.recv().await {
///         if !event.ownership.is_serving() {
///             // drop the WhatsApp connection of event.instance_id
///         }
///     }
/// });
/// // ... run the clients ...
/// fleet.close().await?; // flushes and releases every account
/// # Ok(()) }
/// ```
pub struct PostgresFleet {
    shared: Arc<FleetShared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for PostgresFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresFleet")
            .field("name", &self.shared.options.name)
            .field("owner_id", &self.shared.options.account.owner_id)
            .field("accounts", &self.shared.accounts.lock().len())
            .finish_non_exhaustive()
    }
}

impl PostgresFleet {
    /// Opens the fleet: migrates (or checks) the schema once for all its accounts, and starts
    /// its flusher and ownership monitor. Needs a tokio runtime.
    pub async fn open(pool: Pool, options: FleetOptions) -> Result<Self> {
        options.validate()?;
        let schema = &options.account.schema;
        let mut client = pool.get().await.map_err(|e| backend_msg(pool_error(e)))?;
        if options.account.auto_migrate {
            schema::migrate(&mut client, schema).await?;
        } else {
            schema::check_version(&client, schema).await?;
        }
        drop(client);
        let timings = options.account.timings();
        let half_pool = (pool.status().max_size / 2).max(1);
        let opening = Semaphore::new(half_pool);
        let telemetry = Arc::new(Telemetry::new(&options.name, "other"));
        let budget = options.memory_budget.map(|limit| {
            let kinds = options.cached_kinds.clone();
            Arc::new(Budget::new(
                limit,
                kinds,
                pool.status().max_size,
                telemetry.clone(),
            ))
        });
        let shared = Arc::new(FleetShared {
            flush_rounds: options
                .flush_rounds
                .unwrap_or(half_pool.min(DEFAULT_MAX_ROUNDS)),
            timings,
            limits: Limits::new(&timings),
            statements: Statements::new(schema),
            fleet_statements: FleetStatements::new(schema),
            pool,
            wake: Arc::new(Notify::new()),
            monitor_wake: Arc::new(Notify::new()),
            accounts: Mutex::new(HashMap::new()),
            added: Mutex::new(Vec::new()),
            events: events::channel(options.event_capacity),
            closing: AtomicBool::new(false),
            telemetry,
            budget,
            labeled: AtomicUsize::new(0),
            opening,
            options,
        });
        let flusher = tokio::spawn(flusher::supervise(shared.clone()));
        let monitor = {
            let (a, b) = (shared.clone(), shared.clone());
            let wake = shared.monitor_wake.clone();
            tokio::spawn(events::monitor(
                move || a.snapshot(),
                wake,
                move || b.is_closing() && b.accounts.lock().is_empty(),
            ))
        };
        let mut workers = vec![flusher, monitor];
        if let Some(budget) = &shared.budget {
            workers.push(tokio::spawn(Budget::trimmer(Arc::downgrade(budget))));
        }
        info!(fleet = %shared.options.name, owner = %shared.options.account.owner_id, budget = ?shared.options.memory_budget, "opened PostgreSQL fleet");
        Ok(Self {
            shared,
            workers: Mutex::new(workers),
        })
    }

    /// Opens account `instance_id` on this fleet: takes its lease
    /// ([`AuthError::AlreadyOwned`] when another owner, or this fleet, holds it), loads every
    /// key, and hands its writes to the fleet's flusher. The store behaves as one opened with
    /// [`PostgresStore::open`]; closing or dropping it flushes and releases the account alone.
    /// Calls may run concurrently (a cold start opens accounts many at a time); at most half the
    /// pool's connections open accounts at once, the others wait their turn, so the flusher
    /// always finds a connection.
    pub async fn open_account(&self, instance_id: &str) -> Result<PostgresStore> {
        let fleet = &self.shared;
        if fleet.is_closing() {
            return Err(AuthError::Closed);
        }
        if fleet.accounts.lock().contains_key(instance_id) {
            return Err(AuthError::AlreadyOwned {
                resource: format!("PostgreSQL instance {instance_id}"),
                holder: Some(format!("this fleet ({})", fleet.options.name)),
            });
        }
        let options = fleet.options.for_account(instance_id);
        options.validate()?;
        let started = Instant::now();
        let setup = Setup {
            pool: &fleet.pool,
            options: &options,
            timings: &fleet.timings,
            statements: &fleet.statements,
            limits: &fleet.limits,
            skip_kinds: fleet
                .budget
                .as_ref()
                .map(|b| b.kind_names())
                .unwrap_or_default(),
        };
        let mut opened = {
            let _turn = fleet
                .opening
                .acquire()
                .await
                .map_err(|_| AuthError::Closed)?;
            open::open(&setup).await?
        };
        if let Some(budget) = &fleet.budget {
            let pinned = opened.memory.stored_bytes();
            opened.memory.cache = Some(Cache::new(budget.clone(), pinned));
        }
        let keys = opened.memory.key_count();
        let parts = Parts {
            telemetry: fleet.telemetry_for(instance_id),
            options,
            timings: fleet.timings,
            limits: fleet.limits.clone(),
            statements: fleet.statements.clone(),
            pool: fleet.pool.clone(),
            wake: fleet.wake.clone(),
            events: Some(fleet.events.clone()),
            budget: fleet.budget.clone(),
        };
        let shared = Arc::new(Shared::new(parts, opened));
        if let Some(budget) = &fleet.budget {
            budget.register(&shared);
        }
        self.register(shared.clone());
        tracing::debug!(
            instance = %instance_id,
            epoch = shared.epoch,
            keys,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "opened account on the fleet"
        );
        Ok(PostgresStore::of_fleet(shared))
    }

    /// Hands a newly opened account to the flusher.
    fn register(&self, shared: Arc<Shared>) {
        let fleet = &self.shared;
        fleet
            .accounts
            .lock()
            .insert(shared.options.instance_id.clone(), shared.clone());
        fleet.added.lock().push(shared.clone());
        // Closed meanwhile: flush and release this one too.
        if fleet.is_closing() {
            shared.begin_close();
        }
        fleet.wake.notify_one();
        fleet.monitor_wake.notify_one();
    }

    /// Every account's ownership changes, as they happen (see [`Ownership`](crate::Ownership)).
    /// A receiver that falls more than `event_capacity` events behind gets
    /// `RecvError::Lagged` and should then read each store's
    /// [`ownership`](PostgresStore::ownership).
    pub fn events(&self) -> broadcast::Receiver<OwnershipEvent> {
        self.shared.events.subscribe()
    }

    /// The instance ids of the accounts open on this fleet, sorted.
    pub fn accounts(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.shared.accounts.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The owner id the fleet's leases carry.
    pub fn owner_id(&self) -> &str {
        &self.shared.options.account.owner_id
    }

    /// The fleet's options.
    pub fn options(&self) -> &FleetOptions {
        &self.shared.options
    }

    /// What the fleet's open accounts hold in memory (see
    /// [`memory_budget`](FleetOptions::memory_budget)); computed by walking every account.
    pub fn memory(&self) -> FleetMemory {
        match &self.shared.budget {
            Some(budget) => budget.usage(),
            None => {
                let pinned_bytes = self.shared.snapshot().iter().map(|a| a.loaded_bytes).sum();
                FleetMemory {
                    pinned_bytes,
                    resident_bytes: pinned_bytes,
                    ..FleetMemory::default()
                }
            }
        }
    }

    /// Flushes every account, releases every lease and stops the fleet; afterwards
    /// `open_account` and every store of the fleet return [`AuthError::Closed`]. Returns the
    /// first error of an account whose last batches could not be written (as
    /// [`Persistence::close`](wa_auth::Persistence::close) on a store does); accounts fenced earlier are not an error here.
    pub async fn close(&self) -> Result<()> {
        let fleet = &self.shared;
        fleet.closing.store(true, Ordering::Release);
        let accounts = fleet.snapshot();
        for account in &accounts {
            account.begin_close();
        }
        fleet.wake.notify_one();
        let mut first_error = None;
        for account in &accounts {
            match store::wait_for(account, |status, _| status.stopped).await {
                Ok(()) | Err(AuthError::OwnershipLost { .. }) => {}
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        for account in &accounts {
            account.release_cache();
        }
        if let Some(budget) = &fleet.budget {
            budget.stop();
        }
        fleet.wake.notify_one();
        fleet.monitor_wake.notify_one();
        let workers = std::mem::take(&mut *self.workers.lock());
        for worker in workers {
            let _ = worker.await;
        }
        info!(fleet = %fleet.options.name, accounts = accounts.len(), "closed PostgreSQL fleet");
        Ok(())
    }
}

impl Drop for PostgresFleet {
    fn drop(&mut self) {
        let fleet = &self.shared;
        if !fleet.closing.swap(true, Ordering::AcqRel) {
            for account in fleet.snapshot() {
                account.begin_close();
            }
            fleet.wake.notify_one();
        }
        if let Some(budget) = &fleet.budget {
            budget.stop();
        }
    }
}
