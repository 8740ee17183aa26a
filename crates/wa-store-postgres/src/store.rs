//! [`PostgresStore`]: the [`Persistence`] implementation. Reads are served from memory; commits
//! update memory at once and queue the batch for the [flusher](crate::flusher).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::Pool;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info};
use wa_auth::{
    AuthCreds, AuthError, Capabilities, Durability, KeyId, KeyKind, KeyValue, Persistence, Result,
    WriteBatch,
};

use crate::budget::{self, Budget};
use crate::error::{BACKEND, backend_msg};
use crate::events::{self, Ownership, OwnershipEvent};
use crate::flusher;
use crate::health::{self, LeaseClock, RoundHealth};
use crate::memory::Memory;
use crate::metrics::{Counters, StoreMetrics};
use crate::open::{self, Opened, Setup};
use crate::options::{PostgresStoreOptions, Timings};
use crate::queue::{Encoded, Pending};
use crate::session::Limits;
use crate::sql::Statements;
use crate::telemetry::Telemetry;

/// The flusher's state as the callers see it.
#[derive(Clone, Debug)]
pub(crate) struct Status {
    /// Every batch with a sequence number up to this one is in the database.
    pub flushed_seq: u64,
    /// The lease as this replica knows it: writes are refused once it may have expired.
    pub lease: LeaseClock,
    /// Database rounds, for the `unhealthy_after` rule.
    pub health: RoundHealth,
    /// Why the lease was lost, once it was.
    pub fenced: Option<String>,
    /// The flusher task ended abnormally (a bug): nothing more can be written.
    pub crashed: Option<String>,
    /// The flusher has ended (closed and released, or fenced).
    pub stopped: bool,
}

/// The queue's bookkeeping, under one lock with the pending changes.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Batches committed and not yet taken by the flusher.
    pub pending: Pending,
    /// Keys in the flush under way (or waiting to be retried).
    pub in_flight_keys: usize,
    /// When the oldest batch of the flush under way was committed.
    pub in_flight_since: Option<Instant>,
    /// The sequence number of the newest commit.
    pub last_seq: u64,
    /// A caller waits in `flush`: write now.
    pub flush_requested: bool,
    /// `close` was called or the store dropped: flush, release, stop.
    pub closing: bool,
}

/// What the store handle and its flusher share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub options: PostgresStoreOptions,
    /// The time bounds in effect (the options' with defaults filled in).
    pub timings: Timings,
    /// How every transaction of the store begins (its server-side time limits).
    pub limits: Limits,
    pub statements: Statements,
    pub pool: Pool,
    pub epoch: i64,
    pub memory: RwLock<Memory>,
    pub queue: Mutex<Queue>,
    /// Wakes the flusher (a fleet's flusher is shared by all its accounts).
    pub wake: Arc<Notify>,
    /// Wakes commits waiting for room in the queue.
    pub space: Notify,
    pub status: watch::Sender<Status>,
    pub counters: Counters,
    /// What the store can do, as its ownership events report it.
    pub ownership: watch::Sender<Ownership>,
    /// The fleet's event channel, for an account of a fleet.
    pub events: Option<broadcast::Sender<OwnershipEvent>>,
    pub telemetry: Arc<Telemetry>,
    /// The stored size of what was loaded at open.
    pub loaded_bytes: usize,
    /// The fleet's memory budget, in budgeted mode.
    pub budget: Option<Arc<Budget>>,
}

/// What a store is built from besides what `open` loaded.
pub(crate) struct Parts {
    pub options: PostgresStoreOptions,
    pub timings: Timings,
    pub limits: Limits,
    pub statements: Statements,
    pub pool: Pool,
    pub wake: Arc<Notify>,
    pub events: Option<broadcast::Sender<OwnershipEvent>>,
    pub telemetry: Arc<Telemetry>,
    pub budget: Option<Arc<Budget>>,
}

impl Shared {
    /// The state of a store that `open` just opened.
    pub(crate) fn new(parts: Parts, opened: Opened) -> Self {
        let (status, _) = watch::channel(Status {
            flushed_seq: 0,
            lease: opened.lease,
            health: RoundHealth::default(),
            fenced: None,
            crashed: None,
            stopped: false,
        });
        let loaded_bytes = opened.memory.stored_bytes();
        Self {
            options: parts.options,
            timings: parts.timings,
            limits: parts.limits,
            statements: parts.statements,
            pool: parts.pool,
            epoch: opened.epoch,
            memory: RwLock::new(opened.memory),
            queue: Mutex::new(Queue::default()),
            wake: parts.wake,
            space: Notify::new(),
            status,
            counters: Counters::default(),
            ownership: watch::channel(Ownership::Serving).0,
            events: parts.events,
            telemetry: parts.telemetry,
            loaded_bytes,
            budget: parts.budget,
        }
    }

    /// Evicts from the fleet's cached keys when over budget (budgeted mode).
    pub(crate) fn trim(&self) {
        if let Some(budget) = &self.budget {
            budget.trim();
        }
    }

    /// What the account holds in memory: loaded at open, plus its cached keys.
    pub(crate) fn resident_bytes(&self) -> usize {
        let cached = self.memory.read().cache.as_ref().map_or(0, |c| c.bytes());
        self.loaded_bytes + cached
    }

    /// The account is closed: its cached keys leave memory and the budget.
    pub(crate) fn release_cache(&self) {
        if let Some(cache) = &mut self.memory.write().cache {
            cache.clear();
        }
    }

    fn resource(&self) -> String {
        format!("PostgreSQL instance {}", self.options.instance_id)
    }

    /// The error every operation returns once the store cannot be used, if any.
    fn refusal(&self, status: &Status) -> Option<AuthError> {
        if let Some(reason) = &status.fenced {
            return Some(AuthError::OwnershipLost {
                resource: self.resource(),
                reason: reason.clone(),
            });
        }
        if let Some(reason) = &status.crashed {
            return Some(backend_msg(format!(
                "the store's flusher stopped unexpectedly ({reason}); reopen the store"
            )));
        }
        if status.stopped {
            return Some(AuthError::Closed);
        }
        None
    }

    /// The `Unhealthy` error, when writes may not be acknowledged at `now`: the lease may have
    /// expired, or rounds have gone without success for `unhealthy_after`.
    fn unhealthy(&self, status: &Status, now: Instant) -> Option<AuthError> {
        let unhealthy_after = self.timings.unhealthy_after;
        health::write_refusal(&status.lease, &status.health, unhealthy_after, now).map(|reason| {
            AuthError::Unhealthy {
                backend: BACKEND,
                reason,
            }
        })
    }

    /// When [`Shared::unhealthy`] starts refusing, unless a round succeeds first.
    pub(crate) fn unhealthy_deadline(&self, status: &Status) -> Instant {
        health::refusal_deadline(&status.lease, &status.health, self.timings.unhealthy_after)
    }

    fn check_readable(&self) -> Result<()> {
        let status = self.status.borrow();
        match self.refusal(&status) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn check_writable(&self) -> Result<()> {
        let status = self.status.borrow();
        let now = Instant::now();
        if let Some(err) = self
            .refusal(&status)
            .or_else(|| self.unhealthy(&status, now))
        {
            return Err(err);
        }
        Ok(())
    }

    /// Asks the flusher to flush, release and stop.
    pub(crate) fn begin_close(&self) -> bool {
        let mut queue = self.queue.lock();
        let first = !queue.closing;
        queue.closing = true;
        drop(queue);
        self.wake.notify_one();
        first
    }
}

/// The PostgreSQL store of one instance (account): holds the instance's lease, serves reads
/// from memory, and writes commits behind (see the [crate docs](crate)).
///
/// Open it with [`PostgresStore::open`]; end it with [`Persistence::close`], which flushes
/// and releases the lease (dropping the store does the same in the background, best effort).
pub struct PostgresStore {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("instance_id", &self.shared.options.instance_id)
            .field("owner_id", &self.shared.options.owner_id)
            .field("epoch", &self.shared.epoch)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Opens instance `options.instance_id`: migrates (or checks) the schema, takes the lease
    /// ([`AuthError::AlreadyOwned`] when another owner holds it), loads every key into memory
    /// in one streamed query, and starts the background flusher. Needs a tokio runtime.
    pub async fn open(pool: Pool, options: PostgresStoreOptions) -> Result<Self> {
        options.validate()?;
        let started = Instant::now();
        let timings = options.timings();
        let limits = Limits::new(&timings);
        let statements = Statements::new(&options.schema);
        let setup = Setup {
            pool: &pool,
            options: &options,
            timings: &timings,
            statements: &statements,
            limits: &limits,
            skip_kinds: Vec::new(),
        };
        let opened = open::open(&setup).await?;
        info!(
            instance = %options.instance_id,
            owner = %options.owner_id,
            epoch = opened.epoch,
            keys = opened.memory.key_count(),
            has_creds = opened.memory.creds.is_some(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "opened PostgreSQL store"
        );
        let telemetry = Arc::new(Telemetry::new("standalone", "other"));
        let parts = Parts {
            options,
            timings,
            limits,
            statements,
            pool,
            wake: Arc::new(Notify::new()),
            events: None,
            telemetry,
            budget: None,
        };
        let shared = Arc::new(Shared::new(parts, opened));
        tokio::spawn(events::watch_store(shared.clone()));
        let worker = tokio::spawn(flusher::supervise(shared.clone()));
        Ok(Self {
            shared,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// A store of a fleet, whose flusher writes it.
    pub(crate) fn of_fleet(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            worker: Mutex::new(None),
        }
    }

    /// The store's [`Ownership`], kept current: `changed().await` on the receiver wakes as soon
    /// as the lease is lost or taken over, or the store turns unhealthy or healthy again.
    pub fn ownership(&self) -> watch::Receiver<Ownership> {
        self.shared.ownership.subscribe()
    }

    /// The instance (account) id.
    pub fn instance_id(&self) -> &str {
        &self.shared.options.instance_id
    }

    /// This store's owner id, as recorded in the lease.
    pub fn owner_id(&self) -> &str {
        &self.shared.options.owner_id
    }

    /// The lease epoch (fencing token) this store holds.
    pub fn epoch(&self) -> i64 {
        self.shared.epoch
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &PostgresStoreOptions {
        &self.shared.options
    }

    /// The time bounds in effect: the options' values, with the defaults derived from
    /// `lease_ttl` filled in.
    pub fn timings(&self) -> Timings {
        self.shared.timings
    }

    /// Whether the store accepts commits: not fenced, not closed, its lease surely valid (see
    /// [`PostgresStoreOptions::lease_safety_margin`]), and database rounds not going without
    /// success for longer than `unhealthy_after`.
    pub fn is_healthy(&self) -> bool {
        self.shared.check_writable().is_ok()
    }

    /// Counters and state for metrics.
    pub fn metrics(&self) -> StoreMetrics {
        let shared = &self.shared;
        let (queued_keys, last_seq, oldest) = {
            let queue = shared.queue.lock();
            let oldest = match (queue.in_flight_since, queue.pending.since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (
                queue.pending.len() + queue.in_flight_keys,
                queue.last_seq,
                oldest,
            )
        };
        let status = shared.status.borrow().clone();
        let now = Instant::now();
        let counters = &shared.counters;
        let (cached_keys, cache_loads, evictions) = match &shared.memory.read().cache {
            Some(cache) => (cache.len(), cache.loads, cache.evictions),
            None => (0, 0, 0),
        };
        StoreMetrics {
            resident_bytes: shared.resident_bytes(),
            cached_keys,
            cache_loads,
            evictions,
            queued_keys,
            queued_batches: last_seq.saturating_sub(status.flushed_seq),
            committed_batches: Counters::get(&counters.committed_batches),
            flushed_batches: Counters::get(&counters.flushed_batches),
            flushed_keys: Counters::get(&counters.flushed_keys),
            flushes: Counters::get(&counters.flushes),
            retries: Counters::get(&counters.retries),
            lease_renewals: Counters::get(&counters.lease_renewals),
            last_error: status.health.last_error().map(str::to_owned),
            lag: oldest.map_or(Duration::ZERO, |t| t.elapsed()),
            healthy: shared.refusal(&status).is_none() && shared.unhealthy(&status, now).is_none(),
            fenced: status.fenced.is_some(),
            epoch: shared.epoch,
            lease_remaining: status.lease.remaining(now),
        }
    }

    async fn wait_for_room(&self, keys: usize, encoded: Encoded, batch: WriteBatch) -> Result<()> {
        let shared = &self.shared;
        let capacity = shared.options.queue_capacity;
        loop {
            let room = shared.space.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut queue = shared.queue.lock();
                if queue.closing {
                    return Err(AuthError::Closed);
                }
                shared.check_writable()?;
                let used = queue.pending.len() + queue.in_flight_keys;
                if used == 0 || used + keys <= capacity {
                    enqueue(shared, &mut queue, encoded, batch);
                    return Ok(());
                }
            }
            shared.wake.notify_one();
            // Re-check health now and then: a full queue waits until the store is unhealthy.
            let _ = tokio::time::timeout(Duration::from_millis(100), room).await;
        }
    }
}

/// Wakes the flusher and waits until `done` holds. Fails when the store is fenced or stops
/// first, or is unhealthy (see [`Shared::unhealthy`]): at once when it turns unhealthy
/// during the wait; when it already was at the call, after one more round (the database
/// may be back, a renewal may succeed).
pub(crate) async fn wait_for(
    shared: &Shared,
    done: impl Fn(&Status, Instant) -> bool,
) -> Result<()> {
    let mut status = shared.status.subscribe();
    let (first_round, unhealthy_at_call) = {
        let current = status.borrow();
        let unhealthy = shared.unhealthy(&current, Instant::now()).is_some();
        (current.health.rounds(), unhealthy)
    };
    // Also cuts a retry backoff short: a caller waits.
    shared.wake.notify_one();
    loop {
        let deadline = {
            let current = status.borrow_and_update();
            let now = Instant::now();
            if let Some(reason) = &current.fenced {
                return Err(AuthError::OwnershipLost {
                    resource: shared.resource(),
                    reason: reason.clone(),
                });
            }
            if done(&current, now) && current.crashed.is_none() {
                return Ok(());
            }
            if let Some(err) = shared.refusal(&current) {
                return Err(err);
            }
            match shared.unhealthy(&current, now) {
                Some(err) if !unhealthy_at_call || current.health.rounds() > first_round => {
                    return Err(err);
                }
                // Wait for the next round's outcome.
                Some(_) => None,
                None => Some(shared.unhealthy_deadline(&current)),
            }
        };
        wait_for_change(&mut status, deadline).await;
    }
}

/// Applies the batch to memory and queues it, under the queue lock (so memory and queue see
/// commits in the same order).
fn enqueue(shared: &Shared, queue: &mut Queue, encoded: Encoded, batch: WriteBatch) {
    let was_empty = queue.pending.is_empty();
    queue.last_seq += 1;
    let seq = queue.last_seq;
    let (creds, keys) = batch.into_parts();
    shared.memory.write().apply(creds, keys, seq, &encoded);
    queue.pending.push(encoded, seq, Instant::now());
    Counters::add(&shared.counters.committed_batches, 1);
    // The flusher needs waking for the first batch (it starts its timer) and when enough
    // keys wait; otherwise its timer is already running.
    if was_empty || queue.pending.len() >= shared.options.flush_batch_keys {
        shared.wake.notify_one();
    }
}

/// Waits for a status change, or until `deadline` (when the store turns unhealthy).
async fn wait_for_change(status: &mut watch::Receiver<Status>, deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => {
            let _ = tokio::time::timeout_at(deadline.into(), status.changed()).await;
        }
        None => {
            if status.changed().await.is_err() {
                // The sender lives in `Shared`, which outlives every receiver we hold; a
                // closed channel cannot happen, but never spin if it did.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if self.shared.begin_close() {
            debug!(
                instance = %self.shared.options.instance_id,
                "store dropped without close: flushing and releasing in the background"
            );
        }
    }
}

#[async_trait]
impl Persistence for PostgresStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(BACKEND)
            .atomic_commit(true)
            .durability(Durability::OnFlush)
            .persistent(true)
    }

    async fn load_creds(&self) -> Result<Option<AuthCreds>> {
        self.shared.check_readable()?;
        self.shared.memory.read().load_creds()
    }

    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
        self.shared.check_readable()?;
        let cached = self.shared.memory.read().is_cached(kind);
        let slots = if cached {
            budget::get(&self.shared, kind, ids).await?
        } else {
            self.shared.memory.read().get(kind, ids)
        };
        let instance = &self.shared.options.instance_id;
        slots
            .into_iter()
            .map(|(id, slot)| Memory::decode(instance, kind, &id, slot).map(|value| (id, value)))
            .collect()
    }

    async fn list(&self, kind: &KeyKind) -> Result<Vec<KeyId>> {
        self.shared.check_readable()?;
        if self.shared.memory.read().is_cached(kind) {
            return budget::list(&self.shared, kind).await;
        }
        Ok(self.shared.memory.read().list(kind))
    }

    async fn kinds(&self) -> Result<Vec<KeyKind>> {
        self.shared.check_readable()?;
        if self.shared.budget.is_some() {
            return budget::kinds(&self.shared).await;
        }
        Ok(self.shared.memory.read().kinds())
    }

    async fn commit(&self, batch: WriteBatch) -> Result<()> {
        let started = Instant::now();
        let outcome = self.commit_batch(batch).await;
        let took = started.elapsed().as_secs_f64();
        self.shared.telemetry.commit_seconds.record(took);
        outcome
    }

    async fn flush(&self) -> Result<()> {
        let started = Instant::now();
        let outcome = self.flush_all().await;
        let took = started.elapsed().as_secs_f64();
        self.shared.telemetry.durable_seconds.record(took);
        outcome
    }

    /// Flushes everything committed, releases the lease and stops the flusher. Afterwards
    /// every operation returns [`AuthError::Closed`]. Returns the flush's error when the last
    /// batches could not be written ([`AuthError::Unhealthy`] after `unhealthy_after` of
    /// failures or once the lease may have expired, or [`AuthError::OwnershipLost`]); the
    /// flusher then keeps retrying in the background for as long as the runtime runs.
    async fn close(&self) -> Result<()> {
        let shared = &self.shared;
        if shared.begin_close() {
            debug!(instance = %shared.options.instance_id, "closing");
        }
        wait_for(shared, |status, _| status.stopped).await?;
        shared.release_cache();
        let worker = self.worker.lock().take();
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        Ok(())
    }
}

impl PostgresStore {
    async fn commit_batch(&self, batch: WriteBatch) -> Result<()> {
        batch.validate()?;
        self.shared.check_writable()?;
        if batch.is_empty() {
            return Ok(());
        }
        let encoded = Encoded::of(&batch)?;
        let keys = encoded.len();
        // Fast path: room in the queue.
        {
            let shared = &self.shared;
            let mut queue = shared.queue.lock();
            if queue.closing {
                return Err(AuthError::Closed);
            }
            let used = queue.pending.len() + queue.in_flight_keys;
            if used == 0 || used + keys <= shared.options.queue_capacity {
                enqueue(shared, &mut queue, encoded, batch);
                drop(queue);
                shared.trim();
                return Ok(());
            }
        }
        self.wait_for_room(keys, encoded, batch).await?;
        self.shared.trim();
        Ok(())
    }

    async fn flush_all(&self) -> Result<()> {
        self.shared.check_readable()?;
        let shared = &self.shared;
        let target = shared.queue.lock().last_seq;
        // Acknowledged only while the lease is surely ours.
        let durable = move |status: &Status, now: Instant| {
            status.flushed_seq >= target && status.lease.is_valid(now)
        };
        {
            let status = shared.status.borrow();
            if status.fenced.is_none() && durable(&status, Instant::now()) {
                return Ok(());
            }
        }
        shared.queue.lock().flush_requested = true;
        wait_for(shared, durable).await?;
        // What was flushed may be evicted now.
        shared.trim();
        Ok(())
    }
}
